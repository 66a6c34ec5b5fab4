/**
 * The typed wrapper of the calibration kernels (assembly/calibrate.ts): ranges, histograms,
 * IFMR's candidates and round-trip errors (docs/calibration.md), and HFMG's clip-range search. Each call
 * copies its arrays into the module's scratch memory once and copies results out once.
 *
 * @module
 */

import { onceLoader, type WasmInstance } from "./load.ts";

/** IFMR's search parameters (docs/calibration.md; AMCT's names in the comments). */
export interface IfmrParams {
  /** `max_percentile`, in (0.5, 1]. */
  maxPercentile: number;
  /** `min_percentile`, in (0.5, 1]. */
  minPercentile: number;
  /** `search_range`: [start, end) of the factor s. */
  searchRange: readonly [number, number];
  /** `search_step`, > 0. */
  searchStep: number;
  /** `activation_offset`: asymmetric (true) or symmetric (false) int8. */
  withOffset: boolean;
}

/** IFMR's candidates: float32 scale_d, S = f32(1/scale_d) and offset_d of each. */
export interface IfmrCandidates {
  /** scale_d of each candidate (float32). */
  scaleD: Float32Array;
  /** S = f32(1 / scale_d) of each candidate. */
  quantScale: Float32Array;
  /** offset_d of each candidate (integers, -128..127). */
  offsetD: Float32Array;
}

/** The clip range HFMG's search chose, in bins, and its estimated error. */
export interface HfmgChoice {
  /** First bin of the clip range. */
  first: number;
  /** Last bin of the clip range. */
  last: number;
  /** The estimated squared error, in squared bin widths. */
  error: number;
}

/** A convolution's window (as src/engine/conv.ts reads it), for the search's patches. */
export interface PatchWindow {
  /** [kernel_h, kernel_w]. */
  kernel: readonly [number, number];
  /** [pad_h, pad_w]. */
  pad: readonly [number, number];
  /** [stride_h, stride_w]. */
  stride: readonly [number, number];
  /** [dilation_h, dilation_w]. */
  dilation: readonly [number, number];
}

/** Sampled input patches of a layer: `count` rows of `stride` float32 and the group of each. */
export interface LayerPatches {
  /** Patch values, row after row. */
  values: Float32Array;
  /** Floats from one patch to the next (a multiple of 4; the tail is 0). */
  stride: number;
  /** The group of each patch (int32). */
  groups: Int32Array;
}

/** Floats between patches (and weight rows) of `length` values: `length` rounded up to 4. */
export function patchStride(length: number): number {
  return Math.ceil(length / 4) * 4;
}

/** The calibration kernels. */
export interface CalibrateKernels {
  /** [min, max] of `values` (at least one); NaN when any value is NaN. */
  minMax(values: Float32Array): [number, number];
  /** The non-zero values of `values`, in order. */
  nonZeroValues(values: Float32Array): Float32Array;
  /**
   * Adds `values` to `counts`, a histogram of `counts.length` equal bins over [lo, hi]: value v
   * goes to bin min(bins − 1, floor((v − lo) / (hi − lo) · bins)) in float64 (0 when hi = lo).
   */
  addToHistogram(values: Float32Array, lo: number, hi: number, counts: Float64Array): void;
  /**
   * The histogram `counts` over [oldLo, oldHi] spread onto as many bins over [newLo, newHi]
   * (which holds the old range), each old bin's count in proportion to overlap.
   */
  rebinHistogram(
    counts: Float64Array,
    oldLo: number,
    oldHi: number,
    newLo: number,
    newHi: number,
  ): Float64Array;
  /** IFMR steps 1–3 from the 128-bin `histogram` of `n` values over [lo, hi]. */
  ifmrCandidates(
    histogram: Float64Array,
    n: number,
    lo: number,
    hi: number,
    params: IfmrParams,
  ): IfmrCandidates;
  /**
   * Adds each candidate's Σ (x̂ − x)² over `values` (in order, float64) to `sums` (one per
   * candidate), x̂ the docs/math.md round trip.
   */
  addRoundTripErrors(values: Float32Array, candidates: IfmrCandidates, sums: Float64Array): void;
  /** The index of the least sum; ties go to the first. */
  leastIndex(sums: Float64Array): number;
  /**
   * HFMG's search over clip ranges [bin first, bin last] of the histogram `counts`, where the
   * value 0 lies `zero` bin widths above the bottom (see README "Calibration").
   */
  hfmgSearch(counts: Float64Array, zero: number, withOffset: boolean): HfmgChoice;
  /**
   * The search's input patches of a convolution from one batch `input` of `shape` [N, C, H, W]:
   * `positions` holds int32 quadruples (n, g, oy, ox); patch element (c·kh + ky)·kw + kx of group
   * g at output (oy, ox) is input[n, g·groupChannels + c, oy·stride_h − pad_h + ky·dilation_h,
   * ox·stride_w − pad_w + kx·dilation_w] (0 outside). Patches are {@linkcode patchStride}
   * floats apart with a zero tail.
   */
  gatherPatches(
    input: Float32Array,
    shape: readonly [number, number, number, number],
    window: PatchWindow,
    groupChannels: number,
    positions: Int32Array,
  ): Float32Array;
  /**
   * `channels` rows of `weights` (row-major, `length` = weights.length / channels each) laid out
   * {@linkcode patchStride}(length) apart: as they are with `scales` null, else fake-quantized
   * with each row's float32 scale, f32(clamp(rint(f32(w / s)), −128, 127) · s).
   */
  weightRows(weights: Float32Array, channels: number, scales: Float32Array | null): Float32Array;
  /**
   * A layer's outputs at `patches` (of {@linkcode LayerPatches}) with weight `rows` (of
   * {@linkcode CalibrateKernels.weightRows}) and `bias` (null: none): outPerGroup values per
   * patch, those of its group.
   */
  patchOutputs(
    patches: LayerPatches,
    rows: Float32Array,
    bias: Float32Array | null,
    outPerGroup: number,
  ): Float32Array;
  /**
   * For each candidate: Σ (y − target)² in float64 over the outputs of
   * {@linkcode CalibrateKernels.patchOutputs} computed from the patches' round trip x̂ (SPEC §4)
   * with the candidate's factors; with `rectify`, Σ (max(y, 0) − max(target, 0))².
   */
  candidateOutputErrors(
    patches: LayerPatches,
    rows: Float32Array,
    bias: Float32Array | null,
    outPerGroup: number,
    targets: Float32Array,
    candidates: IfmrCandidates,
    rectify: boolean,
  ): Float64Array;
  /**
   * errors[c·R + r] = Σ over row c of `weights` (`channels` rows) of (ŵ − w)² in float64, ŵ the
   * weight fake-quantized with the float32 scale `scales[c·R + r]` (R = scales.length / channels).
   */
  weightRoundingErrors(weights: Float32Array, channels: number, scales: Float32Array): Float64Array;
  /**
   * errors[c·R + r] = Σ over the patches of channel c's group of (y − target)² in float64, y the
   * channel's output from the patches' round trip with `factors` and float weight row c of
   * `rows` (of {@linkcode CalibrateKernels.weightRows}) fake-quantized with the float32 scale
   * `trials[c·R + r]` (R = trials.length / channels), plus `bias[c]`; with `rectify`,
   * Σ (max(y, 0) − max(target, 0))².
   */
  channelOutputErrors(
    patches: LayerPatches,
    rows: Float32Array,
    bias: Float32Array | null,
    outPerGroup: number,
    targets: Float32Array,
    factors: { scaleD: number; offsetD: number },
    trials: Float32Array,
    rectify: boolean,
  ): Float64Array;
}

/** The exports of assembly/calibrate.ts (offsets are bytes into the module's memory). */
interface CalibrateExports {
  minMax(values: number, count: number, out: number): void;
  compactNonZero(values: number, count: number): number;
  addToHistogram(
    values: number,
    count: number,
    lo: number,
    hi: number,
    bins: number,
    counts: number,
  ): void;
  rebinHistogram(
    oldCounts: number,
    oldLo: number,
    oldHi: number,
    newCounts: number,
    newLo: number,
    newHi: number,
    bins: number,
  ): void;
  ifmrCandidates(
    histogram: number,
    n: number,
    lo: number,
    hi: number,
    maxPercentile: number,
    minPercentile: number,
    start: number,
    end: number,
    step: number,
    withOffset: number,
    capacity: number,
    scaleOut: number,
    quantScaleOut: number,
    offsetOut: number,
  ): number;
  addRoundTripErrors(
    values: number,
    count: number,
    scales: number,
    quantScales: number,
    offsets: number,
    candidates: number,
    sums: number,
  ): void;
  leastIndex(sums: number, count: number): number;
  hfmgSearch(
    counts: number,
    bins: number,
    zero: number,
    withOffset: number,
    scratch: number,
    out: number,
  ): void;
  gatherPatches(
    input: number,
    channels: number,
    height: number,
    width: number,
    kernelH: number,
    kernelW: number,
    strideH: number,
    strideW: number,
    padH: number,
    padW: number,
    dilationH: number,
    dilationW: number,
    groupChannels: number,
    positions: number,
    count: number,
    stride: number,
    out: number,
  ): void;
  weightRows(
    weights: number,
    channels: number,
    length: number,
    scales: number,
    stride: number,
    out: number,
  ): void;
  patchOutputs(
    patches: number,
    count: number,
    stride: number,
    groups: number,
    rows: number,
    bias: number,
    outPerGroup: number,
    out: number,
  ): void;
  candidateOutputErrors(
    patches: number,
    count: number,
    stride: number,
    groups: number,
    rows: number,
    bias: number,
    outPerGroup: number,
    targets: number,
    scales: number,
    quantScales: number,
    offsets: number,
    candidates: number,
    rectify: number,
    scratch: number,
    sums: number,
  ): void;
  weightRoundingErrors(
    weights: number,
    channels: number,
    length: number,
    scales: number,
    ratios: number,
    errors: number,
  ): void;
  channelOutputErrors(
    patches: number,
    count: number,
    stride: number,
    groups: number,
    rows: number,
    bias: number,
    channels: number,
    outPerGroup: number,
    targets: number,
    scaleD: number,
    quantScale: number,
    offsetD: number,
    trials: number,
    ratios: number,
    rectify: number,
    scratch: number,
    errors: number,
  ): void;
}

/** IFMR bins (docs/calibration.md step 1). */
export const IFMR_BINS = 128;

/** Most IFMR candidates computed (the defaults give 60). */
const MAX_CANDIDATES = 4096;

/** `values` padded to a multiple of 4 elements by repeating the last (for the 4-lane kernel). */
function padToLanes<T extends Float32Array | Float64Array>(values: T, make: (n: number) => T): T {
  const length = Math.ceil(values.length / 4) * 4;
  if (length === values.length) return values;
  const padded = make(length);
  padded.set(values);
  padded.fill(values[values.length - 1], values.length);
  return padded;
}

function bindKernels(wasm: WasmInstance): CalibrateKernels {
  const kernels = wasm.exports as unknown as CalibrateExports;
  return {
    minMax(values) {
      if (values.length === 0) throw new RangeError("minMax of no values");
      wasm.reset();
      const valuesAt = wasm.copyIn(values);
      const outAt = wasm.alloc(8);
      kernels.minMax(valuesAt, values.length, outAt);
      const [min, max] = wasm.view(Float32Array, outAt, 2);
      return [min, max];
    },

    nonZeroValues(values) {
      wasm.reset();
      const valuesAt = wasm.copyIn(values);
      return wasm.copyOut(Float32Array, valuesAt, kernels.compactNonZero(valuesAt, values.length));
    },

    addToHistogram(values, lo, hi, counts) {
      wasm.reset();
      const valuesAt = wasm.copyIn(values);
      const countsAt = wasm.copyIn(counts);
      kernels.addToHistogram(valuesAt, values.length, lo, hi, counts.length, countsAt);
      counts.set(wasm.view(Float64Array, countsAt, counts.length));
    },

    rebinHistogram(counts, oldLo, oldHi, newLo, newHi) {
      if (!(newLo <= oldLo && oldHi <= newHi)) {
        throw new RangeError(`[${newLo}, ${newHi}] does not hold [${oldLo}, ${oldHi}]`);
      }
      wasm.reset();
      const oldAt = wasm.copyIn(counts);
      const newAt = wasm.copyIn(new Float64Array(counts.length));
      kernels.rebinHistogram(oldAt, oldLo, oldHi, newAt, newLo, newHi, counts.length);
      return wasm.copyOut(Float64Array, newAt, counts.length);
    },

    ifmrCandidates(histogram, n, lo, hi, params) {
      if (histogram.length !== IFMR_BINS) {
        throw new RangeError(`an IFMR histogram has ${IFMR_BINS} bins, not ${histogram.length}`);
      }
      wasm.reset();
      const histogramAt = wasm.copyIn(histogram);
      const outAt = [0, 1, 2].map(() => wasm.alloc(MAX_CANDIDATES * 4));
      const count = kernels.ifmrCandidates(
        histogramAt,
        n,
        lo,
        hi,
        params.maxPercentile,
        params.minPercentile,
        params.searchRange[0],
        params.searchRange[1],
        params.searchStep,
        params.withOffset ? 1 : 0,
        MAX_CANDIDATES,
        outAt[0],
        outAt[1],
        outAt[2],
      );
      const [scaleD, quantScale, offsetD] = outAt.map((at) =>
        wasm.copyOut(Float32Array, at, count)
      );
      return { scaleD, quantScale, offsetD };
    },

    addRoundTripErrors(values, candidates, sums) {
      const count = candidates.scaleD.length;
      if (sums.length !== count) {
        throw new RangeError(`${sums.length} sums for ${count} candidates`);
      }
      if (count === 0 || values.length === 0) return;
      wasm.reset();
      const pad32 = (array: Float32Array) => padToLanes(array, (n) => new Float32Array(n));
      const scalesAt = wasm.copyIn(pad32(candidates.scaleD));
      const quantScalesAt = wasm.copyIn(pad32(candidates.quantScale));
      const offsetsAt = wasm.copyIn(pad32(candidates.offsetD));
      const sumsAt = wasm.copyIn(padToLanes(sums, (n) => new Float64Array(n)));
      const valuesAt = wasm.copyIn(values);
      const nonZero = kernels.compactNonZero(valuesAt, values.length);
      const lanes = Math.ceil(count / 4) * 4;
      kernels.addRoundTripErrors(
        valuesAt,
        nonZero,
        scalesAt,
        quantScalesAt,
        offsetsAt,
        lanes,
        sumsAt,
      );
      sums.set(wasm.view(Float64Array, sumsAt, count));
    },

    leastIndex(sums) {
      if (sums.length === 0) throw new RangeError("leastIndex of no sums");
      wasm.reset();
      return kernels.leastIndex(wasm.copyIn(sums), sums.length);
    },

    hfmgSearch(counts, zero, withOffset) {
      const bins = counts.length;
      if (bins === 0) throw new RangeError("hfmgSearch of no bins");
      wasm.reset();
      const countsAt = wasm.copyIn(counts);
      const scratchAt = wasm.alloc((bins + 1) * 48 + 16);
      const outAt = wasm.alloc(24);
      kernels.hfmgSearch(countsAt, bins, zero, withOffset ? 1 : 0, scratchAt, outAt);
      const [first, last, error] = wasm.view(Float64Array, outAt, 3);
      return { first, last, error };
    },

    gatherPatches(input, shape, window, groupChannels, positions) {
      const [n, channels, height, width] = shape;
      if (input.length !== n * channels * height * width || positions.length % 4 !== 0) {
        throw new RangeError("gatherPatches: input or positions do not fit the shape");
      }
      const count = positions.length / 4;
      const stride = patchStride(groupChannels * window.kernel[0] * window.kernel[1]);
      wasm.reset();
      const inputAt = wasm.copyIn(input);
      const positionsAt = wasm.copyIn(positions);
      const outAt = wasm.alloc(count * stride * 4);
      kernels.gatherPatches(
        inputAt,
        channels,
        height,
        width,
        window.kernel[0],
        window.kernel[1],
        window.stride[0],
        window.stride[1],
        window.pad[0],
        window.pad[1],
        window.dilation[0],
        window.dilation[1],
        groupChannels,
        positionsAt,
        count,
        stride,
        outAt,
      );
      return wasm.copyOut(Float32Array, outAt, count * stride);
    },

    weightRows(weights, channels, scales) {
      const length = channels > 0 ? weights.length / channels : 0;
      if (!Number.isInteger(length) || (scales !== null && scales.length !== channels)) {
        throw new RangeError("weightRows: weights or scales do not fit the channels");
      }
      const stride = patchStride(length);
      wasm.reset();
      const weightsAt = wasm.copyIn(weights);
      const scalesAt = scales === null ? 0 : wasm.copyIn(scales);
      const outAt = wasm.alloc(channels * stride * 4);
      kernels.weightRows(weightsAt, channels, length, scalesAt, stride, outAt);
      return wasm.copyOut(Float32Array, outAt, channels * stride);
    },

    patchOutputs(patches, rows, bias, outPerGroup) {
      const count = patches.groups.length;
      wasm.reset();
      const patchesAt = wasm.copyIn(patches.values);
      const groupsAt = wasm.copyIn(patches.groups);
      const rowsAt = wasm.copyIn(rows);
      const biasAt = bias === null ? 0 : wasm.copyIn(bias);
      const outAt = wasm.alloc(count * outPerGroup * 4);
      kernels.patchOutputs(
        patchesAt,
        count,
        patches.stride,
        groupsAt,
        rowsAt,
        biasAt,
        outPerGroup,
        outAt,
      );
      return wasm.copyOut(Float32Array, outAt, count * outPerGroup);
    },

    candidateOutputErrors(patches, rows, bias, outPerGroup, targets, candidates, rectify) {
      const count = patches.groups.length;
      const candidateCount = candidates.scaleD.length;
      if (targets.length !== count * outPerGroup) {
        throw new RangeError("candidateOutputErrors: targets do not fit the patches");
      }
      wasm.reset();
      const patchesAt = wasm.copyIn(patches.values);
      const groupsAt = wasm.copyIn(patches.groups);
      const rowsAt = wasm.copyIn(rows);
      const biasAt = bias === null ? 0 : wasm.copyIn(bias);
      const targetsAt = wasm.copyIn(targets);
      const scalesAt = wasm.copyIn(candidates.scaleD);
      const quantScalesAt = wasm.copyIn(candidates.quantScale);
      const offsetsAt = wasm.copyIn(candidates.offsetD);
      const scratchAt = wasm.alloc(patches.values.byteLength);
      const sumsAt = wasm.alloc(candidateCount * 8);
      kernels.candidateOutputErrors(
        patchesAt,
        count,
        patches.stride,
        groupsAt,
        rowsAt,
        biasAt,
        outPerGroup,
        targetsAt,
        scalesAt,
        quantScalesAt,
        offsetsAt,
        candidateCount,
        rectify ? 1 : 0,
        scratchAt,
        sumsAt,
      );
      return wasm.copyOut(Float64Array, sumsAt, candidateCount);
    },

    weightRoundingErrors(weights, channels, scales) {
      const length = channels > 0 ? weights.length / channels : 0;
      const ratios = channels > 0 ? scales.length / channels : 0;
      if (!Number.isInteger(length) || !Number.isInteger(ratios)) {
        throw new RangeError("weightRoundingErrors: weights or scales do not fit the channels");
      }
      wasm.reset();
      const weightsAt = wasm.copyIn(weights);
      const scalesAt = wasm.copyIn(scales);
      const errorsAt = wasm.alloc(scales.length * 8);
      kernels.weightRoundingErrors(weightsAt, channels, length, scalesAt, ratios, errorsAt);
      return wasm.copyOut(Float64Array, errorsAt, scales.length);
    },

    channelOutputErrors(patches, rows, bias, outPerGroup, targets, factors, trials, rectify) {
      const count = patches.groups.length;
      const channels = rows.length / patches.stride;
      const ratios = trials.length / channels;
      if (!Number.isInteger(channels) || !Number.isInteger(ratios)) {
        throw new RangeError("channelOutputErrors: rows or trials do not fit the patches");
      }
      wasm.reset();
      const patchesAt = wasm.copyIn(patches.values);
      const groupsAt = wasm.copyIn(patches.groups);
      const rowsAt = wasm.copyIn(rows);
      const biasAt = bias === null ? 0 : wasm.copyIn(bias);
      const targetsAt = wasm.copyIn(targets);
      const trialsAt = wasm.copyIn(trials);
      const scratchAt = wasm.alloc((count + 1) * patches.stride * 4);
      const errorsAt = wasm.alloc(trials.length * 8);
      const scaleD = Math.fround(factors.scaleD);
      kernels.channelOutputErrors(
        patchesAt,
        count,
        patches.stride,
        groupsAt,
        rowsAt,
        biasAt,
        channels,
        outPerGroup,
        targetsAt,
        scaleD,
        Math.fround(1 / scaleD),
        factors.offsetD,
        trialsAt,
        ratios,
        rectify ? 1 : 0,
        scratchAt,
        errorsAt,
      );
      return wasm.copyOut(Float64Array, errorsAt, trials.length);
    },
  };
}

/** The calibration kernels, instantiated once (later calls share the instance). */
export const calibrateKernels: () => Promise<CalibrateKernels> = onceLoader(
  async () => (await import("./calibrate.generated.ts")).wasmBase64,
  bindKernels,
);
