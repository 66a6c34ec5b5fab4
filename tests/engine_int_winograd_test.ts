// The deploy model's integer 3x3 and 5x5 stride-1 convolutions through the exact integer Winograd
// F(2x2, 3x3) (assembly/engine/intwinograd.ts; a 5x5 window as four 3x3 blocks) against the
// int16-pair direct form and against a plain integer loop written here (every sum is an integer
// far below 2^53, so float64 holds it exactly): the outputs must be the same bits, not merely
// close. Random shapes reach odd output sizes, 1x1 / 2x2 / 3x3 planes, padding 0-2 (also
// unequal; 0-4 for 5x5), groups, batch 2, channel counts odd and past the GEMM's 512-product
// blocks, extreme values (differences ±255, weights -128/127), the Quant layer's quantization in
// the kernel, and a DeQuant scale with ReLU / PReLU after it; two cases put a sum next to 2^29,
// the bound up to which the Winograd form is exact.

import assert from "node:assert/strict";
import {
  type ConvolutionArgs,
  engineKernels,
  intWinogradWins,
  type PostOp,
} from "../src/wasm/engine.ts";
import { ENGINE_BUILDS, withEngineBuild } from "./_engine_builds.ts";

const f32 = Math.fround;

/** Integers in [low, high] from a 32-bit LCG (test data only). */
function integers(count: number, seed: number, low: number, high: number): number[] {
  let state = (seed * 2654435761 + 12345) >>> 0;
  return Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return low + ((state >>> 8) % (high - low + 1));
  });
}

interface Case {
  /** The window's size: 3 or 5. */
  kernel: 3 | 5;
  batch: number;
  cin: number;
  cout: number;
  groups: number;
  height: number;
  width: number;
  pad: [number, number];
  offsetD: number;
  extreme: boolean;
  quantScale?: number;
  post: "none" | "dequant" | "dequant relu" | "dequant prelu";
}

/** The convolution's arguments for case `c` (seeded by `seed`) and its q values. */
function argsOf(c: Case, seed: number): { args: ConvolutionArgs; q: number[]; w: number[] } {
  const reach = c.kernel - 1;
  const outSize: [number, number] = [
    c.height + 2 * c.pad[0] - reach,
    c.width + 2 * c.pad[1] - reach,
  ];
  const count = c.batch * c.cin * c.height * c.width;
  const weightCount = c.cout * (c.cin / c.groups) * c.kernel * c.kernel;
  const far = c.offsetD >= 0 ? -128 : 127;
  const q = c.extreme
    ? integers(count, seed, 0, 4).map((v) => v === 0 ? c.offsetD : far)
    : integers(count, seed, -128, 127);
  const w = c.extreme
    ? integers(weightCount, seed + 1, 0, 1).map((bit) => bit ? 127 : -128)
    : integers(weightCount, seed + 1, -128, 127);
  const bias = Int32Array.from(integers(c.cout, seed + 2, -100000, 100000));
  const x = c.quantScale === undefined
    ? Float32Array.from(q)
    : Float32Array.from(q, (v, i) => (v - c.offsetD + (i % 5 - 2) * 0.2) / c.quantScale!);
  const layout = { outer: c.batch, channels: c.cout, inner: outSize[0] * outSize[1] };
  const scales = Float32Array.from(integers(c.cout, seed + 3, 1, 999), (v) => v / 131072);
  const slopes = Float32Array.from(integers(c.cout, seed + 4, -50, 50), (v) => v / 32);
  const post: PostOp[] = c.post === "none"
    ? []
    : [{ kind: "affine", view: layout, scale: scales, bias: null }];
  if (c.post === "dequant relu") post.push({ kind: "relu", slope: 0 });
  if (c.post === "dequant prelu") post.push({ kind: "prelu", view: layout, slopes });
  const args: ConvolutionArgs = {
    x,
    offsetD: c.offsetD,
    quantScale: c.quantScale,
    shape: [c.batch, c.cin, c.height, c.width],
    weights: Int8Array.from(w),
    bias,
    outputs: c.cout,
    groups: c.groups,
    window: { kernel: [c.kernel, c.kernel], pad: c.pad, stride: [1, 1], dilation: [1, 1] },
    outSize,
    post,
  };
  return { args, q, w };
}

/** The Quant layer's q of float x: clamp(rint(f32(x * S)) + offset_d, -128, 127), ties to even. */
function quantized(x: number, quantScale: number, offsetD: number): number {
  const scaled = f32(x * quantScale);
  const floor = Math.floor(scaled);
  const rounded = scaled - floor === 0.5
    ? (floor % 2 === 0 ? floor : floor + 1)
    : Math.round(scaled);
  return Math.min(127, Math.max(-128, rounded + offsetD));
}

/** The expected outputs of case `c`: exact integer sums, + bias, then the post operations. */
function expected(c: Case, args: ConvolutionArgs, q: number[], w: number[]): number[] {
  const [outH, outW] = args.outSize;
  const qs = c.quantScale === undefined
    ? q
    : Array.from(args.x, (v) => quantized(v, c.quantScale!, c.offsetD));
  const cg = c.cin / c.groups;
  const og = c.cout / c.groups;
  const bias = args.bias as Int32Array;
  const post = args.post ?? [];
  const y: number[] = [];
  for (let n = 0; n < c.batch; n++) {
    for (let o = 0; o < c.cout; o++) {
      const g = Math.floor(o / og);
      for (let i = 0; i < outH; i++) {
        for (let j = 0; j < outW; j++) {
          let sum = 0;
          const k = c.kernel;
          for (let ch = 0; ch < cg; ch++) {
            for (let a = 0; a < k; a++) {
              const ih = i - c.pad[0] + a;
              if (ih < 0 || ih >= c.height) continue;
              for (let b = 0; b < k; b++) {
                const iw = j - c.pad[1] + b;
                if (iw < 0 || iw >= c.width) continue;
                const value = qs[((n * c.cin + g * cg + ch) * c.height + ih) * c.width + iw];
                sum += w[((o * cg + ch) * k + a) * k + b] * (value - c.offsetD);
              }
            }
          }
          let value = f32(sum + bias[o]);
          for (const op of post) {
            if (op.kind === "affine") value = f32(value * op.scale![o]) + 0;
            if (op.kind === "relu") value = value > 0 ? value : 0;
            if (op.kind === "prelu") value = value > 0 ? value : f32(op.slopes[o] * value) + 0;
          }
          y.push(value);
        }
      }
    }
  }
  return y;
}

/** Random cases of `kernel` x `kernel` windows: sizes, pads, channel counts, value kinds. */
function randomCases(count: number, seed: number, kernel: 3 | 5): Case[] {
  const draws = integers(count * 12, seed, 0, 1 << 20);
  const pick = <T>(options: readonly T[], draw: number): T => options[draw % options.length];
  return Array.from({ length: count }, (_, i) => {
    const d = draws.slice(i * 12, i * 12 + 12);
    const groups = pick([1, 1, 1, 2], d[0]);
    const cin = groups * pick(kernel === 5 ? [2, 3, 4, 7, 13, 33] : [4, 5, 7, 8, 13, 33, 64], d[1]);
    const cout = groups * pick([4, 5, 6, 9, 17], d[2]);
    const pads = kernel === 3 ? [0, 1, 1, 2] : [0, 1, 2, 2, 3, 4];
    const pad: [number, number] = [pick(pads, d[3]), pick(pads, d[4])];
    // Planes smaller than the window need a pad to have outputs; the others any.
    const smallest = (p: number) => Math.max(1, kernel - 2 * p);
    const height = smallest(pad[0]) + pick([0, 0, 1, 2, 3, 6, 10], d[5]);
    const width = smallest(pad[1]) + pick([0, 1, 2, 4, 7, 12, 18, 29], d[6]);
    return {
      kernel,
      batch: pick([1, 1, 2], d[7]),
      cin,
      cout,
      groups,
      height,
      width,
      pad,
      offsetD: pick([-128, -3, 0, 5, 127], d[8]),
      extreme: d[9] % 3 === 0,
      quantScale: d[10] % 4 === 0 ? 41.5 : undefined,
      post: pick(["none", "dequant", "dequant relu", "dequant prelu"] as const, d[11]),
    };
  });
}

/** Extreme-valued cases of planes [height, width] padded by `pad` on every side. */
function smallPlanes(kernel: 3 | 5, planes: number[][], offsetD: number): Case[] {
  return planes.map(([height, width, pad]) => ({
    kernel,
    batch: 1,
    cin: 6,
    cout: 5,
    groups: 1,
    height,
    width,
    pad: [pad, pad],
    offsetD,
    extreme: true,
    post: "none",
  }));
}

const FIXED: Case[] = [
  // Past the GEMM's 256-pair blocks (513 and 1029 products), odd sizes, extreme values.
  {
    kernel: 3,
    batch: 1,
    cin: 513,
    cout: 7,
    groups: 1,
    height: 5,
    width: 9,
    pad: [1, 1],
    offsetD: -128,
    extreme: true,
    post: "none",
  },
  {
    kernel: 3,
    batch: 1,
    cin: 1029,
    cout: 5,
    groups: 1,
    height: 3,
    width: 4,
    pad: [2, 0],
    offsetD: 127,
    extreme: true,
    post: "dequant relu",
  },
  // Wide rows: several groups of 8 tiles and a partial one; batch 2; two groups.
  {
    kernel: 3,
    batch: 2,
    cin: 8,
    cout: 10,
    groups: 2,
    height: 11,
    width: 53,
    pad: [1, 1],
    offsetD: 3,
    extreme: false,
    quantScale: 20,
    post: "dequant prelu",
  },
  // 1x1, 2x2 and 3x3 planes.
  ...smallPlanes(3, [[1, 1, 1], [2, 2, 1], [3, 3, 0], [1, 1, 2]], -128),
  // 5x5: past the GEMM's blocks in virtual channels (4 x 131), wide rows, 1x1 to 5x5 planes.
  ...smallPlanes(5, [[1, 1, 2], [2, 3, 2], [5, 5, 0], [4, 4, 1], [1, 1, 4]], 127),
  {
    kernel: 5,
    batch: 1,
    cin: 131,
    cout: 9,
    groups: 1,
    height: 7,
    width: 6,
    pad: [2, 1],
    offsetD: -128,
    extreme: true,
    post: "dequant relu",
  },
  {
    kernel: 5,
    batch: 2,
    cin: 6,
    cout: 8,
    groups: 2,
    height: 13,
    width: 41,
    pad: [2, 2],
    offsetD: 7,
    extreme: false,
    quantScale: 20,
    post: "dequant prelu",
  },
];

for (const build of ENGINE_BUILDS) {
  Deno.test(
    `integer Winograd: the same bits as the direct form and an exact loop, random shapes (${build} build)`,
    () =>
      withEngineBuild(build, async () => {
        const kernels = await engineKernels();
        const cases = [...FIXED, ...randomCases(60, 7, 3), ...randomCases(40, 8, 5)];
        for (const [index, c] of cases.entries()) {
          const { args, q, w } = argsOf(c, 100 + index);
          const label = JSON.stringify(c);
          const winograd = kernels.convolution({ ...args, algorithm: "winograd" });
          const direct = kernels.convolution({ ...args, algorithm: "direct" });
          assert.deepEqual(Array.from(winograd), Array.from(direct), label);
          assert.deepEqual(Array.from(winograd), expected(c, args, q, w), label);
        }
      }),
  );
}

for (const [kernel, cin] of [[3, 1827], [5, 657]] as const) {
  Deno.test(`integer Winograd: exact for a sum next to -2^29 (${kernel}x${kernel}, ${cin} channels of -128 x 255)`, async () => {
    const kernels = await engineKernels();
    // Every difference 255 (q 127, offset -128) and every weight -128: the 2x2 output sums
    // taps * 255 * -128 * cin (3x3: -536699520, 5x5: -536112000) at every position, whose 4x
    // (the form's int32 intermediate) is within int32 only just; with one channel more it would
    // not be.
    const taps = kernel * kernel;
    const size = kernel + 1;
    const args: ConvolutionArgs = {
      x: new Float32Array(cin * size * size).fill(127),
      offsetD: -128,
      shape: [1, cin, size, size],
      weights: new Int8Array(2 * cin * taps).fill(-128),
      bias: Int32Array.from([0, 1]),
      outputs: 2,
      groups: 1,
      window: { kernel: [kernel, kernel], pad: [0, 0], stride: [1, 1], dilation: [1, 1] },
      outSize: [2, 2],
      algorithm: "winograd",
    };
    const y = kernels.convolution(args);
    const sum = taps * 255 * -128 * cin;
    assert.ok(4 * sum >= -(2 ** 31) && 4 * (sum + taps * 255 * -128) < -(2 ** 31));
    assert.deepEqual(Array.from(y), [
      ...new Array(4).fill(f32(sum)),
      ...new Array(4).fill(f32(sum + 1)),
    ]);
    assert.throws(
      () =>
        kernels.convolution({
          ...args,
          x: new Float32Array((cin + 1) * size * size),
          shape: [1, cin + 1, size, size],
          weights: new Int8Array(2 * (cin + 1) * taps),
        }),
      new RegExp(`exact up to ${cin} input channels per group for a ${kernel}x${kernel} window`),
    );
  });
}

Deno.test("integer Winograd: taken by shape (3x3 or 5x5 stride 1, channels, outputs enough)", () => {
  const args = (
    cin: number,
    cout: number,
    size: number,
    stride = 1,
    kernel = 3,
  ): ConvolutionArgs => ({
    x: new Float32Array(0),
    offsetD: 0,
    shape: [1, cin, size * stride, size * stride],
    weights: new Int8Array(0),
    bias: null,
    outputs: cout,
    groups: 1,
    window: {
      kernel: [kernel, kernel],
      pad: [(kernel - 1) / 2, (kernel - 1) / 2],
      stride: [stride, stride],
      dilation: [1, 1],
    },
    outSize: [size, size],
  });
  assert.equal(intWinogradWins(args(64, 64, 56)), true);
  assert.equal(intWinogradWins(args(128, 128, 132)), true);
  assert.equal(intWinogradWins(args(3, 32, 64)), false);
  assert.equal(intWinogradWins(args(64, 64, 56, 2)), false);
  assert.equal(intWinogradWins(args(512, 512, 7)), false);
  assert.equal(intWinogradWins(args(2000, 8, 64)), false);
  assert.equal(intWinogradWins({ ...args(64, 64, 56), offsetD: undefined }), false);
  // 5x5: cifar10's three layers and lenet's second (1.2-1.7x faster, scripts/bench_winograd.ts
  // --integer), not lenet's first (one input channel), a 4x4 output or past 657 channels.
  assert.equal(intWinogradWins(args(3, 32, 32, 1, 5)), true);
  assert.equal(intWinogradWins(args(32, 32, 16, 1, 5)), true);
  assert.equal(intWinogradWins(args(32, 64, 8, 1, 5)), true);
  assert.equal(intWinogradWins(args(20, 50, 8, 1, 5)), true);
  assert.equal(intWinogradWins(args(1, 20, 24, 1, 5)), false);
  assert.equal(intWinogradWins(args(64, 64, 4, 1, 5)), false);
  assert.equal(intWinogradWins(args(700, 8, 64, 1, 5)), false);
  assert.equal(intWinogradWins(args(32, 32, 16, 2, 5)), false);
});

Deno.test("integer Winograd: one weights array read as two shapes keeps one transformed form each", async () => {
  const kernels = await engineKernels();
  // [8 outputs, 4 channels] and [4 outputs, 8 channels] share one Int8Array: the transformed
  // weights kept for the first shape must not serve the second.
  const base: Case = {
    kernel: 3,
    batch: 1,
    cin: 4,
    cout: 8,
    groups: 1,
    height: 6,
    width: 7,
    pad: [1, 1],
    offsetD: 2,
    extreme: false,
    post: "none",
  };
  const first = argsOf(base, 11);
  const swapped: Case = { ...base, cin: 8, cout: 4 };
  const second = argsOf(swapped, 12);
  const shared = { ...second.args, weights: first.args.weights, algorithm: "winograd" as const };
  for (let run = 0; run < 2; run++) {
    const a = kernels.convolution({ ...first.args, algorithm: "winograd" });
    assert.deepEqual(Array.from(a), expected(base, first.args, first.q, first.w));
    const b = kernels.convolution(shared);
    assert.deepEqual(Array.from(b), expected(swapped, shared, second.q, first.w));
  }
});
