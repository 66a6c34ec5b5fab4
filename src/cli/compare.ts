/**
 * `caffe-quant compare`: two nets run on the same inputs, layer by layer.
 *
 * @module
 */

import { printable } from "../printable.ts";
import { basename, dirname } from "node:path";
import { compareNets } from "../engine/compare.ts";
import { compareReportHtml, formatCompareTable } from "../engine/report.ts";
import { writeAllOrNothing } from "../io/files.ts";
import { parseArgs } from "./args.ts";
import { type Command, integerOption, loadModelFiles, shownPath } from "./common.ts";
import { collectSamples, DATA_FLAGS, DATA_HELP, DATA_OPTIONS, DATA_USAGE } from "./data_options.ts";
import {
  THRESHOLD_HELP,
  THRESHOLD_OPTIONS,
  THRESHOLD_USAGE,
  thresholdOptions,
} from "./thresholds.ts";

export const compareCommand: Command = {
  usage: `compare <model_a> <weights_a> <model_b> <weights_b> ${DATA_USAGE} ` +
    `[--seed N] [--lockstep] [--sensitivity-outputs] ${THRESHOLD_USAGE} [--json] ` +
    "[--html <file>]",
  help: "Runs both nets on the same inputs and reports, for every layer output they share,\n" +
    "cosine similarity, max absolute error, relative L2 error and SQNR, in layer order with the\n" +
    "worst layers flagged, then a verdict for each net output (top-1/top-5 agreement for\n" +
    "classifiers, PSNR for images, confident-position agreement for detector scores). A\n" +
    "quantized layer of B is measured at its DeQuant output and named by the quantized layer.\n" +
    "For each layer quantized in B only, its sensitivity: its error when it alone is quantized\n" +
    "(with --sensitivity-outputs also how far each net output moves then: one more run of A\n" +
    "per layer).\n" +
    "--lockstep feeds each layer of B what the same layer of A read, so each row shows the\n" +
    "error the layer adds itself. --html writes a self-contained report page.\n" +
    "Without data, --samples N seeded uniform [-1, 1) inputs (default 1) are run.\n" +
    THRESHOLD_HELP + "\n" + DATA_HELP,
  async run(argv, io) {
    const args = parseArgs(argv, {
      positionals: ["model_a", "weights_a", "model_b", "weights_b"],
      flags: ["json", "lockstep", "sensitivity-outputs", ...DATA_FLAGS],
      options: ["seed", "html", ...THRESHOLD_OPTIONS, ...DATA_OPTIONS],
    }, this.usage);
    const { model_a, weights_a, model_b, weights_b } = args.positionals;
    const thresholds = thresholdOptions(args);
    const [netA, netB] = await Promise.all([
      loadModelFiles(model_a!, weights_a!),
      loadModelFiles(model_b!, weights_b!),
    ]);
    const data = await collectSamples(args, netA);
    if (data) io.err(`data: ${data.samples.length} samples from ${printable(data.description)}\n`);
    const report = await compareNets(netA, netB, {
      inputs: data?.samples.map((sample) => sample.inputs),
      samples: integerOption(args, "samples", 1, 1),
      seed: integerOption(args, "seed", 0),
      lockstep: args.flags.has("lockstep"),
      sensitivityOutputs: args.flags.has("sensitivity-outputs"),
      thresholds,
    });
    const labels = {
      a: `${shownPath(model_a!)} + ${shownPath(weights_a!)}`,
      b: `${shownPath(model_b!)} + ${shownPath(weights_b!)}`,
    };
    const html = args.options.get("html")?.at(-1);
    if (html !== undefined) {
      await writeAllOrNothing(
        dirname(html),
        [{ name: basename(html), content: compareReportHtml(report, labels) }],
      );
      io.err(`wrote ${shownPath(html)}\n`);
    }
    io.out(
      args.flags.has("json")
        ? JSON.stringify(report, null, 2) + "\n"
        : formatCompareTable(report, labels),
    );
  },
};
