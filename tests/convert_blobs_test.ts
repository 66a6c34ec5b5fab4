/**
 * `convertToBlobs` gives the bytes of `convert` (one preallocated buffer per caffemodel) while
 * making its caffemodels piece by piece: a 38 MB layer spans many 4 MiB pieces, so a piece
 * reused before it was copied would show as different bytes.
 */

import assert from "node:assert/strict";
import { convert, convertToBlobs } from "../core.ts";
import { writeCaffemodel } from "../src/caffe/caffemodel_write.ts";
import { printPrototxt } from "../src/caffe/prototxt.ts";
import { conv, net, random, recordText } from "./_builders.ts";

Deno.test("convertToBlobs: five Blobs with the bytes of convert, a 38 MB model in many pieces", async () => {
  const next = random(11);
  const model = net("data", [1, 1024, 4, 4], [
    conv("conv1", "data", "conv1", { numOutput: 1024, channelsIn: 1024, next }),
    conv("conv2", "conv1", "conv2", { numOutput: 8, channelsIn: 1024, next }),
  ]);
  const input = {
    model: printPrototxt(model),
    weights: writeCaffemodel(model),
    record: recordText({
      conv1: "scale_d: 0.02 offset_d: 0 scale_w: 0.004 offset_w: 0",
      conv2: "scale_d: 0.03 offset_d: 3 scale_w: 0.005 offset_w: 0",
    }),
  };
  assert.ok(input.weights.length > 30e6, `${input.weights.length} bytes`);
  const stages: string[] = [];
  const blobs = await convertToBlobs({ ...input, onProgress: (stage) => void stages.push(stage) });
  const bytes = await convert(input);
  const encoder = new TextEncoder();
  for (const key of Object.keys(bytes.files) as (keyof typeof bytes.files)[]) {
    const expected = bytes.files[key];
    const blob = blobs.files[key];
    assert.ok(blob instanceof Blob, key);
    const actual = new Uint8Array(await blob.arrayBuffer());
    const wanted = typeof expected === "string" ? encoder.encode(expected) : expected;
    assert.equal(actual.length, wanted.length, key);
    // The first differing byte (a whole-array diff of megabytes would be unreadable).
    assert.equal(actual.findIndex((value, index) => value !== wanted[index]), -1, key);
    assert.equal(
      blob.type,
      typeof expected === "string" ? "text/plain" : "application/octet-stream",
    );
  }
  assert.deepEqual(blobs.report.quantizedLayers, ["conv1", "conv2"]);
  assert.equal(stages.at(-1), "serialize");
});
