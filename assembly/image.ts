// Image preprocessing kernels (src/data), compiled to WebAssembly by scripts/build_wasm.ts and
// wrapped by src/wasm/image.ts. Images are 8-bit, interleaved (height × width × channels, the
// layout OpenCV's cv::Mat and src/data/decode.ts use). Arguments are byte offsets into linear
// memory; the caller owns all memory above the module's initial size (src/wasm/load.ts).

/** OpenCV's INTER_RESIZE_COEF_BITS: the fixed-point weights of 8-bit bilinear resizing. */
const COEF_BITS: i32 = 11;
const COEF_SCALE: i32 = 1 << COEF_BITS;

/** OpenCV's saturate_cast<short>(float): round half to even, then clamp to int16. */
@inline
function weight(value: f32): i32 {
  const rounded = <i32>nearest<f32>(value * <f32>COEF_SCALE);
  return max(-32768, min(32767, rounded));
}

/** Clamps to 0..255 (saturate_cast<uchar>). */
@inline
function toByte(value: i32): u8 {
  return <u8>max(0, min(255, value));
}

/** int16 saturation (SIMD v_pack of int32 to int16). */
@inline
function toShort(value: i32): i32 {
  return max(-32768, min(32767, value));
}

/**
 * `cv::resize(src, dst, Size(dw, dh), 0, 0, INTER_LINEAR)` on an 8-bit image, bit for bit as
 * OpenCV 4.x computes it on x86-64 (resizeGeneric_ with HResizeLinear and VResizeLinear):
 *
 * - x: fx = f32((dx + 0.5) * scale_x - 0.5) with scale_x = 1 / (dw / sw) in float64,
 *   sx = floor(fx), fx -= sx; sx < 0 gives sx = 0, fx = 0; sx >= sw - 1 gives sx = sw - 1,
 *   fx = 0 and a one-tap row from there on. Weights rint(f32(1 - fx) * 2048), rint(fx * 2048).
 * - y: the same fy without clamping the weights: rows sy and sy + 1, each clamped to the image.
 * - Rows blend as VResizeLinearVec_32s8u does, for every element (measured: OpenCV 4.6 on x86-64
 *   gives this even for rows shorter than one vector): with int16 saturation at each step,
 *   ((S0 >> 4) * b0 >> 16) + ((S1 >> 4) * b1 >> 16), then + 2 >> 2 clamped to 0..255.
 *
 * `work` holds (dw * cn) * 16 bytes of scratch.
 */
export function resizeLinear(
  src: usize,
  sh: i32,
  sw: i32,
  cn: i32,
  dst: usize,
  dh: i32,
  dw: i32,
  work: usize,
): void {
  const n = dw * cn;
  const xofs = work; // i32 per element: source element index
  const alpha = work + <usize>n * 4; // two i32 weights per element
  const row0 = alpha + <usize>n * 8; // i32 horizontal sums of source row sy
  const row1 = row0 + <usize>n * 4; // ... of row sy + 1 (reuses row0's memory when equal)
  const scaleX: f64 = 1.0 / (<f64>dw / <f64>sw);
  const scaleY: f64 = 1.0 / (<f64>dh / <f64>sh);
  let xmax = dw;
  for (let dx = 0; dx < dw; dx++) {
    let fx = <f32>((<f64>dx + 0.5) * scaleX - 0.5);
    let sx = <i32>Mathf.floor(fx);
    fx -= <f32>sx;
    if (sx < 0) {
      fx = 0;
      sx = 0;
    }
    if (sx + 1 >= sw) {
      if (dx < xmax) xmax = dx;
      if (sx >= sw - 1) {
        fx = 0;
        sx = sw - 1;
      }
    }
    const a0 = weight(<f32>1.0 - fx);
    const a1 = weight(fx);
    for (let k = 0; k < cn; k++) {
      const e = <usize>(dx * cn + k);
      store<i32>(xofs + e * 4, sx * cn + k);
      store<i32>(alpha + e * 8, a0);
      store<i32>(alpha + e * 8 + 4, a1);
    }
  }
  const limit = xmax * cn;
  for (let dy = 0; dy < dh; dy++) {
    let fy = <f32>((<f64>dy + 0.5) * scaleY - 0.5);
    const sy = <i32>Mathf.floor(fy);
    fy -= <f32>sy;
    const b0 = weight(<f32>1.0 - fy);
    const b1 = weight(fy);
    const y0 = max(0, min(sh - 1, sy));
    const y1 = max(0, min(sh - 1, sy + 1));
    horizontal(src + <usize>y0 * <usize>(sw * cn), xofs, alpha, n, limit, cn, row0);
    horizontal(src + <usize>y1 * <usize>(sw * cn), xofs, alpha, n, limit, cn, row1);
    const out = dst + <usize>dy * <usize>n;
    for (let e = 0; e < n; e++) {
      const s0 = toShort(load<i32>(row0 + <usize>e * 4) >> 4);
      const s1 = toShort(load<i32>(row1 + <usize>e * 4) >> 4);
      const sum = toShort(((s0 * b0) >> 16) + ((s1 * b1) >> 16));
      store<u8>(out + <usize>e, toByte((sum + 2) >> 2));
    }
  }
}

/** HResizeLinear: two taps before element `limit`, one (times 2048) from there on. */
function horizontal(
  row: usize,
  xofs: usize,
  alpha: usize,
  n: i32,
  limit: i32,
  cn: i32,
  out: usize,
): void {
  for (let e = 0; e < n; e++) {
    const sx = <usize>load<i32>(xofs + <usize>e * 4);
    const p0 = <i32>load<u8>(row + sx);
    let value: i32;
    if (e < limit) {
      const p1 = <i32>load<u8>(row + sx + <usize>cn);
      value = p0 * load<i32>(alpha + <usize>e * 8) + p1 * load<i32>(alpha + <usize>e * 8 + 4);
    } else {
      value = p0 * COEF_SCALE;
    }
    store<i32>(out + <usize>e * 4, value);
  }
}

/**
 * OpenCV's resizeAreaFast for an exact 2× reduction (what `cv::resize` INTER_LINEAR runs when
 * both scales are exactly 2): each output is (a + b + c + d + 2) >> 2 of its 2×2 block.
 */
export function resizeHalf(src: usize, sw: i32, cn: i32, dst: usize, dh: i32, dw: i32): void {
  const srcRow = <usize>(sw * cn);
  for (let dy = 0; dy < dh; dy++) {
    const r0 = src + <usize>(dy * 2) * srcRow;
    const r1 = r0 + srcRow;
    const out = dst + <usize>(dy * dw * cn);
    for (let dx = 0; dx < dw; dx++) {
      for (let k = 0; k < cn; k++) {
        const at = <usize>(dx * 2 * cn + k);
        const sum = <i32>load<u8>(r0 + at) + <i32>load<u8>(r0 + at + <usize>cn) +
          <i32>load<u8>(r1 + at) + <i32>load<u8>(r1 + at + <usize>cn);
        store<u8>(out + <usize>(dx * cn + k), <u8>((sum + 2) >> 2));
      }
    }
  }
}

/**
 * Caffe's DataTransformer (TEST phase) on an 8-bit interleaved image of h × w × cn: the window
 * of ch × cw at (top, left) becomes float32 C × H × W values
 * `f32(f32(pixel - mean) * scale)`, output channel c reading image channel c, or cn - 1 - c with
 * `reverse`. `mean` is 0 (none), or float32 values: with `meanCount` 1 one for all channels,
 * `meanCount` = cn one per output channel, else a mean image of cn × h × w indexed at the
 * window's position (Caffe's mean_file).
 */
export function normalize(
  src: usize,
  h: i32,
  w: i32,
  cn: i32,
  top: i32,
  left: i32,
  ch: i32,
  cw: i32,
  reverse: bool,
  mean: usize,
  meanCount: i32,
  scale: f32,
  out: usize,
): void {
  for (let c = 0; c < cn; c++) {
    const from = reverse ? cn - 1 - c : c;
    let channelMean: f32 = 0;
    if (mean != 0 && meanCount == 1) channelMean = load<f32>(mean);
    if (mean != 0 && meanCount == cn) channelMean = load<f32>(mean + <usize>c * 4);
    const meanImage = mean != 0 && meanCount != 1 && meanCount != cn;
    for (let y = 0; y < ch; y++) {
      const srcRow = src + <usize>((top + y) * w * cn);
      const outRow = out + <usize>(((c * ch) + y) * cw) * 4;
      for (let x = 0; x < cw; x++) {
        const pixel = <f32>load<u8>(srcRow + <usize>((left + x) * cn + from));
        const m = meanImage
          ? load<f32>(mean + <usize>(((c * h) + top + y) * w + left + x) * 4)
          : channelMean;
        store<f32>(outRow + <usize>x * 4, (pixel - m) * scale);
      }
    }
  }
}
