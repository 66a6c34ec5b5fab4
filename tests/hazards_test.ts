// Semantic hazards of convert_model inputs (issue 7, item 5): each one gets a clear error with a
// stable code and its place, a warning, or correct outputs checked against SPEC math computed
// here independently.

import assert from "node:assert/strict";
import { readCaffemodel } from "../src/caffe/caffemodel_read.ts";
import { loadNet } from "../src/caffe/model.ts";
import type { Layer, Net } from "../src/caffe/net.ts";
import { readPrototxt } from "../src/caffe/prototxt.ts";
import { convertInMemory, convertNet } from "../src/quant/convert.ts";
import { makeRecord } from "../src/quant/make_record.ts";
import { readRecord } from "../src/quant/record.ts";
import { quantKernels } from "../src/wasm/quant.ts";
import {
  batchNorm,
  blobOf,
  conv,
  layer,
  net,
  random,
  recordText,
  relu,
  roundHalfEven,
  scale,
} from "./_builders.ts";
import { checkError, type Expected, placeOf } from "./_errors.ts";
import { modelFile, modelNames } from "./_models.ts";
import { float32Bytes, lengthField, stringField, varint, varintField } from "./_protobuf_bytes.ts";

// ---------------------------------------------------------------------------------------------
// Helpers

/** Expects `readPrototxt(text, "net.prototxt")` to throw `expected`. */
function assertPrototxtError(text: string, expected: Expected): void {
  assert.throws(() => readPrototxt(text, "net.prototxt"), (error) => checkError(error, expected));
}

/** The layer `name` of `target`. */
function find(target: Net, name: string): Layer {
  const found = target.layers.find((l) => l.name === name);
  assert.ok(found, `no layer ${name}`);
  return found;
}

/** SPEC §4 outputs of a Convolution/InnerProduct layer (output channel = axis 0). */
interface Spec4 {
  weightsInt8: Int8Array;
  weightsFake: Float32Array;
  biasInt32: Int32Array;
  biasFake: Float32Array;
  deq: Float32Array;
  quantScale: number;
}

/**
 * SPEC §4, written out here: float32 factors, w_q = clamp(rint(f32(W / scale_w)), -128, 127),
 * w_fake = f32(w_q · scale_w), deq = f32(scale_d · scale_w), b_q = rint(b / deq) in float64
 * (asserted to fit int32), b_fake = f32(b_q · deq), S = f32(1 / scale_d).
 */
function spec4(
  weights: Float32Array,
  bias: Float32Array,
  scaleD: number,
  scaleW: number[],
): Spec4 {
  const channels = bias.length;
  const perChannel = weights.length / channels;
  const sd = Math.fround(scaleD);
  const sw = (c: number) => Math.fround(scaleW.length === 1 ? scaleW[0] : scaleW[c]);
  const weightsInt8 = new Int8Array(weights.length);
  const weightsFake = new Float32Array(weights.length);
  for (let i = 0; i < weights.length; i++) {
    const s = sw(Math.floor(i / perChannel));
    const q = roundHalfEven(Math.fround(weights[i] / s));
    weightsInt8[i] = Math.max(-128, Math.min(127, q));
    weightsFake[i] = Math.fround(weightsInt8[i] * s);
  }
  const deq = Float32Array.from({ length: scaleW.length }, (_, c) => Math.fround(sd * sw(c)));
  const biasInt32 = new Int32Array(channels);
  const biasFake = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const d = deq[scaleW.length === 1 ? 0 : c];
    const q = roundHalfEven(bias[c] / d);
    assert.ok(Math.abs(q) <= 2 ** 31 - 1, `test data: b_q ${q} outside int32`);
    biasInt32[c] = q;
    biasFake[c] = Math.fround(biasInt32[c] * d);
  }
  return { weightsInt8, weightsFake, biasInt32, biasFake, deq, quantScale: Math.fround(1 / sd) };
}

/** Checks the quantized layer `name` of both output nets against `expected`. */
function assertSpec4(fakeQuant: Net, deploy: Net, name: string, expected: Spec4): void {
  const deployed = find(deploy, name);
  const fake = find(fakeQuant, name);
  assert.deepEqual(deployed.blobs[0].data, expected.weightsInt8, `${name} w_q`);
  assert.deepEqual(deployed.blobs[1].data, expected.biasInt32, `${name} b_q`);
  assert.deepEqual(fake.blobs[0].data, expected.weightsFake, `${name} w_fake`);
  assert.deepEqual(fake.blobs[1].data, expected.biasFake, `${name} b_fake`);
  assert.deepEqual(find(fakeQuant, `${name}_dequant_layer`).blobs[0].data, expected.deq);
  const packed = find(deploy, `${name}_dequant_layer`).blobs[0].data as BigUint64Array;
  const bits = new Uint32Array(expected.deq.buffer.slice(0));
  assert.deepEqual([...packed], [...bits].map(BigInt), `${name} packed deq`);
  const quant = deploy.layers.find((l) => l.type === "Quant" && l.tops[0] === deployed.bottoms[0]);
  assert.equal(quant?.param("quant_param", "scale"), expected.quantScale, `${name} S`);
}

/** A Convolution `conv1` (bottom `data`) with the given weights `[C, 1, 2, 2]` and bias. */
function conv1(weights: number[], bias: number[], top = "conv1"): Layer {
  const channels = bias.length;
  return layer("conv1", "Convolution", ["data"], [top], {
    convolution_param: { num_output: channels, kernel_size: 2 },
  }, [blobOf([channels, 1, 2, 2], weights), blobOf([channels], bias)]);
}

/** A net `data [1,1,3,3]` → `conv1` → ReLU in place. */
function convNet(weights: number[], bias: number[]): Net {
  return net("data", [1, 1, 3, 3], [conv1(weights, bias), relu("relu1", "conv1", "conv1")]);
}

/** A record value: scale_d, offset_d 0 and one `offset_w: 0` per scale_w. */
function factors(scaleD: string, scaleW: string[]): string {
  return `scale_d: ${scaleD} offset_d: 0 ` + scaleW.map((s) => `scale_w: ${s}`).join(" ") +
    " " + scaleW.map(() => "offset_w: 0").join(" ");
}

// ---------------------------------------------------------------------------------------------
// 1. V1 nets: record keys match the upgraded layers; outputs are V2, with a warning.

/** The weights and bias of the small V1/V2 test net's conv1 (2 outputs, 1 input, 2x2). */
const SMALL_WEIGHTS = [0.5, -0.25, 0.125, 1.0, -0.75, 0.3, 0.0, 0.6];
const SMALL_BIAS = [0.3, -0.2];
const SMALL_RECORD = recordText({ conv1: factors("0.5", ["0.01", "0.02"]) });

const V1_PROTOTXT = `name: "small"
input: "data"
input_dim: 1
input_dim: 1
input_dim: 3
input_dim: 3
layers {
  name: "conv1"
  type: CONVOLUTION
  bottom: "data"
  top: "conv1"
  blobs_lr: 1
  blobs_lr: 2
  convolution_param { num_output: 2 kernel_size: 2 }
}
layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" }
`;

/** The same net in V2 form, written so that it prints as the upgraded V1 net does. */
const V2_PROTOTXT = `name: "small"
input: "data"
input_dim: 1
input_dim: 1
input_dim: 3
input_dim: 3
layer {
  name: "conv1"
  type: "Convolution"
  bottom: "data"
  top: "conv1"
  param { lr_mult: 1 }
  param { lr_mult: 2 }
  convolution_param { num_output: 2 kernel_size: 2 }
}
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
`;

/** A V1 caffemodel (field 2 `layers`, enum types, legacy num/channels/height/width blobs). */
function v1Caffemodel(): Uint8Array {
  const legacyBlob = (dims: number[], values: number[]) => [
    ...dims.flatMap((dim, i) => varintField(i + 1, dim)),
    ...lengthField(5, float32Bytes(values)),
  ];
  const v1Layer = (name: string, type: number, blobs: number[][]) =>
    lengthField(2, [
      ...stringField(4, name),
      ...varintField(5, type),
      ...blobs.flatMap((blob) => lengthField(6, blob)),
    ]);
  return new Uint8Array([
    ...stringField(1, "small"),
    ...v1Layer("conv1", 4, /* CONVOLUTION */ [
      legacyBlob([2, 1, 2, 2], SMALL_WEIGHTS),
      legacyBlob([1, 1, 1, 2], SMALL_BIAS),
    ]),
    ...v1Layer("relu1", 18, /* RELU */ []),
  ]);
}

/** The same weights as a V2 caffemodel (field 100 `layer`, blobs with `shape`). */
function v2Caffemodel(): Uint8Array {
  const shapedBlob = (shape: number[], values: number[]) => [
    ...lengthField(7, lengthField(1, shape.flatMap((dim) => varint(dim)))),
    ...lengthField(5, float32Bytes(values)),
  ];
  const v2Layer = (name: string, type: string, blobs: number[][]) =>
    lengthField(100, [
      ...stringField(1, name),
      ...stringField(2, type),
      ...blobs.flatMap((blob) => lengthField(7, blob)),
    ]);
  return new Uint8Array([
    ...stringField(1, "small"),
    ...v2Layer("conv1", "Convolution", [
      shapedBlob([2, 1, 2, 2], SMALL_WEIGHTS),
      shapedBlob([2], SMALL_BIAS),
    ]),
    ...v2Layer("relu1", "ReLU", []),
  ]);
}

const SMALL_FILES = { model: "small.prototxt", weights: "small.caffemodel", record: "r.txt" };

Deno.test("V1 net: a record key matches the upgraded layer, SPEC §4 outputs, V2 outputs and a warning", async () => {
  const { files, report } = await convertInMemory({
    model: V1_PROTOTXT,
    weights: v1Caffemodel(),
    record: SMALL_RECORD,
    files: SMALL_FILES,
  });
  assert.deepEqual(report.quantizedLayers, ["conv1"]);
  const fakeQuant = loadNet(files.fakeQuantModel, files.fakeQuantWeights);
  const deploy = loadNet(files.deployModel, files.deployWeights);
  const expected = spec4(
    new Float32Array(SMALL_WEIGHTS),
    new Float32Array(SMALL_BIAS),
    0.5,
    [0.01, 0.02],
  );
  assertSpec4(fakeQuant, deploy, "conv1", expected);
  for (const text of [files.fakeQuantModel, files.deployModel]) {
    assert.ok(!/^\s*layers\s*\{/m.test(text), "a V1 `layers` entry in the output");
    assert.match(text, /type: "Convolution"/);
  }
  // Both caffemodels are V2: every layer in field 100, none in field 2.
  for (const bytes of [files.fakeQuantWeights, files.deployWeights]) {
    assert.equal(readCaffemodel(bytes).layers.length, 4);
    assert.ok(!containsTopLevelField(bytes, 2), "a V1 `layers` field (2) in the output");
  }
  // One warning per legacy input: the prototxt and the caffemodel.
  const v1Warnings = report.warnings.filter((warning) => warning.includes("V1"));
  assert.equal(v1Warnings.length, 2, report.warnings.join("; "));
  assert.ok(v1Warnings[0].includes("small.prototxt"), v1Warnings[0]);
  assert.ok(v1Warnings[1].includes("small.caffemodel"), v1Warnings[1]);
  for (const warning of v1Warnings) assert.ok(warning.includes("V2"), warning);
});

/** True when the top-level protobuf message `bytes` has a field numbered `field`. */
function containsTopLevelField(bytes: Uint8Array, field: number): boolean {
  let at = 0;
  const readVarint = () => {
    let value = 0;
    for (let shift = 1;; shift *= 128) {
      const byte = bytes[at++];
      value += (byte & 0x7f) * shift;
      if (byte < 0x80) return value;
    }
  };
  while (at < bytes.length) {
    const key = readVarint();
    if (Math.floor(key / 8) === field) return true;
    const wireType = key % 8;
    if (wireType === 0) readVarint();
    else if (wireType === 2) {
      const length = readVarint();
      at += length;
    } else if (wireType === 5) at += 4;
    else if (wireType === 1) at += 8;
    else assert.fail(`wire type ${wireType} at the top level`);
  }
  return false;
}

Deno.test("V1/V2 prototxt with V2/V1 caffemodel: the same five outputs in every combination", async () => {
  const outputs = [];
  for (const model of [V2_PROTOTXT, V1_PROTOTXT]) {
    for (const [weights, v1Weights] of [[v2Caffemodel(), false], [v1Caffemodel(), true]] as const) {
      const files = { model: "m.prototxt", weights: "w.caffemodel" };
      const converted = await convertInMemory({ model, weights, record: SMALL_RECORD, files });
      outputs.push(converted.files);
      // Each legacy input is named in a warning, and only a legacy one.
      const legacy = converted.report.warnings.filter((w) => w.includes("legacy V1"));
      assert.deepEqual(
        legacy.map((w) => w.split(" ")[0]),
        [
          ...(model === V1_PROTOTXT ? ["m.prototxt"] : []),
          ...(v1Weights ? ["w.caffemodel"] : []),
        ],
        legacy.join("; "),
      );
    }
  }
  for (const other of outputs.slice(1)) assert.deepEqual(other, outputs[0]);
  const deploy = loadNet(outputs[0].deployModel, outputs[0].deployWeights);
  assert.deepEqual(
    find(deploy, "conv1").blobs[0].data,
    spec4(new Float32Array(SMALL_WEIGHTS), new Float32Array(SMALL_BIAS), 0.5, [0.01, 0.02])
      .weightsInt8,
  );
});

const hasLenetPair = modelNames.includes("lenet") && modelNames.includes("lenet_v1format");

Deno.test("real lenet: a V1 caffemodel under a V2 prototxt and a V2 one under a V1 prototxt", {
  ignore: !hasLenetPair,
}, async () => {
  const text = (name: string) => Deno.readTextFileSync(modelFile(name, "deploy.prototxt"));
  const bytes = (name: string) => Deno.readFileSync(modelFile(name, "weights.caffemodel"));
  // The two folders hold different trainings of one net: compare each caffemodel under both
  // prototxts. Layer names agree, so one record serves all four conversions.
  const lenet = loadNet(text("lenet"), bytes("lenet"));
  const record = await makeRecord(lenet);
  const keys = [...readRecord(record, lenet).keys()];
  assert.deepEqual(keys, ["conv1", "conv2", "ip1", "ip2"]);
  for (const weights of ["lenet", "lenet_v1format"]) {
    const blobsUnder = async (model: string) => {
      const { files, report } = await convertInMemory({
        model: text(model),
        weights: bytes(weights),
        record,
      });
      assert.deepEqual(report.quantizedLayers, keys);
      const written = readCaffemodel(files.deployWeights).layers;
      return new Map(written.map((l) => [l.name, l.blobs.map((b) => [b.shape, b.data])]));
    };
    const underV2 = await blobsUnder("lenet");
    const underV1 = await blobsUnder("lenet_v1format");
    for (const name of keys) {
      assert.deepEqual(underV1.get(name), underV2.get(name), `${weights}: ${name}`);
      assert.ok(underV1.get(name)![0][1] instanceof Int8Array);
    }
  }
});

Deno.test("V1 net: a record key that matches no layer is RECORD_UNKNOWN_LAYER at the key", async () => {
  const record = SMALL_RECORD + `record {\n  key: "CONVOLUTION"\n  value { scale_d: 1 }\n}\n`;
  await assert.rejects(
    convertInMemory({ model: V1_PROTOTXT, weights: v1Caffemodel(), record, files: SMALL_FILES }),
    (error) =>
      checkError(error, {
        code: "RECORD_UNKNOWN_LAYER",
        file: "r.txt",
        ...placeOf(record, 'key: "CONVOLUTION"'),
        layer: "CONVOLUTION",
      }),
  );
});

// ---------------------------------------------------------------------------------------------
// 2. A bottom read before it is produced.

Deno.test("UNDEFINED_BOTTOM: a bottom that only a later layer produces, at the bottom", async () => {
  const text = `input: "data"
input_shape { dim: 1 dim: 1 dim: 3 dim: 3 }
layer { name: "a" type: "ReLU" bottom: "data" top: "x" }
layer { name: "b" type: "Eltwise" bottom: "x" bottom: "z" top: "y" }
layer { name: "c" type: "ReLU" bottom: "x" top: "z" }
`;
  const expected: Expected = {
    code: "UNDEFINED_BOTTOM",
    file: "net.prototxt",
    ...placeOf(text, 'bottom: "z"'),
    layer: "b",
    parts: ['"z"', 'layer "c" produces it later'],
  };
  assertPrototxtError(text, expected);
  // the same through a whole conversion: the model file is named
  await assert.rejects(
    convertInMemory({
      model: text,
      weights: new Uint8Array(),
      record: "",
      files: { model: "net.prototxt" },
    }),
    (error) => checkError(error, expected),
  );
  // a V1 net, checked after the upgrade, keeps the places of its text
  const v1 = `input: "data"
layers { name: "a" type: RELU bottom: "data" top: "x" }
layers { name: "b" type: ELTWISE bottom: "x" bottom: "z" top: "y" }
layers { name: "c" type: RELU bottom: "x" top: "z" }
`;
  assertPrototxtError(v1, { ...expected, ...placeOf(v1, 'bottom: "z"') });
});

// ---------------------------------------------------------------------------------------------
// 3. Cycles: in file order, only a layer that writes again a blob it is computed from makes one.

Deno.test("cycle: a layer that re-produces the net input it is computed from is DUPLICATE_TOP", () => {
  const text = `input: "x"
input_shape { dim: 1 dim: 4 }
layer { name: "A" type: "ReLU" bottom: "x" top: "y" }
layer { name: "B" type: "TanH" bottom: "y" top: "x" }
`;
  assertPrototxtError(text, {
    code: "DUPLICATE_TOP",
    file: "net.prototxt",
    ...placeOf(text, 'top: "x"'),
    layer: "B",
    parts: ['"x" is a net input', "cycle", "in place"],
  });
});

Deno.test("cycle: a layer that re-produces an earlier layer's blob it is computed from", () => {
  const text = `input: "data"
layer { name: "P" type: "ReLU" bottom: "data" top: "x" }
layer { name: "A" type: "ReLU" bottom: "x" top: "y" }
layer { name: "A2" type: "Sigmoid" bottom: "y" top: "y" }
layer { name: "B" type: "Eltwise" bottom: "y" bottom: "data" top: "x" }
`;
  assertPrototxtError(text, {
    code: "DUPLICATE_TOP",
    ...placeOf(text, 'top: "x"', 2),
    layer: "B",
    parts: ['layer "P" already produces "x"', '"B" is computed from "x"', "cycle"],
  });
});

Deno.test("cycle: a layer that reads a blob only it writes is UNDEFINED_BOTTOM", () => {
  const text = `input: "data"
layer { name: "loop" type: "ReLU" bottom: "z" top: "z" }
`;
  assertPrototxtError(text, {
    code: "UNDEFINED_BOTTOM",
    ...placeOf(text, 'bottom: "z"'),
    layer: "loop",
    parts: ["only this layer writes it"],
  });
});

// ---------------------------------------------------------------------------------------------
// 4. A top produced twice, not in place (Caffe: "Top blob 'x' produced by multiple sources").

Deno.test("DUPLICATE_TOP: two layers write one blob, at the second top, naming the first", () => {
  const text = `input: "data"
layer { name: "A" type: "ReLU" bottom: "data" top: "y" }
layer { name: "B" type: "Sigmoid" bottom: "data" top: "y" }
layer { name: "C" type: "ReLU" bottom: "y" top: "out" }
`;
  assertPrototxtError(text, {
    code: "DUPLICATE_TOP",
    file: "net.prototxt",
    ...placeOf(text, 'top: "y"', 2),
    layer: "B",
    parts: ['layer "A" already produces "y"', "top i = bottom i"],
    absent: ["cycle"],
  });
});

Deno.test("DUPLICATE_TOP: in place means top i = bottom i; other repeats are refused", () => {
  // in place, single and multiple blobs: accepted
  const inPlace = readPrototxt(`input: "a"
input: "b"
layer { name: "r" type: "ReLU" bottom: "a" top: "a" }
layer { name: "two" type: "Custom" bottom: "a" bottom: "b" top: "a" top: "b" }
layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "c" }
layer { name: "bn" type: "BatchNorm" bottom: "c" top: "c" }
`);
  assert.equal(inPlace.layers.length, 4);
  // `b` is bottom 1 but top 0: Caffe does not treat it as in place
  const swapped = `input: "a"
input: "b"
layer { name: "e" type: "Eltwise" bottom: "a" bottom: "b" top: "b" }
`;
  assertPrototxtError(swapped, {
    code: "DUPLICATE_TOP",
    ...placeOf(swapped, 'top: "b"'),
    layer: "e",
    parts: ['"b" is a net input', '"b" is bottom 1 here, top 0'],
  });
  // one layer naming a top twice
  const twice = `input: "a"
layer { name: "s" type: "Slice" bottom: "a" top: "p" top: "p" }
`;
  assertPrototxtError(twice, {
    code: "DUPLICATE_TOP",
    ...placeOf(twice, 'top: "p"', 2),
    layer: "s",
    parts: ['"p" is an earlier top of this layer'],
  });
});

Deno.test("DUPLICATE_TOP: a net input declared twice, or written by an Input layer too", () => {
  const twice = `input: "data"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 4 input_dim: 4
input_dim: 1 input_dim: 3 input_dim: 4 input_dim: 4
`;
  assertPrototxtError(twice, {
    code: "DUPLICATE_TOP",
    file: "net.prototxt",
    ...placeOf(twice, 'input: "data"', 2),
    layer: undefined,
    parts: ['"data"', "twice"],
  });
  const inputLayer = `input: "data"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 } } }
`;
  assertPrototxtError(inputLayer, {
    code: "DUPLICATE_TOP",
    ...placeOf(inputLayer, 'top: "data"'),
    layer: "data",
    parts: ['"data" is a net input'],
  });
});

// ---------------------------------------------------------------------------------------------
// 5. Records on a BatchNorm or Scale that fusion folds into a Convolution.

/** data → conv1 → bn1 → scale1 (in place) → relu1, with 2 channels. */
function fusedNet(): Net {
  const next = random(71);
  return net("data", [1, 1, 3, 3], [
    conv("conv1", "data", "conv1", { numOutput: 2, channelsIn: 1, kernel: 2, next }),
    batchNorm("bn1", "conv1", "conv1", 2, next),
    scale("scale1", "conv1", "conv1", 2, next),
    relu("relu1", "conv1", "conv1"),
  ]);
}

Deno.test("a record with factors on a fused BatchNorm or Scale names the Convolution it belongs to", () => {
  for (const member of ["bn1", "scale1"]) {
    const text = recordText({ conv1: "skip_fusion: false", [member]: factors("0.5", ["0.01"]) });
    assert.throws(() => readRecord(text, fusedNet(), "r.txt"), (error) =>
      checkError(error, {
        code: "RECORD_NOT_QUANTIZABLE",
        file: "r.txt",
        ...placeOf(text, "record {", 2),
        layer: member,
        parts: [`"${member}" is fused into "conv1"`, 'belong in the record for "conv1"'],
      }));
  }
  // With skip_fusion on conv1 nothing is fused: the BatchNorm is just not quantizable.
  const unfused = recordText({ conv1: "skip_fusion: true", bn1: factors("0.5", ["0.01"]) });
  assert.throws(() => readRecord(unfused, fusedNet()), (error) =>
    checkError(error, {
      code: "RECORD_NOT_QUANTIZABLE",
      layer: "bn1",
      parts: ["cannot be quantized"],
      absent: ["fused into"],
    }));
});

Deno.test("skip_fusion alone on a fused BatchNorm or Scale warns that it does nothing", async () => {
  const record = recordText({
    conv1: factors("0.5", ["0.01"]),
    bn1: "skip_fusion: true",
    scale1: "skip_fusion: true",
  });
  const { report } = await convertNet(fusedNet(), record);
  assert.deepEqual(report.fusedComposites, [{ layer: "conv1", batchNorm: "bn1", scale: "scale1" }]);
  for (const member of ["bn1", "scale1"]) {
    const about = report.warnings.filter((warning) => warning.includes(`"${member}"`));
    assert.equal(about.length, 1, report.warnings.join("; "));
    assert.ok(about[0].includes("does nothing"), about[0]);
    assert.ok(about[0].includes('record for "conv1"'), about[0]);
  }
});

// ---------------------------------------------------------------------------------------------
// 6. All-zero weight channels.

Deno.test("an all-zero channel quantizes to w_q = 0 with its bias per SPEC §4", async () => {
  const weights = [0.5, -0.25, 0.125, 1.0, /* zero */ 0, 0, -0, 0, 0.3, -0.6, 0.9, 0.05];
  const bias = [0.3, 0.7, -0.1];
  const scaleW = [0.01, 0.02, 0.04];
  const record = recordText({ conv1: factors("0.25", scaleW.map(String)) });
  const { fakeQuant, deploy } = await convertNet(convNet(weights, bias), record);
  const expected = spec4(new Float32Array(weights), new Float32Array(bias), 0.25, scaleW);
  assert.deepEqual([...expected.weightsInt8.subarray(4, 8)], [0, 0, 0, 0]);
  assert.equal(expected.biasInt32[1], roundHalfEven(Math.fround(0.7) / Math.fround(0.25 * 0.02)));
  assertSpec4(fakeQuant, deploy, "conv1", expected);
});

Deno.test("an all-zero channel in a fused composite: w_q = 0, b_q from the folded bias b'", async () => {
  const source = fusedNet();
  const weights = source.layers[0].blobs[0].data as Float32Array;
  weights.fill(0, 4, 8); // channel 1
  const scaleW = [0.01, 0.03];
  const { fakeQuant, deploy } = await convertNet(
    source,
    recordText({ conv1: factors("0.125", scaleW.map(String)) }),
  );
  const { folded, foldedBias } = foldByHand(source);
  assert.deepEqual([...folded.subarray(4, 8)], [0, 0, 0, 0]);
  assertSpec4(fakeQuant, deploy, "conv1", spec4(folded, foldedBias, 0.125, scaleW));
});

/**
 * SPEC §3 by hand for fusedNet()-shaped nets: a = γ / sqrt(σ² + eps) with the factor blob,
 * W' = f32(W · a), b' = f32((b − μ) · a + β), eps = f32(1e-5).
 */
function foldByHand(source: Net): { folded: Float32Array; foldedBias: Float32Array } {
  const [convLayer, bnLayer, scaleLayer] = source.layers;
  const weights = convLayer.blobs[0].data as Float32Array;
  const bias = convLayer.blobs[1].data as Float32Array;
  const [mean, variance, factorBlob] = bnLayer.blobs.map((b) => b.data as Float32Array);
  const [gamma, beta] = scaleLayer.blobs.map((b) => b.data as Float32Array);
  const f = factorBlob[0] === 0 ? 0 : 1 / factorBlob[0];
  const channels = bias.length;
  const perChannel = weights.length / channels;
  const folded = new Float32Array(weights.length);
  const foldedBias = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const a = gamma[c] / Math.sqrt(variance[c] * f + Math.fround(1e-5));
    for (let i = 0; i < perChannel; i++) {
      folded[c * perChannel + i] = weights[c * perChannel + i] * a;
    }
    foldedBias[c] = (bias[c] - mean[c] * f) * a + beta[c];
  }
  return { folded, foldedBias };
}

Deno.test("a scale_w of 0 is RECORD_BAD_SCALE at that scale_w, not a division by zero", () => {
  const text = recordText({ conv1: factors("0.25", ["0.01", "0", "0.04"]) });
  assert.throws(
    () => readRecord(text, convNet(new Array(12).fill(0), [0, 0, 0]), "r.txt"),
    (error) =>
      checkError(error, {
        code: "RECORD_BAD_SCALE",
        file: "r.txt",
        ...placeOf(text, "scale_w: 0", 2),
        layer: "conv1",
        parts: ["scale_w[1]"],
      }),
  );
});

Deno.test("makeRecord: 1.0 for an all-zero channel with zero bias, max|b'|/(scale_d·2^30) otherwise", async () => {
  const scaleD = 0.0625;
  const weights = [0.5, -1.27, 0.1, 0, ...new Array(12).fill(0)];
  const bias = [0.25, 0, 3, -5e-3];
  const target = convNet(weights, bias);
  const record = readRecord(await makeRecord(target, { scaleD }), target);
  assert.deepEqual([...record.get("conv1")!.factors!.scaleW], [
    Math.fround(Math.fround(1.27) / 127),
    1,
    Math.fround(Math.fround(3) / (scaleD * 2 ** 30)),
    Math.fround(Math.fround(5e-3) / (scaleD * 2 ** 30)),
  ]);
  // through fusion: an all-zero conv channel has W' = 0 and the folded bias b'
  const source = fusedNet();
  (source.layers[0].blobs[0].data as Float32Array).fill(0, 4, 8);
  const fusedRecord = await makeRecord(source, { scaleD });
  const { foldedBias } = foldByHand(source);
  const scaleW = [...readRecord(fusedRecord, source).get("conv1")!.factors!.scaleW];
  assert.equal(scaleW[1], Math.fround(Math.abs(foldedBias[1]) / (scaleD * 2 ** 30)));
  // and the record converts: b_q of that channel is about 2^30, inside int32
  const { deploy } = await convertNet(source, fusedRecord);
  const biasInt32 = find(deploy, "conv1").blobs[1].data as Int32Array;
  assert.ok(Math.abs(Math.abs(biasInt32[1]) - 2 ** 30) <= 2 ** 8, String(biasInt32[1]));
});

// ---------------------------------------------------------------------------------------------
// 7. Extreme but valid scales.

const EXTREME_WEIGHTS = [0.5, -0.25, 0.125, 1.0, -0.75, 0.3, 0.0, 0.6];

Deno.test("RECORD_BAD_SCALE: a dequant scale or 1/scale_d that is not a normal float32", () => {
  const target = convNet(new Array(16).fill(0.5), [0, 0, 0, 0]);
  const cases: [scaleD: string, scaleW: string[], field: string, parts: string[]][] = [
    ["1e-30", ["1e-30"], "scale_w: 1e-30", ["scale_w[0] = 1e-60 underflows float32"]],
    [
      "1e-30",
      ["0.01", "0.01", "0.01", "1e-30"],
      "scale_w: 1e-30",
      ["scale_w[3] = 1e-60 underflows float32"],
    ],
    ["1e30", ["1e30"], "scale_w: 1e30", ["scale_w[0] = 1e+60 overflows float32"]],
    // f32(1e-30) · f32(1e-9) = 1.0000000031710769e-30 · 9.99999971718069e-10 ≈ 9.9999997e-40:
    // a float32 > 0, but subnormal
    ["1e-30", ["1e-9"], "scale_w: 1e-9", ["scale_w[0] = 9.9999997e-40", "subnormal"]],
    // S = 1/scale_d: 1e-38 is just below the smallest normal float32, 2^-126 ≈ 1.1754944e-38
    ["1e38", ["1e-30"], "scale_d: 1e38", ["1/scale_d = 1e-38", "subnormal"]],
    ["1e-39", ["1e30"], "scale_d: 1e-39", ["1/scale_d", "overflows float32"]],
  ];
  assert.ok(1e-38 < 2 ** -126 && 1e-39 * 1e30 >= 2 ** -126);
  for (const [scaleD, scaleW, field, parts] of cases) {
    const text = recordText({ conv1: factors(scaleD, scaleW) });
    assert.throws(() => readRecord(text, target, "r.txt"), (error) =>
      checkError(error, {
        code: "RECORD_BAD_SCALE",
        file: "r.txt",
        ...placeOf(text, field),
        layer: "conv1",
        parts,
      }));
  }
});

Deno.test("extreme scales with normal S and dequant scales give SPEC §4 outputs, all finite", async () => {
  const cases: [scaleD: number, scaleW: number, bias: number[]][] = [
    // deq = 1e-32: a normal float32; b_q fits int32 only for a bias of that order
    [1e-30, 1e-2, [0, 3e-25]],
    // w_q saturates at 127 and -128; w_fake = ±127 · 1e-30 is finite
    [1e-2, 1e-30, [1e-27, -2e-28]],
    // S = f32(1e-30), deq ≈ 1
    [1e30, 1e-30, [7.4, -1e6]],
    // S = f32(1e30), deq ≈ 1; every w_q is 0
    [1e-30, 1e30, [2.5, -0.5]],
  ];
  for (const [scaleD, scaleW, bias] of cases) {
    const record = recordText({ conv1: factors(String(scaleD), [String(scaleW)]) });
    const { fakeQuant, deploy } = await convertNet(convNet(EXTREME_WEIGHTS, bias), record);
    const expected = spec4(new Float32Array(EXTREME_WEIGHTS), new Float32Array(bias), scaleD, [
      scaleW,
    ]);
    assertSpec4(fakeQuant, deploy, "conv1", expected);
    const fakeWeights = find(fakeQuant, "conv1").blobs[0].data as Float32Array;
    assert.ok(fakeWeights.every(Number.isFinite), `${scaleD}, ${scaleW}: w_fake not finite`);
    assert.ok(expected.deq[0] >= 2 ** -126 && expected.quantScale >= 2 ** -126);
    if (scaleW === 1e-30) {
      assert.deepEqual([...expected.weightsInt8], [127, -128, 127, 127, -128, 127, 0, 127]);
    }
    if (scaleW === 1e30) assert.ok(expected.weightsInt8.every((q) => q === 0));
  }
});

Deno.test("BIAS_OVERFLOW: a tiny dequant scale makes b'/deq leave int32", async () => {
  const record = recordText({ conv1: factors("1e-30", ["1e-2"]) });
  await assert.rejects(
    convertNet(convNet(EXTREME_WEIGHTS, [0, 0.5]), record),
    (error) =>
      checkError(error, {
        code: "BIAS_OVERFLOW",
        layer: "conv1",
        parts: [
          "channel 1",
          String(
            roundHalfEven(Math.fround(0.5) / Math.fround(Math.fround(1e-30) * Math.fround(1e-2))),
          ),
        ],
      }),
  );
});

Deno.test("fake-quant weights or bias that would overflow float32 are refused, not written as ∞", async () => {
  // scale_w = 2^127, deq = 1 · 2^127 (normal). A weight or bias of 1.5 · 2^127 (finite) gives
  // w_q = b_q = rint(1.5) = 2, and 2 · 2^127 = 2^128 is past float32's largest value.
  const big = 1.5 * 2 ** 127;
  assert.equal(Math.fround(big), big);
  assert.equal(Math.fround(2 * 2 ** 127), Infinity);
  const record = recordText({ conv1: factors("1", [String(2 ** 127)]) });
  const weights = [...EXTREME_WEIGHTS];
  weights[5] = big;
  await assert.rejects(convertNet(convNet(weights, [0, 0]), record), (error) =>
    checkError(error, {
      code: "RECORD_BAD_SCALE",
      layer: "conv1",
      parts: ["fake-quant weight element 5", "overflows float32"],
    }));
  await assert.rejects(
    convertNet(convNet(EXTREME_WEIGHTS, [0, -big]), record),
    (error) =>
      checkError(error, {
        code: "BIAS_OVERFLOW",
        layer: "conv1",
        parts: ["fake-quant bias of channel 1", "overflows float32"],
      }),
  );
  // the same scale with weights and bias that stay in range converts, every value finite
  const { fakeQuant } = await convertNet(convNet(EXTREME_WEIGHTS, [0, 2 ** 127]), record);
  for (const blob of find(fakeQuant, "conv1").blobs) {
    assert.ok((blob.data as Float32Array).every(Number.isFinite));
  }
});

Deno.test("the bias kernel never lets NaN or ±∞ through its int32 range check", async () => {
  const kernels = await quantKernels();
  // deq 0 (refused by the record checks, so only reachable here): 0/0 = NaN, ±1/0 = ±∞
  for (const [value, quotient] of [[0, NaN], [1, Infinity], [-1, -Infinity]]) {
    const result = kernels.quantizeBias(Float32Array.of(value), Float32Array.of(0));
    assert.equal(result.overflowChannel, 0, `bias ${value}`);
    assert.ok(Object.is(result.overflowValue, quotient), `bias ${value}: ${result.overflowValue}`);
    assert.deepEqual([...result.biasInt32, ...result.biasFake], [0, 0]);
  }
});

/** The float32 just below a positive float32 `value`. */
function previousFloat32(value: number): number {
  const bits = new Uint32Array(Float32Array.of(value).buffer);
  bits[0]--;
  return new Float32Array(bits.buffer)[0];
}

Deno.test("makeRecord raises a scale_w whose dequant scale would be subnormal to the least normal one", async () => {
  // scale_d 1e-10 and weights of 1e-27: SPEC §9 gives scale_w = f32(1e-27/127) ≈ 7.9e-30, and
  // scale_d · scale_w ≈ 7.9e-40 is subnormal, which convert refuses.
  const scaleD = Math.fround(1e-10);
  const weights = [1e-27, -5e-28, 0, 0, 0.5, -0.25, 0.125, 1.0];
  const target = convNet(weights, [0, 0]);
  const formula = Math.fround(Math.fround(1e-27) / 127);
  assert.ok(Math.fround(scaleD * formula) < 2 ** -126);
  const text = await makeRecord(target, { scaleD });
  const [raised, normal] = readRecord(text, target).get("conv1")!.factors!.scaleW;
  assert.ok(raised > formula);
  assert.ok(Math.fround(scaleD * raised) >= 2 ** -126, "dequant scale still subnormal");
  assert.ok(Math.fround(scaleD * previousFloat32(raised)) < 2 ** -126, "not the least such scale");
  // the other channel keeps SPEC §9's value
  assert.equal(normal, Math.fround(1 / 127));
  const { report } = await convertNet(target, text);
  assert.deepEqual(report.quantizedLayers, ["conv1"]);
  // a default scale_d whose 1/scale_d is subnormal is refused
  await assert.rejects(
    makeRecord(target, { scaleD: 1e38 }),
    (error) => checkError(error, { code: "RECORD_BAD_SCALE", parts: ["1/scale_d", "subnormal"] }),
  );
});
