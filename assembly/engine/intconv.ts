// The deploy model's integer Convolution, Deconvolution and InnerProduct (SPEC §10): int8 weights
// times the differences d = q - offset_d of the Quant layer's int8 values q, summed exactly in
// int32. The differences lie in [-255, 255] and the weights in [-128, 127], so both fit int16 and
// i32x4.dot_i16x8_s does two exact multiply-adds per lane. Arguments are byte offsets into linear
// memory owned by the caller.
//
// Forms kept in memory (src/wasm/engine.ts prepares them; they depend only on the weights):
// - weight pairs (packWeightPairs): a matrix A[m, k] of int8 in groups of 4 rows, per group and
//   pair of products (p, p+1) the 4 rows' (A[r, p], A[r, p+1]) as int16 pairs ([group][pair][4]
//   int32); rows past m and a missing last product are 0.
// - weight rows (packWeightRows): InnerProduct weights as int16 rows [outputs, depth rounded up
//   to 8], zeros past the depth.
// - float weights (int8ToFloat): 3x3 depthwise kernels (depthwise3x3Int), whose sums stay below
//   2^24 and so are exact in float32.

import { depthwiseColumns3x3, depthwisePlane, depthwiseRows3x3, im2colColumns } from "./conv";
import { copyInsideBorder, fillBorder } from "./border";
import { reluLanes } from "./elementwise";
import { at, columnIn, columnOut, rowLanes } from "./gemm";
import { quantizeLanes } from "./quant";
import { endInside, firstInside, Window } from "./window";

/**
 * What the integer kernels do to each sum of output channel c before storing it, at a byte
 * offset the caller passes (0: store the int32 sums as they are): y = f32(sum + bias[c]) (bias 0:
 * none), then y * scales[c * scaleStride] + 0 (scales 0: none; the channelAffine kernel's
 * arithmetic), then max(y, 0) + slopes[c * slopeStride] * min(y, 0) (slopes 0: none; the relu
 * kernel's arithmetic). Read in place as `changetype<Epilogue>(at)`.
 */
@unmanaged
class Epilogue {
  bias: usize;
  scales: usize;
  scaleStride: i32;
  slopes: usize;
  slopeStride: i32;
}

/** Four sums of output channel `c` (int32 lanes) as the epilogue at `epilogue` leaves them. */
@inline
export function finishLanes(sums: v128, epilogue: usize, c: i32): v128 {
  const e = changetype<Epilogue>(epilogue);
  const biased = e.bias != 0 ? i32x4.add(sums, v128.load32_splat(at(e.bias, c))) : sums;
  return scaleAndActivate(f32x4.convert_i32x4_s(biased), epilogue, c);
}

/** The epilogue's scale and activation for four float values of output channel `c`. */
@inline
function scaleAndActivate(values: v128, epilogue: usize, c: i32): v128 {
  const e = changetype<Epilogue>(epilogue);
  const zero = f32x4.splat(0);
  let value = values;
  if (e.scales != 0) {
    value = f32x4.add(f32x4.mul(value, v128.load32_splat(at(e.scales, c * e.scaleStride))), zero);
  }
  if (e.slopes != 0) {
    value = reluLanes(value, v128.load32_splat(at(e.slopes, c * e.slopeStride)));
  }
  return value;
}

/** Products per pass: a packed piece of B (KC/2 pairs x 8 columns, 4 KiB) stays in L1. */
const KC: i32 = 256;
/** The packed piece of B. */
const panel: usize = memory.data(KC / 2 * 32, 16);
/** A 4 x 8 tile of int32 for the edges of C. */
const edgeTile: usize = memory.data(4 * 8 * 4, 16);

/** Byte offset of element `index` of a 2-byte-element array at `base`. */
@inline
function at16(base: usize, index: i32): usize {
  return base + (<usize>index << 1);
}

/**
 * 1.5 * 2^23: for an integer q below 2^22 in magnitude, q + ROUNDER is exact and its bits are
 * ROUNDER_BITS + q (two adds instead of a float-to-int conversion).
 */
const ROUNDER: f32 = 12582912;
/** The bits of ROUNDER. */
const ROUNDER_BITS: i32 = 0x4b400000;

/**
 * The four differences of four lanes of input: (quantized first when `quantize`) q - offset, q an
 * integer in [-128, 127] as float32; `shift` holds ROUNDER_BITS + offset.
 */
@inline
function differenceLanes(
  x: v128,
  quantize: bool,
  quantScale: v128,
  offsetF: v128,
  shift: v128,
): v128 {
  const q = quantize ? quantizeLanes(x, quantScale, offsetF) : x;
  return i32x4.sub(f32x4.add(q, f32x4.splat(ROUNDER)), shift);
}

/**
 * y[r, 0..stride) = int16 (q - offset) of x[r, 0..length) then zeros, for `rows` rows; q = x (the
 * Quant layer's values: integers in [-128, 127] as float32), or when `quantize` the Quant layer's q
 * of x (as the quantize kernel computes it with `quantScale` and `offset`).
 */
export function int16Differences(
  x: usize,
  rows: i32,
  length: i32,
  stride: i32,
  quantize: bool,
  quantScale: f32,
  offset: i32,
  y: usize,
): void {
  const scales = f32x4.splat(quantScale);
  const offsetsF = f32x4.splat(<f32>offset);
  const shifts = i32x4.splat(ROUNDER_BITS + offset);
  for (let r = 0; r < rows; r++) {
    const source = at(x, r * length);
    const target = at16(y, r * stride);
    let i = 0;
    for (; i + 8 <= length; i += 8) {
      const low = differenceLanes(v128.load(at(source, i)), quantize, scales, offsetsF, shifts);
      const high = differenceLanes(
        v128.load(at(source, i), 16),
        quantize,
        scales,
        offsetsF,
        shifts,
      );
      v128.store(at16(target, i), i16x8.narrow_i32x4_s(low, high));
    }
    for (; i < length; i++) {
      const lanes = differenceLanes(
        f32x4.splat(load<f32>(at(source, i))),
        quantize,
        scales,
        offsetsF,
        shifts,
      );
      store<i16>(at16(target, i), <i16>i32x4.extract_lane(lanes, 0));
    }
    for (; i < stride; i++) store<i16>(at16(target, i), 0);
  }
}

/** y = f32(x) for `count` int8 x. */
export function int8ToFloat(x: usize, count: i32, y: usize): void {
  let i = 0;
  for (; i + 8 <= count; i += 8) {
    const wide = i16x8.extend_low_i8x16_s(v128.load64_zero(x + <usize>i));
    v128.store(at(y, i), f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(wide)));
    v128.store(at(y, i), f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(wide)), 16);
  }
  for (; i < count; i++) store<f32>(at(y, i), <f32>load<i8>(x + <usize>i));
}

/** Bytes of A[m, k] as weight pairs. */
export function weightPairsBytes(m: i32, k: i32): i32 {
  return ((m + 3) >> 2) * ((k + 1) >> 1) * 16;
}

/**
 * Packs int8 A[m, k], element (r, p) at byte `a + r*rowStride + p*columnStride`, as weight pairs
 * (see the module comment) at `packed`. Full groups of rows with contiguous products go sixteen
 * products (8 pairs) at a time: each row widened to int16, the four rows' pairs transposed.
 */
export function packWeightPairs(
  a: usize,
  m: i32,
  k: i32,
  rowStride: i32,
  columnStride: i32,
  packed: usize,
): void {
  const pairs = (k + 1) >> 1;
  const vectorPairs = columnStride == 1 ? (k >> 4) << 3 : 0;
  let target = packed;
  for (let row = 0; row < m; row += 4) {
    let q = 0;
    if (row + 4 <= m) {
      const r0 = a + <usize>(row * rowStride);
      const r1 = r0 + <usize>rowStride;
      const r2 = r1 + <usize>rowStride;
      const r3 = r2 + <usize>rowStride;
      for (; q < vectorPairs; q += 8) {
        const p = <usize>(2 * q);
        const v0 = v128.load(r0 + p);
        const v1 = v128.load(r1 + p);
        const v2 = v128.load(r2 + p);
        const v3 = v128.load(r3 + p);
        storeTransposed(
          target,
          i16x8.extend_low_i8x16_s(v0),
          i16x8.extend_low_i8x16_s(v1),
          i16x8.extend_low_i8x16_s(v2),
          i16x8.extend_low_i8x16_s(v3),
        );
        storeTransposed(
          target + 64,
          i16x8.extend_high_i8x16_s(v0),
          i16x8.extend_high_i8x16_s(v1),
          i16x8.extend_high_i8x16_s(v2),
          i16x8.extend_high_i8x16_s(v3),
        );
        target += 128;
      }
    }
    for (; q < pairs; q++) {
      const p = 2 * q;
      for (let r = row; r < row + 4; r++) {
        let pair = 0;
        if (r < m) {
          const from = a + <usize>(r * rowStride + p * columnStride);
          pair = <i32>load<i8>(from) & 0xffff;
          if (p + 1 < k) pair |= <i32>load<i8>(from + <usize>columnStride) << 16;
        }
        store<i32>(target, pair);
        target += 4;
      }
    }
  }
}

/** Stores the 4 x 4 transpose of the int32 lanes of rows r0..r3 (64 bytes) at `target`. */
@inline
function storeTransposed(target: usize, r0: v128, r1: v128, r2: v128, r3: v128): void {
  const t0 = v128.shuffle<i32>(r0, r1, 0, 4, 1, 5);
  const t1 = v128.shuffle<i32>(r2, r3, 0, 4, 1, 5);
  const t2 = v128.shuffle<i32>(r0, r1, 2, 6, 3, 7);
  const t3 = v128.shuffle<i32>(r2, r3, 2, 6, 3, 7);
  v128.store(target, v128.shuffle<i64>(t0, t1, 0, 2));
  v128.store(target, v128.shuffle<i64>(t0, t1, 1, 3), 16);
  v128.store(target, v128.shuffle<i64>(t2, t3, 0, 2), 32);
  v128.store(target, v128.shuffle<i64>(t2, t3, 1, 3), 48);
}

/** Elements per row of InnerProduct weight rows (and input rows): the depth rounded up to 8. */
@inline
export function paddedDepth(depth: i32): i32 {
  return (depth + 7) & ~7;
}

/**
 * Packs int8 InnerProduct weights [outputs, depth] ([depth, outputs] when `transposed`) as weight
 * rows: int16 [outputs, paddedDepth(depth)], zeros past the depth.
 */
export function packWeightRows(
  w: usize,
  outputs: i32,
  depth: i32,
  transposed: bool,
  packed: usize,
): void {
  const stride = paddedDepth(depth);
  for (let o = 0; o < outputs; o++) {
    const target = at16(packed, o * stride);
    let p = 0;
    if (!transposed) {
      const source = w + <usize>(o * depth);
      for (; p + 16 <= depth; p += 16) {
        const bytes = v128.load(source + <usize>p);
        v128.store(at16(target, p), i16x8.extend_low_i8x16_s(bytes));
        v128.store(at16(target, p), i16x8.extend_high_i8x16_s(bytes), 16);
      }
    }
    for (; p < depth; p++) {
      const index = transposed ? p * outputs + o : o * depth + p;
      store<i16>(at16(target, p), <i16>load<i8>(w + <usize>index));
    }
    for (; p < stride; p++) store<i16>(at16(target, p), 0);
  }
}

/**
 * Packs B[k0..k1, n0..n0+columns) of B (rows `ldb` apart) into `panel`: per pair of rows (p,
 * p+1), 8 columns of (B[p, col], B[p+1, col]) as int16; a missing last row is 0, and the places
 * of missing columns are left as they are (their sums are computed, never stored). B is int16
 * differences (T = i16), or float32 (T = f32) turned into them here as
 * int16Differences does (the Quant layer's q less `offset`, quantized first when `quantize`).
 */
@inline
function packPanel<T>(
  b: usize,
  ldb: i32,
  k0: i32,
  k1: i32,
  n0: i32,
  columns: i32,
  quantize: bool,
  quantScale: f32,
  offset: i32,
): void {
  const pairs = (k1 - k0 + 1) >> 1;
  const zero = i32x4.splat(0);
  const scales = f32x4.splat(quantScale);
  const offsetsF = f32x4.splat(<f32>offset);
  const shifts = i32x4.splat(ROUNDER_BITS + offset);
  const rowBytes = <usize>ldb << alignof<T>();
  let target = panel;
  for (let q = 0; q < pairs; q++) {
    const p = k0 + 2 * q;
    const second = p + 1 < k1;
    const low = b + (<usize>(p * ldb + n0) << alignof<T>());
    const high = low + rowBytes;
    if (columns == 8) {
      let lows = v128.load(low);
      let highs = second ? v128.load(high) : zero;
      if (sizeof<T>() == 4) {
        lows = i16x8.narrow_i32x4_s(
          differenceLanes(lows, quantize, scales, offsetsF, shifts),
          differenceLanes(v128.load(low, 16), quantize, scales, offsetsF, shifts),
        );
        highs = second
          ? i16x8.narrow_i32x4_s(
            differenceLanes(highs, quantize, scales, offsetsF, shifts),
            differenceLanes(v128.load(high, 16), quantize, scales, offsetsF, shifts),
          )
          : zero;
      }
      v128.store(
        target,
        i8x16.shuffle(lows, highs, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23),
      );
      v128.store(
        target,
        i8x16.shuffle(lows, highs, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31),
        16,
      );
    } else {
      // Only the columns there are: the sums of the others are never stored.
      for (let col = 0; col < columns; col++) {
        let first: i16;
        let next: i16 = 0;
        if (sizeof<T>() == 4) {
          first = differenceOf(low + (<usize>col << 2), quantize, scales, offsetsF, shifts);
          if (second) next = differenceOf(high + (<usize>col << 2), quantize, scales, offsetsF, shifts);
        } else {
          first = load<i16>(at16(low, col));
          if (second) next = load<i16>(at16(high, col));
        }
        store<i16>(target + (<usize>col << 2), first);
        store<i16>(target + (<usize>col << 2), next, 2);
      }
    }
    target += 32;
  }
}

/** The difference of the one float at `from`, as differenceLanes makes it, as int16. */
@inline
function differenceOf(
  from: usize,
  quantize: bool,
  scales: v128,
  offsetsF: v128,
  shifts: v128,
): i16 {
  const lanes = differenceLanes(f32x4.splat(load<f32>(from)), quantize, scales, offsetsF, shifts);
  return <i16>i32x4.extract_lane(lanes, 0);
}

/**
 * C[m, n] = A x B in int32 (rows of C `ldc` apart): A as weight pairs of A[m, k], B row-major [k,
 * n] with rows `ldb` apart, of T: int16 differences, or float32 made into them as B is packed
 * (packPanel: the Quant layer's q less `offset`, quantized first when `quantize`), which saves the
 * int16 copy of B a pass of its own would write and read. Exact (wrapping) int32 sums, finished by
 * the epilogue at `epilogue` (row r is output channel channel0 + r) when it is not 0.
 */
export function gemmPairs<T>(
  m: i32,
  n: i32,
  k: i32,
  packedA: usize,
  b: usize,
  ldb: i32,
  c: usize,
  ldc: i32,
  epilogue: usize,
  channel0: i32,
  quantize: bool,
  quantScale: f32,
  offset: i32,
): void {
  const allPairs = (k + 1) >> 1;
  for (let k0 = 0; k0 < k; k0 += KC) {
    const k1 = min(k0 + KC, k);
    const pairs = (k1 - k0 + 1) >> 1;
    const first = k0 == 0;
    const finish = k1 == k ? epilogue : 0;
    for (let n0 = 0; n0 < n; n0 += 8) {
      const columns = min(8, n - n0);
      packPanel<T>(b, ldb, k0, k1, n0, columns, quantize, quantScale, offset);
      for (let row = 0; row < m; row += 4) {
        const ap = packedA + ((<usize>(row >> 2) * <usize>allPairs + <usize>(k0 >> 1)) << 4);
        const rows = min(4, m - row);
        const target = at(c, row * ldc + n0);
        const channel = channel0 + row;
        if (rows == 4 && columns == 8) {
          tile(ap, pairs, target, ldc, first, finish, channel, 4);
        } else if (columns <= 3) {
          narrowPairs(ap, pairs, target, ldc, first, finish, channel, rows, columns);
        } else {
          if (!first) {
            for (let r = 0; r < rows; r++) {
              for (let col = 0; col < columns; col++) {
                store<i32>(at(edgeTile, r * 8 + col), load<i32>(at(target, r * ldc + col)));
              }
            }
          }
          tile(ap, pairs, edgeTile, 8, first, finish, channel, rows);
          for (let r = 0; r < rows; r++) {
            for (let col = 0; col < columns; col++) {
              store<i32>(at(target, r * ldc + col), load<i32>(at(edgeTile, r * 8 + col)));
            }
          }
        }
      }
    }
  }
}

/**
 * An edge of C one to three columns wide (`columns`) of `rows` rows at `target` (rows `ldc`
 * apart) += A's rows x the panel's first columns, over `pairs`: each column's four rows in one
 * vector (A's pairs as packed, the column's pair of B in every lane), so that no lane is wasted;
 * then finished as tile finishes (lanes past `rows` are not stored).
 */
function narrowPairs(
  ap: usize,
  pairs: i32,
  target: usize,
  ldc: i32,
  first: bool,
  finish: usize,
  channel: i32,
  rows: i32,
  columns: i32,
): void {
  if (columns == 1) pairColumns(ap, pairs, target, ldc, first, finish, channel, rows, 1);
  else if (columns == 2) pairColumns(ap, pairs, target, ldc, first, finish, channel, rows, 2);
  else pairColumns(ap, pairs, target, ldc, first, finish, channel, rows, 3);
}

/** narrowPairs for `columns` columns (a constant where inlined). */
@inline
function pairColumns(
  ap: usize,
  pairs: i32,
  target: usize,
  ldc: i32,
  first: bool,
  finish: usize,
  channel: i32,
  rows: i32,
  columns: i32,
): void {
  const zero = i32x4.splat(0);
  let s0 = first ? zero : columnIn(target, ldc, rows);
  let s1 = first || columns < 2 ? zero : columnIn(at(target, 1), ldc, rows);
  let s2 = first || columns < 3 ? zero : columnIn(at(target, 2), ldc, rows);
  let a = ap;
  let b = panel;
  const end = panel + (<usize>pairs << 5);
  while (b < end) {
    const rowPairs = v128.load(a);
    s0 = i32x4.add(s0, i32x4.dot_i16x8_s(rowPairs, v128.load32_splat(b)));
    if (columns >= 2) s1 = i32x4.add(s1, i32x4.dot_i16x8_s(rowPairs, v128.load32_splat(b, 4)));
    if (columns >= 3) s2 = i32x4.add(s2, i32x4.dot_i16x8_s(rowPairs, v128.load32_splat(b, 8)));
    a += 16;
    b += 32;
  }
  if (finish != 0) {
    s0 = finishChannels(s0, finish, channel, rows);
    if (columns >= 2) s1 = finishChannels(s1, finish, channel, rows);
    if (columns >= 3) s2 = finishChannels(s2, finish, channel, rows);
  }
  columnOut(target, ldc, rows, s0);
  if (columns >= 2) columnOut(at(target, 1), ldc, rows, s1);
  if (columns >= 3) columnOut(at(target, 2), ldc, rows, s2);
}

/**
 * Sums of output channels `channel` + lane (int32 lanes, those past `rows` unused) as the
 * epilogue at `epilogue` leaves them: finishLanes' arithmetic, lane by lane.
 */
@inline
function finishChannels(sums: v128, epilogue: usize, channel: i32, rows: i32): v128 {
  const e = changetype<Epilogue>(epilogue);
  const biased = e.bias != 0 ? i32x4.add(sums, rowLanes(at(e.bias, channel), rows)) : sums;
  let value = f32x4.convert_i32x4_s(biased);
  if (e.scales != 0) {
    const scales = channelValues(e.scales, e.scaleStride, channel, rows);
    value = f32x4.add(f32x4.mul(value, scales), f32x4.splat(0));
  }
  if (e.slopes != 0) value = reluLanes(value, channelValues(e.slopes, e.slopeStride, channel, rows));
  return value;
}

/** An epilogue's values of channels `channel` + lane: one per channel (stride 1), or one for all. */
@inline
function channelValues(values: usize, stride: i32, channel: i32, rows: i32): v128 {
  return stride == 0 ? v128.load32_splat(values) : rowLanes(at(values, channel), rows);
}

/**
 * The 4 x 8 int32 tile at `target` (rows `ldc` apart) += A's 4 rows x the panel, over `pairs`;
 * then, when `finish` is not 0, finished by that epilogue (row r as output channel
 * channel + min(r, rows - 1): rows past `rows` are not kept).
 */
@inline
function tile(
  ap: usize,
  pairs: i32,
  target: usize,
  ldc: i32,
  first: bool,
  finish: usize,
  channel: i32,
  rows: i32,
): void {
  const c0 = target;
  const c1 = at(c0, ldc);
  const c2 = at(c1, ldc);
  const c3 = at(c2, ldc);
  const zero = i32x4.splat(0);
  let s00 = first ? zero : v128.load(c0);
  let s01 = first ? zero : v128.load(c0, 16);
  let s10 = first ? zero : v128.load(c1);
  let s11 = first ? zero : v128.load(c1, 16);
  let s20 = first ? zero : v128.load(c2);
  let s21 = first ? zero : v128.load(c2, 16);
  let s30 = first ? zero : v128.load(c3);
  let s31 = first ? zero : v128.load(c3, 16);
  let a = ap;
  let bp = panel;
  const end = panel + (<usize>pairs << 5);
  while (bp < end) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    const a0 = v128.load32_splat(a);
    s00 = i32x4.add(s00, i32x4.dot_i16x8_s(a0, b0));
    s01 = i32x4.add(s01, i32x4.dot_i16x8_s(a0, b1));
    const a1 = v128.load32_splat(a, 4);
    s10 = i32x4.add(s10, i32x4.dot_i16x8_s(a1, b0));
    s11 = i32x4.add(s11, i32x4.dot_i16x8_s(a1, b1));
    const a2 = v128.load32_splat(a, 8);
    s20 = i32x4.add(s20, i32x4.dot_i16x8_s(a2, b0));
    s21 = i32x4.add(s21, i32x4.dot_i16x8_s(a2, b1));
    const a3 = v128.load32_splat(a, 12);
    s30 = i32x4.add(s30, i32x4.dot_i16x8_s(a3, b0));
    s31 = i32x4.add(s31, i32x4.dot_i16x8_s(a3, b1));
    a += 16;
    bp += 32;
  }
  if (finish != 0) {
    s00 = finishLanes(s00, finish, channel);
    s01 = finishLanes(s01, finish, channel);
    const channel1 = channel + min(1, rows - 1);
    s10 = finishLanes(s10, finish, channel1);
    s11 = finishLanes(s11, finish, channel1);
    const channel2 = channel + min(2, rows - 1);
    s20 = finishLanes(s20, finish, channel2);
    s21 = finishLanes(s21, finish, channel2);
    const channel3 = channel + min(3, rows - 1);
    s30 = finishLanes(s30, finish, channel3);
    s31 = finishLanes(s31, finish, channel3);
  }
  v128.store(c0, s00);
  v128.store(c0, s01, 16);
  v128.store(c1, s10);
  v128.store(c1, s11, 16);
  v128.store(c2, s20);
  v128.store(c2, s21, 16);
  v128.store(c3, s30);
  v128.store(c3, s31, 16);
}

/**
 * The integer Convolution: for each image and group, acc_g = W_g x im2col(d_g) in int32, in bands
 * of `bandRows` output rows (1x1 kernels at stride 1 without pad read their input in place
 * instead: pointwisePairs). `x` holds the int16 differences d [N, cin, H, W]; `weights` the weight pairs of each group's [cout/group, depth]
 * (weightPairsBytes apart); `col` int16 scratch of depth*bandRows*outW; y gets [N, cout, outH,
 * outW]: the int32 sums, or as the epilogue at `epilogue` (when not 0) leaves them.
 */
export function convolutionPairs(
  x: usize,
  batch: i32,
  cin: i32,
  height: i32,
  width: i32,
  weights: usize,
  cout: i32,
  groups: i32,
  geometry: usize,
  outH: i32,
  outW: i32,
  bandRows: i32,
  col: usize,
  y: usize,
  epilogue: usize,
): void {
  const window = changetype<Window>(geometry);
  const cinGroup = cin / groups;
  const coutGroup = cout / groups;
  const depth = cinGroup * window.kernelH * window.kernelW;
  const spatial = outH * outW;
  const groupBytes = <usize>weightPairsBytes(coutGroup, depth);
  for (let n = 0; n < batch; n++) {
    for (let g = 0; g < groups; g++) {
      const xGroup = at16(x, (n * cin + g * cinGroup) * height * width);
      const yGroup = at(y, (n * cout + g * coutGroup) * spatial);
      const packed = weights + <usize>g * groupBytes;
      const channel0 = g * coutGroup;
      for (let rowStart = 0; rowStart < outH; rowStart += bandRows) {
        const rowEnd = min(rowStart + bandRows, outH);
        const columns = (rowEnd - rowStart) * outW;
        im2colColumns<i16>(xGroup, cinGroup, height, width, window, rowStart, rowEnd, outW, col, columns);
        const band = at(yGroup, rowStart * outW);
        gemmPairs<i16>(coutGroup, columns, depth, packed, col, columns, band, spatial, epilogue, channel0, false, 0, 0);
      }
    }
  }
}

/**
 * The integer 1x1 Convolution at stride 1 without pad on float input x [N, cin, spatial]: the
 * Quant layer's q (or, when `quantize`, the values it quantizes with `quantScale`), read in place,
 * whose differences q - `offset` the matrix product makes as it packs them (no int16 copy by
 * int16Differences first, no im2col); otherwise as convolutionPairs.
 */
export function pointwisePairs(
  x: usize,
  batch: i32,
  cin: i32,
  spatial: i32,
  weights: usize,
  cout: i32,
  groups: i32,
  y: usize,
  epilogue: usize,
  quantize: bool,
  quantScale: f32,
  offset: i32,
): void {
  const cinGroup = cin / groups;
  const coutGroup = cout / groups;
  const groupBytes = <usize>weightPairsBytes(coutGroup, cinGroup);
  for (let n = 0; n < batch; n++) {
    for (let g = 0; g < groups; g++) {
      const xGroup = at(x, (n * cin + g * cinGroup) * spatial);
      const yGroup = at(y, (n * cout + g * coutGroup) * spatial);
      const packed = weights + <usize>g * groupBytes;
      gemmPairs<f32>(
        coutGroup,
        spatial,
        cinGroup,
        packed,
        xGroup,
        spatial,
        yGroup,
        spatial,
        epilogue,
        g * coutGroup,
        quantize,
        quantScale,
        offset,
      );
    }
  }
}

/**
 * Caffe's col2im for column rows rowStart..rowEnd (of colW columns) of int32 col: adds every
 * column entry into int32 x.
 */
function col2im32(
  col: usize,
  channels: i32,
  height: i32,
  width: i32,
  window: Window,
  rowStart: i32,
  rowEnd: i32,
  colW: i32,
  x: usize,
): void {
  const kh = window.kernelH;
  const kw = window.kernelW;
  const sh = window.strideH;
  const sw = window.strideW;
  let source = col;
  for (let c = 0; c < channels; c++) {
    const plane = at(x, c * height * width);
    for (let i = 0; i < kh; i++) {
      const rowShift = i * window.dilationH - window.padH;
      for (let j = 0; j < kw; j++) {
        const shift = j * window.dilationW - window.padW;
        const first = min(firstInside(shift, sw), colW);
        const end = max(endInside(shift, sw, width, colW), first);
        for (let oh = rowStart; oh < rowEnd; oh++) {
          const ih = oh * sh + rowShift;
          if (ih >= 0 && ih < height) {
            const row = at(plane, ih * width + shift);
            for (let ow = first; ow < end; ow++) {
              const target = at(row, ow * sw);
              store<i32>(target, load<i32>(target) + load<i32>(at(source, ow)));
            }
          }
          source = at(source, colW);
        }
      }
    }
  }
}

/**
 * The integer Deconvolution: for each image and group, col = W_g^T x d_g in int32, then col2im
 * into y_g, in bands of `bandRows` input rows. `x` holds int16 differences [N, cin, H, W];
 * `weights` the weight pairs of each group's W_g^T [cout/group*kh*kw, cin/group]; `col` int32
 * scratch of (cout/group)*kh*kw*bandRows*W; y gets int32 [N, cout, outH, outW] (no bias).
 */
export function deconvolutionPairs(
  x: usize,
  batch: i32,
  cin: i32,
  height: i32,
  width: i32,
  weights: usize,
  cout: i32,
  groups: i32,
  geometry: usize,
  outH: i32,
  outW: i32,
  bandRows: i32,
  col: usize,
  y: usize,
): void {
  const window = changetype<Window>(geometry);
  const cinGroup = cin / groups;
  const coutGroup = cout / groups;
  const depth = coutGroup * window.kernelH * window.kernelW;
  const spatial = height * width;
  const groupBytes = <usize>weightPairsBytes(depth, cinGroup);
  memory.fill(y, 0, <usize>(batch * cout * outH * outW) << 2);
  for (let n = 0; n < batch; n++) {
    for (let g = 0; g < groups; g++) {
      const xGroup = at16(x, (n * cin + g * cinGroup) * spatial);
      const yGroup = at(y, (n * cout + g * coutGroup) * outH * outW);
      const packed = weights + <usize>g * groupBytes;
      for (let rowStart = 0; rowStart < height; rowStart += bandRows) {
        const rowEnd = min(rowStart + bandRows, height);
        const columns = (rowEnd - rowStart) * width;
        const band = at16(xGroup, rowStart * width);
        gemmPairs<i16>(depth, columns, cinGroup, packed, band, spatial, col, columns, 0, 0, false, 0, 0);
        col2im32(col, coutGroup, outH, outW, window, rowStart, rowEnd, width, yGroup);
      }
    }
  }
}

/**
 * The integer InnerProduct: y[rows, outputs] = d[rows, depth] x W^T in int32, d int16 rows and W
 * weight rows, both paddedDepth(depth) apart (no bias); two rows of d at a time by four of W, a
 * last row by four.
 */
export function innerProductRows(
  x: usize,
  rows: i32,
  depth: i32,
  weights: usize,
  outputs: i32,
  y: usize,
): void {
  const stride = paddedDepth(depth);
  const rowBytes = <usize>stride << 1;
  let first = 0;
  // Two rows at a time: the weights, read from memory, once per two rows.
  for (; first + 2 <= rows; first += 2) {
    const x0 = at16(x, first * stride);
    const x1 = x0 + rowBytes;
    const target = at(y, first * outputs);
    let o = 0;
    for (; o + 4 <= outputs; o += 4) {
      const w0 = at16(weights, o * stride);
      const w1 = w0 + rowBytes;
      const w2 = w1 + rowBytes;
      const w3 = w2 + rowBytes;
      let s00 = i32x4.splat(0);
      let s01 = s00;
      let s02 = s00;
      let s03 = s00;
      let s10 = s00;
      let s11 = s00;
      let s12 = s00;
      let s13 = s00;
      for (let p: usize = 0; p < rowBytes; p += 16) {
        const v0 = v128.load(x0 + p);
        const v1 = v128.load(x1 + p);
        const u0 = v128.load(w0 + p);
        s00 = i32x4.add(s00, i32x4.dot_i16x8_s(v0, u0));
        s10 = i32x4.add(s10, i32x4.dot_i16x8_s(v1, u0));
        const u1 = v128.load(w1 + p);
        s01 = i32x4.add(s01, i32x4.dot_i16x8_s(v0, u1));
        s11 = i32x4.add(s11, i32x4.dot_i16x8_s(v1, u1));
        const u2 = v128.load(w2 + p);
        s02 = i32x4.add(s02, i32x4.dot_i16x8_s(v0, u2));
        s12 = i32x4.add(s12, i32x4.dot_i16x8_s(v1, u2));
        const u3 = v128.load(w3 + p);
        s03 = i32x4.add(s03, i32x4.dot_i16x8_s(v0, u3));
        s13 = i32x4.add(s13, i32x4.dot_i16x8_s(v1, u3));
      }
      const out = at(target, o);
      store<i32>(out, laneSum(s00));
      store<i32>(out, laneSum(s01), 4);
      store<i32>(out, laneSum(s02), 8);
      store<i32>(out, laneSum(s03), 12);
      const next = at(out, outputs);
      store<i32>(next, laneSum(s10));
      store<i32>(next, laneSum(s11), 4);
      store<i32>(next, laneSum(s12), 8);
      store<i32>(next, laneSum(s13), 12);
    }
    for (; o < outputs; o++) {
      const w0 = at16(weights, o * stride);
      let s0 = i32x4.splat(0);
      let s1 = s0;
      for (let p: usize = 0; p < rowBytes; p += 16) {
        const u0 = v128.load(w0 + p);
        s0 = i32x4.add(s0, i32x4.dot_i16x8_s(v128.load(x0 + p), u0));
        s1 = i32x4.add(s1, i32x4.dot_i16x8_s(v128.load(x1 + p), u0));
      }
      store<i32>(at(target, o), laneSum(s0));
      store<i32>(at(target, outputs + o), laneSum(s1));
    }
  }
  for (let row = first; row < rows; row++) {
    const xRow = at16(x, row * stride);
    const target = at(y, row * outputs);
    let o = 0;
    for (; o + 4 <= outputs; o += 4) {
      const w0 = at16(weights, o * stride);
      const w1 = w0 + rowBytes;
      const w2 = w1 + rowBytes;
      const w3 = w2 + rowBytes;
      let s0 = i32x4.splat(0);
      let s1 = s0;
      let s2 = s0;
      let s3 = s0;
      for (let p: usize = 0; p < rowBytes; p += 16) {
        const v = v128.load(xRow + p);
        s0 = i32x4.add(s0, i32x4.dot_i16x8_s(v, v128.load(w0 + p)));
        s1 = i32x4.add(s1, i32x4.dot_i16x8_s(v, v128.load(w1 + p)));
        s2 = i32x4.add(s2, i32x4.dot_i16x8_s(v, v128.load(w2 + p)));
        s3 = i32x4.add(s3, i32x4.dot_i16x8_s(v, v128.load(w3 + p)));
      }
      const out = at(target, o);
      store<i32>(out, laneSum(s0));
      store<i32>(out, laneSum(s1), 4);
      store<i32>(out, laneSum(s2), 8);
      store<i32>(out, laneSum(s3), 12);
    }
    for (; o < outputs; o++) {
      const w0 = at16(weights, o * stride);
      let s = i32x4.splat(0);
      for (let p: usize = 0; p < rowBytes; p += 16) {
        s = i32x4.add(s, i32x4.dot_i16x8_s(v128.load(xRow + p), v128.load(w0 + p)));
      }
      store<i32>(at(target, o), laneSum(s));
    }
  }
}

/** The sum of the four int32 lanes of `v`. */
@inline
function laneSum(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) +
    i32x4.extract_lane(v, 3);
}

/**
 * The integer 3x3 depthwise Convolution at column stride 1 or 2 (any row stride, pad and
 * dilation) on the Quant layer's q (as float32) `x`, or when `quantize` on the float input `x`
 * that Quant layer reads (quantized here with `quantScale`), and float32 weights, finished by the
 * epilogue at `epilogue`. Each plane is copied into `scratch` (depthwiseScratchBytes) inside a
 * border of `offset`, where q - offset is 0 as in Caffe's zero padding of the differences; the
 * float kernel's depthwisePlane then sums w * q over the nine taps of every output less offset *
 * (the nine weights), which is the exact sum of w * (q - offset): every product and partial sum
 * is an integer below 2^24 in magnitude. A bias float32 does not hold is added in int32 after.
 */
export function depthwise3x3Int(
  x: usize,
  batch: i32,
  channels: i32,
  height: i32,
  width: i32,
  weights: usize,
  offset: i32,
  geometry: usize,
  outH: i32,
  outW: i32,
  y: usize,
  epilogue: usize,
  scratch: usize,
  quantize: bool,
  quantScale: f32,
): void {
  const window = changetype<Window>(geometry);
  const rows = depthwiseRows3x3(window, outH);
  const columns = depthwiseColumns3x3(window, outW);
  const offsetF = <f32>offset;
  fillBorder(scratch, rows, columns, offsetF);
  const e = changetype<Epilogue>(epilogue);
  const zero = f32x4.splat(0);
  const planeSize = outH * outW;
  for (let plane = 0; plane < batch * channels; plane++) {
    const source = at(x, plane * height * width);
    copyInsideBorder(source, height, width, window, rows, columns, scratch, quantize, quantScale, offsetF);
    const target = at(y, plane * planeSize);
    const c = plane % channels;
    const kernel = at(weights, c * 9);
    let weightSum: f32 = 0;
    for (let t = 0; t < 9; t++) weightSum += load<f32>(at(kernel, t));
    const corrections = f32x4.splat(offsetF * weightSum);
    const biasValue = e.bias != 0 ? load<i32>(at(e.bias, c)) : 0;
    if (<f64><f32>biasValue == <f64>biasValue) {
      const biases = f32x4.splat(<f32>biasValue);
      const scaled = e.scales != 0;
      const activated = e.slopes != 0;
      const scales = scaled ? v128.load32_splat(at(e.scales, c * e.scaleStride)) : zero;
      const slopes = activated ? v128.load32_splat(at(e.slopes, c * e.slopeStride)) : zero;
      depthwisePlane<f32>(scratch, columns, window, outH, outW, target, kernel, biases, activated, slopes, true, corrections, scaled, scales);
    } else {
      depthwisePlane<f32>(scratch, columns, window, outH, outW, target, kernel, zero, false, zero, true, corrections, false, zero);
      let i = 0;
      for (; i + 4 <= planeSize; i += 4) {
        v128.store(at(target, i), finishSums(v128.load(at(target, i)), epilogue, c, biasValue));
      }
      for (; i < planeSize; i++) {
        const value = finishSums(f32x4.splat(load<f32>(at(target, i))), epilogue, c, biasValue);
        store<f32>(at(target, i), f32x4.extract_lane(value, 0));
      }
    }
  }
}

/**
 * Four exact integer sums (float32) of channel `c` + a bias float32 does not hold (added in
 * int32), finished by the epilogue.
 */
@inline
function finishSums(sums: v128, epilogue: usize, c: i32, bias: i32): v128 {
  const value = f32x4.convert_i32x4_s(
    i32x4.add(i32x4.trunc_sat_f32x4_s(sums), i32x4.splat(bias)),
  );
  return scaleAndActivate(value, epilogue, c);
}

/** The int32 sums [outer, channels, inner] at `acc` finished in place by the epilogue. */
export function accumulatorsOut(
  acc: usize,
  outer: i32,
  channels: i32,
  inner: i32,
  epilogue: usize,
): void {
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const base = at(acc, (o * channels + c) * inner);
      let i = 0;
      for (; i + 4 <= inner; i += 4) {
        v128.store(at(base, i), finishLanes(v128.load(at(base, i)), epilogue, c));
      }
      for (; i < inner; i++) {
        const value = finishLanes(i32x4.splat(load<i32>(at(base, i))), epilogue, c);
        store<f32>(at(base, i), f32x4.extract_lane(value, 0));
      }
    }
  }
}
