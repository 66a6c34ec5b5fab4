/**
 * Where the simulator's time goes: runs a model's float (or fake-quant / deploy) net a few times
 * and sums the time spent in each kernel call of src/wasm/engine.ts, by layer type and, for
 * convolutions, by kind (1x1, depthwise, k x k, grouped, Winograd) — beside the whole `runNet` time, whose
 * rest is JavaScript between the kernels. Figures only; nothing is asserted.
 *
 * ```sh
 * npx deno run -A scripts/profile_engine.ts <model> [--net float|fakeQuant|deploy] [--runs N] \
 *   [--batch N] [--build relaxed|portable] [--warmup S]
 * ```
 * (`model` is a folder name of ../shared/models, or `resnet50` for bench-out/resnet50; `--batch`
 * replaces the input's first axis, which is otherwise the model's own.) The timed runs come after
 * `--warmup` seconds (default 1) of untimed ones, at least one: a net's first runs in a process
 * still take fresh memory and run code V8 has not optimized yet (when this option came, the second
 * run also sized the output arena and made the kept weights again above it, and with a single
 * warm-up run ResNet-50's Winograd layers took a third of its time over four runs, against a fifth
 * after more).
 *
 * @module
 */

import { loadNet } from "../src/caffe/model.ts";
import { type Net, netInputs } from "../src/caffe/net.ts";
import { uniformGenerator } from "../src/engine/inputs.ts";
import { forgetMemos } from "../src/engine/layer_memo.ts";
import { runNet, type Tensor } from "../src/engine/run.ts";
import { convertInMemory } from "../src/quant/convert.ts";
import { makeRecord } from "../src/quant/make_record.ts";
import {
  type ConvolutionArgs,
  engineKernels,
  intWinogradWins,
  NOT_KERNEL_METHODS,
  winogradForm,
} from "../src/wasm/engine.ts";
import { type EngineBuild, engineBuild, useEngineBuild } from "../src/wasm/engine_build.ts";

const root = new URL("../", import.meta.url).pathname;
const sharedModels = new URL("../../shared/models/", import.meta.url).pathname;

function folderOf(name: string): string {
  return name === "resnet50" ? `${root}bench-out/resnet50` : `${sharedModels}${name}`;
}

/** The kind of a convolution call, for grouping. */
function convolutionKind(args: ConvolutionArgs, transposed: boolean): string {
  const [kh, kw] = args.window.kernel;
  const [sh, sw] = args.window.stride;
  const channels = args.shape[1];
  const form = args.offsetD === undefined ? "" : " int";
  if (transposed) return `deconv ${kh}x${kw}${form}`;
  if (args.groups === channels && args.outputs === channels) {
    return `depthwise ${kh}x${kw}/${sh}${form}`;
  }
  const grouped = args.groups > 1 ? " grouped" : "";
  const integer = args.offsetD !== undefined;
  const picked = integer ? null : winogradForm(args);
  const winograd = integer
    ? (intWinogradWins(args) ? " winograd F(2x2, 3x3)" : "")
    : picked === null
    ? ""
    : ` winograd F(${picked.tile}x${picked.tile})`;
  return `conv ${kh}x${kw}/${sh}x${sw}${grouped}${form}${winograd}`;
}

async function main(args: string[]): Promise<void> {
  const name = args[0];
  const netKind = args.includes("--net") ? args[args.indexOf("--net") + 1] : "float";
  const runs = args.includes("--runs") ? Number(args[args.indexOf("--runs") + 1]) : 5;
  const build = args.includes("--build") ? args[args.indexOf("--build") + 1] : "auto";
  const batch = args.includes("--batch") ? Number(args[args.indexOf("--batch") + 1]) : undefined;
  const warmup = args.includes("--warmup") ? Number(args[args.indexOf("--warmup") + 1]) : 1;
  const nets = ["float", "fakeQuant", "deploy"];
  let known = name !== undefined;
  try {
    if (known) Deno.statSync(`${folderOf(name)}/weights.caffemodel`);
  } catch {
    known = false;
  }
  if (
    !known || !nets.includes(netKind) || !(runs >= 1) || !(warmup >= 0) ||
    !["auto", "relaxed", "portable"].includes(build)
  ) {
    console.error(
      "usage: npx deno run -A scripts/profile_engine.ts <model> [--net float|fakeQuant|deploy] " +
        "[--runs N] [--batch N] [--build relaxed|portable] [--warmup S]",
    );
    Deno.exit(2);
  }
  useEngineBuild(build as EngineBuild);
  console.log(`engine build: ${engineBuild()}`);
  const folder = folderOf(name);
  const model = await Deno.readTextFile(`${folder}/deploy.prototxt`);
  const weights = await Deno.readFile(`${folder}/weights.caffemodel`);
  let net: Net = loadNet(model, weights);
  if (netKind !== "float") {
    const record = await makeRecord(net);
    const { files } = await convertInMemory({ model, weights, record });
    net = netKind === "deploy"
      ? loadNet(files.deployModel, files.deployWeights)
      : loadNet(files.fakeQuantModel, files.fakeQuantWeights);
  }
  const next = uniformGenerator(1);
  const inputs = new Map<string, Tensor>();
  for (const { name: blob, shape: modelShape } of netInputs(net)) {
    const shape = batch === undefined ? modelShape : [batch, ...modelShape.slice(1)];
    inputs.set(blob, { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).map(next) });
  }
  const kernels = await engineKernels() as unknown as Record<string, (...a: unknown[]) => unknown>;
  const totals = new Map<string, { ms: number; calls: number; macs: number }>();
  const add = (key: string, ms: number, macs: number) => {
    const entry = totals.get(key) ?? { ms: 0, calls: 0, macs: 0 };
    entry.ms += ms;
    entry.calls++;
    entry.macs += macs;
    totals.set(key, entry);
  };
  let timing = false;
  /** `run`, its time added to `key` (with `macs` per call) while timing. */
  const timed = (key: string, macs: number, run: (...a: unknown[]) => unknown) =>
  (
    ...callArgs: unknown[]
  ) => {
    const start = performance.now();
    const result = run(...callArgs);
    if (timing) add(key, performance.now() - start, macs);
    return result;
  };
  for (const method of Object.keys(kernels)) {
    if (NOT_KERNEL_METHODS.has(method)) continue;
    const original = kernels[method];
    if (method === "convolutionKernel") {
      // The kernel it makes is what runs, call after call: timed under the convolution's kind.
      kernels[method] = (a, transposed) => {
        const args = a as ConvolutionArgs;
        const kernel = original(args, transposed) as (...a: unknown[]) => unknown;
        const [n, c, h, w] = args.shape;
        const [kh, kw] = args.window.kernel;
        const spatial = transposed ? h * w : args.outSize[0] * args.outSize[1];
        const macs = n * spatial * (transposed ? c : args.outputs) *
          (transposed ? args.outputs : c) / args.groups * kh * kw;
        return timed(convolutionKind(args, transposed === true), macs, kernel);
      };
    } else if (method === "innerProductKernel") {
      kernels[method] = (a) =>
        timed("innerProduct", 0, original(a) as (...a: unknown[]) => unknown);
    } else if (method === "poolingKernel") {
      kernels[method] = (a, average) =>
        timed(
          average ? "avePool" : "maxPool",
          0,
          original(a, average) as (...a: unknown[]) => unknown,
        );
    } else kernels[method] = timed(method, 0, original);
  }
  // Kernels a layer kept from an earlier run (e.g. the record's) were made unwrapped.
  forgetMemos(net.layers);
  const warming = performance.now();
  do await runNet(net, { inputs }); while (performance.now() - warming < warmup * 1000);
  let whole = 0;
  timing = true;
  for (let run = 0; run < runs; run++) {
    const start = performance.now();
    await runNet(net, { inputs });
    whole += performance.now() - start;
  }
  const rows = [...totals].sort((a, b) => b[1].ms - a[1].ms);
  const inKernels = rows.reduce((sum, [, entry]) => sum + entry.ms, 0);
  console.log(
    `${name} ${netKind}: ${(whole / runs).toFixed(2)} ms per run; load ${Deno.loadavg()[0]}`,
  );
  console.log("| kernel | ms/run | share | calls/run | GMAC/s |");
  console.log("| --- | ---: | ---: | ---: | ---: |");
  for (const [key, entry] of rows) {
    const gmacs = entry.macs > 0 ? (entry.macs / entry.ms / 1e6).toFixed(2) : "";
    console.log(
      `| ${key} | ${(entry.ms / runs).toFixed(2)} | ${(100 * entry.ms / whole).toFixed(1)}% | ` +
        `${entry.calls / runs} | ${gmacs} |`,
    );
  }
  console.log(
    `| (outside kernels) | ${((whole - inKernels) / runs).toFixed(2)} | ${
      (100 * (whole - inKernels) / whole).toFixed(1)
    }% | | |`,
  );
}

if (import.meta.main) await main(Deno.args);
