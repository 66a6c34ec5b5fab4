// Streamed outputs: convertModel writes its caffemodels piece by piece (src/io/files.ts), and the
// files must hold exactly what the in-memory API returns; a producer's failure must leave nothing.

import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { loadNet } from "../src/caffe/model.ts";
import { ConvertError } from "../src/errors.ts";
import { convertModel } from "../src/io/convert_model.ts";
import { writeAllOrNothing } from "../src/io/files.ts";
import { convertInMemory } from "../src/quant/convert.ts";
import { makeRecord } from "../src/quant/make_record.ts";
import { modelFile, modelNames } from "./_models.ts";

/** Runs `use` with a fresh temporary directory, removed afterwards. */
async function inTempDir(use: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp("/tmp/caffe-quant-stream-");
  try {
    await use(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

for (const model of modelNames) {
  Deno.test(`${model}: convertModel writes convertInMemory's outputs, byte for byte`, async () => {
    const modelText = await readFile(modelFile(model, "deploy.prototxt"), "utf8");
    const weights = await Deno.readFile(modelFile(model, "weights.caffemodel"));
    const record = await makeRecord(loadNet(modelText, weights), { scaleD: 0.0173, offsetD: -3 });
    await inTempDir(async (dir) => {
      const recordFile = join(dir, "record.txt");
      await writeFile(recordFile, record);
      const report = await convertModel({
        modelFile: modelFile(model, "deploy.prototxt"),
        weightsFile: modelFile(model, "weights.caffemodel"),
        recordFile,
        savePath: join(dir, "out", "m"),
      });
      const { files } = await convertInMemory({ model: modelText, weights, record });
      for (const key of Object.keys(files) as (keyof typeof files)[]) {
        const written = await readFile(report.outputs[key]);
        const expected = files[key];
        const expectedBytes = typeof expected === "string"
          ? new TextEncoder().encode(expected)
          : expected;
        assert.equal(written.length, expectedBytes.length, `${key}: size`);
        assert.ok(written.equals(expectedBytes), `${key}: bytes`);
      }
      assert.deepEqual((await readdir(join(dir, "out"))).length, 5);
    });
  });
}

/** Pieces written through two buffers used in turn, as caffemodelPieces hands them out. */
function* twoBufferPieces(count: number, size: number): Generator<Uint8Array> {
  const buffers = [new Uint8Array(size), new Uint8Array(size)];
  for (let piece = 0; piece < count; piece++) {
    const buffer = buffers[piece % 2];
    buffer.fill(piece + 1);
    yield buffer;
  }
}

Deno.test("writeAllOrNothing writes pieces in order, each while the next is made", async () => {
  await inTempDir(async (dir) => {
    const { paths } = await writeAllOrNothing(dir, [
      { name: "a.bin", content: twoBufferPieces(7, 100_000) },
      { name: "b.txt", content: "text" },
    ]);
    const written = await readFile(paths[0]);
    assert.equal(written.length, 700_000);
    for (let piece = 0; piece < 7; piece++) {
      const part = written.subarray(piece * 100_000, (piece + 1) * 100_000);
      assert.ok(part.every((byte) => byte === piece + 1), `piece ${piece}`);
    }
    assert.equal(await readFile(paths[1], "utf8"), "text");
  });
});

Deno.test("a failing piece producer leaves no file and its error passes through", async () => {
  await inTempDir(async (dir) => {
    await writeFile(join(dir, "b.bin"), "old");
    const failure = new ConvertError("WEIGHTS_NOT_FINITE", "from the producer");
    function* failing(): Generator<Uint8Array> {
      yield new Uint8Array(10);
      throw failure;
    }
    await assert.rejects(
      writeAllOrNothing(dir, [
        { name: "a.bin", content: new Uint8Array(3) },
        { name: "b.bin", content: failing() },
      ]),
      (error) => error === failure,
    );
    assert.deepEqual(await readdir(dir), ["b.bin"]);
    assert.equal(await readFile(join(dir, "b.bin"), "utf8"), "old");
  });
});
