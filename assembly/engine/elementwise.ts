// Element-wise and per-channel layers with Caffe's float32 arithmetic. A per-channel view of a
// tensor is [outer, channels, inner]; a parameter array read with stride 0 is shared by every
// channel. Arguments are byte offsets into caller memory; x and y may be the same buffer.

import { at } from "./gemm";

/**
 * Caffe's ReLU of four lanes, max(x, 0) + slope * min(x, 0) with std::max and std::min, which
 * return their first argument unless the other is less (-0 stays -0, NaN stays NaN): exactly
 * f32x4.pmax and pmin (one instruction each on x86, where max/min take several for NaN and -0).
 */
@inline
export function reluLanes(x: v128, slopes: v128): v128 {
  const zero = f32x4.splat(0);
  return f32x4.add(f32x4.pmax(x, zero), f32x4.mul(slopes, f32x4.pmin(x, zero)));
}

/** ReLU: y = max(x, 0) + slope * min(x, 0) (reluLanes; a tail of fewer than four as lanes). */
export function relu(x: usize, count: i32, slope: f32, y: usize): void {
  const slopes = f32x4.splat(slope);
  let i = 0;
  for (; i + 4 <= count; i += 4) v128.store(at(y, i), reluLanes(v128.load(at(x, i)), slopes));
  for (; i < count; i++) {
    const lanes = reluLanes(f32x4.splat(load<f32>(at(x, i))), slopes);
    store<f32>(at(y, i), f32x4.extract_lane(lanes, 0));
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
 * TanH (0), Sigmoid as Caffe's 0.5 * tanh(0.5 x) + 0.5 (1), AbsVal (2), four values at a time; a
 * tail of fewer than four goes through the same lane-wise vector code, so a value's result does
 * not depend on its position. TanH is {@link tanhLanes}.
 */
export function unary(operation: i32, x: usize, count: i32, y: usize): void {
  let i = 0;
  for (; i + 4 <= count; i += 4) v128.store(at(y, i), unaryLanes(operation, v128.load(at(x, i))));
  for (; i < count; i++) {
    const lanes = unaryLanes(operation, f32x4.splat(load<f32>(at(x, i))));
    store<f32>(at(y, i), f32x4.extract_lane(lanes, 0));
  }
}

/** {@link unary}'s `operation` on each lane of `x`. */
@inline
function unaryLanes(operation: i32, x: v128): v128 {
  if (operation == TANH) return tanhLanes(x);
  if (operation == SIGMOID) {
    const half = constant(HALF);
    return f32x4.add(f32x4.mul(half, tanhLanes(f32x4.mul(half, x))), half);
  }
  return f32x4.abs(x);
}

/**
 * The constants of {@link tanhLanes} and {@link expLanes} (Cephes' tanhf and expf), read with
 * {@link constant}: inside a loop V8 builds every `v128.const` anew in several instructions, while a
 * splat load is one.
 */
const CONSTANTS: usize = memory.data<f32>([
  0.5, 1, 2, 9.125, 0.625,
  -5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1, -3.33332819422e-1,
  1.44269504088896341, 12582912, 0.693359375, -2.12194440e-4,
  1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1,
  5.0000001201e-1, 12582785,
]);
const HALF = 0;
const ONE = 1;
const TWO = 2;
const SATURATED = 3;
const SMALL = 4;
const TANH_P = 5;
const LOG2E = 10;
const SHIFTER = 11;
const LN2_HIGH = 12;
const LN2_LOW = 13;
const EXP_P = 14;
const EXPONENT_BIAS = 20;

/** Constant `index` of {@link CONSTANTS} in every lane. */
@inline
function constant(index: i32): v128 {
  return v128.load32_splat(CONSTANTS + (<usize>index << 2));
}

/**
 * tanh of four float32 values in float32 steps (Cephes' tanhf, without fused multiply-adds so that
 * both engine builds give the same bits): |x| < 0.625 as the odd polynomial |x| + |x|^3 P(x^2),
 * larger |x| as 1 - 2 / (exp(2|x|) + 1) with |x| clamped at 9.125 (tanh rounds to 1 from 9.01 on),
 * then the sign of x put back, which keeps -0 and makes ±Inf ±1; NaN stays NaN. Within 1.33 float32
 * ulps of tanh over every third float32 below 10 (tests/engine_unary_test.ts).
 */
@inline
function tanhLanes(x: v128): v128 {
  const magnitude = f32x4.abs(x);
  const a = f32x4.pmin(magnitude, constant(SATURATED)); // NaN stays NaN
  const z = f32x4.mul(a, a);
  let p = constant(TANH_P);
  p = f32x4.add(f32x4.mul(p, z), constant(TANH_P + 1));
  p = f32x4.add(f32x4.mul(p, z), constant(TANH_P + 2));
  p = f32x4.add(f32x4.mul(p, z), constant(TANH_P + 3));
  p = f32x4.add(f32x4.mul(p, z), constant(TANH_P + 4));
  const small = f32x4.add(f32x4.mul(f32x4.mul(p, z), a), a);
  const one = constant(ONE);
  const growth = expLanes(f32x4.add(a, a));
  const large = f32x4.sub(one, f32x4.div(constant(TWO), f32x4.add(growth, one)));
  const sign = v128.xor(x, magnitude);
  return v128.or(v128.bitselect(small, large, f32x4.lt(a, constant(SMALL))), sign);
}

/**
 * exp of four float32 values in [0, 88] (Cephes' expf): x = k ln 2 + r with |r| <= ln 2 / 2
 * (ln 2 in two parts, so that k ln2_hi is exact), exp(r) by a degree-7 polynomial, times 2^k.
 * k is rounded to the nearest integer by adding 1.5 * 2^23, which leaves it in the low bits.
 */
@inline
function expLanes(x: v128): v128 {
  const shifted = f32x4.add(f32x4.mul(x, constant(LOG2E)), constant(SHIFTER));
  const k = f32x4.sub(shifted, constant(SHIFTER));
  let r = f32x4.sub(x, f32x4.mul(k, constant(LN2_HIGH)));
  r = f32x4.sub(r, f32x4.mul(k, constant(LN2_LOW)));
  let p = constant(EXP_P);
  p = f32x4.add(f32x4.mul(p, r), constant(EXP_P + 1));
  p = f32x4.add(f32x4.mul(p, r), constant(EXP_P + 2));
  p = f32x4.add(f32x4.mul(p, r), constant(EXP_P + 3));
  p = f32x4.add(f32x4.mul(p, r), constant(EXP_P + 4));
  p = f32x4.add(f32x4.mul(p, r), constant(EXP_P + 5));
  const value = f32x4.add(f32x4.add(f32x4.mul(p, f32x4.mul(r, r)), r), constant(ONE));
  // The low bits of `shifted` hold k: 2^k = (k + 127) << 23, where bits(1.5 * 2^23 - 127) are
  // bits(1.5 * 2^23) - 127.
  const power = i32x4.shl(i32x4.sub(shifted, constant(EXPONENT_BIAS)), 23);
  return f32x4.mul(value, power);
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

/**
 * Eltwise SUM of two inputs into the first, as Caffe sums (top = 0, then top += c_i * x_i for each
 * input), then, when `relu`, max(v, 0) + slope * min(v, 0): y = b * cb + (y * ca + 0), the same
 * operations in the same order as zeros then addScaled(y, a, ca), addScaled(y, b, cb) and relu,
 * in one pass.
 */
export function sumPair(y: usize, b: usize, count: i32, ca: f32, cb: f32, relu: bool, slope: f32): void {
  const factorsA = f32x4.splat(ca);
  const factorsB = f32x4.splat(cb);
  const zeros = f32x4.splat(0);
  const slopes = f32x4.splat(slope);
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    const first = f32x4.add(f32x4.mul(v128.load(at(y, i)), factorsA), zeros);
    const sum = f32x4.add(f32x4.mul(v128.load(at(b, i)), factorsB), first);
    v128.store(at(y, i), relu ? reluLanes(sum, slopes) : sum);
  }
  for (; i < count; i++) {
    const sum = cb * load<f32>(at(b, i)) + (ca * load<f32>(at(y, i)) + <f32>0);
    store<f32>(at(y, i), relu ? f32x4.extract_lane(reluLanes(f32x4.splat(sum), slopes), 0) : sum);
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
