/**
 * `caffe-quant record`: a record file made by calibrating the float net on samples
 * (docs/calibration.md), or, without samples, from the weights and guessed activation factors.
 *
 * @module
 */

import type { Net } from "../caffe/net.ts";
import { calibrate, type Sample } from "../calibrate/calibrate.ts";
import { seededInputs } from "../engine/inputs.ts";
import { ConvertError } from "../errors.ts";
import { makeRecord } from "../quant/make_record.ts";
import { parseArgs } from "./args.ts";
import {
  CALIBRATION_FLAGS,
  CALIBRATION_OPTIONS,
  calibrationConfig,
  calibrationProgress,
  calibrationSummary,
} from "./calibration.ts";
import {
  type Command,
  integerOption,
  loadModelFiles,
  numberOption,
  printOrWrite,
} from "./common.ts";
import {
  DATA_FLAGS,
  DATA_HELP,
  DATA_OPTIONS,
  DATA_USAGE,
  dataSamples,
  sampleInputs,
} from "./data_options.ts";

/** The warning of a record whose activation factors were not measured on real data. */
function guessWarning(calibrated: number): string {
  const what = calibrated > 0
    ? `come from ${calibrated} seeded random inputs (uniform in [-1, 1)), not from real data`
    : "were not measured on any data (those of the range [-1, 1], or --scale-d/--offset-d)";
  return `warning: the activation factors ${what}: they are guesses, and a model quantized ` +
    `with them may lose much of its accuracy. Calibrate on real samples with --data or --input.\n`;
}

/** `count` samples of seeded inputs uniform in [-1, 1), sample i from `seed + i`. */
function* seededSamples(net: Net, seed: number, count: number): Generator<Sample> {
  for (let i = 0; i < count; i++) yield seededInputs(net, seed + i);
}

export const recordCommand: Command = {
  usage: `record <model_file> <weights_file> ${DATA_USAGE} [--calibrate N] ` +
    "[--config F | --algo ifmr|hfmg|minmax|search] [--no-offset] [--per-tensor] [--scale-d X] [--offset-d N] " +
    "[--out <file>]",
  help: "Calibrates the float net on samples and writes AMCT's record: per-channel scale_w\n" +
    "from the fused weights (ARQ), and activation factors by IFMR (the default, as AMCT),\n" +
    "HFMG or min/max (--algo, or AMCT's config file: --config) over the values each quantized\n" +
    "layer reads; --algo search (ours) chooses activation factors and weight scales by the\n" +
    "error of each layer's output instead (docs/calibration.md). Samples come\n" +
    "from your data (--data, --input: below), or from N seeded random inputs (--calibrate N, a\n" +
    "baseline only).\n" +
    "Without samples the activation factors are guesses: --scale-d and --offset-d, default\n" +
    "those of the range [-1, 1]. Prints what calibration observed (samples, each layer's range,\n" +
    "ranges that look wrong), and the record itself without --out.\n" + DATA_HELP,
  async run(argv, io) {
    const args = parseArgs(argv, {
      positionals: ["model_file", "weights_file"],
      flags: [...CALIBRATION_FLAGS, ...DATA_FLAGS],
      options: [
        "calibrate",
        "scale-d",
        "offset-d",
        "out",
        "seed",
        ...CALIBRATION_OPTIONS,
        ...DATA_OPTIONS,
      ],
    }, this.usage);
    const modelFile = args.positionals.model_file!;
    const weightsFile = args.positionals.weights_file!;
    const net = await loadModelFiles(modelFile, weightsFile);
    const data = await dataSamples(args, net);
    const seeded = integerOption(args, "calibrate", 0);
    const out = args.options.get("out")?.at(-1);
    // The summary goes where the record does not.
    const say = out === undefined ? io.err : io.out;
    /** The record: calibrated on samples, else from the weights with guessed factors. */
    async function recordText(): Promise<string> {
      if (data !== undefined || seeded > 0) {
        if (args.options.has("scale-d") || args.options.has("offset-d")) {
          throw new ConvertError(
            "USAGE",
            "--scale-d and --offset-d set guessed factors: they do not go with calibration samples",
          );
        }
        const seed = integerOption(args, "seed", 0);
        const samples = data !== undefined
          ? sampleInputs(data)
          : () => seededSamples(net, seed, seeded);
        const source = data !== undefined ? data.description : "seeded random inputs (--calibrate)";
        const progress = calibrationProgress(io);
        try {
          const result = await calibrate(net, samples, {
            config: await calibrationConfig(args, net),
            onProgress: progress.onProgress,
          });
          say(calibrationSummary(net, result, source));
          return result.record;
        } finally {
          progress.done();
        }
      }
      return await makeRecord(net, {
        scaleD: numberOption(args, "scale-d"),
        offsetD: numberOption(args, "offset-d"),
        perTensor: args.flags.has("per-tensor"),
        files: { model: modelFile, weights: weightsFile },
      });
    }
    let text: string;
    try {
      text = await recordText();
    } catch (error) {
      // Fusion knows the BatchNorm's line, not the file it is in: the model file.
      throw error instanceof ConvertError && error.code === "BN_NOT_GLOBAL_STATS"
        ? error.inFile(modelFile)
        : error;
    }
    if (data === undefined) io.err(guessWarning(seeded));
    await printOrWrite(io, text, out);
  },
};
