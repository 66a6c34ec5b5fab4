// Float convolutions on awkward shapes against a float64 direct convolution written here, in both
// engine builds: depthwise 3x3 (assembly/engine/conv.ts depthwise3x3: a zero-padded copy of each
// plane, two output rows and eight outputs at a time, the rest four at a time) and convolutions
// of few input channels through im2col (im2colColumns: Caffe's row-major col, inputs four at a
// time, loaded at stride 1, gathered at stride 2, lane by lane at stride 3, stores running into
// the next run; the matrix product reads it eight columns at a time). Planes from 1x1 up, widths
// that are no multiple of 4 or 8, odd heights, pads 0/1/2, strides 1, 2 and 3, dilations 1 and 2, one and many channels,
// batches, with and without bias, ReLU and leaky ReLU. Last, one weights array read as two shapes
// (panels and Winograd forms kept per shape), and a PReLU fused into the kernels' epilogue against
// the separate PReLU kernel, bit for bit.
//
// Tolerance: an output sums K = (C_in / group) * kh * kw float32 products (in order, maybe fused)
// and a bias, then the ReLU; its error is at most (K + 2) * 2^-23 * (sum |w x| + |bias|)
// (recursive summation), plus one rounding of the leaky ReLU's product.

import assert from "node:assert/strict";
import { type ConvolutionArgs, engineKernels } from "../src/wasm/engine.ts";
import { randomValues } from "./_builders.ts";
import { ENGINE_BUILDS, withEngineBuild } from "./_engine_builds.ts";

const EPS = 2 ** -23;

/** A case: depthwise (group = C_in = C_out) unless `outputs` is given (then group 1). */
interface Case {
  shape: [number, number, number, number];
  outputs?: number;
  kernel: number;
  pad: number;
  stride: number;
  dilation: number;
  bias: boolean;
  slope?: number;
}

function outSize(size: number, c: Case): number {
  return Math.floor((size + 2 * c.pad - (c.dilation * (c.kernel - 1) + 1)) / c.stride) + 1;
}

function argsOf(c: Case, seed: number): ConvolutionArgs {
  const [batch, channels, height, width] = c.shape;
  const outputs = c.outputs ?? channels;
  const cinGroup = c.outputs === undefined ? 1 : channels;
  return {
    x: randomValues(batch * channels * height * width, seed),
    shape: c.shape,
    weights: randomValues(outputs * cinGroup * c.kernel * c.kernel, seed + 1),
    bias: c.bias ? randomValues(outputs, seed + 2) : null,
    outputs,
    groups: c.outputs === undefined ? channels : 1,
    window: {
      kernel: [c.kernel, c.kernel],
      pad: [c.pad, c.pad],
      stride: [c.stride, c.stride],
      dilation: [c.dilation, c.dilation],
    },
    outSize: [outSize(height, c), outSize(width, c)],
    post: c.slope === undefined ? [] : [{ kind: "relu", slope: c.slope }],
  };
}

/** Float64 direct convolution (+ bias, ReLU) and the error bound of every output. */
function reference(args: ConvolutionArgs, c: Case): { y: Float64Array; bound: Float64Array } {
  const [batch, channels, height, width] = args.shape;
  const [outH, outW] = args.outSize;
  const { outputs, groups } = args;
  const cinGroup = channels / groups;
  const coutGroup = outputs / groups;
  const k = c.kernel;
  const w = args.weights as Float32Array;
  const b = args.bias as Float32Array | null;
  const y = new Float64Array(batch * outputs * outH * outW);
  const bound = new Float64Array(y.length);
  let index = 0;
  for (let n = 0; n < batch; n++) {
    for (let co = 0; co < outputs; co++) {
      const g = Math.floor(co / coutGroup);
      for (let oh = 0; oh < outH; oh++) {
        for (let ow = 0; ow < outW; ow++) {
          let sum = 0;
          let magnitude = b === null ? 0 : Math.abs(b[co]);
          for (let ci = 0; ci < cinGroup; ci++) {
            const plane = (n * channels + g * cinGroup + ci) * height;
            for (let i = 0; i < k; i++) {
              const ih = oh * c.stride - c.pad + i * c.dilation;
              if (ih < 0 || ih >= height) continue;
              for (let j = 0; j < k; j++) {
                const iw = ow * c.stride - c.pad + j * c.dilation;
                if (iw < 0 || iw >= width) continue;
                const product = w[((co * cinGroup + ci) * k + i) * k + j] *
                  args.x[(plane + ih) * width + iw];
                sum += product;
                magnitude += Math.abs(product);
              }
            }
          }
          if (b !== null) sum += b[co];
          let error = (cinGroup * k * k + 2) * EPS * magnitude;
          if (c.slope !== undefined) {
            sum = Math.max(sum, 0) + c.slope * Math.min(sum, 0);
            error = Math.max(1, c.slope) * error + EPS * Math.abs(sum);
          }
          y[index] = sum;
          bound[index] = error;
          index++;
        }
      }
    }
  }
  return { y, bound };
}

/** Runs `c` in the current build; returns the worst error as a share of its bound. */
async function check(c: Case, seed: number, label: string): Promise<number> {
  const args = argsOf(c, seed);
  const { y, bound } = reference(args, c);
  const actual = (await engineKernels()).convolution(args);
  assert.equal(actual.length, y.length, label);
  let worst = 0;
  for (let i = 0; i < y.length; i++) {
    const error = Math.abs(actual[i] - y[i]);
    assert.ok(
      error <= bound[i],
      `${label}: output ${i} is ${actual[i]}, expected ${y[i]} ± ${bound[i]}`,
    );
    if (bound[i] > 0) worst = Math.max(worst, error / bound[i]);
  }
  return worst;
}

const SIZES: [number, number][] = [
  [1, 1],
  [2, 2],
  [3, 3],
  [1, 5],
  [5, 1],
  [4, 9],
  [7, 13],
  [9, 8],
  [16, 17],
  [11, 37],
  [6, 64],
];

for (const build of ENGINE_BUILDS) {
  for (const [stride, dilation] of [[1, 1], [2, 1], [1, 2], [2, 2]]) {
    Deno.test(`depthwise 3x3 stride ${stride} dilation ${dilation}, planes 1x1..11x37, pads 0-2 (${build})`, async () => {
      await withEngineBuild(build, async () => {
        let worst = 0;
        let seed = 1;
        for (const [height, width] of SIZES) {
          for (const pad of [0, 1, 2]) {
            const c: Case = {
              shape: [1, 3, height, width],
              kernel: 3,
              pad,
              stride,
              dilation,
              bias: pad !== 2,
              slope: pad === 1 ? 0 : undefined,
            };
            if (outSize(height, c) < 1 || outSize(width, c) < 1) continue;
            const label = `${height}x${width} pad ${pad}`;
            worst = Math.max(worst, await check(c, seed++ * 10, label));
          }
        }
        // The bound is not vacuous: some output uses a visible part of it.
        assert.ok(worst > 1e-3, `worst error ${worst} of the bound`);
      });
    });
  }

  Deno.test(`depthwise 3x3: 67 channels, batch 2, odd sizes, leaky ReLU, both strides (${build})`, async () => {
    await withEngineBuild(build, async () => {
      for (const stride of [1, 2]) {
        const c: Case = {
          shape: [2, 67, 15, 23],
          kernel: 3,
          pad: 1,
          stride,
          dilation: 1,
          bias: true,
          slope: 0.1,
        };
        await check(c, 500 + stride, `stride ${stride}`);
      }
    });
  });

  Deno.test(`depthwise 3x3 at stride 3 and 5x5 (the tap-by-tap kernel) (${build})`, async () => {
    await withEngineBuild(build, async () => {
      const stride3: Case = {
        shape: [1, 4, 13, 17],
        kernel: 3,
        pad: 1,
        stride: 3,
        dilation: 1,
        bias: true,
      };
      await check(stride3, 700, "3x3 stride 3");
      const five: Case = {
        shape: [2, 3, 12, 19],
        kernel: 5,
        pad: 2,
        stride: 1,
        dilation: 1,
        bias: true,
        slope: 0,
      };
      await check(five, 800, "5x5");
    });
  });

  for (const [stride, dilation] of [[1, 1], [2, 1], [1, 2], [3, 1]]) {
    Deno.test(`3 -> 5 channels (im2col) 3x3 stride ${stride} dilation ${dilation}, planes 1x1..11x37, pads 0-2 (${build})`, async () => {
      await withEngineBuild(build, async () => {
        let worst = 0;
        let seed = 1;
        for (const [height, width] of SIZES) {
          for (const pad of [0, 1, 2]) {
            const c: Case = {
              shape: [1, 3, height, width],
              outputs: 5,
              kernel: 3,
              pad,
              stride,
              dilation,
              bias: pad !== 0,
              slope: pad === 2 ? 0.1 : undefined,
            };
            if (outSize(height, c) < 1 || outSize(width, c) < 1) continue;
            worst = Math.max(
              worst,
              await check(c, 1000 + seed++ * 10, `${height}x${width} pad ${pad}`),
            );
          }
        }
        assert.ok(worst > 1e-3, `worst error ${worst} of the bound`);
      });
    });
  }

  Deno.test(`stems: RGB 3x3 stride 2 pad 1 (ultraface, yufacedetect), 4 and 1 channels, batch 2 (${build})`, async () => {
    await withEngineBuild(build, async () => {
      const cases: Case[] = [
        {
          shape: [1, 3, 60, 80],
          outputs: 16,
          kernel: 3,
          pad: 1,
          stride: 2,
          dilation: 1,
          bias: true,
          slope: 0,
        },
        {
          shape: [2, 3, 33, 45],
          outputs: 8,
          kernel: 3,
          pad: 1,
          stride: 2,
          dilation: 1,
          bias: true,
        },
        {
          shape: [1, 4, 31, 70],
          outputs: 12,
          kernel: 3,
          pad: 0,
          stride: 2,
          dilation: 1,
          bias: false,
        },
        {
          shape: [1, 1, 29, 51],
          outputs: 6,
          kernel: 3,
          pad: 1,
          stride: 1,
          dilation: 1,
          bias: true,
          slope: 0.25,
        },
        {
          shape: [1, 3, 24, 24],
          outputs: 28,
          kernel: 3,
          pad: 0,
          stride: 1,
          dilation: 1,
          bias: true,
        },
        {
          shape: [1, 3, 12, 12],
          outputs: 10,
          kernel: 3,
          pad: 0,
          stride: 1,
          dilation: 1,
          bias: true,
        },
      ];
      for (const [i, c] of cases.entries()) {
        await check(c, 2000 + 10 * i, `${c.shape} -> ${c.outputs}, stride ${c.stride}`);
      }
    });
  });
}

for (const algorithm of ["direct", "winograd"] as const) {
  for (const kernel of [3, 5]) {
    Deno.test(`float ${algorithm} ${kernel}x${kernel}: one weights array read as two shapes is prepared once per shape`, async () => {
      const kernels = await engineKernels();
      // [8 outputs, 4 channels] and [4 outputs, 8 channels] hold the same count of weights: the
      // form kept for the first shape (panels or Winograd) must not serve the second. Each
      // result must equal the same call on a fresh copy of the weights, prepared on its own.
      const base: Case = {
        shape: [1, 4, 9, 11],
        outputs: 8,
        kernel,
        pad: 1,
        stride: 1,
        dilation: 1,
        bias: true,
      };
      const swapped: Case = { ...base, shape: [1, 8, 9, 11], outputs: 4 };
      const first = { ...argsOf(base, 31), algorithm };
      const second = { ...argsOf(swapped, 41), weights: first.weights, algorithm };
      const alone = (args: ConvolutionArgs) =>
        Array.from(
          kernels.convolution({ ...args, weights: (args.weights as Float32Array).slice() }),
        );
      for (let run = 0; run < 2; run++) {
        assert.deepEqual(Array.from(kernels.convolution(first)), alone(first));
        assert.deepEqual(Array.from(kernels.convolution(second)), alone(second));
      }
    });
  }
}

Deno.test("float convolutions with a PReLU after them: per-channel slopes in the kernels' epilogue give the separate PReLU's bits", async () => {
  const kernels = await engineKernels();
  // The direct product (rows of 4 with an edge of 1-3 rows, two groups: the slopes of each group),
  // 1x1 read directly, 3x3 depthwise at strides 1 and 2, a 5x5 depthwise (the generic kernel).
  const cases: { c: Case; groups?: number }[] = [
    {
      c: {
        shape: [2, 6, 9, 11],
        outputs: 10,
        kernel: 3,
        pad: 1,
        stride: 1,
        dilation: 1,
        bias: true,
      },
    },
    {
      c: {
        shape: [1, 8, 7, 13],
        outputs: 6,
        kernel: 3,
        pad: 0,
        stride: 2,
        dilation: 1,
        bias: false,
      },
      groups: 2,
    },
    {
      c: { shape: [1, 5, 6, 7], outputs: 7, kernel: 1, pad: 0, stride: 1, dilation: 1, bias: true },
    },
    { c: { shape: [2, 5, 10, 12], kernel: 3, pad: 1, stride: 1, dilation: 1, bias: true } },
    { c: { shape: [1, 4, 11, 9], kernel: 3, pad: 1, stride: 2, dilation: 1, bias: true } },
    { c: { shape: [1, 3, 9, 9], kernel: 5, pad: 2, stride: 1, dilation: 1, bias: false } },
  ];
  for (const [index, { c, groups }] of cases.entries()) {
    const base = argsOf(c, 500 + 10 * index);
    const args: ConvolutionArgs = groups === undefined ? base : {
      ...base,
      groups,
      weights: randomValues(base.outputs * (c.shape[1] / groups) * c.kernel * c.kernel, 7 + index),
    };
    const [batch] = c.shape;
    const view = { outer: batch, channels: args.outputs, inner: args.outSize[0] * args.outSize[1] };
    const slopes = randomValues(args.outputs, 900 + index);
    const fused = kernels.convolution({ ...args, post: [{ kind: "prelu", view, slopes }] });
    const separate = kernels.prelu(kernels.convolution({ ...args, post: [] }), view, slopes);
    const bits = (values: Float32Array) => Array.from(new Uint32Array(values.slice().buffer));
    assert.deepEqual(bits(fused), bits(separate), JSON.stringify(c));
    assert.ok(separate.some((value) => value < 0), "some outputs negative: the slopes matter");
  }
});

for (const build of ENGINE_BUILDS) {
  Deno.test(`float matrix product edges 1-4 columns wide, several row panels at a time: each output the bits of its row panel computed alone (${build})`, async () => {
    await withEngineBuild(build, async () => {
      const kernels = await engineKernels();
      // 1x1 convolutions read in place: C is [44 outputs, n], k = 300 products (two passes over
      // k from three column panels up, C read back between them; one pass below). An edge of C
      // 1, 2, 3 or 4 columns wide (n mod 8) is computed 8, 4, 2 and 2 row panels
      // at a time (panels.ts groupSums), the row panels left over one at a time, as every row
      // panel of a 4-output convolution is. The outputs are checked against float64, each four of
      // them against the same weights' rows run as a convolution of their own, and a PReLU in the
      // epilogue (a slope per row) against the separate PReLU kernel.
      const bits = (values: Float32Array) => Array.from(new Uint32Array(values.slice().buffer));
      for (const n of [1, 2, 3, 4, 9, 12, 25, 26, 27, 28, 49]) {
        const c: Case = {
          shape: [1, 300, 1, n],
          outputs: 44,
          kernel: 1,
          pad: 0,
          stride: 1,
          dilation: 1,
          bias: true,
          slope: 0.1,
        };
        await check(c, 3000 + n, `n = ${n}`);
        const whole = argsOf(c, 3000 + n);
        const all = kernels.convolution(whole);
        const weights = whole.weights as Float32Array;
        const bias = whole.bias as Float32Array;
        for (let row = 0; row < 44; row += 4) {
          const alone = kernels.convolution({
            ...whole,
            outputs: 4,
            weights: weights.slice(row * 300, (row + 4) * 300),
            bias: bias.slice(row, row + 4),
          });
          assert.deepEqual(
            bits(alone),
            bits(all.subarray(row * n, (row + 4) * n)),
            `n = ${n}, rows ${row}..`,
          );
        }
        const view = { outer: 1, channels: 44, inner: n };
        const slopes = randomValues(44, 4000 + n);
        const plain = { ...whole, post: [] };
        const fused = kernels.convolution({ ...plain, post: [{ kind: "prelu", view, slopes }] });
        const separate = kernels.prelu(kernels.convolution(plain), view, slopes);
        assert.deepEqual(bits(fused), bits(separate), `n = ${n}, PReLU`);
      }
    });
  });
}
