// The calibration driver (SPEC §11): what is calibrated (each layer's bottom[0] as it reads it,
// shared values once), the record it writes (factors against the independent IFMR reference,
// ARQ scales by hand, C/H/W, skip_fusion), bounded-memory passes and batching giving the same
// result, sources, errors, and a real model end to end.

import assert from "node:assert/strict";
import { calibrate, type CalibrationResult } from "../src/calibrate/calibrate.ts";
import { defaultCalibrationConfig } from "../src/calibrate/config.ts";
import type { Sample } from "../src/calibrate/samples.ts";
import { loadNet } from "../src/caffe/model.ts";
import { writeCaffemodel } from "../src/caffe/caffemodel_write.ts";
import { printPrototxt } from "../src/caffe/prototxt.ts";
import { ConvertError } from "../src/errors.ts";
import { readNpy } from "../src/io/npy.ts";
import { caffeType } from "../src/proto/schema.ts";
import { parseText } from "../src/proto/text_read.ts";
import type { TextMessage } from "../src/proto/tree.ts";
import { convertInMemory } from "../src/quant/convert.ts";
import { readRecord } from "../src/quant/record.ts";
import { exampleNet } from "../scripts/example_model.ts";
import { avePool, conv, innerProduct, net, random, relu } from "./_builders.ts";
import { IFMR_DEFAULTS, referenceIfmr } from "./_ifmr_reference.ts";
import { modelFile, modelNames } from "./_models.ts";

/** `count` samples of shape [1, ...chw] with values from a seeded source. */
function samplesOf(count: number, chw: number[], seed: number): Sample[] {
  const next = random(seed);
  const size = chw.reduce((a, b) => a * b, 1);
  return Array.from({ length: count }, () =>
    new Map([["data", {
      shape: [1, ...chw],
      data: Float32Array.from({ length: size }, () => next(-2, 3)),
    }]]));
}

/** The record's entries by key. */
function entries(record: string): Map<string, TextMessage> {
  const root = parseText(record, caffeType("ScaleOffsetRecord"));
  return new Map(
    root.getAll("record").map((entry) => {
      const message = entry as TextMessage;
      return [String(message.get("key")), message.message("value")!];
    }),
  );
}

/** Every value of `data` over the samples, in order. */
function allValues(samples: Sample[], transform: (value: number) => number = (v) => v) {
  return Float32Array.from(samples.flatMap((sample) => [...sample.get("data")!.data]), transform);
}

/**
 * conv_a reads the raw input; an in-place ReLU follows; conv_b and conv_c read the rectified
 * input (one value: calibrated once); pool reads conv_b's output; fc reads the pooled value.
 */
function sharedNet() {
  const next = random(3);
  return net("data", [1, 2, 6, 6], [
    conv("conv_a", "data", "a", { numOutput: 3, channelsIn: 2, next }),
    relu("relu0", "data", "data"),
    conv("conv_b", "data", "b", { numOutput: 4, channelsIn: 2, next }),
    conv("conv_c", "data", "c", { numOutput: 2, channelsIn: 2, next }),
    avePool("pool", "b", "p"),
    innerProduct("fc", "p", "fc", { numOutput: 5, channelsIn: 4 * 2 * 2, next }),
  ]);
}

Deno.test("each layer's input as it reads it; shared values once; factors equal the reference", async () => {
  const model = sharedNet();
  const samples = samplesOf(5, [2, 6, 6], 1);
  const result = await calibrate(model, samples);
  const record = entries(result.record);
  assert.deepEqual([...record.keys()], ["conv_a", "conv_b", "conv_c", "pool", "fc"]);
  const raw = referenceIfmr(allValues(samples), IFMR_DEFAULTS);
  const rectified = referenceIfmr(allValues(samples, (v) => Math.max(v, 0)), IFMR_DEFAULTS);
  assert.equal(record.get("conv_a")!.get("scale_d"), raw.scaleD);
  assert.equal(record.get("conv_a")!.get("offset_d"), raw.offsetD);
  for (const name of ["conv_b", "conv_c"]) {
    assert.equal(record.get(name)!.get("scale_d"), rectified.scaleD, name);
    assert.equal(record.get(name)!.get("offset_d"), rectified.offsetD, name);
  }
  assert.notEqual(raw.scaleD, rectified.scaleD);
  const stats = new Map(result.layers.map((entry) => [entry.layer, entry]));
  assert.deepEqual(stats.get("conv_b")!.sharedWith, ["conv_c"]);
  assert.deepEqual(stats.get("conv_a")!.sharedWith, []);
  assert.equal(stats.get("conv_a")!.values, 5 * 72);
  assert.equal(result.samples, 5);
  // C, H, W of each input as AMCT writes them: data [2, 6, 6], b [4, 4, 4], p [4, 2, 2]
  const shape = (name: string) =>
    ["channels", "height", "width"].map((field) => record.get(name)!.get(field));
  assert.deepEqual(shape("conv_a"), [2, 6, 6]);
  assert.deepEqual(shape("pool"), [4, 4, 4]);
  assert.deepEqual(shape("fc"), [4, 2, 2]);
  // ARQ: per channel max|W[c]|/127 for convolutions, one scale for InnerProduct, [1] for pooling
  const weights = model.layers[0].blobs[0].data as Float32Array;
  const perChannel = [0, 1, 2].map((c) =>
    Math.fround(Math.max(...weights.subarray(c * 18, (c + 1) * 18).map(Math.abs)) / 127)
  );
  assert.deepEqual(record.get("conv_a")!.getAll("scale_w"), perChannel);
  const fcWeights = model.layers[5].blobs[0].data as Float32Array;
  assert.deepEqual(record.get("fc")!.getAll("scale_w"), [
    Math.fround(Math.max(...fcWeights.map(Math.abs)) / 127),
  ]);
  assert.deepEqual(record.get("pool")!.getAll("scale_w"), [1]);
  // the record reader accepts it
  assert.equal(readRecord(result.record, model).size, 5);
});

Deno.test("kept values, three streamed passes, batches and a one-shot source agree", async () => {
  const model = sharedNet();
  const samples = samplesOf(7, [2, 6, 6], 2);
  const kept = await calibrate(model, samples);
  assert.equal(kept.passes, 1);
  const streamed = await calibrate(model, samples, { memoryBudget: 0 });
  assert.equal(streamed.passes, 3);
  assert.equal(streamed.record, kept.record);
  const batched = await calibrate(model, samples, { memoryBudget: 0, batchSize: 3 });
  assert.equal(batched.record, kept.record);
  async function* oneShot() {
    for (const sample of samples) yield sample;
  }
  const generated = await calibrate(model, oneShot(), { memoryBudget: 0 });
  assert.equal(generated.record, kept.record);
  const factory = await calibrate(model, () => samples.values(), { memoryBudget: 0 });
  assert.equal(factory.record, kept.record);
  const progress: number[] = [];
  await calibrate(model, samples, {
    memoryBudget: 0,
    onProgress: ({ pass, layer }) => layer === undefined && progress.push(pass),
  });
  assert.deepEqual(progress, [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2]);
});

Deno.test("HFMG, min/max and no offset through the configuration; batch_num limits samples", async () => {
  const model = sharedNet();
  const samples = samplesOf(4, [2, 6, 6], 4);
  const minmax = await calibrate(model, samples, {
    config: defaultCalibrationConfig(model, { activation: { algorithm: "minmax" } }),
  });
  const values = allValues(samples);
  let min = 0;
  let max = 0;
  for (const v of values) [min, max] = [Math.min(min, v), Math.max(max, v)];
  const entry = entries(minmax.record).get("conv_a")!;
  assert.equal(entry.get("scale_d"), Math.fround((max - min) / 255));
  const symmetric = await calibrate(model, samples, {
    config: defaultCalibrationConfig(model, { activation: { withOffset: false } }),
  });
  const expected = referenceIfmr(values, { ...IFMR_DEFAULTS, offset: false });
  assert.equal(entries(symmetric.record).get("conv_a")!.get("scale_d"), expected.scaleD);
  assert.equal(entries(symmetric.record).get("conv_a")!.get("offset_d"), 0);
  const hfmg = await calibrate(model, samples, {
    config: defaultCalibrationConfig(model, { activation: { algorithm: "hfmg" } }),
  });
  assert.ok(hfmg.layers.every((layer) => layer.algorithm === "hfmg"));
  const config = { ...defaultCalibrationConfig(model, { skip: ["fc"] }), batchNum: 2 };
  const limited = await calibrate(model, samples, { config });
  assert.equal(limited.samples, 2);
  assert.ok(!entries(limited.record).has("fc"));
  const firstTwo = referenceIfmr(allValues(samples.slice(0, 2)), IFMR_DEFAULTS);
  assert.equal(entries(limited.record).get("conv_a")!.get("scale_d"), firstTwo.scaleD);
});

Deno.test("fusion first; do_fusion false and skip_fusion_layers give skip_fusion: true", async () => {
  const model = exampleNet();
  const samples = samplesOf(2, [3, 32, 32], 5);
  const check = async (result: CalibrationResult, unfused: string[]) => {
    const record = entries(result.record);
    for (const name of ["conv1", "conv2"]) {
      assert.equal(record.get(name)!.get("skip_fusion"), unfused.includes(name) ? true : undefined);
    }
    const output = await convertInMemory({
      model: printPrototxt(model),
      weights: writeCaffemodel(model),
      record: result.record,
    });
    assert.deepEqual(
      output.report.fusedComposites.map((composite) => composite.layer),
      ["conv1", "conv2"].filter((name) => !unfused.includes(name)),
    );
  };
  await check(await calibrate(model, samples), []);
  const base = defaultCalibrationConfig(model);
  await check(await calibrate(model, samples, { config: { ...base, doFusion: false } }), [
    "conv1",
    "conv2",
  ]);
  await check(
    await calibrate(model, samples, { config: { ...base, skipFusionLayers: ["conv2"] } }),
    ["conv2"],
  );
  // a composite left unfused whose layer is not quantized still gets its skip_fusion entry
  const skipped = defaultCalibrationConfig(model, { skip: ["conv1"] });
  const result = await calibrate(model, samples, {
    config: { ...skipped, skipFusionLayers: ["conv1"] },
  });
  const conv1 = entries(result.record).get("conv1")!;
  assert.deepEqual(conv1.fields.map((field) => field.name), ["skip_fusion"]);
});

Deno.test("calibration errors: NaN input, no samples, unknown layers, missing inputs", async () => {
  const model = sharedNet();
  const bad = samplesOf(2, [2, 6, 6], 6);
  bad[1].get("data")!.data[7] = NaN;
  const rejects = (promise: Promise<unknown>, code: string, layer?: string) =>
    assert.rejects(promise, (error) => {
      assert.ok(error instanceof ConvertError, String(error));
      assert.equal(error.code, code);
      if (layer !== undefined) assert.equal(error.layer, layer);
      return true;
    });
  await rejects(calibrate(model, bad), "CALIBRATION_NOT_FINITE", "conv_a");
  await rejects(calibrate(model, []), "CALIBRATION_NO_DATA");
  const config = defaultCalibrationConfig(model);
  await rejects(
    calibrate(model, bad, { config: { ...config, skipFusionLayers: ["nope"] } }),
    "CONFIG_UNKNOWN_LAYER",
    "nope",
  );
  const wrongInput = [new Map([["other", { shape: [1, 2, 6, 6], data: new Float32Array(72) }]])];
  await rejects(calibrate(model, wrongInput), "BAD_INPUT");
  const unlike = [...samplesOf(2, [2, 6, 6], 6), ...samplesOf(1, [2, 5, 6], 7)];
  await assert.rejects(
    calibrate(model, unlike, { batchSize: 3 }),
    (error) =>
      error instanceof ConvertError && error.code === "BAD_INPUT" &&
      error.message.startsWith('calibration sample 2 of a batch has no input "data" shaped like'),
  );
});

Deno.test("LeNet from ../shared/models: calibrated on its .npy input, converted", async () => {
  if (!modelNames.includes("lenet")) return;
  const model = loadNet(
    Deno.readTextFileSync(modelFile("lenet", "deploy.prototxt")),
    Deno.readFileSync(modelFile("lenet", "weights.caffemodel")),
  );
  const input = readNpy(Deno.readFileSync(modelFile("lenet", "ref/input.data.npy")));
  const result = await calibrate(model, [new Map([["data", input]])]);
  const record = entries(result.record);
  assert.deepEqual([...record.keys()], ["conv1", "conv2", "ip1", "ip2"]);
  const expected = referenceIfmr(input.data, IFMR_DEFAULTS);
  assert.equal(record.get("conv1")!.get("scale_d"), expected.scaleD);
  assert.equal(record.get("conv1")!.get("offset_d"), expected.offsetD);
  const output = await convertInMemory({
    model: Deno.readTextFileSync(modelFile("lenet", "deploy.prototxt")),
    weights: Deno.readFileSync(modelFile("lenet", "weights.caffemodel")),
    record: result.record,
  });
  assert.deepEqual(output.report.quantizedLayers, ["conv1", "conv2", "ip1", "ip2"]);
});
