/**
 * The simulator's speed beside OpenCV's, in one run: for each real model of ../shared/models and
 * ResNet-50 (`bench-out/resnet50`, made by `scripts/make_model.ts resnet50`, 224x224), images
 * per second of `runNet` on the float, fake-quant and deploy nets (one thread), of the float net on
 * every core (an `EnginePool` on one thread per core: this one and a worker per other core, samples
 * of the row's batch streamed through it back to back, start-up not counted), and of OpenCV's Caffe
 * importer
 * (Debian's `python3-opencv` through `/usr/bin/python3`, `cv2.dnn.readNetFromCaffe`) with one thread
 * (`cv2.setNumThreads(1)`) and with every core, at batch 1 and batched (`--batch`, default 8),
 * with the ratios of the float engine to OpenCV. Seeded inputs uniform in [-1, 1). Before a
 * model's rounds at each batch size, each of our runners and the pool run for `--warmup` seconds
 * (default 1) unmeasured. V8 compiles WebAssembly and JavaScript quickly first and re-compiles hot
 * functions later, each worker again on its own: a pool of two workers on mtcnn_pnet spent ~0.18
 * ms of worker time per sample at first and ~0.04 ms after about 1.5 s (measured on this 2-core
 * machine). The figures are then those of a long run (calibration or evaluation over hundreds of
 * images); OpenCV's native code needs no warm-up.
 * Then runs for `--seconds` each (default 0.5).
 *
 * The machine may be shared: each measurement is taken `--rounds` times (default 3), ours and
 * OpenCV's interleaved so that both see the same load, and medians are shown; the `uptime` load
 * average is printed with each model. A net that fails at a batch size (e.g. one whose Reshape
 * pins the batch) shows `-` there. Nothing here is asserted anywhere.
 *
 * `--against DIR` (another checkout of this repository, e.g. `git worktree add DIR <commit>`, with
 * its WebAssembly built) adds that checkout's `runNet` on its own float net, in the same rounds,
 * and its ratio to OpenCV's one thread: a before/after of engine work under the same load.
 *
 * ```sh
 * npx deno run -A scripts/bench_engine.ts [model ...] [--batch N] [--rounds N] [--seconds S] \
 *   [--warmup S] [--build relaxed|portable] [--against DIR] [--json]
 * ```
 * (all models when none is named; `resnet50` names the benchmark net.)
 *
 * @module
 */

import { loadNet } from "../src/caffe/model.ts";
import { type Net, netInputs } from "../src/caffe/net.ts";
import { uniformGenerator } from "../src/engine/inputs.ts";
import { EnginePool } from "../src/engine/engine_pool.ts";
import { runNet, type Tensor } from "../src/engine/run.ts";
import { convertInMemory } from "../src/quant/convert.ts";
import { makeRecord } from "../src/quant/make_record.ts";
import { type EngineBuild, engineBuild, useEngineBuild } from "../src/wasm/engine_build.ts";
import {
  exists,
  figure,
  listModels,
  loadAverage,
  markdownTable,
  median,
  modelFolder,
  OpenCv,
} from "./opencv_driver.ts";

const USAGE = "npx deno run -A scripts/bench_engine.ts [model ...] [--batch N] [--rounds N] " +
  "[--seconds S] [--warmup S] [--build relaxed|portable] [--against DIR] [--json]";

// ---------------------------------------------------------------------------------------------
// Ours
// ---------------------------------------------------------------------------------------------

/** Seeded inputs (uniform in [-1, 1)) of the declared shapes with batch `batch`. */
export function batchInputs(net: Net, batch: number): Map<string, Tensor> {
  const next = uniformGenerator(1);
  const inputs = new Map<string, Tensor>();
  for (const { name, shape } of netInputs(net)) {
    const batched = [batch, ...shape.slice(1)];
    const data = new Float32Array(batched.reduce((a, b) => a * b, 1)).map(next);
    inputs.set(name, { shape: batched, data });
  }
  return inputs;
}

/** A net and the `runNet` that runs it (this checkout's or another's, see `--against`). */
interface Runner {
  net: Net;
  runNet: typeof runNet;
}

/** Runs per second of `net` on `inputs` (NaN when the net fails on them). */
async function runsPerSecond(
  { net, runNet }: Runner,
  inputs: Map<string, Tensor>,
  seconds: number,
): Promise<number> {
  try {
    await runNet(net, { inputs });
  } catch {
    return NaN;
  }
  let runs = 0;
  const start = performance.now();
  while (runs < 2 || performance.now() - start < seconds * 1000) {
    await runNet(net, { inputs });
    runs++;
  }
  return runs * 1000 / (performance.now() - start);
}

/**
 * Runs per second of the pool's nets on `inputs`, samples streamed through it for `seconds` (at
 * least two per worker); NaN when the net fails on them.
 */
async function poolRunsPerSecond(
  pool: EnginePool,
  inputs: Map<string, Tensor>,
  seconds: number,
): Promise<number> {
  const stream = function* (count: number, until: number) {
    for (let i = 0; i < count || performance.now() < until; i++) yield inputs;
  };
  try {
    for await (const _ of pool.runAll(stream(pool.threads, 0))) continue;
  } catch {
    return NaN;
  }
  let runs = 0;
  const start = performance.now();
  for await (const _ of pool.runAll(stream(2 * pool.threads, start + seconds * 1000))) runs++;
  return runs * 1000 / (performance.now() - start);
}

/**
 * The engine of another checkout at `dir` (its src/ modules), in the engine build `build`: its
 * `loadNet` and `runNet`.
 */
async function otherEngine(dir: string, build: string) {
  const root = new URL(`file://${Deno.realPathSync(dir).replace(/\/?$/, "/")}`);
  const module = (path: string) => import(new URL(path, root).href);
  const [model, run, builds] = await Promise.all([
    module("src/caffe/model.ts"),
    module("src/engine/run.ts"),
    module("src/wasm/engine_build.ts"),
  ]);
  builds.useEngineBuild(build);
  return { loadNet: model.loadNet as typeof loadNet, runNet: run.runNet as typeof runNet };
}

/** The measurements of one model at one batch size, images per second (medians). */
interface Row {
  model: string;
  batch: number;
  load: string;
  float: number;
  /** The `--against` checkout's float net (NaN without it). */
  againstFloat: number;
  floatAll: number;
  fakeQuant: number;
  deploy: number;
  opencv1: number;
  opencvAll: number;
}

async function benchModel(
  name: string,
  opencv: OpenCv,
  cores: number,
  options: {
    batches: number[];
    rounds: number;
    seconds: number;
    warmup: number;
    against?: Awaited<ReturnType<typeof otherEngine>>;
  },
): Promise<Row[]> {
  const folder = modelFolder(name);
  const modelFile = `${folder}/deploy.prototxt`;
  const weightsFile = `${folder}/weights.caffemodel`;
  const model = await Deno.readTextFile(modelFile);
  const weights = await Deno.readFile(weightsFile);
  const float = loadNet(model, weights);
  const record = await makeRecord(float);
  const { files } = await convertInMemory({ model, weights, record });
  const runners: Record<"float" | "fakeQuant" | "deploy", Runner> = {
    float: { net: float, runNet },
    fakeQuant: { net: loadNet(files.fakeQuantModel, files.fakeQuantWeights), runNet },
    deploy: { net: loadNet(files.deployModel, files.deployWeights), runNet },
  };
  const against = options.against === undefined
    ? undefined
    : { net: options.against.loadNet(model, weights), runNet: options.against.runNet };
  const loaded = await opencv.send({
    op: "load",
    key: name,
    model: modelFile,
    weights: weightsFile,
  });
  const pool = await EnginePool.open([float], { threads: cores });
  const rows: Row[] = [];
  try {
    for (const batch of options.batches) rows.push(await benchBatch(batch));
  } finally {
    pool.close();
  }
  return rows;

  async function benchBatch(batch: number): Promise<Row> {
    const inputs = batchInputs(float, batch);
    const opencvInputs = [...inputs].map(([blob, tensor]) => [blob, tensor.shape]);
    const samples: Record<
      "float" | "againstFloat" | "floatAll" | "fakeQuant" | "deploy" | "opencv1" | "opencvAll",
      number[]
    > = {
      float: [],
      againstFloat: [],
      floatAll: [],
      fakeQuant: [],
      deploy: [],
      opencv1: [],
      opencvAll: [],
    };
    const load = loadAverage();
    const timeOpenCv = async (threads: number) => {
      if (loaded.error !== undefined) return NaN;
      const reply = await opencv.send({
        op: "time",
        key: name,
        threads,
        inputs: opencvInputs,
        seconds: options.seconds,
      });
      return typeof reply.perSecond === "number" ? reply.perSecond * batch : NaN;
    };
    for (const runner of [runners.float, runners.fakeQuant, runners.deploy, against]) {
      if (runner !== undefined) await runsPerSecond(runner, inputs, options.warmup);
    }
    await poolRunsPerSecond(pool, inputs, options.warmup);
    for (let round = 0; round < options.rounds; round++) {
      for (const kind of ["float", "fakeQuant", "deploy"] as const) {
        samples[kind].push(batch * await runsPerSecond(runners[kind], inputs, options.seconds));
      }
      if (against !== undefined) {
        samples.againstFloat.push(batch * await runsPerSecond(against, inputs, options.seconds));
      }
      samples.floatAll.push(batch * await poolRunsPerSecond(pool, inputs, options.seconds));
      samples.opencv1.push(await timeOpenCv(1));
      samples.opencvAll.push(await timeOpenCv(cores));
    }
    return {
      model: name,
      batch,
      load,
      float: median(samples.float),
      againstFloat: against === undefined ? NaN : median(samples.againstFloat),
      floatAll: median(samples.floatAll),
      fakeQuant: median(samples.fakeQuant),
      deploy: median(samples.deploy),
      opencv1: median(samples.opencv1),
      opencvAll: median(samples.opencvAll),
    };
  }
}

/** A figure with three significant digits or so, or "-". */
/** The rows as a Markdown table; `against` names the `--against` checkout, if any. */
function table(rows: Row[], cores: number, against?: string): string {
  const header = [
    "model",
    "batch",
    "float",
    ...(against === undefined ? [] : [`float of ${against}`]),
    `float ${cores} threads`,
    "fake-quant",
    "deploy",
    "OpenCV 1 thread",
    `OpenCV ${cores} threads`,
    "float / OpenCV 1",
    ...(against === undefined ? [] : [`float of ${against} / OpenCV 1`]),
    `float ${cores} threads / OpenCV 1`,
    `float ${cores} threads / OpenCV ${cores}`,
    "deploy / float",
    "load avg",
  ];
  const lines = rows.map((row) => [
    row.model,
    String(row.batch),
    figure(row.float),
    ...(against === undefined ? [] : [figure(row.againstFloat)]),
    figure(row.floatAll),
    figure(row.fakeQuant),
    figure(row.deploy),
    figure(row.opencv1),
    figure(row.opencvAll),
    figure(row.float / row.opencv1),
    ...(against === undefined ? [] : [figure(row.againstFloat / row.opencv1)]),
    figure(row.floatAll / row.opencv1),
    figure(row.floatAll / row.opencvAll),
    figure(row.deploy / row.float),
    row.load.split(" ")[0],
  ]);
  return markdownTable(header, lines);
}

async function main(args: string[]): Promise<number> {
  const named: string[] = [];
  let batch = 8;
  let rounds = 3;
  let seconds = 0.5;
  let warmup = 1;
  let json = false;
  let build = "auto";
  let againstDir: string | undefined;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--batch") batch = Number(args[++i]);
    else if (args[i] === "--rounds") rounds = Number(args[++i]);
    else if (args[i] === "--seconds") seconds = Number(args[++i]);
    else if (args[i] === "--warmup") warmup = Number(args[++i]);
    else if (args[i] === "--json") json = true;
    else if (args[i] === "--build") build = args[++i];
    else if (args[i] === "--against") againstDir = args[++i];
    else if (args[i].startsWith("-")) named.push("?");
    else named.push(args[i]);
  }
  const models = named.length > 0 ? named : listModels();
  const unknown = models.find((name) => !exists(`${modelFolder(name)}/weights.caffemodel`));
  if (
    unknown !== undefined || !Number.isInteger(batch) || batch < 1 ||
    !Number.isInteger(rounds) || rounds < 1 || !(seconds > 0) || !(warmup >= 0) ||
    !["auto", "relaxed", "portable"].includes(build) ||
    (againstDir !== undefined && !exists(`${againstDir}/src/engine/run.ts`))
  ) {
    if (unknown !== undefined) console.error(`no model "${unknown}" at ${modelFolder(unknown)}`);
    if (againstDir !== undefined && !exists(`${againstDir}/src/engine/run.ts`)) {
      console.error(`--against: no checkout of this repository at ${againstDir}`);
    }
    console.error(`usage: ${USAGE}`);
    return 2;
  }
  useEngineBuild(build as EngineBuild);
  const against = againstDir === undefined ? undefined : await otherEngine(againstDir, build);
  const opencv = new OpenCv();
  const { version, cores } = await opencv.reply() as { version: string; cores: number };
  const batches = batch === 1 ? [1] : [1, batch];
  const rows: Row[] = [];
  try {
    for (const name of models) {
      if (!json) console.error(`${name}… (load ${loadAverage()})`);
      rows.push(
        ...await benchModel(name, opencv, cores, {
          batches,
          rounds,
          seconds,
          warmup,
          against,
        }),
      );
    }
  } finally {
    await opencv.close();
  }
  if (json) {
    console.log(JSON.stringify({ opencv: version, cores, rounds, rows }, null, 2));
    return 0;
  }
  console.log(
    `images/s, medians of ${rounds} interleaved rounds after ${warmup} s of warm-up per ` +
      "runner; caffe-quant on one thread; " +
      `engine build ${engineBuild()}; OpenCV ${version}; ${cores} cores; load average at the ` +
      "start of each row",
  );
  console.log(table(rows, cores, againstDir));
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
