/**
 * Simulator speed: images per second of `runNet` on each real model of ../shared/models
 * (batch 1 whatever the declared batch, seeded input, one warm-up run, then runs for about a
 * second), printed as a table.
 *
 * Run: `npx deno run -A scripts/bench_engine.ts [model ...]` (all models when none is named).
 *
 * @module
 */

import { loadNet } from "../src/caffe/model.ts";
import { netInputs } from "../src/caffe/net.ts";
import { uniformGenerator } from "../src/engine/inputs.ts";
import { runNet, type Tensor } from "../src/engine/run.ts";

const modelsDir = new URL("../../shared/models/", import.meta.url);

/** Runs per model: at least this many, and until this many milliseconds have passed. */
const MIN_RUNS = 3;
const MIN_MILLISECONDS = 1000;

function listModels(): string[] {
  return [...Deno.readDirSync(modelsDir)].filter((entry) => entry.isDirectory).map((entry) =>
    entry.name
  )
    .sort();
}

async function bench(name: string): Promise<string[]> {
  const net = loadNet(
    await Deno.readTextFile(new URL(`${name}/deploy.prototxt`, modelsDir)),
    await Deno.readFile(new URL(`${name}/weights.caffemodel`, modelsDir)),
  );
  const next = uniformGenerator(1);
  const inputs = new Map<string, Tensor>();
  for (const { name: blob, shape } of netInputs(net)) {
    const batchOne = [1, ...shape.slice(1)];
    const data = new Float32Array(batchOne.reduce((a, b) => a * b, 1)).map(next);
    inputs.set(blob, { shape: batchOne, data });
  }
  const first = await runNet(net, { inputs });
  const shapes = [...first.outputs.values()].map((tensor) => `[${tensor.shape.join(",")}]`).join(
    " ",
  );
  let runs = 0;
  const start = performance.now();
  while (runs < MIN_RUNS || performance.now() - start < MIN_MILLISECONDS) {
    await runNet(net, { inputs });
    runs++;
  }
  const milliseconds = (performance.now() - start) / runs;
  return [name, (1000 / milliseconds).toFixed(1), milliseconds.toFixed(2), shapes];
}

const names = Deno.args.length > 0 ? Deno.args : listModels();
const rows = [["model", "images/s", "ms/image", "outputs"]];
for (const name of names) rows.push(await bench(name));
const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
for (const row of rows) {
  console.log(
    row.map((cell, column) =>
      column === 1 || column === 2 ? cell.padStart(widths[column]) : cell.padEnd(widths[column])
    )
      .join("  ").trimEnd(),
  );
}
