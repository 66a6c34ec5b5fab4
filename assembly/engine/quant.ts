// The deploy model's Quant layer (SPEC §4) and the int32 differences q - offset_d that its integer
// AVE pooling reads.
// Arguments are byte offsets into caller memory; x and y may be the same buffer.

import { at } from "./gemm";

/**
 * q = clamp(rint(f32(x * S)) + offset_d, -128, 127) of four lanes, as float32. The clamp takes
 * pmax/pmin (one instruction each on x86, where max/min take several for NaN and -0): they give
 * the same values here, the value compared first (NaN stays NaN, and no lane is -0: rint's -0
 * plus an integer offset is +0).
 */
@inline
export function quantizeLanes(x: v128, quantScale: v128, offset: v128): v128 {
  const shifted = f32x4.add(f32x4.nearest(f32x4.mul(x, quantScale)), offset);
  return f32x4.pmin(f32x4.pmax(shifted, f32x4.splat(-128)), f32x4.splat(127));
}

/**
 * The deploy model's Quant layer: y = q as float32 (exact small integers). The fake-quant model's
 * meaning, x^ = f32((q - offset_d) * scale_d), is src/wasm/quant.ts's fakeQuantActivations.
 */
export function quantize(x: usize, count: i32, quantScale: f32, offsetD: f32, y: usize): void {
  const scales = f32x4.splat(quantScale);
  const offsets = f32x4.splat(offsetD);
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    v128.store(at(y, i), quantizeLanes(v128.load(at(x, i)), scales, offsets));
  }
  for (; i < count; i++) {
    const q = quantizeLanes(f32x4.splat(load<f32>(at(x, i))), scales, offsets);
    store<f32>(at(y, i), f32x4.extract_lane(q, 0));
  }
}

/**
 * SPEC §4 activation fake-quant (the fake-quant model's Quant layer), S = f32(1/scaleD), offsetD
 * an integer in -128..127: y = f32(r * scaleD) with r = clamp(rint(f32(x * S)), -128 - offsetD,
 * 127 - offsetD) (= q - offset_d), +0 for a rounded -0; a NaN stays NaN. The one implementation:
 * assembly/quant.ts exports it too, and the engine runs it on a convolution's input in place.
 */
export function fakeQuantize(x: usize, count: i32, scaleD: f32, offsetD: f32, y: usize): void {
  const quantScale = f32x4.splat(<f32>1 / scaleD);
  const low = f32x4.splat(-128 - offsetD);
  const high = f32x4.splat(127 - offsetD);
  const scale = f32x4.splat(scaleD);
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    v128.store(at(y, i), fakeQuantLanes(v128.load(at(x, i)), quantScale, low, high, scale));
  }
  for (; i < count; i++) {
    const lanes = fakeQuantLanes(f32x4.splat(load<f32>(at(x, i))), quantScale, low, high, scale);
    store<f32>(at(y, i), f32x4.extract_lane(lanes, 0));
  }
}

/** fakeQuantize of four lanes (adding +0 turns a rounded -0 into +0; NaN passes pmax/pmin). */
@inline
function fakeQuantLanes(x: v128, quantScale: v128, low: v128, high: v128, scaleD: v128): v128 {
  const rounded = f32x4.pmin(f32x4.pmax(f32x4.nearest(f32x4.mul(x, quantScale)), low), high);
  return f32x4.mul(f32x4.add(rounded, f32x4.splat(0)), scaleD);
}

/** y = i32(x) - offset: the integers q - offset_d the quantized layers work on. */
export function quantizedDifference(x: usize, count: i32, offset: i32, y: usize): void {
  const offsets = i32x4.splat(offset);
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    const values = i32x4.trunc_sat_f32x4_s(v128.load(at(x, i)));
    v128.store(at(y, i), i32x4.sub(values, offsets));
  }
  for (; i < count; i++) store<i32>(at(y, i), <i32>load<f32>(at(x, i)) - offset);
}
