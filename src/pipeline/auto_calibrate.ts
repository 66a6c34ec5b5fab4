/**
 * AMCT's accuracy-based automatic calibration (SPEC §12) in memory: calibrate every layer, rank
 * the quantized layers by sensitivity, and binary-search the fewest most-sensitive layers to keep
 * in float for the quantized net to score within `maxDrop` of the float net. Built-in evaluators
 * (top-1 against labels, top-1 agreement, output cosine) compute the float net's outputs once,
 * and run each candidate only from where it first differs from a net evaluated before
 * (src/engine/reuse.ts).
 *
 * @module
 */

import { loadNet } from "../caffe/model.ts";
import type { Net } from "../caffe/net.ts";
import {
  calibrate,
  type CalibrationProgress,
  type CalibrationResult,
  type SampleSource,
} from "../calibrate/calibrate.ts";
import type { CalibrationConfig } from "../calibrate/config.ts";
import { layerSensitivity } from "../engine/compare.ts";
import type { EvaluationSample } from "../engine/evaluate.ts";
import { cosineOf, topClass } from "../engine/metrics.ts";
import { ReusingRunner } from "../engine/reuse.ts";
import { runNet, type Tensor } from "../engine/run.ts";
import { ConvertError } from "../errors.ts";
import { caffeType } from "../proto/schema.ts";
import { printText } from "../proto/text_print.ts";
import { parseText } from "../proto/text_read.ts";
import {
  type ConvertedFiles,
  convertInMemory,
  type ConvertReport,
  convertToNets,
  type InputFiles,
} from "../quant/convert.ts";
import { engineKernels } from "../wasm/engine.ts";

/**
 * Scores a net on evaluation data; higher is better (built-in ones are fractions in [0, 1]).
 * `upcoming`, a hint, holds the nets that may be scored next (the built-in evaluators keep the
 * blob values where `net` first differs from them, to run only the rest of the next one).
 */
export type Evaluator = (net: Net, upcoming?: readonly Net[]) => Promise<number>;

/** Options of the built-in evaluators. */
export interface EvaluatorOptions {
  /**
   * Runs each net on each sample (default: a new `ReusingRunner()`, which starts each run where
   * the net first differs from nets evaluated before; `new ReusingRunner({ memoryBudget: 0 })`
   * runs every net whole).
   */
  runner?: ReusingRunner;
}

/** Where {@linkcode autoCalibrate} is. */
export type AutoCalibrateProgress =
  | { step: "calibrate"; calibration: CalibrationProgress }
  | { step: "sensitivity" }
  | { step: "evaluate"; keptFloat: number }
  | { step: "convert" };

/** The inputs of {@linkcode autoCalibrate}. */
export interface AutoCalibrateInput {
  /** The float model's prototxt text. */
  model: string;
  /** The float model's caffemodel bytes. */
  weights: Uint8Array;
  /** Calibration samples (a tensor per net input, batch 1 each). */
  calibration: SampleSource;
  /** Scores a net on evaluation data kept apart from the calibration samples. */
  evaluate: Evaluator;
  /** The largest drop of the score from the float net's that meets the target (≥ 0). */
  maxDrop: number;
  /** Calibration samples the sensitivity is measured on (default 8: the first ones). */
  sensitivitySamples?: number;
  /** AMCT's configuration (default: every quantizable layer, IFMR). */
  config?: CalibrationConfig;
  /** Calibration samples per forward pass (default 1). */
  batchSize?: number;
  /** Names of the inputs, for errors. */
  files?: InputFiles;
  /** Called as each step progresses. */
  onProgress?: (progress: AutoCalibrateProgress) => void;
}

/** One evaluation of the search. */
export interface SearchStep {
  /** Most sensitive layers kept in float. */
  keptFloat: number;
  /** The score of the net with them in float. */
  score: number;
  /** Whether `floatScore − score ≤ maxDrop`. */
  meets: boolean;
}

/** What {@linkcode autoCalibrate} returns. */
export interface AutoCalibrateResult {
  /** The record file text of the choice (the kept-float layers left out). */
  record: string;
  /** What calibration observed per layer (all layers). */
  calibration: CalibrationResult;
  /** The five outputs of the choice. */
  files: ConvertedFiles;
  /** What the conversion of the choice did. */
  report: ConvertReport;
  /** The target: the largest drop allowed. */
  maxDrop: number;
  /** The float net's score. */
  floatScore: number;
  /** The score with every calibrated layer quantized. */
  quantizedScore: number;
  /** Each quantized layer's output cosine (float vs fake-quant, alone), most sensitive first. */
  sensitivity: { layer: string; cosine: number }[];
  /** Every evaluation of the search, in the order made. */
  steps: SearchStep[];
  /** Whether the choice meets the target (when none does, the best scoring one is kept). */
  met: boolean;
  /** The layers of the choice left in float, most sensitive first. */
  keptFloat: string[];
  /** The choice's score. */
  finalScore: number;
}

/** `record` without the entries of `layers`. */
function recordWithout(record: string, layers: Set<string>): string {
  const type = caffeType("ScaleOffsetRecord");
  const root = parseText(record, type);
  root.fields = root.fields.filter((field) => {
    if (field.name !== "record" || typeof field.value !== "object") return true;
    const key = (field.value as { get(name: string): unknown }).get("key");
    return !layers.has(String(key));
  });
  return printText(root, type);
}

/** The first `count` samples of `source`. */
async function firstSamples(source: SampleSource, count: number): Promise<Map<string, Tensor>[]> {
  const samples: Map<string, Tensor>[] = [];
  const iterable = typeof source === "function" ? source() : source;
  for await (const sample of iterable) {
    if (samples.length >= count) break;
    samples.push(sample);
  }
  return samples;
}

/**
 * AMCT's `accuracy_based_auto_calibration` (SPEC §12): calibrates every layer, scores the float
 * and the fake-quant nets with `evaluate`, and if the drop exceeds `maxDrop`, ranks the quantized
 * layers by the cosine of their output alone quantized (`layerSensitivity` on the first
 * calibration samples) and binary-searches the smallest `k` for which keeping the `k` most
 * sensitive layers in float meets the target (at least one layer stays quantized). When no `k`
 * does, `met` is false and the best scoring choice is kept.
 *
 * @example
 * ```ts ignore
 * // Float outputs on the evaluation samples computed once; any (net) => Promise<number> works.
 * const evaluate = await cosineEvaluator(loadNet(model, weights), evaluationSamples);
 * const result = await autoCalibrate({
 *   model, weights, calibration: calibrationSamples, evaluate, maxDrop: 0.001,
 * });
 * console.log(result.keptFloat, result.finalScore, result.steps);
 * ```
 */
export async function autoCalibrate(input: AutoCalibrateInput): Promise<AutoCalibrateResult> {
  const { onProgress, files: names = {}, maxDrop } = input;
  if (!(maxDrop >= 0) || !Number.isFinite(maxDrop)) {
    throw new ConvertError("BAD_ARGUMENT", `maxDrop must be a finite number ≥ 0, not ${maxDrop}`);
  }
  const float = loadNet(input.model, input.weights, names);
  const calibration = await calibrate(float, input.calibration, {
    config: input.config,
    batchSize: input.batchSize,
    onProgress: onProgress &&
      ((progress) => onProgress({ step: "calibrate", calibration: progress })),
  });
  const fakeQuantOf = async (record: string) =>
    (await convertToNets({ model: input.model, weights: input.weights, record, files: names }))
      .fakeQuant;
  const allQuantized = await fakeQuantOf(calibration.record);
  const floatScore = await input.evaluate(float, [allQuantized]);
  const scores = new Map<number, number>();
  const steps: SearchStep[] = [];
  const meets = (score: number) => floatScore - score <= maxDrop + 1e-12;
  let ranked: string[] = [];
  const recordFor = (k: number) => recordWithout(calibration.record, new Set(ranked.slice(0, k)));
  // The candidate nets made so far and not scored yet, by k: each is made once.
  const candidates = new Map<number, Promise<Net>>([[0, Promise.resolve(allQuantized)]]);
  const candidate = (k: number) => {
    const net = candidates.get(k) ?? fakeQuantOf(recordFor(k));
    candidates.set(k, net);
    return net;
  };
  // Scores candidate k, telling the evaluator which candidates may come next.
  const scoreOf = async (k: number, next: number[] = []) => {
    onProgress?.({ step: "evaluate", keptFloat: k });
    const net = await candidate(k);
    const score = await input.evaluate(net, await Promise.all(next.map(candidate)));
    for (const made of candidates.keys()) if (!next.includes(made)) candidates.delete(made);
    scores.set(k, score);
    steps.push({ keptFloat: k, score, meets: meets(score) });
    return score;
  };
  // The k the binary search scores next when it narrows (a, b) to a + 1 = b, if any.
  const middle = (a: number, b: number) => b - a > 1 ? [(a + b) >> 1] : [];
  const quantizedScore = await scoreOf(0);
  let sensitivity: AutoCalibrateResult["sensitivity"] = [];
  let chosen = 0;
  if (!meets(quantizedScore)) {
    onProgress?.({ step: "sensitivity" });
    const inputs = await firstSamples(input.calibration, input.sensitivitySamples ?? 8);
    sensitivity = (await layerSensitivity(float, allQuantized, { inputs }))
      .map(({ layer, cosine }) => ({ layer, cosine }))
      .sort((a, b) => a.cosine - b.cosine);
    ranked = sensitivity.map((entry) => entry.layer);
    const most = ranked.length - 1;
    if (most >= 1 && meets(await scoreOf(most, middle(0, most)))) {
      let failing = 0;
      let meeting = most;
      while (meeting - failing > 1) {
        const k = (failing + meeting) >> 1;
        if (meets(await scoreOf(k, [...middle(failing, k), ...middle(k, meeting)]))) meeting = k;
        else failing = k;
      }
      chosen = meeting;
    } else {
      for (const [k, score] of scores) if (score > scores.get(chosen)!) chosen = k;
    }
  }
  onProgress?.({ step: "convert" });
  const record = recordFor(chosen);
  const { files, report } = await convertInMemory({
    model: input.model,
    weights: input.weights,
    record,
    files: names,
  });
  return {
    record,
    calibration,
    files,
    report,
    maxDrop,
    floatScore,
    quantizedScore,
    sensitivity,
    steps,
    met: meets(scores.get(chosen)!),
    keptFloat: ranked.slice(0, chosen),
    finalScore: scores.get(chosen)!,
  };
}

/** Each output of `net` on each sample (the float net's, computed once by the evaluators). */
async function outputsOf(net: Net, samples: EvaluationSample[]): Promise<Map<string, Tensor>[]> {
  const outputs: Map<string, Tensor>[] = [];
  for (const sample of samples) {
    outputs.push((await runNet(net, { inputs: sample.inputs })).outputs);
  }
  return outputs;
}

/**
 * Top-1 accuracy against the labels: the fraction of `samples` whose net output `blob` (default:
 * the first output) has its largest value at the label. Every sample needs a label.
 */
export function top1Evaluator(
  samples: EvaluationSample[],
  blob?: string,
  options: EvaluatorOptions = {},
): Evaluator {
  if (samples.length === 0 || samples.some((sample) => sample.label === undefined)) {
    throw new ConvertError("BAD_ARGUMENT", "top-1 accuracy needs samples, each with a label");
  }
  const runner = options.runner ?? new ReusingRunner();
  return async (net, upcoming) => {
    let correct = 0;
    for (const sample of samples) {
      const outputs = await runner.outputs(net, sample.inputs, upcoming);
      const scores = blob === undefined ? outputs.values().next().value : outputs.get(blob);
      if (scores !== undefined && topClass(scores.data) === sample.label) correct++;
    }
    return correct / samples.length;
  };
}

/**
 * Top-1 agreement with `float`: the fraction of (sample, output) pairs whose arg-max equals the
 * float net's (float outputs computed once, here).
 */
export async function agreementEvaluator(
  float: Net,
  samples: EvaluationSample[],
  options: EvaluatorOptions = {},
): Promise<Evaluator> {
  const reference = (await outputsOf(float, samples)).map((outputs) =>
    new Map([...outputs].map(([blob, tensor]) => [blob, topClass(tensor.data)]))
  );
  const runner = options.runner ?? new ReusingRunner();
  return async (net, upcoming) => {
    let agreeing = 0;
    let total = 0;
    for (let i = 0; i < samples.length; i++) {
      const outputs = await runner.outputs(net, samples[i].inputs, upcoming);
      for (const [blob, index] of reference[i]) {
        const tensor = outputs.get(blob);
        if (tensor !== undefined && topClass(tensor.data) === index) agreeing++;
        total++;
      }
    }
    return total === 0 ? 0 : agreeing / total;
  };
}

/**
 * The mean cosine similarity of every net output to `float`'s, over `samples` and outputs (float
 * outputs computed once, here); for detectors and other non-classifiers.
 */
export async function cosineEvaluator(
  float: Net,
  samples: EvaluationSample[],
  options: EvaluatorOptions = {},
): Promise<Evaluator> {
  const reference = await outputsOf(float, samples);
  const kernels = await engineKernels();
  const runner = options.runner ?? new ReusingRunner();
  return async (net, upcoming) => {
    let sum = 0;
    let count = 0;
    for (let i = 0; i < samples.length; i++) {
      const outputs = await runner.outputs(net, samples[i].inputs, upcoming);
      for (const [blob, tensor] of reference[i]) {
        const other = outputs.get(blob);
        sum += other === undefined || other.data.length !== tensor.data.length
          ? 0
          : cosineOf(kernels.agreement(tensor.data, other.data));
        count++;
      }
    }
    return count === 0 ? 0 : sum / count;
  };
}
