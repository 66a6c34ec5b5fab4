/**
 * The search (ours; docs/calibration.md "The search"): activation factors and weight scales
 * chosen by the error of the quantized layer's *output* against the float layer's.
 *
 * 1. While the data passes, each Convolution/InnerProduct reading the blob keeps a seeded uniform
 *    sample (a reservoir) of its input patches: at most {@linkcode MAX_PATCH_VALUES} values and
 *    {@linkcode MAX_CANDIDATE_WORK} multiply-adds per candidate. IFMR runs beside it unchanged.
 * 2. Candidates: IFMR's choice, then the factors of the clip ranges [min·b, max·t] for t in
 *    {@linkcode TOP_RATIOS} and b in {@linkcode BOTTOM_RATIOS} (t = b = 1 is min/max). Each is
 *    scored by Σ (y(x̂, ŵ) − y(x, w))² over the sampled outputs of every reader: x̂ the SPEC §4
 *    round trip of the input, ŵ the weights fake-quantized with the scales of least rounding
 *    error, y(x, w) the float layer. Around the best: scale_d × {@linkcode REFINE_FACTORS}, and
 *    offset_d ± 1. The least error wins (ties: the earlier candidate).
 * 3. Weights: per output channel (or per tensor), the trial scale_w = f32(max|W'|/127 · r),
 *    r = 1, 0.99, …, 0.5, of least output error for the chosen factors (rows without samples:
 *    of least rounding error Σ (ŵ − w)²), never below ARQ's bias floor |b'|/(scale_d · 2^30), so
 *    the int32 bias of SPEC §4 cannot overflow.
 * 4. IFMR's factors with their own best weight scales compete once more with the winner; the
 *    lower output error is kept, so the search's error on the samples never exceeds IFMR's.
 * 5. calibrate() then runs the net quantized with these choices over the data once more, and
 *    steps 2 and 4 run again on each layer's input as that fake-quant net computes it (the
 *    errors of the layers before it included), against the same float outputs; weight scales
 *    stay chosen on the float inputs.
 *
 * @module
 */

import { groupCount, numberParam } from "../caffe/layers.ts";
import type { Layer, Net } from "../caffe/net.ts";
import { convolutionWindow } from "../engine/conv.ts";
import { unitGenerator } from "../random.ts";
import { floatData } from "../quant/blobs.ts";
import { withNormalDequant } from "../quant/make_record.ts";
import {
  type CalibrateKernels,
  type IfmrCandidates,
  type LayerPatches,
  patchStride,
  type PatchWindow,
} from "../wasm/calibrate.ts";
import {
  type ActivationCollector,
  type ActivationResult,
  clipFactors,
  clipOf,
} from "./activation.ts";

/** A layer whose output the search measures: a Convolution or InnerProduct with weights. */
export interface SearchReader {
  /** The (fused) layer. */
  layer: Layer;
  /** One scale_w for the whole tensor (InnerProduct, `channel_wise: false`). */
  perTensor: boolean;
  /** Whether only ReLUs read the output (its errors below 0 then vanish). */
  rectified: boolean;
}

/**
 * Whether only ReLUs (negative slope 0) read `layer`'s top after it: every layer reading it is
 * one, up to one that computes in place (later readers see the rectified value) or another
 * writer of the blob.
 */
export function rectifiedOutput(net: Net, layer: Layer): boolean {
  const top = layer.tops[0];
  let readers = 0;
  for (const later of net.layers.slice(net.layers.indexOf(layer) + 1)) {
    if (!later.bottoms.includes(top)) {
      if (later.tops.includes(top)) break;
      continue;
    }
    const relu = later.type === "ReLU" &&
      numberParam(later, "relu_param", "negative_slope", 0) === 0;
    if (!relu) return false;
    readers++;
    if (later.tops[0] === top) break;
  }
  return readers > 0;
}

/** Whether the search can measure `layer`'s output (a Convolution or InnerProduct with weights). */
export function searchMeasures(layer: Layer): boolean {
  return (layer.type === "Convolution" || layer.type === "InnerProduct") &&
    layer.blobs.length > 0;
}

/** Most input-patch values a reader keeps (4 MiB of float32). */
export const MAX_PATCH_VALUES = 2 ** 20;
/** Most multiply-adds of one candidate's evaluation on one reader's patches. */
export const MAX_CANDIDATE_WORK = 2 ** 23;
/** Most patches a reader keeps. */
const MAX_PATCHES = 4096;
/** Fewest patches a reader keeps, whatever the limits above give. */
const MIN_PATCHES = 16;

/** The clip ratios of the top of the activation range. */
const TOP_RATIOS = [1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.42, 0.35, 0.3, 0.25, 0.2, 0.15, 0.1];
/** The clip ratios of the bottom (when the range is below 0). */
const BOTTOM_RATIOS = [1, 0.75, 0.5];
/** Scale factors tried around the best candidate (offset_d kept), then offset_d ± 1. */
const REFINE_FACTORS = [0.94, 0.97, 1.03, 1.06];
/** The weight clip ratios: 1, 0.99, …, 0.5 of max|W'|/127. */
const WEIGHT_RATIOS = Array.from({ length: 51 }, (_, i) => (100 - i) / 100);
/** ARQ's bias limit (docs/math.md): scale_w ≥ |b'| / (scale_d · 2^30). */
const BIAS_LIMIT = 2 ** 30;

/** How one reader's input patches are cut out of a batch. */
interface PatchGeometry {
  window: PatchWindow;
  groups: number;
  groupChannels: number;
  outPerGroup: number;
  outHeight: number;
  outWidth: number;
  /** The batch shape handed to the gather kernel ([N, K, 1, 1] for InnerProduct). */
  shape: [number, number, number, number];
}

/** The patch geometry of `layer` on an input of `shape`. */
function patchGeometry(layer: Layer, shape: readonly number[]): PatchGeometry {
  const outputs = layer.blobs[0].shape[0];
  if (layer.type === "InnerProduct") {
    const inner = shape.slice(1).reduce((product, size) => product * size, 1);
    const one: [number, number] = [1, 1];
    return {
      window: { kernel: one, pad: [0, 0], stride: one, dilation: one },
      groups: 1,
      groupChannels: inner,
      outPerGroup: outputs,
      outHeight: 1,
      outWidth: 1,
      shape: [shape[0], inner, 1, 1],
    };
  }
  const [n, channels, height, width] = [shape[0], shape[1], shape[2] ?? 1, shape[3] ?? 1];
  const window = convolutionWindow(layer);
  const groups = groupCount(layer);
  const extent = (size: number, axis: 0 | 1) =>
    Math.floor(
      (size + 2 * window.pad[axis] - (window.dilation[axis] * (window.kernel[axis] - 1) + 1)) /
        window.stride[axis],
    ) + 1;
  return {
    window,
    groups,
    groupChannels: channels / groups,
    outPerGroup: outputs / groups,
    outHeight: Math.max(0, extent(height, 0)),
    outWidth: Math.max(0, extent(width, 1)),
    shape: [n, channels, height, width],
  };
}

/**
 * A seeded uniform sample of a stream of items (Li's "Algorithm L"): which items to keep and in
 * which slot, without a random draw per item.
 */
class Reservoir {
  seen = 0;
  readonly #random: () => number;
  #weight = 0;
  #next = 0;

  constructor(readonly capacity: number, seed: number) {
    const unit = unitGenerator(seed);
    this.#random = () => (unit() * 4294967296 + 0.5) / 4294967296;
    this.#weight = Math.exp(Math.log(this.#random()) / capacity);
    this.#next = capacity + this.#skip();
  }

  #skip(): number {
    return Math.floor(Math.log(this.#random()) / Math.log(1 - this.#weight));
  }

  /** The next `count` items: [index in them, slot] of each kept one, in order. */
  offer(count: number): [number, number][] {
    const kept: [number, number][] = [];
    const end = this.seen + count;
    for (let item = this.seen; item < Math.min(end, this.capacity); item++) {
      kept.push([item - this.seen, item]);
    }
    while (this.#next < end) {
      const slot = Math.floor(this.#random() * this.capacity);
      kept.push([this.#next - this.seen, slot]);
      this.#weight *= Math.exp(Math.log(this.#random()) / this.capacity);
      this.#next += this.#skip() + 1;
    }
    this.seen = end;
    return kept;
  }
}

/** One reader's sampled input patches, filled batch by batch. */
class PatchSample {
  #geometry: PatchGeometry | undefined;
  #reservoir: Reservoir | undefined;
  #values: Float32Array | undefined;
  #groups: Int32Array | undefined;
  #stride = 0;

  constructor(
    readonly kernels: CalibrateKernels,
    readonly reader: SearchReader,
    readonly seed: number,
  ) {}

  /** Offers the patches of one batch (values of `shape`) to the sample. */
  add(values: Float32Array, shape: readonly number[]): void {
    const geometry = patchGeometry(this.reader.layer, shape);
    this.#geometry ??= geometry;
    const { window, groups, groupChannels, outPerGroup, outHeight, outWidth } = geometry;
    if (this.#reservoir === undefined) {
      this.#stride = patchStride(groupChannels * window.kernel[0] * window.kernel[1]);
      const capacity = Math.max(
        MIN_PATCHES,
        Math.min(
          MAX_PATCHES,
          Math.floor(MAX_PATCH_VALUES / this.#stride),
          Math.floor(MAX_CANDIDATE_WORK / (this.#stride * outPerGroup)),
        ),
      );
      this.#reservoir = new Reservoir(capacity, this.seed);
      this.#values = new Float32Array(capacity * this.#stride);
      this.#groups = new Int32Array(capacity);
    }
    const perSample = groups * outHeight * outWidth;
    const kept = this.#reservoir.offer(geometry.shape[0] * perSample);
    if (kept.length === 0) return;
    const positions = new Int32Array(kept.length * 4);
    kept.forEach(([index], i) => {
      const n = Math.floor(index / perSample);
      const rest = index - n * perSample;
      const g = Math.floor(rest / (outHeight * outWidth));
      const spatial = rest - g * outHeight * outWidth;
      positions.set([n, g, Math.floor(spatial / outWidth), spatial % outWidth], i * 4);
    });
    const patches = this.kernels.gatherPatches(
      values,
      geometry.shape,
      window,
      groupChannels,
      positions,
    );
    kept.forEach(([, slot], i) => {
      const at = i * this.#stride;
      this.#values!.set(patches.subarray(at, at + this.#stride), slot * this.#stride);
      this.#groups![slot] = positions[i * 4 + 1];
    });
  }

  /** The patches kept, or undefined when none. */
  patches(): { patches: LayerPatches; outPerGroup: number } | undefined {
    const count = Math.min(this.#reservoir?.seen ?? 0, this.#reservoir?.capacity ?? 0);
    if (count === 0) return undefined;
    return {
      patches: {
        values: this.#values!.subarray(0, count * this.#stride),
        stride: this.#stride,
        groups: this.#groups!.subarray(0, count),
      },
      outPerGroup: this.#geometry!.outPerGroup,
    };
  }
}

/**
 * The weight-scale choices of one layer: trial scales f32(max|W'|/127 · r) per output channel
 * (the tensor's max|W'| on every row when per tensor) and their rounding errors;
 * {@linkcode WeightSearch.scales} picks, for a given scale_d, the least error above the bias floor.
 */
export class WeightSearch {
  /** The (fused) weights, one row per output channel. */
  readonly weights: Float32Array;
  /** The (fused) bias, or null. */
  readonly bias: Float32Array | null;
  /** Output channels. */
  readonly channels: number;
  /** Trial scales, channels × {@linkcode WEIGHT_RATIOS} (float32). */
  readonly trials: Float32Array;
  /** Each trial's Σ (ŵ − w)² over its channel. */
  readonly roundingErrors: Float64Array;
  /** max|W'| of each row (of the tensor when per tensor). */
  readonly #tops: number[];

  constructor(kernels: CalibrateKernels, layer: Layer, readonly perTensor: boolean) {
    this.weights = floatData(layer, 0);
    this.bias = layer.blobs.length > 1 ? floatData(layer, 1) : null;
    this.channels = layer.blobs[0].shape[0];
    const length = this.weights.length / this.channels;
    const ratios = WEIGHT_RATIOS.length;
    const channelMax = new Float64Array(this.channels);
    for (let c = 0; c < this.channels; c++) {
      const [low, high] = kernels.minMax(this.weights.subarray(c * length, (c + 1) * length));
      channelMax[c] = Math.max(-low, high);
    }
    const tensorMax = channelMax.reduce((largest, value) => Math.max(largest, value), 0);
    this.#tops = perTensor ? [tensorMax] : [...channelMax];
    this.trials = new Float32Array(this.channels * ratios);
    for (let c = 0; c < this.channels; c++) {
      const top = perTensor ? tensorMax : channelMax[c];
      WEIGHT_RATIOS.forEach((ratio, r) => {
        this.trials[c * ratios + r] = top > 0 ? Math.fround(top / 127 * ratio) : 1;
      });
    }
    this.roundingErrors = kernels.weightRoundingErrors(this.weights, this.channels, this.trials);
  }

  /**
   * scale_w of each output channel (one when per tensor) for `scaleD`: the trial of least error
   * (`errors`, one per trial; summed over channels when per tensor) among those at or above the
   * bias floor f32(|b'|/(scale_d·2^30)) (the floor itself when none is, or when the weights are
   * all 0), 1 when that is 0; raised so that the dequant scale is a normal float32 (as ARQ's).
   * Ties go to the larger trial.
   */
  scales(scaleD: number, errors: Float64Array = this.roundingErrors): number[] {
    const ratios = WEIGHT_RATIOS.length;
    const floors = Array.from(
      { length: this.channels },
      (_, c) =>
        this.bias === null ? 0 : Math.fround(Math.abs(this.bias[c]) / (scaleD * BIAS_LIMIT)),
    );
    let rowErrors = errors;
    if (this.perTensor) {
      rowErrors = new Float64Array(ratios);
      for (let c = 0; c < this.channels; c++) {
        for (let r = 0; r < ratios; r++) rowErrors[r] += errors[c * ratios + r];
      }
    }
    const rows = this.perTensor ? [Math.max(0, ...floors)] : floors;
    return rows.map((floor, row) => {
      let best = -1;
      for (let r = 0; r < ratios; r++) {
        const index = row * ratios + r;
        if (this.trials[index] < floor) continue;
        if (best < 0 || rowErrors[index] < rowErrors[best]) best = index;
      }
      const chosen = this.#tops[row] === 0 || best < 0 ? floor : this.trials[best];
      return withNormalDequant(chosen === 0 ? 1 : chosen, scaleD);
    });
  }
}

/** Factors to try, deduplicated, in order (scale_d float32, offset_d). */
class CandidateList {
  readonly scaleD: number[] = [];
  readonly offsetD: number[] = [];
  readonly #seen = new Set<string>();

  add(scaleD: number, offsetD: number): void {
    const scale = Math.fround(scaleD);
    const offset = Math.min(127, Math.max(-128, offsetD));
    const key = `${scale} ${offset}`;
    if (!(scale > 0) || !Number.isFinite(1 / scale) || this.#seen.has(key)) return;
    this.#seen.add(key);
    this.scaleD.push(scale);
    this.offsetD.push(offset);
  }

  /** As the kernels take them. */
  arrays(from = 0): IfmrCandidates {
    const scaleD = Float32Array.from(this.scaleD.slice(from));
    return {
      scaleD,
      quantScale: scaleD.map((scale) => Math.fround(1 / scale)),
      offsetD: Float32Array.from(this.offsetD.slice(from)),
    };
  }
}

/** One reader ready to score candidates. */
interface ScoredReader {
  /** The reader's index. */
  index: number;
  /** The input patches that candidates round-trip. */
  patches: LayerPatches;
  outPerGroup: number;
  /** The float layer's outputs at the patches' positions, from the float net's input. */
  targets: Float32Array;
  /** The weights as they are, in rows. */
  floatRows: Float32Array;
  /** Fake-quant weight rows, for scoring activation candidates. */
  rows: Float32Array;
  bias: Float32Array | null;
  /** Errors after a ReLU (see {@linkcode SearchReader.rectified}). */
  rectified: boolean;
}

/** The outcome of the search for a blob: activation factors and every reader's scale_w. */
export interface SearchResult extends ActivationResult {
  /** scale_w of each reader, by layer name. */
  weightScales: Map<string, number[]>;
}

/**
 * The search's collector of one blob: IFMR (`ifmr`, a collector made with the same settings)
 * runs unchanged, and every reader samples its input patches during the first pass. After a
 * first choice, {@linkcode SearchCollector.addQuantized} can take the blob as the fake-quant net
 * of that choice computes it (every layer before quantized); {@linkcode SearchCollector.refine}
 * then chooses again on those inputs, against the same float outputs.
 */
export class SearchCollector implements ActivationCollector {
  readonly #samples: PatchSample[];
  #quantized: PatchSample[] | undefined;
  #weights: WeightSearch[] | undefined;
  #targets = new Map<number, Float32Array>();
  #result: SearchResult | undefined;

  constructor(
    readonly kernels: CalibrateKernels,
    readonly ifmr: ActivationCollector,
    readonly readers: SearchReader[],
    readonly withOffset: boolean,
  ) {
    this.#samples = this.#newSamples();
  }

  /** Patch samples of every reader, seeded so that the same data gives the same positions. */
  #newSamples(): PatchSample[] {
    return this.readers.map((reader, i) => new PatchSample(this.kernels, reader, 0x5eed + i));
  }

  needsPass(pass: number): boolean {
    return this.ifmr.needsPass(pass);
  }

  add(pass: number, values: Float32Array, shape: readonly number[]): void {
    this.ifmr.add(pass, values, shape);
    if (pass === 0) { for (const sample of this.#samples) sample.add(values, shape); }
  }

  endPass(pass: number): void {
    this.ifmr.endPass(pass);
  }

  seen(): { min: number; max: number; count: number } {
    return this.ifmr.seen();
  }

  /** A batch of the blob as the fake-quant net computes it (same samples, same order). */
  addQuantized(values: Float32Array, shape: readonly number[]): void {
    this.#quantized ??= this.#newSamples();
    for (const sample of this.#quantized) sample.add(values, shape);
  }

  /** Chooses again, on the inputs {@linkcode SearchCollector.addQuantized} took. */
  refine(): void {
    this.#result = this.#search(this.#quantized);
  }

  result(): SearchResult {
    this.#result ??= this.#search();
    return this.#result;
  }

  #search(inputs?: PatchSample[]): SearchResult {
    const ifmr = this.ifmr.result();
    const { min, max } = ifmr;
    const candidates = new CandidateList();
    candidates.add(ifmr.scaleD, ifmr.offsetD);
    const bottoms = this.withOffset && min < 0 ? BOTTOM_RATIOS : [1];
    for (const top of TOP_RATIOS) {
      for (const bottom of bottoms) {
        const { scaleD, offsetD } = clipFactors(min * bottom, max * top, this.withOffset);
        candidates.add(scaleD, offsetD);
      }
    }
    const floorScale = Math.min(...candidates.scaleD) * Math.min(...REFINE_FACTORS);
    const weights = this.#weights ??= this.readers.map((reader) =>
      new WeightSearch(this.kernels, reader.layer, reader.perTensor)
    );
    const scored = this.#scoredReaders(weights, floorScale, inputs);
    let chosen = { scaleD: ifmr.scaleD, offsetD: ifmr.offsetD };
    if (scored.length > 0) {
      const errors = this.#errors(scored, candidates.arrays());
      const best = this.kernels.leastIndex(errors);
      const first = candidates.scaleD.length;
      const [scale, offset] = [candidates.scaleD[best], candidates.offsetD[best]];
      for (const factor of REFINE_FACTORS) candidates.add(scale * factor, offset);
      if (this.withOffset) {
        candidates.add(scale, offset - 1);
        candidates.add(scale, offset + 1);
      }
      const refined = this.#errors(scored, candidates.arrays(first));
      const winner = this.kernels.leastIndex(Float64Array.from([...errors, ...refined]));
      chosen = { scaleD: candidates.scaleD[winner], offsetD: candidates.offsetD[winner] };
    }
    // Weight scales are chosen on the float net's inputs: chosen on the fake-quant net's, each
    // layer would also make up for its inputs' error, which the layers before it already reduce
    // in the same refinement (measured: worse).
    const weightInputs = inputs === undefined ? scored : this.#scoredReaders(weights, floorScale);
    const ifmrFactors = { scaleD: ifmr.scaleD, offsetD: ifmr.offsetD };
    const same = chosen.scaleD === ifmr.scaleD && chosen.offsetD === ifmr.offsetD;
    let best: { factors: typeof chosen; scales: number[][]; error: number } | undefined;
    for (const factors of same ? [chosen] : [chosen, ifmrFactors]) {
      const scales = this.#weightScales(weights, weightInputs, factors);
      const error = scored.reduce(
        (sum, reader) => sum + this.#outputError(reader, weights[reader.index], scales, factors),
        0,
      );
      if (best === undefined || error < best.error) best = { factors, scales, error };
    }
    const { factors, scales } = best!;
    return {
      ...ifmr,
      ...factors,
      clip: clipOf(factors.scaleD, factors.offsetD),
      weightScales: new Map(this.readers.map((reader, i) => [reader.layer.name, scales[i]])),
    };
  }

  /**
   * Every reader's scale_w for activation `factors`: per channel, the trial of least output error
   * on `measured` (readers without patches: of least rounding error).
   */
  #weightScales(
    weights: WeightSearch[],
    measured: ScoredReader[],
    factors: { scaleD: number; offsetD: number },
  ): number[][] {
    const errors = new Map(measured.map((reader) => [
      reader.index,
      this.kernels.channelOutputErrors(
        reader.patches,
        reader.floatRows,
        reader.bias,
        reader.outPerGroup,
        reader.targets,
        factors,
        weights[reader.index].trials,
        reader.rectified,
      ),
    ]));
    return weights.map((search, i) => search.scales(factors.scaleD, errors.get(i)));
  }

  /** A reader's output error with activation `factors` and the weight `scales` of every reader. */
  #outputError(
    reader: ScoredReader,
    weights: WeightSearch,
    scales: number[][],
    factors: { scaleD: number; offsetD: number },
  ): number {
    const chosen = scales[reader.index];
    const rowScales = Float32Array.from(
      { length: weights.channels },
      (_, c) => chosen[c] ?? chosen[0],
    );
    const rows = this.kernels.weightRows(weights.weights, weights.channels, rowScales);
    const scaleD = Float32Array.of(factors.scaleD);
    return this.kernels.candidateOutputErrors(
      reader.patches,
      rows,
      reader.bias,
      reader.outPerGroup,
      reader.targets,
      {
        scaleD,
        quantScale: scaleD.map((scale) => Math.fround(1 / scale)),
        offsetD: Float32Array.of(factors.offsetD),
      },
      reader.rectified,
    )[0];
  }

  /**
   * The readers with patches: their input patches (those of `inputs` when given and at the same
   * positions), their float outputs from the float net's patches, and fake-quant weight rows
   * with the scales chosen for `floorScale`, the smallest scale_d tried (its bias floor holds
   * for every candidate).
   */
  #scoredReaders(
    weightSearches: WeightSearch[],
    floorScale: number,
    inputs?: PatchSample[],
  ): ScoredReader[] {
    const scored: ScoredReader[] = [];
    for (const [index, sample] of this.#samples.entries()) {
      const kept = sample.patches();
      if (kept === undefined) continue;
      const reader = this.readers[index];
      const weights = weightSearches[index];
      const floatRows = this.kernels.weightRows(weights.weights, weights.channels, null);
      let targets = this.#targets.get(index);
      if (targets === undefined) {
        targets = this.kernels.patchOutputs(
          kept.patches,
          floatRows,
          weights.bias,
          kept.outPerGroup,
        );
        this.#targets.set(index, targets);
      }
      const input = inputs?.[index].patches();
      const samePositions = input !== undefined &&
        input.patches.values.length === kept.patches.values.length;
      const perRow = weights.scales(floorScale);
      const rowScales = Float32Array.from(
        { length: weights.channels },
        (_, c) => perRow[reader.perTensor ? 0 : c],
      );
      scored.push({
        index,
        patches: samePositions ? input.patches : kept.patches,
        outPerGroup: kept.outPerGroup,
        targets,
        floatRows,
        rows: this.kernels.weightRows(weights.weights, weights.channels, rowScales),
        bias: weights.bias,
        rectified: reader.rectified,
      });
    }
    return scored;
  }

  /** Σ over readers of each candidate's output error. */
  #errors(scored: ScoredReader[], candidates: IfmrCandidates): Float64Array {
    const sums = new Float64Array(candidates.scaleD.length);
    for (const reader of scored) {
      const errors = this.kernels.candidateOutputErrors(
        reader.patches,
        reader.rows,
        reader.bias,
        reader.outPerGroup,
        reader.targets,
        candidates,
        reader.rectified,
      );
      errors.forEach((error, i) => sums[i] += error);
    }
    return sums;
  }
}
