// Loading a float model (prototxt + caffemodel, SPEC §1) and writing it back.

import assert from "node:assert/strict";
import { quantizeBlocker } from "../src/caffe/layers.ts";
import { ConvertError } from "../src/errors.ts";
import { writeCaffemodel } from "../src/caffe/caffemodel_write.ts";
import { loadNet } from "../src/caffe/model.ts";
import type { Blob, Net } from "../src/caffe/net.ts";
import { printPrototxt, readPrototxt } from "../src/caffe/prototxt.ts";
import { modelFile, modelNames } from "./_models.ts";

function load(name: string): Net {
  return loadNet(
    Deno.readTextFileSync(modelFile(name, "deploy.prototxt")),
    Deno.readFileSync(modelFile(name, "weights.caffemodel")),
  );
}

function bytesOf(blob: Blob): Uint8Array {
  return new Uint8Array(blob.data.buffer, blob.data.byteOffset, blob.data.byteLength);
}

for (const name of modelNames) {
  Deno.test(`${name}: a written float model reads back layer for layer, blob for blob`, () => {
    const net = load(name);
    const again = loadNet(printPrototxt(net), writeCaffemodel(net));
    assert.equal(printPrototxt(again), printPrototxt(net));
    assert.equal(again.layers.length, net.layers.length);
    net.layers.forEach((layer, i) => {
      const other = again.layers[i];
      assert.equal(other.name, layer.name);
      assert.deepEqual(other.blobs.map((b) => b.shape), layer.blobs.map((b) => b.shape));
      layer.blobs.forEach((blob, j) => {
        assert.deepEqual(bytesOf(other.blobs[j]), bytesOf(blob), `${layer.name} blob ${j}`);
        assert.equal(other.blobs[j].legacyShape, undefined, "written with shape");
      });
    });
  });
}

Deno.test("legacy blob dims get Caffe's shapes: IP weights [N, K], biases [C]", {
  ignore: !modelNames.includes("lenet_v1format"),
}, () => {
  const net = load("lenet_v1format");
  const shapes = Object.fromEntries(net.layers.map((l) => [l.name, l.blobs.map((b) => b.shape)]));
  assert.deepEqual(shapes.conv1, [[20, 1, 5, 5], [20]]);
  assert.deepEqual(shapes.ip1, [[500, 800], [500]]);
  assert.deepEqual(shapes.ip2, [[10, 500], [10]]);
  // The same shapes as the V2 copy of the same net (trained separately: other values).
  if (modelNames.includes("lenet")) {
    const v2 = load("lenet");
    for (const layer of net.layers) {
      const twin = v2.layers.find((l) => l.name === layer.name)!;
      assert.deepEqual(layer.blobs.map((b) => b.shape), twin.blobs.map((b) => b.shape));
    }
  }
});

Deno.test("caffemodel layers the prototxt lacks are ignored (mtcnn_rnet's conv5-3)", {
  ignore: !modelNames.includes("mtcnn_rnet"),
}, () => {
  const net = load("mtcnn_rnet");
  assert.ok(!net.layers.some((layer) => layer.name === "conv5-3"));
  for (const layer of net.layers) {
    if (["Convolution", "InnerProduct", "PReLU"].includes(layer.type)) {
      assert.ok(layer.blobs.length > 0, `${layer.name} has weights`);
    }
  }
});

/** A model text and its caffemodel bytes, with `blobs` attached to the named layers. */
function modelPair(text: string, blobs: Record<string, Blob[]>): [string, Uint8Array] {
  const net = readPrototxt(text);
  for (const layer of net.layers) layer.blobs = blobs[layer.name] ?? [];
  return [text, writeCaffemodel(net)];
}

const ones = (shape: number[]): Blob => ({
  shape,
  data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(1),
});

Deno.test("a transposed InnerProduct ([K, N] weights) loads; num_output is checked on N", () => {
  const text = `input: "x" input_shape { dim: 1 dim: 3 }
layer { name: "fc" type: "InnerProduct" bottom: "x" top: "y"
  inner_product_param { num_output: 2 transpose: true } }`;
  const net = loadNet(...modelPair(text, { fc: [ones([3, 2]), ones([2])] }));
  assert.deepEqual(net.layers[0].blobs[0].shape, [3, 2]);
  assert.throws(
    () => loadNet(...modelPair(text, { fc: [ones([2, 3]), ones([2])] })),
    (error) => error instanceof ConvertError && error.code === "WEIGHTS_SHAPE_MISMATCH",
  );
});

Deno.test("an N-D convolution loads (only quantizing it is refused)", () => {
  const text = `input: "x" input_shape { dim: 1 dim: 2 dim: 4 dim: 4 dim: 4 }
layer { name: "c3" type: "Convolution" bottom: "x" top: "y"
  convolution_param { num_output: 3 kernel_size: 2 kernel_size: 2 kernel_size: 2 } }`;
  const net = loadNet(...modelPair(text, { c3: [ones([3, 2, 2, 2, 2]), ones([3])] }));
  assert.deepEqual(net.layers[0].blobs[0].shape, [3, 2, 2, 2, 2]);
  assert.match(quantizeBlocker(net.layers[0]) ?? "", /5-D/);
});
