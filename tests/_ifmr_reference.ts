/**
 * SPEC §11's IFMR written out as plain scalar code, straight from the text, as the independent
 * reference of tests/calibrate_algorithms_test.ts and tests/calibrate_test.ts.
 *
 * @module
 */

/** IFMR's parameters with AMCT's defaults. */
export const IFMR_DEFAULTS = {
  maxPercentile: 0.999999,
  minPercentile: 0.999999,
  start: 0.7,
  end: 1.3,
  step: 0.01,
  offset: true,
};

/** Round half to even, written out. */
export function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** SPEC §11 IFMR steps 1–5, scalar, straight from the text. */
export function referenceIfmr(
  x: Float32Array,
  p: {
    maxPercentile: number;
    minPercentile: number;
    start: number;
    end: number;
    step: number;
    offset: boolean;
  },
): { scaleD: number; offsetD: number } {
  const n = x.length;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of x) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const histogram = new Array<number>(128).fill(0);
  for (const v of x) {
    const bin = hi === lo ? 0 : Math.min(127, Math.floor((v - lo) / (hi - lo) * 128));
    histogram[bin]++;
  }
  let running = 0;
  let maxIndex = 0;
  let minIndex = 0;
  for (let i = 0; i < 128; i++) {
    running += histogram[i];
    const cdf = running / n;
    if (cdf < p.maxPercentile) maxIndex++;
    if (cdf < 1 - p.minPercentile) minIndex++;
  }
  let maxInit = lo + maxIndex / 128 * (hi - lo);
  let minInit = lo + minIndex / 128 * (hi - lo);
  if (p.offset) {
    maxInit = Math.max(maxInit, 0);
    minInit = Math.min(minInit, 0);
  }
  let best: { scaleD: number; offsetD: number } | undefined;
  let bestError = Infinity;
  // "while s < end": s = start + k·step, and a float rounding just under `end` is not a candidate
  for (let k = 0; p.start + k * p.step < p.end - 1e-9 * p.step; k++) {
    const s = p.start + k * p.step;
    let scale: number;
    let offset = 0;
    if (p.offset) {
      scale = (maxInit * s - minInit) / 255;
      if (scale < 1.1920929e-7) scale = 1;
      offset = Math.min(127, Math.max(-128, -128 - roundHalfEven(minInit / scale)));
    } else {
      scale = Math.max(Math.abs(maxInit), Math.abs(minInit)) * s / 127;
      if (scale < 1.1920929e-7) scale = 1;
    }
    const scaleD = Math.fround(scale);
    const quantScale = Math.fround(1 / scaleD);
    let error = 0;
    for (const v of x) {
      const q = Math.min(127, Math.max(-128, roundHalfEven(Math.fround(v * quantScale)) + offset));
      const roundTrip = Math.fround((q - offset) * scaleD);
      error += (roundTrip - v) * (roundTrip - v);
    }
    if (error < bestError) {
      bestError = error;
      best = { scaleD, offsetD: offset };
    }
  }
  return best!;
}
