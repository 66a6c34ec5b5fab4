// The activation algorithms of SPEC §11 against independent references written here: IFMR as a
// plain scalar implementation of SPEC's steps, HFMG's search against a brute force over every
// clip range with its error integrated bin by bin, min/max and histogram merging by hand.

import assert from "node:assert/strict";
import {
  activationCollector,
  type ActivationResult,
  type ActivationSettings,
  DEFAULT_ACTIVATION_SETTINGS,
  type InputAlgorithm,
} from "../src/calibrate/activation.ts";
import { calibrateKernels } from "../src/wasm/calibrate.ts";
import { IFMR_DEFAULTS, referenceIfmr, roundHalfEven } from "./_ifmr_reference.ts";

const kernels = await calibrateKernels();

/** A seeded generator of floats in [0, 1) (a plain LCG, independent of src/random.ts). */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** Runs a collector over `batches` for as many passes as it asks. */
function collect(
  settings: ActivationSettings,
  batches: Float32Array[],
  budgetBytes: number,
): ActivationResult {
  const algorithm = settings.algorithm as InputAlgorithm;
  const collector = activationCollector(kernels, algorithm, settings, { bytesLeft: budgetBytes });
  for (let pass = 0; collector.needsPass(pass); pass++) {
    for (const batch of batches) collector.add(pass, batch, [batch.length]);
    collector.endPass(pass);
  }
  return collector.result();
}

/** `values` cut into batches of `size`. */
function batchesOf(values: Float32Array, size: number): Float32Array[] {
  const batches = [];
  for (let start = 0; start < values.length; start += size) {
    batches.push(values.slice(start, start + size));
  }
  return batches;
}

/** Checks IFMR (streamed in three passes, and kept in one) against the reference. */
function checkIfmr(
  values: Float32Array,
  options: Partial<typeof IFMR_DEFAULTS> = {},
  batchSize = 1000,
): ActivationResult {
  const p = { ...IFMR_DEFAULTS, ...options };
  const expected = referenceIfmr(values, p);
  const settings: ActivationSettings = {
    ...DEFAULT_ACTIVATION_SETTINGS,
    maxPercentile: p.maxPercentile,
    minPercentile: p.minPercentile,
    searchRange: [p.start, p.end],
    searchStep: p.step,
    withOffset: p.offset,
  };
  const batches = batchesOf(values, batchSize);
  let first: ActivationResult | undefined;
  for (const budget of [0, 1 << 30]) {
    const result = collect(settings, batches, budget);
    assert.equal(result.scaleD, expected.scaleD, `scale_d (budget ${budget})`);
    assert.equal(result.offsetD, expected.offsetD, `offset_d (budget ${budget})`);
    assert.equal(result.count, values.length);
    first ??= result;
  }
  return first!;
}

function randomValues(n: number, seed: number, make: (u: () => number) => number): Float32Array {
  const u = lcg(seed);
  return Float32Array.from({ length: n }, () => make(u));
}

/** A standard normal from two uniforms. */
function normal(u: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

Deno.test("IFMR: small arrays by hand and against the reference", () => {
  // 1..10: lo 1, hi 10, every cdf below 0.999999 except the last bin, so maxInit = hi, minInit
  // = lo, then min(lo, 0) = 0; the search scales the top between 7 and 12.9.
  const ten = Float32Array.from({ length: 10 }, (_, i) => i + 1);
  const result = checkIfmr(ten);
  assert.equal(result.min, 1);
  assert.equal(result.max, 10);
  checkIfmr(Float32Array.of(-3, -1, 0, 0.5, 2, 7.25));
  checkIfmr(Float32Array.of(-3, -1, 0, 0.5, 2, 7.25), { offset: false });
});

Deno.test("IFMR: edge cases (all equal, all zero, single value, all positive, all negative)", () => {
  for (const offset of [true, false]) {
    checkIfmr(new Float32Array(100).fill(3.5), { offset });
    checkIfmr(new Float32Array(100).fill(-2.25), { offset });
    checkIfmr(new Float32Array(50), { offset });
    checkIfmr(Float32Array.of(0.3), { offset });
    checkIfmr(Float32Array.of(-0.3), { offset });
    checkIfmr(randomValues(5000, 7, (u) => 2 + u() * 5), { offset });
    checkIfmr(randomValues(5000, 8, (u) => -1 - u() * 0.5), { offset });
  }
  // all zero: every candidate's scale is 0, replaced by 1
  const zeros = checkIfmr(new Float32Array(20));
  assert.equal(zeros.scaleD, 1);
  assert.equal(zeros.offsetD, -128);
});

Deno.test("IFMR: random arrays, every parameter", () => {
  const relu = randomValues(20_000, 1, (u) => Math.max(0, normal(u) * 3));
  const gauss = randomValues(20_000, 2, (u) => normal(u) * 0.05 + 0.01);
  const heavy = randomValues(20_000, 3, (u) => normal(u) / (0.05 + u()));
  for (const values of [relu, gauss, heavy]) {
    checkIfmr(values);
    checkIfmr(values, { offset: false });
    checkIfmr(values, { maxPercentile: 0.99, minPercentile: 0.98 });
    checkIfmr(values, { start: 0.5, end: 1.05, step: 0.07 });
    checkIfmr(values, { start: 0.9, end: 1.1, step: 0.05, offset: false }, 777);
  }
});

Deno.test("IFMR: a million values in uneven batches", () => {
  const values = randomValues(1_000_003, 4, (u) => u() < 0.4 ? 0 : normal(u) * 2 + 1);
  checkIfmr(values, {}, 65_537);
});

Deno.test("IFMR: the defaults give 60 candidates, 0.70 … 1.29", () => {
  // maxInit = 10 with offset; the candidates' clip max is 10·s, so scale_d = f32(10·s/255)
  const histogram = new Float64Array(128);
  histogram[127] = 1;
  const candidates = kernels.ifmrCandidates(histogram, 1, 10, 10, {
    ...DEFAULT_ACTIVATION_SETTINGS,
  });
  assert.equal(candidates.scaleD.length, 60);
  assert.equal(candidates.scaleD[0], Math.fround(10 * 0.7 / 255));
  assert.equal(candidates.scaleD[59], Math.fround(10 * (0.7 + 59 * 0.01) / 255));
});

/** SPEC §9 factors by hand. */
Deno.test("min/max: factors of the observed range, widened to 0", () => {
  const settings = { ...DEFAULT_ACTIVATION_SETTINGS, algorithm: "minmax" as const };
  const result = collect(settings, [Float32Array.of(-1, 0.5), Float32Array.of(3, 2)], 0);
  // scale = 4/255; offset = -128 - rint(-1 / (4/255)) = -128 - rint(-63.75) = -64
  assert.equal(result.scaleD, Math.fround(4 / 255));
  assert.equal(result.offsetD, -64);
  assert.deepEqual([result.min, result.max], [-1, 3]);
  const positive = collect(settings, [Float32Array.of(2, 5)], 0);
  assert.equal(positive.scaleD, Math.fround(5 / 255));
  assert.equal(positive.offsetD, -128);
  const symmetric = collect({ ...settings, withOffset: false }, [Float32Array.of(-6, 3)], 0);
  assert.equal(symmetric.scaleD, Math.fround(6 / 127));
  assert.equal(symmetric.offsetD, 0);
});

Deno.test("histogram merging spreads old counts by overlap (by hand)", () => {
  const same = kernels.rebinHistogram(Float64Array.of(4, 2), 0, 2, -1, 3);
  assert.deepEqual([...same], [4, 2]);
  // new bins of width 4/3: old [1, 2) gives 1/3 to new bin 0, old [2, 3) 1/3 to new bin 2
  const folded = kernels.rebinHistogram(Float64Array.of(3, 3, 3), 0, 3, 0, 4);
  [4, 4, 1].forEach((count, i) => assert.ok(Math.abs(folded[i] - count) < 1e-12, `${folded}`));
  // old bin 1 = [1, 2) over new bins [0, 1.5) and [1.5, 3): half each
  const split = kernels.rebinHistogram(Float64Array.of(2, 4), 0, 2, 0, 3);
  assert.deepEqual([...split], [4, 2]);
  // a point range (lo = hi) goes to the bin of that point
  const point = kernels.rebinHistogram(Float64Array.of(5, 0), 2, 2, 0, 3);
  assert.deepEqual([...point], [0, 5]);
  const counts = new Float64Array(4);
  kernels.addToHistogram(Float32Array.of(0, 0.99, 1, 2.5, 4, 3.999), 0, 4, counts);
  assert.deepEqual([...counts], [2, 1, 1, 2]);
});

/**
 * HFMG's objective written out: the grid of clip range [a, b + 1) (bin units, `zero` = the bin
 * position of 0), then each bin's uniform density integrated piece by piece.
 */
function bruteForceError(
  counts: Float64Array,
  a: number,
  b: number,
  zero: number,
  offset: boolean,
): number {
  let low: number;
  let high: number;
  let step: number;
  if (offset) {
    low = Math.min(a, zero);
    high = Math.max(b + 1, zero);
    step = (high - low) / 255;
  } else {
    const m = Math.max(Math.abs(a - zero), Math.abs(b + 1 - zero));
    low = zero - m;
    high = zero + m;
    step = m / 127;
  }
  let error = 0;
  counts.forEach((count, i) => {
    const start = i;
    const end = i + 1;
    // below low: ∫ (x - low)² over [start, min(end, low)]
    if (start < low) {
      const top = Math.min(end, low);
      error += count * ((top - low) ** 3 - (start - low) ** 3) / 3;
    }
    if (end > high) {
      const bottom = Math.max(start, high);
      error += count * ((end - high) ** 3 - (bottom - high) ** 3) / 3;
    }
    const inside = Math.max(0, Math.min(end, high) - Math.max(start, low));
    error += count * inside * step * step / 12;
  });
  return error;
}

Deno.test("HFMG: the search finds the brute-force least error", () => {
  const u = lcg(11);
  for (let trial = 0; trial < 60; trial++) {
    const bins = 8 + Math.floor(u() * 56);
    const counts = Float64Array.from({ length: bins }, () => {
      const r = u();
      return r < 0.3 ? 0 : Math.floor(r * r * 1000);
    });
    counts[Math.floor(u() * bins)] += 1;
    const zero = trial % 3 === 0
      ? 0
      : trial % 3 === 1
      ? u() * bins
      : -u() * 4 + (u() < 0.5 ? 0 : bins + 4);
    for (const offset of [true, false]) {
      let least = Infinity;
      for (let a = 0; a < bins; a++) {
        for (let b = a; b < bins; b++) {
          least = Math.min(least, bruteForceError(counts, a, b, zero, offset));
        }
      }
      const choice = kernels.hfmgSearch(counts, zero, offset);
      assert.ok(choice.first <= choice.last && choice.last < bins);
      const chosen = bruteForceError(counts, choice.first, choice.last, zero, offset);
      const tolerance = 1e-9 * Math.max(1, least);
      assert.ok(
        Math.abs(chosen - least) <= tolerance,
        `trial ${trial} offset ${offset}: chose error ${chosen}, least ${least}`,
      );
      assert.ok(Math.abs(choice.error - chosen) <= tolerance, "the reported error");
    }
  }
});

/** Σ (x̂ − x)² of SPEC §4's round trip over `values`. */
function roundTripError(values: Float32Array, scaleD: number, offsetD: number): number {
  const quantScale = Math.fround(1 / scaleD);
  let error = 0;
  for (const v of values) {
    const q = Math.min(127, Math.max(-128, roundHalfEven(Math.fround(v * quantScale)) + offsetD));
    error += (Math.fround((q - offsetD) * scaleD) - v) ** 2;
  }
  return error;
}

Deno.test("HFMG: on heavy-tailed data it clips the tail and beats min/max", () => {
  // Laplace values: the squared error is least well inside the extremes
  const values = randomValues(200_000, 5, (u) => {
    const r = u() - 0.5;
    return -Math.sign(r) * Math.log(1 - 2 * Math.abs(r));
  });
  const batches = batchesOf(values, 30_000);
  for (const withOffset of [true, false]) {
    const settings = { ...DEFAULT_ACTIVATION_SETTINGS, withOffset };
    const hfmg = collect({ ...settings, algorithm: "hfmg" }, batches, 0);
    const minmax = collect({ ...settings, algorithm: "minmax" }, batches, 0);
    assert.equal(hfmg.count, values.length);
    assert.ok(hfmg.clip[1] < 0.9 * hfmg.max, `clip ${hfmg.clip}, max ${hfmg.max}`);
    const hfmgError = roundTripError(values, hfmg.scaleD, hfmg.offsetD);
    const minmaxError = roundTripError(values, minmax.scaleD, minmax.offsetD);
    assert.ok(hfmgError < minmaxError, `HFMG ${hfmgError}, min/max ${minmaxError}`);
  }
});
