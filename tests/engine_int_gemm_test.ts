// The deploy model's integer Convolution, Deconvolution and InnerProduct kernels (int16-pair dot
// products and exact float depthwise sums, assembly/engine/intconv.ts) against plain integer
// loops written here, on sizes that reach every path: several K blocks with an odd depth, rows
// not a multiple of 4, columns not a multiple of 8, groups, stride, padding, dilation, 1x1
// kernels read directly, depthwise kernels of every size, extreme values (weights and q at the
// int8 ends, offset_d ±128, so differences reach ±255), biases past 2^24, the Quant layer's
// quantization done in the kernel, and a DeQuant scale applied in the same pass.

import assert from "node:assert/strict";
import { engineKernels, type PostOp, type Window2d } from "../src/wasm/engine.ts";
import { ENGINE_BUILDS, withEngineBuild } from "./_engine_builds.ts";

const f32 = Math.fround;

/** A test run once with each engine build (the relaxed build's float kernels too must be exact). */
function integerTest(name: string, body: () => Promise<void>): void {
  for (const build of ENGINE_BUILDS) {
    Deno.test(`${name} (${build} build)`, () => withEngineBuild(build, body));
  }
}

/** Integers in [low, high] from a 32-bit LCG (test data only). */
function integers(count: number, seed: number, low: number, high: number): number[] {
  let state = (seed * 2654435761) >>> 0;
  return Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return low + (state % (high - low + 1));
  });
}

interface Case {
  name: string;
  shape: [number, number, number, number];
  outputs: number;
  groups: number;
  window: Window2d;
  offsetD: number;
  extreme?: boolean;
  /** Bias range (default ±5000). */
  biasRange?: number;
  /** Float input quantized in the kernel with this scale (the Quant layer's). */
  quantScale?: number;
  /**
   * With quantScale: inputs whose x * scale fall on exact halves (ties go to even) and far beyond
   * both ends of the int8 range, instead of near q.
   */
  ties?: boolean;
  /** A DeQuant after the layer: "channel" scales, one "shared" scale. */
  dequant?: "channel" | "shared";
  /** Activations after the DeQuant: ReLU slopes, or "prelu" (one slope per channel). */
  activations?: (number | "prelu")[];
}

/** The relu kernel's max(v, 0) + slope * min(v, 0) in float32 (one of the two terms is 0). */
function activated(value: number, slope: number): number {
  return value > 0 ? value : f32(slope * value) + 0;
}

/** PReLU slopes for `channels` channels, both signs. */
function preluSlopes(channels: number): Float32Array {
  return Float32Array.from(integers(channels, 5, -100, 100), (v) => v / 64);
}

/** Rounding half to even, as f32x4.nearest does. */
function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const rest = value - floor;
  if (rest !== 0.5) return Math.round(value);
  return floor % 2 === 0 ? floor : floor + 1;
}

/** The Quant layer's q of float x: clamp(rint(f32(x * S)) + offset_d, -128, 127). */
function quantized(x: number, quantScale: number, offsetD: number): number {
  return Math.min(127, Math.max(-128, roundHalfEven(f32(x * quantScale)) + offsetD));
}

/** Dequant scales for `count` channels (or one) and the post operation applying them. */
function dequantOp(
  kind: "channel" | "shared",
  view: { outer: number; channels: number; inner: number },
): { scales: Float32Array; op: PostOp } {
  const count = kind === "channel" ? view.channels : 1;
  const scales = Float32Array.from(
    integers(count, 77, 1, 1000),
    (v, i) => (i % 2 === 0 ? 1 : -1) * v / 65536,
  );
  const opView = kind === "channel" ? view : { outer: 1, channels: 1, inner: 0 };
  return { scales, op: { kind: "affine", view: opView, scale: scales, bias: null } };
}

const window = (k: [number, number], pad: number, stride: number, dilation = 1): Window2d => ({
  kernel: k,
  pad: [pad, pad],
  stride: [stride, stride],
  dilation: [dilation, dilation],
});

const CASES: Case[] = [
  {
    name: "3x3 pad 1, depth 29*9 = 261 (two K blocks, odd), 13 outputs, 11x7 columns",
    shape: [1, 29, 11, 7],
    outputs: 13,
    groups: 1,
    window: window([3, 3], 1, 1),
    offsetD: -3,
  },
  {
    name: "1x1 read directly, depth 300 (two K blocks), 5 outputs, 2x5 columns (an edge of two)",
    shape: [1, 300, 2, 5],
    outputs: 5,
    groups: 1,
    window: window([1, 1], 0, 1),
    offsetD: 4,
  },
  {
    name: "1x1 read directly, depth 270 (two K blocks), 7 outputs, 1x11 columns (an edge of three)",
    shape: [1, 270, 1, 11],
    outputs: 7,
    groups: 1,
    window: window([1, 1], 0, 1),
    offsetD: -6,
  },
  {
    name: "3x3, depth 40*9 = 360 (two K blocks), 6 outputs, 3x3 columns (an edge of one)",
    shape: [1, 40, 5, 5],
    outputs: 6,
    groups: 1,
    window: window([3, 3], 0, 1),
    offsetD: 2,
  },
  {
    name: "1x1 read directly, 600 columns (two N blocks), batch 2",
    shape: [2, 20, 20, 30],
    outputs: 9,
    groups: 1,
    window: window([1, 1], 0, 1),
    offsetD: 5,
  },
  {
    name: "2 groups, stride 2, dilation 2, pad 2",
    shape: [1, 6, 13, 12],
    outputs: 10,
    groups: 2,
    window: window([3, 3], 2, 2, 2),
    offsetD: 0,
  },
  {
    name: "depthwise 3x3 on wide rows (direct kernel, SIMD groups and edges)",
    shape: [1, 4, 6, 37],
    outputs: 4,
    groups: 4,
    window: window([3, 3], 1, 1),
    offsetD: 7,
  },
  {
    name: "depthwise 3x3 row stride 3 on narrow planes (rows of 5 outputs), pad 2, batch 2",
    shape: [2, 5, 10, 3],
    outputs: 5,
    groups: 5,
    window: { kernel: [3, 3], pad: [2, 2], stride: [3, 1], dilation: [1, 1] },
    offsetD: 11,
  },
  {
    name: "depthwise 3x3 stride 2 on rows of 2 outputs, pad 0",
    shape: [1, 2, 5, 5],
    outputs: 2,
    groups: 2,
    window: window([3, 3], 0, 2),
    offsetD: -5,
  },
  {
    name: "depthwise 3x3 stride 2 on wide rows",
    shape: [1, 3, 7, 45],
    outputs: 3,
    groups: 3,
    window: window([3, 3], 1, 2),
    offsetD: -9,
  },
  {
    name: "extreme values at depth 57*9 = 513 (two K blocks)",
    shape: [1, 57, 5, 6],
    outputs: 6,
    groups: 1,
    window: window([3, 3], 1, 1),
    offsetD: -128,
    extreme: true,
  },
  {
    name: "extreme values: q and weights at the int8 ends, offset -128 (differences to 255)",
    shape: [1, 64, 6, 9],
    outputs: 8,
    groups: 1,
    window: window([3, 3], 1, 1),
    offsetD: -128,
    extreme: true,
  },
  {
    name:
      "extreme values, offset 127, depth 1029 (five K blocks, odd), 7 outputs, per-channel dequant",
    shape: [1, 1029, 3, 5],
    outputs: 7,
    groups: 1,
    window: window([1, 1], 0, 1),
    offsetD: 127,
    extreme: true,
    biasRange: 1 << 30,
    dequant: "channel",
  },
  {
    name: "1x1 stride 2 pad 1, 4k outputs, depth 48 (packed 16 at a time), shared dequant",
    shape: [2, 48, 9, 10],
    outputs: 12,
    groups: 1,
    window: window([1, 1], 1, 2),
    offsetD: 1,
    dequant: "shared",
    activations: [0.125],
  },
  {
    name: "float input quantized in the kernel (Quant layer's scale), 3x3 pad 1",
    shape: [1, 5, 7, 9],
    outputs: 6,
    groups: 1,
    window: window([3, 3], 1, 1),
    offsetD: -20,
    quantScale: 37.5,
    dequant: "channel",
    activations: ["prelu", 0.5],
  },
  {
    name: "5x5 stride 3 pad 2, rows of 7 outputs (im2col four values at a time, lane by lane)",
    shape: [2, 3, 20, 19],
    outputs: 8,
    groups: 1,
    window: window([5, 5], 2, 3),
    offsetD: 11,
  },
  {
    name: "3x3 stride 2 over 64 channels of 130x130: im2col in two bands",
    shape: [1, 64, 130, 130],
    outputs: 4,
    groups: 1,
    window: window([3, 3], 1, 2),
    offsetD: -6,
  },
  {
    name: "float input quantized in the kernel: ties to even and values past the clamp, 1x1",
    shape: [1, 9, 5, 7],
    outputs: 5,
    groups: 1,
    window: window([1, 1], 0, 1),
    offsetD: 7,
    quantScale: 2,
    ties: true,
  },
  {
    name: "float input quantized in the kernel: ties to even and values past the clamp, 3x3/2",
    shape: [1, 4, 9, 11],
    outputs: 6,
    groups: 1,
    window: window([3, 3], 1, 2),
    offsetD: -9,
    quantScale: 2,
    ties: true,
  },
  {
    name: "depthwise 3x3, biases past 2^24 and below, per-channel dequant, float input",
    shape: [1, 6, 9, 21],
    outputs: 6,
    groups: 6,
    window: window([3, 3], 1, 1),
    offsetD: 128 - 256,
    extreme: true,
    biasRange: 1 << 24,
    dequant: "channel",
    quantScale: 100,
    activations: ["prelu"],
  },
  {
    name: "depthwise 3x3 dilation 2 pad 2, extreme values, ReLU after a shared dequant",
    shape: [2, 5, 9, 23],
    outputs: 5,
    groups: 5,
    window: window([3, 3], 2, 1, 2),
    offsetD: 127,
    extreme: true,
    dequant: "shared",
    activations: [0],
  },
  {
    name: "depthwise 5x5 dilation 2 stride 1, extreme values",
    shape: [2, 3, 11, 14],
    outputs: 3,
    groups: 3,
    window: window([5, 5], 3, 1, 2),
    offsetD: -128,
    extreme: true,
  },
];

function expectedConvolution(
  q: number[],
  w: number[],
  bias: number[],
  c: Case,
  outSize: [number, number],
): number[] {
  const [batch, channels, height, width] = c.shape;
  const [oh, ow] = outSize;
  const cg = channels / c.groups;
  const og = c.outputs / c.groups;
  const [kh, kw] = c.window.kernel;
  const y: number[] = [];
  for (let n = 0; n < batch; n++) {
    for (let o = 0; o < c.outputs; o++) {
      const g = Math.floor(o / og);
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) {
          let sum = bias[o];
          for (let ch = 0; ch < cg; ch++) {
            for (let a = 0; a < kh; a++) {
              for (let b = 0; b < kw; b++) {
                const ih = i * c.window.stride[0] - c.window.pad[0] + a * c.window.dilation[0];
                const iw = j * c.window.stride[1] - c.window.pad[1] + b * c.window.dilation[1];
                if (ih < 0 || ih >= height || iw < 0 || iw >= width) continue;
                const x = q[((n * channels + g * cg + ch) * height + ih) * width + iw];
                sum += w[((o * cg + ch) * kh + a) * kw + b] * (x - c.offsetD);
              }
            }
          }
          y.push(sum);
        }
      }
    }
  }
  return y;
}

for (const [index, c] of CASES.entries()) {
  integerTest(`integer Convolution: ${c.name}`, async () => {
    const kernels = await engineKernels();
    const [batch, channels, height, width] = c.shape;
    const [kh, kw] = c.window.kernel;
    const outSize = [0, 1].map((axis) =>
      Math.floor(
        ([height, width][axis] + 2 * c.window.pad[axis] -
          (c.window.dilation[axis] * (c.window.kernel[axis] - 1) + 1)) / c.window.stride[axis],
      ) + 1
    ) as [number, number];
    const count = batch * channels * height * width;
    const weightCount = c.outputs * (channels / c.groups) * kh * kw;
    // With extreme values, q is as far from offset_d as int8 allows (differences ±255).
    const far = c.offsetD >= 0 ? -128 : 127;
    const q = c.extreme
      ? integers(count, index, 0, 3).map((bits) => bits === 0 ? c.offsetD : far)
      : integers(count, index, -128, 127);
    const w = c.extreme
      ? integers(weightCount, 50 + index, 0, 1).map((bit) => bit ? 127 : -128)
      : integers(weightCount, 50 + index, -128, 127);
    const range = c.biasRange ?? 5000;
    const bias = integers(c.outputs, 90 + index, -range, range);
    // Float input whose quantization gives q: (q - offset_d) / S, and values beyond the clamp.
    const x = c.quantScale === undefined
      ? Float32Array.from(q)
      : c.ties
      ? Float32Array.from(q, (v, i) => [v + 0.5, v - 0.5, 300, -300][i % 4] / c.quantScale!)
      : Float32Array.from(q, (v, i) => (v - c.offsetD + (i % 3 - 1) * 0.3) / c.quantScale!);
    const qOfX = c.quantScale === undefined
      ? q
      : Array.from(x, (v) => quantized(v, c.quantScale!, c.offsetD));
    const layout = { outer: batch, channels: c.outputs, inner: outSize[0] * outSize[1] };
    const dequant = c.dequant === undefined ? undefined : dequantOp(c.dequant, layout);
    const slopes = preluSlopes(c.outputs);
    const activations: PostOp[] = (c.activations ?? []).map((slope) =>
      slope === "prelu" ? { kind: "prelu", view: layout, slopes } : { kind: "relu", slope }
    );
    const y = kernels.convolution({
      x,
      offsetD: c.offsetD,
      quantScale: c.quantScale,
      shape: c.shape,
      weights: Int8Array.from(w),
      bias: Int32Array.from(bias),
      outputs: c.outputs,
      groups: c.groups,
      window: c.window,
      outSize,
      post: dequant === undefined ? [] : [dequant.op, ...activations],
    });
    const sums = expectedConvolution(qOfX, w, bias, c, outSize);
    const scales = dequant?.scales;
    const expected = scales === undefined ? sums : sums.map((sum, i) => {
      const channel = Math.floor(i / layout.inner) % c.outputs;
      const scale = scales.length === 1 ? scales[0] : scales[channel];
      let value = f32(f32(sum) * scale) + 0;
      for (const slope of c.activations ?? []) {
        value = activated(value, slope === "prelu" ? slopes[channel] : slope);
      }
      return value;
    });
    assert.deepEqual(Array.from(y), expected);
  });
}

integerTest(
  "integer Convolution: depthwise 23x23 whose sums pass 2^24 (not exact in float32)",
  async () => {
    const kernels = await engineKernels();
    // Every difference is 255 (q 127, offset -128); the weights are -128 but one 127 per kernel,
    // so each full window sums to -128*255*528 + 127*255 = -17201535: odd and beyond 2^24. With
    // channel 0's bias the result is 5 (any rounding of the sum shows); channel 1's bias is
    // beyond float32's integers.
    const [channels, size, offsetD] = [2, 23, -128];
    const w = new Int8Array(channels * size * size).fill(-128);
    w[5] = 127;
    w[size * size + 100] = 127;
    const y = kernels.convolution({
      x: new Float32Array(channels * size * size).fill(127),
      offsetD,
      shape: [1, channels, size, size],
      weights: w,
      bias: Int32Array.from([17201540, -(1 << 30) - 1]),
      outputs: channels,
      groups: channels,
      window: window([size, size], 0, 1),
      outSize: [1, 1],
    });
    assert.deepEqual(Array.from(y), [5, f32(-17201535 - (1 << 30) - 1)]);
  },
);

integerTest(
  "integer Convolution: 3x3 depthwise biases not float32 (2^24 + 1, 2^31 - 1) beside one that is",
  async () => {
    const kernels = await engineKernels();
    // 3x3 depthwise, pad 1, over rows of 13 values, only the centre tap set, offset -64:
    // differences 1, 1, 191 and centre weights 1, 1, -1 give sums 1, 1, -191 at every output.
    // f32(1 + (2^24 + 1)) is 2^24 + 2 but f32(1 + f32(2^24 + 1)) is 2^24;
    // f32(-191 + 2^31 - 1) is 2147483392 but f32(-191 + f32(2^31 - 1)) is 2147483520.
    const width = 13;
    const x = [...new Array(2 * width).fill(-63), ...new Array(width).fill(127)];
    const weights = new Int8Array(27);
    [weights[4], weights[13], weights[22]] = [1, 1, -1];
    const y = kernels.convolution({
      x: Float32Array.from(x),
      offsetD: -64,
      shape: [1, 3, 1, width],
      weights,
      bias: Int32Array.from([(1 << 24) + 1, -7, 2147483647]),
      outputs: 3,
      groups: 3,
      window: window([3, 3], 1, 1),
      outSize: [1, width],
    });
    const expected = [16777218, -6, 2147483392].flatMap((value) => new Array(width).fill(value));
    assert.deepEqual(Array.from(y), expected);
  },
);

integerTest(
  "integer InnerProduct, transposed weights [K, N]: 6 rows, depth 300, 21 outputs",
  async () => {
    const kernels = await engineKernels();
    const [rows, depth, outputs, offsetD] = [6, 300, 21, 7];
    const q = integers(rows * depth, 3, -128, 127);
    const w = integers(depth * outputs, 4, -128, 127);
    const y = kernels.innerProduct({
      x: Float32Array.from(q),
      offsetD,
      rows,
      depth,
      weights: Int8Array.from(w),
      transposed: true,
      bias: null,
      outputs,
    });
    const expected: number[] = [];
    for (let r = 0; r < rows; r++) {
      for (let o = 0; o < outputs; o++) {
        let sum = 0;
        for (let p = 0; p < depth; p++) sum += (q[r * depth + p] - offsetD) * w[p * outputs + o];
        expected.push(sum);
      }
    }
    assert.deepEqual(Array.from(y), expected);
  },
);

integerTest(
  "integer InnerProduct: depth 37 (padded to 40), 7 outputs, 3 rows, quantized in the kernel, dequant then ReLU",
  async () => {
    const kernels = await engineKernels();
    const [rows, depth, outputs, offsetD, quantScale] = [3, 37, 7, 9, 12.25];
    const x = Float32Array.from(integers(rows * depth, 8, -2000, 2000), (v) => v / 1000);
    const q = Array.from(x, (v) => quantized(v, quantScale, offsetD));
    const w = integers(outputs * depth, 9, -128, 127);
    const bias = integers(outputs, 10, -100000, 100000);
    const { scales, op } = dequantOp("channel", { outer: rows, channels: outputs, inner: 1 });
    const y = kernels.innerProduct({
      x,
      offsetD,
      quantScale,
      rows,
      depth,
      weights: Int8Array.from(w),
      transposed: false,
      bias: Int32Array.from(bias),
      outputs,
      post: [op, { kind: "relu", slope: 0 }],
    });
    const expected: number[] = [];
    for (let r = 0; r < rows; r++) {
      for (let o = 0; o < outputs; o++) {
        let sum = bias[o];
        for (let p = 0; p < depth; p++) sum += (q[r * depth + p] - offsetD) * w[o * depth + p];
        const value = f32(f32(sum) * scales[o]) + 0;
        expected.push(value > 0 ? value : 0);
      }
    }
    assert.deepEqual(Array.from(y), expected);
  },
);

integerTest("integer InnerProduct: extreme values at depth 2^11 + 5, offset -128", async () => {
  const kernels = await engineKernels();
  const [rows, depth, outputs, offsetD] = [1, 2053, 5, -128];
  const q = integers(rows * depth, 11, 0, 1).map((bit) => bit ? 127 : -128);
  const w = integers(outputs * depth, 12, 0, 1).map((bit) => bit ? 127 : -128);
  const y = kernels.innerProduct({
    x: Float32Array.from(q),
    offsetD,
    rows,
    depth,
    weights: Int8Array.from(w),
    transposed: false,
    bias: null,
    outputs,
  });
  const expected: number[] = [];
  for (let o = 0; o < outputs; o++) {
    let sum = 0;
    for (let p = 0; p < depth; p++) sum += (q[p] - offsetD) * w[o * depth + p];
    expected.push(f32(sum));
  }
  assert.deepEqual(Array.from(y), expected);
});

integerTest(
  "integer Deconvolution: 5 inputs, 3x3 stride 2 pad 1, 6 outputs (depth 54)",
  async () => {
    const kernels = await engineKernels();
    const [channels, height, width, outputs, offsetD] = [5, 9, 11, 6, -2];
    const win = window([3, 3], 1, 2);
    const outSize: [number, number] = [2 * (height - 1) + 3 - 2, 2 * (width - 1) + 3 - 2];
    const q = integers(channels * height * width, 5, -128, 127);
    const w = integers(channels * outputs * 9, 6, -128, 127);
    const y = kernels.deconvolution({
      x: Float32Array.from(q),
      offsetD,
      shape: [1, channels, height, width],
      weights: Int8Array.from(w),
      bias: null,
      outputs,
      groups: 1,
      window: win,
      outSize,
    });
    const expected = new Array(outputs * outSize[0] * outSize[1]).fill(0);
    for (let c = 0; c < channels; c++) {
      for (let i = 0; i < height; i++) {
        for (let j = 0; j < width; j++) {
          for (let o = 0; o < outputs; o++) {
            for (let a = 0; a < 3; a++) {
              for (let b = 0; b < 3; b++) {
                const oh = i * 2 - 1 + a;
                const ow = j * 2 - 1 + b;
                if (oh < 0 || oh >= outSize[0] || ow < 0 || ow >= outSize[1]) continue;
                expected[(o * outSize[0] + oh) * outSize[1] + ow] +=
                  (q[(c * height + i) * width + j] - offsetD) *
                  w[((c * outputs + o) * 3 + a) * 3 + b];
              }
            }
          }
        }
      }
    }
    assert.deepEqual(Array.from(y), expected);
  },
);
