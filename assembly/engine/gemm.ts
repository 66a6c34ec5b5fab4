// Matrix products for the simulator's float layers (generic over the element type T; the deploy
// model's integer products are assembly/engine/intconv.ts). Matrices are row-major; arguments are
// byte offsets into linear memory owned by the caller.

import {
  colRowStride,
  gemmPanels,
  packColumns,
  packedColumnsBytes,
  packedRowsBytes,
  packRows,
} from "./panels";

/** The packing scratch (set by setGemmScratch; see gemmScratchBytes). */
let packScratch: usize = 0;

/**
 * Bytes of packing scratch {@link gemm} needs for C[m, n] = A[m, k] x B[k, n]: A in row panels
 * and B in column panels (assembly/engine/panels.ts).
 */
export function gemmScratchBytes(m: i32, n: i32, k: i32): i32 {
  // B in column panels or row-major (im2colColumns, rows colRowStride apart), and 32 bytes of
  // slack: B written row-major is read eight columns at a time.
  return packedRowsBytes(m, k) + max(packedColumnsBytes(n, k), k * colRowStride(n) * 4) + 32;
}

/** Sets the packing scratch region (gemmScratchBytes bytes at least, 16-aligned). */
export function setGemmScratch(at: usize): void {
  packScratch = at;
}

/** The packing scratch for A (row panels) and, after it, B (column panels). */
export function packedA(): usize {
  return packScratch;
}

/** Where B's column panels start after A[m, k]'s row panels in the packing scratch. */
export function packedB(m: i32, k: i32): usize {
  return packScratch + <usize>packedRowsBytes(m, k);
}

/** Byte offset of element `index` of a 4-byte-element array at `base`. */
@inline
export function at(base: usize, index: i32): usize {
  return base + (<usize>index << 2);
}

/**
 * a * b + c per lane. Float lanes in the relaxed-SIMD build (scripts/build_wasm.ts): relaxed
 * SIMD's multiply-add, fused (one rounding) where the CPU has FMA; in the portable build, and for
 * integer lanes, a multiply then an add.
 */
@inline
export function madd<T>(a: v128, b: v128, c: v128): v128 {
  if (isFloat<T>() && ASC_FEATURE_RELAXED_SIMD) return v128.relaxed_madd<T>(a, b, c);
  return v128.add<T>(v128.mul<T>(a, b), c);
}

/**
 * C[m, n] = A[m, k] x B[k, n]; rows of B are `ldb` and rows of C `ldc` elements apart (n for
 * dense matrices), A and B packed in panels (assembly/engine/panels.ts) in the packing scratch.
 */
export function gemm<T>(
  m: i32,
  n: i32,
  k: i32,
  a: usize,
  b: usize,
  ldb: i32,
  c: usize,
  ldc: i32,
): void {
  packRows(a, k, m, k, packedA());
  packColumns(b, ldb, k, n, packedB(m, k));
  gemmPanels(m, n, k, packedA(), packedB(m, k), 0, c, ldc, 0, false, 0, 0);
}

/**
 * C[m, n] = A[m, k] x B[n, k]^T: every element a dot product of a row of A and a row of B, with
 * SIMD over k (InnerProduct: A = inputs, B = weights [N, K]). Two rows of A at a time by four of
 * B, so that B, which is read from memory (an InnerProduct's weights do not stay in cache), is
 * read once per two rows rather than once per row (as the integer innerProductRows does); a last
 * row by four rows of B at a time. Each element's sum is the same either way: its four lanes over
 * k, then their sum, then the products past the last whole vector.
 */
export function gemmTransB<T>(m: i32, n: i32, k: i32, a: usize, b: usize, c: usize): void {
  const vectorEnd = k & ~3;
  let first = 0;
  for (; first + 2 <= m; first += 2) {
    const a0 = at(a, first * k);
    const a1 = at(a0, k);
    const target = at(c, first * n);
    let col = 0;
    for (; col + 4 <= n; col += 4) {
      const b0 = at(b, col * k);
      const b1 = at(b0, k);
      const b2 = at(b1, k);
      const b3 = at(b2, k);
      let s00 = v128.splat<T>(<T>0);
      let s01 = s00;
      let s02 = s00;
      let s03 = s00;
      let s10 = s00;
      let s11 = s00;
      let s12 = s00;
      let s13 = s00;
      for (let p = 0; p < vectorEnd; p += 4) {
        const x0 = v128.load(at(a0, p));
        const x1 = v128.load(at(a1, p));
        const w0 = v128.load(at(b0, p));
        s00 = madd<T>(x0, w0, s00);
        s10 = madd<T>(x1, w0, s10);
        const w1 = v128.load(at(b1, p));
        s01 = madd<T>(x0, w1, s01);
        s11 = madd<T>(x1, w1, s11);
        const w2 = v128.load(at(b2, p));
        s02 = madd<T>(x0, w2, s02);
        s12 = madd<T>(x1, w2, s12);
        const w3 = v128.load(at(b3, p));
        s03 = madd<T>(x0, w3, s03);
        s13 = madd<T>(x1, w3, s13);
      }
      const out = at(target, col);
      store<T>(out, dotTail<T>(s00, a0, b0, vectorEnd, k));
      store<T>(out, dotTail<T>(s01, a0, b1, vectorEnd, k), 4);
      store<T>(out, dotTail<T>(s02, a0, b2, vectorEnd, k), 8);
      store<T>(out, dotTail<T>(s03, a0, b3, vectorEnd, k), 12);
      const next = at(out, n);
      store<T>(next, dotTail<T>(s10, a1, b0, vectorEnd, k));
      store<T>(next, dotTail<T>(s11, a1, b1, vectorEnd, k), 4);
      store<T>(next, dotTail<T>(s12, a1, b2, vectorEnd, k), 8);
      store<T>(next, dotTail<T>(s13, a1, b3, vectorEnd, k), 12);
    }
    for (; col < n; col++) {
      const b0 = at(b, col * k);
      let s0 = v128.splat<T>(<T>0);
      let s1 = s0;
      for (let p = 0; p < vectorEnd; p += 4) {
        const w0 = v128.load(at(b0, p));
        s0 = madd<T>(v128.load(at(a0, p)), w0, s0);
        s1 = madd<T>(v128.load(at(a1, p)), w0, s1);
      }
      store<T>(at(target, col), dotTail<T>(s0, a0, b0, vectorEnd, k));
      store<T>(at(target, n + col), dotTail<T>(s1, a1, b0, vectorEnd, k));
    }
  }
  for (let row = first; row < m; row++) {
    const aRow = at(a, row * k);
    let col = 0;
    for (; col + 4 <= n; col += 4) {
      const b0 = at(b, col * k);
      const b1 = at(b0, k);
      const b2 = at(b1, k);
      const b3 = at(b2, k);
      let s0 = v128.splat<T>(<T>0);
      let s1 = s0;
      let s2 = s0;
      let s3 = s0;
      for (let p = 0; p < vectorEnd; p += 4) {
        const x = v128.load(at(aRow, p));
        s0 = madd<T>(x, v128.load(at(b0, p)), s0);
        s1 = madd<T>(x, v128.load(at(b1, p)), s1);
        s2 = madd<T>(x, v128.load(at(b2, p)), s2);
        s3 = madd<T>(x, v128.load(at(b3, p)), s3);
      }
      const target = at(c, row * n + col);
      store<T>(target, dotTail<T>(s0, aRow, b0, vectorEnd, k));
      store<T>(target, dotTail<T>(s1, aRow, b1, vectorEnd, k), 4);
      store<T>(target, dotTail<T>(s2, aRow, b2, vectorEnd, k), 8);
      store<T>(target, dotTail<T>(s3, aRow, b3, vectorEnd, k), 12);
    }
    for (; col < n; col++) {
      const bRow = at(b, col * k);
      let s = v128.splat<T>(<T>0);
      for (let p = 0; p < vectorEnd; p += 4) {
        s = madd<T>(v128.load(at(aRow, p)), v128.load(at(bRow, p)), s);
      }
      store<T>(at(c, row * n + col), dotTail<T>(s, aRow, bRow, vectorEnd, k));
    }
  }
}

/** A dot product from its lanes' sums `sums` up to `vectorEnd`: their sum, then the products of rows `a` and `b` from there to `k`. */
@inline
function dotTail<T>(sums: v128, a: usize, b: usize, vectorEnd: i32, k: i32): T {
  let total = laneSum<T>(sums);
  for (let p = vectorEnd; p < k; p++) total += load<T>(at(a, p)) * load<T>(at(b, p));
  return total;
}

/** The sum of the four lanes of `v`. */
@inline
function laneSum<T>(v: v128): T {
  return (v128.extract_lane<T>(v, 0) + v128.extract_lane<T>(v, 1)) +
    (v128.extract_lane<T>(v, 2) + v128.extract_lane<T>(v, 3));
}

/** dst[cols, rows] = src[rows, cols]^T. */
export function transpose<T>(src: usize, rows: i32, cols: i32, dst: usize): void {
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) store<T>(at(dst, c * rows + r), load<T>(at(src, r * cols + c)));
  }
}

/** Copies `count` floats from `from` to `to` (short rows: no call into the runtime). */
@inline
export function copyFloats(from: usize, to: usize, count: i32): void {
  let i = 0;
  for (; i + 4 <= count; i += 4) v128.store(at(to, i), v128.load(at(from, i)));
  for (; i < count; i++) store<f32>(at(to, i), load<f32>(at(from, i)));
}

/** Scratch of storeFirstLanes. */
const laneScratch: usize = memory.data(16, 16);

/**
 * Stores the first `count` (at most 4) 32-bit lanes of `value` at `to`: the last outputs of a row
 * short of four.
 */
@inline
export function storeFirstLanes(to: usize, value: v128, count: i32): void {
  v128.store(laneScratch, value);
  for (let i = 0; i < count; i++) store<u32>(to + (<usize>i << 2), load<u32>(laneScratch + (<usize>i << 2)));
}

/** The 32-bit values[0..rows) (`rows` 1 to 4) as lanes, 0 past `rows`. */
@inline
export function rowLanes(values: usize, rows: i32): v128 {
  if (rows == 4) return v128.load(values);
  let lanes = v128.load32_zero(values);
  if (rows > 1) lanes = v128.load32_lane(values + 4, lanes, 1);
  if (rows > 2) lanes = v128.load32_lane(values + 8, lanes, 2);
  return lanes;
}

/**
 * The first `rows` (1 to 4) 32-bit values of a column of a matrix at `from` (rows `ldc` values
 * apart) as lanes, 0 past `rows`.
 */
@inline
export function columnIn(from: usize, ldc: i32, rows: i32): v128 {
  const step = <usize>ldc << 2;
  let lanes = v128.load32_zero(from);
  if (rows > 1) lanes = v128.load32_lane(from + step, lanes, 1);
  if (rows > 2) lanes = v128.load32_lane(from + 2 * step, lanes, 2);
  if (rows > 3) lanes = v128.load32_lane(from + 3 * step, lanes, 3);
  return lanes;
}

/** Stores the first `rows` lanes of `lanes` down a column of a matrix at `to` (rows `ldc` values apart). */
@inline
export function columnOut(to: usize, ldc: i32, rows: i32, lanes: v128): void {
  const step = <usize>ldc << 2;
  v128.store32_lane(to, lanes, 0);
  if (rows > 1) v128.store32_lane(to + step, lanes, 1);
  if (rows > 2) v128.store32_lane(to + 2 * step, lanes, 2);
  if (rows > 3) v128.store32_lane(to + 3 * step, lanes, 3);
}

/**
 * The four floats at `from` + 0, 1, 2 and 3 `stride` floats: one load at stride 1, two loads and a
 * shuffle at stride 2, lane by lane beyond.
 */
@inline
export function fourFloats(from: usize, stride: i32): v128 {
  if (stride == 1) return v128.load(from);
  if (stride == 2) return v128.shuffle<f32>(v128.load(from), v128.load(from, 16), 0, 2, 4, 6);
  const step = <usize>stride << 2;
  let values = v128.load32_zero(from);
  values = v128.load32_lane(from + step, values, 1);
  values = v128.load32_lane(from + 2 * step, values, 2);
  return v128.load32_lane(from + 3 * step, values, 3);
}
