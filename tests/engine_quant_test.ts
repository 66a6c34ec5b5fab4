// Quant / DeQuant and the deploy model's integer layers, on a small hand-built quantized net whose
// factors and quantized blobs are computed here from SPEC §4 (independently of src/quant): the
// deploy run matches exact integer arithmetic, the fake-quant run matches SPEC's activation
// formula, and the two models agree.

import assert from "node:assert/strict";
import type { Blob, Net } from "../src/caffe/net.ts";
import { readPrototxt } from "../src/caffe/prototxt.ts";
import { ConvertError } from "../src/errors.ts";
import { scaleDFromQuantScale } from "../src/engine/quant.ts";
import { runNet, type RunResult, type Tensor } from "../src/engine/run.ts";

const f32 = Math.fround;

/** Round half to even (SPEC's rint). */
function rint(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction !== 0.5) return Math.round(value);
  return floor % 2 === 0 ? floor : floor + 1;
}

function clamp(value: number): number {
  return Math.min(127, Math.max(-128, value));
}

function randomValues(count: number, seed: number): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length: count }, () => {
    state = (Math.imul(state ^ (state >>> 13), 0x5bd1e995) + 0x9e3779b9) >>> 0;
    return state / 2 ** 31 - 1;
  });
}

/** The float net: conv1 -> relu -> pool1 (AVE) -> ip1 -> prob, and deconv1 on conv1. */
const FLOAT_NET = `
input: "data" input_shape { dim: 2 dim: 3 dim: 9 dim: 9 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 stride: 2 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool1" top: "ip1" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "ip1" top: "prob" }
layer { name: "deconv1" type: "Deconvolution" bottom: "conv1" top: "up"
  convolution_param { num_output: 2 kernel_size: 2 stride: 2 } }
`;

/** Activation factors per quantized layer: scale_d and offset_d. */
interface Activation {
  scaleD: number;
  offsetD: number;
}

/** A quantized layer's float weights, their per-channel scale_w, and the derived blobs. */
interface QuantizedWeights {
  weightsQ: Int8Array;
  biasQ: Int32Array | null;
  weightsFake: Float32Array;
  biasFake: Float32Array | null;
  deq: Float32Array;
}

function octalByte(offsetD: number): string {
  return "\\" + (offsetD & 0xff).toString(8).padStart(3, "0");
}

/**
 * SPEC §4 for one layer's float [weights, bias] blobs and its activation's scale_d; `channelOf(i)`
 * gives the output channel of weight element i.
 */
function quantizeLayer(
  [weightsBlob, biasBlob]: Blob[],
  { scaleD }: Activation,
  channels: number,
  channelOf: (index: number) => number,
  perChannel: boolean,
): QuantizedWeights {
  const weights = weightsBlob.data as Float32Array;
  const bias = biasBlob.data as Float32Array;
  const scaleW = new Float32Array(channels);
  for (let i = 0; i < weights.length; i++) {
    const c = perChannel ? channelOf(i) : 0;
    scaleW[c] = Math.max(scaleW[c], Math.abs(weights[i]) / 127);
  }
  if (!perChannel) scaleW.fill(scaleW[0]);
  const deq = scaleW.map((s) => f32(scaleD * s));
  const weightsQ = Int8Array.from(weights, (w, i) => clamp(rint(f32(w / scaleW[channelOf(i)]))));
  const weightsFake = Float32Array.from(weightsQ, (q, i) => q * scaleW[channelOf(i)]);
  const biasQ = Int32Array.from(bias, (b, c) => rint(b / deq[c]));
  const biasFake = Float32Array.from(biasQ, (q, c) => q * deq[c]);
  return { weightsQ, biasQ, weightsFake, biasFake, deq };
}

/** uint64 dequant scales: float32 bits of deq in bits 31..0. */
function packDeq(deq: Float32Array): BigUint64Array {
  const bits = new Uint32Array(deq.buffer.slice(0));
  return BigUint64Array.from(bits, (b) => BigInt(b));
}

interface Fixture {
  floatNet: Net;
  fakeNet: Net;
  deployNet: Net;
  activations: Record<string, Activation>;
  quantized: Record<string, QuantizedWeights>;
  input: Tensor;
}

/** The quantized net text (Quant -> L -> DeQuant per quantized layer, SPEC §5). */
function quantizedNetText(activations: Record<string, Activation>): string {
  const quant = (name: string, bottom: string) => {
    const { scaleD, offsetD } = activations[name];
    return `
layer { name: "${name}_quant_layer" type: "Quant" bottom: "${bottom}" top: "${name}_quant_layer"
  quant_param { scale: ${f32(1 / scaleD)} offset: "${
      octalByte(offsetD)
    }" with_offset: true object_layer: "${name}" } }`;
  };
  const dequant = (name: string, raw: string, top: string, channelWise: boolean) => `
layer { name: "${name}_dequant_layer" type: "DeQuant" bottom: "${raw}" top: "${top}"
  dequant_param { channel_wise: ${channelWise} } }`;
  return `
input: "data" input_shape { dim: 2 dim: 3 dim: 9 dim: 9 }
${quant("conv1", "data")}
layer { name: "conv1" type: "Convolution" bottom: "conv1_quant_layer" top: "conv1_raw"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 stride: 2 } }
${dequant("conv1", "conv1_raw", "conv1", true)}
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
${quant("pool1", "conv1")}
layer { name: "pool1" type: "Pooling" bottom: "pool1_quant_layer" top: "pool1_raw"
  pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
${dequant("pool1", "pool1_raw", "pool1", false)}
${quant("ip1", "pool1")}
layer { name: "ip1" type: "InnerProduct" bottom: "ip1_quant_layer" top: "ip1_raw" inner_product_param { num_output: 5 } }
${dequant("ip1", "ip1_raw", "ip1", false)}
layer { name: "prob" type: "Softmax" bottom: "ip1" top: "prob" }
${quant("deconv1", "conv1")}
layer { name: "deconv1" type: "Deconvolution" bottom: "deconv1_quant_layer" top: "up_raw"
  convolution_param { num_output: 2 kernel_size: 2 stride: 2 } }
${dequant("deconv1", "up_raw", "up", true)}
`;
}

/** The first float32 at or above `scaleD` whose f32(1/f32(1/x)) === x is `roundTrips`. */
function withRoundTrip({ scaleD, offsetD }: Activation, roundTrips: boolean): Activation {
  const value = new Float32Array([scaleD]);
  const bits = new Uint32Array(value.buffer);
  while ((f32(1 / f32(1 / value[0])) === value[0]) !== roundTrips) bits[0]++;
  return { scaleD: value[0], offsetD };
}

let fixture: Promise<Fixture> | undefined;

/** Builds the float net, observes activation ranges on it, and quantizes it both ways. */
function buildFixture(): Promise<Fixture> {
  fixture ??= (async () => {
    const floatNet = readPrototxt(FLOAT_NET);
    const weights: Record<string, Blob[]> = {
      conv1: [
        { shape: [4, 3, 3, 3], data: randomValues(108, 1).map((v) => v * 0.5) },
        { shape: [4], data: randomValues(4, 2).map((v) => v * 0.2) },
      ],
      ip1: [{ shape: [5, 36], data: randomValues(180, 3) }, {
        shape: [5],
        data: randomValues(5, 4),
      }],
      deconv1: [{ shape: [4, 2, 2, 2], data: randomValues(32, 5) }, {
        shape: [2],
        data: randomValues(2, 6),
      }],
    };
    for (const layer of floatNet.layers) layer.blobs = weights[layer.name] ?? [];
    const input = { shape: [2, 3, 9, 9], data: randomValues(486, 7) };
    const floatRun = await runNet(floatNet, { inputs: new Map([["data", input]]), keepAll: true });
    const range = (blob: string) => {
      const data = floatRun.blobs.get(blob)!.data;
      return { min: Math.min(0, ...data), max: Math.max(0, ...data) };
    };
    // Asymmetric int8 factors from observed ranges (SPEC §9): scale_d = (max - min)/255.
    const fromRange = ({ min, max }: { min: number; max: number }): Activation => {
      const scaleD = f32((max - min) / 255);
      return { scaleD, offsetD: clamp(-128 - rint(min / scaleD)) };
    };
    // conv1's scale_d survives S = f32(1/scale_d) -> f32(1/S), pool1's does not (its DeQuant
    // holds it exactly).
    const activations: Record<string, Activation> = {
      conv1: withRoundTrip(fromRange(range("data")), true),
      pool1: withRoundTrip(fromRange(range("conv1")), false),
      ip1: fromRange(range("pool1")),
      deconv1: { scaleD: f32(fromRange(range("conv1")).scaleD * 1.5), offsetD: -100 },
    };
    const quantized: Record<string, QuantizedWeights> = {
      conv1: quantizeLayer(weights.conv1, activations.conv1, 4, (i) => Math.floor(i / 27), true),
      ip1: quantizeLayer(weights.ip1, activations.ip1, 5, (i) => Math.floor(i / 36), false),
      deconv1: quantizeLayer(
        weights.deconv1,
        activations.deconv1,
        2,
        (i) => Math.floor(i / 4) % 2,
        true,
      ),
      pool1: {
        weightsQ: new Int8Array(0),
        biasQ: null,
        weightsFake: new Float32Array(0),
        biasFake: null,
        deq: new Float32Array([f32(activations.pool1.scaleD * 1)]),
      },
    };
    const text = quantizedNetText(activations);
    const fakeNet = readPrototxt(text);
    const deployNet = readPrototxt(text);
    for (const [net, deploy] of [[fakeNet, false], [deployNet, true]] as const) {
      for (const layer of net.layers) {
        const name = layer.name.replace(/_dequant_layer$/, "");
        const q = quantized[name];
        if (layer.type === "DeQuant") {
          const zeros = new Float32Array(q.deq.length);
          layer.blobs = deploy
            ? [{ shape: [q.deq.length], data: packDeq(q.deq) }]
            : [{ shape: [q.deq.length], data: q.deq }, { shape: [q.deq.length], data: zeros }, {
              shape: [q.deq.length],
              data: zeros,
            }];
        } else if (weights[layer.name] !== undefined) {
          const [w, b] = weights[layer.name];
          layer.blobs = deploy
            ? [{ shape: w.shape, data: q.weightsQ }, { shape: b.shape, data: q.biasQ! }]
            : [{ shape: w.shape, data: q.weightsFake }, { shape: b.shape, data: q.biasFake! }];
        }
      }
    }
    return { floatNet, fakeNet, deployNet, activations, quantized, input };
  })();
  return fixture;
}

async function runBoth(f: Fixture): Promise<{ fake: RunResult; deploy: RunResult }> {
  const inputs = new Map([["data", f.input]]);
  return {
    fake: await runNet(f.fakeNet, { inputs, keepAll: true }),
    deploy: await runNet(f.deployNet, { inputs, keepAll: true }),
  };
}

function quantizeValue(x: number, { scaleD, offsetD }: Activation): number {
  return clamp(rint(f32(x * f32(1 / scaleD))) + offsetD);
}

Deno.test("scale_d is recovered from the Quant layer's S = f32(1/scale_d)", () => {
  // SPEC §4's worked example.
  assert.equal(f32(1 / f32(1.07450986)), f32(0.9306569));
  assert.equal(scaleDFromQuantScale(f32(0.9306569)), f32(1.07450986));
  let exact = 0;
  const samples = randomValues(5000, 99);
  for (const sample of samples) {
    const scaleD = f32(10 ** (sample * 4));
    const quantScale = f32(1 / scaleD);
    const recovered = scaleDFromQuantScale(quantScale);
    assert.equal(f32(1 / recovered), quantScale, `scale_d ${scaleD}`);
    assert.ok(Math.abs(recovered - scaleD) <= scaleD * 2 ** -22, `scale_d ${scaleD}: ${recovered}`);
    if (recovered === scaleD) exact++;
  }
  assert.ok(exact > samples.length * 0.8, `${exact} of ${samples.length} recovered exactly`);
});

Deno.test("deploy model: Quant gives q, quantized layers compute exact integers, DeQuant scales by deq", async () => {
  const f = await buildFixture();
  const { deploy } = await runBoth(f);
  assert.deepEqual(deploy.skipped, []);
  assert.equal(deploy.deployBlobs.get("conv1_quant_layer"), "int8");
  assert.equal(deploy.deployBlobs.get("conv1_raw"), "accumulator");
  const q = deploy.blobs.get("conv1_quant_layer")!;
  assert.deepEqual(
    Array.from(q.data),
    Array.from(f.input.data, (x) => quantizeValue(x, f.activations.conv1)),
  );
  // conv1 in integers: sum (q - offset_d) * w_q + b_q, then f32(f32(acc) * deq[c]).
  const { offsetD } = f.activations.conv1;
  const { weightsQ, biasQ, deq } = f.quantized.conv1;
  const raw = deploy.blobs.get("conv1_raw")!;
  assert.deepEqual(raw.shape, [2, 4, 5, 5]);
  const expectedRaw: number[] = [];
  const expectedOut: number[] = [];
  for (let n = 0; n < 2; n++) {
    for (let c = 0; c < 4; c++) {
      for (let y = 0; y < 5; y++) {
        for (let x = 0; x < 5; x++) {
          let acc = biasQ![c];
          for (let ci = 0; ci < 3; ci++) {
            for (let i = 0; i < 3; i++) {
              for (let j = 0; j < 3; j++) {
                const iy = y * 2 - 1 + i;
                const ix = x * 2 - 1 + j;
                if (iy < 0 || iy >= 9 || ix < 0 || ix >= 9) continue;
                acc += (q.data[((n * 3 + ci) * 9 + iy) * 9 + ix] - offsetD) *
                  weightsQ[((c * 3 + ci) * 3 + i) * 3 + j];
              }
            }
          }
          expectedRaw.push(acc);
          expectedOut.push(f32(f32(acc) * deq[c]));
        }
      }
    }
  }
  assert.deepEqual(Array.from(raw.data), expectedRaw);
  // conv1 is then overwritten in place by relu1: compare before ReLU through the ReLU's rule.
  const relu = deploy.blobs.get("conv1")!;
  assert.deepEqual(Array.from(relu.data), expectedOut.map((v) => Math.max(v, 0)));
  // AVE pooling of q - offset_d: exact window sums divided by Caffe's pool size.
  const poolQ = deploy.blobs.get("pool1_quant_layer")!;
  const poolOffset = f.activations.pool1.offsetD;
  const poolRaw = deploy.blobs.get("pool1_raw")!;
  assert.deepEqual(poolRaw.shape, [2, 4, 3, 3]);
  for (let plane = 0; plane < 8; plane++) {
    for (let y = 0; y < 3; y++) {
      for (let x = 0; x < 3; x++) {
        let sum = 0;
        for (let i = y * 2 - 1; i < y * 2 + 2; i++) {
          for (let j = x * 2 - 1; j < x * 2 + 2; j++) {
            if (i >= 0 && i < 5 && j >= 0 && j < 5) {
              sum += poolQ.data[plane * 25 + i * 5 + j] - poolOffset;
            }
          }
        }
        const divisor = (Math.min(y * 2 + 2, 6) - (y * 2 - 1)) *
          (Math.min(x * 2 + 2, 6) - (x * 2 - 1));
        assert.equal(poolRaw.data[plane * 9 + y * 3 + x], f32(sum / divisor));
      }
    }
  }
  // InnerProduct: exact integer dot products.
  const ipQ = deploy.blobs.get("ip1_quant_layer")!;
  const ipRaw = deploy.blobs.get("ip1_raw")!;
  const ip = f.quantized.ip1;
  for (let n = 0; n < 2; n++) {
    for (let o = 0; o < 5; o++) {
      let acc = ip.biasQ![o];
      for (let k = 0; k < 36; k++) {
        acc += (ipQ.data[n * 36 + k] - f.activations.ip1.offsetD) * ip.weightsQ[o * 36 + k];
      }
      assert.equal(ipRaw.data[n * 5 + o], acc);
    }
  }
});

Deno.test("fake-quant model: Quant gives f32((q - offset_d) * scale_d), DeQuant is the identity", async () => {
  const f = await buildFixture();
  const { fake } = await runBoth(f);
  assert.deepEqual(fake.skipped, []);
  assert.equal(fake.deployBlobs.size, 0);
  const { scaleD, offsetD } = f.activations.conv1;
  const expected = Array.from(
    f.input.data,
    (x) => f32((quantizeValue(x, f.activations.conv1) - offsetD) * scaleD),
  );
  assert.deepEqual(Array.from(fake.blobs.get("conv1_quant_layer")!.data), expected);
  // pool1's scale_d does not round-trip through S; its DeQuant's deq gives it exactly.
  const pool = f.activations.pool1;
  assert.notEqual(f32(1 / f32(1 / pool.scaleD)), pool.scaleD);
  const conv1 = fake.blobs.get("conv1")!.data;
  const expectedPool = Array.from(
    conv1,
    (x) => f32((quantizeValue(x, pool) - pool.offsetD) * pool.scaleD),
  );
  assert.deepEqual(Array.from(fake.blobs.get("pool1_quant_layer")!.data), expectedPool);
  assert.deepEqual(
    Array.from(fake.blobs.get("ip1")!.data),
    Array.from(fake.blobs.get("ip1_raw")!.data),
  );
});

Deno.test("fake-quant and deploy models agree; both stay close to the float model", async () => {
  const f = await buildFixture();
  const { fake, deploy } = await runBoth(f);
  const floatRun = await runNet(f.floatNet, {
    inputs: new Map([["data", f.input]]),
    keepAll: true,
  });
  for (const blob of ["conv1", "pool1", "ip1", "prob", "up"]) {
    const a = fake.blobs.get(blob)!.data;
    const b = deploy.blobs.get(blob)!.data;
    const reference = floatRun.blobs.get(blob)!.data;
    let largest = 0;
    let error = 0;
    let dot = 0;
    let normA = 0;
    let normR = 0;
    for (let i = 0; i < a.length; i++) {
      largest = Math.max(largest, Math.abs(a[i]));
      error = Math.max(error, Math.abs(a[i] - b[i]));
      dot += a[i] * reference[i];
      normA += a[i] * a[i];
      normR += reference[i] * reference[i];
    }
    assert.ok(error <= 1e-5 * Math.max(1, largest), `${blob}: fake vs deploy max|error| ${error}`);
    const cosine = dot / Math.sqrt(normA * normR);
    assert.ok(cosine > 0.995, `${blob}: fake-quant vs float cosine ${cosine}`);
  }
});

Deno.test("deploy layers refuse mismatched forms; a non-zero shift_bit is reported as skipped", async () => {
  const f = await buildFixture();
  const floatInput = readPrototxt(`input: "data" input_shape { dim: 1 dim: 3 dim: 9 dim: 9 }
    layer { name: "conv1" type: "Convolution" bottom: "data" top: "y" convolution_param { num_output: 4 kernel_size: 3 } }`);
  floatInput.layers[0].blobs = f.deployNet.layers.find((layer) => layer.name === "conv1")!.blobs;
  await assert.rejects(
    runNet(floatInput),
    (error: unknown) =>
      error instanceof ConvertError && error.code === "BAD_INPUT" && error.layer === "conv1",
  );

  const shifted = readPrototxt(quantizedNetText(f.activations));
  for (const layer of shifted.layers) {
    const source = f.deployNet.layers.find((other) => other.name === layer.name)!;
    layer.blobs = source.blobs;
  }
  const dequant = shifted.layers.find((layer) => layer.name === "ip1_dequant_layer")!;
  dequant.blobs = [{
    shape: [1],
    data: (dequant.blobs[0].data as BigUint64Array).map((v) => v | (3n << 32n)),
  }];
  const result = await runNet(shifted, { inputs: new Map([["data", f.input]]) });
  assert.deepEqual(result.skipped.map((entry) => entry.layer), ["ip1_dequant_layer", "prob"]);
  assert.match(result.skipped[0].reason, /shift_bit/);
});

Deno.test("deploy model: a depthwise convolution and a deconvolution in integers", async () => {
  const activation = { scaleD: f32(0.01), offsetD: 7 };
  const net = readPrototxt(`
    input: "data" input_shape { dim: 2 dim: 3 dim: 6 dim: 5 }
    layer { name: "dw_quant_layer" type: "Quant" bottom: "data" top: "dw_quant_layer"
      quant_param { scale: ${f32(1 / activation.scaleD)} offset: "${
    octalByte(7)
  }" with_offset: true object_layer: "dw" } }
    layer { name: "dw" type: "Convolution" bottom: "dw_quant_layer" top: "dw_raw"
      convolution_param { num_output: 3 group: 3 kernel_size: 3 pad: 1 stride: 2 } }
    layer { name: "dw_dequant_layer" type: "DeQuant" bottom: "dw_raw" top: "dw" }
  `);
  const weightsQ = Int8Array.from(randomValues(27, 21), (v) => Math.round(v * 127));
  const biasQ = Int32Array.from([1000, -20000, 5]);
  const deq = Float32Array.from([0.001, 0.002, 0.0005].map(f32));
  net.layers[1].blobs = [{ shape: [3, 1, 3, 3], data: weightsQ }, { shape: [3], data: biasQ }];
  net.layers[2].blobs = [{ shape: [3], data: packDeq(deq) }];
  const input = { shape: [2, 3, 6, 5], data: randomValues(180, 22) };
  const result = await runNet(net, { inputs: new Map([["data", input]]), keepAll: true });
  const q = Array.from(input.data, (x) => quantizeValue(x, activation));
  const raw = result.blobs.get("dw_raw")!;
  assert.deepEqual(raw.shape, [2, 3, 3, 3]);
  const expected: number[] = [];
  for (let plane = 0; plane < 6; plane++) {
    const c = plane % 3;
    for (let y = 0; y < 3; y++) {
      for (let x = 0; x < 3; x++) {
        let acc = biasQ[c];
        for (let i = 0; i < 3; i++) {
          for (let j = 0; j < 3; j++) {
            const iy = y * 2 - 1 + i;
            const ix = x * 2 - 1 + j;
            if (iy >= 0 && iy < 6 && ix >= 0 && ix < 5) {
              acc += (q[plane * 30 + iy * 5 + ix] - 7) * weightsQ[c * 9 + i * 3 + j];
            }
          }
        }
        expected.push(acc);
      }
    }
  }
  assert.deepEqual(Array.from(raw.data), expected);
  assert.deepEqual(
    Array.from(result.blobs.get("dw")!.data),
    expected.map((acc, i) => f32(acc * deq[Math.floor(i / 9) % 3])),
  );

  // Deconvolution (group 1): every input cell spreads (q - offset_d) * w_q over a 2x2 block.
  const f = await buildFixture();
  const { deploy } = await runBoth(f);
  const upQ = deploy.blobs.get("deconv1_quant_layer")!;
  const upRaw = deploy.blobs.get("up_raw")!;
  const { weightsQ: upWeights, biasQ: upBias } = f.quantized.deconv1;
  assert.deepEqual(upRaw.shape, [2, 2, 10, 10]);
  for (let n = 0; n < 2; n++) {
    for (let o = 0; o < 2; o++) {
      for (let y = 0; y < 10; y++) {
        for (let x = 0; x < 10; x++) {
          let acc = upBias![o];
          for (let ci = 0; ci < 4; ci++) {
            const value = upQ.data[((n * 4 + ci) * 5 + (y >> 1)) * 5 + (x >> 1)] -
              f.activations.deconv1.offsetD;
            acc += value * upWeights[((ci * 2 + o) * 2 + (y & 1)) * 2 + (x & 1)];
          }
          assert.equal(upRaw.data[((n * 2 + o) * 10 + y) * 10 + x], acc);
        }
      }
    }
  }
});

Deno.test("a Quant layer whose reader is skipped gives its own values (its quantization is not left undone)", async () => {
  const f = await buildFixture();
  // conv1 with convolution_param.axis 2 is skipped: conv1_quant_layer, which only conv1 reads,
  // is then an output of the run.
  const text = quantizedNetText(f.activations).replace(
    "convolution_param { num_output: 4 kernel_size: 3 pad: 1 stride: 2 }",
    "convolution_param { num_output: 4 kernel_size: 3 pad: 1 stride: 2 axis: 2 }",
  );
  const act = f.activations.conv1;
  for (const [form, source] of [["fake", f.fakeNet], ["deploy", f.deployNet]] as const) {
    const model = readPrototxt(text);
    for (const layer of model.layers) {
      layer.blobs = source.layers.find((other) => other.name === layer.name)!.blobs;
    }
    const result = await runNet(model, { inputs: new Map([["data", f.input]]) });
    assert.ok(result.skipped.some((entry) => entry.layer === "conv1"), form);
    const expected = Array.from(f.input.data, (x) => {
      const q = quantizeValue(x, act);
      return form === "deploy" ? q : f32((q - act.offsetD) * act.scaleD);
    });
    assert.deepEqual(Array.from(result.outputs.get("conv1_quant_layer")!.data), expected, form);
  }
});
