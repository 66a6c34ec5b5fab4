/**
 * `caffe-quant convert`: the five output files of a record, and with `--compare` what the
 * quantization cost.
 *
 * @module
 */

import { netOutputs } from "../caffe/net.ts";
import { compareNets } from "../engine/compare.ts";
import { convertModel, type ConvertModelReport } from "../io/convert_model.ts";
import { parseArgs } from "./args.ts";
import { type Command, integerOption, loadModelFiles, shownPath } from "./common.ts";
import { progressBar } from "./progress.ts";

export const convertCommand: Command = {
  usage: "convert <model_file> <weights_file> <record_file> <save_path> [--compare] " +
    "[--samples N] [--json]",
  help: "Fuses Conv+BatchNorm+Scale, quantizes the layers the record file names, and writes\n" +
    "<save_path>_fake_quant_model.prototxt, _fake_quant_weights.caffemodel,\n" +
    "_deploy_model.prototxt, _deploy_weights.caffemodel and _quant.json (all or none).\n" +
    "--compare then runs the float, fake-quant and deploy nets on N seeded inputs (default 4)\n" +
    "and prints how far each output moved.",
  async run(argv, io) {
    const args = parseArgs(argv, {
      positionals: ["model_file", "weights_file", "record_file", "save_path"],
      flags: ["json", "compare"],
      options: ["samples"],
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
    const accuracy = args.flags.has("compare")
      ? await conversionAccuracy(
        args.positionals.model_file!,
        args.positionals.weights_file!,
        report,
        integerOption(args, "samples", 4),
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

/** How far one net output moved through quantization. */
export interface OutputAccuracy {
  /** The output blob. */
  blob: string;
  /** Cosine similarity of the float and fake-quant outputs. */
  cosineFake: number;
  /** Cosine similarity of the float and deploy outputs. */
  cosineDeploy: number;
  /** For classifier outputs, the float and fake-quant top-1 agreement. */
  top1Agreement?: number;
}

/** What `convert --compare` measured. */
export interface ConversionAccuracy {
  /** Seeded inputs run. */
  samples: number;
  /** Each net output, float against fake-quant and deploy (free-running). */
  outputs: OutputAccuracy[];
  /**
   * Fake-quant against deploy layer by layer, in lockstep (each deploy layer reads what the
   * fake-quant layer read): the blob where they differ most and its relative L2 error. The two
   * models should say the same thing, up to float rounding.
   */
  deployVsFake: { blob: string; relativeL2: number };
}

/** Runs the float, fake-quant and deploy nets on seeded inputs and compares them. */
async function conversionAccuracy(
  modelFile: string,
  weightsFile: string,
  report: ConvertModelReport,
  samples: number,
): Promise<ConversionAccuracy> {
  const [float, fake, deploy] = await Promise.all([
    loadModelFiles(modelFile, weightsFile),
    loadModelFiles(report.outputs.fakeQuantModel, report.outputs.fakeQuantWeights),
    loadModelFiles(report.outputs.deployModel, report.outputs.deployWeights),
  ]);
  const options = { samples: Math.max(1, samples), seed: 0 };
  const floatVsFake = await compareNets(float, fake, options);
  const floatVsDeploy = await compareNets(float, deploy, options);
  const fakeVsDeploy = await compareNets(fake, deploy, { ...options, lockstep: true });
  const outputs = netOutputs(float).flatMap((blob) => {
    const fakeRow = floatVsFake.rows.find((entry) => entry.blob === blob);
    if (fakeRow === undefined) return [];
    const deployRow = floatVsDeploy.rows.find((entry) => entry.blob === blob);
    return [{
      blob,
      cosineFake: fakeRow.cosine,
      cosineDeploy: deployRow?.cosine ?? NaN,
      ...(fakeRow.top1Agreement === undefined ? {} : { top1Agreement: fakeRow.top1Agreement }),
    }];
  });
  const worst = fakeVsDeploy.rows
    .filter((row) => row.note === undefined)
    .reduce((a, b) => (b.relativeL2 > a.relativeL2 ? b : a), { blob: "", relativeL2: 0 });
  return {
    samples: options.samples,
    outputs,
    deployVsFake: { blob: worst.blob, relativeL2: worst.relativeL2 },
  };
}

/** The accuracy figures as a few lines. */
function formatAccuracy(accuracy: ConversionAccuracy): string {
  const width = Math.max(6, ...accuracy.outputs.map((row) => row.blob.length));
  const lines = [
    `accuracy on ${accuracy.samples} seeded input(s), cosine similarity to the float net:`,
    `  ${"output".padEnd(width)}  fake-quant  deploy    top-1`,
  ];
  for (const row of accuracy.outputs) {
    const top1 = row.top1Agreement === undefined ? "" : `${(100 * row.top1Agreement).toFixed(1)}%`;
    lines.push(
      `  ${row.blob.padEnd(width)}  ${row.cosineFake.toFixed(6)}    ${
        row.cosineDeploy.toFixed(6)
      }  ${top1}`.trimEnd(),
    );
  }
  const { blob, relativeL2 } = accuracy.deployVsFake;
  lines.push(
    `fake-quant vs deploy, layer by layer (lockstep): worst relative L2 ` +
      `${relativeL2.toExponential(1)}${blob ? ` at ${blob}` : ""}`,
  );
  return lines.join("\n") + "\n";
}

/** The human summary of a conversion. */
function formatConvertReport(report: ConvertModelReport): string {
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
  return lines.join("\n") + "\n";
}
