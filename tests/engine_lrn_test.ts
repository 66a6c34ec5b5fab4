// The engine's LRN kernels (assembly/engine/channel.ts) against the float64 formulas computed here:
// ACROSS_CHANNELS y = x (k + alpha/size sum x^2 over the channel window) ^ -beta, WITHIN_CHANNEL
// y = x (1 + alpha/size^2 sum x^2 over the size x size window inside the plane) ^ -beta, on shapes
// whose rows are shorter than, equal to and longer than four values (the kernels' vector width)
// with odd tails, beta 0.75 (the kernels' float64 square-root path) and 0.6 (Math.pow), and alpha
// large enough that the window sums move the result. Errors are relative, in units of 2^-24; the
// bound is one the earlier kernels (scalar sums, AVE pooling + Power + Eltwise) met too: their
// largest error here was 2.87, as is the vector kernels'.

import assert from "node:assert/strict";
import { engineKernels } from "../src/wasm/engine.ts";
import { randomValues } from "./_builders.ts";
import { ENGINE_BUILDS, withEngineBuild } from "./_engine_builds.ts";

/** Max relative error of an output, in units of 2^-24. */
const BOUND = 4;

/** The largest |actual - expected| / |expected| over the outputs, in units of 2^-24. */
function worstRelative(actual: Float32Array, expected: number[]): number {
  assert.equal(actual.length, expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const error = Math.abs(actual[i] - expected[i]) / Math.abs(expected[i]) / 2 ** -24;
    if (!(error <= worst)) worst = error;
  }
  return worst;
}

function acrossReference(
  x: Float32Array,
  [, channels, spatial]: number[],
  { size, alpha, beta, k }: { size: number; alpha: number; beta: number; k: number },
): number[] {
  const pre = (size - 1) / 2;
  return Array.from(x, (value, i) => {
    const n = Math.floor(i / (channels * spatial));
    const c = Math.floor(i / spatial) % channels;
    const s = i % spatial;
    let sum = 0;
    for (let other = Math.max(c - pre, 0); other < Math.min(c - pre + size, channels); other++) {
      sum += x[(n * channels + other) * spatial + s] ** 2;
    }
    return value * (k + (alpha / size) * sum) ** -beta;
  });
}

function withinReference(
  x: Float32Array,
  [, height, width]: number[],
  { size, alpha, beta }: { size: number; alpha: number; beta: number },
): number[] {
  const pad = (size - 1) / 2;
  return Array.from(x, (value, i) => {
    const plane = Math.floor(i / (height * width));
    const h = Math.floor(i / width) % height;
    const w = i % width;
    let sum = 0;
    for (let r = Math.max(h - pad, 0); r <= Math.min(h + pad, height - 1); r++) {
      for (let c = Math.max(w - pad, 0); c <= Math.min(w + pad, width - 1); c++) {
        sum += x[(plane * height + r) * width + c] ** 2;
      }
    }
    return value * (1 + (alpha * sum) / (size * size)) ** -beta;
  });
}

const ACROSS_SHAPES = [[2, 7, 15], [1, 3, 4], [1, 6, 1], [2, 5, 64]];
const WITHIN_SHAPES = [[3, 5, 7], [2, 2, 3], [1, 1, 1], [2, 9, 16], [1, 4, 13]];

for (const build of ENGINE_BUILDS) {
  Deno.test(`LRN ACROSS_CHANNELS kernel (${build} build): within ${BOUND} × 2^-24 of float64`, async () => {
    await withEngineBuild(build, async () => {
      const kernels = await engineKernels();
      let largest = 0;
      for (const [index, shape] of ACROSS_SHAPES.entries()) {
        const x = randomValues(shape[0] * shape[1] * shape[2], 300 + index).map((v) => 3 * v);
        for (
          const params of [
            { size: 5, alpha: 2, beta: 0.75, k: 1 },
            { size: 3, alpha: 0.5, beta: 0.6, k: 2 },
            { size: 1, alpha: 1, beta: 0.75, k: 0.5 },
          ]
        ) {
          const y = kernels.lrnAcrossChannels(x, shape as [number, number, number], params);
          const worst = worstRelative(y, acrossReference(x, shape, params));
          assert.ok(worst <= BOUND, `${shape} ${JSON.stringify(params)}: ${worst}`);
          largest = Math.max(largest, worst);
        }
      }
      console.log(`max error ${largest.toFixed(3)} × 2^-24`);
    });
  });

  Deno.test(`LRN WITHIN_CHANNEL kernel (${build} build): within ${BOUND} × 2^-24 of float64`, async () => {
    await withEngineBuild(build, async () => {
      const kernels = await engineKernels();
      let largest = 0;
      for (const [index, [planes, height, width]] of WITHIN_SHAPES.entries()) {
        const x = randomValues(planes * height * width, 400 + index).map((v) => 3 * v);
        for (
          const params of [
            { size: 3, alpha: 2, beta: 0.75 },
            { size: 5, alpha: 0.5, beta: 0.6 },
            { size: 1, alpha: 1, beta: 0.75 },
          ]
        ) {
          const y = kernels.lrnWithinChannel(x, planes, [height, width], params);
          const worst = worstRelative(y, withinReference(x, [planes, height, width], params));
          assert.ok(
            worst <= BOUND,
            `${[planes, height, width]} ${JSON.stringify(params)}: ${worst}`,
          );
          largest = Math.max(largest, worst);
        }
      }
      console.log(`max error ${largest.toFixed(3)} × 2^-24`);
    });
  });
}
