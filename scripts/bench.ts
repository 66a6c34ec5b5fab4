/**
 * Conversion benchmark: converts each benchmark net (made by scripts/make_model.ts) under Deno,
 * Node and Chromium and prints, per runtime and net, the wall time of each stage, the end-to-end
 * time, the peak resident memory, and the I/O floor measured in the same run (reading the input
 * files and writing files of the output sizes with plain file APIs) with the ratio of the two.
 *
 * ```sh
 * npx deno run -A scripts/make_model.ts all          # once: bench-out/resnet50, bench-out/vgg16
 * npx deno run -A scripts/bench.ts [resnet50 vgg16] [--runs N] [--warmup N] \
 *   [--runtimes deno,node,chromium] \
 *   [--dir DIR] [--json]
 * ```
 *
 * `--dir` names the folder holding one folder per net (default `bench-out/`); each net's folder
 * holds `deploy.prototxt`, `weights.caffemodel` and `record.txt` (CI smoke-runs this script on a
 * tiny net this way).
 *
 * Each runtime and net is measured in a fresh process: `--warmup` conversions (default 3; the
 * first one's time is the `first` column), then `--runs` (default 5) rounds of floor + conversion;
 * medians are shown. The in-process figures are those of a script converting model after model:
 * V8 keeps re-compiling hot code over the first conversions (Node's ResNet-50 took 570, 437, 281,
 * 358, 234 ms for its first five), and no garbage collection is forced between the rounds, as such
 * a script forces none (a forced one shrinks V8's young generation, which the next conversion's
 * record parse, ResNet-50's 53 k fields, then pays to grow again: its record stage took 39–50 ms
 * after one, 17–31 ms without). The CLI rows are cold by design. Peak memory is the process's
 * VmHWM (Linux), reset before each warm-up conversion through /proc/self/clear_refs after a
 * garbage collection; the largest is shown (the warm-ups come before any floor measurement, whose
 * whole-file read the allocator may keep in the process after it is freed). Node runs an esbuild
 * bundle of this script made from the current sources; Chromium (playwright-core,
 * /usr/bin/chromium or $CHROMIUM) runs the in-memory API (`core.ts` bundled; `convert` on the
 * caffemodel's bytes, and `convertToBlobs` on it as a `File` set in a file input, as "chromium
 * blobs" in the page and "chromium worker" in a dedicated worker, as the web app converts) on
 * inputs fetched from a local server, and its memory is the renderer process's. The CLI rows
 * time `caffe-quant convert` as a user runs it: `deno run -A src/cli.ts`, `node` on the bin's
 * bundle, and `npx caffe-quant` (dist/cli.js from `npm run build`), start-up included, against
 * the in-process floor of that runtime; their memory is /usr/bin/time's maximum. Also measured, in Deno and Node: caffemodel parsing (GB/s), text
 * parsing of the prototxt and record (MB/s), weight quantization through the kernels (w_q with
 * folding and the finiteness check, and w_fake from w_q, each into a caller's buffer; G weights/s)
 * and the in-memory API's time.
 *
 * Timing is never asserted anywhere; this script only reports.
 *
 * @module
 */

import { npmSpecifiers } from "./npm_specifiers.ts";
import { open, readFile, rm, stat, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import process from "node:process";
import { loadNet } from "../src/caffe/model.ts";
import { readCaffemodel } from "../src/caffe/caffemodel_read.ts";
import { readPrototxt } from "../src/caffe/prototxt.ts";
import { convertModel } from "../src/io/convert_model.ts";
import { outputNames } from "../src/output_names.ts";
import { caffeType } from "../src/proto/schema.ts";
import { parseText } from "../src/proto/text_read.ts";
import { convertInMemory } from "../src/quant/convert.ts";
import { fuseBatchNorm } from "../src/quant/fuse.ts";
import { readRecord } from "../src/quant/record.ts";
import { weightTensor } from "../src/quant/weights.ts";
import { quantKernels } from "../src/wasm/quant.ts";
import { channelLayout } from "../src/quant/channel_layout.ts";
import { CHROMIUM_ARGS, chromiumPath } from "./chromium.ts";
import { buildCli } from "./cli_bundle.ts";

const USAGE = "npx deno run -A scripts/bench.ts [model...] [--runs N] [--warmup N] " +
  "[--runtimes deno,node,chromium] [--dir DIR] [--json]";

/** The benchmark nets, in bench-out/<name>/ (scripts/make_model.ts). */
const MODELS = ["resnet50", "vgg16"];

/** The input files of a benchmark net, in its folder. */
const INPUTS = { model: "deploy.prototxt", weights: "weights.caffemodel", record: "record.txt" };

/** Marks the result line a worker prints. */
const RESULT_PREFIX = "BENCH_RESULT ";

/** What one runtime measured on one net. */
interface Result {
  runtime: string;
  model: string;
  runs: number;
  /** Input caffemodel bytes. */
  weightsBytes: number;
  /** Median milliseconds per stage of the conversion (convertModel's timings). */
  stages: Record<string, number>;
  /** Median end-to-end milliseconds (files in, files out, or in memory for Chromium). */
  total: number;
  /** The first (cold) conversion's milliseconds. */
  first: number;
  /** Median milliseconds of the I/O floor (absent in Chromium). */
  floor?: number;
  /**
   * The fastest conversion over the fastest floor: on a busy machine the medians carry other
   * processes' load, the best rounds less of it.
   */
  bestRatio?: number;
  /** Largest peak resident memory of the conversions, bytes (absent when unmeasurable). */
  peakRss?: number;
  /** Median milliseconds of the in-memory API (convertInMemory / core `convert`). */
  inMemory?: number;
  /** Caffemodel parsing, GB/s. */
  caffemodelGBps?: number;
  /** Prototxt + record text parsing, MB/s. */
  textMBps?: number;
  /** Weight quantization (w_q: folding, the finiteness check, rounding), G weights/s. */
  quantizeGWps?: number;
  /** Fake-quant weights (w_fake from w_q) into a caller's buffer, G weights/s. */
  fakeGWps?: number;
}

// ---------------------------------------------------------------------------------------------
// Measuring (runs in Deno and, bundled, in Node)
// ---------------------------------------------------------------------------------------------

/** The median of `values`. */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Milliseconds `work` takes, median of `runs` after one warm-up. */
async function timeMedian(runs: number, work: () => unknown): Promise<number> {
  await work();
  const times: number[] = [];
  for (let run = 0; run < runs; run++) {
    const started = performance.now();
    await work();
    times.push(performance.now() - started);
  }
  return median(times);
}

/** Runs a garbage collection when the runtime exposes one (--expose-gc). */
function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** A process's peak resident memory from /proc (bytes), or undefined. */
async function peakResident(pid: number | "self"): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const match = /VmHWM:\s+(\d+) kB/.exec(status);
    return match === null ? undefined : Number(match[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** Resets a process's peak resident memory to its current one; false when not allowed. */
async function resetPeakResident(pid: number | "self"): Promise<boolean> {
  try {
    await writeFile(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/**
 * The I/O floor: reads the three inputs and writes files of `sizes` (the outputs' sizes) from
 * the bytes just read, with plain file calls.
 */
async function ioFloor(paths: string[], sizes: number[], dir: string): Promise<number> {
  const started = performance.now();
  const inputs = await Promise.all(paths.map((path) => readFile(path)));
  const source = inputs.reduce((largest, bytes) => bytes.length > largest.length ? bytes : largest);
  for (let index = 0; index < sizes.length; index++) {
    const handle = await open(`${dir}/floor-${index}.bin`, "w");
    for (let done = 0; done < sizes[index];) {
      const length = Math.min(source.length, sizes[index] - done);
      done += (await handle.write(source, 0, length)).bytesWritten;
    }
    await handle.close();
  }
  return performance.now() - started;
}

/** Measures one net in this process (Deno or Node); `modelsDir` holds its folder. */
async function measure(
  modelsDir: string,
  model: string,
  runs: number,
  warmup: number,
): Promise<Result> {
  const runtime = typeof Deno === "object" ? "deno" : "node";
  const folder = `${modelsDir}/${model}`;
  const paths = [INPUTS.model, INPUTS.weights, INPUTS.record].map((file) => `${folder}/${file}`);
  const outDir = `${modelsDir}/out-${runtime}-${model}`;
  const savePath = `${outDir}/${model}`;
  const options = {
    modelFile: paths[0],
    weightsFile: paths[1],
    recordFile: paths[2],
    savePath,
  };

  // Peak memory over the warm-up conversions, which run before any floor measurement: the floor
  // reads the whole caffemodel into memory, and the allocator may keep those pages afterwards.
  let first = 0;
  let peakRss: number | undefined = 0;
  for (let run = 0; run < warmup; run++) {
    collectGarbage();
    const canReset = await resetPeakResident("self");
    const started = performance.now();
    await convertModel(options);
    if (run === 0) first = performance.now() - started;
    const peak = canReset ? await peakResident("self") : undefined;
    peakRss = peak === undefined || peakRss === undefined ? undefined : Math.max(peakRss, peak);
  }
  const { names } = outputNames(savePath);
  const outputFiles = Object.values(names).map((name) => `${outDir}/${name}`);
  const sizes = await Promise.all(outputFiles.map(async (path) => (await stat(path)).size));
  await ioFloor(paths, sizes, outDir);

  const floors: number[] = [];
  const totals: number[] = [];
  const stageRuns: Record<string, number>[] = [];
  for (let run = 0; run < runs; run++) {
    floors.push(await ioFloor(paths, sizes, outDir));
    const started = performance.now();
    const report = await convertModel(options);
    totals.push(performance.now() - started);
    stageRuns.push(report.timings);
  }
  const stages: Record<string, number> = {};
  for (const stage of Object.keys(stageRuns[0])) {
    stages[stage] = median(stageRuns.map((timings) => timings[stage] ?? 0));
  }

  // The pieces, on inputs read into memory now (after the memory measurements).
  const [modelBytes, weightsBuffer, recordBytes] = await Promise.all(
    paths.map((path) => readFile(path)),
  );
  const [modelText, recordText] = [modelBytes, recordBytes].map((bytes) =>
    new TextDecoder().decode(bytes)
  );
  const weights = new Uint8Array(
    weightsBuffer.buffer,
    weightsBuffer.byteOffset,
    weightsBuffer.byteLength,
  );
  collectGarbage();
  const caffemodelMs = await timeMedian(runs, () => readCaffemodel(weights));
  const recordType = caffeType("ScaleOffsetRecord");
  const textMs = await timeMedian(runs, () => {
    readPrototxt(modelText);
    parseText(recordText, recordType);
  });
  const { quantizeMs, fakeMs, quantizedCount } = await timeWeightKernels(
    modelText,
    weights,
    recordText,
    runs,
  );
  collectGarbage();
  const inMemory = await timeMedian(
    runs,
    () => convertInMemory({ model: modelText, weights, record: recordText }),
  );
  await rm(outDir, { recursive: true, force: true });
  return {
    runtime,
    model,
    runs,
    weightsBytes: weights.length,
    stages,
    total: median(totals),
    first,
    floor: median(floors),
    bestRatio: Math.min(...totals) / Math.min(...floors),
    peakRss: peakRss || undefined,
    inMemory,
    caffemodelGBps: weights.length / caffemodelMs / 1e6,
    textMBps: (modelText.length + recordText.length) / textMs / 1e3,
    quantizeGWps: quantizedCount / quantizeMs / 1e6,
    fakeGWps: quantizedCount / fakeMs / 1e6,
  };
}

/**
 * Milliseconds the kernels take over every weight tensor the record quantizes (median of
 * `runs`): w_q into an int8 array, and w_fake from it into a float buffer.
 */
async function timeWeightKernels(
  modelText: string,
  weights: Uint8Array,
  recordText: string,
  runs: number,
): Promise<{ quantizeMs: number; fakeMs: number; quantizedCount: number }> {
  const net = loadNet(modelText, weights);
  const record = readRecord(recordText, net);
  const skipFusion = new Set(
    [...record.values()].filter((entry) => entry.skipFusion).map((entry) => entry.layer),
  );
  const fused = (await fuseBatchNorm(net, { skipFusion })).net;
  const kernels = await quantKernels();
  const jobs = fused.layers.flatMap((layer) => {
    const scaleW = record.get(layer.name)?.factors?.scaleW;
    if (scaleW === undefined || layer.blobs.length === 0) return [];
    return [{ tensor: weightTensor(layer.blobs[0], channelLayout(layer)), scaleW }];
  });
  const counts = jobs.map((job) => job.tensor.bytes.byteLength / 4);
  const int8 = new Int8Array(Math.max(...counts));
  const floats = new Uint8Array(int8.length * 4);
  const quantizeMs = await timeMedian(runs, () => {
    jobs.forEach((job, i) =>
      kernels.quantizeToInt8(job.tensor, job.scaleW, int8.subarray(0, counts[i]))
    );
  });
  const fakeMs = await timeMedian(runs, () => {
    jobs.forEach((job, i) => {
      const count = counts[i];
      kernels.writeFakeWeights(
        int8.subarray(0, count),
        job.tensor.layout,
        job.scaleW,
        0,
        count,
        floats.subarray(0, count * 4),
      );
    });
  });
  return { quantizeMs, fakeMs, quantizedCount: counts.reduce((a, b) => a + b, 0) };
}

/** The worker's entry: measures one net and prints the result line. */
async function runWorker(args: string[]): Promise<void> {
  const [modelsDir, model, runs, warmup] = args;
  const result = await measure(modelsDir, model, Number(runs), Number(warmup));
  process.stdout.write(RESULT_PREFIX + JSON.stringify(result) + "\n");
}

// ---------------------------------------------------------------------------------------------
// Orchestrating (Deno)
// ---------------------------------------------------------------------------------------------

/** The repository root (a path ending in `/`). */
const root = new URL("../", import.meta.url).pathname;

/** Runs a command; returns the result line it printed, failing with its output otherwise. */
async function runMeasurement(command: string, args: string[]): Promise<Result> {
  const output = await new Deno.Command(command, { args, cwd: root, stdout: "piped" }).output();
  const text = new TextDecoder().decode(output.stdout);
  const line = text.split("\n").find((entry) => entry.startsWith(RESULT_PREFIX));
  if (!output.success || line === undefined) {
    throw new Error(`${command} ${args.join(" ")} failed:\n${text}`);
  }
  return JSON.parse(line.slice(RESULT_PREFIX.length));
}

/** Bundles this script for Node, and core.ts for the browser, into `dir`. */
async function buildBundles(dir: string): Promise<void> {
  const esbuild = await import("esbuild");
  const common = {
    absWorkingDir: root,
    bundle: true,
    format: "esm" as const,
    logLevel: "warning" as const,
    plugins: [npmSpecifiers(root)],
  };
  try {
    await esbuild.build({
      ...common,
      entryPoints: ["scripts/bench.ts"],
      outfile: `${dir}/bench.node.mjs`,
      platform: "node",
      target: "node20",
      external: ["playwright-core", "esbuild"],
      define: { "import.meta.main": "true" },
    });
    await buildCli(esbuild.build, common, dir);
    await esbuild.build({
      ...common,
      entryPoints: ["core.ts"],
      outfile: `${dir}/core.browser.js`,
      platform: "browser",
      target: "es2022",
    });
  } finally {
    await esbuild.stop();
  }
}

/**
 * The benchmark page: loads the inputs once, then converts on request, in the page or (mode
 * "worker") in a dedicated worker as the web app does, where `FileReaderSync` reads the File.
 */
const PAGE = `<!doctype html><meta charset="utf-8"><title>caffe-quant bench</title>
<input type="file" id="weights">
<script type="module">
import { convert, convertToBlobs } from "/core.js";
let input;
const worker = new Worker("/worker.js", { type: "module" });
window.loadInputs = async (model, asBlob) => {
  input = undefined;
  const get = (file) => fetch("/files/" + model + "/" + file);
  const [modelText, weights, record] = await Promise.all([
    get("${INPUTS.model}").then((r) => r.text()),
    // As a user gives it: a File picked in a file input (the bench sets it), kept on disk.
    asBlob
      ? document.getElementById("weights").files[0]
      : get("${INPUTS.weights}").then((r) => r.arrayBuffer()).then((b) => new Uint8Array(b)),
    get("${INPUTS.record}").then((r) => r.text()),
  ]);
  input = { model: modelText, weights, record };
  return asBlob ? weights.size : weights.length;
};
window.convertOnce = async (mode) => {
  globalThis.gc?.();
  if (mode === "worker") {
    const reply = new Promise((resolve) => (worker.onmessage = ({ data }) => resolve(data)));
    worker.postMessage(input);
    return await reply;
  }
  const started = performance.now();
  const { report } = await (mode === "file" ? convertToBlobs : convert)(input);
  return { total: performance.now() - started, timings: report.timings };
};
window.ready = true;
</script>`;

/** The benchmark page's worker: converts the File it is sent with `convertToBlobs`. */
const WORKER = `import { convertToBlobs } from "/core.js";
onmessage = async ({ data }) => {
  globalThis.gc?.();
  const started = performance.now();
  const { report } = await convertToBlobs(data);
  postMessage({ total: performance.now() - started, timings: report.timings });
};`;

/** Process ids of `pid`'s descendants (from /proc). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(parent, [...(children.get(parent) ?? []), Number(entry.name)]);
    } catch {
      // The process ended meanwhile.
    }
  }
  const found: number[] = [];
  const visit = (id: number) => {
    for (const child of children.get(id) ?? []) {
      found.push(child);
      visit(child);
    }
  };
  visit(pid);
  return found;
}

/** The renderer processes among `pids`. */
function renderers(pids: number[]): number[] {
  return pids.filter((pid) => {
    try {
      return Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes("--type=renderer");
    } catch {
      return false;
    }
  });
}

/** Measures the in-memory API on each net in headless Chromium. */
async function measureChromium(
  models: string[],
  modelsDir: string,
  bundleDir: string,
  runs: number,
  warmup: number,
): Promise<Result[]> {
  const { chromium } = await import("playwright-core");
  const core = await Deno.readFile(`${bundleDir}/core.browser.js`);
  const listening = Promise.withResolvers<number>();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => listening.resolve(port),
  }, async (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/") return new Response(PAGE, { headers: { "content-type": "text/html" } });
    if (path === "/core.js" || path === "/worker.js") {
      const body = path === "/core.js" ? core : WORKER;
      return new Response(body, { headers: { "content-type": "text/javascript" } });
    }
    const match = /^\/files\/(\w+)\/([\w.]+)$/.exec(path);
    if (match === null) return new Response("not found", { status: 404 });
    const file = await Deno.open(`${modelsDir}/${match[1]}/${match[2]}`);
    return new Response(file.readable);
  });
  const port = await listening.promise;
  const browserServer = await chromium.launchServer({
    executablePath: chromiumPath,
    headless: true,
    args: [...CHROMIUM_ARGS, "--js-flags=--expose-gc"],
  });
  const results: Result[] = [];
  try {
    const browser = await chromium.connect(browserServer.wsEndpoint());
    const browserPid = browserServer.process().pid!;
    for (const model of models) {
      const page = await browser.newPage();
      page.setDefaultTimeout(600_000);
      await page.goto(`http://127.0.0.1:${port}/`);
      await page.waitForFunction(() => (globalThis as { ready?: boolean }).ready === true);
      for (const mode of ["bytes", "file", "worker"] as const) {
        // `convert` on the caffemodel's bytes; `convertToBlobs` on it as a File (read by layer in
        // the page, as the kernels stream it in a worker).
        const blobs = mode !== "bytes";
        if (blobs) await page.setInputFiles("#weights", `${modelsDir}/${model}/${INPUTS.weights}`);
        const weightsBytes = await page.evaluate(
          ([name, asBlob]) =>
            (globalThis as unknown as { loadInputs(m: string, b: boolean): Promise<number> })
              .loadInputs(name, asBlob),
          [model, blobs] as [string, boolean],
        );
        const convertOnce = () =>
          page.evaluate((how) =>
            (globalThis as unknown as {
              convertOnce(
                mode: string,
              ): Promise<{ total: number; timings: Record<string, number> }>;
            }).convertOnce(how), mode);
        const first = (await convertOnce()).total;
        for (let run = 1; run < warmup; run++) await convertOnce();
        const totals: number[] = [];
        const stageRuns: Record<string, number>[] = [];
        let peakRss: number | undefined = 0;
        for (let run = 0; run < runs; run++) {
          const pids = renderers(descendants(browserPid));
          const resets = await Promise.all(pids.map((pid) => resetPeakResident(pid)));
          const { total, timings } = await convertOnce();
          totals.push(total);
          stageRuns.push(timings);
          const peaks = await Promise.all(pids.map((pid) => peakResident(pid)));
          const peak = resets.every(Boolean) && peaks.every((value) => value !== undefined)
            ? Math.max(...peaks as number[])
            : undefined;
          peakRss = peak === undefined || peakRss === undefined
            ? undefined
            : Math.max(peakRss, peak);
        }
        const stages: Record<string, number> = {};
        for (const stage of Object.keys(stageRuns[0])) {
          stages[stage] = median(stageRuns.map((timings) => timings[stage] ?? 0));
        }
        const total = median(totals);
        results.push({
          runtime: { bytes: "chromium", file: "chromium blobs", worker: "chromium worker" }[mode],
          model,
          runs,
          weightsBytes,
          stages,
          total,
          first,
          peakRss: peakRss || undefined,
          inMemory: total,
        });
      }
      await page.close();
    }
    await browser.close();
  } finally {
    await browserServer.close();
    await server.shutdown();
  }
  return results;
}

/** A way to run the `caffe-quant` bin: the row's name, the program and its first arguments. */
interface CliRunner {
  runtime: string;
  command: string;
  args: string[];
  /** The runtime whose in-process floor the row is compared with. */
  floorOf: string;
}

/** The bin runners measured: `deno run`, `node` on the bundled bin, and `npx caffe-quant`. */
function cliRunners(runtimes: string[], bundleDir: string): CliRunner[] {
  const runners: CliRunner[] = [];
  if (runtimes.includes("deno")) {
    runners.push({
      runtime: "deno cli",
      command: Deno.execPath(),
      args: ["run", "-A", "src/cli.ts"],
      floorOf: "deno",
    });
  }
  if (runtimes.includes("node")) {
    runners.push({
      runtime: "node cli",
      command: "node",
      args: [`${bundleDir}/cli.js`],
      floorOf: "node",
    });
    // npx runs the package's own bin, dist/cli.js (`npm run build` makes it).
    try {
      Deno.statSync(`${root}dist/cli.js`);
      runners.push({
        runtime: "npx cli",
        command: "npx",
        args: ["--no-install", "caffe-quant"],
        floorOf: "node",
      });
    } catch {
      console.error("no dist/cli.js (npm run build): npx caffe-quant is not measured");
    }
  }
  return runners;
}

/**
 * Times `caffe-quant convert` on one net end to end as a user runs it (a fresh process: runtime
 * start-up, module loading, conversion, exit), one warm-up then `runs` rounds; the peak memory
 * is the largest maximum resident size /usr/bin/time reports for the process tree.
 */
async function measureCli(
  runner: CliRunner,
  modelsDir: string,
  model: string,
  runs: number,
  floor: Result | undefined,
): Promise<Result> {
  const folder = `${modelsDir}/${model}`;
  const outDir = `${modelsDir}/out-cli-${model}`;
  const inputs = [INPUTS.model, INPUTS.weights, INPUTS.record].map((file) => `${folder}/${file}`);
  const timeFile = `${outDir}.time`;
  let timed = true;
  try {
    Deno.statSync("/usr/bin/time");
  } catch {
    timed = false;
  }
  const once = async () => {
    const convert = [...runner.args, "convert", ...inputs, `${outDir}/${model}`];
    const [command, args] = timed
      ? ["/usr/bin/time", ["-f", "%M", "-o", timeFile, runner.command, ...convert]]
      : [runner.command, convert];
    const started = performance.now();
    const output = await new Deno.Command(command, { args, cwd: root, stdout: "null" })
      .output();
    const total = performance.now() - started;
    if (!output.success) {
      throw new Error(
        `${runner.runtime} convert failed:\n${new TextDecoder().decode(output.stderr)}`,
      );
    }
    const peak = timed ? Number((await Deno.readTextFile(timeFile)).trim()) * 1024 : undefined;
    return { total, peak };
  };
  const first = (await once()).total;
  const totals: number[] = [];
  let peakRss: number | undefined = 0;
  for (let run = 0; run < runs; run++) {
    const { total, peak } = await once();
    totals.push(total);
    peakRss = peak === undefined || peakRss === undefined ? undefined : Math.max(peakRss, peak);
  }
  await rm(outDir, { recursive: true, force: true });
  await rm(timeFile, { force: true });
  return {
    runtime: runner.runtime,
    model,
    runs,
    weightsBytes: (await stat(inputs[1])).size,
    stages: {},
    total: median(totals),
    first,
    floor: floor?.floor,
    peakRss: peakRss || undefined,
  };
}

/** Formats a number with `digits` decimals, or "-" when absent. */
function show(value: number | undefined, digits = 0): string {
  return value === undefined || !Number.isFinite(value) ? "-" : value.toFixed(digits);
}

/** The result table as text. */
function table(results: Result[]): string {
  const stageNames = ["read", "load", "record", "fuse", "quantize", "info", "serialize", "write"];
  const header = [
    "runtime",
    "model",
    ...stageNames,
    "total ms",
    "first",
    "floor ms",
    "total/floor",
    "best",
    "peak MB",
    "peak/input",
    "in-mem ms",
    "parse GB/s",
    "text MB/s",
    "quant G/s",
    "fake G/s",
  ];
  const rows = results.map((result) => [
    result.runtime,
    result.model,
    ...stageNames.map((stage) => show(result.stages[stage])),
    show(result.total),
    show(result.first),
    show(result.floor),
    show(result.floor === undefined ? undefined : result.total / result.floor, 2),
    show(result.bestRatio, 2),
    show(result.peakRss === undefined ? undefined : result.peakRss / 1e6),
    show(result.peakRss === undefined ? undefined : result.peakRss / result.weightsBytes, 2),
    show(result.inMemory),
    show(result.caffemodelGBps, 1),
    show(result.textMBps),
    show(result.quantizeGWps, 2),
    show(result.fakeGWps, 2),
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column].length))
  );
  const line = (cells: string[]) =>
    cells.map((cell, column) =>
      column < 2 ? cell.padEnd(widths[column]) : cell.padStart(widths[column])
    )
      .join("  ");
  return [line(header), ...rows.map(line)].join("\n");
}

/** The orchestrator's entry: parses the command line, runs every measurement, reports. */
async function main(args: string[]): Promise<number> {
  const models: string[] = [];
  let runs = 5;
  let warmup = 3;
  let runtimes = ["deno", "node", "chromium"];
  let json = false;
  let modelsDir = `${root}bench-out`;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--runs") runs = Number(args[++i]);
    else if (args[i] === "--warmup") warmup = Number(args[++i]);
    else if (args[i] === "--dir") modelsDir = resolve(args[++i]);
    else if (args[i] === "--runtimes") runtimes = args[++i].split(",");
    else if (args[i] === "--json") json = true;
    else models.push(args[i]);
  }
  const chosen = models.length > 0 ? models : MODELS;
  const unknownRuntime = runtimes.find((name) => !["deno", "node", "chromium"].includes(name));
  if (
    !Number.isInteger(runs) || runs < 1 || !Number.isInteger(warmup) || warmup < 1 ||
    unknownRuntime !== undefined
  ) {
    console.error(`usage: ${USAGE}`);
    return 2;
  }
  for (const model of chosen) {
    for (const file of Object.values(INPUTS)) {
      try {
        await stat(`${modelsDir}/${model}/${file}`);
      } catch {
        console.error(
          `missing ${modelsDir}/${model}/${file}: run npx deno run -A scripts/make_model.ts ${model}`,
        );
        return 2;
      }
    }
  }
  const bundleDir = `${modelsDir}/bundles`;
  if (runtimes.includes("node") || runtimes.includes("chromium")) await buildBundles(bundleDir);
  const results: Result[] = [];
  const log = (text: string) => {
    if (!json) console.error(text);
  };
  for (const model of chosen) {
    const workerArgs = [modelsDir, model, String(runs), String(warmup)];
    if (runtimes.includes("deno")) {
      log(`deno: ${model}…`);
      results.push(
        await runMeasurement(Deno.execPath(), [
          "run",
          "-A",
          "--v8-flags=--expose-gc",
          "scripts/bench.ts",
          "--worker",
          ...workerArgs,
        ]),
      );
    }
    if (runtimes.includes("node")) {
      log(`node: ${model}…`);
      results.push(
        await runMeasurement("node", [
          "--expose-gc",
          `${bundleDir}/bench.node.mjs`,
          "--worker",
          ...workerArgs,
        ]),
      );
    }
  }
  for (const runner of cliRunners(runtimes, bundleDir)) {
    for (const model of chosen) {
      log(`${runner.runtime}: ${model}…`);
      const floor = results.find((result) =>
        result.runtime === runner.floorOf && result.model === model
      );
      results.push(await measureCli(runner, modelsDir, model, runs, floor));
    }
  }
  if (runtimes.includes("chromium")) {
    log(`chromium: ${chosen.join(", ")}…`);
    results.push(...await measureChromium(chosen, modelsDir, bundleDir, runs, warmup));
  }
  if (json) console.log(JSON.stringify(results, null, 2));
  else console.log(table(results));
  return 0;
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  if (args[0] === "--worker") await runWorker(args.slice(1));
  else process.exit(await main(args));
}
