/**
 * The engine's fixed cost per run on small nets, in CPU time (less at the mercy of the shared
 * machine than wall time), batch 1, seeded inputs, medians of interleaved rounds:
 * - `runNet` per run with the weights kept in WebAssembly memory (the default budget) beside
 *   copied on every call (budget 0);
 * - the deploy (INT8) net converted from the model (`makeRecord`, `convertInMemory`), weights kept,
 *   and its speed against the float net's (float µs / deploy µs: above 1 when deploy is faster);
 * - the JavaScript outside the kernels: the same runs with every kernel replaced by a stub that
 *   hands back the output it gave in a real run;
 * - with `--against DIR` (another checkout of this repository, e.g. `git worktree add DIR <commit>`
 *   with `node_modules` linked), that checkout's `runNet` per run beside ours, in the same process.
 * Figures only; nothing is asserted.
 *
 * ```sh
 * npx deno run -A scripts/bench_fixed_cost.ts [model...] [--rounds N] [--seconds S] [--against DIR]
 * ```
 * (`model`: folder names of ../shared/models; default the mtcnn nets and lenet.)
 *
 * @module
 */

import process from "node:process";
import { loadNet } from "../src/caffe/model.ts";
import { type Net, netInputs } from "../src/caffe/net.ts";
import { uniformGenerator } from "../src/engine/inputs.ts";
import { forgetMemos } from "../src/engine/layer_memo.ts";
import { runNet, type Tensor } from "../src/engine/run.ts";
import { convertInMemory } from "../src/quant/convert.ts";
import { makeRecord } from "../src/quant/make_record.ts";
import { engineKernels, NOT_KERNEL_METHODS } from "../src/wasm/engine.ts";
import { DEFAULT_RESIDENT_BYTES } from "../src/wasm/resident.ts";

const sharedModels = new URL("../../shared/models/", import.meta.url).pathname;

/** Milliseconds of CPU time this process used so far. */
function cpuMilliseconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Microseconds of CPU time per call of `run`, over `seconds` of CPU time after a warm-up. */
async function perRun(run: () => Promise<unknown>, seconds: number): Promise<number> {
  for (let i = 0; i < 20; i++) await run();
  const start = cpuMilliseconds();
  let runs = 0;
  while (runs < 2 || cpuMilliseconds() - start < seconds * 1000) {
    await run();
    runs++;
  }
  return (cpuMilliseconds() - start) / runs * 1000;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Batch-1 inputs of `net`, seeded. */
function batchOne(net: Net): Map<string, Tensor> {
  const next = uniformGenerator(1);
  const inputs = new Map<string, Tensor>();
  for (const { name, shape } of netInputs(net)) {
    const one = [1, ...shape.slice(1)];
    const data = new Float32Array(one.reduce((a, b) => a * b, 1)).map(next);
    inputs.set(name, { shape: one, data });
  }
  return inputs;
}

/** A runNet of another checkout, on that checkout's own net of the model. */
async function otherRunner(dir: string, prototxt: string, weights: Uint8Array) {
  const root = new URL(`file://${dir.replace(/\/?$/, "/")}`);
  const run = await import(new URL("src/engine/run.ts", root).href);
  const model = await import(new URL("src/caffe/model.ts", root).href);
  return { runNet: run.runNet, net: model.loadNet(prototxt, weights) };
}

async function main(args: string[]): Promise<void> {
  const option = (name: string) => args.includes(name) ? args[args.indexOf(name) + 1] : undefined;
  const rounds = Number(option("--rounds") ?? 5);
  const seconds = Number(option("--seconds") ?? 0.3);
  const against = option("--against");
  const valued = new Set(["--rounds", "--seconds", "--against"]);
  const models = args.filter((arg, i) => !arg.startsWith("--") && !valued.has(args[i - 1]));
  if (!(rounds >= 1) || !(seconds > 0)) {
    console.error(
      "usage: npx deno run -A scripts/bench_fixed_cost.ts [model...] [--rounds N] " +
        "[--seconds S] [--against DIR]",
    );
    Deno.exit(2);
  }
  const kernels = await engineKernels() as unknown as Record<string, (...a: unknown[]) => unknown>;
  const originals = { ...kernels };
  console.log(
    `µs of CPU time per run, batch 1, medians of ${rounds} interleaved rounds; ` +
      `load average ${Deno.loadavg().map((value) => value.toFixed(2)).join(" ")}`,
  );
  const columns = [
    "model",
    "weights kept",
    "copied per call",
    "JavaScript outside kernels",
    "deploy net",
    "deploy / float",
  ];
  if (against !== undefined) columns.push(`runNet of ${against}`);
  console.log(`| ${columns.join(" | ")} |`);
  console.log(`| ${columns.map((_, i) => i === 0 ? "---" : "---:").join(" | ")} |`);
  for (
    const name of models.length > 0 ? models : ["lenet", "mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet"]
  ) {
    const prototxt = await Deno.readTextFile(`${sharedModels}${name}/deploy.prototxt`);
    const weights = await Deno.readFile(`${sharedModels}${name}/weights.caffemodel`);
    const net = loadNet(prototxt, weights);
    const { files } = await convertInMemory({
      model: prototxt,
      weights,
      record: await makeRecord(net),
    });
    const deploy = loadNet(files.deployModel, files.deployWeights);
    const inputs = batchOne(net);
    const other = against === undefined ? undefined : await otherRunner(against, prototxt, weights);
    // The outputs each kernel call gave in one real run, handed back in order by the stubs; a
    // method that makes a kernel (convolutionKernel…) gives one whose calls are handed back so.
    const given: unknown[] = [];
    const makers = new Set<string>();
    // Kernels kept by the nets' layers were made by the methods in use before: forgotten.
    const forget = () => forgetMemos([...net.layers, ...deploy.layers]);
    const setKernels = (make: (method: string) => (...a: unknown[]) => unknown) => {
      for (const method of Object.keys(originals)) {
        if (!NOT_KERNEL_METHODS.has(method)) kernels[method] = make(method);
      }
      forget();
    };
    const restoreKernels = () => {
      Object.assign(kernels, originals);
      forget();
    };
    const recorded = (output: unknown) => {
      given.push(output);
      return output;
    };
    setKernels((method) => (...a) => {
      const output = originals[method](...a);
      if (typeof output !== "function") return recorded(output);
      makers.add(method);
      return (x: Float32Array) => recorded(output(x));
    });
    await runNet(net, { inputs });
    restoreKernels();
    const figures: number[][] = [[], [], [], [], []];
    for (let round = 0; round < rounds; round++) {
      figures[0].push(await perRun(() => runNet(net, { inputs }), seconds));
      kernels.setResidentBudget(0);
      figures[1].push(await perRun(() => runNet(net, { inputs }), seconds));
      kernels.setResidentBudget(DEFAULT_RESIDENT_BYTES);
      let call = 0;
      const next = () => given[call++ % given.length];
      setKernels((method) => makers.has(method) ? () => next : next);
      figures[2].push(await perRun(() => runNet(net, { inputs }), seconds));
      restoreKernels();
      figures[3].push(await perRun(() => runNet(deploy, { inputs }), seconds));
      if (other !== undefined) {
        figures[4].push(await perRun(() => other.runNet(other.net, { inputs }), seconds));
      }
    }
    const [kept, copied, outside, deployed, others] = figures.map((values) =>
      values.length > 0 ? median(values) : undefined
    );
    const row = [kept, copied, outside, deployed].map((value) => value!.toFixed(1));
    row.push((kept! / deployed!).toFixed(2));
    if (others !== undefined) row.push(others.toFixed(1));
    console.log(`| ${[name, ...row].join(" | ")} |`);
  }
}

if (import.meta.main) await main(Deno.args);
