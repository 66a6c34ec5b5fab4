// Quantization kernels (SPEC §3, §4, §9), compiled to WebAssembly by scripts/build_wasm.ts.
//
// Every export works on data that the caller (src/wasm/quant.ts) has copied into scratch memory;
// arguments are byte offsets into linear memory. These kernels never allocate: the caller owns
// all memory above the module's initial size (see src/wasm/load.ts).
//
// A weight tensor is viewed as rows: [outer, mid] rows of `inner` contiguous elements, and every
// element of a row belongs to the same output channel:
//   channelAxis 0 (Convolution, InnerProduct): channel = outer index (mid is 1);
//   channelAxis 1 (Deconvolution [C_in, C_out/G, kh, kw]):
//     channel = floor(outer index / (outer / groups)) * mid + mid index.
// The weight kernels work on a range of a tensor held in scratch memory: `count` elements that
// start at element `rowOffset` of row `firstRow`, so a caller can stream a tensor of any size
// through a bounded buffer. Each range is walked as row segments; every segment has one channel.
// A per-channel factor array with stride 0 is a per-tensor factor (one value for all channels).
//
// The small helpers carry no @inline (deno fmt drops decorators on functions); binaryen's -O3
// inlines every one of them, so the module exports only the kernels.

import { fakeQuantize } from "./engine/quant";

/** The output channel of row `row` of a weight tensor (see the header). */
function rowChannel(row: i32, mid: i32, channelAxis: i32, outerPerGroup: i32): i32 {
  const outerIndex = row / mid;
  if (channelAxis == 0) return outerIndex;
  return (outerIndex / outerPerGroup) * mid + (row - outerIndex * mid);
}

/** The address of a row segment's per-channel entry (see forEachSegment). */
type SegmentOp = (source: usize, target: usize, count: i32, entry: usize) => void;

/**
 * Walks a range of a tensor (see the header) as row segments and calls `segment` on each with
 * its source and target addresses (advancing `count << sourceShift` and `count << targetShift`
 * bytes per segment), its length, and the address of its channel's entry in `table`:
 * `table + ((channel * tableStride) << tableShift)`.
 */
function forEachSegment(
  segment: SegmentOp,
  source: usize,
  sourceShift: i32,
  target: usize,
  targetShift: i32,
  count: i32,
  firstRow: i32,
  rowOffset: i32,
  inner: i32,
  mid: i32,
  channelAxis: i32,
  outerPerGroup: i32,
  table: usize,
  tableStride: i32,
  tableShift: i32,
): void {
  let row = firstRow;
  let offset = rowOffset;
  let left = count;
  while (left > 0) {
    const length = min(inner - offset, left);
    const channel = rowChannel(row, mid, channelAxis, outerPerGroup);
    segment(source, target, length, table + ((<usize> (channel * tableStride)) << tableShift));
    source += <usize> length << sourceShift;
    target += <usize> length << targetShift;
    left -= length;
    row++;
    offset = 0;
  }
}

/**
 * 1.5 * 2^23: for |x| <= 2^22, f32(x + ROUND_MAGIC) is ROUND_MAGIC + rint(x) exactly (the float32
 * addition rounds half to even at unit spacing), and its bits are ROUND_MAGIC_BITS + rint(x).
 */
const ROUND_MAGIC: f32 = 12582912.0;
const ROUND_MAGIC_BITS: i32 = 0x4b400000;

/**
 * Lanes clamped to [low, high] with pseudo-min/max (cheap on every CPU; a NaN lane stays NaN),
 * then rounded half to even and offset by ROUND_MAGIC. Clamping before rounding equals rounding
 * before clamping because the bounds are integers.
 */
function clampRoundLanes(values: v128, low: v128, high: v128): v128 {
  return f32x4.add(f32x4.pmin(f32x4.pmax(values, low), high), f32x4.splat(ROUND_MAGIC));
}

/** The integers of lanes made by clampRoundLanes, as i32x4. */
function magicToInt(rounded: v128): v128 {
  return i32x4.sub(rounded, i32x4.splat(ROUND_MAGIC_BITS));
}

/** w_q + ROUND_MAGIC of four lanes: clamp(rint(f32(w / scale)), -128, 127). */
function quantizeLanes(weights: v128, scale: v128): v128 {
  return clampRoundLanes(f32x4.div(weights, scale), f32x4.splat(-128), f32x4.splat(127));
}

/** Saturating narrowing of four quantizeLanes results to sixteen int8 lanes. */
function narrowToBytes(q0: v128, q1: v128, q2: v128, q3: v128): v128 {
  const low = i16x8.narrow_i32x4_s(magicToInt(q0), magicToInt(q1));
  return i8x16.narrow_i16x8_s(low, i16x8.narrow_i32x4_s(magicToInt(q2), magicToInt(q3)));
}

/** The number of lanes of `bytes` equal to 0 (`zeros`) or to 127 or -128 (`extremes`) in `lanes`. */
function countLanes(bytes: v128, lanes: i32): void {
  const zero = i8x16.bitmask(i8x16.eq(bytes, i8x16.splat(0)));
  const extreme = i8x16.bitmask(
    v128.or(i8x16.eq(bytes, i8x16.splat(127)), i8x16.eq(bytes, i8x16.splat(-128))),
  );
  rangeZeros += popcnt<i32>(zero & lanes);
  segmentExtremes += popcnt<i32>(extreme & lanes);
}

/** |w| lanes of four vectors folded into one by lane-wise maximum. */
function maxAbsLanes(w0: v128, w1: v128, w2: v128, w3: v128): v128 {
  return f32x4.max(
    f32x4.max(f32x4.abs(w0), f32x4.abs(w1)),
    f32x4.max(f32x4.abs(w2), f32x4.abs(w3)),
  );
}

/** Zero weights counted by quantizeRange so far in the current call. */
let rangeZeros: i32 = 0;
/** Weights at 127 or -128 counted in the current segment. */
let segmentExtremes: i32 = 0;

/**
 * SPEC §4 quantization of `count` contiguous weights of one channel (see quantizeRange); returns
 * the largest |w| of the segment and counts its w_q at 0 and at 127 / -128 (countLanes).
 */
function quantizeSegment(source: usize, target: usize, count: i32, scale: v128): f32 {
  let left = count;
  let largest = f32x4.splat(0);
  segmentExtremes = 0;
  for (; left >= 16; left -= 16) {
    const w0 = v128.load(source);
    const w1 = v128.load(source, 16);
    const w2 = v128.load(source, 32);
    const w3 = v128.load(source, 48);
    largest = f32x4.max(largest, maxAbsLanes(w0, w1, w2, w3));
    const bytes = narrowToBytes(
      quantizeLanes(w0, scale),
      quantizeLanes(w1, scale),
      quantizeLanes(w2, scale),
      quantizeLanes(w3, scale),
    );
    v128.store(target, bytes);
    countLanes(bytes, 0xffff);
    source += 64;
    target += 16;
  }
  for (; left >= 4; left -= 4) {
    const w = v128.load(source);
    largest = f32x4.max(largest, f32x4.abs(w));
    const q = quantizeLanes(w, scale);
    const bytes = narrowToBytes(q, q, q, q);
    v128.store32_lane(target, bytes, 0);
    countLanes(bytes, 0xf);
    source += 16;
    target += 4;
  }
  for (; left > 0; left--) {
    const w = f32x4.splat(load<f32>(source));
    largest = f32x4.max(largest, f32x4.abs(w));
    const q = quantizeLanes(w, scale);
    const bytes = narrowToBytes(q, q, q, q);
    v128.store8_lane(target, bytes, 0);
    countLanes(bytes, 1);
    source += 4;
    target += 1;
  }
  return max(
    max(f32x4.extract_lane(largest, 0), f32x4.extract_lane(largest, 1)),
    max(f32x4.extract_lane(largest, 2), f32x4.extract_lane(largest, 3)),
  );
}

/** quantizeRange's per-channel arrays for the current call (see quantizeRange). */
let rangeScales: usize = 0;
let rangeScaleStride: i32 = 0;
let rangeChannelMax: usize = 0;
let rangeExtremes: usize = 0;

/**
 * SPEC §4 weight quantization of a range of a tensor (see the header): writes the w_q bytes of
 * `weights` to `weightsInt8` (dequantizeRange makes w_fake from them). `scaleW` holds float32
 * scales read with `scaleStride` (0 or 1) per channel. Weights must be finite: the caller checks
 * each range with firstNonFinite first. As it goes it raises `channelMax[c]` (float32) to the
 * largest |w| of channel c, adds to `extremes[c]` (int32) the number of w_q at 127 or -128, and
 * returns the number of w_q equal to 0 (the caller zeroes both arrays before the first range).
 */
export function quantizeRange(
  weights: usize,
  weightsInt8: usize,
  count: i32,
  firstRow: i32,
  rowOffset: i32,
  inner: i32,
  mid: i32,
  channelAxis: i32,
  outerPerGroup: i32,
  scaleW: usize,
  scaleStride: i32,
  channelMax: usize,
  extremes: usize,
): i32 {
  rangeScales = scaleW;
  rangeScaleStride = scaleStride;
  rangeChannelMax = channelMax;
  rangeExtremes = extremes;
  rangeZeros = 0;
  // The table is the channel index itself (entry = channel): the segment finds its arrays.
  const segment: SegmentOp = (source, target, length, channel) => {
    const scale = v128.load_splat<f32>(rangeScales + (<usize> (<i32> channel * rangeScaleStride) << 2));
    const largest = quantizeSegment(source, target, length, scale);
    const maxAt = rangeChannelMax + (channel << 2);
    store<f32>(maxAt, max(load<f32>(maxAt), largest));
    const extremesAt = rangeExtremes + (channel << 2);
    store<i32>(extremesAt, load<i32>(extremesAt) + segmentExtremes);
  };
  forEachSegment(segment, weights, 2, weightsInt8, 0, count, firstRow, rowOffset, inner, mid,
    channelAxis, outerPerGroup, 0, 1, 0);
  return rangeZeros;
}

/** w_fake = f32(w_q * scale) of `count` contiguous int8 weights of one channel, to float32. */
function dequantizeSegment(source: usize, target: usize, count: i32, scale: v128): void {
  let left = count;
  for (; left >= 16; left -= 16) {
    const bytes = v128.load(source);
    const low = i16x8.extend_low_i8x16_s(bytes);
    const high = i16x8.extend_high_i8x16_s(bytes);
    const q0 = f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(low));
    const q1 = f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(low));
    const q2 = f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(high));
    const q3 = f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(high));
    v128.store(target, f32x4.mul(q0, scale));
    v128.store(target, f32x4.mul(q1, scale), 16);
    v128.store(target, f32x4.mul(q2, scale), 32);
    v128.store(target, f32x4.mul(q3, scale), 48);
    source += 16;
    target += 64;
  }
  const scalar = f32x4.extract_lane(scale, 0);
  for (; left > 0; left--) {
    store<f32>(target, <f32> load<i8>(source) * scalar);
    source += 1;
    target += 4;
  }
}

/**
 * SPEC §4 fake-quant weights from quantized ones, over a range of a tensor (see the header):
 * w_fake = f32(w_q * scale_w[c]) from the int8 `weightsInt8` to float32 `weights` (w_q is an
 * exact integer in float32, so the product is rounded once).
 */
export function dequantizeRange(
  weightsInt8: usize,
  weights: usize,
  count: i32,
  firstRow: i32,
  rowOffset: i32,
  inner: i32,
  mid: i32,
  channelAxis: i32,
  outerPerGroup: i32,
  scaleW: usize,
  scaleStride: i32,
): void {
  const segment: SegmentOp = (source, target, length, entry) =>
    dequantizeSegment(source, target, length, v128.load_splat<f32>(entry));
  forEachSegment(segment, weightsInt8, 0, weights, 2, count, firstRow, rowOffset, inner, mid,
    channelAxis, outerPerGroup, scaleW, scaleStride, 2);
}

/** Four float32 lanes times a float64 factor (f64x2 splat), each product rounded once to f32. */
function scaleLanes(weights: v128, factor: v128): v128 {
  const low = f64x2.mul(f64x2.promote_low_f32x4(weights), factor);
  const high = f64x2.mul(
    f64x2.promote_low_f32x4(v128.shuffle<f32>(weights, weights, 2, 3, 2, 3)),
    factor,
  );
  return v128.shuffle<f32>(f32x4.demote_f64x2_zero(low), f32x4.demote_f64x2_zero(high), 0, 1, 4, 5);
}

/**
 * SPEC §3 per-channel BatchNorm + Scale factors, in float64: f = factor == 0 ? 0 : 1/factor,
 * a = gamma/sqrt(variance*f + eps) (to `alpha`, float64), b' = f32((b - mean*f)*a + beta)
 * (to `biasOut`). `bias` and `beta` are 0 when absent (read as zeros).
 */
export function batchNormFactors(
  channels: i32,
  bias: usize,
  mean: usize,
  variance: usize,
  gamma: usize,
  beta: usize,
  factor: f64,
  eps: f64,
  alpha: usize,
  biasOut: usize,
): void {
  const f: f64 = factor == 0 ? 0 : 1 / factor;
  for (let channel = 0; channel < channels; channel++) {
    const offset = <usize> channel << 2;
    const mu = <f64> load<f32>(mean + offset) * f;
    const sigma2 = <f64> load<f32>(variance + offset) * f;
    const a = <f64> load<f32>(gamma + offset) / Math.sqrt(sigma2 + eps);
    const b: f64 = bias != 0 ? <f64> load<f32>(bias + offset) : 0;
    const shift: f64 = beta != 0 ? <f64> load<f32>(beta + offset) : 0;
    store<f64>(alpha + (<usize> channel << 3), a);
    store<f32>(biasOut + offset, <f32> ((b - mu) * a + shift));
  }
}

/** W' = f32(W * a) of `count` contiguous weights of one channel, in place. */
function scaleSegment(source: usize, count: i32, a: f64): void {
  const factorLanes = f64x2.splat(a);
  let left = count;
  for (; left >= 8; left -= 8) {
    v128.store(source, scaleLanes(v128.load(source), factorLanes));
    v128.store(source, scaleLanes(v128.load(source, 16), factorLanes), 16);
    source += 32;
  }
  for (; left >= 4; left -= 4) {
    v128.store(source, scaleLanes(v128.load(source), factorLanes));
    source += 16;
  }
  for (; left > 0; left--) {
    store<f32>(source, <f32> (<f64> load<f32>(source) * a));
    source += 4;
  }
}

/**
 * SPEC §3 weight folding of a range of a tensor (see the header), in place:
 * W' = f32(W * alpha[c]) with `alpha` the float64 factors of batchNormFactors.
 */
export function scaleRange(
  weights: usize,
  count: i32,
  firstRow: i32,
  rowOffset: i32,
  inner: i32,
  mid: i32,
  channelAxis: i32,
  outerPerGroup: i32,
  alpha: usize,
): void {
  const segment: SegmentOp = (source, _target, length, entry) =>
    scaleSegment(source, length, load<f64>(entry));
  forEachSegment(segment, weights, 2, 0, 0, count, firstRow, rowOffset, inner, mid, channelAxis,
    outerPerGroup, alpha, 1, 3);
}

/** Index of the first NaN or infinity among `count` float32 values, or -1. */
export function firstNonFinite(values: usize, count: i32): i32 {
  const exponent = i32x4.splat(0x7f800000);
  let index = 0;
  for (; index + 16 <= count; index += 16) {
    const at = values + (<usize> index << 2);
    const e0 = i32x4.eq(v128.and(v128.load(at), exponent), exponent);
    const e1 = i32x4.eq(v128.and(v128.load(at, 16), exponent), exponent);
    const e2 = i32x4.eq(v128.and(v128.load(at, 32), exponent), exponent);
    const e3 = i32x4.eq(v128.and(v128.load(at, 48), exponent), exponent);
    if (v128.any_true(v128.or(v128.or(e0, e1), v128.or(e2, e3)))) break;
  }
  for (; index < count; index++) {
    if ((load<u32>(values + (<usize> index << 2)) & 0x7f800000) == 0x7f800000) return index;
  }
  return -1;
}

/** deq[c] = f32(scaleD * scaleW[c]) for `count` channels. */
export function dequantScales(scaleD: f32, scaleW: usize, count: i32, deqOut: usize): void {
  for (let channel = 0; channel < count; channel++) {
    const offset = <usize> channel << 2;
    store<f32>(deqOut + offset, scaleD * load<f32>(scaleW + offset));
  }
}

/**
 * SPEC §4 bias quantization in float64: b_q = rint(b/deq[c]), b_fake = f32(b_q*deq[c]).
 * `deq` is read with `deqStride` (0 or 1). A b_q outside int32 (or NaN) is written as 0 in both
 * outputs; the first such channel is returned and its b_q stored at `overflowValue` (float64).
 * Returns -1 when every channel fits.
 */
export function quantizeBias(
  bias: usize,
  deq: usize,
  deqStride: i32,
  channels: i32,
  biasInt32: usize,
  biasFake: usize,
  overflowValue: usize,
): i32 {
  let overflowChannel = -1;
  for (let channel = 0; channel < channels; channel++) {
    const offset = <usize> channel << 2;
    const deqScale = <f64> load<f32>(deq + ((<usize> (channel * deqStride)) << 2));
    const biasQ = nearest<f64>(<f64> load<f32>(bias + offset) / deqScale);
    if (biasQ >= -2147483648.0 && biasQ <= 2147483647.0) {
      const biasInt = <i32> biasQ;
      store<i32>(biasInt32 + offset, biasInt);
      store<f32>(biasFake + offset, <f32> (<f64> biasInt * deqScale));
    } else {
      store<i32>(biasInt32 + offset, 0);
      store<f32>(biasFake + offset, 0);
      if (overflowChannel < 0) {
        overflowChannel = channel;
        store<f64>(overflowValue, biasQ);
      }
    }
  }
  return overflowChannel;
}

/** SPEC §4 packed dequant scales: uint64 whose bits 31..0 are the float32 bits of deq[c]. */
export function packDequantScales(deq: usize, count: i32, packedOut: usize): void {
  for (let channel = 0; channel < count; channel++) {
    store<u64>(packedOut + (<usize> channel << 3), <u64> load<u32>(deq + (<usize> channel << 2)));
  }
}

/** Largest |w| of `count` float32 values at `values`. */
function maxAbs(values: usize, count: i32): f32 {
  let lanes = f32x4.splat(0);
  let at = values;
  let left = count;
  for (; left >= 4; left -= 4) {
    lanes = f32x4.max(lanes, f32x4.abs(v128.load(at)));
    at += 16;
  }
  let result = max(
    max(f32x4.extract_lane(lanes, 0), f32x4.extract_lane(lanes, 1)),
    max(f32x4.extract_lane(lanes, 2), f32x4.extract_lane(lanes, 3)),
  );
  for (; left > 0; left--) {
    result = max(result, abs(load<f32>(at)));
    at += 4;
  }
  return result;
}

/**
 * Raises channelMax[c] (float32) to the largest |w| of each channel in a range of a tensor (see
 * the header); the caller zeroes channelMax before the first range.
 */
export function maxAbsRange(
  weights: usize,
  count: i32,
  firstRow: i32,
  rowOffset: i32,
  inner: i32,
  mid: i32,
  channelAxis: i32,
  outerPerGroup: i32,
  channelMax: usize,
): void {
  const segment: SegmentOp = (source, _target, length, entry) =>
    store<f32>(entry, max(load<f32>(entry), maxAbs(source, length)));
  forEachSegment(segment, weights, 2, 0, 0, count, firstRow, rowOffset, inner, mid, channelAxis,
    outerPerGroup, channelMax, 1, 2);
}

/**
 * SPEC §9 weight scales from the per-channel largest |W'| of maxAbsRange:
 * scaleW[c] = max(f32(channelMax[c] / 127), f32(|b'[c]| / (scaleD * 2^30))), each quotient in
 * float64 rounded once to float32 (for the first, equal to the float32 division); a result of 0
 * (all-zero channel with zero or absent bias) becomes 1.0. `bias` is 0 when absent.
 */
export function weightScalesFromMax(
  channelMax: usize,
  channels: i32,
  bias: usize,
  scaleD: f64,
  scaleOut: usize,
): void {
  const biasLimit = scaleD * 1073741824.0;
  for (let channel = 0; channel < channels; channel++) {
    const offset = <usize> channel << 2;
    const fromWeights = <f32> (<f64> load<f32>(channelMax + offset) / 127.0);
    const fromBias: f32 = bias != 0 ? <f32> (abs(<f64> load<f32>(bias + offset)) / biasLimit) : 0;
    const scale = max(fromWeights, fromBias);
    store<f32>(scaleOut + offset, scale == 0 ? 1 : scale);
  }
}

/**
 * SPEC §4 activation fake-quant of `count` float32 values in place, S = f32(1/scaleD);
 * `offsetD` is an integer in -128..127. A NaN stays NaN. The engine's kernel (one implementation).
 */
export function fakeQuantActivations(values: usize, count: i32, scaleD: f32, offsetD: f32): void {
  fakeQuantize(values, count, scaleD, offsetD, values);
}
