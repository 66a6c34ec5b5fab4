// Caffe's MAX and AVE pooling over NCHW planes. Arguments are byte offsets into caller memory, the
// window geometry one of a Window (assembly/engine/window.ts; its dilation is unused).

import { borderedColumns, borderedRows, copyInsideBorder, fillBorder } from "./border";
import { at, fourFloats, storeFirstLanes } from "./gemm";
import { Window } from "./window";

/** Rows of the bordered plane maxPool reads: every output row's window. */
@inline
function paddedRows(window: Window, outH: i32): i32 {
  return borderedRows(window, outH, window.kernelH);
}

/** Columns of the bordered plane maxPool reads (at stride 2 a group's last tap loads eight floats). */
@inline
function paddedColumns(window: Window, outW: i32): i32 {
  return borderedColumns(window, outW, window.kernelW, window.strideW == 2 ? 1 : 0);
}

/**
 * Bytes of scratch maxPool needs: one input plane inside a border of -FLT_MAX wide enough for
 * every window of every group of four outputs (rows and columns past the image included).
 */
export function maxPoolScratchBytes(outH: i32, outW: i32, geometry: usize): i32 {
  const window = changetype<Window>(geometry);
  return paddedRows(window, outH) * paddedColumns(window, outW) * 4;
}

/**
 * MAX pooling: window [oh*sh - ph, +kh) x [ow*sw - pw, +kw) clipped to the image; the maximum
 * starts from -FLT_MAX and takes strictly greater values in window order (rows, then columns), as
 * Caffe does. Each plane is copied into `scratch` (maxPoolScratchBytes) inside a border of
 * -FLT_MAX, which no comparison takes, so every output is a full window in the same order: four
 * outputs at a time (f32x4.pmax(best, value) is value > best ? value : best, per lane), four
 * such groups at once. `y` has room for three floats past the last output (a row's last group may
 * write past its end: the next row's outputs are written after).
 */
export function maxPool(
  x: usize,
  planes: i32,
  height: i32,
  width: i32,
  geometry: usize,
  outH: i32,
  outW: i32,
  y: usize,
  scratch: usize,
): void {
  const window = changetype<Window>(geometry);
  const kh = window.kernelH;
  const kw = window.kernelW;
  const sh = window.strideH;
  const sw = window.strideW;
  const rows = paddedRows(window, outH);
  const columns = paddedColumns(window, outW);
  const lowest = f32x4.splat(-F32.MAX_VALUE);
  fillBorder(scratch, rows, columns, -F32.MAX_VALUE);
  const rowBytes = <usize>columns << 2;
  for (let plane = 0; plane < planes; plane++) {
    const source = at(x, plane * height * width);
    copyInsideBorder(source, height, width, window, rows, columns, scratch, false, 0, 0);
    const target = at(y, plane * outH * outW);
    if (sh == 2 && sw == 2 && kh >= 2 && kh <= 3 && kw >= 2 && kw <= 3) {
      maxPoolHalving(scratch, rowBytes, target, outH, outW, kh, kw, lowest);
      continue;
    }
    // Units of four outputs (row oh, columns 4g..4g+3), four units at a time: four independent
    // chains of comparisons instead of one (each takes its window in order). The units' row and
    // group are counted along, not divided out.
    const groups = (outW + 3) >> 2;
    const units = outH * groups;
    let oh = 0;
    let g = 0;
    let unit = 0;
    for (; unit + 4 <= units; unit += 4) {
      const f0 = unitInput(scratch, oh, g, sh, sw, rowBytes);
      const o0 = unitOutput(target, oh, g, outW);
      if (++g == groups) {
        g = 0;
        oh++;
      }
      const f1 = unitInput(scratch, oh, g, sh, sw, rowBytes);
      const o1 = unitOutput(target, oh, g, outW);
      if (++g == groups) {
        g = 0;
        oh++;
      }
      const f2 = unitInput(scratch, oh, g, sh, sw, rowBytes);
      const o2 = unitOutput(target, oh, g, outW);
      if (++g == groups) {
        g = 0;
        oh++;
      }
      const f3 = unitInput(scratch, oh, g, sh, sw, rowBytes);
      const o3 = unitOutput(target, oh, g, outW);
      if (++g == groups) {
        g = 0;
        oh++;
      }
      let b0 = lowest;
      let b1 = lowest;
      let b2 = lowest;
      let b3 = lowest;
      for (let h = 0; h < kh; h++) {
        const row = <usize>h * rowBytes;
        for (let w = 0; w < kw; w++) {
          const tap = row + (<usize>w << 2);
          b0 = f32x4.pmax(b0, fourFloats(f0 + tap, sw));
          b1 = f32x4.pmax(b1, fourFloats(f1 + tap, sw));
          b2 = f32x4.pmax(b2, fourFloats(f2 + tap, sw));
          b3 = f32x4.pmax(b3, fourFloats(f3 + tap, sw));
        }
      }
      v128.store(o0, b0);
      v128.store(o1, b1);
      v128.store(o2, b2);
      v128.store(o3, b3);
    }
    for (; unit < units; unit++) {
      const first = unitInput(scratch, oh, g, sh, sw, rowBytes);
      let best = lowest;
      for (let h = 0; h < kh; h++) {
        const row = first + <usize>h * rowBytes;
        for (let w = 0; w < kw; w++) best = f32x4.pmax(best, fourFloats(at(row, w), sw));
      }
      v128.store(unitOutput(target, oh, g, outW), best);
      if (++g == groups) {
        g = 0;
        oh++;
      }
    }
  }
}

/**
 * maxPool's windows of 2 or 3 rows and columns at stride 2 on the bordered plane at `scratch`
 * (rows `rowBytes` apart) into the plane at `target`, as the maxima of the windows' row maxima:
 * the same values as window order, and the same first of equal ones (+0 / -0), since each row's
 * maximum is the first of its largest and the rows are taken in order. Two output rows at a time
 * (with 3 rows their windows share one input row), four outputs of each per vector; a row's
 * last one to three outputs through storeFirstLanes.
 */
function maxPoolHalving(
  scratch: usize,
  rowBytes: usize,
  target: usize,
  outH: i32,
  outW: i32,
  kh: i32,
  kw: i32,
  lowest: v128,
): void {
  const groups = (outW + 3) >> 2;
  const last = outW & 3;
  for (let oh = 0; oh < outH; oh += 2) {
    const top = scratch + <usize>(2 * oh) * rowBytes;
    const outRow = at(target, oh * outW);
    for (let g = 0; g < groups; g++) {
      const from = top + (<usize>g << 5);
      const lowerRow = oh + 1 < outH;
      // The third input row: the upper windows' last (3 rows), the lower ones' first.
      const r2 = kh == 3 || lowerRow ? rowMaxima(from + 2 * rowBytes, kw, lowest) : lowest;
      let upper = f32x4.pmax(rowMaxima(from, kw, lowest), rowMaxima(from + rowBytes, kw, lowest));
      if (kh == 3) upper = f32x4.pmax(upper, r2);
      const partial = last != 0 && g == groups - 1;
      storeGroup(at(outRow, g << 2), upper, partial, last);
      if (!lowerRow) continue;
      let lower = f32x4.pmax(r2, rowMaxima(from + 3 * rowBytes, kw, lowest));
      if (kh == 3) lower = f32x4.pmax(lower, rowMaxima(from + 4 * rowBytes, kw, lowest));
      storeGroup(at(outRow, outW + (g << 2)), lower, partial, last);
    }
  }
}

/**
 * The maxima of 2 or 3 (`kw`) consecutive floats from `from` + 0, 2, 4 and 6 (one row of four
 * windows at stride 2), each from `lowest` on in order.
 */
@inline
function rowMaxima(from: usize, kw: i32, lowest: v128): v128 {
  const a = v128.load(from);
  const b = v128.load(from, 16);
  const evens = v128.shuffle<f32>(a, b, 0, 2, 4, 6);
  const odds = v128.shuffle<f32>(a, b, 1, 3, 5, 7);
  const best = f32x4.pmax(f32x4.pmax(lowest, evens), odds);
  if (kw == 2) return best;
  return f32x4.pmax(best, v128.shuffle<f32>(evens, v128.load(from, 32), 1, 2, 3, 4));
}

/** Four outputs at `to`, or when `partial` their first `count`. */
@inline
function storeGroup(to: usize, values: v128, partial: bool, count: i32): void {
  if (partial) storeFirstLanes(to, values, count);
  else v128.store(to, values);
}

/** The first padded input of the windows of output row `oh`'s group `g` of four outputs. */
@inline
function unitInput(scratch: usize, oh: i32, g: i32, sh: i32, sw: i32, rowBytes: usize): usize {
  return scratch + <usize>(oh * sh) * rowBytes + (<usize>(g * sw) << 4);
}

/** Where output row `oh`'s group `g` of four outputs goes. */
@inline
function unitOutput(target: usize, oh: i32, g: i32, outW: i32): usize {
  return at(target, oh * outW + (g << 2));
}

/**
 * AVE pooling: the sum over the window clipped to the image, divided by Caffe's pool size, the
 * window area clipped to the padded image (padded cells inside it count). T is f32, or i32 for
 * the deploy model's integer input (the sum is then exact and divided in float32).
 */
export function avePool<T>(
  x: usize,
  planes: i32,
  height: i32,
  width: i32,
  geometry: usize,
  outH: i32,
  outW: i32,
  y: usize,
): void {
  const window = changetype<Window>(geometry);
  const kh = window.kernelH;
  const kw = window.kernelW;
  const ph = window.padH;
  const pw = window.padW;
  const sh = window.strideH;
  const sw = window.strideW;
  let target = y;
  for (let plane = 0; plane < planes; plane++) {
    const source = at(x, plane * height * width);
    for (let oh = 0; oh < outH; oh++) {
      const hFirst = oh * sh - ph;
      const hLast = min(hFirst + kh, height + ph);
      const hStart = max(hFirst, 0);
      const hEnd = min(hLast, height);
      for (let ow = 0; ow < outW; ow++) {
        const wFirst = ow * sw - pw;
        const wLast = min(wFirst + kw, width + pw);
        const poolSize = (hLast - hFirst) * (wLast - wFirst);
        const wStart = max(wFirst, 0);
        const wEnd = min(wLast, width);
        let sum: T = <T>0;
        for (let h = hStart; h < hEnd; h++) {
          const row = at(source, h * width);
          for (let w = wStart; w < wEnd; w++) sum += load<T>(at(row, w));
        }
        store<f32>(target, <f32>sum / <f32>poolSize);
        target += 4;
      }
    }
  }
}
