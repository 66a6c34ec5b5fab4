// Layers that mix values across one axis (Softmax, LRN, SSD's Normalize) and the Permute gather,
// with Caffe's float32 arithmetic. Arguments are byte offsets into caller memory.

import { at } from "./gemm";

/**
 * Softmax over the middle axis of [outer, channels, inner]: subtract the maximum, exp, divide by
 * the float32 sum.
 */
export function softmax(x: usize, outer: i32, channels: i32, inner: i32, y: usize): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const first = o * channels * inner + i;
      let largest = load<f32>(at(x, first));
      for (let c = 1; c < channels; c++) {
        largest = max(largest, load<f32>(at(x, first + c * inner)));
      }
      let sum: f32 = 0;
      for (let c = 0; c < channels; c++) {
        const index = first + c * inner;
        const value = <f32>Math.exp(load<f32>(at(x, index)) - largest);
        store<f32>(at(y, index), value);
        sum += value;
      }
      for (let c = 0; c < channels; c++) {
        const index = first + c * inner;
        store<f32>(at(y, index), load<f32>(at(y, index)) / sum);
      }
    }
  }
}

/**
 * LRN across channels: y = x * (k + alpha/size * sum of x^2 over the channels
 * [c - (size-1)/2, c - (size-1)/2 + size) inside the image) ^ -beta, four positions at a time
 * (each sum in channel order, a product rounded before it is added).
 */
export function lrnAcrossChannels(
  x: usize,
  batch: i32,
  channels: i32,
  spatial: i32,
  size: i32,
  alpha: f32,
  beta: f32,
  k: f32,
  y: usize,
): void {
  const alphaOverSize = alpha / <f32>size;
  const factor = f32x4.splat(alphaOverSize);
  const prePad = (size - 1) / 2;
  for (let n = 0; n < batch; n++) {
    const image = n * channels * spatial;
    for (let c = 0; c < channels; c++) {
      const from = image + max(c - prePad, 0) * spatial;
      const to = image + min(c - prePad + size, channels) * spatial;
      const plane = image + c * spatial;
      let s = 0;
      for (; s + 4 <= spatial; s += 4) {
        let scale = f32x4.splat(k);
        for (let other = from; other < to; other += spatial) {
          const value = v128.load(at(x, other + s));
          scale = f32x4.add(scale, f32x4.mul(factor, f32x4.mul(value, value)));
        }
        const index = plane + s;
        v128.store(at(y, index), timesPower(v128.load(at(x, index)), scale, beta));
      }
      for (; s < spatial; s++) {
        let scale = k;
        for (let other = from; other < to; other += spatial) {
          const value = load<f32>(at(x, other + s));
          scale += alphaOverSize * (value * value);
        }
        const index = plane + s;
        store<f32>(at(y, index), timesPowerOne(load<f32>(at(x, index)), scale, beta));
      }
    }
  }
}

/** Bytes of the row scratch {@link lrnWithinChannel} needs. */
export function lrnRowBytes(width: i32, size: i32): i32 {
  return (width + size + 3) << 2;
}

/**
 * LRN within each channel as Caffe builds it from Pooling (AVE), Power and Eltwise PROD:
 * y = x * (1 + alpha * (sum of x^2 over the size x size window centred on x, inside the plane) /
 * size^2) ^ -beta (the average counts the cells outside the plane, as Caffe's AVE pooling with pad
 * (size-1)/2 does). Per output row the window's squares are summed down each column into `row`
 * (lrnRowBytes scratch, zero on both sides), then across the window's columns, four outputs at a
 * time. x and y must not overlap.
 */
export function lrnWithinChannel(
  x: usize,
  planes: i32,
  height: i32,
  width: i32,
  size: i32,
  alpha: f32,
  beta: f32,
  row: usize,
  y: usize,
): void {
  const pad = (size - 1) / 2;
  const cells = <f32>(size * size);
  memory.fill(row, 0, lrnRowBytes(width, size));
  const sums = at(row, pad);
  for (let plane = 0; plane < planes; plane++) {
    const source = at(x, plane * height * width);
    const target = at(y, plane * height * width);
    for (let h = 0; h < height; h++) {
      const first = max(h - pad, 0);
      const end = min(h + pad + 1, height);
      let w = 0;
      for (; w + 4 <= width; w += 4) {
        let sum = f32x4.splat(0);
        for (let r = first; r < end; r++) {
          const value = v128.load(at(source, r * width + w));
          sum = f32x4.add(sum, f32x4.mul(value, value));
        }
        v128.store(at(sums, w), sum);
      }
      for (; w < width; w++) {
        let sum: f32 = 0;
        for (let r = first; r < end; r++) {
          const value = load<f32>(at(source, r * width + w));
          sum += value * value;
        }
        store<f32>(at(sums, w), sum);
      }
      const outputs = at(target, h * width);
      const inputs = at(source, h * width);
      w = 0;
      for (; w + 4 <= width; w += 4) {
        let sum = v128.load(at(row, w));
        for (let d = 1; d < size; d++) sum = f32x4.add(sum, v128.load(at(row, w + d)));
        const average = f32x4.div(sum, f32x4.splat(cells));
        const scale = f32x4.add(f32x4.mul(f32x4.splat(alpha), average), f32x4.splat(1));
        v128.store(at(outputs, w), timesPower(v128.load(at(inputs, w)), scale, beta));
      }
      for (; w < width; w++) {
        let sum = load<f32>(at(row, w));
        for (let d = 1; d < size; d++) sum += load<f32>(at(row, w + d));
        const scale = alpha * (sum / cells) + 1;
        store<f32>(at(outputs, w), timesPowerOne(load<f32>(at(inputs, w)), scale, beta));
      }
    }
  }
}

/**
 * x * scale ^ -beta per lane, the power as float64 Math.pow rounded to float32 would give it:
 * beta 0.75 (Caffe's default) as 1 / (sqrt(s) * sqrt(sqrt(s))) in float64 two lanes at a time,
 * any other beta by Math.pow per lane.
 */
@inline
function timesPower(x: v128, scale: v128, beta: f32): v128 {
  if (beta != 0.75) {
    return f32x4.mul(
      x,
      f32x4(
        <f32>Math.pow(f32x4.extract_lane(scale, 0), -beta),
        <f32>Math.pow(f32x4.extract_lane(scale, 1), -beta),
        <f32>Math.pow(f32x4.extract_lane(scale, 2), -beta),
        <f32>Math.pow(f32x4.extract_lane(scale, 3), -beta),
      ),
    );
  }
  const low = powerThreeQuarters(f64x2.promote_low_f32x4(scale));
  const high = powerThreeQuarters(f64x2.promote_low_f32x4(v128.shuffle<f32>(scale, scale, 2, 3, 2, 3)));
  const power = v128.shuffle<f32>(
    f32x4.demote_f64x2_zero(low),
    f32x4.demote_f64x2_zero(high),
    0,
    1,
    4,
    5,
  );
  return f32x4.mul(x, power);
}

/** {@link timesPower} of one value (the same arithmetic as a lane). */
@inline
function timesPowerOne(x: f32, scale: f32, beta: f32): f32 {
  if (beta != 0.75) return x * <f32>Math.pow(scale, -beta);
  return f32x4.extract_lane(timesPower(f32x4.splat(x), f32x4.splat(scale), beta), 0);
}

/** s ^ -0.75 on two float64 lanes. */
@inline
function powerThreeQuarters(s: v128): v128 {
  const root = f64x2.sqrt(s);
  return f64x2.div(f64x2.splat(1), f64x2.mul(root, f64x2.sqrt(root)));
}

/**
 * SSD Normalize: x divided by the L2 norm sqrt(sum x^2 + eps) taken over each image
 * (`acrossSpatial`, multiplied by the reciprocal as SSD does) or over the channels at each
 * position, then multiplied by scale[c] (stride 0 when the scale is channel-shared).
 */
export function normalize(
  x: usize,
  batch: i32,
  channels: i32,
  spatial: i32,
  acrossSpatial: bool,
  eps: f32,
  scale: usize,
  scaleStride: i32,
  y: usize,
): void {
  const size = channels * spatial;
  for (let n = 0; n < batch; n++) {
    const image = n * size;
    if (acrossSpatial) {
      let sum: f32 = 0;
      for (let i = 0; i < size; i++) {
        const value = load<f32>(at(x, image + i));
        sum += value * value;
      }
      const inverse = <f32>(<f32>1 / <f32>Math.pow(sum + eps, 0.5));
      for (let i = 0; i < size; i++) {
        store<f32>(at(y, image + i), load<f32>(at(x, image + i)) * inverse);
      }
    } else {
      for (let s = 0; s < spatial; s++) {
        let sum: f32 = 0;
        for (let c = 0; c < channels; c++) {
          const value = load<f32>(at(x, image + c * spatial + s));
          sum += value * value;
        }
        const norm = <f32>Math.pow(sum + eps, 0.5);
        for (let c = 0; c < channels; c++) {
          const index = image + c * spatial + s;
          store<f32>(at(y, index), load<f32>(at(x, index)) / norm);
        }
      }
    }
    for (let c = 0; c < channels; c++) {
      const factor = load<f32>(at(scale, c * scaleStride));
      for (let s = 0; s < spatial; s++) {
        const index = image + c * spatial + s;
        store<f32>(at(y, index), load<f32>(at(y, index)) * factor);
      }
    }
  }
}

/**
 * Permute: y in C order of shape `outShape` (ndim i32 values) gathers x with `inStrides` (the
 * input stride, in elements, of each output axis).
 */
export function permute(x: usize, ndim: i32, outShape: usize, inStrides: usize, y: usize): void {
  const last = ndim - 1;
  const lastSize = load<i32>(at(outShape, last));
  const lastStride = load<i32>(at(inStrides, last));
  let rows = 1;
  for (let d = 0; d < last; d++) rows *= load<i32>(at(outShape, d));
  let target = y;
  for (let row = 0; row < rows; row++) {
    let rest = row;
    let source = 0;
    for (let d = last - 1; d >= 0; d--) {
      const extent = load<i32>(at(outShape, d));
      source += (rest % extent) * load<i32>(at(inStrides, d));
      rest /= extent;
    }
    for (let i = 0; i < lastSize; i++) {
      store<f32>(target, load<f32>(at(x, source + i * lastStride)));
      target += 4;
    }
  }
}
