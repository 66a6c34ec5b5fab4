// onProgress: one consistent sequence (issue 16.16): stages in order, each reported once as
// 1 of 1 or unit by unit up to total of total, never a stage reported again afterwards.

import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { exampleFiles } from "../scripts/example_model.ts";
import { convertModel } from "../src/io/convert_model.ts";
import { convertInMemory } from "../src/quant/convert.ts";

/** The example's quantized layers, read off its record by hand: conv1, conv2, pool1, deconv1, fc1. */
const QUANTIZED = 5;

function steps(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `quantize ${i + 1}/${count}`);
}

Deno.test("convert: onProgress gives each stage once, quantize layer by layer up to N of N", async () => {
  const { model, weights, record } = await exampleFiles();
  const seen: string[] = [];
  await convertInMemory({
    model,
    weights,
    record,
    onProgress: (stage, done, total) => seen.push(`${stage} ${done}/${total}`),
  });
  assert.deepEqual(seen, [
    "load 1/1",
    "record 1/1",
    "fuse 1/1",
    ...steps(QUANTIZED),
    "info 1/1",
    "serialize 1/1",
  ]);

  const dir = await mkdtemp("/tmp/caffe-quant-progress-");
  await writeFile(join(dir, "m.prototxt"), model);
  await writeFile(join(dir, "w.caffemodel"), weights);
  await writeFile(join(dir, "r.txt"), record);
  const files: string[] = [];
  await convertModel({
    modelFile: join(dir, "m.prototxt"),
    weightsFile: join(dir, "w.caffemodel"),
    recordFile: join(dir, "r.txt"),
    savePath: join(dir, "out", "m"),
    onProgress: (stage, done, total) => files.push(`${stage} ${done}/${total}`),
  });
  assert.deepEqual(files, [
    "load 1/1",
    "record 1/1",
    "fuse 1/1",
    ...steps(QUANTIZED),
    "info 1/1",
    "write 1/1",
  ]);
});
