// SPEC §9 records from weights: the scales they hold, and weights they refuse.

import assert from "node:assert/strict";
import { ConvertError } from "../src/errors.ts";
import { caffeType } from "../src/proto/schema.ts";
import { parseText } from "../src/proto/text_read.ts";
import { activationFactors, makeRecord } from "../src/quant/make_record.ts";
import { conv, net, random } from "./_builders.ts";

Deno.test("per-channel scale_w is max|W[c]|/127 in float32; activation factors per SPEC §9", async () => {
  const layer = conv("c", "data", "c", { numOutput: 3, channelsIn: 2, next: random(5) });
  const text = await makeRecord(net("data", [1, 2, 5, 5], [layer]), { scaleD: 0.5, offsetD: 3 });
  const record = parseText(text, caffeType("ScaleOffsetRecord"));
  const value = (record.message("record")!.message("value"))!;
  assert.equal(value.get("scale_d"), 0.5);
  assert.equal(value.get("offset_d"), 3);
  const weights = layer.blobs[0].data as Float32Array;
  const expected = [0, 1, 2].map((c) => {
    const channel = weights.subarray(c * 18, (c + 1) * 18);
    return Math.fround(Math.max(...channel.map(Math.abs)) / 127);
  });
  assert.deepEqual(value.getAll("scale_w"), expected);
  assert.deepEqual(value.getAll("offset_w"), [0, 0, 0]);
  // (max - min)/255 with 0 inside the range; offset so that min maps to -128.
  const factors = activationFactors({ min: -1, max: 3 });
  assert.equal(factors.scaleD, Math.fround(4 / 255));
  assert.equal(factors.offsetD, -128 - Math.round(-1 / factors.scaleD));
});

Deno.test("NaN or infinity in weights or bias is WEIGHTS_NOT_FINITE naming the layer", async () => {
  for (const [blobIndex, at, bad] of [[0, 20, NaN], [1, 2, Infinity]] as const) {
    const layer = conv("c", "data", "c", { numOutput: 3, channelsIn: 2, next: random(6) });
    (layer.blobs[blobIndex].data as Float32Array)[at] = bad;
    await assert.rejects(makeRecord(net("data", [1, 2, 5, 5], [layer])), (error) => {
      assert.ok(error instanceof ConvertError);
      assert.equal(error.code, "WEIGHTS_NOT_FINITE");
      assert.equal(error.layer, "c");
      assert.match(error.message, blobIndex === 0 ? /channel 1/ : /bias element 2/);
      return true;
    });
  }
});

Deno.test("unusable default factors are refused; a scale alone gets offset 0", async () => {
  const layer = conv("c", "data", "c", { numOutput: 2, channelsIn: 1, next: random(7) });
  const model = net("data", [1, 1, 4, 4], [layer]);
  const cases: [{ scaleD?: number; offsetD?: number }, string][] = [
    [{ offsetD: 3.5 }, "RECORD_BAD_OFFSET_D"],
    [{ offsetD: 300 }, "RECORD_BAD_OFFSET_D"],
    [{ scaleD: -1 }, "RECORD_BAD_SCALE"],
    [{ scaleD: 1e-39 }, "RECORD_BAD_SCALE"],
    [{ scaleD: NaN }, "RECORD_BAD_SCALE"],
  ];
  for (const [options, code] of cases) {
    await assert.rejects(
      makeRecord(model, options),
      (error) => error instanceof ConvertError && error.code === code,
      JSON.stringify(options),
    );
  }
  const text = await makeRecord(model, { scaleD: 0.25 });
  assert.match(text, /scale_d: 0\.25\n\s*offset_d: 0\n/);
});
