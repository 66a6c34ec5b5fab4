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
