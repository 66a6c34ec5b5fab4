// A caffemodel read from its file without its large weights (src/io/caffemodel_file.ts): the
// weights left in the file read back exactly, at every alignment; convertModel writes what the
// in-memory API writes; a caffemodel changed or cut short during a conversion is refused and
// nothing is written.

import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { writeCaffemodel } from "../src/caffe/caffemodel_write.ts";
import { DeferredBlob } from "../src/caffe/deferred_blob.ts";
import { loadNet } from "../src/caffe/model.ts";
import { printPrototxt } from "../src/caffe/prototxt.ts";
import { ConvertError } from "../src/errors.ts";
import { FILE_DATA_BYTES, openCaffemodel } from "../src/io/caffemodel_file.ts";
import { convertModel } from "../src/io/convert_model.ts";
import { convertInMemory } from "../src/quant/convert.ts";
import { makeRecord } from "../src/quant/make_record.ts";
import { innerProduct, net, random } from "./_builders.ts";

/**
 * A chain of InnerProducts whose weights (300 × 64 floats, over FILE_DATA_BYTES) start at
 * several byte alignments (the layer names' lengths shift them), and one small layer.
 */
function testNet() {
  const next = random(91);
  const layers = [
    innerProduct("a", "data", "a", { numOutput: 300, channelsIn: 64, next }),
    innerProduct("bb", "a", "bb", { numOutput: 64, channelsIn: 300, next }),
    innerProduct("ccc", "bb", "ccc", { numOutput: 300, channelsIn: 64, next }),
    innerProduct("dddd", "ccc", "dddd", { numOutput: 64, channelsIn: 300, next }),
    innerProduct("small", "dddd", "small", { numOutput: 4, channelsIn: 64, next }),
  ];
  const built = net("data", [1, 64], layers);
  return { model: printPrototxt(built), weights: writeCaffemodel(built) };
}

/** Runs `use` with a fresh temporary directory holding the test net's three inputs. */
async function withInputs(
  use: (dir: string, paths: { model: string; weights: string; record: string }) => Promise<void>,
): Promise<void> {
  const dir = await mkdtemp("/tmp/caffe-quant-file-");
  try {
    const { model, weights } = testNet();
    const record = await makeRecord(loadNet(model, weights), { scaleD: 0.02, offsetD: 1 });
    const paths = {
      model: join(dir, "deploy.prototxt"),
      weights: join(dir, "weights.caffemodel"),
      record: join(dir, "record.txt"),
    };
    await writeFile(paths.model, model);
    await writeFile(paths.weights, weights);
    await writeFile(paths.record, record);
    await use(dir, paths);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

Deno.test("openCaffemodel leaves large float data in the file; deferBlobs reads it back", async () => {
  await withInputs(async (_, paths) => {
    const model = await readFile(paths.model, "utf8");
    const whole = new Uint8Array(await readFile(paths.weights));
    const expected = loadNet(model, whole);
    const opened = await openCaffemodel(paths.weights);
    try {
      const loaded = loadNet(model, opened.bytes);
      opened.deferBlobs(loaded);
      const alignments = new Set<number>();
      let deferred = 0;
      expected.layers.forEach((layer, l) => {
        layer.blobs.forEach((blob, b) => {
          // Where the data lies in the file: the view of the whole file's parse (read first:
          // reading an unaligned blob's data makes an array of its own).
          const at = blob instanceof DeferredBlob
            ? blob.storedBytes()!.byteOffset
            : blob.data.byteOffset;
          const data = blob.data as Float32Array;
          const actual = loaded.layers[l].blobs[b];
          if (data.byteLength >= FILE_DATA_BYTES) {
            alignments.add(at % 4);
            // The scan reads the file in small blocks: at most the first KiB of it is read.
            assert.ok(
              opened.bytes.subarray(at + 1024, at + data.byteLength).every((byte) => byte === 0),
              `${layer.name} blob ${b}: not read into memory`,
            );
            assert.ok(actual instanceof DeferredBlob && actual.readsStoredBytes);
            deferred++;
          }
          assert.deepEqual(actual.shape, blob.shape);
          const actualData = actual.data as Float32Array;
          const actualBytes = new Uint8Array(
            actualData.buffer,
            actualData.byteOffset,
            actualData.byteLength,
          );
          const expectedBytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
          assert.equal(actualBytes.length, expectedBytes.length, `${layer.name} blob ${b}: size`);
          const differs = expectedBytes.findIndex((byte, i) => byte !== actualBytes[i]);
          assert.equal(differs, -1, `${layer.name} blob ${b}: first byte that differs`);
        });
      });
      assert.equal(deferred, 4);
      assert.ok(alignments.size > 1, `aligned and unaligned data: ${[...alignments]}`);
    } finally {
      await opened.close();
    }
  });
});

Deno.test("convertModel with weights left in the file writes convertInMemory's bytes", async () => {
  await withInputs(async (dir, paths) => {
    const report = await convertModel({
      modelFile: paths.model,
      weightsFile: paths.weights,
      recordFile: paths.record,
      savePath: join(dir, "out", "m"),
    });
    const { files } = await convertInMemory({
      model: await readFile(paths.model, "utf8"),
      weights: await readFile(paths.weights),
      record: await readFile(paths.record, "utf8"),
    });
    for (const key of Object.keys(files) as (keyof typeof files)[]) {
      const expected = files[key];
      const bytes = typeof expected === "string" ? new TextEncoder().encode(expected) : expected;
      assert.ok((await readFile(report.outputs[key])).equals(bytes), `${key}: bytes`);
    }
  });
});

for (
  const [what, change] of [
    ["rewritten (same size)", async (path: string) => {
      const bytes = await readFile(path);
      bytes[bytes.length - 100] ^= 0xff;
      await writeFile(path, bytes);
    }],
    ["cut short", (path: string) => truncate(path, 1000)],
  ] as const
) {
  Deno.test(`a caffemodel ${what} during the conversion: INPUT_UNREADABLE, nothing written`, async () => {
    await withInputs(async (dir, paths) => {
      let changed = false;
      const error = await convertModel({
        modelFile: paths.model,
        weightsFile: paths.weights,
        recordFile: paths.record,
        savePath: join(dir, "out", "m"),
        onProgress: async (stage) => {
          if (stage !== "record" || changed) return;
          changed = true;
          await change(paths.weights);
        },
      }).then(() => undefined, (error) => error);
      assert.ok(changed);
      assert.ok(error instanceof ConvertError, String(error));
      assert.equal(error.code, "INPUT_UNREADABLE");
      assert.equal(error.file, paths.weights);
      assert.match(error.message, /changed while it was being converted/);
      assert.deepEqual((await readdir(dir)).sort(), [
        "deploy.prototxt",
        "record.txt",
        "weights.caffemodel",
      ]);
    });
  });
}

Deno.test("a caffemodel given as a pipe (FIFO) is read whole and converted", async () => {
  await withInputs(async (dir, paths) => {
    const fifo = join(dir, "weights.fifo");
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.ok(made.success, "mkfifo");
    const weights = await readFile(paths.weights);
    // Another process writes the pipe; it blocks until the conversion opens it for reading.
    const writer = new Deno.Command("sh", {
      args: ["-c", 'cat "$1" > "$2"', "sh", paths.weights, fifo],
    }).spawn();
    const report = await convertModel({
      modelFile: paths.model,
      weightsFile: fifo,
      recordFile: paths.record,
      savePath: join(dir, "out", "m"),
    });
    assert.ok((await writer.status).success, "the writer");
    const { files } = await convertInMemory({
      model: await readFile(paths.model, "utf8"),
      weights,
      record: await readFile(paths.record, "utf8"),
    });
    for (const key of ["fakeQuantWeights", "deployWeights"] as const) {
      assert.ok((await readFile(report.outputs[key])).equals(files[key]), `${key}: bytes`);
    }
  });
});
