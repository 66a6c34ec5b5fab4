// Element-wise and per-channel layers with Caffe's float32 arithmetic. A per-channel view of a
// tensor is [outer, channels, inner]; a parameter array read with stride 0 is shared by every
// channel. Arguments are byte offsets into caller memory; x and y may be the same buffer.

import { at } from "./gemm";

/** ReLU: y = max(x, 0) + slope * min(x, 0). */
export function relu(x: usize, count: i32, slope: f32, y: usize): void {
  const zero = f32x4.splat(0);
  const slopes = f32x4.splat(slope);
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    const value = v128.load(at(x, i));
    const negative = f32x4.mul(slopes, f32x4.min(value, zero));
    v128.store(at(y, i), f32x4.add(f32x4.max(value, zero), negative));
  }
  for (; i < count; i++) {
    const value = load<f32>(at(x, i));
    store<f32>(at(y, i), max(value, <f32>0) + slope * min(value, <f32>0));
  }
}

/** PReLU: y = max(x, 0) + slope[c] * min(x, 0) per channel. */
export function prelu(
  x: usize,
  outer: i32,
  channels: i32,
  inner: i32,
  slopes: usize,
  slopeStride: i32,
  y: usize,
): void {
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const base = (o * channels + c) * inner;
      relu(at(x, base), inner, load<f32>(at(slopes, c * slopeStride)), at(y, base));
    }
  }
}

/** Unary operation codes of {@link unary}. */
const TANH = 0;
const SIGMOID = 1;

/**
 * TanH (0), Sigmoid as Caffe's 0.5 * tanh(0.5 x) + 0.5 (1), AbsVal (2, SIMD), in float32 steps
 * with float32 tanh (as Caffe's std::tanh on floats).
 */
export function unary(operation: i32, x: usize, count: i32, y: usize): void {
  if (operation == TANH) {
    for (let i = 0; i < count; i++) store<f32>(at(y, i), Mathf.tanh(load<f32>(at(x, i))));
  } else if (operation == SIGMOID) {
    for (let i = 0; i < count; i++) {
      const half = <f32>0.5 * load<f32>(at(x, i));
      store<f32>(at(y, i), <f32>0.5 * Mathf.tanh(half) + <f32>0.5);
    }
  } else {
    let i = 0;
    for (; i + 4 <= count; i += 4) v128.store(at(y, i), f32x4.abs(v128.load(at(x, i))));
    for (; i < count; i++) store<f32>(at(y, i), abs(load<f32>(at(x, i))));
  }
}

/**
 * Power: y = (shift + scale * x) ^ power in float32 steps, and Caffe's constant output
 * (1, or shift ^ power) when power * scale is 0.
 */
export function power(x: usize, count: i32, exponent: f32, scale: f32, shift: f32, y: usize): void {
  if (exponent * scale == 0) {
    const constant: f32 = exponent == 0 ? 1 : <f32>Math.pow(shift, exponent);
    for (let i = 0; i < count; i++) store<f32>(at(y, i), constant);
    return;
  }
  for (let i = 0; i < count; i++) {
    let value = load<f32>(at(x, i));
    if (scale != 1) value *= scale;
    if (shift != 0) value += shift;
    if (exponent != 1) value = <f32>Math.pow(value, exponent);
    store<f32>(at(y, i), value);
  }
}

/**
 * Scale / Bias / DeQuant: y = x * scale[c] (+ bias[c]); `scale` or `bias` 0 when absent. The
 * product is rounded before the bias is added, as Caffe's Scale layer does.
 */
export function channelAffine(
  x: usize,
  outer: i32,
  channels: i32,
  inner: i32,
  scale: usize,
  scaleStride: i32,
  bias: usize,
  biasStride: i32,
  y: usize,
): void {
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const base = (o * channels + c) * inner;
      const factor: f32 = scale != 0 ? load<f32>(at(scale, c * scaleStride)) : 1;
      const offset: f32 = bias != 0 ? load<f32>(at(bias, c * biasStride)) : 0;
      const factors = f32x4.splat(factor);
      const offsets = f32x4.splat(offset);
      let i = 0;
      if (scale != 0) {
        for (; i + 4 <= inner; i += 4) {
          const source = at(x, base + i);
          v128.store(at(y, base + i), f32x4.add(f32x4.mul(v128.load(source), factors), offsets));
        }
        for (; i < inner; i++) {
          store<f32>(at(y, base + i), load<f32>(at(x, base + i)) * factor + offset);
        }
      } else {
        for (; i + 4 <= inner; i += 4) {
          v128.store(at(y, base + i), f32x4.add(v128.load(at(x, base + i)), offsets));
        }
        for (; i < inner; i++) store<f32>(at(y, base + i), load<f32>(at(x, base + i)) + offset);
      }
    }
  }
}

/** BatchNorm: y = (x - mean[c]) / deviation[c]. */
export function batchNorm(
  x: usize,
  outer: i32,
  channels: i32,
  inner: i32,
  mean: usize,
  deviation: usize,
  y: usize,
): void {
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const base = (o * channels + c) * inner;
      const centre = f32x4.splat(load<f32>(at(mean, c)));
      const spread = f32x4.splat(load<f32>(at(deviation, c)));
      let i = 0;
      for (; i + 4 <= inner; i += 4) {
        const value = f32x4.sub(v128.load(at(x, base + i)), centre);
        v128.store(at(y, base + i), f32x4.div(value, spread));
      }
      for (; i < inner; i++) {
        const value = load<f32>(at(x, base + i)) - load<f32>(at(mean, c));
        store<f32>(at(y, base + i), value / load<f32>(at(deviation, c)));
      }
    }
  }
}

/** Per-channel batch mean and (biased) variance over outer and inner, in float64. */
export function channelMoments(
  x: usize,
  outer: i32,
  channels: i32,
  inner: i32,
  mean: usize,
  variance: usize,
): void {
  const count = <f64>outer * <f64>inner;
  for (let c = 0; c < channels; c++) {
    let sum: f64 = 0;
    for (let o = 0; o < outer; o++) {
      const base = (o * channels + c) * inner;
      for (let i = 0; i < inner; i++) sum += <f64>load<f32>(at(x, base + i));
    }
    const average = <f32>(sum / count);
    let squares: f64 = 0;
    for (let o = 0; o < outer; o++) {
      const base = (o * channels + c) * inner;
      for (let i = 0; i < inner; i++) {
        const centred = <f64>(load<f32>(at(x, base + i)) - average);
        squares += centred * centred;
      }
    }
    store<f32>(at(mean, c), average);
    store<f32>(at(variance, c), <f32>(squares / count));
  }
}

/** Eltwise SUM step (Caffe's axpy): y += coefficient * x. */
export function addScaled(y: usize, x: usize, count: i32, coefficient: f32): void {
  const factors = f32x4.splat(coefficient);
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    const scaled = f32x4.mul(v128.load(at(x, i)), factors);
    v128.store(at(y, i), f32x4.add(scaled, v128.load(at(y, i))));
  }
  for (; i < count; i++) {
    store<f32>(at(y, i), coefficient * load<f32>(at(x, i)) + load<f32>(at(y, i)));
  }
}

/** Eltwise PROD step: y *= x. */
export function multiply(y: usize, x: usize, count: i32): void {
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    v128.store(at(y, i), f32x4.mul(v128.load(at(y, i)), v128.load(at(x, i))));
  }
  for (; i < count; i++) store<f32>(at(y, i), load<f32>(at(y, i)) * load<f32>(at(x, i)));
}

/** Eltwise MAX step: y = x where x > y (Caffe keeps the first maximum). */
export function maximum(y: usize, x: usize, count: i32): void {
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    v128.store(at(y, i), f32x4.pmax(v128.load(at(y, i)), v128.load(at(x, i))));
  }
  for (; i < count; i++) {
    const value = load<f32>(at(x, i));
    if (value > load<f32>(at(y, i))) store<f32>(at(y, i), value);
  }
}
