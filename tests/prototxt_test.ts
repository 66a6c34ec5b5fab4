import assert from "node:assert/strict";
import { netInputs } from "../src/caffe/net.ts";
import { printPrototxt, readPrototxt } from "../src/caffe/prototxt.ts";
import { ConvertError, type ErrorCode } from "../src/errors.ts";
import { TextMessage } from "../src/proto/tree.ts";
import { modelFile, modelNames } from "./_models.ts";

/** The V2 type strings of the V1 enum names that occur in the shared models' layers.txt. */
const V1_TO_V2: Record<string, string> = {
  CONVOLUTION: "Convolution",
  INNER_PRODUCT: "InnerProduct",
  LRN: "LRN",
  POOLING: "Pooling",
  RELU: "ReLU",
  SOFTMAX: "Softmax",
};

interface LayerRow {
  name: string;
  type: string;
  bottoms: string[];
  tops: string[];
}

/** Rows of a model's layers.txt: `index<TAB>name<TAB>type<TAB>bottoms -> tops`. */
function readLayersTxt(name: string): LayerRow[] {
  const text = Deno.readTextFileSync(modelFile(name, "layers.txt"));
  const list = (s: string) => s.trim() === "" ? [] : s.trim().split(",");
  return text.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("#")).map(
    (line) => {
      const [, layer, type, io] = line.split("\t");
      const [bottoms, tops] = io.split("->");
      return { name: layer, type, bottoms: list(bottoms), tops: list(tops) };
    },
  );
}

/** A tree without source places: [name, value, unknown] per field. */
function plain(message: TextMessage): unknown[] {
  return message.fields.map((f) => [
    f.name,
    f.value instanceof TextMessage ? plain(f.value) : f.value,
    f.unknown ?? false,
  ]);
}

function assertError(
  text: string,
  code: ErrorCode,
  place: { line: number; column: number; layer?: string },
): void {
  assert.throws(() => readPrototxt(text, "net.prototxt"), (error: unknown) => {
    assert.ok(error instanceof ConvertError, String(error));
    assert.equal(error.code, code, error.message);
    assert.deepEqual(
      { line: error.line, column: error.column, layer: error.layer, file: error.file },
      { line: place.line, column: place.column, layer: place.layer, file: "net.prototxt" },
    );
    return true;
  });
}

for (const name of modelNames) {
  Deno.test(`model ${name}: layers, types and blobs as in layers.txt`, () => {
    const net = readPrototxt(Deno.readTextFileSync(modelFile(name, "deploy.prototxt")), name);
    const rows = readLayersTxt(name);
    assert.equal(net.layers.length, rows.length);
    net.layers.forEach((layer, i) => {
      const row = rows[i];
      const type = name.endsWith("_v1format") ? V1_TO_V2[row.type] : row.type;
      assert.ok(type !== undefined, `no V2 name for ${row.type}`);
      assert.deepEqual(
        {
          name: layer.name,
          type: layer.type,
          bottoms: layer.bottoms,
          tops: layer.tops,
          blobs: layer.blobs.length,
        },
        { name: row.name, type, bottoms: row.bottoms, tops: row.tops, blobs: 0 },
      );
    });
    assert.ok(!net.header.has("layer") && !net.header.has("layers"));
  });

  Deno.test(`model ${name}: print -> parse gives an equal net, printing is a fixpoint`, () => {
    const source = Deno.readTextFileSync(modelFile(name, "deploy.prototxt"));
    const net = readPrototxt(source, name);
    const printed = printPrototxt(net);
    const again = readPrototxt(printed, name);
    assert.deepEqual(plain(again.header), plain(net.header));
    assert.deepEqual(
      again.layers.map((l) => plain(l.params)),
      net.layers.map((l) => plain(l.params)),
    );
    assert.equal(printPrototxt(again), printed);
    assert.ok(!/^\s*layers\s*\{/m.test(printed), "V1 `layers` printed");
    assert.ok(printed.endsWith("}\n"));
  });
}

Deno.test("SSD fields of yufacedetect_v1 are in the schema", {
  ignore: !modelNames.includes("yufacedetect_v1"),
}, () => {
  const net = readPrototxt(Deno.readTextFileSync(modelFile("yufacedetect_v1", "deploy.prototxt")));
  const detection = net.layers.find((l) => l.type === "DetectionOutput")!;
  const param = detection.params.message("detection_output_param")!;
  assert.equal(param.entry("visualize")?.unknown, undefined);
  assert.equal(param.get("visualize"), false);
  assert.equal(param.get("code_type"), "CENTER_SIZE");
  assert.deepEqual(
    detection.paramAll("transform_param", "mean_value"),
    [103.94, 116.78, 123.68].map(Math.fround),
  );
  const prior = net.layers.find((l) => l.type === "PriorBox")!;
  assert.ok(prior.params.message("prior_box_param")!.fields.every((f) => !f.unknown));
  const norm = net.layers.find((l) => l.type === "Normalize")!;
  assert.ok(norm.params.has("norm_param"));
});

Deno.test("V1 net: layers upgraded, net inputs kept in the header", () => {
  const net = readPrototxt(`name: "v1"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8
layers { name: "ip" type: INNER_PRODUCT bottom: "data" top: "ip" blobs_lr: 1 blobs_lr: 2
  inner_product_param { num_output: 10 } }
layers { name: "loss" type: SOFTMAX_LOSS bottom: "ip" top: "loss" }
`);
  assert.deepEqual(net.layers.map((l) => l.type), ["InnerProduct", "SoftmaxWithLoss"]);
  assert.deepEqual(plain(net.header), [
    ["name", "v1", false],
    ["input", "data", false],
    ["input_dim", 1, false],
    ["input_dim", 3, false],
    ["input_dim", 8, false],
    ["input_dim", 8, false],
  ]);
  assert.deepEqual(netInputs(net), [{ name: "data", shape: [1, 3, 8, 8] }]);
  assert.equal(
    printPrototxt(net),
    `name: "v1"
input: "data"
input_dim: 1
input_dim: 3
input_dim: 8
input_dim: 8
layer {
  name: "ip"
  type: "InnerProduct"
  bottom: "data"
  top: "ip"
  param {
    lr_mult: 1
  }
  param {
    lr_mult: 2
  }
  inner_product_param {
    num_output: 10
  }
}
layer {
  name: "loss"
  type: "SoftmaxWithLoss"
  bottom: "ip"
  top: "loss"
}
`,
  );
  assert.equal(net.layers[0].line, 4);
});

Deno.test("unknown layer types and fields survive read -> print", () => {
  const text = `name: "custom"
input: "data"
input_shape {
  dim: 1
  dim: 3
}
fork_net_option: 7
layer {
  name: "yolo"
  type: "YoloRegion"
  bottom: "data"
  top: "boxes"
  region_param {
    anchors: 1.08
    anchors: 3.42
    mode: FANCY
  }
  convolution_param {
    num_output: 3
    fork_extra: "x"
  }
}
`;
  const net = readPrototxt(text);
  assert.equal(net.layers[0].type, "YoloRegion");
  assert.equal(printPrototxt(net), text);
});

Deno.test("DUPLICATE_LAYER at the second layer's name", () => {
  const text = `input: "data"
layer { name: "a" type: "ReLU" bottom: "data" top: "a" }
layer {
  type: "ReLU"
  bottom: "a"
    name: "a"
  top: "b"
}
`;
  assertError(text, "DUPLICATE_LAYER", { line: 6, column: 5, layer: "a" });
});

Deno.test("UNDEFINED_BOTTOM at the bottom field, with the layer name", () => {
  const later = `input: "data"
layer { name: "r1" type: "ReLU" bottom: "data" bottom: "x2" top: "x1" }
layer { name: "r2" type: "ReLU" bottom: "data" top: "x2" }
`;
  assertError(later, "UNDEFINED_BOTTOM", { line: 2, column: 48, layer: "r1" });
  const v1 = `layers {
  name: "conv"
  type: CONVOLUTION
  bottom: "nothing"
}`;
  assertError(v1, "UNDEFINED_BOTTOM", { line: 4, column: 3, layer: "conv" });
  // Inputs from `input`, Input layers, and in-place layers are fine.
  const ok = readPrototxt(`input: "a"
layer { name: "in" type: "Input" top: "b" }
layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "c" }
layer { name: "relu" type: "ReLU" bottom: "c" top: "c" }
layer { name: "out" type: "Softmax" bottom: "c" top: "prob" }
`);
  assert.equal(ok.layers.length, 4);
});

Deno.test("text errors of a prototxt carry the file and place", () => {
  assertError('name: "x"\nlayer { name: "a" type: RELU }', "TEXT_WRONG_TYPE", {
    line: 2,
    column: 25,
  });
  assertError("layers { name: 'a' type: RELUX }", "TEXT_UNKNOWN_ENUM", { line: 1, column: 26 });
  assertError("layer { name: 'a' ", "TEXT_SYNTAX", { line: 1, column: 19 });
});
