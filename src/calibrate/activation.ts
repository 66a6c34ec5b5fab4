/**
 * Activation calibration of one blob (docs/calibration.md): AMCT's IFMR, our HFMG and min/max, each as a
 * collector that sees the blob's values batch by batch over one or more passes over the data
 * and then gives `scale_d` and `offset_d`. The numeric work runs in src/wasm/calibrate.ts.
 *
 * IFMR needs every value three times (range, then histogram, then the error of each candidate),
 * so it either keeps the blob's non-zero values (while a shared {@linkcode StoreBudget} allows;
 * zeros are only counted, their round-trip error being exactly 0) and finishes after one pass,
 * or asks for two more passes. Either way the result equals IFMR on all values.
 *
 * @module
 */

import { activationFactors } from "../quant/make_record.ts";
import {
  type CalibrateKernels,
  IFMR_BINS,
  type IfmrCandidates,
  type IfmrParams,
} from "../wasm/calibrate.ts";

/**
 * An activation algorithm: AMCT's `ifmr` and `hfmg`, and caffe-quant's `minmax` (docs/math.md)
 * and `search` (src/calibrate/search.ts: factors by the layer's output error, weight scales by
 * their rounding error).
 */
export type ActivationAlgorithm = "ifmr" | "hfmg" | "minmax" | "search";

/** The algorithms that look at the input values alone (every one but `search`). */
export type InputAlgorithm = Exclude<ActivationAlgorithm, "search">;

/**
 * Every activation algorithm, in the order help texts list them (`minmax` and `search` are
 * caffe-quant's additions).
 */
export const ACTIVATION_ALGORITHMS: readonly ActivationAlgorithm[] = [
  "ifmr",
  "hfmg",
  "minmax",
  "search",
];

/** How one blob is calibrated (AMCT's `activation_quant_params` and `activation_offset`). */
export interface ActivationSettings {
  /** `act_algo` (default `ifmr`). */
  algorithm: ActivationAlgorithm;
  /** `activation_offset`: asymmetric int8 with an offset (default true) or symmetric. */
  withOffset: boolean;
  /** IFMR `max_percentile` (default 0.999999). */
  maxPercentile: number;
  /** IFMR `min_percentile` (default 0.999999). */
  minPercentile: number;
  /** IFMR `search_range` (default [0.7, 1.3]). */
  searchRange: readonly [number, number];
  /** IFMR `search_step` (default 0.01). */
  searchStep: number;
  /** HFMG `num_of_bins` (default 4096). */
  numOfBins: number;
}

/** AMCT's defaults (docs/calibration.md). */
export const DEFAULT_ACTIVATION_SETTINGS: Readonly<ActivationSettings> = Object.freeze({
  algorithm: "ifmr",
  withOffset: true,
  maxPercentile: 0.999999,
  minPercentile: 0.999999,
  searchRange: Object.freeze([0.7, 1.3]) as readonly [number, number],
  searchStep: 0.01,
  numOfBins: 4096,
});

/** A blob's calibration outcome. */
export interface ActivationResult {
  /** `scale_d` (float32). */
  scaleD: number;
  /** `offset_d`, -128..127. */
  offsetD: number;
  /** Smallest value seen. */
  min: number;
  /** Largest value seen. */
  max: number;
  /** Values seen (elements over all samples). */
  count: number;
  /**
   * The clip range the factors give: the values the Quant layer represents,
   * [(−128 − offset_d)·scale_d, (127 − offset_d)·scale_d].
   */
  clip: [number, number];
}

/** Bytes the IFMR collectors may still use to keep values (shared by all of one calibration). */
export interface StoreBudget {
  /** Bytes left. */
  bytesLeft: number;
}

/** Calibrates one blob from its values, pass by pass. */
export interface ActivationCollector {
  /** Whether pass `pass` (0, 1, …) over the data is needed; pass 0 always is. */
  needsPass(pass: number): boolean;
  /** Values of one batch (a blob of `shape`, axis 0 the samples), in pass `pass`. */
  add(pass: number, values: Float32Array, shape: readonly number[]): void;
  /** Pass `pass` is over. */
  endPass(pass: number): void;
  /** The range of values seen so far and their count (NaN when a value was NaN). */
  seen(): { min: number; max: number; count: number };
  /** The outcome, once no pass is needed. */
  result(): ActivationResult;
}

/** The range of values seen and how many, kept by every collector. */
class RangeTracker {
  min = Infinity;
  max = -Infinity;
  count = 0;
  constructor(readonly kernels: CalibrateKernels) {}
  /** Adds a batch's values; returns their [min, max]. */
  add(values: Float32Array): [number, number] {
    if (values.length === 0) return [Infinity, -Infinity];
    const [min, max] = this.kernels.minMax(values);
    this.min = Number.isNaN(min) || Number.isNaN(this.min) ? NaN : Math.min(this.min, min);
    this.max = Number.isNaN(max) || Number.isNaN(this.max) ? NaN : Math.max(this.max, max);
    this.count += values.length;
    return [min, max];
  }
  seen(): { min: number; max: number; count: number } {
    return { min: this.min, max: this.max, count: this.count };
  }
}

/** The clip range of factors (see {@linkcode ActivationResult.clip}). */
export function clipOf(scaleD: number, offsetD: number): [number, number] {
  return [Math.fround((-128 - offsetD) * scaleD), Math.fround((127 - offsetD) * scaleD)];
}

/** Round half to even. */
function rint(value: number): number {
  const rounded = Math.round(value);
  return Math.abs(value % 1) === 0.5 && rounded % 2 !== 0 ? rounded - 1 : rounded;
}

/** IFMR's replacement threshold (docs/calibration.md step 3). */
const MIN_SCALE = 1.1920929e-7;

/**
 * docs/calibration.md step 3's factors of a clip range [clipMin, clipMax] with s = 1: with offset,
 * scale = (max(clipMax, 0) − min(clipMin, 0)) / 255 and offset = clamp(−128 − rint(clipMin /
 * scale)); without, scale = max(|clipMin|, |clipMax|) / 127 and offset 0; a scale below
 * 1.1920929e-7 becomes 1. Used by HFMG and the search.
 */
export function clipFactors(
  clipMin: number,
  clipMax: number,
  withOffset: boolean,
): { scaleD: number; offsetD: number } {
  const low = withOffset ? Math.min(clipMin, 0) : clipMin;
  const high = withOffset ? Math.max(clipMax, 0) : clipMax;
  let scale = withOffset ? (high - low) / 255 : Math.max(Math.abs(low), Math.abs(high)) / 127;
  if (scale < MIN_SCALE) scale = 1;
  const offsetD = withOffset ? Math.min(127, Math.max(-128, -128 - rint(low / scale))) : 0;
  return { scaleD: Math.fround(scale), offsetD };
}

/** AMCT's IFMR (docs/calibration.md), exact over all values. */
class IfmrCollector implements ActivationCollector {
  readonly #range: RangeTracker;
  /** Non-zero values of every batch while the budget allows; null once it did not. */
  #kept: Float32Array[] | null = [];
  #keptBytes = 0;
  #histogram = new Float64Array(IFMR_BINS);
  #candidates: IfmrCandidates | undefined;
  #sums: Float64Array | undefined;
  #result: ActivationResult | undefined;

  constructor(
    readonly kernels: CalibrateKernels,
    readonly params: IfmrParams,
    readonly budget: StoreBudget,
  ) {
    this.#range = new RangeTracker(kernels);
  }

  needsPass(pass: number): boolean {
    return pass === 0 || (this.#result === undefined && pass <= 2);
  }

  add(pass: number, values: Float32Array): void {
    if (pass === 0) {
      this.#range.add(values);
      if (this.#kept !== null) this.#keep(values);
    } else if (pass === 1) {
      this.kernels.addToHistogram(values, this.#range.min, this.#range.max, this.#histogram);
    } else {
      this.kernels.addRoundTripErrors(values, this.#candidates!, this.#sums!);
    }
  }

  /** Keeps the non-zero values of a batch, or gives up keeping when the budget is spent. */
  #keep(values: Float32Array): void {
    const nonZero = this.kernels.nonZeroValues(values);
    if (nonZero.byteLength > this.budget.bytesLeft) {
      this.budget.bytesLeft += this.#keptBytes;
      this.#kept = null;
      this.#keptBytes = 0;
      return;
    }
    this.budget.bytesLeft -= nonZero.byteLength;
    this.#keptBytes += nonZero.byteLength;
    this.#kept!.push(nonZero);
  }

  endPass(pass: number): void {
    if (pass === 0 && this.#kept !== null) {
      const kept = this.#kept;
      let nonZero = 0;
      for (const values of kept) {
        this.add(1, values);
        nonZero += values.length;
      }
      this.#addZeros(this.#range.count - nonZero);
      this.endPass(1);
      for (const values of kept) this.add(2, values);
      this.budget.bytesLeft += this.#keptBytes;
      this.#kept = null;
      this.endPass(2);
    } else if (pass === 1) {
      const { count, min, max } = this.#range;
      this.#candidates = this.kernels.ifmrCandidates(this.#histogram, count, min, max, this.params);
      this.#sums = new Float64Array(this.#candidates.scaleD.length);
    } else if (pass === 2) {
      const best = this.kernels.leastIndex(this.#sums!);
      const scaleD = this.#candidates!.scaleD[best];
      const offsetD = this.#candidates!.offsetD[best];
      const { min, max, count } = this.#range;
      this.#result = { scaleD, offsetD, min, max, count, clip: clipOf(scaleD, offsetD) };
    }
  }

  /** Adds `zeros` values 0 to the histogram (in the bin docs/calibration.md step 1 gives 0). */
  #addZeros(zeros: number): void {
    if (zeros === 0) return;
    const { min: lo, max: hi } = this.#range;
    const bin = hi > lo ? Math.min(IFMR_BINS - 1, Math.floor((0 - lo) / (hi - lo) * IFMR_BINS)) : 0;
    this.#histogram[bin] += zeros;
  }

  seen(): { min: number; max: number; count: number } {
    return this.#range.seen();
  }

  result(): ActivationResult {
    if (this.#result === undefined) throw new Error("IFMR asked for its result before the end");
    return this.#result;
  }
}

/** HFMG (ours; README "Calibration"): one merged histogram, then a clip-range search. */
class HfmgCollector implements ActivationCollector {
  readonly #range: RangeTracker;
  #counts: Float64Array;
  #lo = Infinity;
  #hi = -Infinity;

  constructor(
    readonly kernels: CalibrateKernels,
    readonly bins: number,
    readonly withOffset: boolean,
  ) {
    this.#range = new RangeTracker(kernels);
    this.#counts = new Float64Array(bins);
  }

  needsPass(pass: number): boolean {
    return pass === 0;
  }

  add(_pass: number, values: Float32Array): void {
    const [min, max] = this.#range.add(values);
    if (!Number.isFinite(min) || !Number.isFinite(max)) return;
    const lo = Math.min(this.#lo, min);
    const hi = Math.max(this.#hi, max);
    if (this.#lo <= this.#hi && (lo < this.#lo || hi > this.#hi)) {
      this.#counts = this.kernels.rebinHistogram(this.#counts, this.#lo, this.#hi, lo, hi);
    }
    this.#lo = lo;
    this.#hi = hi;
    this.kernels.addToHistogram(values, lo, hi, this.#counts);
  }

  endPass(): void {}

  seen(): { min: number; max: number; count: number } {
    return this.#range.seen();
  }

  result(): ActivationResult {
    const { min, max, count } = this.#range;
    const lo = this.#lo;
    const hi = this.#hi;
    let factors;
    if (!(hi > lo)) {
      factors = clipFactors(lo, hi, this.withOffset);
    } else {
      const width = (hi - lo) / this.bins;
      const choice = this.kernels.hfmgSearch(this.#counts, (0 - lo) / width, this.withOffset);
      factors = clipFactors(
        lo + choice.first * width,
        lo + (choice.last + 1) * width,
        this.withOffset,
      );
    }
    const { scaleD, offsetD } = factors;
    return { scaleD, offsetD, min, max, count, clip: clipOf(scaleD, offsetD) };
  }
}

/** Min/max (docs/calibration.md, docs/math.md): the observed range widened to hold 0. */
class MinMaxCollector implements ActivationCollector {
  readonly #range: RangeTracker;
  constructor(readonly kernels: CalibrateKernels, readonly withOffset: boolean) {
    this.#range = new RangeTracker(kernels);
  }
  needsPass(pass: number): boolean {
    return pass === 0;
  }
  add(_pass: number, values: Float32Array): void {
    this.#range.add(values);
  }
  endPass(): void {}
  seen(): { min: number; max: number; count: number } {
    return this.#range.seen();
  }

  result(): ActivationResult {
    const { min, max, count } = this.#range;
    const { scaleD, offsetD } = this.withOffset
      ? activationFactors({ min, max })
      : { scaleD: Math.fround(Math.max(Math.abs(min), Math.abs(max)) / 127) || 1, offsetD: 0 };
    return { scaleD, offsetD, min, max, count, clip: clipOf(scaleD, offsetD) };
  }
}

/**
 * A collector for one blob with `algorithm` and `settings` (the search's is made in
 * src/calibrate/search.ts); IFMR keeps values within `budget`.
 */
export function activationCollector(
  kernels: CalibrateKernels,
  algorithm: InputAlgorithm,
  settings: ActivationSettings,
  budget: StoreBudget,
): ActivationCollector {
  switch (algorithm) {
    case "ifmr":
      return new IfmrCollector(kernels, settings, budget);
    case "hfmg":
      return new HfmgCollector(kernels, settings.numOfBins, settings.withOffset);
    case "minmax":
      return new MinMaxCollector(kernels, settings.withOffset);
  }
}
