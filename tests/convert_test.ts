import assert from "node:assert/strict";
import { readCaffemodel } from "../src/caffe/caffemodel_read.ts";
import { writeCaffemodel } from "../src/caffe/caffemodel_write.ts";
import { loadNet } from "../src/caffe/model.ts";
import type { Layer, Net } from "../src/caffe/net.ts";
import { printPrototxt, readPrototxt } from "../src/caffe/prototxt.ts";
import { convertInMemory, convertNet } from "../src/quant/convert.ts";
import { makeRecord } from "../src/quant/make_record.ts";
import { readRecord } from "../src/quant/record.ts";
import { batchNorm, conv, net, random, recordText, relu, scale } from "./_builders.ts";
import { modelFile, modelNames } from "./_models.ts";

/** A net with a fused+quantized conv, a fused-only conv and two convs sharing a Quant. */
function mixedNet(): Net {
  const next = random(41);
  const options = { numOutput: 4, channelsIn: 3, next };
  const options4 = { numOutput: 4, channelsIn: 4, next };
  return net("data", [1, 3, 9, 9], [
    conv("conv1", "data", "c1", options),
    batchNorm("bn1", "c1", "c1", 4, next),
    scale("scale1", "c1", "c1", 4, next),
    relu("relu1", "c1", "c1"),
    conv("conv2", "c1", "c2", options4),
    batchNorm("bn2", "c2", "c2", 4, next),
    scale("scale2", "c2", "c2", 4, next, false),
    conv("conv3", "c1", "c3", options4),
    conv("conv4", "c1", "c4", options4),
  ]);
}

const MIXED_RECORD = recordText({
  conv1: "scale_d: 0.02 offset_d: 4 scale_w: 0.01 scale_w: 0.02 scale_w: 0.03 scale_w: 0.04 " +
    "offset_w: 0 offset_w: 0 offset_w: 0 offset_w: 0",
  conv3: "scale_d: 0.05 offset_d: -7 scale_w: 0.01 offset_w: 0",
  conv4: "scale_d: 0.05 offset_d: -7 scale_w: 0.02 offset_w: 0",
});

/** `_datadump_original_op_names` of a group. */
function originalOps(names: string[]) {
  return [{ key: "_datadump_original_op_names", value: { list: { val_type: 1, s: names } } }];
}

/** The DeQuant's `output_desc` naming `origin`. */
function outputDesc(origin: string) {
  return [{
    attr: [
      { key: "_datadump_origin_name", value: { s: origin } },
      { key: "_datadump_origin_output_index", value: { i: 0 } },
      { key: "_datadump_origin_format", value: { s: "NCHW" } },
    ],
  }];
}

Deno.test("quant info: every fake-quant layer in order, groups and DeQuant origins (SPEC §6)", async () => {
  const { quantInfo, report } = await convertNet(mixedNet(), MIXED_RECORD);
  const fused1 = originalOps(["conv1", "bn1", "scale1"]);
  const expected = {
    graph: [{
      op: [
        { name: "data", type: "Input" },
        { name: "conv1_quant_layer", type: "Quant", input: ["data:0"], attr: fused1 },
        { name: "conv1", type: "Convolution", input: ["conv1_quant_layer:0"], attr: fused1 },
        {
          name: "conv1_dequant_layer",
          type: "DeQuant",
          input: ["conv1:0"],
          attr: fused1,
          output_desc: outputDesc("scale1"),
        },
        { name: "relu1", type: "ReLU", input: ["conv1_dequant_layer:0"] },
        {
          name: "conv2",
          type: "Convolution",
          input: ["relu1:0"],
          attr: originalOps(["conv2", "bn2", "scale2"]),
        },
        {
          name: "conv3_quant_layer",
          type: "Quant",
          input: ["relu1:0"],
          attr: originalOps(["conv3"]),
        },
        {
          name: "conv3",
          type: "Convolution",
          input: ["conv3_quant_layer:0"],
          attr: originalOps(["conv3"]),
        },
        {
          name: "conv3_dequant_layer",
          type: "DeQuant",
          input: ["conv3:0"],
          attr: originalOps(["conv3"]),
          output_desc: outputDesc("conv3"),
        },
        {
          name: "conv4",
          type: "Convolution",
          input: ["conv3_quant_layer:0"],
          attr: originalOps(["conv4"]),
        },
        {
          name: "conv4_dequant_layer",
          type: "DeQuant",
          input: ["conv4:0"],
          attr: originalOps(["conv4"]),
          output_desc: outputDesc("conv4"),
        },
      ],
    }],
  };
  // key order matters: compare the canonical text of both
  assert.equal(JSON.stringify(JSON.parse(quantInfo)), JSON.stringify(expected));
  assert.deepEqual(report.fusedComposites.map((c) => c.layer), ["conv1", "conv2"]);
  assert.deepEqual(report.sharedQuantLayers, [
    { name: "conv3_quant_layer", consumers: ["conv3", "conv4"] },
  ]);
});

Deno.test("records that do nothing are warned about; records that act are not", async () => {
  // MIXED_RECORD's scale_w clip most weights (weight_health_test.ts covers those warnings).
  // Layers the record leaves out are listed in one "stay float" line, checked in record_test.ts.
  const recordWarnings = (warnings: string[]) =>
    warnings.filter((warning) =>
      !warning.includes("of its weights") && !warning.includes("no record entry")
    );
  assert.deepEqual(
    recordWarnings((await convertNet(mixedNet(), MIXED_RECORD)).report.warnings),
    [],
  );
  const record = recordText({
    conv1: "scale_d: 0.02 offset_d: 4 scale_w: 0.01 offset_w: 0",
    conv2: "skip_fusion: true", // heads conv2 + bn2 + scale2: acts
    conv3: "skip_fusion: true", // no BatchNorm + Scale after conv3
    bn1: "skip_fusion: true", // a BatchNorm heads no composite
    relu1: "", // an empty value
    scale2: "skip_fusion: false channels: 4", // neither factors nor skip_fusion: true
  });
  const { report } = await convertNet(mixedNet(), record);
  const mentioning = (name: string) =>
    recordWarnings(report.warnings).filter((warning) => warning.includes(`"${name}"`));
  for (const name of ["conv3", "bn1", "relu1", "scale2"]) {
    assert.equal(mentioning(name).length, 1, `${name}: ${report.warnings.join("; ")}`);
  }
  for (const name of ["conv3", "bn1"]) {
    assert.ok(mentioning(name)[0].includes("skip_fusion"), mentioning(name)[0]);
  }
  assert.equal(recordWarnings(report.warnings).length, 4, report.warnings.join("; "));
  assert.deepEqual(report.fusedComposites.map((c) => c.layer), ["conv1"]);
  assert.deepEqual(report.quantizedLayers, ["conv1"]);
});

Deno.test("convertInMemory: the same input twice gives byte-identical outputs", async () => {
  const input = mixedNet();
  const model = printPrototxt(input);
  const weights = writeCaffemodel(input);
  const progress: string[] = [];
  const run = () =>
    convertInMemory({
      model,
      weights,
      record: MIXED_RECORD,
      files: { model: "m.prototxt", weights: "w.caffemodel", record: "r.txt" },
      onProgress: (stage) => progress.push(stage),
    });
  const first = await run();
  const second = await run();
  assert.deepEqual(Object.keys(first.files), [
    "fakeQuantModel",
    "fakeQuantWeights",
    "deployModel",
    "deployWeights",
    "quantInfo",
  ]);
  for (const key of Object.keys(first.files) as (keyof typeof first.files)[]) {
    assert.deepEqual(first.files[key], second.files[key], key);
  }
  assert.ok(progress.includes("quantize") && progress.includes("fuse"));
  assert.deepEqual(first.report.quantizedLayers, ["conv1", "conv3", "conv4"]);
  // the written outputs read back as the nets they describe
  const deploy = loadNet(first.files.deployModel, first.files.deployWeights);
  assert.deepEqual(deploy.layers.map((l) => l.name), [
    "conv1_quant_layer",
    "conv1",
    "conv1_dequant_layer",
    "relu1",
    "conv2",
    "conv3_quant_layer",
    "conv3",
    "conv3_dequant_layer",
    "conv4",
    "conv4_dequant_layer",
  ]);
});

Deno.test("convertInMemory: record errors name the record file", async () => {
  const input = mixedNet();
  await assert.rejects(
    () =>
      convertInMemory({
        model: printPrototxt(input),
        weights: writeCaffemodel(input),
        record: recordText({ relu1: "scale_d: 1" }),
        files: { record: "r.txt" },
      }),
    (error: unknown) => {
      assert.equal((error as { code?: string }).code, "RECORD_NOT_QUANTIZABLE");
      assert.equal((error as { file?: string }).file, "r.txt");
      return true;
    },
  );
});

/** Product of a shape. */
function count(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Layers by name. */
function byName(target: Net): Map<string, Layer> {
  return new Map(target.layers.map((l) => [l.name, l]));
}

/** The bytes of a blob's data. */
function bytes(data: ArrayBufferView): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

for (const name of modelNames) {
  for (const perTensor of [false, true]) {
    Deno.test(
      `real model ${name}: converts with a ${perTensor ? "per-tensor" : "per-channel"} record ` +
        "for every quantizable layer",
      () => checkRealModel(name, perTensor),
    );
  }
}

/** Converts real model `name` with a record from makeRecord and checks the outputs. */
async function checkRealModel(name: string, perTensor: boolean): Promise<void> {
  const modelText = await Deno.readTextFile(modelFile(name, "deploy.prototxt"));
  const weightBytes = await Deno.readFile(modelFile(name, "weights.caffemodel"));
  const original = loadNet(modelText, weightBytes);
  const record = await makeRecord(original, { perTensor });
  const factors = readRecord(record, original);
  const { files, report } = await convertInMemory({
    model: modelText,
    weights: weightBytes,
    record,
  });
  assert.ok(!files.deployModel.includes("layers {") && !files.fakeQuantModel.includes("layers {"));
  const again = await convertInMemory({ model: modelText, weights: weightBytes, record });
  assert.deepEqual(again.files, files, "a second conversion differs");
  assert.deepEqual(report.quantizedLayers, [...factors.keys()]);
  assert.ok(report.quantizedLayers.length > 0);
  const originals = byName(original);
  const deployWeights = byName(readCaffemodel(files.deployWeights));
  const fakeWeights = byName(readCaffemodel(files.fakeQuantWeights));
  const deployModel = readPrototxt(files.deployModel);
  // one DeQuant per quantized layer, one Quant per quantized layer not fed by a shared one
  const sharedExtra = report.sharedQuantLayers.reduce((n, g) => n + g.consumers.length - 1, 0);
  assert.equal(
    deployModel.layers.length,
    original.layers.length + 2 * report.quantizedLayers.length - sharedExtra,
  );
  for (const [layerName, entry] of factors) {
    const scaleW = entry.factors!.scaleW;
    const source = originals.get(layerName)!;
    const deployed = deployWeights.get(layerName)!;
    const fake = fakeWeights.get(layerName)!;
    const dequant = deployWeights.get(`${layerName}_dequant_layer`)!;
    assert.ok(dequant.blobs[0].data instanceof BigUint64Array);
    assert.equal(dequant.blobs[0].data.length, scaleW.length);
    assert.equal(fakeWeights.get(`${layerName}_dequant_layer`)!.blobs.length, 3);
    if (source.blobs.length === 0) continue;
    const weights = source.blobs[0].data as Float32Array;
    assert.ok(deployed.blobs[0].data instanceof Int8Array, layerName);
    assert.equal(deployed.blobs[0].data.length, weights.length);
    assert.deepEqual(deployed.blobs[0].shape, source.blobs[0].shape);
    if (source.blobs.length > 1) {
      assert.ok(deployed.blobs[1].data instanceof Int32Array);
      assert.equal(deployed.blobs[1].data.length, count(source.blobs[1].shape));
    }
    const fakeData = fake.blobs[0].data as Float32Array;
    const perChannel = weights.length / scaleW.length;
    const channelOf = source.type === "Deconvolution"
      ? (i: number) => Math.floor(i / count(source.blobs[0].shape.slice(2))) % scaleW.length
      : (i: number) => Math.floor(i / perChannel);
    for (let i = 0; i < weights.length; i++) {
      const s = scaleW[scaleW.length === 1 ? 0 : channelOf(i)];
      const bound = s * (0.5 + 1e-5) + Math.abs(weights[i]) * 1e-7;
      assert.ok(
        Math.abs(fakeData[i] - weights[i]) <= bound,
        `${layerName}[${i}]: ${fakeData[i]} vs ${weights[i]}, scale_w ${s}`,
      );
    }
  }
  // untouched layers: bit-identical blobs in both outputs
  for (const layer of original.layers) {
    if (factors.has(layer.name)) continue;
    for (const output of [deployWeights, fakeWeights]) {
      const written = output.get(layer.name)!;
      assert.equal(written.blobs.length, layer.blobs.length, layer.name);
      layer.blobs.forEach((blob, i) => {
        assert.deepEqual(written.blobs[i].shape, blob.shape, layer.name);
        assert.deepEqual(bytes(written.blobs[i].data), bytes(blob.data), layer.name);
      });
    }
  }
  const ops = JSON.parse(files.quantInfo).graph[0].op as { name: string }[];
  const fakeModel = readPrototxt(files.fakeQuantModel);
  assert.deepEqual(
    ops.slice(ops.length - fakeModel.layers.length).map((op) => op.name),
    fakeModel.layers.map((l) => l.name),
  );
}
