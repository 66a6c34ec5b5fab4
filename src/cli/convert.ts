/**
 * `caffe-quant convert`: the five output files of a record, and with `--compare` what the
 * quantization cost.
 *
 * @module
 */

import { printable } from "../printable.ts";
import { compareNets, type LayerSensitivity, type OutputMetrics } from "../engine/compare.ts";
import { failedChecks, formatMetric, type Thresholds } from "../engine/metrics.ts";
import { outputVerdict } from "../engine/report.ts";
import type { Net } from "../caffe/net.ts";
import type { Tensor } from "../engine/tensor.ts";
import { ConvertError } from "../errors.ts";
import { convertModel, type ConvertModelReport } from "../io/convert_model.ts";
import { parseArgs } from "./args.ts";
import { type Command, integerOption, loadModelFiles, shownPath } from "./common.ts";
import { collectSamples, DATA_FLAGS, DATA_HELP, DATA_OPTIONS, DATA_USAGE } from "./data_options.ts";
import { progressBar } from "./progress.ts";
import {
  THRESHOLD_HELP,
  THRESHOLD_OPTIONS,
  THRESHOLD_USAGE,
  thresholdOptions,
} from "./thresholds.ts";

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
    const data = float && await collectSamples(args, float);
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
    const accuracy = float
      ? await conversionAccuracy(
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
    if (accuracy) io.out(formatAccuracy(accuracy));
  },
};

/** What `convert --compare` measured. */
export interface ConversionAccuracy {
  /** Samples run. */
  samples: number;
  /** The data: `generated` (seeded uniform [-1, 1) inputs) or what the data options named. */
  data: string;
  /** Seed of the first generated sample. */
  seed: number;
  /** The thresholds of the verdicts and flags. */
  thresholds: Thresholds;
  /** Each float net output against the fake-quant net's (free-running), with its verdict. */
  fakeQuant: OutputMetrics[];
  /** Each float net output against the deploy net's (free-running), with its verdict. */
  deploy: OutputMetrics[];
  /** Each quantized layer alone (see `layerSensitivity`), in net order. */
  sensitivity: LayerSensitivity[];
  /** The quantized layers that fail a threshold alone, with the failed checks. */
  flaggedLayers: { layer: string; failed: string[] }[];
  /**
   * Fake-quant against deploy layer by layer, in lockstep (each deploy layer reads what the
   * fake-quant layer read): the layer where they differ most and its relative L2 error. The two
   * models should say the same thing, up to float rounding.
   */
  deployVsFake: { layer: string; relativeL2: number };
}

/**
 * Runs the float, fake-quant and deploy nets on the given samples (one at a time) or on
 * `generated` seeded inputs, and compares them.
 */
async function conversionAccuracy(
  float: Net,
  report: ConvertModelReport,
  data: { inputs: Map<string, Tensor>[]; description: string } | { generated: number },
  thresholds: Thresholds,
): Promise<ConversionAccuracy> {
  const [fake, deploy] = await Promise.all([
    loadModelFiles(report.outputs.fakeQuantModel, report.outputs.fakeQuantWeights),
    loadModelFiles(report.outputs.deployModel, report.outputs.deployWeights),
  ]);
  const options = "inputs" in data
    ? { inputs: data.inputs, samples: data.inputs.length, seed: 0, thresholds }
    : { samples: data.generated, seed: 0, thresholds };
  const floatVsFake = await compareNets(float, fake, options);
  const floatVsDeploy = await compareNets(float, deploy, { ...options, sensitivity: false });
  const fakeVsDeploy = await compareNets(fake, deploy, { ...options, lockstep: true });
  const worst = fakeVsDeploy.rows
    .filter((row) => row.note === undefined)
    .reduce((a, b) => (b.relativeL2 > a.relativeL2 ? b : a), { layer: "", relativeL2: 0 });
  const flaggedLayers = floatVsFake.sensitivity.flatMap((entry) => {
    const failed = failedChecks(entry, thresholds);
    return failed.length === 0 ? [] : [{ layer: entry.layer, failed }];
  });
  return {
    samples: options.samples,
    data: "inputs" in data ? data.description : "generated",
    seed: options.seed,
    thresholds,
    fakeQuant: floatVsFake.outputs,
    deploy: floatVsDeploy.outputs,
    sensitivity: floatVsFake.sensitivity,
    flaggedLayers,
    deployVsFake: { layer: worst.layer, relativeL2: worst.relativeL2 },
  };
}

/** The most sensitive layers named in the summary. */
const SENSITIVE_SHOWN = 3;

/** The accuracy figures as a few lines: a verdict per output and net, the layers that hurt. */
function formatAccuracy(accuracy: ConversionAccuracy): string {
  const lines = [
    accuracy.data === "generated"
      ? `accuracy on ${accuracy.samples} generated input(s) (uniform in [-1, 1), seed ` +
        `${accuracy.seed}; not your data: pass --data), against the float net:`
      : `accuracy on ${accuracy.samples} sample(s) of ${accuracy.data}, against the float net:`,
    ...accuracy.fakeQuant.map((output) => `  fake-quant  ${outputVerdict(output)}`),
    ...accuracy.deploy.map((output) => `  deploy      ${outputVerdict(output)}`),
  ];
  const ranked = [...accuracy.sensitivity]
    .sort((x, y) => errorRank(y.relativeL2) - errorRank(x.relativeL2))
    .slice(0, SENSITIVE_SHOWN)
    .map((entry) =>
      `${entry.layer} rel L2 ${formatMetric(entry.relativeL2, "error")} (${
        formatMetric(entry.sqnr, "db")
      })`
    );
  if (ranked.length > 0) {
    lines.push(`most sensitive layers alone: ${ranked.join(", ")}`);
  }
  lines.push(
    accuracy.flaggedLayers.length === 0
      ? "flagged layers: none"
      : `flagged layers (alone): ${
        accuracy.flaggedLayers.map(({ layer, failed }) => `${layer} (${failed.join(", ")})`)
          .join("; ")
      }`,
  );
  const { layer, relativeL2 } = accuracy.deployVsFake;
  lines.push(
    `fake-quant vs deploy, layer by layer (lockstep): worst relative L2 ` +
      `${relativeL2.toExponential(1)}${layer ? ` at ${layer}` : ""}`,
  );
  return lines.map((line) => printable(line)).join("\n") + "\n";
}

/** A relative L2 error for sorting: NaN ranks worst. */
function errorRank(value: number): number {
  return Number.isNaN(value) ? Infinity : value;
}

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
