/**
 * Winograd (F(4x4, 3x3) and F(2x2, 3x3) for 3x3 windows, F(2x2, 5x5) for 5x5 ones) against the
 * direct form (im2col + GEMM) for float stride-1 convolutions of several channel counts and output
 * sizes (ResNet-50's, waifu2x's, LeNet's, CIFAR-10's, vanilla_cnn's and small ones), timed
 * interleaved in one process, with the weights kept in WebAssembly memory and with
 * them made on each call (nets over the resident budget): the figures behind `winogradForm` in
 * src/wasm/engine.ts (which assumes the second, as ResNet-50 is). With model names (folders of
 * ../shared/models, or `resnet50` for bench-out/resnet50), whole float nets instead: `runNet` at
 * batch 1 with every convolution forced to the direct form beside the same net as `convolution`
 * chooses, interleaved. With `--integer`, the shapes as deploy (integer) convolutions: the exact
 * integer F(2x2, 3x3) (a 5x5 window as four 3x3 blocks) against the int16-pair direct form
 * (`intWinogradWins`). Medians of
 * `--rounds` rounds; nothing is asserted.
 *
 * ```sh
 * npx deno run -A scripts/bench_winograd.ts [model ...] [--rounds 5] [--seconds 0.2] [--kernel 3|5] [--integer]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  type ConvolutionArgs,
  engineKernels,
  intWinogradWins,
  winogradForm,
} from "../src/wasm/engine.ts";
import { DEFAULT_RESIDENT_BYTES } from "../src/wasm/resident.ts";
import { randomValues } from "../tests/_builders.ts";
import { loadNet } from "../src/caffe/model.ts";
import { forgetMemos } from "../src/engine/layer_memo.ts";
import { runNet } from "../src/engine/run.ts";
import { batchInputs } from "./bench_engine.ts";
import { cpuMicroseconds, loadAverage, median, modelFolder } from "./opencv_driver.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    rounds: { type: "string", default: "5" },
    seconds: { type: "string", default: "0.2" },
    /** Only the shapes of this kernel size. */
    kernel: { type: "string" },
    /** Deploy (integer) convolutions of the shapes. */
    integer: { type: "boolean", default: false },
  },
});
const rounds = Number(values.rounds);
const integer = values.integer;
const seconds = Number(values.seconds);

/** [kernel size, input channels, output channels, output height = width]. */
type Shape = [number, number, number, number];

const SHAPES: Shape[] = [
  [3, 128, 128, 132],
  [3, 64, 128, 136],
  [3, 64, 64, 56],
  [3, 128, 128, 28],
  [3, 256, 256, 14],
  [3, 512, 512, 7],
  [3, 32, 32, 64],
  [3, 16, 32, 64],
  [3, 16, 16, 32],
  [3, 8, 8, 32],
  [3, 32, 32, 8],
  [3, 64, 64, 4],
  [3, 3, 32, 64],
  [3, 1, 16, 64],
  [3, 4, 4, 32],
  [3, 2, 2, 16],
  [3, 128, 128, 14],
  [3, 256, 256, 12],
  [3, 512, 512, 14],
  [3, 512, 512, 10],
  [3, 64, 64, 10],
  [3, 128, 128, 8],
  // LeNet: conv1, conv2; CIFAR-10: conv1, conv2, conv3; vanilla_cnn: conv1.
  [5, 1, 20, 24],
  [5, 20, 50, 8],
  [5, 3, 32, 32],
  [5, 32, 32, 16],
  [5, 32, 64, 8],
  [5, 3, 16, 40],
  [5, 2, 8, 16],
  [5, 4, 8, 16],
  [5, 8, 8, 16],
  [5, 8, 16, 32],
  [5, 16, 16, 16],
  [5, 16, 32, 32],
  [5, 32, 32, 32],
  [5, 64, 64, 16],
  [5, 64, 64, 4],
  [5, 128, 128, 8],
  [5, 128, 128, 2],
  [5, 256, 256, 8],
];

function argsOf([kernel, cin, cout, size]: Shape): ConvolutionArgs {
  const pad = (kernel - 1) / 2;
  if (integer) {
    const int8 = (count: number, seed: number) =>
      Float32Array.from(
        randomValues(count, seed),
        (v) => Math.max(-128, Math.min(127, Math.round(v * 100))),
      );
    return {
      x: int8(cin * size * size, 1),
      offsetD: -3,
      shape: [1, cin, size, size],
      weights: Int8Array.from(int8(cout * cin * kernel * kernel, 2)),
      bias: Int32Array.from(int8(cout, 3)),
      outputs: cout,
      groups: 1,
      window: { kernel: [kernel, kernel], pad: [pad, pad], stride: [1, 1], dilation: [1, 1] },
      outSize: [size, size],
    };
  }
  return {
    x: randomValues(cin * size * size, 1),
    shape: [1, cin, size, size],
    weights: randomValues(cout * cin * kernel * kernel, 2),
    bias: randomValues(cout, 3),
    outputs: cout,
    groups: 1,
    window: { kernel: [kernel, kernel], pad: [pad, pad], stride: [1, 1], dilation: [1, 1] },
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

/** The algorithms timed, interleaved, each with the weights kept and made per call. */
type Algorithm = "direct" | "winograd" | "winograd2x2";

/** The algorithms of a shape: F(2x2, 3x3) for float 3x3 windows besides the other two. */
function algorithmsOf([kernel]: Shape): Algorithm[] {
  return !integer && kernel === 3 ? ["direct", "winograd", "winograd2x2"] : ["direct", "winograd"];
}

const kernels = await engineKernels();

/**
 * ms per image of each net, direct against as chosen, with the chosen form's speed-up, in wall
 * time and in this process's CPU time (less disturbed by other processes on a shared machine).
 */
async function wholeNets(names: string[]): Promise<void> {
  const convolutionKernel = kernels.convolutionKernel;
  const direct: typeof convolutionKernel = (args, transposed) =>
    convolutionKernel({ ...args, algorithm: "direct" }, transposed);
  console.log(`load average: ${loadAverage()}`);
  console.log(
    "| model | direct ms/image | chosen ms/image | speed-up | direct CPU ms/image | " +
      "chosen CPU ms/image | CPU speed-up | load avg |",
  );
  console.log("|---|---|---|---|---|---|---|---|");
  for (const name of names) {
    const folder = modelFolder(name);
    const net = loadNet(
      await Deno.readTextFile(`${folder}/deploy.prototxt`),
      await Deno.readFile(`${folder}/weights.caffemodel`),
    );
    const inputs = batchInputs(net, 1);
    const times: number[][] = [[], []];
    const cpuTimes: number[][] = [[], []];
    for (let round = 0; round < rounds; round++) {
      for (const [column, forced] of [[0, true], [1, false]] as const) {
        kernels.convolutionKernel = forced ? direct : convolutionKernel;
        // The layers keep the kernels made for them: forgotten, to be made by the one set here.
        forgetMemos(net.layers);
        await runNet(net, { inputs });
        let runs = 0;
        const start = performance.now();
        const cpuStart = cpuMicroseconds();
        while (performance.now() - start < seconds * 1000) {
          await runNet(net, { inputs });
          runs++;
        }
        times[column].push((performance.now() - start) / runs);
        cpuTimes[column].push((cpuMicroseconds() - cpuStart) / 1000 / runs);
      }
    }
    kernels.convolutionKernel = convolutionKernel;
    const [directMs, chosenMs] = times.map(median);
    const [directCpu, chosenCpu] = cpuTimes.map(median);
    console.log(
      `| ${name} | ${directMs.toFixed(2)} | ${chosenMs.toFixed(2)} | ` +
        `${(directMs / chosenMs).toFixed(2)} | ${directCpu.toFixed(2)} | ${
          chosenCpu.toFixed(2)
        } | ` +
        `${(directCpu / chosenCpu).toFixed(2)} | ${loadAverage()} |`,
    );
  }
}

/** ms per call of each shape in each form, weights kept and made per call. */
function shapes(): void {
  console.log(`load average: ${loadAverage()}`);
  console.log(
    "ms per call; weights kept: resident in WebAssembly memory (packed, or transformed); per call: " +
      "copied and packed or transformed on each call (resident budget 0), as for nets over the " +
      "budget; Winograd: F(4x4, 3x3), F(2x2, 5x5) (integer: F(2x2, 3x3), 5x5 as four 3x3 " +
      "blocks); 2x2: float F(2x2, 3x3)",
  );
  const header = ["kernel", "cin", "cout", "out"];
  for (const kept of ["kept", "per call"]) {
    header.push(`direct, ${kept}`, `Winograd, ${kept}`, "speed-up", `2x2, ${kept}`, "speed-up");
  }
  console.log(`| ${header.join(" | ")} | chosen |`);
  console.log(`|${"---|".repeat(header.length + 1)}`);
  const kernel = values.kernel === undefined ? undefined : Number(values.kernel);
  for (const shape of SHAPES.filter(([size]) => kernel === undefined || size === kernel)) {
    const args = argsOf(shape);
    const algorithms = algorithmsOf(shape);
    const times = new Map<string, number[]>();
    for (let round = 0; round < rounds; round++) {
      for (const kept of [true, false]) {
        kernels.setResidentBudget(kept ? Infinity : 0);
        for (const algorithm of algorithms) {
          const key = `${algorithm} ${kept}`;
          const time = timeOf(() => kernels.convolution({ ...args, algorithm }));
          times.set(key, [...times.get(key) ?? [], time]);
        }
      }
    }
    const [r, cin, cout, size] = shape;
    const cells = [`${r}x${r}`, `${cin}`, `${cout}`, `${size}x${size}`];
    for (const kept of [true, false]) {
      const direct = median(times.get(`direct ${kept}`)!);
      cells.push(direct.toFixed(3));
      for (const algorithm of ["winograd", "winograd2x2"] as const) {
        const measured = times.get(`${algorithm} ${kept}`);
        if (measured === undefined) {
          cells.push("-", "-");
          continue;
        }
        const ms = median(measured);
        cells.push(ms.toFixed(3), (direct / ms).toFixed(2));
      }
    }
    const form = integer ? null : winogradForm(args);
    const chosen = integer
      ? (intWinogradWins(args) ? (r === 5 ? "4 x F(2x2, 3x3)" : "F(2x2, 3x3)") : "direct")
      : form === null
      ? "direct"
      : `F(${form.tile}x${form.tile}, ${form.kernel}x${form.kernel})`;
    console.log(`| ${cells.join(" | ")} | ${chosen} |`);
  }
  kernels.setResidentBudget(DEFAULT_RESIDENT_BYTES);
  console.log(`load average: ${loadAverage()}`);
}

if (positionals.length > 0) await wholeNets(positionals);
else shapes();
