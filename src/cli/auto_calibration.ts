/**
 * `quantize --max-drop P [--metric top1|agreement|cosine]`: the options of the accuracy-based
 * automatic calibration (SPEC §12), its evaluator, and its report as text.
 *
 * @module
 */

import type { Net } from "../caffe/net.ts";
import type { EvaluationSample } from "../engine/evaluate.ts";
import { ConvertError } from "../errors.ts";
import {
  agreementEvaluator,
  type AutoCalibrateResult,
  cosineEvaluator,
  type Evaluator,
  top1Evaluator,
} from "../pipeline/auto_calibrate.ts";
import { printable } from "../printable.ts";
import { numberValue, type ParsedArgs } from "./args.ts";

/** Options taking a value. */
export const AUTO_OPTIONS = ["max-drop", "metric"];

/** The usage fragment. */
export const AUTO_USAGE = "[--max-drop P [--metric top1|agreement|cosine]]";

/** The help text. */
export const AUTO_HELP =
  "--max-drop P: automatic calibration (AMCT's accuracy_based_auto_calibration): leave the\n" +
  "fewest most sensitive layers in float for the score on the evaluation data to drop at most\n" +
  "P from the float net's (a fraction: 0.005 = half a point). --metric: top1 (against labels;\n" +
  "the default when every evaluation sample has one), agreement (top-1 agreement with the float\n" +
  "net; the default otherwise), cosine (mean cosine of every output to the float net's: use it\n" +
  "for detectors).\n";

const METRICS = ["top1", "agreement", "cosine"] as const;

/** A built-in metric. */
export type Metric = typeof METRICS[number];

/** The automatic calibration the options ask for, if any. */
export interface AutoChoice {
  /** The largest drop allowed. */
  maxDrop: number;
  /** The metric's name. */
  metric: Metric;
  /** The evaluator (float outputs already computed). */
  evaluate: Evaluator;
}

/** Whether the options ask for the automatic calibration. */
export function wantsAuto(args: ParsedArgs): boolean {
  if (!args.options.has("max-drop") && args.options.has("metric")) {
    throw new ConvertError("USAGE", "--metric goes with --max-drop");
  }
  return args.options.has("max-drop");
}

/** `--max-drop` and `--metric` checked, and the evaluator on `samples` built. */
export async function autoChoice(
  args: ParsedArgs,
  float: Net,
  samples: EvaluationSample[],
): Promise<AutoChoice> {
  const maxDrop = numberValue("max-drop", args.options.get("max-drop")!.at(-1)!);
  if (maxDrop < 0) throw new ConvertError("USAGE", "--max-drop must be 0 or more");
  const labelled = samples.length > 0 && samples.every((sample) => sample.label !== undefined);
  const given = args.options.get("metric")?.at(-1);
  if (given !== undefined && !(METRICS as readonly string[]).includes(given)) {
    throw new ConvertError(
      "USAGE",
      `--metric is one of ${METRICS.join(", ")}, not "${printable(given)}"`,
    );
  }
  const metric = (given ?? (labelled ? "top1" : "agreement")) as Metric;
  if (samples.length === 0) {
    throw new ConvertError("USAGE", "--max-drop needs evaluation samples");
  }
  if (metric === "top1" && !labelled) {
    throw new ConvertError(
      "USAGE",
      "--metric top1 needs a label for every evaluation sample (a list file, or --labels)",
    );
  }
  const evaluate = metric === "top1"
    ? top1Evaluator(samples)
    : metric === "agreement"
    ? await agreementEvaluator(float, samples)
    : await cosineEvaluator(float, samples);
  return { maxDrop, metric, evaluate };
}

/** A score as text (6 decimals). */
function score(value: number): string {
  return value.toFixed(6);
}

/** The search as text: scores, sensitivity, each evaluation, the choice. */
export function formatSearch(result: AutoCalibrateResult, metric: Metric): string {
  const lines = [
    `automatic calibration (${metric}, max drop ${result.maxDrop}):`,
    `  float ${score(result.floatScore)}, all quantized ${score(result.quantizedScore)} ` +
    `(drop ${score(result.floatScore - result.quantizedScore)})`,
  ];
  if (result.sensitivity.length > 0) {
    lines.push("  sensitivity (output cosine, layer alone quantized; most sensitive first):");
    const width = Math.max(...result.sensitivity.map((entry) => printable(entry.layer).length));
    result.sensitivity.forEach((entry, rank) =>
      lines.push(
        `    ${String(rank + 1).padStart(3)}  ${printable(entry.layer).padEnd(width)}  ` +
          entry.cosine.toFixed(6),
      )
    );
  }
  lines.push("  search (k = most sensitive layers kept float):");
  for (const step of result.steps) {
    lines.push(
      `    k=${String(step.keptFloat).padEnd(4)} score ${score(step.score)}  drop ` +
        `${score(result.floatScore - step.score)}  ${step.meets ? "meets" : "misses"}`,
    );
  }
  lines.push(
    result.met
      ? `  target met with ${result.keptFloat.length} layer(s) in float`
      : "  NO choice meets the target: kept the best scoring one",
    `  layers in float: ${result.keptFloat.map((name) => printable(name)).join(", ") || "(none)"}`,
    `  final score ${score(result.finalScore)} (drop ${
      score(result.floatScore - result.finalScore)
    })`,
  );
  return lines.join("\n") + "\n";
}
