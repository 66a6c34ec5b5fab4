/**
 * What `record` and `quantize` share about calibration: the options that choose the algorithm,
 * the progress line, and the summary of what calibration observed (samples, per-layer ranges,
 * ranges that look wrong).
 *
 * @module
 */

import { printable } from "../printable.ts";
import type { Net } from "../caffe/net.ts";
import type {
  CalibrationProgress,
  CalibrationResult,
  LayerCalibrationStats,
} from "../calibrate/calibrate.ts";
import { ACTIVATION_ALGORITHMS, type ActivationAlgorithm } from "../calibrate/activation.ts";
import { type CalibrationConfig, defaultCalibrationConfig } from "../calibrate/config.ts";
import { rangeWarnings } from "../calibrate/range_checks.ts";
import { readQuantConfig } from "../calibrate/config_read.ts";
import { ConvertError } from "../errors.ts";
import { readInputText } from "../io/files.ts";
import type { ParsedArgs } from "./args.ts";
import type { Output } from "./common.ts";
import { durationText, statusLine } from "./progress.ts";

/** Options (with a value) that choose how to calibrate. */
export const CALIBRATION_OPTIONS = ["algo", "config"];

/** Flags that choose how to calibrate. */
export const CALIBRATION_FLAGS = ["no-offset", "per-tensor"];

/** The activation algorithm `--algo` names (IFMR, AMCT's default, without it). */
export function algorithmOption(args: ParsedArgs): ActivationAlgorithm {
  const algorithm = args.options.get("algo")?.at(-1) ?? "ifmr";
  if (!ACTIVATION_ALGORITHMS.includes(algorithm as ActivationAlgorithm)) {
    throw new ConvertError(
      "USAGE",
      `--algo needs one of ${ACTIVATION_ALGORITHMS.join(", ")}, not "${printable(algorithm)}"`,
    );
  }
  return algorithm as ActivationAlgorithm;
}

/**
 * The calibration configuration: AMCT's config file of `--config` (JSON or simplified .cfg), or
 * the defaults changed by `--algo`, `--no-offset` and `--per-tensor` (which a config file sets
 * itself).
 */
export async function calibrationConfig(args: ParsedArgs, net: Net): Promise<CalibrationConfig> {
  const file = args.options.get("config")?.at(-1);
  if (file !== undefined) {
    const other = ["algo", "no-offset", "per-tensor"].find((name) =>
      args.options.has(name) || args.flags.has(name)
    );
    if (other !== undefined) {
      throw new ConvertError(
        "USAGE",
        `--${other} does not go with --config: set it in the configuration file`,
      );
    }
    return readQuantConfig(await readInputText(file), net, file);
  }
  const config = defaultCalibrationConfig(net, {
    activation: {
      algorithm: algorithmOption(args),
      ...(args.flags.has("no-offset") ? { withOffset: false } : {}),
    },
  });
  if (args.flags.has("per-tensor")) {
    for (const settings of config.layers.values()) settings.channelWise = false;
  }
  return config;
}

/** A progress callback for `calibrate()` drawing on standard error. */
export function calibrationProgress(
  io: Output,
): { onProgress: (progress: CalibrationProgress) => void; done: () => void } {
  const line = statusLine(io.err, io.isTerminal);
  return {
    onProgress: (progress) => line.show(calibrationStatus(progress)),
    done: line.done,
  };
}

/** One status line for calibration progress: pass, samples, layer and time left. */
export function calibrationStatus(
  { pass, samples, totalSamples, layer, etaSeconds }: CalibrationProgress,
): string {
  const count = totalSamples === undefined ? `${samples}` : `${samples}/${totalSamples}`;
  const eta = etaSeconds === undefined ? "" : `, about ${durationText(etaSeconds)} left`;
  return `calibrating (pass ${pass + 1}): ${count} samples${layer ? `, at ${layer}` : ""}${eta}`;
}

/** A range as text, 4 significant digits. */
function rangeText([low, high]: [number, number]): string {
  const shown = (value: number) => Number.isInteger(value) ? String(value) : value.toPrecision(4);
  return `[${shown(low)}, ${shown(high)}]`;
}

/** The table rows of the calibrated layers (one per layer; shared inputs say so). */
function layerRows(layers: LayerCalibrationStats[]): string[][] {
  return layers.map((stats) => [
    stats.layer,
    stats.blob,
    stats.algorithm,
    rangeText(stats.range),
    rangeText(stats.clip),
    stats.scaleD.toPrecision(6),
    String(stats.offsetD),
  ]);
}

/** Rows as aligned text lines. */
function aligned(rows: string[][]): string[] {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd());
}

/**
 * What calibration observed, for people: the samples used and where from (`source`), one row
 * per quantized layer (its input blob, algorithm, observed range, the range the chosen factors
 * represent, `scale_d`, `offset_d`), and a `warning:` line for each range that looks wrong.
 */
export function calibrationSummary(net: Net, result: CalibrationResult, source: string): string {
  const passes = result.passes === 1 ? "1 pass" : `${result.passes} passes`;
  const lines = [
    `calibrated ${result.layers.length} layers on ${result.samples} samples of ${source} ` +
    `(${passes})`,
    ...aligned([
      ["layer", "input", "algorithm", "range seen", "range kept", "scale_d", "offset_d"],
      ...layerRows(result.layers),
    ]).map((line) => `  ${line}`),
  ];
  for (
    const warning of [
      ...result.warnings,
      ...rangeWarnings(net, result.layers).map((w) => `layer ${w.layer}: ${w.message}`),
    ]
  ) {
    lines.push(`warning: ${warning}`);
  }
  return lines.map((line) => printable(line)).join("\n") + "\n";
}
