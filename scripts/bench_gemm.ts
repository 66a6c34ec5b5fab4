/**
 * The float convolution kernels' speed in GMAC/s (multiply-adds per second of this process's CPU
 * time, which other processes on a shared machine disturb less than wall time) on ResNet-50's
 * convolution shapes and the small-channel and depthwise shapes of the face detectors and mtcnn, for the engine module's builds side by side in one process: the portable
 * and relaxed-SIMD builds of this tree (src/wasm/*.generated.ts) and, with `--against REV`, both
 * builds of assembly/ at git revision REV (compiled here by scripts/build_wasm.ts's compiler), so
 * that a kernel change is measured against the code it replaces. Each call is
 * `EngineKernels.convolution` on the direct path (im2col or the input copied into column panels,
 * the matrix product, the output copied out; never Winograd; weights resident after the first
 * call), batch 1, seeded values.
 *
 * The machine may be shared: variants are interleaved, each measured `--rounds` times (default 7)
 * for `--seconds` each (default 0.15); medians are shown, and each ratio to the first variant is
 * the median of the ratios of measurements taken back to back, with the `uptime` load average
 * before and after. Nothing is asserted.
 *
 * ```sh
 * npx deno run -A scripts/bench_gemm.ts [--against REV] [--rounds N] [--seconds S] [--shapes a,b] \
 *   [--integer]
 * npx deno run -A scripts/bench_gemm.ts --nets resnet50,ultraface_rfb320 [--rounds N] [--seconds S]
 * ```
 * With `--nets`, whole float nets instead (`runNet` runs per CPU second, this tree's two builds;
 * `resnet50` is bench-out/resnet50 from scripts/make_model.ts, other names ../shared/models).
 *
 * @module
 */

import { type ConvolutionArgs, type EngineKernels, engineKernelsOf } from "../src/wasm/engine.ts";
import { loadNet } from "../src/caffe/model.ts";
import { netInputs } from "../src/caffe/net.ts";
import { uniformGenerator } from "../src/engine/inputs.ts";
import { runNet, type Tensor } from "../src/engine/run.ts";
import {
  type EngineBuild,
  engineModuleBase64,
  relaxedSimdSupported,
  useEngineBuild,
} from "../src/wasm/engine_build.ts";
import { compile, encodeBase64, RELAXED_FLAGS } from "./build_wasm.ts";
import { cpuMicroseconds, loadAverage, median, modelFolder } from "./opencv_driver.ts";

/** `count` seeded values uniform in [-1, 1). */
function values(count: number, seed: number): Float32Array {
  return new Float32Array(count).map(uniformGenerator(seed));
}

const USAGE = "npx deno run -A scripts/bench_gemm.ts [--against REV] [--rounds N] " +
  "[--seconds S] [--shapes name,name] [--integer] [--nets model,model]";

/**
 * A convolution: input channels, size (height; `width` when not square), output channels, kernel,
 * stride, pad, groups (default 1; = cin for a depthwise convolution).
 */
interface Shape {
  name: string;
  cin: number;
  size: number;
  width?: number;
  cout: number;
  kernel: number;
  stride: number;
  pad: number;
  groups?: number;
}

/**
 * ResNet-50's convolution kinds, at their 224x224 sizes, and 1x1 products of 1-4 columns (a
 * matrix product's narrow edge alone, as at 7x7 planes: 49 = 6 x 8 + 1); then the
 * small-input-channel stems, depthwise and 1x1 layers of ultraface_rfb320 / yufacedetect_v1
 * (240x320), mtcnn's 3x3 layers and the 5x5 layers of cifar10_quick (32x32 input) and lenet
 * (28x28).
 */
const SHAPES: Shape[] = [
  { name: "7x7/2 3>64 224", cin: 3, size: 224, cout: 64, kernel: 7, stride: 2, pad: 3 },
  { name: "3x3 64>64 56", cin: 64, size: 56, cout: 64, kernel: 3, stride: 1, pad: 1 },
  { name: "3x3 256>256 14", cin: 256, size: 14, cout: 256, kernel: 3, stride: 1, pad: 1 },
  { name: "3x3 512>512 7", cin: 512, size: 7, cout: 512, kernel: 3, stride: 1, pad: 1 },
  { name: "1x1 256>64 56", cin: 256, size: 56, cout: 64, kernel: 1, stride: 1, pad: 0 },
  { name: "1x1 64>256 56", cin: 64, size: 56, cout: 256, kernel: 1, stride: 1, pad: 0 },
  { name: "1x1 1024>256 14", cin: 1024, size: 14, cout: 256, kernel: 1, stride: 1, pad: 0 },
  // A product's edge of 1-4 columns alone.
  ...[1, 2, 3, 4].map((width) => ({
    name: `1x1 1024>256 1x${width}`,
    cin: 1024,
    size: 1,
    width,
    cout: 256,
    kernel: 1,
    stride: 1,
    pad: 0,
  })),
  { name: "1x1 256>1024 14", cin: 256, size: 14, cout: 1024, kernel: 1, stride: 1, pad: 0 },
  { name: "1x1 2048>512 7", cin: 2048, size: 7, cout: 512, kernel: 1, stride: 1, pad: 0 },
  { name: "1x1 512>2048 7", cin: 512, size: 7, cout: 2048, kernel: 1, stride: 1, pad: 0 },
  { name: "1x1/2 512>1024 28", cin: 512, size: 28, cout: 1024, kernel: 1, stride: 2, pad: 0 },
  { name: "1x1/2 256>512 56", cin: 256, size: 56, cout: 512, kernel: 1, stride: 2, pad: 0 },
  {
    name: "3x3/2 3>16 240x320",
    cin: 3,
    size: 240,
    width: 320,
    cout: 16,
    kernel: 3,
    stride: 2,
    pad: 1,
  },
  {
    name: "dw3x3 16 120x160",
    cin: 16,
    size: 120,
    width: 160,
    cout: 16,
    kernel: 3,
    stride: 1,
    pad: 1,
    groups: 16,
  },
  {
    name: "dw3x3/2 32 120x160",
    cin: 32,
    size: 120,
    width: 160,
    cout: 32,
    kernel: 3,
    stride: 2,
    pad: 1,
    groups: 32,
  },
  {
    name: "dw3x3 64 30x40",
    cin: 64,
    size: 30,
    width: 40,
    cout: 64,
    kernel: 3,
    stride: 1,
    pad: 1,
    groups: 64,
  },
  {
    name: "dw3x3 256 8x10",
    cin: 256,
    size: 8,
    width: 10,
    cout: 256,
    kernel: 3,
    stride: 1,
    pad: 1,
    groups: 256,
  },
  {
    name: "1x1 16>32 120x160",
    cin: 16,
    size: 120,
    width: 160,
    cout: 32,
    kernel: 1,
    stride: 1,
    pad: 0,
  },
  { name: "1x1 64>64 30x40", cin: 64, size: 30, width: 40, cout: 64, kernel: 1, stride: 1, pad: 0 },
  { name: "3x3 3>10 12", cin: 3, size: 12, cout: 10, kernel: 3, stride: 1, pad: 0 },
  { name: "3x3 10>16 5", cin: 10, size: 5, cout: 16, kernel: 3, stride: 1, pad: 0 },
  { name: "3x3 3>28 24", cin: 3, size: 24, cout: 28, kernel: 3, stride: 1, pad: 0 },
  { name: "3x3 28>48 11", cin: 28, size: 11, cout: 48, kernel: 3, stride: 1, pad: 0 },
  { name: "3x3 3>32 48", cin: 3, size: 48, cout: 32, kernel: 3, stride: 1, pad: 0 },
  { name: "3x3 64>64 10", cin: 64, size: 10, cout: 64, kernel: 3, stride: 1, pad: 0 },
  { name: "5x5 3>32 32", cin: 3, size: 32, cout: 32, kernel: 5, stride: 1, pad: 2 },
  { name: "5x5 32>32 16", cin: 32, size: 16, cout: 32, kernel: 5, stride: 1, pad: 2 },
  { name: "5x5 32>64 8", cin: 32, size: 8, cout: 64, kernel: 5, stride: 1, pad: 2 },
  { name: "5x5 1>20 28", cin: 1, size: 28, cout: 20, kernel: 5, stride: 1, pad: 0 },
  { name: "5x5 20>50 12", cin: 20, size: 12, cout: 50, kernel: 5, stride: 1, pad: 0 },
];

function option(args: string[], name: string): string | undefined {
  const at = args.indexOf(name);
  if (at < 0) return undefined;
  const value = args[at + 1];
  if (value === undefined) throw new Error(`${name} needs a value\nusage: ${USAGE}`);
  return value;
}

/**
 * The convolution of `shape` on seeded values; with `integer`, the deploy model's integer form
 * instead: q values in [-127, 127] (as float32) with offset_d 5, int8 weights, int32 bias.
 */
function argsOf(shape: Shape, integer: boolean): { args: ConvolutionArgs; macs: number } {
  const { cin, size, cout, kernel, stride, pad } = shape;
  const width = shape.width ?? size;
  const groups = shape.groups ?? 1;
  const out = Math.floor((size + 2 * pad - kernel) / stride) + 1;
  const outW = Math.floor((width + 2 * pad - kernel) / stride) + 1;
  const depth = cin / groups * kernel * kernel;
  const x = values(cin * size * width, 1);
  const weights = values(cout * depth, 2);
  const bias = values(cout, 3);
  const args: ConvolutionArgs = {
    ...(integer
      ? {
        x: x.map((v) => Math.round(v * 127)),
        offsetD: 5,
        weights: Int8Array.from(weights, (v) => Math.round(v * 127)),
        bias: Int32Array.from(bias, (v) => Math.round(v * 1000)),
      }
      : { x, weights: weights.map((v) => v * 0.05), bias }),
    shape: [1, cin, size, width],
    outputs: cout,
    groups,
    window: {
      kernel: [kernel, kernel],
      pad: [pad, pad],
      stride: [stride, stride],
      dilation: [1, 1],
    },
    outSize: [out, outW],
    post: [{ kind: "relu", slope: 0 }],
    algorithm: "direct",
  };
  return { args, macs: cout * depth * out * outW };
}

/** The engine module of assembly/ at git revision `rev`, built with `flags` (base64). */
async function buildAt(rev: string, flags: string[]): Promise<string> {
  const root = new URL("../", import.meta.url).pathname;
  const folder = await Deno.makeTempDir({ prefix: "bench_gemm_" });
  try {
    const archive = new Deno.Command("sh", {
      args: ["-c", `git -C '${root}' archive '${rev}' assembly | tar -x -C '${folder}'`],
    });
    const { code, stderr } = await archive.output();
    if (code !== 0) throw new Error(`git archive ${rev}: ${new TextDecoder().decode(stderr)}`);
    const here = Deno.cwd();
    Deno.chdir(folder);
    try {
      return encodeBase64(await compile("assembly/engine.ts", flags));
    } finally {
      Deno.chdir(here);
    }
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
}

/** GMAC per CPU second of `kernels` on `args`, over about `seconds` of CPU time. */
function measure(kernels: EngineKernels, args: ConvolutionArgs, macs: number, seconds: number) {
  kernels.convolution(args);
  let calls = 0;
  const started = cpuMicroseconds();
  let elapsed = 0;
  while (elapsed < seconds * 1e6 || calls < 2) {
    kernels.convolution(args);
    calls++;
    elapsed = cpuMicroseconds() - started;
  }
  return (macs * calls) / (elapsed / 1e6) / 1e9;
}

/** Float-net runs per CPU second of each build, interleaved (`runNet`, seeded inputs). */
async function benchNets(names: string[], rounds: number, seconds: number): Promise<void> {
  const builds: EngineBuild[] = relaxedSimdSupported() ? ["portable", "relaxed"] : ["portable"];
  console.log(`load average before: ${loadAverage()}`);
  console.log(
    `runNet runs per CPU second, median of ${rounds} rounds of ${seconds} CPU s per build, ` +
      "interleaved",
  );
  console.log(`| net | ${builds.join(" | ")} | ${builds.slice(1).map((b) => `${b} / portable`)} |`);
  console.log(`| --- |${" ---: |".repeat(2 * builds.length - 1)}`);
  for (const name of names) {
    const folder = modelFolder(name);
    const net = loadNet(
      await Deno.readTextFile(`${folder}/deploy.prototxt`),
      await Deno.readFile(`${folder}/weights.caffemodel`),
    );
    const inputs = new Map<string, Tensor>(
      netInputs(net).map(({ name, shape }, i) => [
        name,
        { shape, data: values(shape.reduce((a, b) => a * b, 1), 1 + i) },
      ]),
    );
    const samples: number[][] = builds.map(() => []);
    for (let round = 0; round < rounds; round++) {
      for (const [i, build] of builds.entries()) {
        useEngineBuild(build);
        await runNet(net, { inputs });
        let runs = 0;
        const started = cpuMicroseconds();
        let elapsed = 0;
        while (elapsed < seconds * 1e6 || runs < 2) {
          await runNet(net, { inputs });
          runs++;
          elapsed = cpuMicroseconds() - started;
        }
        samples[i].push(runs / (elapsed / 1e6));
      }
    }
    useEngineBuild("auto");
    const medians = samples.map(median);
    const ratios = samples.slice(1).map((own) => median(own.map((v, r) => v / samples[0][r])));
    console.log(
      `| ${name} | ${medians.map((m) => m.toPrecision(3)).join(" | ")} | ${
        ratios.map((m) => m.toFixed(2)).join(" | ")
      } |`,
    );
  }
  console.log(`load average after: ${loadAverage()}`);
}

async function main(args: string[]): Promise<void> {
  const nets = option(args, "--nets");
  const against = option(args, "--against");
  const rounds = Number(option(args, "--rounds") ?? 7);
  const seconds = Number(option(args, "--seconds") ?? 0.15);
  const names = option(args, "--shapes")?.split(",");
  const integer = args.includes("--integer");
  const shapes = names ? SHAPES.filter((shape) => names.includes(shape.name)) : SHAPES;
  if (!(rounds >= 1) || !(seconds > 0) || shapes.length === 0) {
    throw new Error(`bad options\nusage: ${USAGE}\nshapes: ${SHAPES.map((s) => s.name)}`);
  }
  if (nets !== undefined) return await benchNets(nets.split(","), rounds, seconds);
  const variants: { name: string; kernels: EngineKernels }[] = [];
  if (against !== undefined) {
    variants.push({
      name: `${against} portable`,
      kernels: await engineKernelsOf(await buildAt(against, [])),
    });
    if (relaxedSimdSupported()) {
      variants.push({
        name: `${against} relaxed`,
        kernels: await engineKernelsOf(await buildAt(against, RELAXED_FLAGS)),
      });
    }
  }
  variants.push({
    name: "portable",
    kernels: await engineKernelsOf(await engineModuleBase64("portable")),
  });
  if (relaxedSimdSupported()) {
    variants.push({
      name: "relaxed",
      kernels: await engineKernelsOf(await engineModuleBase64("relaxed")),
    });
  } else console.log("this runtime has no relaxed SIMD: portable build only");
  console.log(`load average before: ${loadAverage()}`);
  console.log(
    `GMAC per CPU second, median of ${rounds} rounds of ${seconds} CPU s per variant, interleaved` +
      (integer ? "; the deploy model's integer convolutions" : ""),
  );
  const base = variants[0].name;
  console.log(
    `| shape | ${variants.map((v) => v.name).join(" | ")} | ${
      variants.slice(1).map((v) => `${v.name} / ${base}`).join(" | ")
    } |`,
  );
  console.log(`| --- |${" ---: |".repeat(2 * variants.length - 1)}`);
  for (const shape of shapes) {
    const { args: convArgs, macs } = argsOf(shape, integer);
    const samples: number[][] = variants.map(() => []);
    for (let round = 0; round < rounds; round++) {
      variants.forEach((variant, i) => {
        samples[i].push(measure(variant.kernels, convArgs, macs, seconds));
      });
    }
    const medians = samples.map(median);
    // Ratios round by round (each pair measured back to back), then their median.
    const ratios = samples.slice(1).map((own) => median(own.map((v, r) => v / samples[0][r])));
    console.log(
      `| ${shape.name} | ${medians.map((m) => m.toFixed(2)).join(" | ")} | ${
        ratios.map((m) => m.toFixed(2)).join(" | ")
      } |`,
    );
  }
  console.log(`load average after: ${loadAverage()}`);
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (error) {
    console.error(`bench_gemm: ${error instanceof Error ? error.message : error}`);
    Deno.exit(1);
  }
}
