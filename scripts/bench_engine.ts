/**
 * Simulator speed beside conversion speed, on each real model of ../shared/models: the time of
 * `convert` (in memory, record made from the weights beforehand), and images per second of
 * `runNet` on the float, fake-quant and deploy nets (batch 1 whatever the declared batch, seeded
 * input, one warm-up run, then runs for about a second each). Prints a table; `--json` for
 * machines. Nothing here is asserted anywhere.
 *
 * Run: `npx deno run -A scripts/bench_engine.ts [model ...] [--json]` (all models when none is
 * named).
 *
 * @module
 */

import { loadNet } from "../src/caffe/model.ts";
import { type Net, netInputs } from "../src/caffe/net.ts";
import { uniformGenerator } from "../src/engine/inputs.ts";
import { runNet, type Tensor } from "../src/engine/run.ts";
import { convertInMemory } from "../src/quant/convert.ts";
import { makeRecord } from "../src/quant/make_record.ts";

const modelsDir = new URL("../../shared/models/", import.meta.url);

/** Runs per net: at least this many, and until this many milliseconds have passed. */
const MIN_RUNS = 3;
const MIN_MILLISECONDS = 1000;

/** One model's figures. */
interface Row {
  model: string;
  convertMs: number;
  imagesPerSecond: { float: number; fakeQuant: number; deploy: number };
}

function listModels(): string[] {
  return [...Deno.readDirSync(modelsDir)]
    .filter((entry) => entry.isDirectory)
    .map((entry) => entry.name)
    .sort();
}

/** Seeded batch-1 inputs of the declared shapes. */
function batchOneInputs(net: Net): Map<string, Tensor> {
  const next = uniformGenerator(1);
  const inputs = new Map<string, Tensor>();
  for (const { name, shape } of netInputs(net)) {
    const batchOne = [1, ...shape.slice(1)];
    const data = new Float32Array(batchOne.reduce((a, b) => a * b, 1)).map(next);
    inputs.set(name, { shape: batchOne, data });
  }
  return inputs;
}

/** Images per second of `net` on `inputs`. */
async function imagesPerSecond(net: Net, inputs: Map<string, Tensor>): Promise<number> {
  await runNet(net, { inputs });
  let runs = 0;
  const start = performance.now();
  while (runs < MIN_RUNS || performance.now() - start < MIN_MILLISECONDS) {
    await runNet(net, { inputs });
    runs++;
  }
  return runs * 1000 / (performance.now() - start);
}

async function bench(name: string): Promise<Row> {
  const model = await Deno.readTextFile(new URL(`${name}/deploy.prototxt`, modelsDir));
  const weights = await Deno.readFile(new URL(`${name}/weights.caffemodel`, modelsDir));
  const net = loadNet(model, weights);
  const record = await makeRecord(net);
  await convertInMemory({ model, weights, record });
  const started = performance.now();
  const { files } = await convertInMemory({ model, weights, record });
  const convertMs = performance.now() - started;
  const inputs = batchOneInputs(net);
  return {
    model: name,
    convertMs,
    imagesPerSecond: {
      float: await imagesPerSecond(net, inputs),
      fakeQuant: await imagesPerSecond(
        loadNet(files.fakeQuantModel, files.fakeQuantWeights),
        inputs,
      ),
      deploy: await imagesPerSecond(loadNet(files.deployModel, files.deployWeights), inputs),
    },
  };
}

const json = Deno.args.includes("--json");
const named = Deno.args.filter((arg) => arg !== "--json");
const rows: Row[] = [];
for (const name of named.length > 0 ? named : listModels()) rows.push(await bench(name));
if (json) {
  console.log(JSON.stringify(rows, null, 2));
} else {
  const table = [
    ["model", "convert ms", "float img/s", "fake-quant img/s", "deploy img/s"],
    ...rows.map((row) => [
      row.model,
      row.convertMs.toFixed(1),
      row.imagesPerSecond.float.toFixed(1),
      row.imagesPerSecond.fakeQuant.toFixed(1),
      row.imagesPerSecond.deploy.toFixed(1),
    ]),
  ];
  const widths = table[0].map((_, column) => Math.max(...table.map((row) => row[column].length)));
  for (const row of table) {
    console.log(
      row.map((cell, column) =>
        column === 0 ? cell.padEnd(widths[0]) : cell.padStart(widths[column])
      )
        .join("  "),
    );
  }
}
