/**
 * Nets whose shapes pin the batch (ultraface_rfb320 reshapes its scores to [1, N, 2], so a batch
 * of two images would mix them in one softmax): `run` and `compare` run each sample of a
 * several-sample `.npy` alone. Expected values: the same net run on each image by itself.
 */

import assert from "node:assert/strict";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { readNpy, writeNpy } from "../src/io/npy.ts";
import { runCli as run } from "./_cli.ts";
import { modelFile, modelNames } from "./_models.ts";

const ignore = !modelNames.includes("ultraface_rfb320");
const model = modelFile("ultraface_rfb320", "deploy.prototxt");
const weights = modelFile("ultraface_rfb320", "weights.caffemodel");
const SAMPLE = 3 * 240 * 320;

/** A seeded image-like sample in [-1, 1). */
function image(seed: number): Float32Array {
  let state = seed >>> 0;
  return new Float32Array(SAMPLE).map(() => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  });
}

/** `parts` end to end in one array. */
function joined(...parts: Float32Array[]): Float32Array {
  const all = new Float32Array(parts.reduce((sum, part) => sum + part.length, 0));
  parts.reduce((offset, part) => (all.set(part, offset), offset + part.length), 0);
  return all;
}

/** Runs `run --json` on one .npy and reads every output back, by blob. */
async function outputs(npy: string, out: string): Promise<Map<string, Float32Array>> {
  const result = await run(
    "run",
    model,
    weights,
    "--input",
    `input=${npy}`,
    "--out",
    out,
    "--json",
  );
  assert.equal(result.code, 0, result.err);
  const summary = JSON.parse(result.out) as { outputs: { blob: string; file: string }[] };
  const read = new Map<string, Float32Array>();
  for (const { blob, file } of summary.outputs) {
    read.set(blob, readNpy(await readFile(file), file).data as Float32Array);
  }
  return read;
}

Deno.test("ultraface: run and compare take a 2-image .npy one image at a time", {
  ignore,
}, async () => {
  const dir = await mkdtemp("/tmp/caffe-quant-pinned-");
  const first = image(1);
  const second = image(2);
  const files = { pair: join(dir, "pair.npy"), a: join(dir, "a.npy"), b: join(dir, "b.npy") };
  await writeFile(
    files.pair,
    writeNpy({ shape: [2, 3, 240, 320], data: joined(first, second) }),
  );
  await writeFile(files.a, writeNpy({ shape: [1, 3, 240, 320], data: first }));
  await writeFile(files.b, writeNpy({ shape: [1, 3, 240, 320], data: second }));
  const pair = await outputs(files.pair, join(dir, "pair"));
  const alone = [await outputs(files.a, join(dir, "a")), await outputs(files.b, join(dir, "b"))];
  assert.ok(pair.size > 0);
  for (const [blob, data] of pair) {
    const expected = joined(alone[0].get(blob)!, alone[1].get(blob)!);
    assert.deepEqual(data, expected, blob);
  }
  const compared = await run(
    "compare",
    model,
    weights,
    model,
    weights,
    "--input",
    `input=${files.pair}`,
  );
  assert.equal(compared.code, 0, compared.err);
  assert.match(compared.out, /\b2 sample\(s\)/);
});
