// Float 3x3 convolution at stride 1 and dilation 1 through Winograd F(4x4, 3x3) (Lavin & Gray):
// each 4x4 block of outputs (a tile) comes from a 6x6 block of input d as A^T [(G g G^T) . (B^T d
// B)] A, so the 36 products per input channel of the direct form's 144 become 36 matrix products
// [cout x cin] x [cin x tiles] (one per point of the 6x6 transformed domain) on the packed panels of
// assembly/engine/panels.ts. The weight transform G g G^T is a separate export so that a caller
// may keep its result across runs. Transforms run on four tiles of a tile row at a time (one per
// SIMD lane). Rounding differs from the direct form (the transforms add and scale before the
// products): outputs agree within a few float32 ulps of the sum of |products|.

import { at } from "./gemm";
import { gemmPanels, packedColumnsBytes, packedRowsBytes, panelAt } from "./panels";

/** Points of the transformed domain per tile (6 x 6). */
const POINTS: i32 = 36;
/** Input columns per group of four tiles read from a padded row (tiles 4 apart, 6 wide, 4 more read). */
const GROUP_COLUMNS: i32 = 16;

/**
 * A transform in progress, one tile per lane: the 6 x 6 rows of an input transform, or the 4 x 6
 * rows and then the 4 x 4 results (from vector 24) of an output transform.
 */
const rowsScratch: usize = memory.data(40 * 16, 16);
/** G g of the weight transform in progress (6 x 3 vectors, four kernels per lane). */
const kernelScratch: usize = memory.data(18 * 16, 16);

/** Bytes of the transformed weights of `groups` groups of [coutGroup, cinGroup] 3x3 kernels. */
export function winogradWeightsBytes(coutGroup: i32, cinGroup: i32, groups: i32): i32 {
  return groups * POINTS * packedRowsBytes(coutGroup, cinGroup);
}

/**
 * G (6 x 3) applied to a kernel column (a, b, c) (four kernels, one per lane): the six results go
 * to `target`, `step` bytes apart.
 */
@inline
function weightTransform(a: v128, b: v128, c: v128, target: usize, step: usize): void {
  const ac = f32x4.add(a, c);
  const a4c = f32x4.add(a, times(c, 4));
  const b2 = times(b, 2);
  v128.store(target, times(a, 0.25));
  v128.store(target + step, times(f32x4.add(ac, b), -1.0 / 6));
  v128.store(target + 2 * step, times(f32x4.sub(ac, b), -1.0 / 6));
  v128.store(target + 3 * step, times(f32x4.add(a4c, b2), 1.0 / 24));
  v128.store(target + 4 * step, times(f32x4.sub(a4c, b2), 1.0 / 24));
  v128.store(target + 5 * step, c);
}

/** Tap `tap` of the kernels [row, ci] of rows row..row+3 (0 past `rows`), one per lane. */
@inline
function taps(weights: usize, row: i32, rows: i32, ci: i32, cinGroup: i32, tap: i32): v128 {
  let lanes = f32x4.splat(0);
  const first = at(weights, (row * cinGroup + ci) * 9 + tap);
  const step = <usize>(cinGroup * 9) << 2;
  if (row < rows) lanes = f32x4.replace_lane(lanes, 0, load<f32>(first));
  if (row + 1 < rows) lanes = f32x4.replace_lane(lanes, 1, load<f32>(first + step));
  if (row + 2 < rows) lanes = f32x4.replace_lane(lanes, 2, load<f32>(first + 2 * step));
  if (row + 3 < rows) lanes = f32x4.replace_lane(lanes, 3, load<f32>(first + 3 * step));
  return lanes;
}

/**
 * Transforms weights [cout, cinGroup, 3, 3] (`groups` groups) to G g G^T in float32, laid out per
 * group and per point as the row panels of a [coutGroup x cinGroup] matrix (panels.ts packRows;
 * rows past coutGroup 0), winogradWeightsBytes at `target`; four output channels at a time.
 */
export function winogradWeights(
  weights: usize,
  cout: i32,
  cinGroup: i32,
  groups: i32,
  target: usize,
): void {
  const coutGroup = cout / groups;
  const matrixBytes = <usize>packedRowsBytes(coutGroup, cinGroup);
  const rowStep: usize = 3 * 16;
  for (let g = 0; g < groups; g++) {
    const groupBase = target + <usize>(g * POINTS) * matrixBytes;
    const groupWeights = at(weights, g * coutGroup * cinGroup * 9);
    for (let row = 0; row < coutGroup; row += 4) {
      for (let ci = 0; ci < cinGroup; ci++) {
        // G g: 6 x 3, in kernelScratch.
        for (let j = 0; j < 3; j++) {
          weightTransform(
            taps(groupWeights, row, coutGroup, ci, cinGroup, j),
            taps(groupWeights, row, coutGroup, ci, cinGroup, 3 + j),
            taps(groupWeights, row, coutGroup, ci, cinGroup, 6 + j),
            kernelScratch + (<usize>j << 4),
            rowStep,
          );
        }
        // (G g) G^T: 6 x 6, to the 36 matrices.
        const lane = groupBase + ((<usize>(row >> 2) * <usize>cinGroup + <usize>ci) << 4);
        for (let i = 0; i < 6; i++) {
          const source = kernelScratch + <usize>i * rowStep;
          weightTransform(
            v128.load(source),
            v128.load(source, 16),
            v128.load(source, 32),
            lane + <usize>(i * 6) * matrixBytes,
            matrixBytes,
          );
        }
      }
    }
  }
}

/** Tiles of 4 outputs across a row of `outW`, rounded up to whole groups of four. */
@inline
function groupsAcross(outW: i32): i32 {
  return (outW + 15) / 16;
}

/** Floats per padded input row: every group's 16 columns and the 4 more the last one reads. */
@inline
function paddedWidth(outW: i32): i32 {
  return groupsAcross(outW) * GROUP_COLUMNS + 4;
}

/**
 * Scratch bytes winogradConvolution needs: one channel's padded band of input rows, the
 * transformed input of a band (36 column-panel matrices [cinGroup x tiles]) and the products (36
 * matrices [coutGroup x tiles], and 16 bytes the last vector reads past them).
 */
export function winogradScratchBytes(
  cinGroup: i32,
  coutGroup: i32,
  outW: i32,
  bandTileRows: i32,
): i32 {
  const tiles = bandTileRows * ((outW + 3) / 4);
  const padded = (bandTileRows * 4 + 2) * paddedWidth(outW) * 4;
  return padded + POINTS * packedColumnsBytes(tiles, cinGroup) + POINTS * coutGroup * tiles * 4 +
    16;
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
 * B^T applied to six vectors d0..d5 (a column of a tile, one tile per lane): the six results go to
 * `target`, `step` bytes apart.
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
  v128.store(target, f32x4.add(f32x4.sub(times(d0, 4), times(d2, 5)), d4));
  v128.store(target + step, f32x4.sub(s34, times(s12, 4)));
  v128.store(target + 2 * step, f32x4.add(d43, times(d12, 4)));
  v128.store(target + 3 * step, f32x4.add(d42, times(d31, 2)));
  v128.store(target + 4 * step, f32x4.sub(d42, times(d31, 2)));
  v128.store(target + 5 * step, f32x4.add(f32x4.sub(times(d1, 4), times(d3, 5)), d5));
}

/**
 * Copies rows 4*tileRow - padH .. +bandTileRows*4+2 of one input plane into `padded`
 * (paddedWidth(outW) floats a row, the image starting padW columns in), zeros outside the image.
 */
function padBand(
  plane: usize,
  height: i32,
  width: i32,
  padH: i32,
  padW: i32,
  tileRow: i32,
  rows: i32,
  rowFloats: i32,
  padded: usize,
): void {
  memory.fill(padded, 0, <usize>(rows * rowFloats) << 2);
  const columns = min(width, rowFloats - padW);
  if (columns <= 0) return;
  for (let r = 0; r < rows; r++) {
    const ih = tileRow * 4 + r - padH;
    if (ih < 0 || ih >= height) continue;
    memory.copy(
      at(padded, r * rowFloats + padW),
      at(plane, ih * width),
      <usize>columns << 2,
    );
  }
}

/**
 * B^T d B for every tile of a band of one input channel (`padded`), stored as column `tile` of
 * row `ci` of the 36 column-panel matrices at `transformed` (`matrixBytes` apart, `depth` rows).
 */
function transformInput(
  padded: usize,
  rowFloats: i32,
  bandTileRows: i32,
  tilesAcross: i32,
  ci: i32,
  depth: i32,
  transformed: usize,
  matrixBytes: usize,
): void {
  const groups = (tilesAcross + 3) >> 2;
  const rowStep: usize = 6 * 16;
  for (let tileRow = 0; tileRow < bandTileRows; tileRow++) {
    for (let group = 0; group < groups; group++) {
      const source = at(padded, tileRow * 4 * rowFloats + group * GROUP_COLUMNS);
      // Rows: B applied along each of the tile's six input rows (lanes: tiles).
      for (let r = 0; r < 6; r++) {
        const row = at(source, r * rowFloats);
        const a0 = v128.load(row);
        const a1 = v128.load(row, 16);
        const a2 = v128.load(row, 32);
        const a3 = v128.load(row, 48);
        const a4 = v128.load(row, 64);
        inputTransform(
          column0(a0, a1, a2, a3),
          column1(a0, a1, a2, a3),
          column2(a0, a1, a2, a3),
          column3(a0, a1, a2, a3),
          column0(a1, a2, a3, a4),
          column1(a1, a2, a3, a4),
          rowsScratch + <usize>r * rowStep,
          16,
        );
      }
      // Columns: B^T applied down each of the six transformed columns, in place.
      for (let l = 0; l < 6; l++) {
        const column = rowsScratch + (<usize>l << 4);
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
      const tile = tileRow * tilesAcross + group * 4;
      const lanes = min(4, tilesAcross - group * 4);
      let target = panelAt(transformed, depth, ci, tile);
      if (lanes == 4 && (tile & 3) == 0) {
        for (let point = 0; point < POINTS; point++) {
          v128.store(target, v128.load(rowsScratch + (<usize>point << 4)));
          target += matrixBytes;
        }
      } else {
        for (let point = 0; point < POINTS; point++) {
          const values = rowsScratch + (<usize>point << 4);
          const matrix = transformed + <usize>point * matrixBytes;
          for (let lane = 0; lane < lanes; lane++) {
            store<f32>(panelAt(matrix, depth, ci, tile + lane), load<f32>(values + (<usize>lane << 2)));
          }
        }
      }
    }
  }
}

/** A^T applied to six vectors m0..m5: the four results go to `target`, `step` bytes apart. */
@inline
function outputTransform(
  m0: v128,
  m1: v128,
  m2: v128,
  m3: v128,
  m4: v128,
  m5: v128,
  target: usize,
  step: usize,
): void {
  const s12 = f32x4.add(m1, m2);
  const d12 = f32x4.sub(m1, m2);
  const s34 = f32x4.add(m3, m4);
  const d34 = f32x4.sub(m3, m4);
  v128.store(target, f32x4.add(f32x4.add(m0, s12), s34));
  v128.store(target + step, f32x4.add(d12, times(d34, 2)));
  v128.store(target + 2 * step, f32x4.add(s12, times(s34, 4)));
  v128.store(target + 3 * step, f32x4.add(f32x4.add(d12, times(d34, 8)), m5));
}

/** The ReLU of `v`, as the relu kernel computes it. */
@inline
function reluOf(v: v128, slopes: v128): v128 {
  const zero = f32x4.splat(0);
  return f32x4.add(f32x4.max(v, zero), f32x4.mul(slopes, f32x4.min(v, zero)));
}

/**
 * A^T m A for every tile of a band and output channel `co` (products: 36 matrices [coutGroup x
 * tiles] at `products`, `matrixBytes` apart), + `biasValue`, the ReLU when `relu`, written to the
 * output plane `plane` from output row 4*firstTileRow.
 */
function transformOutput(
  products: usize,
  matrixBytes: usize,
  tiles: i32,
  co: i32,
  bandTileRows: i32,
  tilesAcross: i32,
  firstTileRow: i32,
  biasValue: f32,
  relu: bool,
  slope: f32,
  plane: usize,
  outH: i32,
  outW: i32,
): void {
  const groups = (tilesAcross + 3) >> 2;
  const biasLanes = f32x4.splat(biasValue);
  const slopes = f32x4.splat(slope);
  const rowStep: usize = 6 * 16;
  const outStep: usize = 4 * 16;
  for (let tileRow = 0; tileRow < bandTileRows; tileRow++) {
    for (let group = 0; group < groups; group++) {
      const tile = tileRow * tilesAcross + group * 4;
      const source = at(products, co * tiles + tile);
      // Columns of the 6 x 6 products: A^T down each (4 x 6 results in rowsScratch).
      for (let l = 0; l < 6; l++) {
        const column = source + <usize>l * matrixBytes;
        outputTransform(
          v128.load(column),
          v128.load(column + 6 * matrixBytes),
          v128.load(column + 12 * matrixBytes),
          v128.load(column + 18 * matrixBytes),
          v128.load(column + 24 * matrixBytes),
          v128.load(column + 30 * matrixBytes),
          rowsScratch + (<usize>l << 4),
          rowStep,
        );
      }
      // Rows: A along each of the four (4 x 4 results, after the 24 read ones).
      const results = rowsScratch + 24 * 16;
      for (let r = 0; r < 4; r++) {
        const row = rowsScratch + <usize>r * rowStep;
        outputTransform(
          v128.load(row),
          v128.load(row, 16),
          v128.load(row, 32),
          v128.load(row, 48),
          v128.load(row, 64),
          v128.load(row, 80),
          results + <usize>r * outStep,
          16,
        );
      }
      const lanes = min(4, tilesAcross - group * 4);
      for (let r = 0; r < 4; r++) {
        const oh = (firstTileRow + tileRow) * 4 + r;
        if (oh >= outH) break;
        const row = results + <usize>r * outStep;
        let y0 = f32x4.add(v128.load(row), biasLanes);
        let y1 = f32x4.add(v128.load(row, 16), biasLanes);
        let y2 = f32x4.add(v128.load(row, 32), biasLanes);
        let y3 = f32x4.add(v128.load(row, 48), biasLanes);
        if (relu) {
          y0 = reluOf(y0, slopes);
          y1 = reluOf(y1, slopes);
          y2 = reluOf(y2, slopes);
          y3 = reluOf(y3, slopes);
        }
        // Lane j of y0..y3 is tile j's outputs 0..3 of this row: transposed, tile j's row.
        const outRow = at(plane, oh * outW);
        for (let lane = 0; lane < lanes; lane++) {
          const ow = (group * 4 + lane) * 4;
          const values = lane == 0
            ? column0(y0, y1, y2, y3)
            : lane == 1
            ? column1(y0, y1, y2, y3)
            : lane == 2
            ? column2(y0, y1, y2, y3)
            : column3(y0, y1, y2, y3);
          const target = at(outRow, ow);
          if (ow + 4 <= outW) {
            v128.store(target, values);
          } else {
            store<f32>(target, f32x4.extract_lane(values, 0));
            if (ow + 1 < outW) store<f32>(target, f32x4.extract_lane(values, 1), 4);
            if (ow + 2 < outW) store<f32>(target, f32x4.extract_lane(values, 2), 8);
          }
        }
      }
    }
  }
}

/**
 * Convolution of 3x3 kernels at stride 1 and dilation 1 with pad (padH, padW): for each image,
 * group and band of `bandTileRows` rows of 4x4 output tiles, transforms the input (B^T d B), runs
 * the 36 matrix products against `transformed` weights (winogradWeights), transforms the products
 * back (A^T m A), adds the bias (0 = none) and applies the ReLU when `relu`. `scratch` holds
 * winogradScratchBytes(cin/groups, cout/groups, outW, bandTileRows) bytes (16-aligned).
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
  const cinGroup = cin / groups;
  const coutGroup = cout / groups;
  const tilesAcross = (outW + 3) / 4;
  const tilesDown = (outH + 3) / 4;
  const rowFloats = paddedWidth(outW);
  const bandTiles = bandTileRows * tilesAcross;
  const padded = scratch;
  const inputs = padded + (<usize>((bandTileRows * 4 + 2) * rowFloats) << 2);
  const weightBytes = <usize>packedRowsBytes(coutGroup, cinGroup);
  for (let n = 0; n < batch; n++) {
    for (let g = 0; g < groups; g++) {
      const xGroup = at(x, (n * cin + g * cinGroup) * height * width);
      const yGroup = at(y, (n * cout + g * coutGroup) * outH * outW);
      const groupWeights = transformed + <usize>(g * POINTS) * weightBytes;
      for (let firstTileRow = 0; firstTileRow < tilesDown; firstTileRow += bandTileRows) {
        const tileRows = min(bandTileRows, tilesDown - firstTileRow);
        const tiles = tileRows * tilesAcross;
        const inputBytes = <usize>packedColumnsBytes(tiles, cinGroup);
        const products = inputs + <usize>POINTS * <usize>packedColumnsBytes(bandTiles, cinGroup);
        const productBytes = <usize>(coutGroup * tiles) << 2;
        for (let ci = 0; ci < cinGroup; ci++) {
          const plane = at(xGroup, ci * height * width);
          padBand(plane, height, width, padH, padW, firstTileRow, tileRows * 4 + 2, rowFloats, padded);
          transformInput(padded, rowFloats, tileRows, tilesAcross, ci, cinGroup, inputs, inputBytes);
        }
        for (let point = 0; point < POINTS; point++) {
          gemmPanels(
            coutGroup,
            tiles,
            cinGroup,
            groupWeights + <usize>point * weightBytes,
            inputs + <usize>point * inputBytes,
            products + <usize>point * productBytes,
            tiles,
            0,
            false,
            0,
          );
        }
        for (let co = 0; co < coutGroup; co++) {
          const biasValue: f32 = bias == 0 ? 0 : load<f32>(at(bias, g * coutGroup + co));
          transformOutput(
            products,
            productBytes,
            tiles,
            co,
            tileRows,
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
