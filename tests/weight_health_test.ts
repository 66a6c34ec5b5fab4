// Absurd records make useless models: convert warns about clipped and zeroed weights and an
// int32 bias near saturation, and compare flags a layer whose activations are crushed by a
// tiny scale_d by its relative L2 error.

import assert from "node:assert/strict";
import { compareNets } from "../src/engine/compare.ts";
import { convertNet } from "../src/quant/convert.ts";
import { conv, deconv, net, random, recordText } from "./_builders.ts";

/** A 3-input, 4-output 3x3 convolution "c" (108 weights in [-1, 1)), with or without bias. */
function convNet(bias: boolean) {
  const next = random(7);
  return net("data", [1, 3, 6, 6], [
    conv("c", "data", "y", { numOutput: 4, channelsIn: 3, next, bias }),
  ]);
}

/** max |W| over all weights of the net's layer 0, in float64. */
function maxAbs(weights: Float32Array): number {
  return weights.reduce((largest, value) => Math.max(largest, Math.abs(value)), 0);
}

/** A record entry for "c" with one scale_w. */
function record(scaleD: number, scaleW: number): string {
  return recordText({ c: `scale_d: ${scaleD} offset_d: 0 scale_w: ${scaleW} offset_w: 0` });
}

const weightWarnings = (warnings: string[]) => warnings.filter((w) => w.startsWith('layer "c"'));

Deno.test("convert: a sound record gives no weight warning", async () => {
  const model = convNet(true);
  const scaleW = maxAbs(model.layers[0].blobs[0].data as Float32Array) / 127;
  const { report } = await convertNet(model, record(0.01, scaleW));
  assert.deepEqual(weightWarnings(report.warnings), []);
});

Deno.test("convert: scale_w 1000x below max|W|/127 warns that weights clip", async () => {
  const model = convNet(false);
  const weights = model.layers[0].blobs[0].data as Float32Array;
  const scaleW = maxAbs(weights) / 127 / 1000;
  // By hand: a weight clips when |w| / scale_w > 127.5.
  const clipped = weights.filter((w) => Math.abs(w) / Math.fround(scaleW) > 127.5).length;
  assert.ok(clipped > 0.9 * weights.length);
  const { report } = await convertNet(model, record(0.01, scaleW));
  const warnings = weightWarnings(report.warnings);
  assert.equal(warnings.length, 1, warnings.join("\n"));
  const share = /(\d+\.\d)% of its weights clip at -128\/127/.exec(warnings[0]);
  assert.ok(share, warnings[0]);
  // Weights between 127.5 scale_w and 127.5 scale_w that round to ±127 are not counted: none here.
  assert.equal(share[1], ((100 * clipped) / weights.length).toFixed(1));
});

Deno.test("convert: scale_w 1000x above max|W|/127 warns that most weights are 0", async () => {
  const model = convNet(false);
  const scaleW = (maxAbs(model.layers[0].blobs[0].data as Float32Array) / 127) * 1000;
  const { report } = await convertNet(model, record(0.01, scaleW));
  const warnings = weightWarnings(report.warnings);
  assert.equal(warnings.length, 1, warnings.join("\n"));
  // |w| / scale_w <= 0.127 for every weight: all round to 0.
  assert.match(warnings[0], /100\.0% of its weights quantize to 0/);
});

Deno.test("convert: a Deconvolution's clipped weights are counted in the channels that clip", async () => {
  const next = random(3);
  const model = net("data", [1, 4, 3, 3], [
    deconv("c", "data", "y", { numOutput: 3, channelsIn: 4, next, bias: false }),
  ]);
  // Weights [C_in 4, C_out 3, 3, 3]: element (i, j, k) belongs to output channel j.
  const weights = model.layers[0].blobs[0].data as Float32Array;
  const channelOf = (index: number) => Math.floor(index / 9) % 3;
  const channelMax = [0, 1, 2].map((c) =>
    maxAbs(weights.filter((_, index) => channelOf(index) === c))
  );
  // Channel 1 gets a scale_w 1000x too small; channels 0 and 2 max|W|/127 (their largest
  // weights land on ±127 without clipping and must not count).
  const scaleW = channelMax.map((max, c) => Math.fround(max / 127 / (c === 1 ? 1000 : 1)));
  const clipped =
    weights.filter((w, index) => Math.abs(w) / scaleW[channelOf(index)] > 127.5).length;
  assert.ok(clipped > 0 && clipped <= 36);
  const entry = `scale_d: 0.01 offset_d: 0 ${scaleW.map((s) => `scale_w: ${s}`).join(" ")} ` +
    "offset_w: 0 offset_w: 0 offset_w: 0";
  const { report } = await convertNet(model, recordText({ c: entry }));
  const share = /(\d+\.\d)% of its weights clip/.exec(weightWarnings(report.warnings)[0] ?? "");
  assert.equal(
    share?.[1],
    ((100 * clipped) / weights.length).toFixed(1),
    report.warnings.join("\n"),
  );
});

Deno.test("convert: a quantized bias over half the int32 range warns of accumulator saturation", async () => {
  const model = convNet(true);
  const scaleW = Math.fround(maxAbs(model.layers[0].blobs[0].data as Float32Array) / 127);
  const bias = model.layers[0].blobs[1].data as Float32Array;
  const biggest = maxAbs(bias);
  // b_q = rint(b / (scale_d · scale_w)) ≈ 1.5 · 2^30 for the largest bias.
  const scaleD = Math.fround(biggest / (1.5 * 2 ** 30 * scaleW));
  const { report } = await convertNet(model, record(scaleD, scaleW));
  const warnings = weightWarnings(report.warnings);
  assert.equal(warnings.length, 1, warnings.join("\n"));
  const channel = bias.findIndex((b) => Math.abs(b) === biggest);
  assert.match(
    warnings[0],
    new RegExp(`bias of channel ${channel} is -?\\d+, over half the int32`),
  );
});

Deno.test("compare: scale_d 1e-30 crushes the activations; the layer is flagged by its relative L2", async () => {
  const model = convNet(false);
  const scaleW = maxAbs(model.layers[0].blobs[0].data as Float32Array) / 127;
  const { fakeQuant, report: converted } = await convertNet(model, record(1e-30, scaleW));
  assert.deepEqual(weightWarnings(converted.warnings), []); // the weights are fine
  const report = await compareNets(model, fakeQuant, { samples: 2 });
  const row = report.rows.find((entry) => entry.layer === "c" && entry.quantized)!;
  // Every input becomes ±127e-30 or -128e-30: the output is ~1e-28 of the float one.
  assert.ok(row.relativeL2 > 0.99, `rel L2 ${row.relativeL2}`);
  assert.ok(row.failed.some((check) => check.startsWith("rel L2")), row.failed.join("; "));
  assert.deepEqual(report.worst, ["c"]);
  assert.equal(report.sensitivity[0].layer, "c");
  assert.ok(report.sensitivity[0].relativeL2 > 0.99);
});
