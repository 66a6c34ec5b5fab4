/**
 * AMCT's whole post-training flow in memory: calibrate the float net on samples → record →
 * convert (the five outputs) → accuracy of the float, fake-quant and deploy nets on evaluation
 * samples. No file access: it runs in browsers, workers and edge functions.
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
import {
  type AccuracyReport,
  evaluateAccuracy,
  type EvaluationSample,
} from "../engine/evaluate.ts";
import type { Thresholds } from "../engine/metrics.ts";
import {
  autoCalibrate,
  type AutoCalibrateProgress,
  type AutoCalibrateResult,
  type Evaluator,
} from "./auto_calibrate.ts";
import {
  type ConvertedFiles,
  convertInMemory,
  type ConvertReport,
  type InputFiles,
} from "../quant/convert.ts";

/** Where {@linkcode quantize} is. */
export type QuantizeProgress =
  | { step: "calibrate"; calibration: CalibrationProgress }
  | { step: "convert"; stage: string; done: number; total: number }
  | { step: "evaluate"; samples: number; totalSamples?: number }
  | { step: "search"; search: Exclude<AutoCalibrateProgress, { step: "calibrate" }> };

/** The inputs of {@linkcode quantize}. */
export interface QuantizeInput {
  /** The float model's prototxt text. */
  model: string;
  /** The float model's caffemodel bytes. */
  weights: Uint8Array;
  /** Calibration samples (a tensor per net input, batch 1 each). */
  calibration: SampleSource;
  /**
   * Evaluation samples, kept apart from the calibration samples (labels give top-1 accuracy);
   * without them no accuracy is measured.
   */
  evaluation?: Iterable<EvaluationSample> | AsyncIterable<EvaluationSample>;
  /** Evaluation samples, when known in advance (for progress). */
  evaluationCount?: number;
  /** AMCT's configuration (default: every quantizable layer, IFMR). */
  config?: CalibrationConfig;
  /** Calibration samples per forward pass (default 1). */
  batchSize?: number;
  /**
   * Accuracy-based automatic calibration (SPEC §12, `autoCalibrate`): the fewest most sensitive
   * layers are left in float for `evaluate`'s score to drop at most `maxDrop` from the float net's.
   */
  auto?: { evaluate: Evaluator; maxDrop: number };
  /** Verdict thresholds of the accuracy report. */
  thresholds?: Partial<Thresholds>;
  /**
   * Threads the evaluation runs on (workers, see `EnginePool`; default every core, 1 in-process).
   * The figures do not depend on it.
   */
  threads?: number;
  /** Names of the inputs, for errors. */
  files?: InputFiles;
  /** Called as each step progresses. */
  onProgress?: (progress: QuantizeProgress) => void;
}

/** What {@linkcode quantize} returns. */
export interface QuantizeOutput {
  /** The record file text. */
  record: string;
  /** What calibration observed per layer. */
  calibration: CalibrationResult;
  /** The five outputs. */
  files: ConvertedFiles;
  /** What the conversion did. */
  report: ConvertReport;
  /** The three nets' accuracy on the evaluation samples (when given). */
  accuracy?: AccuracyReport;
  /** The automatic calibration's search (with `auto`). */
  auto?: AutoCalibrateResult;
}

/**
 * Calibrates the float model on `calibration` samples (IFMR by default, as AMCT), converts it
 * with the record, and, given `evaluation` samples, measures the float, fake-quant and deploy
 * nets on them (see `evaluateAccuracy`).
 *
 * @example
 * ```ts ignore
 * const digit = (pixels: Float32Array) => new Map([["data", { shape: [1, 1, 28, 28], data: pixels }]]);
 * const { record, files, accuracy } = await quantize({
 *   model: prototxtText,
 *   weights: caffemodelBytes,
 *   calibration: calibrationDigits.map(digit),
 *   evaluation: testDigits.map(({ pixels, label }) => ({ inputs: digit(pixels), label })),
 * });
 * console.log(accuracy?.outputs[0].nets.deploy.top1Accuracy);
 * ```
 */
export async function quantize(input: QuantizeInput): Promise<QuantizeOutput> {
  const { onProgress, files: names = {} } = input;
  const net = loadNet(input.model, input.weights, names);
  const calibrateProgress = onProgress &&
    ((progress: CalibrationProgress) => onProgress({ step: "calibrate", calibration: progress }));
  const output: QuantizeOutput = input.auto === undefined
    ? await calibrateAndConvert(input, net, names, calibrateProgress)
    : await searchAndConvert(input, input.auto, names, calibrateProgress);
  if (input.evaluation !== undefined) {
    const nets = {
      float: net,
      fakeQuant: loadNet(output.files.fakeQuantModel, output.files.fakeQuantWeights),
      deploy: loadNet(output.files.deployModel, output.files.deployWeights),
    };
    output.accuracy = await evaluateAccuracy(nets, input.evaluation, {
      thresholds: input.thresholds,
      threads: input.threads,
      onProgress: onProgress &&
        ((samples) =>
          onProgress({ step: "evaluate", samples, totalSamples: input.evaluationCount })),
    });
  }
  return output;
}

/** Calibrates every layer and converts. */
async function calibrateAndConvert(
  input: QuantizeInput,
  net: Net,
  names: InputFiles,
  onCalibrate?: (progress: CalibrationProgress) => void,
): Promise<QuantizeOutput> {
  const { onProgress } = input;
  const calibration = await calibrate(net, input.calibration, {
    config: input.config,
    batchSize: input.batchSize,
    onProgress: onCalibrate,
  });
  const { files, report } = await convertInMemory({
    model: input.model,
    weights: input.weights,
    record: calibration.record,
    files: names,
    onProgress: onProgress &&
      ((stage, done, total) => onProgress({ step: "convert", stage, done, total })),
  });
  return { record: calibration.record, calibration, files, report };
}

/** The automatic calibration's choice, converted. */
async function searchAndConvert(
  input: QuantizeInput,
  auto: { evaluate: Evaluator; maxDrop: number },
  names: InputFiles,
  onCalibrate?: (progress: CalibrationProgress) => void,
): Promise<QuantizeOutput> {
  const { onProgress } = input;
  const result = await autoCalibrate({
    model: input.model,
    weights: input.weights,
    calibration: input.calibration,
    evaluate: auto.evaluate,
    maxDrop: auto.maxDrop,
    config: input.config,
    batchSize: input.batchSize,
    files: names,
    onProgress: onProgress &&
      ((progress) =>
        progress.step === "calibrate"
          ? onCalibrate?.(progress.calibration)
          : onProgress({ step: "search", search: progress })),
  });
  const { record, calibration, files, report } = result;
  return { record, calibration, files, report, auto: result };
}
