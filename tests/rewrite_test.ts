import assert from "node:assert/strict";
import { ConvertError, type ErrorCode } from "../src/errors.ts";
import type { Layer, Net } from "../src/caffe/net.ts";
import { printPrototxt } from "../src/caffe/prototxt.ts";
import { TextMessage } from "../src/proto/tree.ts";
import { convertNet } from "../src/quant/convert.ts";
import {
  avePool,
  batchNorm,
  blobOf,
  conv,
  deconv,
  innerProduct,
  layer,
  net,
  random,
  recordText,
  relu,
  roundHalfEven,
  scale,
} from "./_builders.ts";

/** The float32 bits of `value`. */
function float32Bits(value: number): number {
  return new Uint32Array(Float32Array.of(value).buffer)[0];
}

/** The layer `name` of `target`. */
function find(target: Net, name: string): Layer {
  const found = target.layers.find((l) => l.name === name);
  assert.ok(found, `no layer ${name}`);
  return found;
}

/** Expects `run` to reject with a ConvertError `code` about `layerName`. */
async function assertRejects(
  run: () => Promise<unknown>,
  code: ErrorCode,
  layerName: string,
  messageParts: string[] = [],
): Promise<void> {
  await assert.rejects(run, (error: unknown) => {
    assert.ok(error instanceof ConvertError, `not a ConvertError: ${error}`);
    assert.equal(error.code, code, error.format());
    assert.equal(error.layer, layerName);
    for (const part of messageParts) assert.ok(error.message.includes(part), error.message);
    return true;
  });
}

const WORKED_SCALE_D = "1.07450986";
const WORKED_SCALE_W = "0.00448934268";

Deno.test("SPEC §4 worked example: deq bits, packed uint64, S and the offset byte", async () => {
  const next = random(31);
  const input = net("data", [1, 3, 8, 8], [
    conv("conv1", "data", "conv1", { numOutput: 2, channelsIn: 3, next }),
  ]);
  const record = recordText({
    conv1: `scale_d: ${WORKED_SCALE_D} offset_d: -14 scale_w: ${WORKED_SCALE_W} offset_w: 0`,
  });
  const { fakeQuant, deploy } = await convertNet(input, record);
  for (const output of [fakeQuant, deploy]) {
    assert.deepEqual(output.layers.map((l) => [l.name, l.type, l.bottoms, l.tops]), [
      ["conv1_quant_layer", "Quant", ["data"], ["conv1_quant_layer"]],
      ["conv1", "Convolution", ["conv1_quant_layer"], ["conv1_raw"]],
      ["conv1_dequant_layer", "DeQuant", ["conv1_raw"], ["conv1"]],
    ]);
    const quantParam = output.layers[0].params.message("quant_param")!;
    assert.deepEqual(quantParam.fields.map((f) => f.name), [
      "scale",
      "offset",
      "with_offset",
      "object_layer",
    ]);
    assert.equal(quantParam.get("scale"), Math.fround(0.9306569));
    assert.deepEqual(quantParam.get("offset"), new Uint8Array([0xf2]));
    assert.equal(quantParam.get("with_offset"), true);
    assert.equal(quantParam.get("object_layer"), "conv1");
    assert.equal(output.layers[2].param("dequant_param", "channel_wise"), false);
    assert.deepEqual(output.layers[0].blobs, []);
  }
  const fakeDequant = fakeQuant.layers[2].blobs;
  assert.equal(fakeDequant.length, 3);
  assert.equal(float32Bits(fakeDequant[0].data[0] as number), 0x3b9e1154);
  assert.equal(fakeDequant[0].data[0], Math.fround(0.004823843));
  assert.deepEqual(fakeDequant.map((b) => b.shape), [[1], [1], [1]]);
  assert.deepEqual([...fakeDequant[1].data, ...fakeDequant[2].data], [0, 0]);
  const deployDequant = deploy.layers[2].blobs;
  assert.equal(deployDequant.length, 1);
  assert.ok(deployDequant[0].data instanceof BigUint64Array);
  assert.deepEqual([...deployDequant[0].data], [1000214868n]);
  assert.ok(printPrototxt(fakeQuant).includes('offset: "\\362"'));
  assert.ok(printPrototxt(deploy).includes("scale: 0.9306569"));
});

Deno.test("quantized weights and bias equal an independent SPEC §4 computation", async () => {
  const next = random(32);
  const first = conv("conv1", "data", "y", { numOutput: 3, channelsIn: 2, kernel: 2, next });
  // one weight exactly half-way between two steps, one far outside the int8 range
  const scaleW = [0.01, 0.02, 0.004];
  const weights = first.blobs[0].data as Float32Array;
  weights[0] = Math.fround(2.5 * 0.01);
  weights[9] = 9;
  const bias = first.blobs[1].data as Float32Array;
  bias.set([0.3, -0.7, 0.0123]);
  const input = net("data", [1, 2, 4, 4], [first]);
  const record = recordText({
    conv1: `scale_d: 0.05 offset_d: 3 ${scaleW.map((s) => `scale_w: ${s}`).join(" ")} ` +
      "offset_w: 0 offset_w: 0 offset_w: 0",
  });
  const { fakeQuant, deploy } = await convertNet(input, record);
  const fakeLayer = find(fakeQuant, "conv1");
  const deployLayer = find(deploy, "conv1");
  const perChannel = weights.length / 3;
  for (let i = 0; i < weights.length; i++) {
    const s = Math.fround(scaleW[Math.floor(i / perChannel)]);
    const q = Math.min(127, Math.max(-128, roundHalfEven(Math.fround(weights[i] / s))));
    assert.equal(deployLayer.blobs[0].data[i], q, `w_q[${i}]`);
    assert.equal(fakeLayer.blobs[0].data[i], Math.fround(q * s), `w_fake[${i}]`);
  }
  assert.equal(deployLayer.blobs[0].data[9], 127);
  assert.ok(deployLayer.blobs[0].data instanceof Int8Array);
  assert.deepEqual(deployLayer.blobs[0].shape, [3, 2, 2, 2]);
  const deq = scaleW.map((s) => Math.fround(Math.fround(0.05) * Math.fround(s)));
  for (let c = 0; c < 3; c++) {
    const biasQ = roundHalfEven(bias[c] / deq[c]);
    assert.equal(deployLayer.blobs[1].data[c], biasQ, `b_q[${c}]`);
    assert.equal(fakeLayer.blobs[1].data[c], Math.fround(biasQ * deq[c]), `b_fake[${c}]`);
  }
  assert.ok(deployLayer.blobs[1].data instanceof Int32Array);
  assert.deepEqual(deployLayer.blobs[1].shape, [3]);
  const dequant = find(fakeQuant, "conv1_dequant_layer");
  assert.equal(dequant.param("dequant_param", "channel_wise"), true);
  assert.deepEqual([...dequant.blobs[0].data], deq);
  const packed = find(deploy, "conv1_dequant_layer").blobs[0];
  assert.deepEqual(packed.shape, [3]);
  assert.deepEqual([...packed.data], deq.map((d) => BigInt(float32Bits(d))));
});

Deno.test("Deconvolution and InnerProduct quantize per their output channels", async () => {
  const next = random(33);
  const up = deconv("up", "data", "u", { numOutput: 2, channelsIn: 3, kernel: 2, next });
  const fc = innerProduct("fc", "u", "f", { numOutput: 4, channelsIn: 2 * 10 * 10, next });
  const input = net("data", [1, 3, 5, 5], [up, fc]);
  const record = recordText({
    up: "scale_d: 0.1 scale_w: 0.01 scale_w: 0.03 offset_w: 0 offset_w: 0",
    fc: "scale_d: 0.2 scale_w: 0.005 offset_w: 0",
  });
  const { deploy } = await convertNet(input, record);
  const weights = up.blobs[0].data as Float32Array;
  const quantized = find(deploy, "up").blobs[0].data;
  // Deconvolution weights [C_in, C_out, kh, kw]: the output channel is axis 1
  for (let i = 0; i < weights.length; i++) {
    const channel = Math.floor(i / 4) % 2;
    const s = Math.fround([0.01, 0.03][channel]);
    const q = Math.min(127, Math.max(-128, roundHalfEven(Math.fround(weights[i] / s))));
    assert.equal(quantized[i], q, `deconv w_q[${i}]`);
  }
  assert.equal(find(deploy, "fc_dequant_layer").param("dequant_param", "channel_wise"), false);
  assert.equal(find(deploy, "fc").bottoms[0], "fc_quant_layer");
  assert.equal(find(deploy, "fc_quant_layer").bottoms[0], "u");
});

Deno.test("untouched layers keep their parameter tree and blob objects; the input is unchanged", async () => {
  const next = random(34);
  const input = net("data", [1, 3, 8, 8], [
    conv("conv1", "data", "c1", { numOutput: 4, channelsIn: 3, next }),
    relu("relu1", "c1", "c1"),
    conv("conv2", "c1", "c2", { numOutput: 4, channelsIn: 4, next }),
  ]);
  const before = JSON.stringify(input.layers.map((l) => l.params));
  const blobsBefore = input.layers.map((l) => l.blobs.map((b) => b.data));
  const record = recordText({ conv2: "scale_d: 0.5 scale_w: 0.01 offset_w: 0" });
  const { fakeQuant, deploy } = await convertNet(input, record);
  for (const output of [fakeQuant, deploy]) {
    for (const name of ["conv1", "relu1"]) {
      const original = find(input, name);
      const kept = find(output, name);
      assert.equal(kept.params, original.params);
      assert.equal(kept.blobs.length, original.blobs.length);
      kept.blobs.forEach((b, i) => assert.equal(b, original.blobs[i]));
    }
    assert.equal(output.header, input.header);
  }
  assert.equal(JSON.stringify(input.layers.map((l) => l.params)), before);
  input.layers.forEach((l, i) =>
    l.blobs.forEach((b, j) => assert.equal(b.data, blobsBefore[i][j]))
  );
  assert.deepEqual(find(input, "conv2").bottoms, ["c1"]);
});

Deno.test("a shared Quant is placed before its first consumer and feeds every consumer", async () => {
  const next = random(35);
  const options = { numOutput: 2, channelsIn: 3, next };
  const input = net("data", [1, 3, 8, 8], [
    relu("pre", "data", "x"),
    conv("a", "x", "ya", options),
    conv("b", "x", "yb", options),
    relu("mid", "x", "x"),
    conv("c", "x", "yc", options),
  ]);
  const factors = "scale_d: 0.5 offset_d: 1 scale_w: 0.01 offset_w: 0";
  const { fakeQuant, report } = await convertNet(
    input,
    recordText({ a: factors, b: factors, c: factors }),
  );
  assert.deepEqual(fakeQuant.layers.map((l) => l.name), [
    "pre",
    "a_quant_layer",
    "a",
    "a_dequant_layer",
    "b",
    "b_dequant_layer",
    "mid",
    "c_quant_layer",
    "c",
    "c_dequant_layer",
  ]);
  assert.equal(find(fakeQuant, "b").bottoms[0], "a_quant_layer");
  assert.equal(find(fakeQuant, "c").bottoms[0], "c_quant_layer");
  assert.deepEqual(report.sharedQuantLayers, [{ name: "a_quant_layer", consumers: ["a", "b"] }]);
  assert.deepEqual(report.quantizedLayers, ["a", "b", "c"]);
});

Deno.test("only bottom[0] is rewired; AVE pooling gets a DeQuant with deq = scale_d", async () => {
  const pool = avePool("pool", "data", "p");
  pool.bottoms = ["data", "extra"];
  const input = net("data", [1, 3, 8, 8], [relu("r", "data", "extra"), pool]);
  const { fakeQuant, deploy } = await convertNet(
    input,
    recordText({ pool: "scale_d: 0.3 offset_d: -2" }),
  );
  assert.deepEqual(find(fakeQuant, "pool").bottoms, ["pool_quant_layer", "extra"]);
  assert.deepEqual(find(fakeQuant, "pool").blobs, []);
  assert.deepEqual([...find(fakeQuant, "pool_dequant_layer").blobs[0].data], [Math.fround(0.3)]);
  assert.deepEqual(
    [...find(deploy, "pool_dequant_layer").blobs[0].data],
    [BigInt(float32Bits(0.3))],
  );
  assert.equal(
    find(deploy, "pool_quant_layer").param("quant_param", "offset") instanceof Uint8Array,
    true,
  );
});

Deno.test("fused and quantized: the DeQuant writes the Scale's top", async () => {
  const next = random(36);
  const input = net("data", [1, 3, 8, 8], [
    conv("conv1", "data", "c1", { numOutput: 4, channelsIn: 3, next }),
    batchNorm("bn1", "c1", "b1", 4, next),
    scale("scale1", "b1", "s1", 4, next),
    relu("relu1", "s1", "s1"),
  ]);
  const { fakeQuant, report } = await convertNet(
    input,
    recordText({ conv1: "scale_d: 0.5 scale_w: 0.01 offset_w: 0" }),
  );
  assert.deepEqual(fakeQuant.layers.map((l) => [l.name, l.bottoms, l.tops]), [
    ["conv1_quant_layer", ["data"], ["conv1_quant_layer"]],
    ["conv1", ["conv1_quant_layer"], ["s1_raw"]],
    ["conv1_dequant_layer", ["s1_raw"], ["s1"]],
    ["relu1", ["s1"], ["s1"]],
  ]);
  assert.deepEqual(report.fusedComposites, [{ layer: "conv1", batchNorm: "bn1", scale: "scale1" }]);
});

Deno.test("WEIGHTS_NOT_FINITE names the layer; other layers may hold NaN", async () => {
  const next = random(37);
  const build = () =>
    net("data", [1, 3, 8, 8], [
      conv("conv1", "data", "c1", { numOutput: 2, channelsIn: 3, next }),
      conv("conv2", "c1", "c2", { numOutput: 2, channelsIn: 2, next }),
    ]);
  const record = recordText({ conv1: "scale_d: 0.5 scale_w: 0.01 offset_w: 0" });
  const nanWeights = build();
  (nanWeights.layers[0].blobs[0].data as Float32Array)[5] = NaN;
  await assertRejects(() => convertNet(nanWeights, record), "WEIGHTS_NOT_FINITE", "conv1", [
    "element 5",
  ]);
  const infBias = build();
  (infBias.layers[0].blobs[1].data as Float32Array)[1] = -Infinity;
  await assertRejects(() => convertNet(infBias, record), "WEIGHTS_NOT_FINITE", "conv1", ["bias"]);
  const elsewhere = build();
  (elsewhere.layers[1].blobs[0].data as Float32Array)[0] = NaN;
  await convertNet(elsewhere, record);
});

Deno.test("BIAS_OVERFLOW names the layer, the channel and the value", async () => {
  const next = random(38);
  const first = conv("conv1", "data", "c1", { numOutput: 3, channelsIn: 3, next });
  first.blobs[1] = blobOf([3], [0.5, -3000, 1]);
  const input = net("data", [1, 3, 8, 8], [first]);
  // deq = 1e-3 · 1e-3 = 1e-6: -3000 / 1e-6 = -3e9 is outside int32
  const record = recordText({ conv1: "scale_d: 0.001 scale_w: 0.001 offset_w: 0" });
  await assertRejects(() => convertNet(input, record), "BIAS_OVERFLOW", "conv1", [
    "channel 1",
    "-29999",
  ]);
});

Deno.test("ALREADY_QUANTIZED is checked before the record", async () => {
  const input = net("data", [1, 3, 8, 8], [
    layer("q", "Quant", ["data"], ["q"], { quant_param: new TextMessage() }),
  ]);
  await assertRejects(() => convertNet(input, ""), "ALREADY_QUANTIZED", "q");
});
