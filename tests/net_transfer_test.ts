// A net packed for a worker (src/engine/net_transfer.ts) and rebuilt from its structured clone is
// the same net: the same text when printed (header, every layer's fields, unknown fields kept),
// trees made of TextMessage again, and blobs of the same type, shape and bits; packed into a
// SharedArrayBuffer, every clone's blobs are views of that one buffer.

import assert from "node:assert/strict";
import { DeferredBlob } from "../src/caffe/deferred_blob.ts";
import { loadNet } from "../src/caffe/model.ts";
import { printPrototxt, readPrototxt } from "../src/caffe/prototxt.ts";
import { packNet, unpackNet } from "../src/engine/net_transfer.ts";
import { TextMessage } from "../src/proto/tree.ts";
import { modelFile, modelNames } from "./_models.ts";

/** Every message of `message`'s tree, itself included. */
function messages(message: TextMessage): TextMessage[] {
  return [
    message,
    ...message.fields.flatMap(({ value }) => value instanceof TextMessage ? messages(value) : []),
  ];
}

Deno.test("net transfer: a structured clone of a packed net unpacks to the same net", () => {
  const text = `name: "n"
input: "data"
input_shape { dim: 1 dim: 2 dim: 3 dim: 3 }
my_unknown_field: 7
layer {
  name: "c" type: "Convolution" bottom: "data" top: "c"
  convolution_param { num_output: 2 kernel_size: 1 weight_filler { type: "xavier" } }
  some_fork_param { a: 1 b { c: "x" } }
}
layer { name: "r" type: "ReLU" bottom: "c" top: "c" relu_param { negative_slope: 0.25 } }
`;
  const net = readPrototxt(text);
  net.layers[0].blobs.push(
    { shape: [2, 2, 1, 1], data: new Float32Array([1, -2.5, 3e-8, Number.MAX_VALUE / 2 ** 900]) },
    { shape: [2], data: new Int32Array([-7, 2 ** 31 - 1]), legacyShape: true },
  );
  net.layers[1].blobs.push({ shape: [3], data: new Int8Array([-128, 0, 127]) });
  const copy = unpackNet(structuredClone(packNet(net)));
  assert.equal(printPrototxt(copy), printPrototxt(net));
  assert.ok(messages(copy.header).every((message) => message instanceof TextMessage));
  for (const layer of copy.layers) {
    assert.ok(messages(layer.params).every((message) => message instanceof TextMessage));
  }
  assert.deepEqual(
    copy.layers.map((layer) => [layer.name, layer.type, layer.bottoms, layer.tops]),
    [
      ["c", "Convolution", ["data"], ["c"]],
      ["r", "ReLU", ["c"], ["c"]],
    ],
  );
  assert.deepEqual(copy.layers.map((layer) => layer.blobs), net.layers.map((layer) => layer.blobs));
  assert.ok(copy.layers[0].blobs[0].data instanceof Float32Array);
  assert.ok(copy.layers[0].blobs[1].data instanceof Int32Array);
  assert.ok(copy.layers[1].blobs[0].data instanceof Int8Array);
});

Deno.test({
  name:
    "net transfer: a real net (mtcnn_onet) prints the same after the trip, its blobs' bits equal",
  ignore: !modelNames.includes("mtcnn_onet"),
  fn() {
    const net = loadNet(
      Deno.readTextFileSync(modelFile("mtcnn_onet", "deploy.prototxt")),
      Deno.readFileSync(modelFile("mtcnn_onet", "weights.caffemodel")),
    );
    const copy = unpackNet(structuredClone(packNet(net)));
    assert.equal(printPrototxt(copy), printPrototxt(net));
    const bytes = (data: ArrayBufferView) =>
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    net.layers.forEach((layer, i) => {
      assert.equal(copy.layers[i].blobs.length, layer.blobs.length);
      layer.blobs.forEach((blob, j) => {
        assert.deepEqual(copy.layers[i].blobs[j].shape, blob.shape);
        assert.deepEqual(bytes(copy.layers[i].blobs[j].data), bytes(blob.data));
      });
    });
  },
});

/** A net of one 1x1 Convolution on a 2x2 input, its blobs not given yet. */
function oneConvolution() {
  return readPrototxt(`name: "n"
input: "data"
input_shape { dim: 1 dim: 1 dim: 2 dim: 2 }
layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 1 kernel_size: 1 } }
`);
}

Deno.test("net transfer: packed shared, every clone's blobs are views of the one buffer, not copies", () => {
  const net = oneConvolution();
  net.layers[0].blobs.push(
    { shape: [1, 1, 1, 1], data: new Float32Array([0.5]) },
    { shape: [1], data: new Float32Array([-1.25]) },
  );
  const packed = packNet(net, true);
  assert.ok(packed.data instanceof SharedArrayBuffer);
  const [first, second] = [0, 1].map(() => unpackNet(structuredClone(packed)));
  assert.deepEqual(first.layers[0].blobs, net.layers[0].blobs);
  // A write through one clone's view is seen through the other's: the same memory.
  (first.layers[0].blobs[0].data as Float32Array)[0] = 7;
  assert.equal(second.layers[0].blobs[0].data[0], 7);
  assert.ok(second.layers[0].blobs[1].data.buffer instanceof SharedArrayBuffer);
  // Unshared, a clone is a copy.
  const plain = packNet(net);
  assert.ok(plain.data instanceof ArrayBuffer);
  const copy = unpackNet(structuredClone(plain));
  (copy.layers[0].blobs[0].data as Float32Array)[0] = 9;
  assert.equal(unpackNet(structuredClone(plain)).layers[0].blobs[0].data[0], 0.5);
});

/** A float blob of `length` values i / 4, made only when read (as unaligned caffemodel data). */
class QuarterSteps extends DeferredBlob {
  protected produce(start: number, count: number, target: Uint8Array): void {
    const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
    for (let i = 0; i < count; i++) view.setFloat32(4 * i, (start + i) / 4, true);
  }
}

Deno.test("net transfer: a deferred blob is packed from its bytes, its array left unmade", () => {
  const net = oneConvolution();
  const deferred = new QuarterSteps([3]);
  const held = new QuarterSteps([2]);
  held.data = new Float32Array([9, -9]);
  net.layers[0].blobs.push(deferred, held);
  const copy = unpackNet(structuredClone(packNet(net, true)));
  assert.equal(deferred.held, undefined);
  assert.deepEqual(copy.layers[0].blobs.map((blob) => [blob.shape, blob.data]), [
    [[3], new Float32Array([0, 0.25, 0.5])],
    [[2], new Float32Array([9, -9])],
  ]);
});
