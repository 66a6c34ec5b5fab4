/**
 * `convertToBlobs` with the caffemodel given as a `Blob` (a browser `File`): the same bytes as
 * `convert` on the bytes, on a net that has every kind of large weights (quantized, fused with
 * BatchNorm + Scale, fused but left float by `skip_fusion`, left float without a record entry, at
 * several alignments) and on every shared real model. In a page the large weights are read from
 * the Blob one layer at a time, never the whole file at once; where `FileReaderSync` reads a Blob
 * synchronously (a dedicated worker) they are read as the kernels stream them, at most
 * SYNC_READ_BYTES at a time.
 */

import assert from "node:assert/strict";
import { convert, convertToBlobs } from "../core.ts";
import { SYNC_READ_BYTES } from "../src/caffe/caffemodel_blob.ts";
import { writeCaffemodel } from "../src/caffe/caffemodel_write.ts";
import { loadNet } from "../src/caffe/model.ts";
import { printPrototxt } from "../src/caffe/prototxt.ts";
import { makeRecord } from "../src/quant/make_record.ts";
import {
  batchNorm,
  conv,
  innerProduct,
  net,
  random,
  recordText,
  relu,
  scale,
} from "./_builders.ts";
import { modelFile, modelNames } from "./_models.ts";

/** A Blob (or a slice of one) that notes the length of every asynchronous read of it. */
class CountingBlob extends Blob {
  readonly content: Uint8Array;
  readonly reads: number[];

  constructor(content: Uint8Array, reads: number[] = []) {
    super([content as BlobPart]);
    this.content = content;
    this.reads = reads;
  }

  override slice(start = 0, end = this.size): Blob {
    return new CountingBlob(this.content.subarray(start, end), this.reads);
  }

  override arrayBuffer(): Promise<ArrayBuffer> {
    this.reads.push(this.size);
    return super.arrayBuffer();
  }
}

/** Lengths read through the stand-in FileReaderSync. */
const syncReads: number[] = [];

/** A stand-in for a dedicated worker's `FileReaderSync`, on CountingBlob slices. */
class CountingFileReaderSync {
  readAsArrayBuffer(blob: Blob): ArrayBuffer {
    const { content } = blob as CountingBlob;
    syncReads.push(content.length);
    return content.slice().buffer;
  }
}

/** Asserts that the five outputs of `convertToBlobs` hold the bytes of `convert`'s. */
async function assertSameOutputs(
  input: { model: string; weights: Uint8Array; record: string },
  name: string,
): Promise<CountingBlob> {
  const blob = new CountingBlob(input.weights);
  const fromBlob = await convertToBlobs({ ...input, weights: blob });
  const expected = await convert(input);
  const encoder = new TextEncoder();
  for (const key of Object.keys(expected.files) as (keyof typeof expected.files)[]) {
    const wanted = expected.files[key];
    const bytes = typeof wanted === "string" ? encoder.encode(wanted) : wanted;
    const actual = new Uint8Array(await fromBlob.files[key].arrayBuffer());
    assert.equal(actual.length, bytes.length, `${name} ${key}`);
    // The first differing byte (a whole-array diff of megabytes would be unreadable).
    assert.equal(actual.findIndex((value, i) => value !== bytes[i]), -1, `${name} ${key}`);
  }
  assert.deepEqual(fromBlob.report, { ...expected.report, timings: fromBlob.report.timings });
  return blob;
}

/** The net of every kind of large weights, two larger than SYNC_READ_BYTES, and its record. */
function mixedInput() {
  const next = random(23);
  // Layer names of different lengths put the weights at different alignments.
  const model = net("data", [1, 64, 8, 8], [
    conv("c1", "data", "c1", { numOutput: 512, channelsIn: 64, next }),
    batchNorm("bn1", "c1", "c1", 512, next),
    scale("sc1", "c1", "c1", 512, next),
    relu("r1", "c1", "c1"),
    conv("conv22", "c1", "conv22", { numOutput: 96, channelsIn: 512, next }),
    batchNorm("bn2", "conv22", "conv22", 96, next),
    scale("sc2", "conv22", "conv22", 96, next),
    conv("c333", "conv22", "c333", { numOutput: 64, channelsIn: 96, next }),
    innerProduct("fc", "c333", "fc", { numOutput: 16_500, channelsIn: 64 * 2 * 2, next }),
    innerProduct("fc_float", "fc", "fc_float", { numOutput: 260, channelsIn: 16_500, next }),
  ]);
  const input = {
    model: printPrototxt(model),
    weights: writeCaffemodel(model),
    record: recordText({
      // c1 is fused and quantized; conv22 is fused and stays float (no entry): its folded
      // weights are computed from the Blob's while written; fc_float is copied as it is.
      c1: "scale_d: 0.02 offset_d: 0 scale_w: 0.004 offset_w: 0",
      c333: "scale_d: 0.03 offset_d: 3 scale_w: 0.005 offset_w: 0",
      fc: "scale_d: 0.03 offset_d: -2 scale_w: 0.002 offset_w: 0",
    }),
  };
  const layerBytes = model.layers.map((layer) => (layer.blobs[0]?.data.length ?? 0) * 4);
  return { input, layerBytes };
}

Deno.test("convertToBlobs on a Blob caffemodel: convert's bytes, weights read layer by layer", async () => {
  const { input, layerBytes } = mixedInput();
  const blob = await assertSameOutputs(input, "built net");
  // The largest single read is the largest layer's weights, never the whole file.
  const largest = Math.max(...layerBytes);
  assert.equal(largest, 260 * 16_500 * 4);
  assert.equal(Math.max(...blob.reads), largest);
  assert.ok(largest < input.weights.length / 2, `${largest} of ${input.weights.length}`);
});

Deno.test("convertToBlobs on a Blob caffemodel: with FileReaderSync, weights read as they stream", async () => {
  const { input, layerBytes } = mixedInput();
  const global = globalThis as { FileReaderSync?: unknown };
  global.FileReaderSync = CountingFileReaderSync;
  syncReads.length = 0;
  let blob: CountingBlob;
  try {
    blob = await assertSameOutputs(input, "built net, synchronous reads");
  } finally {
    delete global.FileReaderSync;
  }
  // Only the structure and the other blobs are read asynchronously (through its 64 KiB window;
  // fc's bias is 66 kB), every large weight blob synchronously, in reads of at most
  // SYNC_READ_BYTES, though two layers are larger (one quantized, one copied as it is).
  const large = layerBytes.filter((bytes) => bytes >= 1 << 16);
  assert.ok(Math.max(...blob.reads) < Math.min(...large), `${blob.reads}`);
  assert.equal(layerBytes.filter((bytes) => bytes > SYNC_READ_BYTES).length, 2);
  assert.equal(Math.max(...syncReads), SYNC_READ_BYTES);
  const total = large.reduce((sum, bytes) => sum + bytes, 0);
  assert.ok(syncReads.reduce((sum, bytes) => sum + bytes, 0) >= total);
});

Deno.test("convertToBlobs on a Blob caffemodel: convert's bytes on every shared model", async () => {
  for (const name of modelNames) {
    const model = await Deno.readTextFile(modelFile(name, "deploy.prototxt"));
    const weights = await Deno.readFile(modelFile(name, "weights.caffemodel"));
    const net = loadNet(model, weights);
    const record = await makeRecord(net);
    await assertSameOutputs({ model, weights, record }, name);
  }
});
