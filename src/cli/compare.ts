/**
 * `caffe-quant compare`: two nets run on the same inputs, blob by blob.
 *
 * @module
 */

import { basename, dirname } from "node:path";
import { compareNets, compareReportHtml, formatCompareTable } from "../engine/compare.ts";
import { writeAllOrNothing } from "../io/files.ts";
import { parseArgs } from "./args.ts";
import { type Command, inputTensors, integerOption, loadModelFiles } from "./common.ts";

export const compareCommand: Command = {
  usage: "compare <model_a> <weights_a> <model_b> <weights_b> [--input <blob>=<file.npy>]... " +
    "[--samples N] [--seed N] [--lockstep] [--json] [--html <file>]",
  help: "Runs both nets on the same inputs and reports, for every blob they share, cosine\n" +
    "similarity, max absolute error, relative L2 error and, for classifiers, top-1 agreement,\n" +
    "in layer order with the worst blobs flagged. A float net and its fake-quant or deploy net\n" +
    "line up, since DeQuant layers restore the original blob names. --lockstep feeds each layer\n" +
    "of B what the same layer of A read, so each row shows the error the layer adds itself.\n" +
    "--html writes a self-contained report page.",
  async run(argv, io) {
    const args = parseArgs(argv, {
      positionals: ["model_a", "weights_a", "model_b", "weights_b"],
      flags: ["json", "lockstep"],
      options: ["input", "samples", "seed", "html"],
    }, this.usage);
    const { model_a, weights_a, model_b, weights_b } = args.positionals;
    const [netA, netB] = await Promise.all([
      loadModelFiles(model_a!, weights_a!),
      loadModelFiles(model_b!, weights_b!),
    ]);
    const report = await compareNets(netA, netB, {
      inputs: await inputTensors(args),
      samples: integerOption(args, "samples", 1),
      seed: integerOption(args, "seed", 0),
      lockstep: args.flags.has("lockstep"),
    });
    const html = args.options.get("html")?.at(-1);
    if (html !== undefined) {
      await writeAllOrNothing(
        dirname(html),
        [{ name: basename(html), content: compareReportHtml(report) }],
        [model_a!, weights_a!, model_b!, weights_b!],
      );
    }
    io.out(
      args.flags.has("json") ? JSON.stringify(report, null, 2) + "\n" : formatCompareTable(report),
    );
  },
};
