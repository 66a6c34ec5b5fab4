import assert from "node:assert/strict";
import type { Net } from "../src/caffe/net.ts";
import { printPrototxt, readPrototxt } from "../src/caffe/prototxt.ts";
import { upgradeV1Layer, v1TypeName } from "../src/caffe/upgrade.ts";
import { ConvertError } from "../src/errors.ts";
import { caffeType } from "../src/proto/schema.ts";
import { printText } from "../src/proto/text_print.ts";
import { parseText } from "../src/proto/text_read.ts";
import { TextMessage } from "../src/proto/tree.ts";
import { modelFile, modelNames } from "./_models.ts";
import { protoFilesSchema } from "../scripts/build_schema.ts";

const V1 = caffeType("caffe.V1LayerParameter");
const V2 = caffeType("caffe.LayerParameter");

/** Parses a V1 layer, upgrades it and prints the V2 layer. */
function upgradeText(v1Text: string): string {
  return printText(upgradeV1Layer(parseText(v1Text, V1)), V2);
}

Deno.test("v1TypeName: Caffe's names, including the irregular ones", () => {
  const expected: [string, string][] = [
    ["CONVOLUTION", "Convolution"],
    ["DECONVOLUTION", "Deconvolution"],
    ["INNER_PRODUCT", "InnerProduct"],
    ["SOFTMAX_LOSS", "SoftmaxWithLoss"],
    ["TANH", "TanH"],
    ["ABSVAL", "AbsVal"],
    ["BNLL", "BNLL"],
    ["IM2COL", "Im2col"],
    ["HDF5_DATA", "HDF5Data"],
    ["HDF5_OUTPUT", "HDF5Output"],
    ["MULTINOMIAL_LOGISTIC_LOSS", "MultinomialLogisticLoss"],
    ["SIGMOID_CROSS_ENTROPY_LOSS", "SigmoidCrossEntropyLoss"],
    ["DUMMY_DATA", "DummyData"],
    ["ARGMAX", "ArgMax"],
    ["MVN", "MVN"],
    ["LRN", "LRN"],
    ["NONE", ""],
    ["QUANT", "Quant"],
    ["DEQUANT", "DeQuant"],
  ];
  for (const [v1, v2] of expected) assert.equal(v1TypeName(v1), v2, v1);
  assert.throws(
    () => v1TypeName("BATCHNORM"),
    (e: unknown) => e instanceof ConvertError && e.code === "TEXT_UNKNOWN_ENUM",
  );
  assert.throws(() => v1TypeName("constructor"), ConvertError);
});

Deno.test("v1TypeName: every LayerType of the schema has a name, none but NONE empty", () => {
  // The enum as protobufjs reads it from proto/caffe.proto (an independent reader).
  const values = protoFilesSchema().lookupEnum("caffe.V1LayerParameter.LayerType").values;
  assert.equal(Object.keys(values).length, 42);
  for (const name of Object.keys(values)) {
    const v2 = v1TypeName(name);
    assert.equal(v2 === "", name === "NONE", name);
    // V2 names are CamelCase forms of the V1 words (letters only, case-insensitively equal).
    if (!["SOFTMAX_LOSS", "NONE"].includes(name)) {
      assert.equal(v2.toUpperCase(), name.replaceAll("_", ""), name);
    }
  }
});

Deno.test("upgradeV1Layer: param specs, types, copied parameters, unknown fields", () => {
  const v2 = upgradeText(`
name: "conv"
blobs_lr: 1
type: CONVOLUTION
bottom: "data"
param: "w"
param: "b"
blobs_lr: 2.0
weight_decay: 1
weight_decay: 0
blob_share_mode: PERMISSIVE
top: "conv"
convolution_param { num_output: 4 kernel_size: 3 }
fork_option: 3
include { phase: TEST }
loss_weight: 0.5
transform_param { scale: 0.00390625 }
`);
  assert.equal(
    v2,
    `name: "conv"
type: "Convolution"
bottom: "data"
top: "conv"
loss_weight: 0.5
param {
  name: "w"
  share_mode: PERMISSIVE
  lr_mult: 1
  decay_mult: 1
}
param {
  name: "b"
  lr_mult: 2.0
  decay_mult: 0
}
include {
  phase: TEST
}
transform_param {
  scale: 0.00390625
}
convolution_param {
  num_output: 4
  kernel_size: 3
}
fork_option: 3
`,
  );
});

Deno.test("upgradeV1Layer: more blobs_lr than names, no type, V0 layer kept as unknown", () => {
  const v2 = upgradeV1Layer(
    parseText(`name: "x" blobs_lr: 1 blobs_lr: 2 param: "only" layer { name: "v0" }`, V1),
  );
  assert.equal(
    printText(v2, V2),
    `name: "x"
param {
  name: "only"
  lr_mult: 1
}
param {
  lr_mult: 2
}
layer {
  name: "v0"
}
`,
  );
  assert.equal(v2.entry("layer")?.unknown, true);
});

Deno.test("upgradeV1Layer: keeps source places and leaves its input alone", () => {
  const v1 = parseText(`name: "p"\ntype: POOLING\npooling_param { pool: AVE }`, V1);
  const before = printText(v1, V1);
  const v2 = upgradeV1Layer(v1);
  assert.deepEqual([v2.entry("type")?.line, v2.entry("type")?.column], [2, 1]);
  v2.message("pooling_param")!.set("pool", "MAX");
  assert.equal(printText(v1, V1), before);
  assert.equal(v1.get("type"), "POOLING");
});

Deno.test("upgradeV1Layer: type given as an enum number (binary input)", () => {
  const v1 = parseText(`name: "a"`, V1);
  v1.add("type", 39);
  assert.equal(upgradeV1Layer(v1).get("type"), "Deconvolution");
  const bad = parseText(`name: "b"`, V1);
  bad.add("type", 77);
  assert.throws(
    () => upgradeV1Layer(bad),
    (e: unknown) => e instanceof ConvertError && e.code === "TEXT_UNKNOWN_ENUM",
  );
});

Deno.test(
  "lenet_v1format upgrades to exactly the layers of lenet (V2)",
  { ignore: !modelNames.includes("lenet") || !modelNames.includes("lenet_v1format") },
  () => {
    const v1 = readPrototxt(Deno.readTextFileSync(modelFile("lenet_v1format", "deploy.prototxt")));
    const v2 = readPrototxt(Deno.readTextFileSync(modelFile("lenet", "deploy.prototxt")));
    // lenet declares its input with an Input layer; lenet_v1format with input/input_dim.
    assert.equal(v2.layers[0].type, "Input");
    const layersOnly = (net: Net, skip: number) =>
      printPrototxt({ header: new TextMessage(), layers: net.layers.slice(skip) });
    assert.equal(layersOnly(v1, 0), layersOnly(v2, 1));
    assert.equal(v1.layers.length, 8);
  },
);
