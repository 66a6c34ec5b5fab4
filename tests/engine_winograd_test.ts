// The float 3x3 convolution through Winograd F(4x4, 3x3) (assembly/engine/winograd.ts) against a
// float64 direct convolution written here, on ragged sizes (H, W not multiples of the 4x4 tile),
// pads 0/1/2, 1..70 channels, groups, batches, bands of tile rows, bias and ReLU; and the
// dispatcher: `convolution` takes the Winograd path for a large 3x3 layer (same bits as when
// forced, other bits than the forced direct form) and the direct (im2col + GEMM) form for a small one.
//
// Tolerance: Winograd rounds float32 sums of transformed values (entries of B^T up to 5, of A^T up
// to 8, of G down to 1/24), so an output's error scales with the inputs its 6x6 tile reads, not
// only its own 3x3 window. For output (co, oh, ow) the bound is 2^-23 * 32 * (sum over ci of
// max |x[ci]| in the tile's reach x sum |w[co, ci]| + |bias[co]|), the reach being input rows
// and columns -pad-3 .. -pad+5 around it (a 6x6 tile starts at most 3 before the window).

import assert from "node:assert/strict";
import { type ConvolutionArgs, engineKernels, type PostOp } from "../src/wasm/engine.ts";
import { randomValues } from "./_builders.ts";

const EPS = 2 ** -23;
const TOLERANCE_ULPS = 32;

interface Case {
  name: string;
  shape: [number, number, number, number];
  outputs: number;
  groups: number;
  pad: [number, number];
  bias: boolean;
  post?: PostOp[];
}

function argsOf(c: Case, seed: number): ConvolutionArgs {
  const [batch, channels, height, width] = c.shape;
  const outH = height + 2 * c.pad[0] - 2;
  const outW = width + 2 * c.pad[1] - 2;
  return {
    x: randomValues(batch * channels * height * width, seed),
    shape: c.shape,
    weights: randomValues(c.outputs * (channels / c.groups) * 9, seed + 1),
    bias: c.bias ? randomValues(c.outputs, seed + 2) : null,
    outputs: c.outputs,
    groups: c.groups,
    window: { kernel: [3, 3], pad: c.pad, stride: [1, 1], dilation: [1, 1] },
    outSize: [outH, outW],
    post: c.post,
  };
}

/** Float64 direct convolution (+ bias) and a bound on the Winograd error of every output. */
function reference(args: ConvolutionArgs): { y: Float64Array; bound: Float64Array } {
  const [batch, channels, height, width] = args.shape;
  const [outH, outW] = args.outSize;
  const [padH, padW] = args.window.pad;
  const { groups, outputs } = args;
  const cinGroup = channels / groups;
  const coutGroup = outputs / groups;
  const w = args.weights as Float32Array;
  const b = args.bias as Float32Array | null;
  const y = new Float64Array(batch * outputs * outH * outW);
  const bound = new Float64Array(y.length);
  const xAt = (n: number, c: number, ih: number, iw: number) =>
    ih < 0 || ih >= height || iw < 0 || iw >= width
      ? 0
      : args.x[((n * channels + c) * height + ih) * width + iw];
  for (let n = 0; n < batch; n++) {
    for (let co = 0; co < outputs; co++) {
      const g = Math.floor(co / coutGroup);
      for (let oh = 0; oh < outH; oh++) {
        for (let ow = 0; ow < outW; ow++) {
          let sum = b === null ? 0 : b[co];
          let magnitude = b === null ? 0 : Math.abs(b[co]);
          for (let ci = 0; ci < cinGroup; ci++) {
            const c = g * cinGroup + ci;
            let weightSum = 0;
            for (let i = 0; i < 3; i++) {
              for (let j = 0; j < 3; j++) {
                const tap = w[((co * cinGroup + ci) * 3 + i) * 3 + j];
                sum += tap * xAt(n, c, oh - padH + i, ow - padW + j);
                weightSum += Math.abs(tap);
              }
            }
            let reach = 0;
            for (let ih = oh - padH - 3; ih <= oh - padH + 5; ih++) {
              for (let iw = ow - padW - 3; iw <= ow - padW + 5; iw++) {
                reach = Math.max(reach, Math.abs(xAt(n, c, ih, iw)));
              }
            }
            magnitude += reach * weightSum;
          }
          const index = ((n * outputs + co) * outH + oh) * outW + ow;
          y[index] = sum;
          bound[index] = TOLERANCE_ULPS * EPS * magnitude;
        }
      }
    }
  }
  return { y, bound };
}

/** The post ops as the engine's own kernels define them, in float64 (relu / affine only). */
function applyPost(y: Float64Array, post: PostOp[], inner: number, channels: number): void {
  for (const op of post) {
    for (let i = 0; i < y.length; i++) {
      const c = Math.floor(i / inner) % channels;
      if (op.kind === "relu") y[i] = Math.max(y[i], 0) + op.slope * Math.min(y[i], 0);
      else if (op.kind === "affine") {
        y[i] = y[i] * (op.scale === null ? 1 : op.scale[c]) + (op.bias === null ? 0 : op.bias[c]);
      } else throw new Error(`no reference for ${op.kind}`);
    }
  }
}

function assertClose(
  actual: Float32Array,
  expected: Float64Array,
  bound: Float64Array,
  name: string,
): void {
  assert.equal(actual.length, expected.length, name);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const error = Math.abs(actual[i] - expected[i]);
    assert.ok(
      error <= bound[i],
      `${name}: output ${i} is ${actual[i]}, expected ${expected[i]} within ${bound[i]}`,
    );
    worst = Math.max(worst, error / bound[i]);
  }
  // The bound is not vacuous: the worst output uses a visible part of it.
  assert.ok(worst > 1e-3, `${name}: worst error ${worst} of the bound`);
}

const CASES: Case[] = [
  {
    name: "1 channel, 5x7, pad 0",
    shape: [1, 1, 5, 7],
    outputs: 1,
    groups: 1,
    pad: [0, 0],
    bias: false,
  },
  {
    name: "3 -> 5, 9x11, pad 1, bias",
    shape: [1, 3, 9, 11],
    outputs: 5,
    groups: 1,
    pad: [1, 1],
    bias: true,
  },
  {
    name: "17 -> 70, 13x6, pad 2, bias, ReLU",
    shape: [1, 17, 13, 6],
    outputs: 70,
    groups: 1,
    pad: [2, 2],
    bias: true,
    post: [{ kind: "relu", slope: 0 }],
  },
  {
    name: "70 -> 9, 19x21 (two groups of 4 tiles across and a ragged one), pad (1, 2), leaky ReLU",
    shape: [1, 70, 19, 21],
    outputs: 9,
    groups: 1,
    pad: [1, 2],
    bias: true,
    post: [{ kind: "relu", slope: 0.1 }],
  },
  {
    name: "batch 2, 2 groups of 6 -> 4, 8x8, pad 1",
    shape: [2, 12, 8, 8],
    outputs: 8,
    groups: 2,
    pad: [1, 1],
    bias: true,
  },
  {
    name: "24 -> 24, 80x30 (two bands of tile rows), pad 1, ReLU then a fused Scale",
    shape: [1, 24, 80, 30],
    outputs: 24,
    groups: 1,
    pad: [1, 1],
    bias: true,
    post: [
      { kind: "relu", slope: 0 },
      {
        kind: "affine",
        view: { outer: 1, channels: 24, inner: 80 * 30 },
        scale: randomValues(24, 9),
        bias: randomValues(24, 10),
      },
    ],
  },
  {
    name: "2 -> 3, 3x3 input, pad 0 (one output)",
    shape: [1, 2, 3, 3],
    outputs: 3,
    groups: 1,
    pad: [0, 0],
    bias: true,
  },
];

for (const [index, c] of CASES.entries()) {
  Deno.test(`winograd: ${c.name} matches a float64 direct convolution`, async () => {
    const kernels = await engineKernels();
    const args = argsOf(c, 100 + index * 7);
    const { y, bound } = reference(args);
    const [outH, outW] = args.outSize;
    applyPost(y, c.post ?? [], outH * outW, c.outputs);
    // A fused Scale multiplies the error bound by |scale|; it is <= 1 here.
    assertClose(kernels.convolution({ ...args, algorithm: "winograd" }), y, bound, c.name);
  });
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((value, i) => value === y[i]);
}

Deno.test("winograd: convolution takes the Winograd path for a 64 -> 64 3x3 layer on 20x20", async () => {
  const kernels = await engineKernels();
  const c: Case = {
    name: "64 -> 64",
    shape: [1, 64, 20, 20],
    outputs: 64,
    groups: 1,
    pad: [1, 1],
    bias: true,
    post: [{ kind: "relu", slope: 0 }],
  };
  const args = argsOf(c, 7);
  const picked = kernels.convolution(args);
  assert.ok(
    sameBits(picked, kernels.convolution({ ...args, algorithm: "winograd" })),
    "same bits as the Winograd kernel",
  );
  const direct = kernels.convolution({ ...args, algorithm: "direct" });
  assert.ok(!sameBits(picked, direct), "different rounding from the direct form");
  const { y, bound } = reference(args);
  applyPost(y, c.post ?? [], 20 * 20, 64);
  assertClose(picked, y, bound, c.name);
  assertClose(direct, y, bound, `${c.name} direct`);
});

Deno.test("winograd: convolution keeps the direct form for 3 input channels and a 4x4 output", async () => {
  const kernels = await engineKernels();
  const small: Case[] = [
    { name: "3 -> 8", shape: [1, 3, 20, 20], outputs: 8, groups: 1, pad: [1, 1], bias: true },
    {
      name: "64 -> 64 on 4x4",
      shape: [1, 64, 4, 4],
      outputs: 64,
      groups: 1,
      pad: [1, 1],
      bias: true,
    },
  ];
  for (const c of small) {
    const args = argsOf(c, 8);
    const picked = kernels.convolution(args);
    assert.ok(sameBits(picked, kernels.convolution({ ...args, algorithm: "direct" })), c.name);
    assert.ok(!sameBits(picked, kernels.convolution({ ...args, algorithm: "winograd" })), c.name);
  }
});

Deno.test("winograd: the kernel refuses other windows and the integer form", async () => {
  const kernels = await engineKernels();
  const args = argsOf(
    { name: "", shape: [1, 2, 6, 6], outputs: 2, groups: 1, pad: [0, 0], bias: false },
    3,
  );
  const strided = { ...args, window: { ...args.window, stride: [2, 2] as [number, number] } };
  const winograd = { algorithm: "winograd" } as const;
  assert.throws(
    () => kernels.convolution({ ...strided, outSize: [2, 2], ...winograd }),
    RangeError,
  );
  const integer = { ...args, weights: new Int8Array(36), offsetD: 0, ...winograd };
  assert.throws(() => kernels.convolution(integer), RangeError);
  assert.throws(() => kernels.deconvolution({ ...args, ...winograd }), RangeError);
});
