/**
 * Throughput of the quantization kernels on a 25M-element Convolution weight tensor
 * ([1000, 1000, 5, 5], per-channel factors). "wrapper" figures go through src/wasm/quant.ts and
 * include copying the tensor into WebAssembly memory and the results out into new arrays (fresh
 * memory for the results dominates); "kernel" figures run the WebAssembly function alone on data
 * already in its memory.
 *
 * Run: `npx deno run -A scripts/bench_kernels.ts [runs]` (default 7 runs after one warm-up).
 *
 * @module
 */

import { instantiate } from "../src/wasm/load.ts";
import { channelLayout, outputChannelCount, quantKernels } from "../src/wasm/quant.ts";
import { wasmBase64 } from "../src/wasm/quant.generated.ts";

const runs = Number(Deno.args[0] ?? 7);
const shape = [1000, 1000, 5, 5];
const layout = channelLayout("Convolution", shape, 1);
const channels = outputChannelCount(layout);
const count = shape.reduce((total, size) => total * size, 1);

/** Deterministic pseudo-random floats in [-1, 1) (a 32-bit LCG). */
function pseudoRandom(length: number, seed: number): Float32Array {
  const values = new Float32Array(length);
  let state = seed >>> 0;
  for (let index = 0; index < length; index++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    values[index] = state / 2147483648 - 1;
  }
  return values;
}

const kernels = await quantKernels();
const weights = pseudoRandom(count, 1);
const scaleW = new Float32Array(channels).fill(1 / 127);
const ones = new Float32Array(channels).fill(1);
const foldInput = {
  weights,
  layout,
  bias: pseudoRandom(channels, 2),
  mean: pseudoRandom(channels, 3),
  variance: ones,
  factor: 1,
  eps: 1e-5,
  gamma: ones,
  beta: pseudoRandom(channels, 4),
};

/** Median and best seconds of `runs` calls of `work`, after one warm-up call. */
function time(work: () => unknown): { median: number; best: number } {
  work();
  const seconds: number[] = [];
  for (let run = 0; run < runs; run++) {
    const start = performance.now();
    work();
    seconds.push((performance.now() - start) / 1000);
  }
  seconds.sort((a, b) => a - b);
  return { median: seconds[Math.floor(runs / 2)], best: seconds[0] };
}

function report(name: string, work: () => unknown): void {
  const { median, best } = time(work);
  const rate = (seconds: number) => (count / seconds / 1e9).toFixed(2);
  console.log(
    `${name.padEnd(24)} median ${(median * 1000).toFixed(1)} ms (${rate(median)} G weights/s), ` +
      `best ${(best * 1000).toFixed(1)} ms (${rate(best)} G weights/s)`,
  );
}

console.log(`${count} weights, ${channels} channels, ${runs} runs`);
report("quantizeWeights wrapper", () => kernels.quantizeWeights(weights, layout, scaleW));
report("foldBatchNorm wrapper", () => kernels.foldBatchNorm(foldInput));
report("firstNonFinite wrapper", () => kernels.firstNonFinite(weights));

// The kernels alone, on a separate instance (the same exports the wrapper calls).
const wasm = await instantiate(wasmBase64);
type Kernel = (...args: number[]) => void;
const { quantizeWeights, foldBatchNorm } = wasm.exports as Record<string, Kernel>;
const view = [layout.outer, layout.mid, layout.inner, layout.channelAxis, layout.groups];
const weightsAt = wasm.copyIn(weights);
const scaleAt = wasm.copyIn(scaleW);
const int8At = wasm.alloc(count);
const [meanAt, varianceAt, gammaAt] = [foldInput.mean, ones, ones].map((v) => wasm.copyIn(v));
const [biasAt, betaAt] = [foldInput.bias, foldInput.beta].map((v) => wasm.copyIn(v));
const alphaAt = wasm.alloc(channels * 8);
const biasOutAt = wasm.alloc(channels * 4);
const factorsAt = [biasAt, meanAt, varianceAt, gammaAt, betaAt];
// Each run rewrites the weights in place; the throughput does not depend on their values.
report("quantizeWeights kernel", () => quantizeWeights(weightsAt, int8At, ...view, scaleAt, 1));
report(
  "foldBatchNorm kernel",
  () => foldBatchNorm(weightsAt, ...view, channels, ...factorsAt, 1, 1e-5, alphaAt, biasOutAt),
);
