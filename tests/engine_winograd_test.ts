// Float convolutions through Winograd (assembly/engine/winograd.ts): F(4x4, 3x3) and F(2x2, 3x3)
// for 3x3 windows and F(2x2, 5x5) for 5x5 ones, against a float64 direct convolution written
// here, on ragged sizes (H, W not multiples of the tile), pads 0/1/2, 1..130 channels, groups,
// batches, bands of tile rows, bias and ReLU; and the dispatcher: `convolution` takes a Winograd
// form for a large layer, F(2x2, 3x3) for a small plane (same bits as when forced, other bits than
// the forced direct form and the other form) and the direct (im2col + GEMM) form for a tiny one.
//
// Tolerance, derived: the kernel evaluates y = A^T [sum over ci of (G g G^T) . (B^T d B)] A + bias
// with +, -, and products by constants, every step rounded to float32 (unit roundoff u = 2^-24;
// the constants 1/6 and 1/24 rounded too). Such an evaluation equals the exact one with every term
// perturbed by at most gamma_n = n u / (1 - n u), n the roundings along the longest path, so
// |error| <= gamma_n * (|A^T| [sum over ci of (|G| |g| |G^T|) . (|B^T| |d| |B|)] |A| + |bias|)
// (every entry of the transforms is one path of the code's sums, so the absolute expression is
// the one of the absolute matrices). Roundings per path: input transform 2 passes x 3 (a product
// by 5 and two sums), weight transform 2 passes x 5 (three sums of taps, the product by the
// rounded factor counted twice), the matrix product cinGroup + 1 (one accumulator, in order of
// ci), output transform 2 passes x 3, bias 1: n = cinGroup + 24 (F(2x2, 3x3), on the points 0, 1,
// -1 and infinity: 2 x 1 + 2 x 3 + cinGroup + 1 + 2 x 2 + 1); the test takes n = cinGroup + 32.
// A fused ReLU (slope <= 1) keeps the bound; a fused affine y s + b scales it by |s| and adds
// 2u (|y s| + |b|). The transform matrices below are built from the points 0, 1, -1, 2, -2,
// infinity (and 0, 1, -1, infinity) here; they only shape the bound, the expected values are the
// direct convolution's.
// The bound is a worst case (rounding errors of random sign grow like sqrt(n), not n): the
// worst output uses ~1e-3 of it, and it stays below 5 % of the largest output, so a wrong
// transform entry (errors of the outputs' own size) cannot hide in it (checked once by hand: 1/25
// for 1/24 in one row of the 5x5 G fails every 5x5 case). The matrix product of the
// relaxed build fuses multiply-adds (fewer roundings): the same bound holds for both builds.

import assert from "node:assert/strict";
import { type ConvolutionArgs, engineKernels, type PostOp } from "../src/wasm/engine.ts";
import { randomValues } from "./_builders.ts";
import { ENGINE_BUILDS, withEngineBuild } from "./_engine_builds.ts";

const UNIT_ROUNDOFF = 2 ** -24;
/** Roundings along a path besides the matrix product's cinGroup (see the header). */
const PATH_ROUNDINGS = 32;

interface Case {
  name: string;
  /** 3 or 5 (3 when absent). */
  kernel?: 3 | 5;
  /** Outputs across a tile: 2 for F(2x2, 3x3) (default: 4 for 3x3 windows, 2 for 5x5). */
  tile?: 2 | 4;
  shape: [number, number, number, number];
  outputs: number;
  groups: number;
  pad: [number, number];
  bias: boolean;
  post?: PostOp[];
}

function argsOf(c: Case, seed: number): ConvolutionArgs {
  const [batch, channels, height, width] = c.shape;
  const kernel = c.kernel ?? 3;
  const outH = height + 2 * c.pad[0] - kernel + 1;
  const outW = width + 2 * c.pad[1] - kernel + 1;
  return {
    x: randomValues(batch * channels * height * width, seed),
    shape: c.shape,
    weights: randomValues(c.outputs * (channels / c.groups) * kernel * kernel, seed + 1),
    bias: c.bias ? randomValues(c.outputs, seed + 2) : null,
    outputs: c.outputs,
    groups: c.groups,
    window: { kernel: [kernel, kernel], pad: c.pad, stride: [1, 1], dilation: [1, 1] },
    outSize: [outH, outW],
    post: c.post,
  };
}

/** The finite points of a form's transformed domain (one more point: infinity) and G's factors. */
const POINTS_OF: Record<4 | 6, { points: number[]; factors: number[] }> = {
  6: { points: [0, 1, -1, 2, -2], factors: [1 / 4, 1 / 6, 1 / 6, 1 / 24, 1 / 24] },
  4: { points: [0, 1, -1], factors: [1, 1 / 2, 1 / 2] },
};

/** |G| (s x r): row i is |f_i| |p_i|^k; the infinity row 0..0 1. */
function absoluteG(side: 4 | 6, r: number): number[][] {
  const { points, factors } = POINTS_OF[side];
  const rows = points.map((p, i) =>
    Array.from({ length: r }, (_, k) => factors[i] * Math.abs(p) ** k)
  );
  return [...rows, Array.from({ length: r }, (_, k) => (k === r - 1 ? 1 : 0))];
}

/** |A^T| (m x s): row j is |p|^j, and 1 for infinity in the last row. */
function absoluteAT(side: 4 | 6, m: number): number[][] {
  return Array.from(
    { length: m },
    (_, j) => [...POINTS_OF[side].points.map((p) => Math.abs(p) ** j), j === m - 1 ? 1 : 0],
  );
}

/** |B^T| (s x s) of Lavin & Gray's F(4x4, 3x3) and F(2x2, 3x3), the same for every form on these points. */
const ABSOLUTE_BT: Record<4 | 6, number[][]> = {
  6: [
    [4, 0, 5, 0, 1, 0],
    [0, 4, 4, 1, 1, 0],
    [0, 4, 4, 1, 1, 0],
    [0, 2, 1, 2, 1, 0],
    [0, 2, 1, 2, 1, 0],
    [0, 4, 0, 5, 0, 1],
  ],
  4: [
    [1, 0, 1, 0],
    [0, 1, 1, 0],
    [0, 1, 1, 0],
    [0, 1, 0, 1],
  ],
};

/** The algorithm that forces a case's Winograd form. */
function forcedAlgorithm(c: Case): "winograd" | "winograd2x2" {
  return c.tile === 2 && (c.kernel ?? 3) === 3 ? "winograd2x2" : "winograd";
}

/** left (p x q) . middle (q x q) . right^T (for right p x q): p x p. */
function sandwich(left: number[][], middle: number[][], right: number[][]): number[][] {
  const inner = left.map((row) =>
    middle[0].map((_, k) => row.reduce((sum, value, j) => sum + value * middle[j][k], 0))
  );
  return inner.map((row) =>
    right.map((other) => row.reduce((sum, value, k) => sum + value * other[k], 0))
  );
}

/**
 * Float64 direct convolution (+ bias) and a bound on the error of every output of the Winograd
 * form of `tile` outputs across.
 */
function reference(args: ConvolutionArgs, tile: 2 | 4): { y: Float64Array; bound: Float64Array } {
  const [batch, channels, height, width] = args.shape;
  const [outH, outW] = args.outSize;
  const [padH, padW] = args.window.pad;
  const r = args.window.kernel[0];
  const m = tile;
  const side = (m + r - 1) as 4 | 6;
  const { groups, outputs } = args;
  const cinGroup = channels / groups;
  const coutGroup = outputs / groups;
  const w = args.weights as Float32Array;
  const b = args.bias as Float32Array | null;
  const y = new Float64Array(batch * outputs * outH * outW);
  const bound = new Float64Array(y.length);
  const gamma = (cinGroup + PATH_ROUNDINGS) * UNIT_ROUNDOFF /
    (1 - (cinGroup + PATH_ROUNDINGS) * UNIT_ROUNDOFF);
  const g = absoluteG(side, r);
  const at = absoluteAT(side, m);
  const xAt = (n: number, c: number, ih: number, iw: number) =>
    ih < 0 || ih >= height || iw < 0 || iw >= width
      ? 0
      : args.x[((n * channels + c) * height + ih) * width + iw];
  // |G| |g| |G^T| per [co][ci].
  const kernels = Array.from(
    { length: outputs },
    (_, co) =>
      Array.from({ length: cinGroup }, (_, ci) => {
        const taps = Array.from(
          { length: r },
          (_, i) =>
            Array.from(
              { length: r },
              (_, j) => Math.abs(w[((co * cinGroup + ci) * r + i) * r + j]),
            ),
        );
        return sandwich(g, taps, g);
      }),
  );
  for (let n = 0; n < batch; n++) {
    for (let ty = 0; ty * m < outH; ty++) {
      for (let tx = 0; tx * m < outW; tx++) {
        // |B^T| |d| |B| per input channel of the tile (s x s inputs from row ty*m - padH).
        const inputs = Array.from({ length: channels }, (_, c) => {
          const d = Array.from(
            { length: side },
            (_, i) =>
              Array.from(
                { length: side },
                (_, j) => Math.abs(xAt(n, c, ty * m - padH + i, tx * m - padW + j)),
              ),
          );
          return sandwich(ABSOLUTE_BT[side], d, ABSOLUTE_BT[side]);
        });
        for (let co = 0; co < outputs; co++) {
          const group = Math.floor(co / coutGroup);
          const products = Array.from({ length: side }, () => new Array(side).fill(0));
          for (let ci = 0; ci < cinGroup; ci++) {
            const u = kernels[co][ci];
            const v = inputs[group * cinGroup + ci];
            for (let p = 0; p < side; p++) {
              for (let q = 0; q < side; q++) products[p][q] += u[p][q] * v[p][q];
            }
          }
          const magnitudes = sandwich(at, products, at);
          for (let i = 0; i < m && ty * m + i < outH; i++) {
            for (let j = 0; j < m && tx * m + j < outW; j++) {
              const oh = ty * m + i;
              const ow = tx * m + j;
              let sum = b === null ? 0 : b[co];
              for (let ci = 0; ci < cinGroup; ci++) {
                const c = group * cinGroup + ci;
                for (let ki = 0; ki < r; ki++) {
                  for (let kj = 0; kj < r; kj++) {
                    const tap = w[((co * cinGroup + ci) * r + ki) * r + kj];
                    sum += tap * xAt(n, c, oh - padH + ki, ow - padW + kj);
                  }
                }
              }
              const index = ((n * outputs + co) * outH + oh) * outW + ow;
              y[index] = sum;
              bound[index] = gamma * (magnitudes[i][j] + (b === null ? 0 : Math.abs(b[co])));
            }
          }
        }
      }
    }
  }
  return { y, bound };
}

/**
 * The post ops as the engine's own kernels define them, in float64 (relu / affine only), and
 * their effect on the error bound (see the header).
 */
function applyPost(
  y: Float64Array,
  bound: Float64Array,
  post: PostOp[],
  inner: number,
  channels: number,
): void {
  for (const op of post) {
    for (let i = 0; i < y.length; i++) {
      const c = Math.floor(i / inner) % channels;
      if (op.kind === "relu") {
        assert.ok(op.slope <= 1);
        y[i] = Math.max(y[i], 0) + op.slope * Math.min(y[i], 0);
      } else if (op.kind === "affine") {
        const scale = op.scale === null ? 1 : op.scale[c];
        const shift = op.bias === null ? 0 : op.bias[c];
        y[i] = y[i] * scale + shift;
        bound[i] = bound[i] * Math.abs(scale) +
          2 * UNIT_ROUNDOFF * (Math.abs(y[i] - shift) + Math.abs(shift));
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
  // The bound is not vacuous: the worst output uses a visible part of it, and it stays far below
  // the outputs' size.
  assert.ok(worst > 1e-4, `${name}: worst error ${worst} of the bound`);
  const largest = expected.reduce((most, value) => Math.max(most, Math.abs(value)), 0);
  const widest = bound.reduce((most, value) => Math.max(most, value), 0);
  assert.ok(widest < 0.05 * largest, `${name}: bound ${widest} against outputs up to ${largest}`);
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

/** 5x5 windows, F(2x2, 5x5): outputs not a multiple of 2, pads 0/1/2, small planes. */
const CASES_5X5: Case[] = [
  {
    name: "5x5: 1 channel, 7x9, pad 0 (3x5 outputs)",
    kernel: 5,
    shape: [1, 1, 7, 9],
    outputs: 1,
    groups: 1,
    pad: [0, 0],
    bias: false,
  },
  {
    name: "5x5: 3 -> 5, 9x11, pad 2, bias",
    kernel: 5,
    shape: [1, 3, 9, 11],
    outputs: 5,
    groups: 1,
    pad: [2, 2],
    bias: true,
  },
  {
    name: "5x5: 20 -> 50, 12x12, pad 0, bias (LeNet's conv2)",
    kernel: 5,
    shape: [1, 20, 12, 12],
    outputs: 50,
    groups: 1,
    pad: [0, 0],
    bias: true,
  },
  {
    name: "5x5: 32 -> 32, 16x16, pad 2, bias, ReLU (CIFAR-10's conv2)",
    kernel: 5,
    shape: [1, 32, 16, 16],
    outputs: 32,
    groups: 1,
    pad: [2, 2],
    bias: true,
    post: [{ kind: "relu", slope: 0 }],
  },
  {
    name:
      "5x5: 70 -> 9, 19x21 (two groups of 4 tiles across and a ragged one), pad (1, 2), leaky ReLU",
    kernel: 5,
    shape: [1, 70, 19, 21],
    outputs: 9,
    groups: 1,
    pad: [1, 2],
    bias: true,
    post: [{ kind: "relu", slope: 0.1 }],
  },
  {
    name: "5x5: batch 2, 2 groups of 6 -> 4, 8x8, pad 1",
    kernel: 5,
    shape: [2, 12, 8, 8],
    outputs: 8,
    groups: 2,
    pad: [1, 1],
    bias: true,
  },
  {
    name: "5x5: 24 -> 24, 44x30 (three bands of tile rows), pad 2, ReLU then a fused Scale",
    kernel: 5,
    shape: [1, 24, 44, 30],
    outputs: 24,
    groups: 1,
    pad: [2, 2],
    bias: true,
    post: [
      { kind: "relu", slope: 0 },
      {
        kind: "affine",
        view: { outer: 1, channels: 24, inner: 44 * 30 },
        scale: randomValues(24, 11),
        bias: randomValues(24, 12),
      },
    ],
  },
  {
    name: "5x5: 130 -> 6, 6x7, pad 1 (many channels, 4x5 outputs)",
    kernel: 5,
    shape: [1, 130, 6, 7],
    outputs: 6,
    groups: 1,
    pad: [1, 1],
    bias: true,
  },
  {
    name: "5x5: 8 -> 8, 2x3 input, pad 2 (a plane smaller than the window)",
    kernel: 5,
    shape: [1, 8, 2, 3],
    outputs: 8,
    groups: 1,
    pad: [2, 2],
    bias: true,
  },
  {
    name: "5x5: 2 -> 3, 5x5 input, pad 0 (one output)",
    kernel: 5,
    shape: [1, 2, 5, 5],
    outputs: 3,
    groups: 1,
    pad: [0, 0],
    bias: true,
  },
];

/** The tile of a case's form: 4 for F(4x4, 3x3), 2 for F(2x2, 3x3) and F(2x2, 5x5). */
function tileOf(c: Case): 2 | 4 {
  return c.tile ?? ((c.kernel ?? 3) === 3 ? 4 : 2);
}

/** The 3x3 cases through F(2x2, 3x3). */
const CASES_2X2: Case[] = CASES.map((c) => ({ ...c, name: `F(2x2, 3x3): ${c.name}`, tile: 2 }));

for (const [index, c] of [...CASES, ...CASES_5X5, ...CASES_2X2].entries()) {
  Deno.test(`winograd: ${c.name} matches a float64 direct convolution (both builds)`, async () => {
    const args = argsOf(c, 100 + index * 7);
    const { y, bound } = reference(args, tileOf(c));
    const [outH, outW] = args.outSize;
    applyPost(y, bound, c.post ?? [], outH * outW, c.outputs);
    for (const build of ENGINE_BUILDS) {
      await withEngineBuild(build, async () => {
        const kernels = await engineKernels();
        const actual = kernels.convolution({ ...args, algorithm: forcedAlgorithm(c) });
        assertClose(actual, y, bound, `${c.name} (${build})`);
      });
    }
  });
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((value, i) => value === y[i]);
}

/** Layers `convolution` runs through Winograd by itself, in the form of their `tile`. */
const PICKED: Case[] = [
  {
    name: "32 -> 32 3x3 on 8x8, pad 1 (F(2x2, 3x3))",
    tile: 2,
    shape: [1, 32, 8, 8],
    outputs: 32,
    groups: 1,
    pad: [1, 1],
    bias: true,
  },
  {
    name: "512 -> 512 3x3 on 7x7, pad 1, ReLU (ResNet-50's last stage, F(2x2, 3x3))",
    tile: 2,
    shape: [1, 512, 7, 7],
    outputs: 512,
    groups: 1,
    pad: [1, 1],
    bias: true,
    post: [{ kind: "relu", slope: 0 }],
  },
  {
    name: "64 -> 64 3x3 on 20x20",
    shape: [1, 64, 20, 20],
    outputs: 64,
    groups: 1,
    pad: [1, 1],
    bias: true,
    post: [{ kind: "relu", slope: 0 }],
  },
  {
    name: "20 -> 50 5x5 on 12x12 (LeNet's conv2)",
    kernel: 5,
    shape: [1, 20, 12, 12],
    outputs: 50,
    groups: 1,
    pad: [0, 0],
    bias: true,
  },
  {
    name: "32 -> 64 5x5 on 8x8, pad 2, ReLU (CIFAR-10's conv3)",
    kernel: 5,
    shape: [1, 32, 8, 8],
    outputs: 64,
    groups: 1,
    pad: [2, 2],
    bias: true,
    post: [{ kind: "relu", slope: 0 }],
  },
];

for (const c of PICKED) {
  Deno.test(`winograd: convolution takes the Winograd path for ${c.name}`, async () => {
    const kernels = await engineKernels();
    const args = argsOf(c, 7);
    const picked = kernels.convolution(args);
    assert.ok(
      sameBits(picked, kernels.convolution({ ...args, algorithm: forcedAlgorithm(c) })),
      "same bits as the Winograd kernel of its form",
    );
    const direct = kernels.convolution({ ...args, algorithm: "direct" });
    assert.ok(!sameBits(picked, direct), "different rounding from the direct form");
    if ((c.kernel ?? 3) === 3) {
      const other = c.tile === 2 ? "winograd" : "winograd2x2";
      const otherForm = kernels.convolution({ ...args, algorithm: other });
      assert.ok(!sameBits(picked, otherForm), "different rounding from the other form");
    }
    const { y, bound } = reference(args, tileOf(c));
    const [outH, outW] = args.outSize;
    applyPost(y, bound, c.post ?? [], outH * outW, c.outputs);
    assertClose(picked, y, bound, c.name);
    assertClose(direct, y, bound, `${c.name} direct`);
  });
}

Deno.test("winograd: convolution keeps the direct form for 3 input channels and tiny outputs", async () => {
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
    {
      name: "5x5, 3 -> 32 on 32x32 (CIFAR-10's conv1)",
      kernel: 5,
      shape: [1, 3, 32, 32],
      outputs: 32,
      groups: 1,
      pad: [2, 2],
      bias: true,
    },
    {
      name: "5x5, 128 -> 128 on 2x2",
      kernel: 5,
      shape: [1, 128, 2, 2],
      outputs: 128,
      groups: 1,
      pad: [2, 2],
      bias: true,
    },
  ];
  for (const c of small) {
    const args = argsOf(c, 8);
    const picked = kernels.convolution(args);
    assert.ok(sameBits(picked, kernels.convolution({ ...args, algorithm: "direct" })), c.name);
    assert.ok(!sameBits(picked, kernels.convolution({ ...args, algorithm: "winograd" })), c.name);
    if ((c.kernel ?? 3) === 3) {
      const small = kernels.convolution({ ...args, algorithm: "winograd2x2" });
      assert.ok(!sameBits(picked, small), `${c.name}: not F(2x2, 3x3)`);
    }
  }
});

Deno.test("winograd: the kernel refuses other windows (stride 2, 7x7, integer 7x7; F(2x2, 3x3) 5x5)", async () => {
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
  const sevenBySeven = {
    ...args,
    shape: [1, 2, 9, 9] as [number, number, number, number],
    x: new Float32Array(2 * 81),
    weights: new Float32Array(2 * 2 * 49),
    window: { ...args.window, kernel: [7, 7] as [number, number] },
    outSize: [3, 3] as [number, number],
  };
  assert.equal(kernels.convolution(sevenBySeven).length, 2 * 3 * 3, "a valid 7x7 layer");
  assert.throws(() => kernels.convolution({ ...sevenBySeven, ...winograd }), RangeError);
  // The integer form has a Winograd for 3x3 windows only (tests/engine_int_winograd_test.ts).
  const integer = { ...sevenBySeven, weights: new Int8Array(2 * 2 * 49), offsetD: 0, ...winograd };
  assert.throws(() => kernels.convolution(integer), RangeError);
  assert.throws(() => kernels.deconvolution({ ...args, ...winograd }), RangeError);
  const fiveByFive = {
    ...sevenBySeven,
    weights: new Float32Array(2 * 2 * 25),
    window: { ...args.window, kernel: [5, 5] as [number, number] },
    outSize: [5, 5] as [number, number],
  };
  assert.equal(kernels.convolution({ ...fiveByFive, ...winograd }).length, 2 * 5 * 5);
  const small = { algorithm: "winograd2x2" } as const;
  assert.throws(() => kernels.convolution({ ...fiveByFive, ...small }), RangeError);
  assert.throws(() => kernels.convolution({ ...strided, outSize: [2, 2], ...small }), RangeError);
});
