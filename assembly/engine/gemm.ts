// Matrix products for the simulator, generic over the element type T (f32 for float layers, i32
// for the deploy model's integer layers). Matrices are row-major; arguments are byte offsets into
// linear memory owned by the caller.

import { gemmPanels, packColumns, packedColumnsBytes, packedRowsBytes, packRows } from "./panels";

/** Rows of B (of C's columns) processed per pass, to keep a block of B in cache. */
const K_BLOCK: i32 = 256;
/** Columns of B and C processed per pass. */
const N_BLOCK: i32 = 512;

/** Bytes of B's packed block in the integer form (int16 pairs, K_BLOCK x N_BLOCK). */
const PACK_B_BYTES: i32 = K_BLOCK * N_BLOCK * 2;

/** The packing scratch (set by setGemmScratch; see gemmScratchBytes). */
let packScratch: usize = 0;

/**
 * Bytes of packing scratch {@link gemm} needs for C[m, n] = A[m, k] x B[k, n]: the float form's
 * A in row panels and B in column panels (assembly/engine/panels.ts), the integer form's B block
 * and A's rows over one K block as int16 pairs; the larger of the two.
 */
export function gemmScratchBytes(m: i32, n: i32, k: i32): i32 {
  const float = packedRowsBytes(m, k) + packedColumnsBytes(n, k);
  return max(float, PACK_B_BYTES + m * K_BLOCK * 2);
}

/** Sets the packing scratch region (gemmScratchBytes bytes at least, 16-aligned). */
export function setGemmScratch(at: usize): void {
  packScratch = at;
}

/** The float form's packing scratch for A (row panels) and, after it, B (column panels). */
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
 * C[m, n] = A[m, k] x B[k, n]; rows of B are `ldb` and rows of C `ldc` elements apart (n for
 * dense matrices). The float form packs A and B in panels (assembly/engine/panels.ts); the
 * integer form (i32; A and B hold values that fit int16, as the deploy model's int8 weights and
 * q - offset_d do) multiplies int16 pairs (gemmDot). Both use the packing scratch.
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
  if (isInteger<T>()) {
    gemmDot(m, n, k, a, b, ldb, c, ldc);
    return;
  }
  packRows(a, k, m, k, packedA());
  packColumns(b, ldb, k, n, packedB(m, k));
  gemmPanels(m, n, k, packedA(), packedB(m, k), c, ldc, 0, false, 0);
}

/** One element of C over the products k0..k1 (scalar remainder). */
@inline
function columnDot<T>(
  row: i32,
  col: i32,
  k0: i32,
  k1: i32,
  k: i32,
  a: usize,
  b: usize,
  ldb: i32,
  c: usize,
  ldc: i32,
  add: bool,
): void {
  const target = at(c, row * ldc + col);
  let sum: T = add ? load<T>(target) : <T>0;
  for (let p = k0; p < k1; p++) sum += load<T>(at(a, row * k + p)) * load<T>(at(b, p * ldb + col));
  store<T>(target, sum);
}

/**
 * C[m, n] = A[m, k] x B[n, k]^T: every element a dot product of a row of A and a row of B, with
 * SIMD over k and four rows of B at a time (InnerProduct: A = inputs, B = weights [N, K]).
 */
export function gemmTransB<T>(m: i32, n: i32, k: i32, a: usize, b: usize, c: usize): void {
  const vectorEnd = k & ~3;
  for (let row = 0; row < m; row++) {
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
        s0 = v128.add<T>(s0, v128.mul<T>(x, v128.load(at(b0, p))));
        s1 = v128.add<T>(s1, v128.mul<T>(x, v128.load(at(b1, p))));
        s2 = v128.add<T>(s2, v128.mul<T>(x, v128.load(at(b2, p))));
        s3 = v128.add<T>(s3, v128.mul<T>(x, v128.load(at(b3, p))));
      }
      let t0 = laneSum<T>(s0);
      let t1 = laneSum<T>(s1);
      let t2 = laneSum<T>(s2);
      let t3 = laneSum<T>(s3);
      for (let p = vectorEnd; p < k; p++) {
        const x = load<T>(at(aRow, p));
        t0 += x * load<T>(at(b0, p));
        t1 += x * load<T>(at(b1, p));
        t2 += x * load<T>(at(b2, p));
        t3 += x * load<T>(at(b3, p));
      }
      const target = at(c, row * n + col);
      store<T>(target, t0);
      store<T>(target, t1, 4);
      store<T>(target, t2, 8);
      store<T>(target, t3, 12);
    }
    for (; col < n; col++) {
      const bRow = at(b, col * k);
      let s = v128.splat<T>(<T>0);
      for (let p = 0; p < vectorEnd; p += 4) {
        s = v128.add<T>(s, v128.mul<T>(v128.load(at(aRow, p)), v128.load(at(bRow, p))));
      }
      let t = laneSum<T>(s);
      for (let p = vectorEnd; p < k; p++) t += load<T>(at(aRow, p)) * load<T>(at(bRow, p));
      store<T>(at(c, row * n + col), t);
    }
  }
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

/**
 * The integer gemm: A's rows and 8-column panels of B are packed as int16 pairs (products p and
 * p+1 side by side) so that i32x4.dot_i16x8_s does two multiply-adds per lane; exact while the
 * values fit int16. Columns past the last panel and rows past the last group of four use the
 * int32 values directly. Needs the scratch of setGemmScratch.
 */
function gemmDot(
  m: i32,
  n: i32,
  k: i32,
  a: usize,
  b: usize,
  ldb: i32,
  c: usize,
  ldc: i32,
): void {
  const packB = packScratch;
  const packA = packScratch + <usize>PACK_B_BYTES;
  const rows4 = m & ~3;
  for (let k0 = 0; k0 < k; k0 += K_BLOCK) {
    const k1 = min(k0 + K_BLOCK, k);
    const pairs = (k1 - k0 + 1) >> 1;
    const add = k0 > 0;
    for (let row = 0; row < rows4; row++) {
      const source = at(a, row * k);
      const target = packA + (<usize>(row * pairs) << 2);
      for (let q = 0; q < pairs; q++) {
        const p = k0 + 2 * q;
        const low = load<i32>(at(source, p)) & 0xffff;
        const high = p + 1 < k1 ? load<i32>(at(source, p + 1)) << 16 : 0;
        store<i32>(target + (<usize>q << 2), low | high);
      }
    }
    for (let n0 = 0; n0 < n; n0 += N_BLOCK) {
      const n1 = min(n0 + N_BLOCK, n);
      const panels = (n1 - n0) >> 3;
      const packedEnd = n0 + (panels << 3);
      packPairs(b, ldb, k0, k1, n0, panels, packB);
      for (let row = 0; row < rows4; row += 4) {
        dotRowsOf4(row, n0, panels, pairs, packA, packB, c, ldc, add);
        for (let col = packedEnd; col < n1; col++) {
          for (let r = 0; r < 4; r++) {
            columnDot<i32>(row + r, col, k0, k1, k, a, b, ldb, c, ldc, add);
          }
        }
      }
      for (let row = rows4; row < m; row++) {
        for (let col = n0; col < n1; col++) {
          columnDot<i32>(row, col, k0, k1, k, a, b, ldb, c, ldc, add);
        }
      }
    }
  }
}

/**
 * Packs `panels` panels of 8 columns of int32 B[k0..k1, n0..] as int16 pairs: per panel and
 * pair of rows (p, p+1), 8 columns x 2 values, (b[p, col], b[p+1, col]) side by side; a missing
 * last row is 0.
 */
function packPairs(
  b: usize,
  ldb: i32,
  k0: i32,
  k1: i32,
  n0: i32,
  panels: i32,
  pack: usize,
): void {
  const pairs = (k1 - k0 + 1) >> 1;
  const zero = i32x4.splat(0);
  for (let panel = 0; panel < panels; panel++) {
    let target = pack + (<usize>(panel * pairs) << 5);
    for (let q = 0; q < pairs; q++) {
      const p = k0 + 2 * q;
      const low = at(b, p * ldb + n0 + (panel << 3));
      const second = p + 1 < k1;
      const high = at(low, ldb);
      const low0 = v128.load(low);
      const low1 = v128.load(low, 16);
      const high0 = second ? v128.load(high) : zero;
      const high1 = second ? v128.load(high, 16) : zero;
      v128.store(
        target,
        i8x16.shuffle(low0, high0, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29),
      );
      v128.store(
        target,
        i8x16.shuffle(low1, high1, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29),
        16,
      );
      target += 32;
    }
  }
}

/** Four rows of C over `panels` packed panels from column n0 (integer form, int16 pairs). */
function dotRowsOf4(
  row: i32,
  n0: i32,
  panels: i32,
  pairs: i32,
  packA: usize,
  packB: usize,
  c: usize,
  ldc: i32,
  add: bool,
): void {
  const a0 = packA + (<usize>(row * pairs) << 2);
  const a1 = a0 + (<usize>pairs << 2);
  const a2 = a1 + (<usize>pairs << 2);
  const a3 = a2 + (<usize>pairs << 2);
  const zero = i32x4.splat(0);
  for (let panel = 0; panel < panels; panel++) {
    const c0 = at(c, row * ldc + n0 + (panel << 3));
    const c1 = at(c0, ldc);
    const c2 = at(c1, ldc);
    const c3 = at(c2, ldc);
    let s00 = add ? v128.load(c0) : zero;
    let s01 = add ? v128.load(c0, 16) : zero;
    let s10 = add ? v128.load(c1) : zero;
    let s11 = add ? v128.load(c1, 16) : zero;
    let s20 = add ? v128.load(c2) : zero;
    let s21 = add ? v128.load(c2, 16) : zero;
    let s30 = add ? v128.load(c3) : zero;
    let s31 = add ? v128.load(c3, 16) : zero;
    let bp = packB + (<usize>(panel * pairs) << 5);
    const end = <usize>pairs << 2;
    for (let ap: usize = 0; ap < end; ap += 4) {
      const b0 = v128.load(bp);
      const b1 = v128.load(bp, 16);
      const w0 = i32x4.splat(load<i32>(a0 + ap));
      s00 = i32x4.add(s00, i32x4.dot_i16x8_s(w0, b0));
      s01 = i32x4.add(s01, i32x4.dot_i16x8_s(w0, b1));
      const w1 = i32x4.splat(load<i32>(a1 + ap));
      s10 = i32x4.add(s10, i32x4.dot_i16x8_s(w1, b0));
      s11 = i32x4.add(s11, i32x4.dot_i16x8_s(w1, b1));
      const w2 = i32x4.splat(load<i32>(a2 + ap));
      s20 = i32x4.add(s20, i32x4.dot_i16x8_s(w2, b0));
      s21 = i32x4.add(s21, i32x4.dot_i16x8_s(w2, b1));
      const w3 = i32x4.splat(load<i32>(a3 + ap));
      s30 = i32x4.add(s30, i32x4.dot_i16x8_s(w3, b0));
      s31 = i32x4.add(s31, i32x4.dot_i16x8_s(w3, b1));
      bp += 32;
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
}
