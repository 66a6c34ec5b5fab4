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
 * [c - (size-1)/2, c - (size-1)/2 + size) inside the image) ^ -beta.
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
  const prePad = (size - 1) / 2;
  for (let n = 0; n < batch; n++) {
    const image = n * channels * spatial;
    for (let c = 0; c < channels; c++) {
      const from = max(c - prePad, 0);
      const to = min(c - prePad + size, channels);
      for (let s = 0; s < spatial; s++) {
        let scale = k;
        for (let other = from; other < to; other++) {
          const value = load<f32>(at(x, image + other * spatial + s));
          scale += alphaOverSize * (value * value);
        }
        const index = image + c * spatial + s;
        store<f32>(at(y, index), load<f32>(at(x, index)) * <f32>Math.pow(scale, -beta));
      }
    }
  }
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
