// Float convolutions at stride 1 and dilation 1 through Winograd (Lavin & Gray) in three forms
// F(m x m, r x r): on 6x6 blocks of the points 0, 1, -1, 2, -2 and infinity, F(4x4, 3x3) for 3x3
// kernels and F(2x2, 5x5) for 5x5 ones; on 4x4 blocks of the points 0, 1, -1 and infinity,
// F(2x2, 3x3) for 3x3 kernels on small planes (fewer outputs computed past the plane's edge, and
// a third of the weights to read). Each m x m block of outputs (a tile; m = 4 or 2) comes from an
// s x s block of input d (s = m + r - 1, the side) as A^T [(G g G^T) . (B^T d B)] A, so the
// r*r*m*m products per input channel of the direct form (144, 100 or 36) become s*s matrix
// products [cout x cin] x [cin x tiles] (one per point of the transformed domain) on the packed
// panels of assembly/engine/panels.ts. B^T (s x s) depends only on the points, so the two 6x6
// forms share the input transform; G (s x r) and A^T (m x s) are the form's. The weight transform
// G g G^T is a separate export so that a caller may keep its result across runs. Transforms run
// on four consecutive tiles of a band at a time (one per SIMD lane), whatever tile rows they are
// on. Rounding differs from the direct form (the transforms add and scale before the products):
// outputs agree within a few float32 ulps of the sum of |products| over the tile's reach.

import { reluLanes } from "./elementwise";
import { at } from "./gemm";
import { COLUMNS, gemmPanels, packedColumnsBytes, packedRowsBytes, panelAt } from "./panels";

/**
 * Bytes left between consecutive per-point matrices of a band beyond their size: a transform reads
 * or writes one vector in each of the 36, and strides that are multiples of 4 KiB would put them
 * all in one L1 set.
 */
const SKEW: i32 = 64;

/**
 * A transform in progress, one tile per lane: the s x s rows of an input transform, or the m x s
 * rows and then the m x m results (from vector 24) of an output transform.
 */
const rowsScratch: usize = memory.data(40 * 16, 16);
/** The r x r taps of the weight transform in progress (four kernels, one per lane). */
const tapScratch: usize = memory.data(25 * 16, 16);
/** G g of the weight transform in progress (6 x r vectors). */
const kernelScratch: usize = memory.data(30 * 16, 16);

/** Inputs across the block of a tile of `tile` outputs for an r x r `kernel`: 4 or 6. */
@inline
function sideOf(tile: i32, kernel: i32): i32 {
  return tile + kernel - 1;
}

/**
 * Bytes of the transformed weights of `groups` groups of [coutGroup, cinGroup] r x r kernels (r =
 * `kernel`) in the form of `tile` outputs across.
 */
export function winogradWeightsBytes(
  coutGroup: i32,
  cinGroup: i32,
  groups: i32,
  kernel: i32,
  tile: i32,
): i32 {
  const side = sideOf(tile, kernel);
  return groups * side * side * packedRowsBytes(coutGroup, cinGroup);
}

/**
 * G (s x r) applied to the r vectors at `source`, `step` bytes apart (a column or row of r x r
 * kernels, four kernels, one per lane): the s results go to `target`, `targetStep` bytes apart.
 * Row i of G is f_i (1, p_i, ..., p_i^(r-1)) for the points p = 0, 1, -1, 2, -2 with f = 1/4,
 * -1/6, -1/6, 1/24, 1/24 (s = 6), or p = 0, 1, -1 with f = 1, 1/2, 1/2 (s = 4), and
 * (0, ..., 0, 1) for infinity.
 */
@inline
function weightTransform(
  kernel: i32,
  side: i32,
  source: usize,
  step: usize,
  target: usize,
  targetStep: usize,
): void {
  const a = v128.load(source);
  const b = v128.load(source + step);
  const c = v128.load(source + 2 * step);
  if (side == 4) {
    const ac = f32x4.add(a, c);
    v128.store(target, a);
    v128.store(target + targetStep, times(f32x4.add(ac, b), 0.5));
    v128.store(target + 2 * targetStep, times(f32x4.sub(ac, b), 0.5));
    v128.store(target + 3 * targetStep, c);
  } else if (kernel == 3) {
    const ac = f32x4.add(a, c);
    const a4c = f32x4.add(a, times(c, 4));
    const b2 = times(b, 2);
    v128.store(target, times(a, 0.25));
    v128.store(target + targetStep, times(f32x4.add(ac, b), -1.0 / 6));
    v128.store(target + 2 * targetStep, times(f32x4.sub(ac, b), -1.0 / 6));
    v128.store(target + 3 * targetStep, times(f32x4.add(a4c, b2), 1.0 / 24));
    v128.store(target + 4 * targetStep, times(f32x4.sub(a4c, b2), 1.0 / 24));
    v128.store(target + 5 * targetStep, c);
  } else {
    const d = v128.load(source + 3 * step);
    const e = v128.load(source + 4 * step);
    const ace = f32x4.add(f32x4.add(a, c), e);
    const bd = f32x4.add(b, d);
    const a4c16e = f32x4.add(f32x4.add(a, times(c, 4)), times(e, 16));
    const b2d8 = f32x4.add(times(b, 2), times(d, 8));
    v128.store(target, times(a, 0.25));
    v128.store(target + targetStep, times(f32x4.add(ace, bd), -1.0 / 6));
    v128.store(target + 2 * targetStep, times(f32x4.sub(ace, bd), -1.0 / 6));
    v128.store(target + 3 * targetStep, times(f32x4.add(a4c16e, b2d8), 1.0 / 24));
    v128.store(target + 4 * targetStep, times(f32x4.sub(a4c16e, b2d8), 1.0 / 24));
    v128.store(target + 5 * targetStep, e);
  }
}

/** Tap `tap` of the kernels [row, ci] of rows row..row+3 (0 past `rows`), one per lane. */
@inline
function taps(
  weights: usize,
  row: i32,
  rows: i32,
  ci: i32,
  cinGroup: i32,
  area: i32,
  tap: i32,
): v128 {
  let lanes = f32x4.splat(0);
  const first = at(weights, (row * cinGroup + ci) * area + tap);
  const step = <usize>(cinGroup * area) << 2;
  if (row < rows) lanes = f32x4.replace_lane(lanes, 0, load<f32>(first));
  if (row + 1 < rows) lanes = f32x4.replace_lane(lanes, 1, load<f32>(first + step));
  if (row + 2 < rows) lanes = f32x4.replace_lane(lanes, 2, load<f32>(first + 2 * step));
  if (row + 3 < rows) lanes = f32x4.replace_lane(lanes, 3, load<f32>(first + 3 * step));
  return lanes;
}

/**
 * Transforms weights [cout, cinGroup, r, r] (`groups` groups; r = `kernel`, 3 or 5) to G g G^T
 * of the form of `tile` outputs across in float32, laid out per group and per point as the row
 * panels of a [coutGroup x cinGroup] matrix (panels.ts packRows; rows past coutGroup 0),
 * winogradWeightsBytes at `target`; four output channels at a time.
 */
export function winogradWeights(
  weights: usize,
  cout: i32,
  cinGroup: i32,
  groups: i32,
  kernel: i32,
  tile: i32,
  target: usize,
): void {
  const side = sideOf(tile, kernel);
  const coutGroup = cout / groups;
  const area = kernel * kernel;
  const matrixBytes = <usize>packedRowsBytes(coutGroup, cinGroup);
  const rowStep = <usize>kernel << 4;
  for (let g = 0; g < groups; g++) {
    const groupBase = target + <usize>(g * side * side) * matrixBytes;
    const groupWeights = at(weights, g * coutGroup * cinGroup * area);
    for (let row = 0; row < coutGroup; row += 4) {
      for (let ci = 0; ci < cinGroup; ci++) {
        for (let tap = 0; tap < area; tap++) {
          const lanes = taps(groupWeights, row, coutGroup, ci, cinGroup, area, tap);
          v128.store(tapScratch + (<usize>tap << 4), lanes);
        }
        // G g: s x r, in kernelScratch (rows rowStep apart).
        for (let j = 0; j < kernel; j++) {
          const column = <usize>j << 4;
          const source = tapScratch + column;
          weightTransform(kernel, side, source, rowStep, kernelScratch + column, rowStep);
        }
        // (G g) G^T: s x s, to the s * s matrices.
        const lane = groupBase + ((<usize>(row >> 2) * <usize>cinGroup + <usize>ci) << 4);
        for (let i = 0; i < side; i++) {
          const source = kernelScratch + <usize>i * rowStep;
          const first = lane + <usize>(i * side) * matrixBytes;
          weightTransform(kernel, side, source, 16, first, matrixBytes);
        }
      }
    }
  }
}

/**
 * Columns of the products per row for `tiles` tiles: whole panels of the transformed input (its
 * columns past `tiles` are zeros), so that the matrix products have no edge tiles of few columns.
 */
@inline
function panelWidth(tiles: i32): i32 {
  return (tiles + COLUMNS - 1) & ~(COLUMNS - 1);
}

/** Floats per padded input row: every group of four tiles' 4m columns and the 4 more read. */
@inline
function paddedWidth(outW: i32, tile: i32): i32 {
  const tilesAcross = (outW + tile - 1) / tile;
  return ((tilesAcross + 3) >> 2) * 4 * tile + 4;
}

/**
 * Scratch bytes winogradConvolution needs for an r x r `kernel` and `tile` outputs across a tile:
 * one channel's padded band of input rows, the transformed input of a band (s * s column-panel
 * matrices [cinGroup x tiles]) and the products (s * s matrices [coutGroup x tiles], rows as wide
 * as the input's panels, and 16 bytes the last vector reads past them), the matrices SKEW bytes
 * apart.
 */
export function winogradScratchBytes(
  cinGroup: i32,
  coutGroup: i32,
  outW: i32,
  bandTileRows: i32,
  kernel: i32,
  tile: i32,
): i32 {
  const side = sideOf(tile, kernel);
  const points = side * side;
  const tiles = bandTileRows * ((outW + tile - 1) / tile);
  const padded = (bandTileRows * tile + kernel - 1) * paddedWidth(outW, tile) * 4;
  return padded + points * (packedColumnsBytes(tiles, cinGroup) + SKEW) +
    points * (coutGroup * panelWidth(tiles) * 4 + SKEW) + 16;
}
/** The transpose (lanes of a0..a3 as rows) of 4 vectors, lane `row` of each: one row of it. */
@inline
function column0(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  return v128.shuffle<f32>(
    v128.shuffle<f32>(a0, a1, 0, 4, 1, 5),
    v128.shuffle<f32>(a2, a3, 0, 4, 1, 5),
    0,
    1,
    4,
    5,
  );
}

@inline
function column1(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  return v128.shuffle<f32>(
    v128.shuffle<f32>(a0, a1, 0, 4, 1, 5),
    v128.shuffle<f32>(a2, a3, 0, 4, 1, 5),
    2,
    3,
    6,
    7,
  );
}

@inline
function column2(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  return v128.shuffle<f32>(
    v128.shuffle<f32>(a0, a1, 2, 6, 3, 7),
    v128.shuffle<f32>(a2, a3, 2, 6, 3, 7),
    0,
    1,
    4,
    5,
  );
}

@inline
function column3(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  return v128.shuffle<f32>(
    v128.shuffle<f32>(a0, a1, 2, 6, 3, 7),
    v128.shuffle<f32>(a2, a3, 2, 6, 3, 7),
    2,
    3,
    6,
    7,
  );
}

@inline
function times(v: v128, factor: f32): v128 {
  return f32x4.mul(v, f32x4.splat(factor));
}

/**
 * The factors of the input and output transforms, read with `v128.load32_splat` where used: V8
 * builds a `v128.const` anew on every use in a loop, with several instructions.
 */
const FACTORS: usize = memory.data<f32>([2, 4, 5, 8]);
const TWO: usize = 0;
const FOUR: usize = 4;
const FIVE: usize = 8;
const EIGHT: usize = 12;

/** `v` times the factor at byte `factor` of FACTORS (TWO, FOUR, FIVE, EIGHT). */
@inline
function scaled(v: v128, factor: usize): v128 {
  return f32x4.mul(v, v128.load32_splat(FACTORS + factor));
}

/**
 * B^T (4 x 4, the points 0, 1, -1 and infinity) applied to four vectors d0..d3 (a column of a
 * tile, one tile per lane): the four results go to `target`, `step` bytes apart.
 */
@inline
function inputTransform4(d0: v128, d1: v128, d2: v128, d3: v128, target: usize, step: usize): void {
  v128.store(target, f32x4.sub(d0, d2));
  v128.store(target + step, f32x4.add(d1, d2));
  v128.store(target + 2 * step, f32x4.sub(d2, d1));
  v128.store(target + 3 * step, f32x4.sub(d1, d3));
}

/**
 * B^T (6 x 6) applied to six vectors d0..d5 (a column of a tile, one tile per lane): the six
 * results go to `target`, `step` bytes apart.
 */
@inline
function inputTransform(
  d0: v128,
  d1: v128,
  d2: v128,
  d3: v128,
  d4: v128,
  d5: v128,
  target: usize,
  step: usize,
): void {
  const s12 = f32x4.add(d1, d2);
  const d12 = f32x4.sub(d1, d2);
  const s34 = f32x4.add(d3, d4);
  const d43 = f32x4.sub(d4, d3);
  const d42 = f32x4.sub(d4, d2);
  const d31 = f32x4.sub(d3, d1);
  v128.store(target, f32x4.add(f32x4.sub(scaled(d0, FOUR), scaled(d2, FIVE)), d4));
  v128.store(target + step, f32x4.sub(s34, scaled(s12, FOUR)));
  v128.store(target + 2 * step, f32x4.add(d43, scaled(d12, FOUR)));
  v128.store(target + 3 * step, f32x4.add(d42, scaled(d31, TWO)));
  v128.store(target + 4 * step, f32x4.sub(d42, scaled(d31, TWO)));
  v128.store(target + 5 * step, f32x4.add(f32x4.sub(scaled(d1, FOUR), scaled(d3, FIVE)), d5));
}

/**
 * Copies rows firstRow - padH .. + rows of one input plane into `padded` (`rowFloats` floats a
 * row, the image starting padW columns in), zeros outside the image.
 */
function padBand(
  plane: usize,
  height: i32,
  width: i32,
  padH: i32,
  padW: i32,
  firstRow: i32,
  rows: i32,
  rowFloats: i32,
  padded: usize,
): void {
  memory.fill(padded, 0, <usize>(rows * rowFloats) << 2);
  const columns = min(width, rowFloats - padW);
  if (columns <= 0) return;
  for (let r = 0; r < rows; r++) {
    const ih = firstRow + r - padH;
    if (ih < 0 || ih >= height) continue;
    memory.copy(
      at(padded, r * rowFloats + padW),
      at(plane, ih * width),
      <usize>columns << 2,
    );
  }
}

/** Lanes 0 and 2 of `a`, then of `b`: the even columns of a run of 8 floats. */
@inline
function evens(a: v128, b: v128): v128 {
  return v128.shuffle<f32>(a, b, 0, 2, 4, 6);
}

/** Lanes 1 and 3 of `a`, then of `b`: the odd columns of a run of 8 floats. */
@inline
function odds(a: v128, b: v128): v128 {
  return v128.shuffle<f32>(a, b, 1, 3, 5, 7);
}

/**
 * B applied along input row `row` of four tiles side by side on one tile row (`tile` apart,
 * the first at `row`), one tile per lane: `side` vectors to `target`.
 */
@inline
function rowAcross(row: usize, tile: i32, side: i32, target: usize): void {
  if (side == 4) {
    const a0 = v128.load(row);
    const a2 = v128.load(row, 8);
    const a4 = v128.load(row, 16);
    const a6 = v128.load(row, 24);
    inputTransform4(evens(a0, a4), odds(a0, a4), evens(a2, a6), odds(a2, a6), target, 16);
  } else if (tile == 4) {
    rowOfTiles(row, row + 16, row + 32, row + 48, side, target);
  } else {
    const a0 = v128.load(row);
    const a2 = v128.load(row, 8);
    const a4 = v128.load(row, 16);
    const a6 = v128.load(row, 24);
    const a8 = v128.load(row, 32);
    inputTransform(
      evens(a0, a4),
      odds(a0, a4),
      evens(a2, a6),
      odds(a2, a6),
      evens(a4, a8),
      odds(a4, a8),
      target,
      16,
    );
  }
}

/**
 * B applied along one input row of four tiles anywhere (their rows at s0..s3), one tile per
 * lane: the rows are read as they are and transposed into columns; `side` vectors to `target`.
 */
@inline
function rowOfTiles(s0: usize, s1: usize, s2: usize, s3: usize, side: i32, target: usize): void {
  const a0 = v128.load(s0);
  const a1 = v128.load(s1);
  const a2 = v128.load(s2);
  const a3 = v128.load(s3);
  const d0 = column0(a0, a1, a2, a3);
  const d1 = column1(a0, a1, a2, a3);
  const d2 = column2(a0, a1, a2, a3);
  const d3 = column3(a0, a1, a2, a3);
  if (side == 4) {
    inputTransform4(d0, d1, d2, d3, target, 16);
    return;
  }
  const b0 = v128.load(s0, 16);
  const b1 = v128.load(s1, 16);
  const b2 = v128.load(s2, 16);
  const b3 = v128.load(s3, 16);
  inputTransform(d0, d1, d2, d3, column0(b0, b1, b2, b3), column1(b0, b1, b2, b3), target, 16);
}

/** Byte address in `padded` of the first input of tile `t` of a band (row by row, `tile` apart). */
@inline
function tileInput(padded: usize, t: i32, tilesAcross: i32, tile: i32, rowFloats: i32): usize {
  const tileRow = t / tilesAcross;
  return at(padded, (tileRow * rowFloats + (t - tileRow * tilesAcross)) * tile);
}

/**
 * B^T d B for every tile (`tile` outputs across, `side` x `side` inputs) of a band of `tiles`
 * tiles of one input channel (`padded`), stored as column `tile` of row `ci` of the side * side
 * column-panel matrices at `transformed` (`matrixBytes` apart, `depth` rows). Four consecutive
 * tiles of the band at a time, one per lane, whatever tile rows they are on: a band of 5 tiles
 * across fills 7 groups of four, not 10 with 3 lanes in 8 idle. Four tiles on one tile row are
 * read along it; others tile by tile. The last group's lanes past the band repeat its last
 * tile, into the panel's padding columns.
 */
function transformInput(
  padded: usize,
  rowFloats: i32,
  tile: i32,
  side: i32,
  tiles: i32,
  tilesAcross: i32,
  ci: i32,
  depth: i32,
  transformed: usize,
  matrixBytes: usize,
): void {
  const points = side * side;
  const rowStep = <usize>side << 4;
  const rowBytes = <usize>rowFloats << 2;
  const last = tiles - 1;
  // Tile `first` is on tile row `tileRow`, `firstColumn` tiles in (counted along, not divided).
  let tileRow = 0;
  let firstColumn = 0;
  for (let first = 0; first < tiles; first += 4) {
    // Rows: B applied along each of the tiles' input rows (lane j: tile first + j).
    let s0 = at(padded, (tileRow * rowFloats + firstColumn) * tile);
    if (firstColumn + 4 <= tilesAcross) {
      for (let r = 0; r < side; r++) {
        rowAcross(s0, tile, side, rowsScratch + <usize>r * rowStep);
        s0 += rowBytes;
      }
    } else {
      let s1 = tileInput(padded, min(first + 1, last), tilesAcross, tile, rowFloats);
      let s2 = tileInput(padded, min(first + 2, last), tilesAcross, tile, rowFloats);
      let s3 = tileInput(padded, min(first + 3, last), tilesAcross, tile, rowFloats);
      for (let r = 0; r < side; r++) {
        rowOfTiles(s0, s1, s2, s3, side, rowsScratch + <usize>r * rowStep);
        s0 += rowBytes;
        s1 += rowBytes;
        s2 += rowBytes;
        s3 += rowBytes;
      }
    }
    // Columns: B^T applied down each of the transformed columns, in place.
    for (let l = 0; l < side; l++) {
      const column = rowsScratch + (<usize>l << 4);
      if (side == 4) {
        inputTransform4(
          v128.load(column),
          v128.load(column + rowStep),
          v128.load(column + 2 * rowStep),
          v128.load(column + 3 * rowStep),
          column,
          rowStep,
        );
        continue;
      }
      inputTransform(
        v128.load(column),
        v128.load(column + rowStep),
        v128.load(column + 2 * rowStep),
        v128.load(column + 3 * rowStep),
        v128.load(column + 4 * rowStep),
        v128.load(column + 5 * rowStep),
        column,
        rowStep,
      );
    }
    let target = panelAt(transformed, depth, ci, first);
    for (let point = 0; point < points; point++) {
      v128.store(target, v128.load(rowsScratch + (<usize>point << 4)));
      target += matrixBytes;
    }
    for (firstColumn += 4; firstColumn >= tilesAcross; firstColumn -= tilesAcross) tileRow++;
  }
}

/**
 * A^T (`tile` x s) applied to the s vectors at `source`, `step` bytes apart: the `tile` results
 * go to `target`, `targetStep` bytes apart. Row j of A^T is (p^j for the points 0, 1, -1, 2, -2,
 * or 0, 1, -1; 1 for infinity in the last row), except that F(2x2, 3x3) takes -1 for infinity
 * (its G has +1 there).
 */
@inline
function outputTransform(
  tile: i32,
  side: i32,
  source: usize,
  step: usize,
  target: usize,
  targetStep: usize,
): void {
  const m0 = v128.load(source);
  const m1 = v128.load(source + step);
  const m2 = v128.load(source + 2 * step);
  const m3 = v128.load(source + 3 * step);
  if (side == 4) {
    v128.store(target, f32x4.add(f32x4.add(m0, m1), m2));
    v128.store(target + targetStep, f32x4.sub(f32x4.sub(m1, m2), m3));
    return;
  }
  const m4 = v128.load(source + 4 * step);
  const m5 = v128.load(source + 5 * step);
  const s12 = f32x4.add(m1, m2);
  const d12 = f32x4.sub(m1, m2);
  const s34 = f32x4.add(m3, m4);
  const d34 = f32x4.sub(m3, m4);
  v128.store(target, f32x4.add(f32x4.add(m0, s12), s34));
  if (tile == 4) {
    v128.store(target + targetStep, f32x4.add(d12, scaled(d34, TWO)));
    v128.store(target + 2 * targetStep, f32x4.add(s12, scaled(s34, FOUR)));
    v128.store(target + 3 * targetStep, f32x4.add(f32x4.add(d12, scaled(d34, EIGHT)), m5));
  } else {
    v128.store(target + targetStep, f32x4.add(f32x4.add(d12, scaled(d34, TWO)), m5));
  }
}


/** `values` + `bias`, then the ReLU when `relu`. */
@inline
function epilogue(values: v128, bias: v128, relu: bool, slopes: v128): v128 {
  const y = f32x4.add(values, bias);
  return relu ? reluLanes(y, slopes) : y;
}

/**
 * Writes the outputs of tiles first..first+3 of a band (fewer at its end), found in `results`
 * as transformOutput leaves them, tile by tile into the output plane, clipped to it.
 */
function storeTilesApart(
  results: usize,
  first: i32,
  tiles: i32,
  tilesAcross: i32,
  tile: i32,
  firstTileRow: i32,
  plane: usize,
  outH: i32,
  outW: i32,
): void {
  const outStep: usize = 4 * 16;
  const lanes = min(4, tiles - first);
  for (let lane = 0; lane < lanes; lane++) {
    const t = first + lane;
    const tileRow = t / tilesAcross;
    const outColumn = (t - tileRow * tilesAcross) * tile;
    const count = min(tile, outW - outColumn);
    const firstOh = (firstTileRow + tileRow) * tile;
    const rows = min(tile, outH - firstOh);
    const values = results + (<usize>(lane * tile) << 2);
    for (let r = 0; r < rows; r++) {
      const from = values + <usize>r * outStep;
      const target = at(plane, (firstOh + r) * outW + outColumn);
      if (count == 4) {
        v128.store(target, v128.load(from));
      } else if (count == 2) {
        store<u64>(target, load<u64>(from));
      } else {
        for (let k = 0; k < count; k++) store<f32>(at(target, k), load<f32>(at(from, k)));
      }
    }
  }
}

/**
 * A^T m A for every tile (`tile` x `tile` outputs) of a band and output channel `co` (products:
 * `side` * `side` matrices [coutGroup x columns] at `products`, `matrixBytes` apart),
 * + `biasValue`, the ReLU when `relu`, written to the output plane `plane` from output row
 * tile*firstTileRow. Four consecutive tiles of the band at a time, as transformInput takes them.
 */
function transformOutput(
  products: usize,
  matrixBytes: usize,
  tile: i32,
  side: i32,
  columns: i32,
  co: i32,
  tiles: i32,
  tilesAcross: i32,
  firstTileRow: i32,
  biasValue: f32,
  relu: bool,
  slope: f32,
  plane: usize,
  outH: i32,
  outW: i32,
): void {
  const bias = f32x4.splat(biasValue);
  const slopes = f32x4.splat(slope);
  const rowStep = <usize>side << 4;
  const columnStep = <usize>side * matrixBytes;
  const outStep: usize = 4 * 16;
  const results = rowsScratch + 24 * 16;
  // Tile `first` is on tile row `tileRow`, `firstColumn` tiles in (counted along, not divided).
  let tileRow = 0;
  let firstColumn = 0;
  for (let first = 0; first < tiles; first += 4) {
    const source = at(products, co * columns + first);
    // Columns of the s x s products: A^T down each (tile x s results in rowsScratch).
    for (let l = 0; l < side; l++) {
      const column = source + <usize>l * matrixBytes;
      outputTransform(tile, side, column, columnStep, rowsScratch + (<usize>l << 4), rowStep);
    }
    // Rows: A along each of them (tile x tile results, after the 24 read ones).
    for (let r = 0; r < tile; r++) {
      const row = rowsScratch + <usize>r * rowStep;
      outputTransform(tile, side, row, 16, results + <usize>r * outStep, 16);
    }
    // Lane j of vector k of a result row is tile j's output k of that row: each row turned to
    // the tiles' outputs one tile after the other (tile j's at `tile` * j floats).
    for (let r = 0; r < tile; r++) {
      const row = results + <usize>r * outStep;
      const y0 = epilogue(v128.load(row), bias, relu, slopes);
      const y1 = epilogue(v128.load(row, 16), bias, relu, slopes);
      if (tile == 4) {
        const y2 = epilogue(v128.load(row, 32), bias, relu, slopes);
        const y3 = epilogue(v128.load(row, 48), bias, relu, slopes);
        v128.store(row, column0(y0, y1, y2, y3));
        v128.store(row, column1(y0, y1, y2, y3), 16);
        v128.store(row, column2(y0, y1, y2, y3), 32);
        v128.store(row, column3(y0, y1, y2, y3), 48);
      } else {
        v128.store(row, v128.shuffle<f32>(y0, y1, 0, 4, 1, 5));
        v128.store(row, v128.shuffle<f32>(y0, y1, 2, 6, 3, 7), 16);
      }
    }
    if ((firstColumn + 4) * tile <= outW) {
      // Four whole tiles side by side on one tile row: their rows are the output rows'.
      const firstOh = (firstTileRow + tileRow) * tile;
      const rows = min(tile, outH - firstOh);
      for (let r = 0; r < rows; r++) {
        const from = results + <usize>r * outStep;
        const target = at(plane, (firstOh + r) * outW + firstColumn * tile);
        v128.store(target, v128.load(from));
        v128.store(target, v128.load(from, 16), 16);
        if (tile == 4) {
          v128.store(target, v128.load(from, 32), 32);
          v128.store(target, v128.load(from, 48), 48);
        }
      }
    } else {
      storeTilesApart(results, first, tiles, tilesAcross, tile, firstTileRow, plane, outH, outW);
    }
    for (firstColumn += 4; firstColumn >= tilesAcross; firstColumn -= tilesAcross) tileRow++;
  }
}

/**
 * Convolution of r x r kernels (r = `kernel`) through F(m x m, r x r) (m = `tile`: F(4x4, 3x3),
 * F(2x2, 3x3) or F(2x2, 5x5)) at stride 1 and dilation 1 with pad (padH, padW): for each image,
 * group and band of `bandTileRows` rows of m x m output tiles, transforms the input (B^T d B),
 * runs the s * s matrix products against `transformed` weights (winogradWeights of the same
 * form), transforms the products back (A^T m A), adds the bias (0 = none) and applies the ReLU
 * when `relu`. `scratch` holds winogradScratchBytes(cin/groups, cout/groups, outW, bandTileRows,
 * kernel, tile) bytes (16-aligned).
 */
export function winogradConvolution(
  x: usize,
  batch: i32,
  cin: i32,
  height: i32,
  width: i32,
  transformed: usize,
  bias: usize,
  cout: i32,
  groups: i32,
  kernel: i32,
  tile: i32,
  padH: i32,
  padW: i32,
  outH: i32,
  outW: i32,
  bandTileRows: i32,
  scratch: usize,
  y: usize,
  relu: bool,
  slope: f32,
): void {
  const side = sideOf(tile, kernel);
  const points = side * side;
  const cinGroup = cin / groups;
  const coutGroup = cout / groups;
  const tilesAcross = (outW + tile - 1) / tile;
  const tilesDown = (outH + tile - 1) / tile;
  const rowFloats = paddedWidth(outW, tile);
  const bandTiles = bandTileRows * tilesAcross;
  const padded = scratch;
  const inputs = padded + (<usize>((bandTileRows * tile + kernel - 1) * rowFloats) << 2);
  const products = inputs + <usize>points * <usize>(packedColumnsBytes(bandTiles, cinGroup) + SKEW);
  const weightBytes = <usize>packedRowsBytes(coutGroup, cinGroup);
  for (let n = 0; n < batch; n++) {
    for (let g = 0; g < groups; g++) {
      const xGroup = at(x, (n * cin + g * cinGroup) * height * width);
      const yGroup = at(y, (n * cout + g * coutGroup) * outH * outW);
      const groupWeights = transformed + <usize>(g * points) * weightBytes;
      for (let firstTileRow = 0; firstTileRow < tilesDown; firstTileRow += bandTileRows) {
        const tileRows = min(bandTileRows, tilesDown - firstTileRow);
        const tiles = tileRows * tilesAcross;
        const columns = panelWidth(tiles);
        const inputBytes = <usize>(packedColumnsBytes(tiles, cinGroup) + SKEW);
        const productBytes = <usize>((coutGroup * columns) << 2) + SKEW;
        if (columns > tiles) {
          // The last panel of each transformed input: zeros past the tiles.
          const last = panelAt(inputs, cinGroup, 0, columns - COLUMNS);
          for (let point = 0; point < points; point++) {
            memory.fill(last + <usize>point * inputBytes, 0, <usize>(cinGroup * COLUMNS) << 2);
          }
        }
        const firstRow = firstTileRow * tile;
        const rows = tileRows * tile + kernel - 1;
        for (let ci = 0; ci < cinGroup; ci++) {
          const plane = at(xGroup, ci * height * width);
          padBand(plane, height, width, padH, padW, firstRow, rows, rowFloats, padded);
          transformInput(
            padded,
            rowFloats,
            tile,
            side,
            tiles,
            tilesAcross,
            ci,
            cinGroup,
            inputs,
            inputBytes,
          );
        }
        for (let point = 0; point < points; point++) {
          gemmPanels(
            coutGroup,
            columns,
            cinGroup,
            groupWeights + <usize>point * weightBytes,
            inputs + <usize>point * inputBytes,
            0,
            products + <usize>point * productBytes,
            columns,
            0,
            false,
            0,
            0,
          );
        }
        for (let co = 0; co < coutGroup; co++) {
          const biasValue: f32 = bias == 0 ? 0 : load<f32>(at(bias, g * coutGroup + co));
          transformOutput(
            products,
            productBytes,
            tile,
            side,
            columns,
            co,
            tiles,
            tilesAcross,
            firstTileRow,
            biasValue,
            relu,
            slope,
            at(yGroup, co * outH * outW),
            outH,
            outW,
          );
        }
      }
    }
  }
}
