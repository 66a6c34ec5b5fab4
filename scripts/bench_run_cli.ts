/**
 * Batches through `caffe-quant run` beside OpenCV, in one run: for each model (the real models of
 * ../shared/models and ResNet-50, `bench-out/resnet50` from `scripts/make_model.ts`), images per
 * second of the command as a user runs it (`deno run -A src/cli.ts run <model> <weights>
 * --input <blob>=<file.npy> --threads T --out <dir>`, a fresh process each time) on one thread and
 * on every core (T threads: the main one and T − 1 workers), with start-up cancelled by timing a
 * `.npy` of N seeded samples against one of T samples (one per thread, so that the workers' start
 * cancels in part: the main thread takes back the jobs of a worker still starting; one sample on
 * one thread): (N − T) / (time of N − time of T). Beside it, in the same rounds: `runNet` in this
 * process over the same N samples one at a time (one thread, warm: what the CLI would reach
 * without its own costs), and OpenCV's Caffe importer (Debian's `python3-opencv`) over the same
 * samples one forward pass each, with one thread and with every core.
 *
 * N is `--images` or, by default, what `runNet` runs in `--seconds` (default 2) seconds, 8 to
 * 4,096: enough work that a thread's fixed costs (a worker's start, the first runs of cold code)
 * are not most of it. Each measurement is taken `--rounds` times (default 3), ours and OpenCV's
 * interleaved so that both see the same load; medians are shown, with the `uptime` load average at
 * the start of each row. Nothing here is asserted anywhere.
 *
 * ```sh
 * npx deno run -A scripts/bench_run_cli.ts [model ...] [--images N] [--seconds S] [--rounds N] \
 *   [--json]
 * ```
 *
 * @module
 */

import { loadNet } from "../src/caffe/model.ts";
import type { Net } from "../src/caffe/net.ts";
import { runNet, type Tensor } from "../src/engine/run.ts";
import { writeNpy } from "../src/io/npy.ts";
import { batchInputs } from "./bench_engine.ts";
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

const USAGE = "npx deno run -A scripts/bench_run_cli.ts [model ...] [--images N] [--seconds S] " +
  "[--rounds N] [--json]";

const cli = new URL("../src/cli.ts", import.meta.url).pathname;

/** One row: images per second (medians), N, the one-sample CLI wall time, the load. */
interface Row {
  model: string;
  images: number;
  load: string;
  oneImageSeconds: number;
  cli1: number;
  cliAll: number;
  runNet: number;
  opencv1: number;
  opencvAll: number;
}

/** The samples of `inputs` (axis 0) one at a time. */
function sampleMaps(inputs: Map<string, Tensor>, count: number): Map<string, Tensor>[] {
  return Array.from({ length: count }, (_, i) =>
    new Map(
      [...inputs].map(([blob, { shape, data }]) => {
        const size = data.length / count;
        return [blob, {
          shape: [1, ...shape.slice(1)],
          data: data.subarray(i * size, (i + 1) * size),
        }];
      }),
    ));
}

/** Seconds of one `caffe-quant run` process on the `.npy` files of `inputs` ([blob, path]). */
async function cliSeconds(
  folder: string,
  inputs: [string, string][],
  threads: number,
  out: string,
): Promise<number> {
  const args = [
    "run",
    "-A",
    cli,
    "run",
    `${folder}/deploy.prototxt`,
    `${folder}/weights.caffemodel`,
    ...inputs.flatMap(([blob, path]) => ["--input", `${blob}=${path}`]),
    "--threads",
    String(threads),
    "--out",
    out,
  ];
  const start = performance.now();
  const result = await new Deno.Command(Deno.execPath(), { args, stdout: "null", stderr: "piped" })
    .output();
  const seconds = (performance.now() - start) / 1000;
  await Deno.remove(out, { recursive: true }).catch(() => {});
  if (!result.success) {
    console.error(new TextDecoder().decode(result.stderr));
    return NaN;
  }
  return seconds;
}

/** Images per second of `runNet` over `samples`, one pass after one warm-up run. */
async function runNetPerSecond(net: Net, samples: Map<string, Tensor>[]): Promise<number> {
  await runNet(net, { inputs: samples[0] });
  const start = performance.now();
  for (const inputs of samples) await runNet(net, { inputs });
  return samples.length * 1000 / (performance.now() - start);
}

async function benchModel(
  name: string,
  opencv: OpenCv,
  cores: number,
  options: { images?: number; seconds: number; rounds: number },
): Promise<Row> {
  const folder = modelFolder(name);
  const modelFile = `${folder}/deploy.prototxt`;
  const weightsFile = `${folder}/weights.caffemodel`;
  const net = loadNet(await Deno.readTextFile(modelFile), await Deno.readFile(weightsFile));
  const dir = await Deno.makeTempDir({ prefix: "bench-run-cli-" });
  try {
    let images = options.images;
    if (images === undefined) {
      const rate = await runNetPerSecond(net, sampleMaps(batchInputs(net, 2), 2));
      images = Math.min(4096, Math.max(8, Math.round(rate * options.seconds)));
    }
    const batch = batchInputs(net, images);
    const samples = sampleMaps(batch, images);
    const files = async (inputs: Map<string, Tensor>): Promise<[string, string][]> => {
      const written: [string, string][] = [];
      for (const [blob, tensor] of inputs) {
        const path = `${dir}/${tensor.shape[0]}.${written.length}.npy`;
        await Deno.writeFile(path, writeNpy(tensor));
        written.push([blob, path]);
      }
      return written;
    };
    const one = await files(batchInputs(net, 1));
    // The all-core reference: one sample per worker, so that their start-up cancels too.
    const perWorker = await files(batchInputs(net, cores));
    const many = await files(batch);
    const loaded = await opencv.send({
      op: "load",
      key: name,
      model: modelFile,
      weights: weightsFile,
    });
    const timeOpenCv = async (threads: number) => {
      if (loaded.error !== undefined) return NaN;
      const reply = await opencv.send({ op: "images", key: name, threads, inputs: many });
      return typeof reply.perSecond === "number" ? reply.perSecond : NaN;
    };
    const load = loadAverage();
    await cliSeconds(folder, one, 1, `${dir}/out`); // warm-up: module cache, page cache
    const measured: Record<Exclude<keyof Row, "model" | "images" | "load">, number[]> = {
      oneImageSeconds: [],
      cli1: [],
      cliAll: [],
      runNet: [],
      opencv1: [],
      opencvAll: [],
    };
    for (let round = 0; round < options.rounds; round++) {
      for (const threads of [1, cores]) {
        const reference = threads === 1 ? one : perWorker;
        const single = await cliSeconds(folder, reference, threads, `${dir}/out`);
        const batched = await cliSeconds(folder, many, threads, `${dir}/out`);
        if (threads === 1) measured.oneImageSeconds.push(single);
        measured[threads === 1 ? "cli1" : "cliAll"].push((images - threads) / (batched - single));
      }
      measured.runNet.push(await runNetPerSecond(net, samples));
      measured.opencv1.push(await timeOpenCv(1));
      measured.opencvAll.push(await timeOpenCv(cores));
    }
    return {
      model: name,
      images,
      load,
      oneImageSeconds: median(measured.oneImageSeconds),
      cli1: median(measured.cli1),
      cliAll: median(measured.cliAll),
      runNet: median(measured.runNet),
      opencv1: median(measured.opencv1),
      opencvAll: median(measured.opencvAll),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A figure with three significant digits or so, or "-". */
/** The rows as a Markdown table. */
function table(rows: Row[], cores: number): string {
  const header = [
    "model",
    "images",
    "`run`, 1 sample (s)",
    "`run` 1 thread",
    `\`run --threads ${cores}\``,
    "runNet 1 thread",
    "OpenCV 1 thread",
    `OpenCV ${cores} threads`,
    "`run` 1 / OpenCV 1",
    `\`run\` ${cores} / OpenCV 1`,
    "`run` 1 / runNet",
    "load avg",
  ];
  const lines = rows.map((row) => [
    row.model,
    String(row.images),
    figure(row.oneImageSeconds),
    figure(row.cli1),
    figure(row.cliAll),
    figure(row.runNet),
    figure(row.opencv1),
    figure(row.opencvAll),
    figure(row.cli1 / row.opencv1),
    figure(row.cliAll / row.opencv1),
    figure(row.cli1 / row.runNet),
    row.load.split(" ")[0],
  ]);
  return markdownTable(header, lines);
}

async function main(args: string[]): Promise<number> {
  const named: string[] = [];
  let images: number | undefined;
  let seconds = 2;
  let rounds = 3;
  let json = false;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--images") images = Number(args[++i]);
    else if (args[i] === "--seconds") seconds = Number(args[++i]);
    else if (args[i] === "--rounds") rounds = Number(args[++i]);
    else if (args[i] === "--json") json = true;
    else if (args[i].startsWith("-")) named.push("?");
    else named.push(args[i]);
  }
  const models = named.length > 0 ? named : listModels();
  const unknown = models.find((name) => !exists(`${modelFolder(name)}/weights.caffemodel`));
  if (
    unknown !== undefined || (images !== undefined && !(Number.isInteger(images) && images >= 2)) ||
    !Number.isInteger(rounds) || rounds < 1 || !(seconds > 0)
  ) {
    if (unknown !== undefined) console.error(`no model "${unknown}" at ${modelFolder(unknown)}`);
    console.error(`usage: ${USAGE}`);
    return 2;
  }
  const opencv = new OpenCv();
  const { version, cores } = await opencv.reply() as { version: string; cores: number };
  const rows: Row[] = [];
  try {
    for (const name of models) {
      if (!json) console.error(`${name}… (load ${loadAverage()})`);
      rows.push(await benchModel(name, opencv, cores, { images, seconds, rounds }));
    }
  } finally {
    await opencv.close();
  }
  if (json) {
    console.log(JSON.stringify({ opencv: version, cores, rounds, rows }, null, 2));
    return 0;
  }
  console.log(
    `images/s, medians of ${rounds} interleaved rounds; \`run\` = deno run -A src/cli.ts run, ` +
      `start-up cancelled (N samples against 1, or one per worker); OpenCV ${version}, one forward pass per sample; ` +
      `${cores} cores; load average at the start of each row`,
  );
  console.log(table(rows, cores));
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
