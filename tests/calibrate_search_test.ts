// The search (docs/calibration.md "The search") against a plain float64 reference written here:
// on a one-layer net (every output position sampled; the fake-quant pass then sees the same
// inputs), its factors are the best of docs/calibration.md's candidates by the layer's output
// error, its weight scales the best trials per channel, its output error at most IFMR's; a
// channel whose best-rounding scale would overflow the int32 bias gets ARQ's bias floor.

import assert from "node:assert/strict";
import { calibrate, type LayerCalibrationStats } from "../src/calibrate/calibrate.ts";
import { defaultCalibrationConfig } from "../src/calibrate/config.ts";
import type { Sample } from "../src/calibrate/samples.ts";
import type { Net } from "../src/caffe/net.ts";
import { convertNet } from "../src/quant/convert.ts";
import { blobOf, conv, convForward, net, random, roundHalfEven } from "./_builders.ts";
import { IFMR_DEFAULTS, referenceIfmr } from "./_ifmr_reference.ts";

const f32 = Math.fround;
const SHAPE = [2, 6, 6];
const KERNEL = 3;
const OUTPUTS = 3;

/** docs/math.md round trip of an activation value. */
function roundTrip(x: number, scaleD: number, offsetD: number): number {
  const q = Math.min(127, Math.max(-128, roundHalfEven(f32(x * f32(1 / scaleD))) + offsetD));
  return f32((q - offsetD) * scaleD);
}

/** docs/math.md fake-quant weight. */
function fakeWeight(w: number, scale: number): number {
  return f32(Math.min(127, Math.max(-128, roundHalfEven(f32(w / scale)))) * scale);
}

/** docs/calibration.md factors of a clip range, with offset. */
function factorsOf(clipMin: number, clipMax: number): { scaleD: number; offsetD: number } {
  const low = Math.min(clipMin, 0);
  const high = Math.max(clipMax, 0);
  let scale = (high - low) / 255;
  if (scale < 1.1920929e-7) scale = 1;
  const offsetD = Math.min(127, Math.max(-128, -128 - roundHalfEven(low / scale)));
  return { scaleD: f32(scale), offsetD };
}

/** Samples of skewed values: most in [-0.5, 1), a few outliers at 5. */
function skewedSamples(count: number, seed: number): Sample[] {
  const next = random(seed);
  const size = SHAPE.reduce((a, b) => a * b, 1);
  return Array.from({ length: count }, (_, n) => {
    const data = Float32Array.from({ length: size }, () => next(-0.5, 1));
    data[(n * 7) % size] = 5;
    return new Map([["data", { shape: [1, ...SHAPE], data }]]);
  });
}

/** One convolution, weights in [-1, 1) but an outlier 4 in channel 0; `bias` replaces its bias. */
function oneConv(bias?: number[]): Net {
  const layer = conv("conv", "data", "out", {
    numOutput: OUTPUTS,
    channelsIn: SHAPE[0],
    kernel: KERNEL,
    next: random(11),
  });
  const next = random(12);
  const weights = layer.blobs[0].data as Float32Array;
  weights.forEach((_, i) => weights[i] = next(-1, 1));
  weights[0] = 4;
  if (bias !== undefined) layer.blobs[1] = blobOf([OUTPUTS], bias);
  return net("data", [1, ...SHAPE], [layer]);
}

/** The plain reference: the layer's float outputs and its output error under quantization. */
class Reference {
  readonly weights: Float32Array;
  readonly bias: Float32Array;
  readonly inputs: Float64Array[];
  readonly targets: Float64Array[];
  readonly length: number;

  constructor(model: Net, samples: Sample[]) {
    const layer = model.layers[0];
    this.weights = layer.blobs[0].data as Float32Array;
    this.bias = layer.blobs[1].data as Float32Array;
    this.length = this.weights.length / OUTPUTS;
    this.inputs = samples.map((sample) => Float64Array.from(sample.get("data")!.data));
    this.targets = this.inputs.map((data) => this.forward(data, this.weights));
  }

  forward(data: Float64Array, weights: Float32Array): Float64Array {
    const input = { shape: SHAPE as [number, number, number], data };
    return convForward(input, weights, this.bias, OUTPUTS, KERNEL, 1).data;
  }

  /** Per output channel: Σ (y − target)² with the input round-tripped and channel scales. */
  channelErrors(scaleD: number, offsetD: number, scaleW: number[]): number[] {
    const weights = this.weights.map((w, i) => fakeWeight(w, scaleW[Math.floor(i / this.length)]));
    const errors = new Array(OUTPUTS).fill(0);
    const plane = this.targets[0].length / OUTPUTS;
    this.inputs.forEach((data, n) => {
      const output = this.forward(data.map((x) => roundTrip(x, scaleD, offsetD)), weights);
      output.forEach((y, i) => errors[Math.floor(i / plane)] += (y - this.targets[n][i]) ** 2);
    });
    return errors;
  }

  /** The whole output's error. */
  error(scaleD: number, offsetD: number, scaleW: number[]): number {
    return this.channelErrors(scaleD, offsetD, scaleW).reduce((a, b) => a + b, 0);
  }

  /** Channel c's trial scales f32(max|W[c]|/127 · r), r = 1, 0.99, …, 0.5. */
  trials(c: number): number[] {
    const row = this.weights.subarray(c * this.length, (c + 1) * this.length);
    const top = Math.max(...[...row].map(Math.abs));
    return Array.from({ length: 51 }, (_, i) => f32(top / 127 * ((100 - i) / 100)));
  }

  /** Per channel, the trial of least rounding error Σ (ŵ − w)². */
  leastRoundingScales(): number[] {
    return Array.from({ length: OUTPUTS }, (_, c) => {
      const row = this.weights.subarray(c * this.length, (c + 1) * this.length);
      const error = (s: number) => row.reduce((sum, w) => sum + (fakeWeight(w, s) - w) ** 2, 0);
      return this.trials(c).reduce((best, s) => error(s) < error(best) ? s : best);
    });
  }

  /** Per channel, the least output error over the trials for the activation factors. */
  leastChannelErrors(scaleD: number, offsetD: number): number[] {
    const best = new Array(OUTPUTS).fill(Infinity);
    for (let r = 0; r < 51; r++) {
      const scales = Array.from({ length: OUTPUTS }, (_, c) => this.trials(c)[r]);
      this.channelErrors(scaleD, offsetD, scales).forEach((error, c) => {
        best[c] = Math.min(best[c], error);
      });
    }
    return best;
  }
}

/** The one layer's calibration with `algorithm`. */
async function calibrated(
  model: Net,
  samples: Sample[],
  algorithm: "ifmr" | "search",
): Promise<LayerCalibrationStats> {
  const config = defaultCalibrationConfig(model, { activation: { algorithm } });
  const result = await calibrate(model, samples, { config });
  return result.layers[0];
}

Deno.test("search: the chosen factors and weight scales are the best of the documented candidates by output error", async () => {
  const model = oneConv();
  const samples = skewedSamples(4, 5);
  const reference = new Reference(model, samples);
  const stats = await calibrated(model, samples, "search");
  assert.equal(stats.algorithm, "search");

  // docs/calibration.md's first candidates: IFMR's choice, then clip ratios of the range.
  const values = Float32Array.from(reference.inputs.flatMap((data) => [...data]));
  const ifmr = referenceIfmr(values, IFMR_DEFAULTS);
  const [lo, hi] = [Math.min(...values), Math.max(...values)];
  const candidates = [ifmr];
  for (const top of [1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.42, 0.35, 0.3, 0.25, 0.2, 0.15, 0.1]) {
    for (const bottom of [1, 0.75, 0.5]) candidates.push(factorsOf(lo * bottom, hi * top));
  }
  // Scored with the weights of least rounding error; then refined around the best.
  const rounding = reference.leastRoundingScales();
  const score = (f: { scaleD: number; offsetD: number }) =>
    reference.error(f.scaleD, f.offsetD, rounding);
  const first = candidates.reduce((best, f) => score(f) < score(best) ? f : best);
  for (const factor of [0.94, 0.97, 1.03, 1.06]) {
    candidates.push({ scaleD: f32(first.scaleD * factor), offsetD: first.offsetD });
  }
  candidates.push({ scaleD: first.scaleD, offsetD: first.offsetD - 1 });
  candidates.push({ scaleD: first.scaleD, offsetD: first.offsetD + 1 });
  const best = candidates.reduce((winner, f) => score(f) < score(winner) ? f : winner);
  // The last word: the best or IFMR's, each with the best weight trial per channel.
  const total = (f: { scaleD: number; offsetD: number }) =>
    reference.leastChannelErrors(f.scaleD, f.offsetD).reduce((a, b) => a + b, 0);
  const expected = Math.min(total(best), total(ifmr));

  assert.ok(
    candidates.some((f) => f.scaleD === stats.scaleD && f.offsetD === stats.offsetD),
    `${stats.scaleD}/${stats.offsetD} is a documented candidate`,
  );
  const chosen = reference.error(stats.scaleD, stats.offsetD, stats.scaleW);
  assert.ok(chosen <= expected * (1 + 1e-6), `output error ${chosen} vs the best ${expected}`);
  // Each channel's scale_w is its best trial for the chosen factors.
  const perChannel = reference.channelErrors(stats.scaleD, stats.offsetD, stats.scaleW);
  const bestPerChannel = reference.leastChannelErrors(stats.scaleD, stats.offsetD);
  perChannel.forEach((error, c) => {
    assert.ok(error <= bestPerChannel[c] * (1 + 1e-6), `channel ${c}: ${error}`);
    assert.ok(reference.trials(c).includes(stats.scaleW[c]), `channel ${c} scale is a trial`);
  });
});

Deno.test("search: the output error is at most IFMR's on the calibration data", async () => {
  for (const seed of [5, 6, 7]) {
    const model = oneConv();
    const samples = skewedSamples(4, seed);
    const reference = new Reference(model, samples);
    const search = await calibrated(model, samples, "search");
    const ifmr = await calibrated(model, samples, "ifmr");
    const searchError = reference.error(search.scaleD, search.offsetD, search.scaleW);
    const ifmrError = reference.error(ifmr.scaleD, ifmr.offsetD, ifmr.scaleW);
    assert.ok(searchError <= ifmrError * (1 + 1e-6), `seed ${seed}: ${searchError} > ${ifmrError}`);
    assert.ok(searchError < ifmrError, `seed ${seed}: the search finds better (${searchError})`);
  }
});

Deno.test("search: a channel whose best-rounding scale would overflow the int32 bias keeps it within int32", async () => {
  const model = oneConv([2e3, 0.5, -0.25]);
  // Channel 1: tiny weights, so its best-rounding scale is tiny and 2e3 / (scale_d · scale_w)
  // is far beyond int32.
  const weights = model.layers[0].blobs[0].data as Float32Array;
  const length = weights.length / OUTPUTS;
  for (let i = 0; i < length; i++) weights[i] = f32(1e-6 * ((i % 5) - 2));
  const samples = skewedSamples(4, 5);
  const stats = await calibrated(model, samples, "search");
  const reference = new Reference(model, samples);
  const naive = reference.leastRoundingScales()[0];
  const int32 = 2 ** 31 - 1;
  assert.ok(
    Math.abs(2e3 / f32(stats.scaleD * naive)) > int32,
    `the naive scale ${naive} overflows`,
  );
  stats.scaleW.forEach((scale, c) => {
    const bias = reference.bias[c];
    const quantized = roundHalfEven(bias / f32(stats.scaleD * scale));
    assert.ok(Math.abs(quantized) <= int32, `channel ${c}: b_q ${quantized}`);
  });
  // ARQ's floor |b| / (scale_d · 2^30), exactly as docs/math.md gives it.
  assert.equal(stats.scaleW[0], f32(2e3 / (stats.scaleD * 2 ** 30)));
  // And the record converts (convert refuses a bias beyond int32).
  const result = await calibrate(model, samples, {
    config: defaultCalibrationConfig(model, { activation: { algorithm: "search" } }),
  });
  await convertNet(model, result.record);
});
