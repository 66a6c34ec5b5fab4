// The float matrix product on packed panels: C[m, n] = A[m, k] x B[k, n] with A packed in panels
// of 4 rows ([k][4] each) and B in panels of 8 columns ([k][8] each), blocked over k so that a
// piece of a B panel stays in L1 while every row panel of a block of A passes over it, and a
// 4 x 8 tile of C held in registers (8 accumulators). Every element of C sums its products in
// order of k in one float32 accumulator, then adds its row's bias and applies the ReLU, as the
// unpacked loops did (same results to the bit). An edge of C one to four columns wide (n = 49 at
// 7x7 planes: one column past six panels) is computed for several row panels at once, a vector of
// four rows per panel and column, so that up to eight chains of multiply-adds overlap where one
// panel has one to four (each waits on the latency of the one before it).

import { reluLanes } from "./elementwise";
import { at, columnIn, columnOut, madd, rowLanes } from "./gemm";

/** Rows of A per panel. */
export const ROWS: i32 = 4;
/** Columns of B per panel. */
export const COLUMNS: i32 = 8;
/** Products per pass: a piece of a B panel (KC x 8 floats, 8 KiB) stays in L1. */
const KC: i32 = 256;
/** Column panels of B up to which a product is not blocked over k (see gemmPanels). */
const FEW_PANELS: i32 = 2;
/** Rows of A per pass: a block of A (MC x KC floats, 128 KiB) stays in L2. */
const MC: i32 = 128;

/** A 4 x 8 tile for the edges of C (rows or columns short of a full tile). */
const edgeTile: usize = memory.data(ROWS * COLUMNS * 4, 16);

/** Bytes of A packed in row panels (m rows rounded up to 4, k products). */
@inline
export function packedRowsBytes(m: i32, k: i32): i32 {
  return ((m + ROWS - 1) / ROWS) * ROWS * k * 4;
}

/** Bytes of B packed in column panels (n columns rounded up to 8, k products). */
@inline
export function packedColumnsBytes(n: i32, k: i32): i32 {
  return ((n + COLUMNS - 1) / COLUMNS) * COLUMNS * k * 4;
}

/**
 * Floats between consecutive rows of the float im2col (conv.ts im2colColumns) for `columns` columns: an odd number of whole
 * 64-byte lines, so that the matrix product's reads down an 8-column panel, one row after
 * another, spread over every set of the L1 cache (rows of 1,024 floats, 4 KiB apart, would all
 * fall in one set, and a column panel of 75 rows be read from L2 again for every 4 rows of A).
 */
export function colRowStride(columns: i32): i32 {
  return (((columns + 15) >> 4) | 1) << 4;
}

/** Byte offset of B[p, q] in column panels of `k` products at `packed`. */
@inline
export function panelAt(packed: usize, k: i32, p: i32, q: i32): usize {
  return packed + ((<usize>(q >> 3) * <usize>k + <usize>p) << 5) + (<usize>(q & 7) << 2);
}

/** Packs row-major A[m, k] (rows `lda` apart) in row panels; rows past m are 0. */
export function packRows(a: usize, lda: i32, m: i32, k: i32, packed: usize): void {
  const panels = (m + ROWS - 1) / ROWS;
  let target = packed;
  for (let panel = 0; panel < panels; panel++) {
    const row = panel * ROWS;
    for (let p = 0; p < k; p++) {
      for (let r = 0; r < ROWS; r++) {
        const value: f32 = row + r < m ? load<f32>(at(a, (row + r) * lda + p)) : 0;
        store<f32>(target, value);
        target += 4;
      }
    }
  }
}

/** Packs row-major B[k, n] (rows `ldb` apart) in column panels (the last panel's tail unset). */
export function packColumns(b: usize, ldb: i32, k: i32, n: i32, packed: usize): void {
  for (let p = 0; p < k; p++) copyRun(at(b, p * ldb), n, packed, k, p, 0);
}

/** Writes `count` floats from `source` to B[p, q..q+count) of panels of `k` products. */
export function copyRun(source: usize, count: i32, packed: usize, k: i32, p: i32, q: i32): void {
  let from = source;
  let column = q;
  const end = q + count;
  while (column < end) {
    const target = panelAt(packed, k, p, column);
    if ((column & 7) == 0 && column + 8 <= end) {
      v128.store(target, v128.load(from));
      v128.store(target, v128.load(from, 16), 16);
      column += 8;
      from += 32;
    } else {
      store<f32>(target, load<f32>(from));
      column++;
      from += 4;
    }
  }
}

/**
 * C[m, n] (rows `ldc` apart) = packed A x B; then, when `bias` is not 0, + bias[row]; then, when
 * `relu`, max(v, 0) + s * min(v, 0) with s = slopes[row] when `slopes` is not 0 (PReLU), else
 * `slope`. B is packed in column panels when `ldb` is 0, else row-major as it is ([k, n], rows
 * `ldb` floats apart, read eight columns at a time: up to seven floats past row k - 1's end are
 * read and not used), e.g. a 1x1 stride-1 convolution's input or im2colColumns' col; the same sums
 * in the same order either way.
 */
export function gemmPanels(
  m: i32,
  n: i32,
  k: i32,
  packedA: usize,
  b: usize,
  ldb: i32,
  c: usize,
  ldc: i32,
  bias: usize,
  relu: bool,
  slope: f32,
  slopes: usize,
): void {
  // Bytes from one k to the next within a panel's columns.
  const bStep: usize = ldb == 0 ? 32 : <usize>ldb << 2;
  const panels = (n + COLUMNS - 1) / COLUMNS;
  // A product of few column panels and at most 2 KC products (Winograd's at small planes, e.g.
  // ResNet-50's 512 channels at 7x7: 16 products [512 x 512] x [512 x 16]) passes over each row
  // panel of A once, whole: A then streams in order, once, and a B panel (16 KiB) still fits L1.
  const kc = panels <= FEW_PANELS && k <= 2 * KC ? k : KC;
  for (let k0 = 0; k0 < k; k0 += kc) {
    const k1 = min(k0 + kc, k);
    const first = k0 == 0;
    const last = k1 == k;
    for (let m0 = 0; m0 < m; m0 += MC) {
      const m1 = min(m0 + MC, m);
      for (let panel = 0; panel < panels; panel++) {
        const column = panel * COLUMNS;
        const columns = min(COLUMNS, n - column);
        const bp = ldb == 0
          ? b + ((<usize>panel * <usize>k + <usize>k0) << 5)
          : b + ((<usize>k0 * <usize>ldb + <usize>column) << 2);
        // An edge one to four columns wide: several row panels at a time (narrowGroups).
        const start = columns <= 4
          ? narrowGroups(packedA, k, k0, k1 - k0, bp, bStep, at(c, column), ldc, m0, m1, columns, first, last, bias, relu, slope, slopes)
          : m0;
        for (let row = start; row < m1; row += ROWS) {
          const ap = packedA + ((<usize>(row >> 2) * <usize>k + <usize>k0) << 4);
          const rows = min(ROWS, m - row);
          const target = at(c, row * ldc + column);
          const rowBias = bias == 0 ? 0 : at(bias, row);
          const rowSlopes = slopes == 0 ? 0 : at(slopes, row);
          if (rows == ROWS && columns == COLUMNS) {
            tile(ap, bp, bStep, k1 - k0, target, ldc, first, last, rowBias, ROWS, relu, slope, rowSlopes, true);
          } else if (columns <= 3) {
            narrowEdge(ap, bp, bStep, k1 - k0, target, ldc, rows, columns, first, last, rowBias, relu, slope, rowSlopes);
          } else {
            edge(ap, bp, bStep, k1 - k0, target, ldc, rows, columns, first, last, rowBias, relu, slope, rowSlopes);
          }
        }
      }
    }
  }
}

/**
 * Rows m0.. of an edge of C `columns` (1 to 4) wide at `c` (its first column), in groups of row
 * panels (groupSums): eight panels for one column, four for two, two for three or four. Returns the
 * first row it left (fewer rows than a group before m1), which narrowEdge and edge compute.
 */
function narrowGroups(
  packedA: usize,
  k: i32,
  k0: i32,
  kc: i32,
  bp: usize,
  bStep: usize,
  c: usize,
  ldc: i32,
  m0: i32,
  m1: i32,
  columns: i32,
  first: bool,
  last: bool,
  bias: usize,
  relu: bool,
  slope: f32,
  slopes: usize,
): i32 {
  const group = columns == 1 ? 8 : columns == 2 ? 4 : 2;
  const panelStep = <usize>k << 4;
  let row = m0;
  for (; row + group * ROWS <= m1; row += group * ROWS) {
    const ap = packedA + ((<usize>(row >> 2) * <usize>k + <usize>k0) << 4);
    const target = at(c, row * ldc);
    const rowBias = bias == 0 ? 0 : at(bias, row);
    const rowSlopes = slopes == 0 ? 0 : at(slopes, row);
    if (columns == 1) {
      oneColumnGroup(ap, panelStep, bp, bStep, kc, target, ldc, first, last, rowBias, relu, slope, rowSlopes);
    } else if (columns == 2) {
      twoColumnGroup(ap, panelStep, bp, bStep, kc, target, ldc, first, last, rowBias, relu, slope, rowSlopes);
    } else if (columns == 3) {
      threeColumnGroup(ap, panelStep, bp, bStep, kc, target, ldc, first, last, rowBias, relu, slope, rowSlopes);
    } else {
      fourColumnGroup(ap, panelStep, bp, bStep, kc, target, ldc, first, last, rowBias, relu, slope, rowSlopes);
    }
  }
  return row;
}

// groupSums for each width, each compiled on its own: inlined side by side, the optimizer merged
// the three- and four-column bodies into one with their sizes as variables (a division per sum).

/** groupSums of 8 row panels by 1 column. */
function oneColumnGroup(ap: usize, panelStep: usize, bp: usize, bStep: usize, kc: i32, target: usize, ldc: i32, first: bool, last: bool, bias: usize, relu: bool, slope: f32, slopes: usize): void {
  groupSums(ap, panelStep, bp, bStep, kc, target, ldc, first, last, bias, relu, slope, slopes, 8, 1);
}

/** groupSums of 4 row panels by 2 columns. */
function twoColumnGroup(ap: usize, panelStep: usize, bp: usize, bStep: usize, kc: i32, target: usize, ldc: i32, first: bool, last: bool, bias: usize, relu: bool, slope: f32, slopes: usize): void {
  groupSums(ap, panelStep, bp, bStep, kc, target, ldc, first, last, bias, relu, slope, slopes, 4, 2);
}

/** groupSums of 2 row panels by 3 columns. */
function threeColumnGroup(ap: usize, panelStep: usize, bp: usize, bStep: usize, kc: i32, target: usize, ldc: i32, first: bool, last: bool, bias: usize, relu: bool, slope: f32, slopes: usize): void {
  groupSums(ap, panelStep, bp, bStep, kc, target, ldc, first, last, bias, relu, slope, slopes, 2, 3);
}

/** groupSums of 2 row panels by 4 columns. */
function fourColumnGroup(ap: usize, panelStep: usize, bp: usize, bStep: usize, kc: i32, target: usize, ldc: i32, first: bool, last: bool, bias: usize, relu: bool, slope: f32, slopes: usize): void {
  groupSums(ap, panelStep, bp, bStep, kc, target, ldc, first, last, bias, relu, slope, slopes, 2, 4);
}

/** The `index`th of eight vectors (a constant index where inlined). */
@inline
function nth(index: i32, v0: v128, v1: v128, v2: v128, v3: v128, v4: v128, v5: v128, v6: v128, v7: v128): v128 {
  return index == 0 ? v0 : index == 1 ? v1 : index == 2 ? v2 : index == 3 ? v3 : index == 4 ? v4 : index == 5 ? v5 : index == 6 ? v6 : v7;
}

/** Sum `index` of groupSums (panel index / columns, column index % columns) as the epilogue leaves it, stored. */
@inline
function groupOut(
  sums: v128,
  index: i32,
  columns: i32,
  target: usize,
  ldc: i32,
  last: bool,
  bias: usize,
  relu: bool,
  slope: f32,
  slopes: usize,
): void {
  const row = (index / columns) * ROWS;
  let values = sums;
  if (last && bias != 0) values = f32x4.add(values, v128.load(at(bias, row)));
  if (last && relu) {
    values = reluLanes(values, slopes == 0 ? f32x4.splat(slope) : v128.load(at(slopes, row)));
  }
  columnOut(at(target, row * ldc + index % columns), ldc, ROWS, values);
}

/** Sum `index` of groupSums before its first product: 0, or C's value when not `first`. */
@inline
function groupIn(index: i32, columns: i32, target: usize, ldc: i32, first: bool): v128 {
  const row = (index / columns) * ROWS;
  return first ? f32x4.splat(0) : columnIn(at(target, row * ldc + index % columns), ldc, ROWS);
}

/**
 * `panels` full row panels (4 rows each, `panelStep` bytes apart in packed A) by `columns` columns
 * of C (panels x columns <= 8; constants where inlined): one vector per panel and column, its four
 * rows' sums, as narrowEdge computes them for one panel, so that panels x columns chains of
 * multiply-adds are in flight where narrowEdge has `columns` (each waits on the one before it). Each
 * sum is tile's, in its order.
 */
@inline
function groupSums(
  ap: usize,
  panelStep: usize,
  bp: usize,
  bStep: usize,
  kc: i32,
  target: usize,
  ldc: i32,
  first: bool,
  last: bool,
  bias: usize,
  relu: bool,
  slope: f32,
  slopes: usize,
  panels: i32,
  columns: i32,
): void {
  const sums = panels * columns;
  const zero = f32x4.splat(0);
  let s0 = groupIn(0, columns, target, ldc, first);
  let s1 = sums > 1 ? groupIn(1, columns, target, ldc, first) : zero;
  let s2 = sums > 2 ? groupIn(2, columns, target, ldc, first) : zero;
  let s3 = sums > 3 ? groupIn(3, columns, target, ldc, first) : zero;
  let s4 = sums > 4 ? groupIn(4, columns, target, ldc, first) : zero;
  let s5 = sums > 5 ? groupIn(5, columns, target, ldc, first) : zero;
  let s6 = sums > 6 ? groupIn(6, columns, target, ldc, first) : zero;
  let s7 = sums > 7 ? groupIn(7, columns, target, ldc, first) : zero;
  const o1 = panelStep;
  const o2 = panelStep * 2;
  const o3 = panelStep * 3;
  const o4 = panelStep * 4;
  const o5 = panelStep * 5;
  const o6 = panelStep * 6;
  const o7 = panelStep * 7;
  let a = ap;
  let b = bp;
  const end = ap + (<usize>kc << 4);
  while (a < end) {
    const b0 = v128.load32_splat(b);
    const b1 = columns > 1 ? v128.load32_splat(b, 4) : zero;
    const b2 = columns > 2 ? v128.load32_splat(b, 8) : zero;
    const b3 = columns > 3 ? v128.load32_splat(b, 12) : zero;
    const a0 = v128.load(a);
    const a1 = panels > 1 ? v128.load(a + o1) : zero;
    const a2 = panels > 2 ? v128.load(a + o2) : zero;
    const a3 = panels > 3 ? v128.load(a + o3) : zero;
    const a4 = panels > 4 ? v128.load(a + o4) : zero;
    const a5 = panels > 5 ? v128.load(a + o5) : zero;
    const a6 = panels > 6 ? v128.load(a + o6) : zero;
    const a7 = panels > 7 ? v128.load(a + o7) : zero;
    s0 = madd<f32>(a0, b0, s0);
    if (sums > 1) s1 = madd<f32>(nth(1 / columns, a0, a1, a2, a3, a4, a5, a6, a7), nth(1 % columns, b0, b1, b2, b3, zero, zero, zero, zero), s1);
    if (sums > 2) s2 = madd<f32>(nth(2 / columns, a0, a1, a2, a3, a4, a5, a6, a7), nth(2 % columns, b0, b1, b2, b3, zero, zero, zero, zero), s2);
    if (sums > 3) s3 = madd<f32>(nth(3 / columns, a0, a1, a2, a3, a4, a5, a6, a7), nth(3 % columns, b0, b1, b2, b3, zero, zero, zero, zero), s3);
    if (sums > 4) s4 = madd<f32>(nth(4 / columns, a0, a1, a2, a3, a4, a5, a6, a7), nth(4 % columns, b0, b1, b2, b3, zero, zero, zero, zero), s4);
    if (sums > 5) s5 = madd<f32>(nth(5 / columns, a0, a1, a2, a3, a4, a5, a6, a7), nth(5 % columns, b0, b1, b2, b3, zero, zero, zero, zero), s5);
    if (sums > 6) s6 = madd<f32>(nth(6 / columns, a0, a1, a2, a3, a4, a5, a6, a7), nth(6 % columns, b0, b1, b2, b3, zero, zero, zero, zero), s6);
    if (sums > 7) s7 = madd<f32>(nth(7 / columns, a0, a1, a2, a3, a4, a5, a6, a7), nth(7 % columns, b0, b1, b2, b3, zero, zero, zero, zero), s7);
    a += 16;
    b += bStep;
  }
  groupOut(s0, 0, columns, target, ldc, last, bias, relu, slope, slopes);
  if (sums > 1) groupOut(s1, 1, columns, target, ldc, last, bias, relu, slope, slopes);
  if (sums > 2) groupOut(s2, 2, columns, target, ldc, last, bias, relu, slope, slopes);
  if (sums > 3) groupOut(s3, 3, columns, target, ldc, last, bias, relu, slope, slopes);
  if (sums > 4) groupOut(s4, 4, columns, target, ldc, last, bias, relu, slope, slopes);
  if (sums > 5) groupOut(s5, 5, columns, target, ldc, last, bias, relu, slope, slopes);
  if (sums > 6) groupOut(s6, 6, columns, target, ldc, last, bias, relu, slope, slopes);
  if (sums > 7) groupOut(s7, 7, columns, target, ldc, last, bias, relu, slope, slopes);
}

/**
 * A tile of C short of 4 x 8: computed in edgeTile (four columns of it when `columns` <= 4), then
 * its `rows` x `columns` copied.
 */
function edge(
  ap: usize,
  bp: usize,
  bStep: usize,
  kc: i32,
  target: usize,
  ldc: i32,
  rows: i32,
  columns: i32,
  first: bool,
  last: bool,
  bias: usize,
  relu: bool,
  slope: f32,
  slopes: usize,
): void {
  if (!first) {
    for (let r = 0; r < rows; r++) {
      for (let q = 0; q < columns; q++) {
        store<f32>(at(edgeTile, r * COLUMNS + q), load<f32>(at(target, r * ldc + q)));
      }
    }
  }
  if (columns <= 4) {
    tile(ap, bp, bStep, kc, edgeTile, COLUMNS, first, last, bias, rows, relu, slope, slopes, false);
  } else {
    tile(ap, bp, bStep, kc, edgeTile, COLUMNS, first, last, bias, rows, relu, slope, slopes, true);
  }
  for (let r = 0; r < rows; r++) {
    for (let q = 0; q < columns; q++) {
      store<f32>(at(target, r * ldc + q), load<f32>(at(edgeTile, r * COLUMNS + q)));
    }
  }
}

/**
 * An edge of C one to three columns wide: each column's four rows in one vector, the row panel's
 * four values of each product (as packed) times B's value, so that no lane is wasted (tile's
 * four-column form would fill three of four lanes or fewer). Each sum is tile's, in its order;
 * rows past `rows` are not stored.
 */
function narrowEdge(
  ap: usize,
  bp: usize,
  bStep: usize,
  kc: i32,
  target: usize,
  ldc: i32,
  rows: i32,
  columns: i32,
  first: bool,
  last: bool,
  bias: usize,
  relu: bool,
  slope: f32,
  slopes: usize,
): void {
  if (columns == 1) {
    columnSums(ap, bp, bStep, kc, target, ldc, rows, 1, first, last, bias, relu, slope, slopes);
  } else if (columns == 2) {
    columnSums(ap, bp, bStep, kc, target, ldc, rows, 2, first, last, bias, relu, slope, slopes);
  } else {
    columnSums(ap, bp, bStep, kc, target, ldc, rows, 3, first, last, bias, relu, slope, slopes);
  }
}

/** narrowEdge for `columns` columns (a constant where inlined). */
@inline
function columnSums(
  ap: usize,
  bp: usize,
  bStep: usize,
  kc: i32,
  target: usize,
  ldc: i32,
  rows: i32,
  columns: i32,
  first: bool,
  last: bool,
  bias: usize,
  relu: bool,
  slope: f32,
  slopes: usize,
): void {
  const zero = f32x4.splat(0);
  let s0 = first ? zero : columnIn(target, ldc, rows);
  let s1 = first || columns < 2 ? zero : columnIn(at(target, 1), ldc, rows);
  let s2 = first || columns < 3 ? zero : columnIn(at(target, 2), ldc, rows);
  let a = ap;
  let b = bp;
  const end = ap + (<usize>kc << 4);
  while (a < end) {
    const rowValues = v128.load(a);
    s0 = madd<f32>(rowValues, v128.load32_splat(b), s0);
    if (columns >= 2) s1 = madd<f32>(rowValues, v128.load32_splat(b, 4), s1);
    if (columns >= 3) s2 = madd<f32>(rowValues, v128.load32_splat(b, 8), s2);
    a += 16;
    b += bStep;
  }
  if (last && bias != 0) {
    const biases = rowLanes(bias, rows);
    s0 = f32x4.add(s0, biases);
    if (columns >= 2) s1 = f32x4.add(s1, biases);
    if (columns >= 3) s2 = f32x4.add(s2, biases);
  }
  if (last && relu) {
    const rowSlopes = slopes == 0 ? f32x4.splat(slope) : rowLanes(slopes, rows);
    s0 = reluLanes(s0, rowSlopes);
    if (columns >= 2) s1 = reluLanes(s1, rowSlopes);
    if (columns >= 3) s2 = reluLanes(s2, rowSlopes);
  }
  columnOut(target, ldc, rows, s0);
  if (columns >= 2) columnOut(at(target, 1), ldc, rows, s1);
  if (columns >= 3) columnOut(at(target, 2), ldc, rows, s2);
}

/** Row r's bias as 4 lanes (0 when r is past `rows` or there is no bias). */
@inline
function biasLanes(bias: usize, r: i32, rows: i32): v128 {
  return bias != 0 && r < rows ? v128.load32_splat(at(bias, r)) : f32x4.splat(0);
}

/** Row r's ReLU slope as 4 lanes: slopes[r] (row 0's past `rows`), or `slope` without slopes. */
@inline
function slopeLanes(slopes: usize, slope: f32, r: i32, rows: i32): v128 {
  return slopes == 0 ? f32x4.splat(slope) : v128.load32_splat(at(slopes, r < rows ? r : 0));
}


/**
 * The 4 x 8 tile at `target` (rows `ldc` apart) over `kc` products, B's eight columns for
 * successive k `bStep` bytes apart; see gemmPanels. Without `wide`, its first four columns only
 * (an edge of C four columns wide or less; each sum the same, in the same order). Inlined with a
 * constant `wide`, the other branch is compiled away.
 */
@inline
function tile(
  ap: usize,
  bp: usize,
  bStep: usize,
  kc: i32,
  target: usize,
  ldc: i32,
  first: bool,
  last: bool,
  bias: usize,
  rows: i32,
  relu: bool,
  slope: f32,
  slopes: usize,
  wide: bool,
): void {
  const c0 = target;
  const c1 = at(c0, ldc);
  const c2 = at(c1, ldc);
  const c3 = at(c2, ldc);
  const zero = f32x4.splat(0);
  let s00 = first ? zero : v128.load(c0);
  let s01 = first || !wide ? zero : v128.load(c0, 16);
  let s10 = first ? zero : v128.load(c1);
  let s11 = first || !wide ? zero : v128.load(c1, 16);
  let s20 = first ? zero : v128.load(c2);
  let s21 = first || !wide ? zero : v128.load(c2, 16);
  let s30 = first ? zero : v128.load(c3);
  let s31 = first || !wide ? zero : v128.load(c3, 16);
  let a = ap;
  let b = bp;
  const end = bp + <usize>kc * bStep;
  const pairsEnd = bp + <usize>(kc & ~1) * bStep;
  while (b < pairsEnd) {
    const b0 = v128.load(b);
    const b1 = wide ? v128.load(b, 16) : zero;
    const a0 = v128.load32_splat(a);
    s00 = madd<f32>(a0, b0, s00);
    if (wide) s01 = madd<f32>(a0, b1, s01);
    const a1 = v128.load32_splat(a, 4);
    s10 = madd<f32>(a1, b0, s10);
    if (wide) s11 = madd<f32>(a1, b1, s11);
    const a2 = v128.load32_splat(a, 8);
    s20 = madd<f32>(a2, b0, s20);
    if (wide) s21 = madd<f32>(a2, b1, s21);
    const a3 = v128.load32_splat(a, 12);
    s30 = madd<f32>(a3, b0, s30);
    if (wide) s31 = madd<f32>(a3, b1, s31);
    const c0b = v128.load(b + bStep);
    const c1b = wide ? v128.load(b + bStep, 16) : zero;
    const e0 = v128.load32_splat(a, 16);
    s00 = madd<f32>(e0, c0b, s00);
    if (wide) s01 = madd<f32>(e0, c1b, s01);
    const e1 = v128.load32_splat(a, 16 + 4);
    s10 = madd<f32>(e1, c0b, s10);
    if (wide) s11 = madd<f32>(e1, c1b, s11);
    const e2 = v128.load32_splat(a, 16 + 8);
    s20 = madd<f32>(e2, c0b, s20);
    if (wide) s21 = madd<f32>(e2, c1b, s21);
    const e3 = v128.load32_splat(a, 16 + 12);
    s30 = madd<f32>(e3, c0b, s30);
    if (wide) s31 = madd<f32>(e3, c1b, s31);
    a += 32;
    b += bStep << 1;
  }
  if (b < end) {
    const b0 = v128.load(b);
    const b1 = wide ? v128.load(b, 16) : zero;
    const a0 = v128.load32_splat(a);
    s00 = madd<f32>(a0, b0, s00);
    if (wide) s01 = madd<f32>(a0, b1, s01);
    const a1 = v128.load32_splat(a, 4);
    s10 = madd<f32>(a1, b0, s10);
    if (wide) s11 = madd<f32>(a1, b1, s11);
    const a2 = v128.load32_splat(a, 8);
    s20 = madd<f32>(a2, b0, s20);
    if (wide) s21 = madd<f32>(a2, b1, s21);
    const a3 = v128.load32_splat(a, 12);
    s30 = madd<f32>(a3, b0, s30);
    if (wide) s31 = madd<f32>(a3, b1, s31);
  }
  if (last && bias != 0) {
    const bias0 = biasLanes(bias, 0, rows);
    const bias1 = biasLanes(bias, 1, rows);
    const bias2 = biasLanes(bias, 2, rows);
    const bias3 = biasLanes(bias, 3, rows);
    s00 = f32x4.add(s00, bias0);
    if (wide) s01 = f32x4.add(s01, bias0);
    s10 = f32x4.add(s10, bias1);
    if (wide) s11 = f32x4.add(s11, bias1);
    s20 = f32x4.add(s20, bias2);
    if (wide) s21 = f32x4.add(s21, bias2);
    s30 = f32x4.add(s30, bias3);
    if (wide) s31 = f32x4.add(s31, bias3);
  }
  if (last && relu) {
    const slopes0 = slopeLanes(slopes, slope, 0, rows);
    const slopes1 = slopeLanes(slopes, slope, 1, rows);
    const slopes2 = slopeLanes(slopes, slope, 2, rows);
    const slopes3 = slopeLanes(slopes, slope, 3, rows);
    s00 = reluLanes(s00, slopes0);
    if (wide) s01 = reluLanes(s01, slopes0);
    s10 = reluLanes(s10, slopes1);
    if (wide) s11 = reluLanes(s11, slopes1);
    s20 = reluLanes(s20, slopes2);
    if (wide) s21 = reluLanes(s21, slopes2);
    s30 = reluLanes(s30, slopes3);
    if (wide) s31 = reluLanes(s31, slopes3);
  }
  v128.store(c0, s00);
  if (wide) v128.store(c0, s01, 16);
  v128.store(c1, s10);
  if (wide) v128.store(c1, s11, 16);
  v128.store(c2, s20);
  if (wide) v128.store(c2, s21, 16);
  v128.store(c3, s30);
  if (wide) v128.store(c3, s31, 16);
}
