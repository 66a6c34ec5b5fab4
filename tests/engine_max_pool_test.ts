// MAX pooling (assembly/engine/pool.ts maxPool: each plane copied inside a border of -FLT_MAX,
// four outputs per vector, four vectors at a time; windows of 2 or 3 rows and columns at stride 2
// as maxima of row maxima, two output rows at a time) against Caffe's loop written here: the window
// clipped to the image, the maximum starting from -FLT_MAX and taking strictly greater values in
// window order. Same bits expected, in both engine builds, including what the order decides: of
// equal values +0 and -0 the first in the window is kept, NaN is never taken, and a window of
// -Infinity gives -FLT_MAX. Shapes: kernels 1 to 5 (not square), strides 1, 2, 3 and 4, pads 0 to
// 2, Caffe's ceil-mode sizes (last windows clipped), planes from 1x1 to wide rows, one plane to
// many (the remainder of four-vector steps).

import assert from "node:assert/strict";
import { engineKernels, type Window2d } from "../src/wasm/engine.ts";
import { layer, net, randomValues } from "./_builders.ts";
import { runNet } from "../src/engine/run.ts";
import { ENGINE_BUILDS, withEngineBuild } from "./_engine_builds.ts";

const FLT_MAX = 3.4028234663852886e38;

interface Case {
  planes: number;
  size: [number, number];
  kernel: [number, number];
  pad: [number, number];
  stride: [number, number];
}

/** Caffe's pooled size: ceil mode, the last window dropped when it starts in the padding. */
function pooledSize(size: number, kernel: number, pad: number, stride: number): number {
  let out = Math.ceil((size + 2 * pad - kernel) / stride) + 1;
  if (pad > 0 && (out - 1) * stride >= size + pad) out--;
  return out;
}

/** Caffe's MAX pooling forward, one output at a time, in float32. */
function caffeMaxPool(x: Float32Array, c: Case, outSize: [number, number]): Float32Array {
  const [height, width] = c.size;
  const [outH, outW] = outSize;
  const y = new Float32Array(c.planes * outH * outW);
  for (let plane = 0; plane < c.planes; plane++) {
    for (let oh = 0; oh < outH; oh++) {
      for (let ow = 0; ow < outW; ow++) {
        const hStart = Math.max(oh * c.stride[0] - c.pad[0], 0);
        const wStart = Math.max(ow * c.stride[1] - c.pad[1], 0);
        const hEnd = Math.min(oh * c.stride[0] - c.pad[0] + c.kernel[0], height);
        const wEnd = Math.min(ow * c.stride[1] - c.pad[1] + c.kernel[1], width);
        let best = -FLT_MAX;
        for (let h = hStart; h < hEnd; h++) {
          for (let w = wStart; w < wEnd; w++) {
            const value = x[(plane * height + h) * width + w];
            if (value > best) best = value;
          }
        }
        y[(plane * outH + oh) * outW + ow] = best;
      }
    }
  }
  return y;
}

/** Values from a few levels (ties), with signed zeros, NaN and infinities mixed in. */
function poolInput(count: number, seed: number): Float32Array {
  const levels = [0, -0, 0.5, -0.5, 1, NaN, -Infinity, Infinity, -2];
  return randomValues(count, seed).map((r, i) => {
    if (i % 7 === 3) return levels[Math.floor((r + 1) * 4.5) % levels.length];
    return Math.round(r * 4) / 4;
  });
}

const CASES: Case[] = [
  { planes: 3, size: [9, 7], kernel: [3, 3], pad: [0, 0], stride: [2, 2] },
  { planes: 28, size: [22, 22], kernel: [3, 3], pad: [0, 0], stride: [2, 2] },
  { planes: 5, size: [46, 46], kernel: [3, 3], pad: [0, 0], stride: [2, 2] },
  { planes: 7, size: [8, 8], kernel: [2, 2], pad: [0, 0], stride: [2, 2] },
  { planes: 2, size: [5, 3], kernel: [2, 2], pad: [1, 1], stride: [2, 2] },
  { planes: 4, size: [4, 23], kernel: [2, 2], pad: [1, 1], stride: [1, 1] },
  { planes: 3, size: [8, 6], kernel: [2, 3], pad: [1, 1], stride: [2, 3] },
  { planes: 2, size: [13, 29], kernel: [5, 4], pad: [2, 1], stride: [3, 4] },
  { planes: 6, size: [1, 1], kernel: [1, 1], pad: [0, 0], stride: [1, 1] },
  { planes: 1, size: [1, 9], kernel: [1, 3], pad: [0, 1], stride: [1, 2] },
  { planes: 9, size: [3, 3], kernel: [3, 3], pad: [0, 0], stride: [1, 1] },
  { planes: 2, size: [17, 61], kernel: [3, 3], pad: [1, 1], stride: [1, 1] },
  { planes: 3, size: [16, 40], kernel: [3, 3], pad: [1, 1], stride: [2, 2] },
  { planes: 3, size: [10, 11], kernel: [3, 2], pad: [1, 0], stride: [2, 2] },
  { planes: 2, size: [7, 19], kernel: [2, 3], pad: [0, 1], stride: [2, 2] },
];

for (const build of ENGINE_BUILDS) {
  Deno.test(`MAX pooling: Caffe's window order bit for bit (${build})`, async () => {
    await withEngineBuild(build, async () => {
      const kernels = await engineKernels();
      for (const [index, c] of CASES.entries()) {
        const outSize: [number, number] = [
          pooledSize(c.size[0], c.kernel[0], c.pad[0], c.stride[0]),
          pooledSize(c.size[1], c.kernel[1], c.pad[1], c.stride[1]),
        ];
        const x = poolInput(c.planes * c.size[0] * c.size[1], 50 + index);
        const window: Window2d = {
          kernel: c.kernel,
          pad: c.pad,
          stride: c.stride,
          dilation: [1, 1],
        };
        const y = kernels.poolingKernel(
          { planes: c.planes, size: c.size, window, outSize },
          false,
        )(x);
        const expected = caffeMaxPool(x, c, outSize);
        const bits = (values: Float32Array) => Array.from(new Uint32Array(values.slice().buffer));
        assert.deepEqual(bits(y), bits(expected), JSON.stringify(c));
      }
    });
  });
}

Deno.test("MAX pooling: a window of -Infinity only gives -FLT_MAX, as Caffe's start value", async () => {
  const kernels = await engineKernels();
  const x = Float32Array.of(-Infinity, -Infinity, NaN, -Infinity, 1, -Infinity, -0, 0, NaN);
  const window: Window2d = { kernel: [1, 3], pad: [0, 0], stride: [1, 3], dilation: [1, 1] };
  const y = kernels.poolingKernel({ planes: 1, size: [1, 9], window, outSize: [1, 3] }, false)(x);
  assert.deepEqual(Array.from(y), [-FLT_MAX, 1, -0]);
  assert.ok(Object.is(y[2], -0));
});

/** Caffe's AVE pooling forward: the window clipped to the padded image for its size, summed
 * over its part inside the image, in float32 (0 / a negative size is -0, as in C++). */
function caffeAvePool(x: Float32Array, c: Case, outSize: [number, number]): Float32Array {
  const [height, width] = c.size;
  const [outH, outW] = outSize;
  const y = new Float32Array(c.planes * outH * outW);
  for (let plane = 0; plane < c.planes; plane++) {
    for (let oh = 0; oh < outH; oh++) {
      for (let ow = 0; ow < outW; ow++) {
        let hStart = oh * c.stride[0] - c.pad[0];
        let wStart = ow * c.stride[1] - c.pad[1];
        let hEnd = Math.min(hStart + c.kernel[0], height + c.pad[0]);
        let wEnd = Math.min(wStart + c.kernel[1], width + c.pad[1]);
        const size = (hEnd - hStart) * (wEnd - wStart);
        hStart = Math.max(hStart, 0);
        wStart = Math.max(wStart, 0);
        hEnd = Math.min(hEnd, height);
        wEnd = Math.min(wEnd, width);
        let sum = 0;
        for (let h = hStart; h < hEnd; h++) {
          for (let w = wStart; w < wEnd; w++) {
            sum = Math.fround(sum + x[(plane * height + h) * width + w]);
          }
        }
        y[(plane * outH + oh) * outW + ow] = Math.fround(sum / size);
      }
    }
  }
  return y;
}

Deno.test("pooling with a stride past the image: its windows there are Caffe's (MAX -FLT_MAX, AVE signed 0)", async () => {
  // A net's Pooling with stride 65536 (a fuzzed model) ran the kernel out of bounds.
  const cases: Case[] = [
    { planes: 2, size: [9, 7], kernel: [3, 3], pad: [0, 0], stride: [65536, 65536] },
    { planes: 3, size: [6, 10], kernel: [2, 3], pad: [0, 0], stride: [65536, 2] },
    { planes: 1, size: [5, 5], kernel: [2, 2], pad: [1, 1], stride: [1 << 30, 3] },
    { planes: 2, size: [4, 12], kernel: [3, 2], pad: [0, 1], stride: [2, 100000] },
  ];
  for (const [index, c] of cases.entries()) {
    for (const method of ["MAX", "AVE"]) {
      const outSize: [number, number] = [
        pooledSize(c.size[0], c.kernel[0], c.pad[0], c.stride[0]),
        pooledSize(c.size[1], c.kernel[1], c.pad[1], c.stride[1]),
      ];
      const x = randomValues(c.planes * c.size[0] * c.size[1], 90 + index);
      const model = net("x", [1, c.planes, ...c.size], [
        layer("p", "Pooling", ["x"], ["y"], {
          pooling_param: {
            pool: method,
            kernel_h: c.kernel[0],
            kernel_w: c.kernel[1],
            pad_h: c.pad[0],
            pad_w: c.pad[1],
            stride_h: c.stride[0],
            stride_w: c.stride[1],
          },
        }),
      ]);
      const { outputs } = await runNet(model, {
        inputs: new Map([["x", { shape: [1, c.planes, ...c.size], data: x }]]),
      });
      const y = outputs.get("y")!;
      assert.deepEqual(y.shape, [1, c.planes, ...outSize], `${method} ${JSON.stringify(c)}`);
      const expected = method === "MAX" ? caffeMaxPool(x, c, outSize) : caffeAvePool(x, c, outSize);
      const bits = (values: Float32Array) => Array.from(new Uint32Array(values.slice().buffer));
      assert.deepEqual(bits(y.data), bits(expected), `${method} ${JSON.stringify(c)}`);
    }
  }
});
