// The deploy model's integer Convolution, Deconvolution and InnerProduct kernels (int16-pair dot
// products, assembly/engine/gemm.ts) against plain integer loops written here, on sizes that
// reach every path: several K blocks with an odd depth, rows not a multiple of 4, columns not a
// multiple of 8, groups, stride, padding, dilation, 1x1 kernels read directly, extreme values.

import assert from "node:assert/strict";
import { engineKernels, type Window2d } from "../src/wasm/engine.ts";

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
  Deno.test(`integer Convolution: ${c.name}`, async () => {
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
    const q = c.extreme
      ? integers(count, index, 0, 1).map((bit) => bit ? 127 : -128)
      : integers(count, index, -128, 127);
    const w = c.extreme
      ? integers(weightCount, 50 + index, 0, 1).map((bit) => bit ? 127 : -128)
      : integers(weightCount, 50 + index, -128, 127);
    const bias = integers(c.outputs, 90 + index, -5000, 5000);
    const y = kernels.convolution({
      x: Float32Array.from(q),
      offsetD: c.offsetD,
      shape: c.shape,
      weights: Int8Array.from(w),
      bias: Int32Array.from(bias),
      outputs: c.outputs,
      groups: c.groups,
      window: c.window,
      outSize,
    });
    assert.deepEqual(Array.from(y), expectedConvolution(q, w, bias, c, outSize));
  });
}

Deno.test("integer InnerProduct, transposed weights [K, N]: 6 rows, depth 300, 21 outputs", async () => {
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
});

Deno.test("integer Deconvolution: 5 inputs, 3x3 stride 2 pad 1, 6 outputs (depth 54)", async () => {
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
});
