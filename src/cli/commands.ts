/**
 * The commands of the command line: each parses its arguments, calls the library, and prints a
 * human summary or, with `--json`, the machine form.
 *
 * @module
 */

import { formatNetSummary, inspectNet } from "../caffe/inspect.ts";
import { loadNet } from "../caffe/model.ts";
import { readPrototxt } from "../caffe/prototxt.ts";
import { convertModel, type ConvertModelReport } from "../io/convert_model.ts";
import { readInput, readInputText } from "../io/files.ts";
import { parseArgs } from "./args.ts";
import { progressBar } from "./progress.ts";

/** Where a command writes. */
export interface Output {
  /** Standard output. */
  out(text: string): void;
  /** Standard error. */
  err(text: string): void;
  /** True when standard error is a terminal (progress bars are drawn there). */
  isTerminal: boolean;
}

/** A command: its usage line, its help text and what it does. */
export interface Command {
  /** `name <args> [options]`. */
  usage: string;
  /** What the command does, for `--help`. */
  help: string;
  /** Runs with the words after the command name. */
  run(argv: string[], io: Output): Promise<void>;
}

const inspect: Command = {
  usage: "inspect <model_file> [weights_file] [--json]",
  help: "Lists every layer with its type, wiring, blob shapes, parameter count and whether it\n" +
    "can be quantized (and if not, why). Without weights, blob shapes are not shown.",
  async run(argv, io) {
    const args = parseArgs(argv, {
      positionals: ["model_file"],
      optional: ["weights_file"],
      flags: ["json"],
    }, this.usage);
    const modelFile = args.positionals.model_file!;
    const weightsFile = args.positionals.weights_file;
    const modelText = await readInputText(modelFile);
    const net = weightsFile === undefined
      ? readPrototxt(modelText, modelFile)
      : loadNet(modelText, await readInput(weightsFile), {
        model: modelFile,
        weights: weightsFile,
      });
    const summary = inspectNet(net);
    io.out(
      args.flags.has("json") ? JSON.stringify(summary, null, 2) + "\n" : formatNetSummary(summary),
    );
  },
};

const convert: Command = {
  usage: "convert <model_file> <weights_file> <record_file> <save_path> [--json]",
  help: "Fuses Conv+BatchNorm+Scale, quantizes the layers the record file names, and writes\n" +
    "<save_path>_fake_quant_model.prototxt, _fake_quant_weights.caffemodel,\n" +
    "_deploy_model.prototxt, _deploy_weights.caffemodel and _quant.json (all or none).",
  async run(argv, io) {
    const args = parseArgs(argv, {
      positionals: ["model_file", "weights_file", "record_file", "save_path"],
      flags: ["json"],
    }, this.usage);
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
    for (const warning of report.warnings) io.err(`warning: ${warning}\n`);
    io.out(
      args.flags.has("json") ? JSON.stringify(report, null, 2) + "\n" : formatConvertReport(report),
    );
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
  for (const path of Object.values(report.outputs)) lines.push(`wrote      ${path}`);
  const total = Object.values(report.timings).reduce((a, b) => a + b, 0);
  lines.push(`done in ${total.toFixed(0)} ms`);
  return lines.join("\n") + "\n";
}

/** Every command by name. */
export const COMMANDS: Record<string, Command> = { inspect, convert };
