// Each simulated layer against an independent float64 computation written here (naive loops),
// on small seeded random cases: odd sizes, padding, stride, dilation, groups, ceil-mode pooling.

import assert from "node:assert/strict";
import { readPrototxt } from "../src/caffe/prototxt.ts";
import type { Blob, Net } from "../src/caffe/net.ts";
import { ConvertError } from "../src/errors.ts";
import { runNet, type Tensor } from "../src/engine/run.ts";
import { randomValues } from "./_builders.ts";

// ---------------------------------------------------------------------------------------------
// Test data and helpers

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function tensor(shape: number[], seed: number): Tensor {
  return { shape, data: randomValues(size(shape), seed) };
}

/** A float parameter blob. */
interface FloatBlob extends Blob {
  data: Float32Array;
}

function blob(shape: number[], seed: number, scale = 1): FloatBlob {
  return { shape, data: randomValues(size(shape), seed).map((v) => v * scale) };
}

/** A net of one layer `L` reading inputs x0, x1, ... (text holds type, tops and parameters). */
function oneLayerNet(layerText: string, inputs: Tensor[], blobs: Blob[]): Net {
  const declarations = inputs.map((input, i) =>
    `input: "x${i}" input_shape { ${input.shape.map((d) => `dim: ${d}`).join(" ")} }`
  ).join("\n");
  const bottoms = inputs.map((_, i) => `bottom: "x${i}"`).join(" ");
  const net = readPrototxt(`${declarations}\nlayer { name: "L" ${bottoms} ${layerText} }`);
  net.layers[0].blobs = blobs;
  return net;
}

/** Runs one layer; returns its tops. */
async function runLayer(
  layerText: string,
  inputs: Tensor[],
  blobs: Blob[] = [],
): Promise<Tensor[]> {
  const net = oneLayerNet(layerText, inputs, blobs);
  const result = await runNet(net, {
    inputs: new Map(inputs.map((input, i) => [`x${i}`, input])),
    keepAll: true,
  });
  assert.deepEqual(result.skipped, []);
  return net.layers[0].tops.map((name) => result.blobs.get(name)!);
}

/** Asserts shape and values: max |actual - expected| <= tol * max(1, max |expected|). */
function assertClose(
  actual: Tensor,
  expected: { shape: number[]; data: ArrayLike<number> },
  tol = 1e-5,
  label = "",
) {
  assert.deepEqual(actual.shape, expected.shape);
  assert.equal(actual.data.length, expected.data.length);
  let largest = 1;
  for (let i = 0; i < expected.data.length; i++) {
    largest = Math.max(largest, Math.abs(expected.data[i]));
  }
  for (let i = 0; i < expected.data.length; i++) {
    const error = Math.abs(actual.data[i] - expected.data[i]);
    if (!(error <= tol * largest)) {
      assert.fail(
        `${label} element ${i}: got ${actual.data[i]}, expected ${expected.data[i]} (tolerance ${
          tol * largest
        })`,
      );
    }
  }
}

/** C-order index of `indices` in `shape`. */
function offset(shape: number[], ...indices: number[]): number {
  return indices.reduce((total, index, axis) => total * shape[axis] + index, 0);
}

// ---------------------------------------------------------------------------------------------
// Convolution, Deconvolution, InnerProduct

interface ConvGeometry {
  group: number;
  pad: [number, number];
  stride: [number, number];
  dilation: [number, number];
}

function convNaive(
  x: Tensor,
  weights: FloatBlob,
  bias: FloatBlob | null,
  { group, pad, stride, dilation }: ConvGeometry,
): { shape: number[]; data: Float64Array } {
  const [n, c, h, w] = x.shape;
  const [cout, cinG, kh, kw] = weights.shape;
  const oh = Math.floor((h + 2 * pad[0] - (dilation[0] * (kh - 1) + 1)) / stride[0]) + 1;
  const ow = Math.floor((w + 2 * pad[1] - (dilation[1] * (kw - 1) + 1)) / stride[1]) + 1;
  const shape = [n, cout, oh, ow];
  const out = new Float64Array(size(shape));
  const coutG = cout / group;
  assert.equal(c, cinG * group);
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < cout; o++) {
      const g = Math.floor(o / coutG);
      for (let y = 0; y < oh; y++) {
        for (let xx = 0; xx < ow; xx++) {
          let sum = bias ? bias.data[o] : 0;
          for (let ci = 0; ci < cinG; ci++) {
            for (let i = 0; i < kh; i++) {
              for (let j = 0; j < kw; j++) {
                const iy = y * stride[0] - pad[0] + i * dilation[0];
                const ix = xx * stride[1] - pad[1] + j * dilation[1];
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                sum += x.data[offset(x.shape, b, g * cinG + ci, iy, ix)] *
                  (weights.data[offset(weights.shape, o, ci, i, j)]);
              }
            }
          }
          out[offset(shape, b, o, y, xx)] = sum;
        }
      }
    }
  }
  return { shape, data: out };
}

function deconvNaive(
  x: Tensor,
  weights: FloatBlob,
  bias: FloatBlob | null,
  { group, pad, stride, dilation }: ConvGeometry,
): { shape: number[]; data: Float64Array } {
  const [n, c, h, w] = x.shape;
  const [cin, coutG, kh, kw] = weights.shape;
  assert.equal(c, cin);
  const cout = coutG * group;
  const cinG = cin / group;
  const oh = stride[0] * (h - 1) + dilation[0] * (kh - 1) + 1 - 2 * pad[0];
  const ow = stride[1] * (w - 1) + dilation[1] * (kw - 1) + 1 - 2 * pad[1];
  const shape = [n, cout, oh, ow];
  const out = new Float64Array(size(shape));
  for (let b = 0; b < n; b++) {
    for (let ci = 0; ci < cin; ci++) {
      const g = Math.floor(ci / cinG);
      for (let iy = 0; iy < h; iy++) {
        for (let ix = 0; ix < w; ix++) {
          const value = x.data[offset(x.shape, b, ci, iy, ix)];
          for (let oc = 0; oc < coutG; oc++) {
            for (let i = 0; i < kh; i++) {
              for (let j = 0; j < kw; j++) {
                const oy = iy * stride[0] - pad[0] + i * dilation[0];
                const ox = ix * stride[1] - pad[1] + j * dilation[1];
                if (oy < 0 || oy >= oh || ox < 0 || ox >= ow) continue;
                out[offset(shape, b, g * coutG + oc, oy, ox)] += value *
                  (weights.data[offset(weights.shape, ci, oc, i, j)]);
              }
            }
          }
        }
      }
    }
  }
  if (bias) {
    for (let i = 0; i < out.length; i++) out[i] += bias.data[Math.floor(i / (oh * ow)) % cout];
  }
  return { shape, data: out };
}

/**
 * A Convolution or Deconvolution case: input and weight shapes, the layer's parameters, and the
 * same geometry for the naive loops.
 */
interface ConvCase {
  name: string;
  input: number[];
  weights: number[];
  params: string;
  geometry: ConvGeometry;
  bias: boolean;
}

const CONV_CASES: ConvCase[] = [
  {
    name: "3x3 pad 1, batch 2, bias",
    input: [2, 3, 7, 6],
    weights: [4, 3, 3, 3],
    params: "num_output: 4 kernel_size: 3 pad: 1",
    geometry: { group: 1, pad: [1, 1], stride: [1, 1], dilation: [1, 1] },
    bias: true,
  },
  {
    name: "stride 2, pad 2, dilation 2, odd sizes",
    input: [1, 3, 9, 8],
    weights: [5, 3, 3, 3],
    params: "num_output: 5 kernel_size: 3 pad: 2 stride: 2 dilation: 2",
    geometry: { group: 1, pad: [2, 2], stride: [2, 2], dilation: [2, 2] },
    bias: true,
  },
  {
    name: "2 groups, kernel_h/w, pad_h/w, stride_h/w, no bias",
    input: [2, 4, 8, 7],
    weights: [6, 2, 3, 2],
    params: "num_output: 6 group: 2 kernel_h: 3 kernel_w: 2 pad_h: 1 pad_w: 0 stride_h: 2 " +
      "stride_w: 1 bias_term: false",
    geometry: { group: 2, pad: [1, 0], stride: [2, 1], dilation: [1, 1] },
    bias: false,
  },
  {
    name: "depthwise 3x3",
    input: [1, 5, 6, 6],
    weights: [5, 1, 3, 3],
    params: "num_output: 5 group: 5 kernel_size: 3 pad: 1",
    geometry: { group: 5, pad: [1, 1], stride: [1, 1], dilation: [1, 1] },
    bias: true,
  },
  {
    name: "depthwise stride 2, pad 2, dilation 2, batch 2",
    input: [2, 3, 9, 8],
    weights: [3, 1, 3, 3],
    params: "num_output: 3 group: 3 kernel_size: 3 pad: 2 stride: 2 dilation: 2",
    geometry: { group: 3, pad: [2, 2], stride: [2, 2], dilation: [2, 2] },
    bias: true,
  },
  {
    name: "depthwise 3x3 on wide rows (sixteen and four outputs at a time, edges one by one)",
    input: [1, 4, 5, 37],
    weights: [4, 1, 3, 3],
    params: "num_output: 4 group: 4 kernel_size: 3 pad: 1",
    geometry: { group: 4, pad: [1, 1], stride: [1, 1], dilation: [1, 1] },
    bias: true,
  },
  {
    name: "depthwise 3x3 stride 2 on wide rows, no pad",
    input: [2, 3, 7, 45],
    weights: [3, 1, 3, 3],
    params: "num_output: 3 group: 3 kernel_size: 3 stride: 2 bias_term: false",
    geometry: { group: 3, pad: [0, 0], stride: [2, 2], dilation: [1, 1] },
    bias: false,
  },
  {
    name: "depthwise 5x5 stride 3 (tap by tap)",
    input: [1, 2, 11, 13],
    weights: [2, 1, 5, 5],
    params: "num_output: 2 group: 2 kernel_size: 5 pad: 2 stride: 3",
    geometry: { group: 2, pad: [2, 2], stride: [3, 3], dilation: [1, 1] },
    bias: true,
  },
  {
    name: "grouped with 2 outputs per group (channel multiplier 2)",
    input: [1, 3, 5, 5],
    weights: [6, 1, 3, 3],
    params: "num_output: 6 group: 3 kernel_size: 3 pad: 1 bias_term: false",
    geometry: { group: 3, pad: [1, 1], stride: [1, 1], dilation: [1, 1] },
    bias: false,
  },
  {
    name: "1x1 (read directly)",
    input: [2, 6, 5, 3],
    weights: [3, 6, 1, 1],
    params: "num_output: 3 kernel_size: 1",
    geometry: { group: 1, pad: [0, 0], stride: [1, 1], dilation: [1, 1] },
    bias: true,
  },
  {
    name: "1x1 stride 2",
    input: [1, 4, 7, 7],
    weights: [2, 4, 1, 1],
    params: "num_output: 2 kernel_size: 1 stride: 2",
    geometry: { group: 1, pad: [0, 0], stride: [2, 2], dilation: [1, 1] },
    bias: true,
  },
  {
    name: "repeated kernel_size/pad/stride (h, w)",
    input: [1, 2, 9, 10],
    weights: [3, 2, 3, 2],
    params: "num_output: 3 kernel_size: 3 kernel_size: 2 pad: 1 pad: 2 stride: 2 stride: 3",
    geometry: { group: 1, pad: [1, 2], stride: [2, 3], dilation: [1, 1] },
    bias: true,
  },
  {
    name: "columns over the 8 MB scratch limit (computed in bands of output rows)",
    input: [1, 64, 64, 64],
    weights: [5, 64, 3, 3],
    params: "num_output: 5 kernel_size: 3 pad: 1",
    geometry: { group: 1, pad: [1, 1], stride: [1, 1], dilation: [1, 1] },
    bias: true,
  },
  {
    name: "deep and wide (GEMM blocking: K 288, 576 columns, 7 rows)",
    input: [1, 32, 24, 24],
    weights: [7, 32, 3, 3],
    params: "num_output: 7 kernel_size: 3 pad: 1",
    geometry: { group: 1, pad: [1, 1], stride: [1, 1], dilation: [1, 1] },
    bias: true,
  },
];

for (const [index, testCase] of CONV_CASES.entries()) {
  Deno.test(`Convolution: ${testCase.name}`, async () => {
    const x = tensor(testCase.input, 100 + index);
    const weights = blob(testCase.weights, 200 + index, 0.5);
    const bias = testCase.bias ? blob([testCase.weights[0]], 300 + index) : null;
    const [y] = await runLayer(
      `type: "Convolution" top: "y" convolution_param { ${testCase.params} }`,
      [x],
      bias ? [weights, bias] : [weights],
    );
    assertClose(y, convNaive(x, weights, bias, testCase.geometry));
  });
}

const DECONV_CASES: ConvCase[] = [
  {
    name: "kernel 4, stride 2, pad 1 (waifu2x form), batch 2",
    input: [2, 3, 5, 4],
    weights: [3, 2, 4, 4],
    params: "num_output: 2 kernel_size: 4 stride: 2 pad: 1",
    geometry: { group: 1, pad: [1, 1], stride: [2, 2], dilation: [1, 1] },
    bias: true,
  },
  {
    name: "columns over the 8 MB scratch limit (computed in bands of input rows)",
    input: [1, 2, 96, 96],
    weights: [2, 16, 4, 4],
    params: "num_output: 16 kernel_size: 4 stride: 2 pad: 1",
    geometry: { group: 1, pad: [1, 1], stride: [2, 2], dilation: [1, 1] },
    bias: true,
  },
  {
    name: "2 groups, kernel 3x2, no bias",
    input: [1, 4, 3, 5],
    weights: [4, 3, 3, 2],
    params: "num_output: 6 group: 2 kernel_h: 3 kernel_w: 2 stride: 1 bias_term: false",
    geometry: { group: 2, pad: [0, 0], stride: [1, 1], dilation: [1, 1] },
    bias: false,
  },
  {
    name: "dilation 2, stride 3, pad 2",
    input: [1, 2, 4, 4],
    weights: [2, 3, 3, 3],
    params: "num_output: 3 kernel_size: 3 stride: 3 pad: 2 dilation: 2",
    geometry: { group: 1, pad: [2, 2], stride: [3, 3], dilation: [2, 2] },
    bias: true,
  },
  {
    name: "group 2 nearest-upsampling form (weights 1)",
    input: [1, 2, 3, 3],
    weights: [2, 1, 2, 2],
    params: "num_output: 2 group: 2 kernel_size: 2 stride: 2 bias_term: false",
    geometry: { group: 2, pad: [0, 0], stride: [2, 2], dilation: [1, 1] },
    bias: false,
  },
];

for (const [index, testCase] of DECONV_CASES.entries()) {
  Deno.test(`Deconvolution: ${testCase.name}`, async () => {
    const x = tensor(testCase.input, 400 + index);
    const weights = testCase.name.includes("upsampling")
      ? { shape: testCase.weights, data: new Float32Array(size(testCase.weights)).fill(1) }
      : blob(testCase.weights, 500 + index, 0.5);
    const bias = testCase.bias
      ? blob([testCase.weights[1] * testCase.geometry.group], 600 + index)
      : null;
    const [y] = await runLayer(
      `type: "Deconvolution" top: "y" convolution_param { ${testCase.params} }`,
      [x],
      bias ? [weights, bias] : [weights],
    );
    assertClose(y, deconvNaive(x, weights, bias, testCase.geometry));
  });
}

Deno.test("Deconvolution with weights 1, group = channels, stride 2 is nearest upsampling", async () => {
  const x = tensor([1, 3, 2, 3], 7);
  const weights = { shape: [3, 1, 2, 2], data: new Float32Array(12).fill(1) };
  const [y] = await runLayer(
    `type: "Deconvolution" top: "y" convolution_param { num_output: 3 group: 3 kernel_size: 2 stride: 2 bias_term: false }`,
    [x],
    [weights],
  );
  const expected = new Float64Array(3 * 4 * 6);
  for (let c = 0; c < 3; c++) {
    for (let y2 = 0; y2 < 4; y2++) {
      for (let x2 = 0; x2 < 6; x2++) {
        expected[offset([1, 3, 4, 6], 0, c, y2, x2)] =
          x.data[offset(x.shape, 0, c, y2 >> 1, x2 >> 1)];
      }
    }
  }
  assertClose(y, { shape: [1, 3, 4, 6], data: expected }, 0);
});

function innerProductNaive(
  x: Tensor,
  axis: number,
  weights: FloatBlob,
  bias: FloatBlob | null,
  transposed: boolean,
) {
  const rows = size(x.shape.slice(0, axis));
  const depth = size(x.shape.slice(axis));
  const outputs = weights.data.length / depth;
  const out = new Float64Array(rows * outputs);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outputs; o++) {
      let sum = bias ? bias.data[o] : 0;
      for (let k = 0; k < depth; k++) {
        const w = transposed ? weights.data[k * outputs + o] : weights.data[o * depth + k];
        sum += x.data[r * depth + k] * w;
      }
      out[r * outputs + o] = sum;
    }
  }
  return { shape: [...x.shape.slice(0, axis), outputs], data: out };
}

Deno.test("InnerProduct: axis 1 on a 4-D input, batch 3, 7 outputs", async () => {
  const x = tensor([3, 2, 3, 3], 11);
  const weights = blob([7, 18], 12);
  const bias = blob([7], 13);
  const [y] = await runLayer(
    `type: "InnerProduct" top: "y" inner_product_param { num_output: 7 }`,
    [x],
    [weights, bias],
  );
  assertClose(y, innerProductNaive(x, 1, weights, bias, false));
});

Deno.test("InnerProduct: axis 2, no bias, depth not a multiple of 4", async () => {
  const x = tensor([2, 3, 5], 14);
  const weights = blob([6, 5], 15);
  const [y] = await runLayer(
    `type: "InnerProduct" top: "y" inner_product_param { num_output: 6 axis: 2 bias_term: false }`,
    [x],
    [weights],
  );
  assertClose(y, innerProductNaive(x, 2, weights, null, false));
});

Deno.test("InnerProduct: transpose (weights [K, N]), axis -1", async () => {
  const x = tensor([2, 9], 16);
  const weights = blob([9, 5], 17);
  const bias = blob([5], 18);
  const [y] = await runLayer(
    `type: "InnerProduct" top: "y" inner_product_param { num_output: 5 transpose: true axis: -1 }`,
    [x],
    [weights, bias],
  );
  assertClose(y, innerProductNaive(x, 1, weights, bias, true));
});

// ---------------------------------------------------------------------------------------------
// Pooling

/** Caffe's pooled size: ceil((H + 2p - k) / s) + 1, minus 1 when (with padding) the last window starts in the padding. */
function pooledSize(
  h: number,
  k: number,
  p: number,
  s: number,
  padded: boolean,
  ceil = true,
): number {
  let out = (ceil ? Math.ceil((h + 2 * p - k) / s) : Math.floor((h + 2 * p - k) / s)) + 1;
  if (padded && (out - 1) * s >= h + p) out--;
  return out;
}

function poolNaive(
  x: Tensor,
  method: "MAX" | "AVE",
  kernel: [number, number],
  pad: [number, number],
  stride: [number, number],
  ceil = true,
) {
  const [n, c, h, w] = x.shape;
  const padded = pad[0] > 0 || pad[1] > 0;
  const oh = pooledSize(h, kernel[0], pad[0], stride[0], padded, ceil);
  const ow = pooledSize(w, kernel[1], pad[1], stride[1], padded, ceil);
  const shape = [n, c, oh, ow];
  const out = new Float64Array(size(shape));
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < oh; y++) {
        for (let xx = 0; xx < ow; xx++) {
          const top = y * stride[0] - pad[0];
          const left = xx * stride[1] - pad[1];
          // AVE divisor: the window clipped to the padded image.
          const divisor = (Math.min(top + kernel[0], h + pad[0]) - top) *
            (Math.min(left + kernel[1], w + pad[1]) - left);
          let best = -Infinity;
          let sum = 0;
          for (let i = Math.max(top, 0); i < Math.min(top + kernel[0], h); i++) {
            for (let j = Math.max(left, 0); j < Math.min(left + kernel[1], w); j++) {
              const value = x.data[offset(x.shape, b, ch, i, j)];
              best = Math.max(best, value);
              sum += value;
            }
          }
          out[offset(shape, b, ch, y, xx)] = method === "MAX" ? best : sum / divisor;
        }
      }
    }
  }
  return { shape, data: out };
}

Deno.test("Pooling: output sizes follow Caffe's ceil rounding and last-window clip", async () => {
  const cases: [string, number, number][] = [
    // [params, H (= W), expected pooled size]
    ["kernel_size: 2 stride: 2", 5, 3], // ceil(3/2) + 1 = 3 (floor would give 2)
    ["kernel_size: 3 stride: 2", 24, 12], // MTCNN: ceil(21/2) + 1 = 12
    ["kernel_size: 2 stride: 2 pad: 1", 3, 2], // ceil(3/2)+1 = 3, last window starts in the pad: 2
    ["kernel_size: 3 stride: 2 pad: 1", 4, 3], // ceil(3/2)+1 = 3, (3-1)*2 = 4 < 4+1: kept
    ["kernel_size: 2 stride: 2 round_mode: FLOOR", 5, 2],
  ];
  for (const [params, side, expected] of cases) {
    const [y] = await runLayer(`type: "Pooling" top: "y" pooling_param { pool: MAX ${params} }`, [
      tensor([1, 1, side, side], side),
    ]);
    assert.deepEqual(y.shape, [1, 1, expected, expected], params);
  }
});

const POOL_CASES: [
  string,
  "MAX" | "AVE",
  number[],
  [number, number],
  [number, number],
  [number, number],
][] = [
  ["MAX 3x3 stride 2, ceil mode, odd size", "MAX", [2, 3, 9, 7], [3, 3], [0, 0], [2, 2]],
  ["MAX 2x2 stride 2 pad 1 (clipped last window)", "MAX", [1, 2, 5, 3], [2, 2], [1, 1], [2, 2]],
  [
    "AVE 3x3 stride 2, ceil mode (partial windows divide by the clipped size)",
    "AVE",
    [2, 3, 8, 9],
    [3, 3],
    [0, 0],
    [2, 2],
  ],
  ["AVE 3x3 stride 1 pad 1 (padded cells counted)", "AVE", [1, 2, 5, 6], [3, 3], [1, 1], [1, 1]],
  ["AVE 3x2 stride 2x1 pad 1x0", "AVE", [1, 2, 7, 6], [3, 2], [1, 0], [2, 1]],
  ["MAX kernel_h/w, stride_h/w, pad_h/w", "MAX", [1, 3, 8, 6], [2, 3], [1, 1], [2, 3]],
  ["MAX 3x3 stride 2 on wide rows (four at a time)", "MAX", [1, 2, 7, 41], [3, 3], [0, 0], [2, 2]],
  ["MAX 2x2 stride 1 pad 1 on wide rows", "MAX", [1, 2, 4, 23], [2, 2], [1, 1], [1, 1]],
  ["AVE 3x3 stride 2 on wide rows (four at a time)", "AVE", [1, 2, 7, 41], [3, 3], [0, 0], [2, 2]],
  ["AVE 2x2 stride 1 pad 1 on wide rows", "AVE", [1, 2, 4, 23], [2, 2], [1, 1], [1, 1]],
];

for (const [index, [name, method, shape, kernel, pad, stride]] of POOL_CASES.entries()) {
  Deno.test(`Pooling: ${name}`, async () => {
    const x = tensor(shape, 700 + index);
    const params = kernel[0] === kernel[1] && pad[0] === pad[1] && stride[0] === stride[1]
      ? `kernel_size: ${kernel[0]} pad: ${pad[0]} stride: ${stride[0]}`
      : `kernel_h: ${kernel[0]} kernel_w: ${kernel[1]} pad_h: ${pad[0]} pad_w: ${
        pad[1]
      } stride_h: ${stride[0]} stride_w: ${stride[1]}`;
    const [y] = await runLayer(
      `type: "Pooling" top: "y" pooling_param { pool: ${method} ${params} }`,
      [x],
    );
    assertClose(y, poolNaive(x, method, kernel, pad, stride));
  });
}

// AVE pooling in float32 as Caffe computes it: the window's values added in window order (rows,
// then columns) into a float32 sum, then divided by the pool size; outputs computed four at a time
// must give the same bits as one at a time.
Deno.test("Pooling: AVE on wide rows gives Caffe's float32 sums bit for bit", async () => {
  for (
    const [shape, kernel, pad, stride] of [
      [[1, 3, 6, 45], 3, 0, 2],
      [[1, 2, 5, 38], 3, 1, 1],
      [[1, 2, 6, 30], 2, 0, 2],
    ] as const
  ) {
    const x = tensor([...shape], 900 + shape[3]);
    const [y] = await runLayer(
      `type: "Pooling" top: "y" pooling_param { pool: AVE kernel_size: ${kernel} pad: ${pad} stride: ${stride} }`,
      [x],
    );
    const [, channels, h, w] = shape;
    const [, , oh, ow] = y.shape;
    const expected = new Float32Array(channels * oh * ow);
    for (let c = 0; c < channels; c++) {
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) {
          const top = i * stride - pad;
          const left = j * stride - pad;
          const divisor = (Math.min(top + kernel, h + pad) - top) *
            (Math.min(left + kernel, w + pad) - left);
          let sum = 0;
          for (let r = Math.max(top, 0); r < Math.min(top + kernel, h); r++) {
            for (let k = Math.max(left, 0); k < Math.min(left + kernel, w); k++) {
              sum = Math.fround(sum + x.data[(c * h + r) * w + k]);
            }
          }
          expected[(c * oh + i) * ow + j] = Math.fround(sum / divisor);
        }
      }
    }
    assert.deepEqual(y.data, expected, `${shape} kernel ${kernel} pad ${pad} stride ${stride}`);
  }
});

Deno.test("Pooling: global AVE and MAX", async () => {
  const x = tensor([2, 3, 5, 7], 31);
  for (const method of ["AVE", "MAX"] as const) {
    const [y] = await runLayer(
      `type: "Pooling" top: "y" pooling_param { pool: ${method} global_pooling: true }`,
      [x],
    );
    assertClose(y, poolNaive(x, method, [5, 7], [0, 0], [1, 1]));
  }
});

// ---------------------------------------------------------------------------------------------
// Element-wise layers

function mapNaive(x: Tensor, f: (value: number, index: number) => number) {
  return { shape: x.shape, data: Array.from(x.data, f) };
}

Deno.test("ReLU (plain and negative_slope), TanH, Sigmoid, AbsVal, Power, Dropout", async () => {
  const x = tensor([2, 3, 5, 3], 41);
  const cases: [string, (v: number) => number][] = [
    [`type: "ReLU" top: "y"`, (v) => Math.max(v, 0)],
    [
      `type: "ReLU" top: "y" relu_param { negative_slope: 0.1 }`,
      (v) => v > 0 ? v : v * Math.fround(0.1),
    ],
    [`type: "TanH" top: "y"`, Math.tanh],
    [`type: "Sigmoid" top: "y"`, (v) => 1 / (1 + Math.exp(-v))],
    [`type: "AbsVal" top: "y"`, Math.abs],
    [
      `type: "Power" top: "y" power_param { power: 2 scale: 0.5 shift: 1.5 }`,
      (v) => (1.5 + 0.5 * v) ** 2,
    ],
    [
      `type: "Power" top: "y" power_param { power: -0.75 scale: 2 shift: 3 }`,
      (v) => (3 + 2 * v) ** -0.75,
    ],
    [`type: "Power" top: "y" power_param { power: 0 }`, () => 1],
    [`type: "Dropout" top: "y" dropout_param { dropout_ratio: 0.3 }`, (v) => v],
    [
      `type: "Dropout" top: "y" dropout_param { dropout_ratio: 0.25 scale_train: false }`,
      (v) => v * 0.75,
    ],
  ];
  for (const [text, f] of cases) {
    const [y] = await runLayer(text, [x]);
    assertClose(y, mapNaive(x, f), 1e-6, text);
  }
});

Deno.test("ReLU computes Caffe's max(x, 0) + slope * min(x, 0) with std::max/min: -0 stays -0", async () => {
  // std::max(a, b) is a < b ? b : a and std::min(a, b) is b < a ? b : a: the first argument
  // unless the other is less, so -0 and NaN come through; 9 values, so a tail of one too.
  const values = [-0, 0, NaN, -Infinity, Infinity, -2, 3, 1e-45, -0];
  const x: Tensor = { shape: [1, 1, 1, values.length], data: Float32Array.from(values) };
  for (const slope of [0, 0.1]) {
    const text = `type: "ReLU" top: "y" relu_param { negative_slope: ${slope} }`;
    const [y] = await runLayer(text, [x]);
    const expected = values.map((v) => {
      const max = v < 0 ? 0 : v;
      const min = 0 < v ? 0 : v;
      return Math.fround(max + Math.fround(Math.fround(slope) * min));
    });
    for (const [i, v] of expected.entries()) {
      assert.ok(Object.is(y.data[i], v), `${text}: ReLU(${values[i]}) = ${y.data[i]}, not ${v}`);
    }
  }
});

Deno.test("PReLU: per channel and channel_shared", async () => {
  const x = tensor([2, 4, 3, 5], 42);
  const slopes = blob([4], 43);
  const [y] = await runLayer(`type: "PReLU" top: "y"`, [x], [slopes]);
  assertClose(y, mapNaive(x, (v, i) => v > 0 ? v : v * slopes.data[Math.floor(i / 15) % 4]), 1e-6);
  const shared = blob([1], 44);
  const [z] = await runLayer(`type: "PReLU" top: "y" prelu_param { channel_shared: true }`, [x], [
    shared,
  ]);
  assertClose(z, mapNaive(x, (v) => v > 0 ? v : v * shared.data[0]), 1e-6);
});

Deno.test("Eltwise: SUM with coeffs, PROD, MAX over three bottoms", async () => {
  const inputs = [tensor([2, 3, 4, 5], 51), tensor([2, 3, 4, 5], 52), tensor([2, 3, 4, 5], 53)];
  const at = (i: number) => inputs.map((input) => input.data[i]);
  const cases: [string, (values: number[]) => number][] = [
    [`eltwise_param { operation: SUM }`, (v) => v[0] + v[1] + v[2]],
    [
      `eltwise_param { operation: SUM coeff: 1 coeff: -0.5 coeff: 2 }`,
      (v) => v[0] - 0.5 * v[1] + 2 * v[2],
    ],
    [`eltwise_param { operation: PROD }`, (v) => v[0] * v[1] * v[2]],
    [`eltwise_param { operation: MAX }`, (v) => Math.max(...v)],
  ];
  for (const [params, f] of cases) {
    const [y] = await runLayer(`type: "Eltwise" top: "y" ${params}`, inputs);
    assertClose(y, mapNaive(inputs[0], (_, i) => f(at(i))), 1e-6);
  }
});

// ---------------------------------------------------------------------------------------------
// Per-channel and cross-channel layers

Deno.test("BatchNorm: global statistics divided by the scale factor, eps", async () => {
  const x = tensor([2, 3, 4, 3], 61);
  const mean = blob([3], 62);
  const variance = { shape: [3], data: randomValues(3, 63).map((v) => v + 1.5) };
  const factor = { shape: [1], data: new Float32Array([2]) };
  const [y] = await runLayer(`type: "BatchNorm" top: "y" batch_norm_param { eps: 0.001 }`, [x], [
    mean,
    variance,
    factor,
  ]);
  assertClose(
    y,
    mapNaive(x, (v, i) => {
      const c = Math.floor(i / 12) % 3;
      return (v - mean.data[c] / 2) / Math.sqrt(variance.data[c] / 2 + 0.001);
    }),
    1e-5,
  );
  const zeroFactor = { shape: [1], data: new Float32Array([0]) };
  const [z] = await runLayer(`type: "BatchNorm" top: "y"`, [x], [mean, variance, zeroFactor]);
  assertClose(z, mapNaive(x, (v) => v / Math.sqrt(1e-5)), 1e-5);
});

Deno.test("BatchNorm: use_global_stats false normalizes with the batch statistics", async () => {
  const x = tensor([3, 2, 4, 4], 64);
  const unused = { shape: [2], data: new Float32Array(2) };
  const [y] = await runLayer(
    `type: "BatchNorm" top: "y" batch_norm_param { use_global_stats: false }`,
    [x],
    [unused, unused, { shape: [1], data: new Float32Array([1]) }],
  );
  const stats = [0, 1].map((c) => {
    const values = Array.from(x.data).filter((_, i) => Math.floor(i / 16) % 2 === c);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
    return { mean, deviation: Math.sqrt(variance + 1e-5) };
  });
  assertClose(
    y,
    mapNaive(
      x,
      (v, i) => (v - stats[Math.floor(i / 16) % 2].mean) / stats[Math.floor(i / 16) % 2].deviation,
    ),
    1e-5,
  );
});

Deno.test("Scale: 1 bottom with bias, axis/num_axes, 2 bottoms; Bias: 1 and 2 bottoms", async () => {
  const x = tensor([2, 3, 4, 5], 71);
  const gamma = blob([3], 72);
  const beta = blob([3], 73);
  const [y] = await runLayer(`type: "Scale" top: "y" scale_param { bias_term: true }`, [x], [
    gamma,
    beta,
  ]);
  assertClose(
    y,
    mapNaive(
      x,
      (v, i) => v * gamma.data[Math.floor(i / 20) % 3] + beta.data[Math.floor(i / 20) % 3],
    ),
    1e-6,
  );

  const gammaHW = blob([4, 5], 74);
  const [z] = await runLayer(`type: "Scale" top: "y" scale_param { axis: 2 num_axes: -1 }`, [x], [
    gammaHW,
  ]);
  assertClose(z, mapNaive(x, (v, i) => v * gammaHW.data[i % 20]), 1e-6);

  const factors = tensor([2, 3], 75);
  const [w] = await runLayer(`type: "Scale" top: "y" scale_param { axis: 0 }`, [x, factors]);
  assertClose(w, mapNaive(x, (v, i) => v * factors.data[Math.floor(i / 20)]), 1e-6);

  const [b] = await runLayer(`type: "Bias" top: "y"`, [x], [beta]);
  assertClose(b, mapNaive(x, (v, i) => v + beta.data[Math.floor(i / 20) % 3]), 1e-6);

  const offsets = tensor([3, 4], 76);
  const [b2] = await runLayer(`type: "Bias" top: "y" bias_param { axis: 1 }`, [x, offsets]);
  assertClose(b2, mapNaive(x, (v, i) => v + offsets.data[Math.floor(i / 5) % 12]), 1e-6);
});

function softmaxNaive(x: Tensor, axis: number) {
  const outer = size(x.shape.slice(0, axis));
  const channels = x.shape[axis];
  const inner = size(x.shape.slice(axis + 1));
  const out = new Float64Array(x.data.length);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let sum = 0;
      for (let c = 0; c < channels; c++) sum += Math.exp(x.data[(o * channels + c) * inner + i]);
      for (let c = 0; c < channels; c++) {
        const index = (o * channels + c) * inner + i;
        out[index] = Math.exp(x.data[index]) / sum;
      }
    }
  }
  return { shape: x.shape, data: out };
}

Deno.test("Softmax: axis 1 (default), axis 2, axis -1", async () => {
  const x = tensor([2, 5, 3, 4], 81);
  const scaled = { shape: x.shape, data: x.data.map((v) => v * 20) };
  const [y] = await runLayer(`type: "Softmax" top: "y"`, [scaled]);
  assertClose(y, softmaxNaive(scaled, 1), 1e-6);
  const [z] = await runLayer(`type: "Softmax" top: "y" softmax_param { axis: 2 }`, [scaled]);
  assertClose(z, softmaxNaive(scaled, 2), 1e-6);
  const [w] = await runLayer(`type: "Softmax" top: "y" softmax_param { axis: -1 }`, [scaled]);
  assertClose(w, softmaxNaive(scaled, 3), 1e-6);
});

Deno.test("LRN: ACROSS_CHANNELS (window clipped at the channel ends)", async () => {
  const x = tensor([2, 7, 3, 4], 91);
  const [y] = await runLayer(
    `type: "LRN" top: "y" lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 k: 2 }`,
    [x],
  );
  const expected = mapNaive(x, (v, i) => {
    const c = Math.floor(i / 12) % 7;
    let sum = 0;
    for (let other = c - 2; other <= c + 2; other++) {
      if (other < 0 || other >= 7) continue;
      sum += x.data[i + (other - c) * 12] ** 2;
    }
    return v * (2 + (0.0001 / 5) * sum) ** -0.75;
  });
  assertClose(y, expected, 1e-6);
});

Deno.test("LRN: WITHIN_CHANNEL (Caffe's AVE pooling of squares, padded cells counted)", async () => {
  const x = tensor([1, 2, 5, 6], 92);
  const [y] = await runLayer(
    `type: "LRN" top: "y" lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 norm_region: WITHIN_CHANNEL }`,
    [x],
  );
  const squares = { shape: x.shape, data: x.data.map((v) => v * v) };
  const averages = poolNaive(squares, "AVE", [3, 3], [1, 1], [1, 1]);
  assertClose(y, mapNaive(x, (v, i) => v * (1 + 0.5 * averages.data[i]) ** -0.75), 1e-5);
});

Deno.test("Normalize (SSD): across channels with per-channel scale; across spatial, shared scale", async () => {
  const x = tensor([2, 3, 4, 5], 101);
  const scale = { shape: [3], data: new Float32Array([10, 8, 5]) };
  const [y] = await runLayer(
    `type: "Normalize" top: "y" norm_param { across_spatial: false channel_shared: false }`,
    [x],
    [scale],
  );
  assertClose(
    y,
    mapNaive(x, (v, i) => {
      const n = Math.floor(i / 60);
      const s = i % 20;
      let sum = 0;
      for (let c = 0; c < 3; c++) sum += x.data[n * 60 + c * 20 + s] ** 2;
      return (v / Math.sqrt(sum + 1e-10)) * scale.data[Math.floor(i / 20) % 3];
    }),
    1e-5,
  );
  const shared = { shape: [1], data: new Float32Array([3]) };
  const [z] = await runLayer(`type: "Normalize" top: "y" norm_param { eps: 0.001 }`, [x], [shared]);
  assertClose(
    z,
    mapNaive(x, (v, i) => {
      const n = Math.floor(i / 60);
      let sum = 0;
      for (let j = 0; j < 60; j++) sum += x.data[n * 60 + j] ** 2;
      return (v / Math.sqrt(sum + 0.001)) * 3;
    }),
    1e-5,
  );
});

// ---------------------------------------------------------------------------------------------
// Data movement

Deno.test("Concat: axis 1, axis 2 and legacy concat_dim", async () => {
  const a = tensor([2, 2, 3], 111);
  const b = tensor([2, 3, 3], 112);
  const [y] = await runLayer(`type: "Concat" top: "y"`, [a, b]);
  const expected: number[] = [];
  for (let n = 0; n < 2; n++) {
    expected.push(...a.data.slice(n * 6, n * 6 + 6), ...b.data.slice(n * 9, n * 9 + 9));
  }
  assertClose(y, { shape: [2, 5, 3], data: expected }, 0);
  const c = tensor([2, 2, 1], 113);
  const [z] = await runLayer(`type: "Concat" top: "y" concat_param { axis: 2 }`, [a, c]);
  const expectedZ: number[] = [];
  for (let row = 0; row < 4; row++) {
    expectedZ.push(...a.data.slice(row * 3, row * 3 + 3), c.data[row]);
  }
  assertClose(z, { shape: [2, 2, 4], data: expectedZ }, 0);
  const [w] = await runLayer(`type: "Concat" top: "y" concat_param { concat_dim: 0 }`, [a, a]);
  assertClose(w, { shape: [4, 2, 3], data: [...a.data, ...a.data] }, 0);
});

Deno.test("Slice: slice_point, equal parts, legacy slice_dim; Split", async () => {
  const x = tensor([2, 5, 2], 121);
  const [p, q] = await runLayer(`type: "Slice" top: "p" top: "q" slice_param { slice_point: 2 }`, [
    x,
  ]);
  const channels = (n: number, from: number, to: number) =>
    Array.from(x.data.slice(n * 10 + from * 2, n * 10 + to * 2));
  assertClose(p, { shape: [2, 2, 2], data: [...channels(0, 0, 2), ...channels(1, 0, 2)] }, 0);
  assertClose(q, { shape: [2, 3, 2], data: [...channels(0, 2, 5), ...channels(1, 2, 5)] }, 0);
  const parts = await runLayer(`type: "Slice" top: "a" top: "b" slice_param { axis: 2 }`, [x]);
  assertClose(parts[0], { shape: [2, 5, 1], data: x.data.filter((_, i) => i % 2 === 0) }, 0);
  assertClose(parts[1], { shape: [2, 5, 1], data: x.data.filter((_, i) => i % 2 === 1) }, 0);
  const legacy = await runLayer(`type: "Slice" top: "a" top: "b" slice_param { slice_dim: 0 }`, [
    x,
  ]);
  assertClose(legacy[1], { shape: [1, 5, 2], data: x.data.slice(10) }, 0);
  const copies = await runLayer(`type: "Split" top: "a" top: "b"`, [x]);
  for (const copy of copies) assertClose(copy, x, 0);
});

Deno.test("Flatten and Reshape (0 and -1 dims, axis, num_axes)", async () => {
  const x = tensor([2, 3, 4, 5], 131);
  const cases: [string, number[]][] = [
    [`type: "Flatten" top: "y"`, [2, 60]],
    [`type: "Flatten" top: "y" flatten_param { axis: 1 end_axis: 2 }`, [2, 12, 5]],
    [`type: "Reshape" top: "y" reshape_param { shape { dim: 0 dim: -1 dim: 2 } }`, [2, 30, 2]],
    [`type: "Reshape" top: "y" reshape_param { shape { dim: 6 dim: -1 } axis: 1 num_axes: 2 }`, [
      2,
      6,
      2,
      5,
    ]],
    [`type: "Reshape" top: "y" reshape_param { shape { dim: -1 } axis: -3 }`, [2, 3, 20]],
    [`type: "Reshape" top: "y" reshape_param { shape { dim: 1 } axis: -1 }`, [2, 3, 4, 5, 1]],
  ];
  for (const [text, shape] of cases) {
    const [y] = await runLayer(text, [x]);
    assertClose(y, { shape, data: x.data }, 0);
  }
});

Deno.test("Permute (SSD): NCHW to NHWC, and unlisted axes appended", async () => {
  const x = tensor([2, 3, 4, 5], 141);
  const [y] = await runLayer(
    `type: "Permute" top: "y" permute_param { order: 0 order: 2 order: 3 order: 1 }`,
    [x],
  );
  const expected = new Float64Array(120);
  for (let n = 0; n < 2; n++) {
    for (let c = 0; c < 3; c++) {
      for (let h = 0; h < 4; h++) {
        for (let w = 0; w < 5; w++) {
          expected[offset([2, 4, 5, 3], n, h, w, c)] = x.data[offset(x.shape, n, c, h, w)];
        }
      }
    }
  }
  assertClose(y, { shape: [2, 4, 5, 3], data: expected }, 0);
  const [z] = await runLayer(`type: "Permute" top: "y" permute_param { order: 1 }`, [x]);
  const expectedZ = new Float64Array(120);
  for (let n = 0; n < 2; n++) {
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < 20; i++) expectedZ[(c * 2 + n) * 20 + i] = x.data[(n * 3 + c) * 20 + i];
    }
  }
  assertClose(z, { shape: [3, 2, 4, 5], data: expectedZ }, 0);
});

Deno.test("Crop: default axis 2 with one offset, axis 1 with per-axis offsets", async () => {
  const x = tensor([1, 3, 6, 7], 151);
  const reference = tensor([1, 1, 4, 3], 152);
  const [y] = await runLayer(`type: "Crop" top: "y" crop_param { offset: 1 }`, [x, reference]);
  const expected: number[] = [];
  for (let c = 0; c < 3; c++) {
    for (let h = 0; h < 4; h++) {
      for (let w = 0; w < 3; w++) expected.push(x.data[offset(x.shape, 0, c, h + 1, w + 1)]);
    }
  }
  assertClose(y, { shape: [1, 3, 4, 3], data: expected }, 0);
  const reference2 = tensor([1, 2, 2, 5], 153);
  const [z] = await runLayer(
    `type: "Crop" top: "y" crop_param { axis: 1 offset: 1 offset: 3 offset: 0 }`,
    [x, reference2],
  );
  const expectedZ: number[] = [];
  for (let c = 0; c < 2; c++) {
    for (let h = 0; h < 2; h++) {
      for (let w = 0; w < 5; w++) expectedZ.push(x.data[offset(x.shape, 0, c + 1, h + 3, w)]);
    }
  }
  assertClose(z, { shape: [1, 2, 2, 5], data: expectedZ }, 0);
});

Deno.test("PriorBox (SSD): boxes in SSD order, clip, 4 variances", async () => {
  const feature = tensor([1, 2, 2, 3], 161);
  const image = tensor([1, 3, 8, 12], 162);
  const [y] = await runLayer(
    `type: "PriorBox" top: "y" prior_box_param { min_size: 4 max_size: 9 aspect_ratio: 2 flip: true ` +
      `clip: true variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 offset: 0.5 }`,
    [feature, image],
  );
  // 2x3 positions, priors: square 4, square sqrt(4*9) = 6, ratio 2 and 1/2 => 4 per position.
  const boxes: number[] = [];
  const clip = (v: number) => Math.min(Math.max(v, 0), 1);
  for (let h = 0; h < 2; h++) {
    for (let w = 0; w < 3; w++) {
      const cx = (w + 0.5) * 4; // step = 12 / 3
      const cy = (h + 0.5) * 4; // step = 8 / 2
      for (
        const [bw, bh] of [[4, 4], [6, 6], [4 * Math.SQRT2, 4 / Math.SQRT2], [
          4 / Math.SQRT2,
          4 * Math.SQRT2,
        ]]
      ) {
        boxes.push(
          clip((cx - bw / 2) / 12),
          clip((cy - bh / 2) / 8),
          clip((cx + bw / 2) / 12),
          clip((cy + bh / 2) / 8),
        );
      }
    }
  }
  const variances = boxes.map((_, i) => [0.1, 0.1, 0.2, 0.2][i % 4]);
  assertClose(y, { shape: [1, 2, 96], data: [...boxes, ...variances] }, 1e-6);
});

// ---------------------------------------------------------------------------------------------
// Nets: inputs, reshaping, skipping, errors

Deno.test("runNet: Input layer and header inputs; another batch size and H/W reshape the net", async () => {
  const net = readPrototxt(`
    layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 dim: 5 dim: 5 } } }
    layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 3 kernel_size: 3 } }
    layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
  `);
  const weights = blob([3, 2, 3, 3], 171);
  const bias = blob([3], 172);
  net.layers[1].blobs = [weights, bias];
  const seeded = await runNet(net, { seed: 5 });
  assert.deepEqual(seeded.outputs.get("pool")?.shape, [1, 3, 2, 2]);
  const x = tensor([3, 2, 9, 8], 173);
  const result = await runNet(net, { inputs: new Map([["data", x]]), keepAll: true });
  const conv = convNaive(x, weights, bias, {
    group: 1,
    pad: [0, 0],
    stride: [1, 1],
    dilation: [1, 1],
  });
  assertClose(result.blobs.get("conv")!, conv);
  assert.deepEqual(result.outputs.get("pool")?.shape, [3, 3, 4, 3]);
  assert.deepEqual([...result.outputs.keys()], ["pool"]);
});

Deno.test("runNet: seeded inputs are uniform in [-1, 1), deterministic per seed, of the declared shape", async () => {
  const net = readPrototxt(`input: "a" input_dim: 2 input_dim: 3 input_dim: 4 input_dim: 5
    input: "b" input_dim: 1 input_dim: 10 input_dim: 1 input_dim: 1`);
  const first = await runNet(net, { seed: 7 });
  const again = await runNet(net, { seed: 7 });
  const other = await runNet(net, { seed: 8 });
  const a = first.outputs.get("a")!;
  assert.deepEqual(a.shape, [2, 3, 4, 5]);
  assert.deepEqual(first.outputs.get("b")!.shape, [1, 10, 1, 1]);
  assert.deepEqual(a.data, again.outputs.get("a")!.data);
  assert.notDeepEqual(a.data, other.outputs.get("a")!.data);
  assert.ok(a.data.every((v) => v >= -1 && v < 1));
  const mean = a.data.reduce((s, v) => s + v, 0) / a.data.length;
  assert.ok(Math.abs(mean) < 0.15, `mean ${mean}`);
  assert.notDeepEqual(first.outputs.get("b")!.data, a.data.slice(0, 10));
});

Deno.test("runNet: unknown types and DetectionOutput are skipped with what depends on them; the rest runs", async () => {
  const net = readPrototxt(`
    input: "data" input_shape { dim: 1 dim: 2 dim: 3 dim: 3 }
    layer { name: "custom" type: "MyCustomLayer" bottom: "data" top: "c" }
    layer { name: "after" type: "ReLU" bottom: "c" top: "d" }
    layer { name: "inplace" type: "ReLU" bottom: "data" top: "data" }
    layer { name: "weird" type: "MyOtherLayer" bottom: "data" top: "data" }
    layer { name: "fine" type: "AbsVal" bottom: "c2" top: "e" }
  `.replace(`bottom: "c2"`, `bottom: "d"`));
  const result = await runNet(net, { seed: 1 });
  assert.deepEqual(result.skipped.map((s) => [s.layer, s.type]), [
    ["custom", "MyCustomLayer"],
    ["after", "ReLU"],
    ["weird", "MyOtherLayer"],
    ["fine", "AbsVal"],
  ]);
  assert.match(result.skipped[0].reason, /not simulated/);
  assert.match(result.skipped[1].reason, /"c" from skipped layer "custom"/);
  assert.deepEqual([...result.outputs.keys()], []);

  const ssd = readPrototxt(`
    input: "data" input_shape { dim: 1 dim: 2 dim: 4 dim: 4 }
    layer { name: "relu" type: "ReLU" bottom: "data" top: "r" }
    layer { name: "prior" type: "PriorBox" bottom: "r" bottom: "data" top: "p" prior_box_param { min_size: 2 } }
    layer { name: "flat" type: "Flatten" bottom: "r" top: "f" }
    layer { name: "det" type: "DetectionOutput" bottom: "f" bottom: "p" top: "out" }
  `);
  const ran = await runNet(ssd, { seed: 1 });
  assert.deepEqual(ran.skipped.map((s) => s.layer), ["det"]);
  assert.deepEqual([...ran.outputs.keys()].sort(), ["f", "p"]);
});

Deno.test("runNet: errors name the layer (undefined bottom, weights that do not fit, foreign input)", async () => {
  const undefinedBottom = readPrototxt(`input: "data" input_shape { dim: 1 dim: 1 dim: 2 dim: 2 }
    layer { name: "r" type: "ReLU" bottom: "data" top: "y" }`);
  undefinedBottom.layers[0].bottoms = ["nothing"];
  await assert.rejects(
    runNet(undefinedBottom),
    (error: unknown) =>
      error instanceof ConvertError && error.code === "UNDEFINED_BOTTOM" && error.layer === "r",
  );
  const misfit = oneLayerNet(
    `type: "Convolution" top: "y" convolution_param { num_output: 2 kernel_size: 1 }`,
    [tensor([1, 3, 2, 2], 1)],
    [blob([2, 4, 1, 1], 2), blob([2], 3)],
  );
  await assert.rejects(
    runNet(misfit),
    (error: unknown) =>
      error instanceof ConvertError && error.code === "BAD_INPUT" && error.layer === "L",
  );
  await assert.rejects(
    runNet(misfit, { inputs: new Map([["other", tensor([1], 1)]]) }),
    (error: unknown) => error instanceof ConvertError && error.code === "BAD_INPUT",
  );
});

Deno.test("runNet: a layer with more tops than it gives is a BAD_INPUT", async () => {
  const net = oneLayerNet(`type: "Concat" top: "y" top: "z"`, [
    tensor([1, 2], 1),
    tensor([1, 2], 2),
  ], []);
  await assert.rejects(
    runNet(net),
    (error: unknown) =>
      error instanceof ConvertError && error.code === "BAD_INPUT" && /2 tops/.test(error.message),
  );
});
