// Caffe's MAX and AVE pooling over NCHW planes. Arguments are byte offsets into caller memory, the
// window geometry one of a Window (assembly/engine/window.ts; its dilation is unused).

import { at } from "./gemm";
import { Window } from "./window";

/**
 * MAX pooling: window [oh*sh - ph, +kh) x [ow*sw - pw, +kw) clipped to the image; the maximum
 * starts from -FLT_MAX and takes strictly greater values in window order (rows, then columns), as
 * Caffe does. Outputs whose window lies inside the row go four at a time at stride 1 and 2 (the
 * same comparisons per lane: f32x4.pmax(best, value) is value > best ? value : best).
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
): void {
  const window = changetype<Window>(geometry);
  const kh = window.kernelH;
  const kw = window.kernelW;
  const ph = window.padH;
  const pw = window.padW;
  const sh = window.strideH;
  const sw = window.strideW;
  // Outputs [inFirst, vectorEnd) have their whole window row inside the image row, and so do the
  // loads of a group of four (at stride 2 they read one value past the window).
  const inFirst = min((pw + sw - 1) / sw, outW);
  const room = width - (kw - 1 - pw) - (sw == 2 ? 1 : 0);
  const vectorEnd = sw > 2 || room <= 0 ? inFirst : max(min(outW, (room + sw - 1) / sw), inFirst);
  const lowest = f32x4.splat(-F32.MAX_VALUE);
  let target = y;
  for (let plane = 0; plane < planes; plane++) {
    const source = at(x, plane * height * width);
    for (let oh = 0; oh < outH; oh++) {
      const hStart = max(oh * sh - ph, 0);
      const hEnd = min(oh * sh - ph + kh, height);
      let ow = 0;
      while (ow < outW) {
        if (ow >= inFirst && ow + 4 <= vectorEnd) {
          let best = lowest;
          for (let h = hStart; h < hEnd; h++) {
            const row = at(source, h * width + ow * sw - pw);
            for (let w = 0; w < kw; w++) {
              const from = at(row, w);
              const values = sw == 1
                ? v128.load(from)
                : v128.shuffle<f32>(v128.load(from), v128.load(from, 16), 0, 2, 4, 6);
              best = f32x4.pmax(best, values);
            }
          }
          v128.store(target, best);
          target += 16;
          ow += 4;
          continue;
        }
        const wStart = max(ow * sw - pw, 0);
        const wEnd = min(ow * sw - pw + kw, width);
        let best: f32 = -F32.MAX_VALUE;
        for (let h = hStart; h < hEnd; h++) {
          const row = at(source, h * width);
          for (let w = wStart; w < wEnd; w++) {
            const value = load<f32>(at(row, w));
            if (value > best) best = value;
          }
        }
        store<f32>(target, best);
        target += 4;
        ow++;
      }
    }
  }
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
