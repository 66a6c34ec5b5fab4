/**
 * `caffe-quant convert`: the five output files of a record, and with `--compare` what the
 * quantization cost.
 *
 * @module
 */

import { printable } from "../printable.ts";
import { ConvertError } from "../errors.ts";
import { convertModel, type ConvertModelReport } from "../io/convert_model.ts";
import { parseArgs } from "./args.ts";
import { type Command, integerOption, loadModelFiles, shownPath } from "./common.ts";
import { DATA_FLAGS, DATA_HELP, DATA_OPTIONS, DATA_USAGE } from "./data_option_names.ts";
import { progressBar } from "./progress.ts";
import {
  THRESHOLD_HELP,
  THRESHOLD_OPTIONS,
  THRESHOLD_USAGE,
  thresholdOptions,
} from "./thresholds.ts";

export type { ConversionAccuracy } from "./convert_compare.ts";

export const convertCommand: Command = {
  usage: "convert <model_file> <weights_file> <record_file> <save_path> [--compare " +
    `${DATA_USAGE} ${THRESHOLD_USAGE}] [--json]`,
  help: "Fuses Conv+BatchNorm+Scale, quantizes the layers the record file names, and writes\n" +
    "<save_path>_fake_quant_model.prototxt, _fake_quant_weights.caffemodel,\n" +
    "_deploy_model.prototxt, _deploy_weights.caffemodel and _quant.json (all or none).\n" +
    "--compare then runs the float, fake-quant and deploy nets on your data (the data options\n" +
    "below), or on --samples N generated uniform [-1, 1) inputs (default 4), one at a time,\n" +
    "and prints a verdict for each output, the quantized layers that hurt most alone, and\n" +
    "those that fail a threshold alone. Outputs and error codes: docs/formats.md,\n" +
    "docs/layers.md, docs/errors.md.\n" + THRESHOLD_HELP + "\n" + DATA_HELP,
  async run(argv, io) {
    const args = parseArgs(argv, {
      positionals: ["model_file", "weights_file", "record_file", "save_path"],
      flags: ["json", "compare", ...DATA_FLAGS],
      options: [...THRESHOLD_OPTIONS, ...DATA_OPTIONS],
    }, this.usage);
    const thresholds = thresholdOptions(args);
    const samples = integerOption(args, "samples", 4, 1);
    const dataGiven = DATA_OPTIONS.some((name) => args.options.has(name) && name !== "samples") ||
      DATA_FLAGS.some((name) => args.flags.has(name));
    if (dataGiven && !args.flags.has("compare")) {
      throw new ConvertError(
        "USAGE",
        `data options only apply with --compare\nusage: ${this.usage}`,
      );
    }
    // The data is read and checked before anything is written.
    const float = args.flags.has("compare")
      ? await loadModelFiles(args.positionals.model_file!, args.positionals.weights_file!)
      : undefined;
    // The simulator and the image decoders are loaded only for --compare.
    const compare = float && await import("./convert_compare.ts");
    const data = float && await (await import("./data_options.ts")).collectSamples(args, float);
    if (data) io.err(`data: ${data.samples.length} samples from ${printable(data.description)}\n`);
    const progress = io.isTerminal && !args.flags.has("json") ? progressBar(io.err) : undefined;
    let report: ConvertModelReport;
    try {
      report = await convertModel({
        modelFile: args.positionals.model_file!,
        weightsFile: args.positionals.weights_file!,
        recordFile: args.positionals.record_file!,
        savePath: args.positionals.save_path!,
        onProgress: progress?.update,
      });
    } finally {
      progress?.done();
    }
    for (const warning of report.warnings) io.err(`warning: ${printable(warning)}\n`);
    const accuracy = float && compare
      ? await compare.conversionAccuracy(
        float,
        report,
        data
          ? { inputs: data.samples.map((sample) => sample.inputs), description: data.description }
          : { generated: samples },
        thresholds,
      )
      : undefined;
    if (args.flags.has("json")) {
      io.out(JSON.stringify(accuracy ? { ...report, accuracy } : report, null, 2) + "\n");
      return;
    }
    io.out(formatConvertReport(report));
    if (accuracy && compare) io.out(compare.formatAccuracy(accuracy));
  },
};

/** The human summary of a conversion. */
export function formatConvertReport(report: ConvertModelReport): string {
  const lines: string[] = [];
  for (const { layer, batchNorm, scale } of report.fusedComposites) {
    lines.push(`fused      ${layer} + ${batchNorm} + ${scale}`);
  }
  lines.push(
    `quantized  ${report.quantizedLayers.length} layers: ${report.quantizedLayers.join(", ")}`,
  );
  for (const { name, consumers } of report.sharedQuantLayers) {
    lines.push(`shared     ${name} feeds ${consumers.join(", ")}`);
  }
  for (const path of Object.values(report.outputs)) lines.push(`wrote      ${shownPath(path)}`);
  const total = Object.values(report.timings).reduce((a, b) => a + b, 0);
  lines.push(`done in ${total.toFixed(0)} ms`);
  return lines.map((line) => printable(line)).join("\n") + "\n";
}
