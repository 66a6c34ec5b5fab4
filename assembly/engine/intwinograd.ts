// The deploy model's integer 3x3 and 5x5 Convolutions at stride 1 and dilation 1 through an exact
// Winograd F(2x2, 3x3): each 2x2 block of outputs (a tile) comes from a 4x4 block d of the int16
// differences q - offset_d as A^T [(G2 g G2^T) . (B^T d B)] A / 4, with
//   G2 = [[2,0,0],[1,1,1],[1,-1,1],[0,0,2]] (Lavin & Gray's G times 2, so the transformed weights
//        U = G2 g G2^T are integers: |U| <= 9 * 128),
//   B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]] (|V| = |B^T d B| <= 4 * 255),
//   A^T = [[1,1,1,0],[0,1,-1,-1]].
// U and V fit int16, so the 16 per-point products summed over input channels are int16-pair
// GEMMs (intconv.ts gemmPairs, i32x4.dot_i16x8_s); all of it is ring arithmetic in int32, so A^T M
// A is 4 x the exact integer convolution modulo 2^32: exact, and the shift right by 2 too,
// whenever |sum| < 2^29 (at most 9 * 255 * 128 * cinGroup: cinGroup <= 1827). The epilogue is the
// direct path's (finishLanes), so outputs are bit-identical to convolutionPairs'. The input is
// read from padded int16 planes (paddedDifferences) so that no tile needs border code.
//
// A 5x5 kernel is four 3x3 blocks at row and column offsets 0 and 2 (rows 0-2 and 2-4, row 2 in
// the first block only; the same for columns): the block at (2a, 2b) reads the input 2a rows down
// and 2b columns right, so each input channel is four virtual channels 4 ci + 2a + b of a 3x3
// Winograd, their input tiles 0 or 1 tile further on. 64 products per 2x2 tile against the direct
// form's 100; |sum| <= 25 * 255 * 128 * cinGroup stays below 2^29 for cinGroup <= 657.

import { at } from "./gemm";
import { finishLanes, gemmPairs, int16Differences, weightPairsBytes } from "./intconv";

/** Points of the transformed domain per tile (4 x 4). */
const POINTS: i32 = 16;
/** Bytes left between consecutive per-point matrices beyond their size (4 KiB aliasing). */
const SKEW: i32 = 64;
/** Tiles whose input transform runs at once: one per int16 lane. */
const LANES: i32 = 8;

/** The 3x3 blocks of a `kernel` x `kernel` window (3 or 5): each is a virtual input channel. */
@inline
function blocksOf(kernel: i32): i32 {
  return kernel == 5 ? 4 : 1;
}

/** Byte offset of element `index` of a 2-byte-element array at `base`. */
@inline
function at16(base: usize, index: i32): usize {
  return base + (<usize>index << 1);
}

/**
 * Bytes of the transformed weights of `groups` groups of [coutGroup, cinGroup] `kernel` x `kernel`
 * kernels (3 or 5).
 */
export function intWinogradWeightsBytes(coutGroup: i32, cinGroup: i32, groups: i32, kernel: i32): i32 {
  return groups * POINTS * weightPairsBytes(coutGroup, blocksOf(kernel) * cinGroup);
}

/** The 16 points of 8 kernels (4 rows x 2 input channels) of the weight transform in progress. */
const entryScratch: usize = memory.data(POINTS * 16, 16);

/**
 * Transforms int8 weights [cout, cinGroup, kernel, kernel] (`groups` groups; `kernel` 3 or 5) to
 * U = G2 g G2^T in int16 for each 3x3 block g (virtual channel), laid out per group and per point
 * as the weight pairs (intconv.ts) of a [coutGroup x blocks * cinGroup] matrix,
 * intWinogradWeightsBytes at `target`: per group of 4 rows and pair of virtual channels, the 8
 * blocks' 16 points in entryScratch, then one 16-byte entry to each point's matrix.
 */
export function intWinogradWeights(
  weights: usize,
  cout: i32,
  cinGroup: i32,
  groups: i32,
  kernel: i32,
  target: usize,
): void {
  const coutGroup = cout / groups;
  const virtualChannels = blocksOf(kernel) * cinGroup;
  const taps = kernel * kernel;
  const matrixBytes = <usize>weightPairsBytes(coutGroup, virtualChannels);
  const pairs = (virtualChannels + 1) >> 1;
  let entry = target;
  for (let g = 0; g < groups; g++) {
    const groupWeights = weights + <usize>(g * coutGroup * cinGroup * taps);
    for (let row = 0; row < coutGroup; row += 4) {
      for (let q = 0; q < pairs; q++) {
        for (let lane = 0; lane < 8; lane++) {
          const co = row + (lane >> 1);
          const v = 2 * q + (lane & 1);
          const present = co < coutGroup && v < virtualChannels;
          const scratch = entryScratch + (<usize>lane << 1);
          if (kernel == 3) {
            const block = groupWeights + <usize>((co * cinGroup + v) * 9);
            transformKernel(block, 3, false, false, present, scratch);
          } else {
            // Block (a, b) of channel v / 4: rows 2a to 2a + 2 and columns 2b to 2b + 2, less
            // the row and column the block before it holds.
            const a = (v >> 1) & 1;
            const b = v & 1;
            const block = groupWeights + <usize>((co * cinGroup + (v >> 2)) * 25 + 10 * a + 2 * b);
            transformKernel(block, 5, a == 1, b == 1, present, scratch);
          }
        }
        for (let point = 0; point < POINTS; point++) {
          const values = v128.load(entryScratch + (<usize>point << 4));
          v128.store(entry + <usize>point * matrixBytes, values);
        }
        entry += 16;
      }
    }
    entry += <usize>(POINTS - 1) * matrixBytes;
  }
}

/**
 * G2 g G2^T of the 3x3 int8 block g at `block` (rows `rowStride` bytes apart; zeros when not
 * `present`, and in its first row or column when `skipRow` or `skipColumn`), as int16 at `target`
 * and every 16 bytes after it (one per point).
 */
@inline
function transformKernel(
  block: usize,
  rowStride: i32,
  skipRow: bool,
  skipColumn: bool,
  present: bool,
  target: usize,
): void {
  let g00 = 0, g01 = 0, g02 = 0, g10 = 0, g11 = 0, g12 = 0, g20 = 0, g21 = 0, g22 = 0;
  if (present) {
    const row1 = block + <usize>rowStride;
    const row2 = row1 + <usize>rowStride;
    g01 = <i32>load<i8>(block, 1);
    g02 = <i32>load<i8>(block, 2);
    g10 = <i32>load<i8>(row1);
    g11 = <i32>load<i8>(row1, 1);
    g12 = <i32>load<i8>(row1, 2);
    g20 = <i32>load<i8>(row2);
    g21 = <i32>load<i8>(row2, 1);
    g22 = <i32>load<i8>(row2, 2);
    g00 = <i32>load<i8>(block);
    if (skipRow) g00 = g01 = g02 = 0;
    if (skipColumn) g00 = g10 = g20 = 0;
  }
  // G2 g (4 x 3): rows 2 g0, g0 + g1 + g2, g0 - g1 + g2, 2 g2 of the kernel rows g_k.
  storeRow(target, 2 * g00, 2 * g01, 2 * g02);
  storeRow(target + 64, g00 + g10 + g20, g01 + g11 + g21, g02 + g12 + g22);
  storeRow(target + 128, g00 - g10 + g20, g01 - g11 + g21, g02 - g12 + g22);
  storeRow(target + 192, 2 * g20, 2 * g21, 2 * g22);
}

/**
 * Row (t0, t1, t2) of G2 g times G2^T: 2 t0, t0 + t1 + t2, t0 - t1 + t2, 2 t2, stored as int16
 * at `target` and 16, 32 and 48 bytes after it.
 */
@inline
function storeRow(target: usize, t0: i32, t1: i32, t2: i32): void {
  store<i16>(target, <i16>(2 * t0));
  store<i16>(target, <i16>(t0 + t1 + t2), 16);
  store<i16>(target, <i16>(t0 - t1 + t2), 32);
  store<i16>(target, <i16>(2 * t2), 48);
}

/** Tiles across an output row. */
@inline
function tilesAcrossOf(outW: i32): i32 {
  return (outW + 1) >> 1;
}

/**
 * Int16 values per padded input row: every group of 8 tiles' 16 columns, the 2 more read (4 for a
 * 5x5 window), slack.
 */
export function intWinogradPaddedWidth(outW: i32): i32 {
  return ((tilesAcrossOf(outW) + LANES - 1) / LANES) * 2 * LANES + 8;
}

/** Rows of a padded input plane: every tile row's two rows and the `kernel` - 1 more read. */
export function intWinogradPaddedHeight(outH: i32, kernel: i32): i32 {
  return 2 * ((outH + 1) >> 1) + kernel - 1;
}

/**
 * The padded int16 planes intWinogradConvolution reads: for each of `planes` planes of x [height,
 * width] (float q, or values quantized first when `quantize`, as int16Differences), int16 q -
 * offset at row padH + ih and column padW + iw of a [paddedH, paddedW] plane, zeros elsewhere.
 * `y` holds planes * paddedH * paddedW + paddedW int16 (the last plane's zeros run past it).
 */
export function paddedDifferences(
  x: usize,
  planes: i32,
  height: i32,
  width: i32,
  padH: i32,
  padW: i32,
  paddedH: i32,
  paddedW: i32,
  quantize: bool,
  quantScale: f32,
  offset: i32,
  y: usize,
): void {
  const planeValues = paddedH * paddedW;
  const lead = padH * paddedW + padW;
  const used = (padH + height) * paddedW;
  for (let p = 0; p < planes; p++) {
    const plane = at16(y, p * planeValues);
    memory.fill(plane, 0, <usize>lead << 1);
    // Each row's zeros run to the next row's first padW values (the right and left pads).
    int16Differences(at(x, p * height * width), height, width, paddedW, quantize, quantScale, offset, at16(plane, lead));
    memory.fill(at16(plane, used), 0, <usize>(planeValues - used) << 1);
  }
}

/** The matrix rows (int16 values) of a band's transformed input: its tiles, 2 groups of slack. */
@inline
function inputStride(tiles: i32): i32 {
  return productColumns(tiles) + LANES;
}

/**
 * Columns of the products per row for `tiles` tiles: a multiple of 8, so that the matrix products
 * have no edge tiles of few columns (they read the transformed input's slack there, whose sums
 * are not used).
 */
@inline
function productColumns(tiles: i32): i32 {
  return (tiles + LANES - 1) & ~(LANES - 1);
}

/**
 * Scratch bytes intWinogradConvolution needs for bands of `bandTileRows` tile rows: the
 * transformed input (16 int16 matrices [virtual channels x tiles]) and the products (16 int32
 * matrices [coutGroup x productColumns(tiles)], and 16 bytes the last vector reads past them),
 * SKEW bytes apart.
 */
export function intWinogradScratchBytes(
  cinGroup: i32,
  coutGroup: i32,
  outW: i32,
  bandTileRows: i32,
  kernel: i32,
): i32 {
  const tiles = bandTileRows * tilesAcrossOf(outW);
  const virtualChannels = blocksOf(kernel) * cinGroup;
  return POINTS * ((virtualChannels * inputStride(tiles) << 1) + SKEW) +
    POINTS * ((coutGroup * productColumns(tiles) << 2) + SKEW) + 16;
}

/** The even int16 lanes of `a` then of `b`: columns 0, 2, ... of a run of 16 values. */
@inline
function evens(a: v128, b: v128): v128 {
  return i8x16.shuffle(a, b, 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29);
}

/** The odd int16 lanes of `a` then of `b`. */
@inline
function odds(a: v128, b: v128): v128 {
  return i8x16.shuffle(a, b, 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
}

/**
 * B^T d B for the tiles of a band of one input channel (8 tiles at a time, one per lane), stored
 * as row `ci` (`stride` values) of the 16 int16 matrices at `transformed` (`matrixBytes` apart).
 * A last group of fewer than 8 tiles writes its spare lanes over tiles written later (the next tile
 * row's) or into the row's slack.
 */
function transformInput(
  plane: usize,
  paddedW: i32,
  firstTileRow: i32,
  tileRows: i32,
  tilesAcross: i32,
  ci: i32,
  stride: i32,
  transformed: usize,
  matrixBytes: usize,
): void {
  const rowBytes = <usize>paddedW << 1;
  for (let tileRow = 0; tileRow < tileRows; tileRow++) {
    const top = at16(plane, 2 * (firstTileRow + tileRow) * paddedW);
    for (let first = 0; first < tilesAcross; first += LANES) {
      const r0 = at16(top, 2 * first);
      const r1 = r0 + rowBytes;
      const r2 = r1 + rowBytes;
      const r3 = r2 + rowBytes;
      // d B along each of the four input rows: (d0 - d2, d1 + d2, d2 - d1, d1 - d3).
      const a0 = v128.load(r0);
      const b0 = v128.load(r0, 16);
      const c0 = v128.load(r0, 4);
      const e0 = v128.load(r0, 20);
      const x00 = evens(a0, b0);
      const x01 = odds(a0, b0);
      const x02 = evens(c0, e0);
      const x03 = odds(c0, e0);
      const t00 = i16x8.sub(x00, x02);
      const t01 = i16x8.add(x01, x02);
      const t02 = i16x8.sub(x02, x01);
      const t03 = i16x8.sub(x01, x03);
      const a1 = v128.load(r1);
      const b1 = v128.load(r1, 16);
      const c1 = v128.load(r1, 4);
      const e1 = v128.load(r1, 20);
      const x10 = evens(a1, b1);
      const x11 = odds(a1, b1);
      const x12 = evens(c1, e1);
      const x13 = odds(c1, e1);
      const t10 = i16x8.sub(x10, x12);
      const t11 = i16x8.add(x11, x12);
      const t12 = i16x8.sub(x12, x11);
      const t13 = i16x8.sub(x11, x13);
      const a2 = v128.load(r2);
      const b2 = v128.load(r2, 16);
      const c2 = v128.load(r2, 4);
      const e2 = v128.load(r2, 20);
      const x20 = evens(a2, b2);
      const x21 = odds(a2, b2);
      const x22 = evens(c2, e2);
      const x23 = odds(c2, e2);
      const t20 = i16x8.sub(x20, x22);
      const t21 = i16x8.add(x21, x22);
      const t22 = i16x8.sub(x22, x21);
      const t23 = i16x8.sub(x21, x23);
      const a3 = v128.load(r3);
      const b3 = v128.load(r3, 16);
      const c3 = v128.load(r3, 4);
      const e3 = v128.load(r3, 20);
      const x30 = evens(a3, b3);
      const x31 = odds(a3, b3);
      const x32 = evens(c3, e3);
      const x33 = odds(c3, e3);
      const t30 = i16x8.sub(x30, x32);
      const t31 = i16x8.add(x31, x32);
      const t32 = i16x8.sub(x32, x31);
      const t33 = i16x8.sub(x31, x33);
      // B^T down each column: point (i, j) is matrix 4i + j.
      const target = at16(transformed, ci * stride + tileRow * tilesAcross + first);
      const step = matrixBytes;
      v128.store(target, i16x8.sub(t00, t20));
      v128.store(target + step, i16x8.sub(t01, t21));
      v128.store(target + 2 * step, i16x8.sub(t02, t22));
      v128.store(target + 3 * step, i16x8.sub(t03, t23));
      v128.store(target + 4 * step, i16x8.add(t10, t20));
      v128.store(target + 5 * step, i16x8.add(t11, t21));
      v128.store(target + 6 * step, i16x8.add(t12, t22));
      v128.store(target + 7 * step, i16x8.add(t13, t23));
      v128.store(target + 8 * step, i16x8.sub(t20, t10));
      v128.store(target + 9 * step, i16x8.sub(t21, t11));
      v128.store(target + 10 * step, i16x8.sub(t22, t12));
      v128.store(target + 11 * step, i16x8.sub(t23, t13));
      v128.store(target + 12 * step, i16x8.sub(t10, t30));
      v128.store(target + 13 * step, i16x8.sub(t11, t31));
      v128.store(target + 14 * step, i16x8.sub(t12, t32));
      v128.store(target + 15 * step, i16x8.sub(t13, t33));
    }
  }
}

/** Stores the first `count` lanes of `values` at `target` (all four when count >= 4). */
@inline
function storeLanes(target: usize, values: v128, count: i32): void {
  if (count >= 4) {
    v128.store(target, values);
  } else {
    if (count > 0) store<i32>(target, i32x4.extract_lane(values, 0));
    if (count > 1) store<i32>(target, i32x4.extract_lane(values, 1), 4);
    if (count > 2) store<i32>(target, i32x4.extract_lane(values, 2), 8);
  }
}

/** The exact sums of four tiles (A^T M A, divided by 4), finished by the epilogue when not 0. */
@inline
function finished(y: v128, epilogue: usize, channel: i32): v128 {
  const sums = i32x4.shr_s(y, 2);
  return epilogue != 0 ? finishLanes(sums, epilogue, channel) : sums;
}

/**
 * A^T M A / 4 for every tile of a band and output channel `co` (products: 16 int32 matrices
 * [coutGroup x columns] at `products`, `matrixBytes` apart), four tiles at a time, finished by the
 * epilogue (channel `channel`) and written to the output plane `plane`.
 */
function transformOutput(
  products: usize,
  matrixBytes: usize,
  columns: i32,
  co: i32,
  tileRows: i32,
  tilesAcross: i32,
  firstTileRow: i32,
  epilogue: usize,
  channel: i32,
  plane: usize,
  outH: i32,
  outW: i32,
): void {
  const step = matrixBytes;
  for (let tileRow = 0; tileRow < tileRows; tileRow++) {
    const oh = 2 * (firstTileRow + tileRow);
    const row0 = at(plane, oh * outW);
    const second = oh + 1 < outH;
    for (let first = 0; first < tilesAcross; first += 4) {
      const m = at(products, co * columns + tileRow * tilesAcross + first);
      // A^T down each column j: s_j = M0j + M1j + M2j, d_j = M1j - M2j - M3j.
      const m00 = v128.load(m);
      const m01 = v128.load(m + step);
      const m02 = v128.load(m + 2 * step);
      const m03 = v128.load(m + 3 * step);
      const m10 = v128.load(m + 4 * step);
      const m11 = v128.load(m + 5 * step);
      const m12 = v128.load(m + 6 * step);
      const m13 = v128.load(m + 7 * step);
      const m20 = v128.load(m + 8 * step);
      const m21 = v128.load(m + 9 * step);
      const m22 = v128.load(m + 10 * step);
      const m23 = v128.load(m + 11 * step);
      const m30 = v128.load(m + 12 * step);
      const m31 = v128.load(m + 13 * step);
      const m32 = v128.load(m + 14 * step);
      const m33 = v128.load(m + 15 * step);
      const s0 = i32x4.add(i32x4.add(m00, m10), m20);
      const s1 = i32x4.add(i32x4.add(m01, m11), m21);
      const s2 = i32x4.add(i32x4.add(m02, m12), m22);
      const s3 = i32x4.add(i32x4.add(m03, m13), m23);
      const d0 = i32x4.sub(i32x4.sub(m10, m20), m30);
      const d1 = i32x4.sub(i32x4.sub(m11, m21), m31);
      const d2 = i32x4.sub(i32x4.sub(m12, m22), m32);
      const d3 = i32x4.sub(i32x4.sub(m13, m23), m33);
      // ... and along each row.
      const y00 = finished(i32x4.add(i32x4.add(s0, s1), s2), epilogue, channel);
      const y01 = finished(i32x4.sub(i32x4.sub(s1, s2), s3), epilogue, channel);
      const count = outW - 2 * first;
      const out0 = at(row0, 2 * first);
      storeLanes(out0, v128.shuffle<i32>(y00, y01, 0, 4, 1, 5), count);
      if (count > 4) storeLanes(out0 + 16, v128.shuffle<i32>(y00, y01, 2, 6, 3, 7), count - 4);
      if (second) {
        const y10 = finished(i32x4.add(i32x4.add(d0, d1), d2), epilogue, channel);
        const y11 = finished(i32x4.sub(i32x4.sub(d1, d2), d3), epilogue, channel);
        const out1 = at(out0, outW);
        storeLanes(out1, v128.shuffle<i32>(y10, y11, 0, 4, 1, 5), count);
        if (count > 4) storeLanes(out1 + 16, v128.shuffle<i32>(y10, y11, 2, 6, 3, 7), count - 4);
      }
    }
  }
}

/**
 * The integer 3x3 or 5x5 (`kernel`) Convolution at stride 1 and dilation 1 through F(2x2, 3x3):
 * for each image, group and band of `bandTileRows` rows of 2x2 output tiles, transforms the input
 * (B^T d B) of the padded planes `padded` (paddedDifferences: [batch * cin, paddedH, paddedW]
 * int16; for each 3x3 block of a 5x5 window, the plane as that block reads it), runs the 16
 * int16-pair matrix products against `transformed` weights (intWinogradWeights), transforms the
 * products back (A^T M A / 4) and finishes them by the epilogue at `epilogue` (intconv.ts; 0: the
 * int32 sums). `scratch` holds intWinogradScratchBytes(cin / groups, cout / groups, outW,
 * bandTileRows, kernel) bytes (16-aligned); y gets [batch, cout, outH, outW].
 */
export function intWinogradConvolution(
  padded: usize,
  batch: i32,
  cin: i32,
  paddedH: i32,
  paddedW: i32,
  transformed: usize,
  cout: i32,
  groups: i32,
  outH: i32,
  outW: i32,
  kernel: i32,
  bandTileRows: i32,
  scratch: usize,
  y: usize,
  epilogue: usize,
): void {
  const cinGroup = cin / groups;
  const coutGroup = cout / groups;
  const blocks = blocksOf(kernel);
  const virtualChannels = blocks * cinGroup;
  const tilesAcross = tilesAcrossOf(outW);
  const tilesDown = (outH + 1) >> 1;
  const planeValues = paddedH * paddedW;
  const weightBytes = <usize>weightPairsBytes(coutGroup, virtualChannels);
  const bandTiles = bandTileRows * tilesAcross;
  const inputs = scratch;
  const products = inputs + <usize>POINTS * <usize>((virtualChannels * inputStride(bandTiles) << 1) + SKEW);
  for (let n = 0; n < batch; n++) {
    for (let g = 0; g < groups; g++) {
      const xGroup = at16(padded, (n * cin + g * cinGroup) * planeValues);
      const yGroup = at(y, (n * cout + g * coutGroup) * outH * outW);
      const groupWeights = transformed + <usize>(g * POINTS) * weightBytes;
      for (let firstTileRow = 0; firstTileRow < tilesDown; firstTileRow += bandTileRows) {
        const tileRows = min(bandTileRows, tilesDown - firstTileRow);
        const tiles = tileRows * tilesAcross;
        const stride = inputStride(tiles);
        const inputBytes = <usize>((virtualChannels * stride << 1) + SKEW);
        const columns = productColumns(tiles);
        const productBytes = <usize>((coutGroup * columns << 2) + SKEW);
        for (let ci = 0; ci < cinGroup; ci++) {
          const plane = at16(xGroup, ci * planeValues);
          for (let block = 0; block < blocks; block++) {
            // Block (a, b) = (block >> 1, block & 1) of a 5x5 window reads 2a rows down, 2b right.
            const shifted = at16(plane, 2 * ((block >> 1) * paddedW + (block & 1)));
            const v = blocks * ci + block;
            transformInput(shifted, paddedW, firstTileRow, tileRows, tilesAcross, v, stride, inputs, inputBytes);
          }
        }
        for (let point = 0; point < POINTS; point++) {
          gemmPairs<i16>(
            coutGroup,
            columns,
            virtualChannels,
            groupWeights + <usize>point * weightBytes,
            inputs + <usize>point * inputBytes,
            stride,
            products + <usize>point * productBytes,
            columns,
            0,
            0,
            false,
            0,
            0,
          );
        }
        for (let co = 0; co < coutGroup; co++) {
          transformOutput(
            products,
            productBytes,
            columns,
            co,
            tileRows,
            tilesAcross,
            firstTileRow,
            epilogue,
            g * coutGroup + co,
            at(yGroup, co * outH * outW),
            outH,
            outW,
          );
        }
      }
    }
  }
}
