import assert from "node:assert/strict";
import { ConvertError } from "../src/errors.ts";
import { blobValues, checkFloatModel } from "../src/quant/blobs.ts";
import { planQuantization } from "../src/quant/plan.ts";
import type { QuantRecord } from "../src/quant/record.ts";
import { avePool, conv, layer, net, random, relu } from "./_builders.ts";

const next = random(21);
const options = { numOutput: 4, channelsIn: 3, next };

/** A record quantizing `layers` with the given scale_d/offset_d (scale_w 0.01). */
function record(entries: Record<string, [number, number]>): QuantRecord {
  return new Map(
    Object.entries(entries).map(([name, [scaleD, offsetD]]) => [name, {
      layer: name,
      skipFusion: false,
      factors: { scaleD: Math.fround(scaleD), offsetD, scaleW: new Float32Array([0.01]) },
    }]),
  );
}

Deno.test("blobValues: every write, in place included, makes a new value", () => {
  const values = blobValues([
    conv("a", "data", "x", options),
    relu("r", "x", "x"),
    conv("b", "x", "y", options),
    layer("sum", "Eltwise", ["x", "x"], ["s"]),
  ]);
  assert.deepEqual(values.bottoms, [[0], [1], [2], [2, 2]]);
  assert.deepEqual(values.tops, [[1], [2], [3], [4]]);
  assert.deepEqual(values.readers, [[0], [1], [2, 3], [], []]);
});

Deno.test("plan: names, raw tops and the DeQuant of a quantized layer", () => {
  const target = net("data", [1, 3, 8, 8], [conv("conv1", "data", "out", options)]);
  const plan = planQuantization(target, record({ conv1: [0.5, -3] }));
  const conv1 = plan.layers.get("conv1")!;
  assert.equal(conv1.quant.name, "conv1_quant_layer");
  assert.equal(conv1.quant.input, "data");
  assert.equal(conv1.rawTop, "out_raw");
  assert.equal(conv1.output, "out");
  assert.equal(conv1.dequantName, "conv1_dequant_layer");
  assert.deepEqual(plan.groups.map((g) => g.consumers), [["conv1"]]);
});

Deno.test("plan: layers reading the same value with equal float32 factors share one Quant", () => {
  const target = net("data", [1, 3, 8, 8], [
    conv("a", "data", "ya", options),
    conv("b", "data", "yb", options),
    conv("c", "data", "yc", options),
    conv("d", "data", "yd", options),
    avePool("p", "data", "yp"),
  ]);
  // b's scale_d differs from a's in float64 but not in float32
  const plan = planQuantization(
    target,
    record({ a: [0.1, 2], b: [0.1 + 1e-12, 2], c: [0.1, 3], d: [0.2, 2], p: [0.1, 2] }),
  );
  assert.deepEqual(
    plan.groups.map((g) => [g.name, g.consumers]),
    [
      ["a_quant_layer", ["a", "b", "p"]],
      ["c_quant_layer", ["c"]],
      ["d_quant_layer", ["d"]],
    ],
  );
  assert.equal(plan.layers.get("p")!.quant.name, "a_quant_layer");
});

Deno.test("plan: an in-place layer between two readers makes a new value (no sharing)", () => {
  const target = net("data", [1, 3, 8, 8], [
    relu("r0", "data", "x"),
    conv("a", "x", "ya", options),
    relu("r1", "x", "x"),
    conv("b", "x", "yb", options),
    conv("c", "x", "yc", options),
  ]);
  const plan = planQuantization(target, record({ a: [0.5, 0], b: [0.5, 0], c: [0.5, 0] }));
  assert.deepEqual(plan.groups.map((g) => [g.name, g.consumers]), [
    ["a_quant_layer", ["a"]],
    ["b_quant_layer", ["b", "c"]],
  ]);
});

Deno.test("plan: clashing names get the first free _1, _2 suffix", () => {
  const target = net("data", [1, 3, 8, 8], [
    relu("conv1_quant_layer", "data", "conv1_quant_layer_1"),
    relu("r", "data", "out_raw"),
    layer("conv1_dequant_layer", "Eltwise", ["data", "data"], ["e"]),
    conv("conv1", "data", "out", options),
    conv("conv2", "data", "out_raw_1", options),
  ]);
  const plan = planQuantization(target, record({ conv1: [0.5, 0], conv2: [0.25, 0] }));
  const conv1 = plan.layers.get("conv1")!;
  assert.equal(conv1.quant.name, "conv1_quant_layer_2");
  assert.equal(conv1.rawTop, "out_raw_2");
  assert.equal(conv1.dequantName, "conv1_dequant_layer_1");
  // names made for conv1 are taken for conv2 too
  const conv2 = plan.layers.get("conv2")!;
  assert.equal(conv2.rawTop, "out_raw_1_raw");
  assert.equal(conv2.quant.name, "conv2_quant_layer");
});

Deno.test("plan: header inputs are taken names", () => {
  const target = net("data_raw", [1, 3, 8, 8], [conv("conv1", "data_raw", "data", options)]);
  const plan = planQuantization(target, record({ conv1: [0.5, 0] }));
  assert.equal(plan.layers.get("conv1")!.rawTop, "data_raw_1");
});

Deno.test("checkFloatModel: marker layer types and integer blobs are ALREADY_QUANTIZED", () => {
  for (const type of ["Quant", "DeQuant", "AntiQuant", "IFMR", "SearchN"]) {
    const target = net("data", [1, 3, 8, 8], [layer("q", type, ["data"], ["y"])]);
    assert.throws(() => checkFloatModel(target, { model: "m" }), (error: unknown) => {
      assert.ok(error instanceof ConvertError);
      assert.equal(error.code, "ALREADY_QUANTIZED");
      assert.equal(error.layer, "q");
      assert.equal(error.file, "m");
      return true;
    });
  }
  for (const data of [new Int8Array(4), new Int32Array(4), new BigUint64Array(4)]) {
    const quantized = conv("conv1", "data", "y", options);
    quantized.blobs[1] = { shape: [4], data };
    const target = net("data", [1, 3, 8, 8], [quantized]);
    assert.throws(() => checkFloatModel(target, { weights: "w" }), (error: unknown) => {
      assert.ok(error instanceof ConvertError);
      assert.equal(error.code, "ALREADY_QUANTIZED");
      assert.equal(error.file, "w");
      assert.equal(error.layer, "conv1");
      return true;
    });
  }
  checkFloatModel(net("data", [1, 3, 8, 8], [conv("conv1", "data", "y", options)]));
});
