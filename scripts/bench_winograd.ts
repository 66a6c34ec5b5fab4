/**
 * Winograd F(4x4, 3x3) against the direct form (im2col + GEMM) for float 3x3 stride-1
 * convolutions of several channel counts and output sizes (ResNet-50's, waifu2x's and small
 * ones), timed interleaved in one process: the figures behind `winogradWins` in
 * src/wasm/engine.ts. Medians of `--rounds` rounds; nothing is asserted.
 *
 * ```sh
 * npx deno run -A scripts/bench_winograd.ts [--rounds 5] [--seconds 0.2]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type ConvolutionArgs, engineKernels } from "../src/wasm/engine.ts";
import { randomValues } from "../tests/_builders.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "5" },
    seconds: { type: "string", default: "0.2" },
  },
});
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);

/** [input channels, output channels, output height = width]. */
const SHAPES: [number, number, number][] = [
  [64, 64, 56],
  [128, 128, 28],
  [256, 256, 14],
  [512, 512, 7],
  [32, 32, 64],
  [16, 32, 64],
  [16, 16, 32],
  [8, 8, 32],
  [32, 32, 8],
  [64, 64, 4],
  [3, 32, 64],
  [1, 16, 64],
  [4, 4, 32],
  [2, 2, 16],
  [128, 128, 14],
  [256, 256, 12],
  [512, 512, 14],
  [512, 512, 10],
  [64, 64, 10],
  [128, 128, 8],
];

function argsOf([cin, cout, size]: [number, number, number]): ConvolutionArgs {
  return {
    x: randomValues(cin * size * size, 1),
    shape: [1, cin, size, size],
    weights: randomValues(cout * cin * 9, 2),
    bias: randomValues(cout, 3),
    outputs: cout,
    groups: 1,
    window: { kernel: [3, 3], pad: [1, 1], stride: [1, 1], dilation: [1, 1] },
    outSize: [size, size],
    post: [{ kind: "relu", slope: 0 }],
  };
}

/** Milliseconds per call of `run`, over about `seconds`. */
function timeOf(run: () => void): number {
  run();
  let calls = 0;
  const start = performance.now();
  let now = start;
  while (now - start < seconds * 1000) {
    run();
    calls++;
    now = performance.now();
  }
  return (now - start) / calls;
}

const median = (list: number[]) => list.toSorted((a, b) => a - b)[Math.floor(list.length / 2)];

const kernels = await engineKernels();
console.log(`load average: ${Deno.loadavg().map((v) => v.toFixed(2)).join(" ")}`);
console.log("| cin | cout | out | direct ms | winograd ms | speed-up | direct GMAC/s |");
console.log("|---|---|---|---|---|---|---|");
for (const shape of SHAPES) {
  const args = argsOf(shape);
  const direct: number[] = [];
  const winograd: number[] = [];
  for (let round = 0; round < rounds; round++) {
    direct.push(timeOf(() => kernels.convolution({ ...args, algorithm: "direct" })));
    winograd.push(timeOf(() => kernels.convolution({ ...args, algorithm: "winograd" })));
  }
  const [cin, cout, size] = shape;
  const macs = cin * cout * 9 * size * size;
  const d = median(direct);
  const w = median(winograd);
  console.log(
    `| ${cin} | ${cout} | ${size}x${size} | ${d.toFixed(3)} | ${w.toFixed(3)} | ` +
      `${(d / w).toFixed(2)} | ${(macs / d / 1e6).toFixed(1)} |`,
  );
}
console.log(`load average: ${Deno.loadavg().map((v) => v.toFixed(2)).join(" ")}`);
