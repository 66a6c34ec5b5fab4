// Tests of the WebAssembly quantization kernels (src/wasm/quant.ts) against SPEC §3/§4/§9:
// SPEC's worked example, hand-derived edge cases, and an independent plain-TypeScript reference
// (float64 arithmetic with Math.fround) on seeded random tensors of odd sizes. Weight tensors go
// through the calls a conversion makes: batchNormFactors and writeWeights (folding),
// quantizeToInt8 and writeFakeWeights (w_q, w_fake), channelMaxAbs and weightScalesFromMax.

import assert from "node:assert/strict";
import {
  type ChannelLayout,
  CHUNK_ELEMENTS,
  outputChannelCount,
  quantKernels,
  type WeightTensor,
} from "../src/wasm/quant.ts";
import { channelLayout } from "../src/quant/channel_layout.ts";
import { unitGenerator } from "../src/random.ts";

const kernels = await quantKernels();
const f32 = Math.fround;

// ---------------------------------------------------------------------------------------------
// Helpers and the independent reference.

/** `count` float32 values, uniform in [-magnitude, magnitude). */
function randomFloats(random: () => number, count: number, magnitude: number): Float32Array {
  const values = new Float32Array(count);
  for (let index = 0; index < count; index++) values[index] = (random() * 2 - 1) * magnitude;
  return values;
}

/** `count` positive float32 values in [low, high). */
function randomPositive(random: () => number, count: number, low: number, high: number) {
  const values = new Float32Array(count);
  for (let index = 0; index < count; index++) values[index] = low + random() * (high - low);
  return values;
}

/** Round half to even of a float64 (the reference's rint). */
function rint(value: number): number {
  if (!Number.isFinite(value)) return value;
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction < 0.5) return floor;
  if (fraction > 0.5) return floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(Math.max(value, low), high);
}

/** Float32 bit patterns, to compare results bit for bit (so -0 and NaN payloads count). */
function bits(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

function assertBitsEqual(actual: Float32Array, expected: Float32Array, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  const actualBits = bits(actual);
  const expectedBits = bits(expected);
  for (let index = 0; index < actual.length; index++) {
    if (actualBits[index] !== expectedBits[index]) {
      assert.fail(`${label}: element ${index} is ${actual[index]}, expected ${expected[index]}`);
    }
  }
}

function assertArrayEqual(actual: ArrayLike<unknown>, expected: ArrayLike<unknown>, label: string) {
  assert.deepEqual(Array.from(actual), Array.from(expected), label);
}

/** Splits [0, count) into ranges at seeded random points (empty ranges included). */
function randomRanges(random: () => number, count: number): [number, number][] {
  const cuts = [0, count, 0, 1, count - 1];
  for (let cut = 0; cut < 6; cut++) cuts.push(Math.floor(random() * count));
  cuts.sort((a, b) => a - b);
  return cuts.slice(1).map((end, index) => [cuts[index], end - cuts[index]]);
}

/** One float32 array of `count` elements written range by range by `write`. */
function writtenInRanges(
  write: (start: number, length: number, target: Uint8Array) => void,
  ranges: [number, number][],
  count: number,
): Float32Array {
  const result = new Float32Array(count);
  const bytes = new Uint8Array(result.buffer);
  for (const [start, length] of ranges) {
    write(start, length, bytes.subarray(start * 4, (start + length) * 4));
  }
  return result;
}

/** A float32 array as a weight tensor with `layout` (a view, no copy), folded by `alpha` if given. */
function tensorOf(
  weights: Float32Array,
  layout: ChannelLayout,
  alpha: Float64Array | null = null,
): WeightTensor {
  const bytes = new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength);
  return { bytes, layout, alpha };
}

/** Shortest decimal that rounds to the same float32. */
function shortestFloat32(value: number): string {
  for (let digits = 1; digits <= 9; digits++) {
    const text = String(Number(value.toPrecision(digits)));
    if (f32(Number(text)) === value) return text;
  }
  return String(value);
}

/**
 * The output channel of every element of a weight blob, from its own index arithmetic:
 * Convolution/InnerProduct: the index along axis 0. Deconvolution [C_in, C_out/G, kh, kw]:
 * group g = floor(i / (C_in/G)), channel = g*(C_out/G) + j (SPEC §3).
 */
function referenceChannels(type: string, shape: number[], groups: number): Int32Array {
  const count = shape.reduce((total, size) => total * size, 1);
  const channels = new Int32Array(count);
  if (type !== "Deconvolution") {
    const perChannel = count / shape[0];
    for (let index = 0; index < count; index++) channels[index] = Math.floor(index / perChannel);
    return channels;
  }
  const [inputs, outputsPerGroup, height, width] = shape;
  const inputsPerGroup = inputs / groups;
  let index = 0;
  for (let i = 0; i < inputs; i++) {
    for (let j = 0; j < outputsPerGroup; j++) {
      const group = Math.floor(i / inputsPerGroup);
      for (let k = 0; k < height * width; k++) channels[index++] = group * outputsPerGroup + j;
    }
  }
  return channels;
}

interface Case {
  name: string;
  type: string;
  shape: number[];
  groups: number;
  channels: number;
}

/** Conv / InnerProduct / Deconvolution shapes with inner sizes that are not multiples of 4 or 16. */
const CASES: Case[] = [
  { name: "Conv 3x3", type: "Convolution", shape: [5, 3, 3, 3], groups: 1, channels: 5 },
  { name: "Conv 1x37", type: "Convolution", shape: [7, 1, 1, 37], groups: 1, channels: 7 },
  { name: "Conv 1x1 tiny", type: "Convolution", shape: [3, 1, 1, 1], groups: 1, channels: 3 },
  { name: "IP", type: "InnerProduct", shape: [3, 53], groups: 1, channels: 3 },
  { name: "IP many outputs", type: "InnerProduct", shape: [997, 7], groups: 1, channels: 997 },
  { name: "Deconv G1", type: "Deconvolution", shape: [6, 5, 3, 3], groups: 1, channels: 5 },
  { name: "Deconv G3", type: "Deconvolution", shape: [6, 2, 3, 3], groups: 3, channels: 6 },
  { name: "Deconv G2 5x5", type: "Deconvolution", shape: [4, 3, 5, 5], groups: 2, channels: 6 },
];

function layoutOf(testCase: Case): ChannelLayout {
  return channelLayout(testCase.type, testCase.shape, testCase.groups);
}

function elementCount(shape: number[]): number {
  return shape.reduce((total, size) => total * size, 1);
}

/** Per-channel scales around `typical`, or one per-tensor scale. */
function scalesFor(random: () => number, channels: number, typical: number, perChannel: boolean) {
  return randomPositive(random, perChannel ? channels : 1, typical * 0.5, typical * 1.5);
}

function scaleOf(scales: Float32Array, channel: number): number {
  return scales.length === 1 ? scales[0] : scales[channel];
}

// ---------------------------------------------------------------------------------------------
// SPEC §4 worked example.

Deno.test("SPEC §4 worked example: deq, packed deq, S and offset", () => {
  const scaleD = f32(1.07450986);
  const scaleW = new Float32Array([0.00448934268]);
  const deq = kernels.dequantScales(scaleD, scaleW);
  assert.equal(bits(deq)[0], 0x3b9e1154);
  assert.equal(shortestFloat32(deq[0]), "0.004823843");
  assert.deepEqual(Array.from(kernels.packDequantScales(deq)), [1000214868n]);

  const quantScale = f32(1 / scaleD);
  assert.equal(shortestFloat32(quantScale), "0.9306569");
  // With offset_d = -14: x = k*scale_d gives q = k - 14 inside the range; 200 and -200 clamp to
  // q = 127 and -128, i.e. x^ = (127 + 14)*scale_d and (-128 + 14)*scale_d.
  const values = new Float32Array([0, 3 * scaleD, -5 * scaleD, 200 * scaleD, -200 * scaleD]);
  const fake = kernels.fakeQuantActivations(values, scaleD, -14);
  const expected = new Float32Array([0, 3 * scaleD, -5 * scaleD, 141 * scaleD, -114 * scaleD]);
  assertBitsEqual(fake, expected, "fake-quant with offset -14");
});

// ---------------------------------------------------------------------------------------------
// Layouts.

Deno.test("channelLayout and outputChannelCount for Conv, InnerProduct and Deconvolution", () => {
  assert.deepEqual(channelLayout("Convolution", [8, 3, 3, 3], 2), {
    outer: 8,
    mid: 1,
    inner: 27,
    channelAxis: 0,
    groups: 1,
  });
  assert.deepEqual(channelLayout("InnerProduct", [10, 20], 1), {
    outer: 10,
    mid: 1,
    inner: 20,
    channelAxis: 0,
    groups: 1,
  });
  const deconv = channelLayout("Deconvolution", [6, 2, 3, 3], 3);
  assert.deepEqual(deconv, { outer: 6, mid: 2, inner: 9, channelAxis: 1, groups: 3 });
  assert.equal(outputChannelCount(deconv), 6);
  assert.equal(outputChannelCount(channelLayout("Convolution", [8, 3, 3, 3], 1)), 8);
  assert.throws(() => channelLayout("Pooling", [1], 1), RangeError);
  assert.throws(() => channelLayout("Deconvolution", [6, 2, 3, 3], 4), RangeError);
});

// ---------------------------------------------------------------------------------------------
// Weight quantization.

function referenceQuantizeWeights(
  weights: Float32Array,
  channels: Int32Array,
  scaleW: Float32Array,
) {
  const weightsInt8 = new Int8Array(weights.length);
  const weightsFake = new Float32Array(weights.length);
  for (let index = 0; index < weights.length; index++) {
    const scale = scaleOf(scaleW, channels[index]);
    const quantized = clamp(rint(f32(weights[index] / scale)), -128, 127);
    weightsInt8[index] = quantized;
    weightsFake[index] = f32(quantized * scale);
  }
  return { weightsInt8, weightsFake };
}

/**
 * w_q and w_fake of `weights` the way a conversion makes them: quantizeToInt8 (which must find
 * every weight finite), then writeFakeWeights range by range.
 */
function quantizeThroughKernels(
  weights: Float32Array,
  layout: ChannelLayout,
  scaleW: Float32Array,
  ranges: [number, number][] = [[0, weights.length]],
) {
  const weightsInt8 = new Int8Array(weights.length);
  assert.equal(
    kernels.quantizeToInt8(tensorOf(weights, layout), scaleW, weightsInt8).nonFinite,
    -1,
  );
  const weightsFake = writtenInRanges(
    (start, length, target) =>
      kernels.writeFakeWeights(weightsInt8, layout, scaleW, start, length, target),
    ranges,
    weights.length,
  );
  return { weightsInt8, weightsFake };
}

for (const perChannel of [false, true]) {
  const kind = perChannel ? "per channel" : "per tensor";
  Deno.test(`quantizeToInt8 and writeFakeWeights match the reference (${kind})`, () => {
    const random = unitGenerator(perChannel ? 11 : 12);
    const seen = new Set<number>();
    for (const testCase of CASES) {
      const weights = randomFloats(random, elementCount(testCase.shape), 0.8);
      // Scales of ~0.8/100 put a share of the weights beyond ±127 so clamping is exercised.
      const scaleW = scalesFor(random, testCase.channels, 0.008, perChannel);
      const channels = referenceChannels(testCase.type, testCase.shape, testCase.groups);
      // Every third weight sits on or next to a tie: f32((k + 0.5)*scale), so an exact f32
      // division and a multiplication by the reciprocal round to different integers.
      for (let index = 0; index < weights.length; index += 3) {
        const k = Math.floor(random() * 271) - 135;
        weights[index] = (k + 0.5) * scaleOf(scaleW, channels[index]);
      }
      // w_fake written in ranges cut at seeded random points (inside rows and SIMD blocks).
      const ranges = randomRanges(random, weights.length);
      const actual = quantizeThroughKernels(weights, layoutOf(testCase), scaleW, ranges);
      const expected = referenceQuantizeWeights(weights, channels, scaleW);
      assertArrayEqual(actual.weightsInt8, expected.weightsInt8, `${testCase.name} int8`);
      assertBitsEqual(actual.weightsFake, expected.weightsFake, `${testCase.name} fake`);
      // What the same pass counts: max |w| per channel, w_q at 127/-128 per channel, zeros.
      const stats = kernels.quantizeToInt8(
        tensorOf(weights, layoutOf(testCase)),
        scaleW,
        new Int8Array(weights.length),
      );
      const expectedMax = new Array(testCase.channels).fill(0);
      const expectedExtremes = new Array(testCase.channels).fill(0);
      let expectedZeros = 0;
      expected.weightsInt8.forEach((value, index) => {
        const channel = channels[index];
        expectedMax[channel] = Math.max(expectedMax[channel], Math.abs(weights[index]));
        if (value === 127 || value === -128) expectedExtremes[channel]++;
        if (value === 0) expectedZeros++;
      });
      assertArrayEqual(stats.channelMax, expectedMax, `${testCase.name} channel max`);
      assertArrayEqual(stats.extremes, expectedExtremes, `${testCase.name} extremes`);
      assert.equal(stats.zeros, expectedZeros, `${testCase.name} zeros`);
      expected.weightsInt8.forEach((value) => seen.add(value));
    }
    assert.ok(seen.has(127) && seen.has(-128), "some weights clamp at 127 and -128");
  });
}

Deno.test("quantizeToInt8 rounds ties to even and clamps at 127 / -128", () => {
  // scale 0.25 divides these exactly, so W/scale is exactly the listed .5 value.
  const quotients = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, 127.5, -127.5, -128.5, -129.5, 1000];
  const expected = [0, 2, 2, 0, -2, -2, 126, 127, -128, -128, -128, 127];
  // 19 elements: one 16-lane block and a 3-element tail; pad with quotient 3.
  const padded = [...quotients, 3, 3, 3, 3, 3, 3, 3];
  const weights = new Float32Array(padded.map((quotient) => quotient * 0.25));
  const layout = channelLayout("InnerProduct", [1, weights.length], 1);
  const { weightsInt8, weightsFake } = quantizeThroughKernels(
    weights,
    layout,
    new Float32Array([0.25]),
  );
  const expectedAll = [...expected, 3, 3, 3, 3, 3, 3, 3];
  assertArrayEqual(weightsInt8, expectedAll, "ties and clamps");
  assertArrayEqual(weightsFake, expectedAll.map((q) => q * 0.25), "fake of ties and clamps");
  // -0.5 rounds to -0; its w_fake is +0 (w_q is the integer 0).
  assert.ok(Object.is(weightsFake[3], 0));
});

Deno.test("quantizeToInt8 stops at the first NaN or infinite weight; writeWeights reads it", () => {
  const weights = new Float32Array([1, NaN, -1, 2, NaN]);
  const tensor = tensorOf(weights, channelLayout("InnerProduct", [1, 5], 1));
  const scaleW = new Float32Array([1]);
  const weightsInt8 = new Int8Array(weights.length);
  assert.equal(kernels.quantizeToInt8(tensor, scaleW, weightsInt8).nonFinite, 1, "first NaN");
  const value = new Float32Array(1);
  kernels.writeWeights(tensor, 1, 1, new Uint8Array(value.buffer));
  assert.ok(Number.isNaN(value[0]), "the NaN weight read back");
  weights[1] = 0;
  assert.equal(kernels.quantizeToInt8(tensor, scaleW, weightsInt8).nonFinite, 4, "the last NaN");
  weights[4] = -Infinity;
  assert.equal(kernels.quantizeToInt8(tensor, scaleW, weightsInt8).nonFinite, 4, "-Infinity");
  weights[4] = 3;
  assert.equal(kernels.quantizeToInt8(tensor, scaleW, weightsInt8).nonFinite, -1, "all finite");
  assertArrayEqual(weightsInt8, [1, 0, -1, 2, 3], "w_q once finite");
});

// ---------------------------------------------------------------------------------------------
// BatchNorm folding.

interface FoldInput {
  weights: Float32Array;
  bias: Float32Array | null;
  mean: Float32Array;
  variance: Float32Array;
  factor: number;
  eps: number;
  gamma: Float32Array;
  beta: Float32Array | null;
}

function referenceFold(input: FoldInput, channels: Int32Array, channelCount: number) {
  const f = input.factor === 0 ? 0 : 1 / input.factor;
  const alpha = new Float64Array(channelCount);
  const bias = new Float32Array(channelCount);
  for (let channel = 0; channel < channelCount; channel++) {
    const variance = input.variance[channel] * f;
    const a = input.gamma[channel] / Math.sqrt(variance + input.eps);
    alpha[channel] = a;
    const b = input.bias === null ? 0 : input.bias[channel];
    const beta = input.beta === null ? 0 : input.beta[channel];
    bias[channel] = (b - input.mean[channel] * f) * a + beta;
  }
  const weights = new Float32Array(input.weights.length);
  for (let index = 0; index < weights.length; index++) {
    weights[index] = input.weights[index] * alpha[channels[index]];
  }
  return { weights, bias, alpha };
}

/**
 * BatchNorm folding the way a conversion does it: batchNormFactors, then writeWeights of the
 * tensor folded by its factors, range by range.
 */
function foldThroughKernels(
  input: FoldInput,
  layout: ChannelLayout,
  ranges: [number, number][] = [[0, input.weights.length]],
) {
  const { alpha, bias } = kernels.batchNormFactors(input);
  const tensor = tensorOf(input.weights, layout, alpha);
  const weights = writtenInRanges(
    (start, length, target) => kernels.writeWeights(tensor, start, length, target),
    ranges,
    input.weights.length,
  );
  return { weights, bias, alpha };
}

Deno.test("batchNormFactors and writeWeights fold like the float64 reference", () => {
  const random = unitGenerator(21);
  const eps = f32(1e-5);
  let variant = 0;
  for (const testCase of CASES) {
    for (const factor of [f32(0.999), 0, 1]) {
      variant++;
      const count = testCase.channels;
      const input: FoldInput = {
        weights: randomFloats(random, elementCount(testCase.shape), 0.5),
        bias: variant % 2 === 0 ? randomFloats(random, count, 0.3) : null,
        mean: randomFloats(random, count, 2),
        variance: randomPositive(random, count, 0, 4),
        factor,
        eps,
        gamma: randomFloats(random, count, 1.5),
        beta: variant % 3 === 0 ? null : randomFloats(random, count, 0.7),
      };
      const ranges = randomRanges(random, input.weights.length);
      const actual = foldThroughKernels(input, layoutOf(testCase), ranges);
      const channels = referenceChannels(testCase.type, testCase.shape, testCase.groups);
      const expected = referenceFold(input, channels, count);
      const label = `${testCase.name} factor ${factor}`;
      assertArrayEqual(actual.alpha, expected.alpha, `${label} alpha`);
      assertBitsEqual(actual.weights, expected.weights, `${label} weights`);
      assertBitsEqual(actual.bias, expected.bias, `${label} bias`);
    }
  }
});

Deno.test("batchNormFactors uses eps as a float32 value", () => {
  // a = 1/sqrt(eps) with variance 0: find a weight whose W*a rounds differently for eps = 1e-5
  // and eps = f32(1e-5); the kernel must give the float32-eps result.
  const alphaF32 = 1 / Math.sqrt(f32(1e-5));
  const alphaF64 = 1 / Math.sqrt(1e-5);
  let weight = 0;
  for (let step = 1; step < 4096 && weight === 0; step++) {
    const candidate = f32(1 + step / 4096);
    if (f32(candidate * alphaF32) !== f32(candidate * alphaF64)) weight = candidate;
  }
  assert.notEqual(weight, 0, "a weight that tells the two eps apart");
  const { weights, alpha } = foldThroughKernels({
    weights: new Float32Array([weight]),
    bias: null,
    mean: new Float32Array([0]),
    variance: new Float32Array([0]),
    factor: 1,
    eps: 1e-5,
    gamma: new Float32Array([1]),
    beta: null,
  }, channelLayout("InnerProduct", [1, 1], 1));
  assert.equal(alpha[0], alphaF32);
  assert.equal(weights[0], f32(weight * alphaF32));
});

// ---------------------------------------------------------------------------------------------
// Non-finite detection.

Deno.test("firstNonFinite finds the first NaN or infinity, in blocks and tails", () => {
  for (const length of [1, 5, 16, 37, 101]) {
    const clean = randomFloats(unitGenerator(length), length, 3);
    assert.equal(kernels.firstNonFinite(clean), -1, `clean length ${length}`);
    for (const bad of [NaN, Infinity, -Infinity]) {
      for (const at of new Set([0, Math.floor(length / 2), length - 1])) {
        const values = clean.slice();
        values[at] = bad;
        if (at + 1 < length) values[length - 1] = NaN;
        assert.equal(kernels.firstNonFinite(values), at, `${bad} at ${at} of ${length}`);
      }
    }
  }
  assert.equal(kernels.firstNonFinite(new Float32Array(0)), -1);
  assert.equal(kernels.firstNonFinite(new Float32Array([3.4e38, -3.4e38, 1e-45])), -1);
});

// ---------------------------------------------------------------------------------------------
// Weight tensors streamed through bounded memory.

/** Tensors larger than a chunk, whose rows straddle chunk boundaries (and one longer row). */
const LARGE_CASES: Case[] = [
  {
    name: "Deconv G2 61x47",
    type: "Deconvolution",
    shape: [6, 5, 61, 47],
    groups: 2,
    channels: 10,
  },
  { name: "IP 3x50021", type: "InnerProduct", shape: [3, 50021], groups: 1, channels: 3 },
  {
    name: "IP one long row",
    type: "InnerProduct",
    shape: [1, 2 * CHUNK_ELEMENTS + 7],
    groups: 1,
    channels: 1,
  },
];

Deno.test("tensors over a chunk, folded or not: W', w_q, and w_fake in any ranges", () => {
  const random = unitGenerator(71);
  for (const testCase of LARGE_CASES) {
    const count = elementCount(testCase.shape);
    assert.ok(count > CHUNK_ELEMENTS, `${testCase.name} is larger than a chunk`);
    const weights = randomFloats(random, count, 0.8);
    const channels = referenceChannels(testCase.type, testCase.shape, testCase.groups);
    const alpha = Float64Array.from({ length: testCase.channels }, () => 0.5 + random());
    const scaleW = scalesFor(random, testCase.channels, 0.008, true);
    const folded = new Float32Array(count);
    for (let index = 0; index < count; index++) {
      folded[index] = weights[index] * alpha[channels[index]];
    }
    const bytes = new Uint8Array(count * 4 + 3);
    bytes.set(new Uint8Array(weights.buffer), 3); // an unaligned view, as in a caffemodel
    const layout = layoutOf(testCase);
    for (
      const [label, tensor, plain] of [
        ["plain", { bytes: bytes.subarray(3), layout, alpha: null }, weights],
        ["folded", { bytes: bytes.subarray(3), layout, alpha }, folded],
      ] as const
    ) {
      const ranges = randomRanges(random, count);
      const name = `${testCase.name} ${label}`;
      const folded = writtenInRanges(
        (start, length, target) => kernels.writeWeights(tensor, start, length, target),
        ranges,
        count,
      );
      assertBitsEqual(folded, plain, `${name} weights`);
      const expected = referenceQuantizeWeights(plain, channels, scaleW);
      const int8 = new Int8Array(count);
      assert.equal(
        kernels.quantizeToInt8(tensor, scaleW, int8).nonFinite,
        -1,
        `${name}: all finite`,
      );
      assertArrayEqual(int8, expected.weightsInt8, `${name} w_q`);
      const fake = writtenInRanges(
        (start, length, target) =>
          kernels.writeFakeWeights(int8, layout, scaleW, start, length, target),
        ranges,
        count,
      );
      assertBitsEqual(fake, expected.weightsFake, `${name} w_fake`);
    }
  }
});

Deno.test("quantizeToInt8 and channelMaxAbs see the folded tensor past the first chunk", () => {
  const testCase = LARGE_CASES[1];
  const count = elementCount(testCase.shape);
  const channels = referenceChannels(testCase.type, testCase.shape, testCase.groups);
  const weights = randomFloats(unitGenerator(72), count, 2);
  const layout = layoutOf(testCase);
  const bytes = new Uint8Array(weights.buffer);
  // Channel 2 (elements past the first chunk) overflows float32 once folded by 1e39.
  const alpha = Float64Array.of(1, 0.5, 1e39);
  let firstOverflow = -1;
  for (let index = 0; index < count && firstOverflow < 0; index++) {
    if (!Number.isFinite(f32(weights[index] * alpha[channels[index]]))) firstOverflow = index;
  }
  assert.ok(firstOverflow > CHUNK_ELEMENTS);
  const scaleW = Float32Array.of(0.01);
  const int8 = new Int8Array(count);
  assert.equal(kernels.quantizeToInt8({ bytes, layout, alpha: null }, scaleW, int8).nonFinite, -1);
  assert.equal(
    kernels.quantizeToInt8({ bytes, layout, alpha }, scaleW, int8).nonFinite,
    firstOverflow,
  );
  weights[count - 2] = NaN;
  assert.equal(
    kernels.quantizeToInt8({ bytes, layout, alpha: null }, scaleW, int8).nonFinite,
    count - 2,
  );
  weights[count - 2] = 0;
  const foldable = Float64Array.of(2, 0.5, -3);
  const expectedMax = [0, 0, 0];
  for (let index = 0; index < count; index++) {
    const value = Math.abs(f32(weights[index] * foldable[channels[index]]));
    expectedMax[channels[index]] = Math.max(expectedMax[channels[index]], value);
  }
  const actualMax = kernels.channelMaxAbs({ bytes, layout, alpha: foldable });
  assertArrayEqual(actualMax, expectedMax.map(f32), "channel max of |W'|");
  const quantized = kernels.quantizeToInt8({ bytes, layout, alpha: foldable }, scaleW, int8);
  assertArrayEqual(quantized.channelMax, expectedMax.map(f32), "quantizeToInt8's max of |W'|");
  const scales = kernels.weightScalesFromMax(actualMax, null, 0.02);
  assertArrayEqual(scales, expectedMax.map((max) => f32(max / 127)), "weight scales");
});

Deno.test("the weight kernels check their range and target", () => {
  const layout = channelLayout("InnerProduct", [2, 3], 1);
  const tensor = { bytes: new Uint8Array(24), layout, alpha: null };
  const scaleW = Float32Array.of(1);
  const int8 = new Int8Array(6);
  const short = { ...tensor, bytes: new Uint8Array(20) };
  const wrong: [string, () => unknown][] = [
    ["past the end", () => kernels.writeWeights(tensor, 4, 3, new Uint8Array(12))],
    ["short target", () => kernels.writeWeights(tensor, 0, 2, new Uint8Array(4))],
    ["short bytes", () => kernels.writeWeights(short, 0, 1, new Uint8Array(4))],
    ["short int8 target", () => kernels.quantizeToInt8(tensor, scaleW, new Int8Array(5))],
    ["scaleW length", () => kernels.quantizeToInt8(tensor, Float32Array.of(1, 1, 1), int8)],
    [
      "fake past the end",
      () => kernels.writeFakeWeights(int8, layout, scaleW, 5, 2, new Uint8Array(8)),
    ],
    [
      "fake short int8",
      () => kernels.writeFakeWeights(int8.subarray(1), layout, scaleW, 0, 1, new Uint8Array(4)),
    ],
  ];
  for (const [label, run] of wrong) assert.throws(run, RangeError, label);
  kernels.writeWeights(tensor, 6, 0, new Uint8Array(0));
  kernels.writeFakeWeights(int8, layout, scaleW, 6, 0, new Uint8Array(0));
});

// ---------------------------------------------------------------------------------------------
// Dequant scales, bias quantization, packing.

Deno.test("dequantScales and packDequantScales match the reference", () => {
  const random = unitGenerator(31);
  const scaleD = f32(0.0371);
  const scaleW = randomPositive(random, 23, 1e-4, 0.05);
  const deq = kernels.dequantScales(scaleD, scaleW);
  const expected = new Float32Array(scaleW.map((scale) => scale * scaleD));
  assertBitsEqual(deq, expected, "deq");
  const packed = kernels.packDequantScales(deq);
  assertArrayEqual(packed, Array.from(bits(expected), (word) => BigInt(word)), "packed");
});

function referenceQuantizeBias(bias: Float32Array, deqScale: Float32Array) {
  const biasInt32 = new Int32Array(bias.length);
  const biasFake = new Float32Array(bias.length);
  for (let channel = 0; channel < bias.length; channel++) {
    const deq = scaleOf(deqScale, channel);
    biasInt32[channel] = rint(bias[channel] / deq);
    biasFake[channel] = biasInt32[channel] * deq;
  }
  return { biasInt32, biasFake };
}

Deno.test("quantizeBias matches the float64 reference (per channel and per tensor)", () => {
  const random = unitGenerator(41);
  for (const deqCount of [1, 29]) {
    const bias = randomFloats(random, 29, 5);
    const deqScale = randomPositive(random, deqCount, 1e-4, 1e-2);
    const actual = kernels.quantizeBias(bias, deqScale);
    const expected = referenceQuantizeBias(bias, deqScale);
    assertArrayEqual(actual.biasInt32, expected.biasInt32, `int32 (${deqCount} deq)`);
    assertBitsEqual(actual.biasFake, expected.biasFake, `fake (${deqCount} deq)`);
    assert.equal(actual.overflowChannel, -1);
  }
});

Deno.test("quantizeBias rounds ties to even", () => {
  const { biasInt32, biasFake } = kernels.quantizeBias(
    new Float32Array([1.25, 1.75, -1.25, -0.25, 0.75]),
    new Float32Array([0.5]),
  );
  assertArrayEqual(biasInt32, [2, 4, -2, 0, 2], "ties");
  assertArrayEqual(biasFake, [1, 2, -1, 0, 1], "fake of ties");
  assert.ok(Object.is(biasFake[3], 0), "b_q 0 gives +0");
});

Deno.test("quantizeBias reports the first int32 overflow with its value", () => {
  // deq 1: 2^31 does not fit, -2^31 does.
  const edge = kernels.quantizeBias(
    new Float32Array([-2147483648, 5, 2147483648, 2147483648]),
    new Float32Array([1]),
  );
  assertArrayEqual(edge.biasInt32.slice(0, 2), [-2147483648, 5], "fits");
  assert.equal(edge.overflowChannel, 2);
  assert.equal(edge.overflowValue, 2147483648);

  const deqScale = new Float32Array([0.5, 1e-3, 1e-3, 1e-3]);
  const bias = new Float32Array([1, 2, -3e6, 4e6]);
  const result = kernels.quantizeBias(bias, deqScale);
  assert.equal(result.overflowChannel, 2);
  assert.equal(result.overflowValue, rint(bias[2] / deqScale[2]));
  assert.ok(result.overflowValue < -2147483648);
  assert.equal(result.biasInt32[0], 2);
  assert.equal(result.biasInt32[1], rint(bias[1] / deqScale[1]));
});

// ---------------------------------------------------------------------------------------------
// SPEC §9 weight scales.

function referenceWeightScales(
  weights: Float32Array,
  channels: Int32Array,
  channelCount: number,
  bias: Float32Array | null,
  scaleD: number,
): Float32Array {
  const maxAbs = new Array<number>(channelCount).fill(0);
  for (let index = 0; index < weights.length; index++) {
    maxAbs[channels[index]] = Math.max(maxAbs[channels[index]], Math.abs(weights[index]));
  }
  const scales = new Float32Array(channelCount);
  for (let channel = 0; channel < channelCount; channel++) {
    const fromWeights = f32(maxAbs[channel] / 127);
    const fromBias = bias === null ? 0 : f32(Math.abs(bias[channel]) / (scaleD * 2 ** 30));
    const scale = Math.max(fromWeights, fromBias);
    scales[channel] = scale === 0 ? 1 : scale;
  }
  return scales;
}

Deno.test("channelMaxAbs and weightScalesFromMax: reference, zero and dead channels", () => {
  const random = unitGenerator(51);
  const scaleD = f32(0.02);
  for (const testCase of CASES) {
    for (const withBias of [false, true]) {
      const weights = randomFloats(random, elementCount(testCase.shape), 0.6);
      const channels = referenceChannels(testCase.type, testCase.shape, testCase.groups);
      const count = testCase.channels;
      const bias = withBias ? randomFloats(random, count, 0.5) : null;
      // Channel 0 all zero (with zero bias), channel 1 tiny weights with a large bias (dead BN).
      for (let index = 0; index < weights.length; index++) {
        if (channels[index] === 0) weights[index] = 0;
        if (channels[index] === 1 && bias !== null) weights[index] *= 1e-12;
      }
      if (bias !== null) {
        bias[0] = 0;
        bias[1] = 3e6;
      }
      const channelMax = kernels.channelMaxAbs(tensorOf(weights, layoutOf(testCase)));
      const actual = kernels.weightScalesFromMax(channelMax, bias, scaleD);
      const expected = referenceWeightScales(weights, channels, count, bias, scaleD);
      assertBitsEqual(actual, expected, `${testCase.name}${withBias ? " with bias" : ""}`);
      assert.equal(actual[0], 1, "all-zero channel");
      if (bias !== null) assert.equal(actual[1], f32(3e6 / (scaleD * 2 ** 30)), "bias floor");
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Activation fake-quant.

function referenceFakeQuant(values: Float32Array, scaleD: number, offsetD: number): Float32Array {
  const quantScale = f32(1 / scaleD);
  const result = new Float32Array(values.length);
  for (let index = 0; index < values.length; index++) {
    const q = clamp(rint(f32(values[index] * quantScale)) + offsetD, -128, 127);
    result[index] = (q - offsetD) * scaleD;
  }
  return result;
}

Deno.test("fakeQuantActivations matches the reference, in place and into a new array", () => {
  const random = unitGenerator(61);
  const factors = [[f32(0.0471), 0], [f32(0.013), -14], [f32(0.2), 127], [f32(0.02), -128]];
  for (let extra = 0; extra < 40; extra++) {
    factors.push([f32(0.001 + random() * 0.05), Math.floor(random() * 256) - 128]);
  }
  for (const [scaleD, offsetD] of factors) {
    const values = randomFloats(random, 67, 3);
    const expected = referenceFakeQuant(values, scaleD, offsetD);
    const copy = kernels.fakeQuantActivations(values, scaleD, offsetD);
    assertBitsEqual(copy, expected, `new array scale ${scaleD} offset ${offsetD}`);
    const out = new Float32Array(values.length);
    assert.equal(kernels.fakeQuantActivations(values, scaleD, offsetD, out), out);
    assertBitsEqual(out, expected, "into out");
    assert.equal(kernels.fakeQuantActivations(values, scaleD, offsetD, values), values);
    assertBitsEqual(values, expected, "in place");
  }
});

Deno.test("fakeQuantActivations rounds ties to even and keeps NaN", () => {
  // scale_d 0.5: S = 2, so x*S is exactly 0.5, 1.5, 2.5, -0.5, -2.5.
  const values = new Float32Array([0.25, 0.75, 1.25, -0.25, -1.25, NaN]);
  const fake = kernels.fakeQuantActivations(values, 0.5, 0);
  assertBitsEqual(fake.subarray(0, 5), new Float32Array([0, 1, 1, 0, -1]), "ties");
  assert.ok(Number.isNaN(fake[5]));
});
