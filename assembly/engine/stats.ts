// Agreement statistics of two float32 tensors, for comparing nets. Arguments are byte offsets
// into caller memory.

import { at } from "./gemm";

/**
 * Writes five float64 values at `out`: sum a*b, sum a^2, sum b^2, sum (a-b)^2 and max |a-b|
 * (NaN when any difference is NaN), each accumulated in float64.
 */
export function agreement(a: usize, b: usize, count: i32, out: usize): void {
  let dot: f64 = 0;
  let squaresA: f64 = 0;
  let squaresB: f64 = 0;
  let squaresDiff: f64 = 0;
  let largest: f64 = 0;
  for (let i = 0; i < count; i++) {
    const x = <f64>load<f32>(at(a, i));
    const y = <f64>load<f32>(at(b, i));
    const difference = x - y;
    dot += x * y;
    squaresA += x * x;
    squaresB += y * y;
    squaresDiff += difference * difference;
    const size = abs(difference);
    if (!isNaN(largest) && !(size <= largest)) largest = size;
  }
  store<f64>(out, dot);
  store<f64>(out, squaresA, 8);
  store<f64>(out, squaresB, 16);
  store<f64>(out, squaresDiff, 24);
  store<f64>(out, largest, 32);
}

/**
 * Writes the smallest and largest of `count` float32 values at `out` (two float32), NaNs
 * ignored; +Inf and -Inf when every value is NaN or there are none.
 */
export function range(x: usize, count: i32, out: usize): void {
  let low = f32x4.splat(Infinity);
  let high = f32x4.splat(-Infinity);
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    const v = v128.load(at(x, i));
    const valid = f32x4.eq(v, v);
    low = v128.bitselect(f32x4.min(low, v), low, valid);
    high = v128.bitselect(f32x4.max(high, v), high, valid);
  }
  let lowest = min(min(f32x4.extract_lane(low, 0), f32x4.extract_lane(low, 1)),
    min(f32x4.extract_lane(low, 2), f32x4.extract_lane(low, 3)));
  let highest = max(max(f32x4.extract_lane(high, 0), f32x4.extract_lane(high, 1)),
    max(f32x4.extract_lane(high, 2), f32x4.extract_lane(high, 3)));
  for (; i < count; i++) {
    const value = load<f32>(at(x, i));
    if (value < lowest) lowest = value;
    if (value > highest) highest = value;
  }
  store<f32>(out, lowest);
  store<f32>(out, highest, 4);
}
