// A Convolution or Deconvolution followed by a ReLU (also BatchNorm, Scale, DeQuant) applies it
// itself when no callback needs the value between the two (src/engine/run.ts fusionChains): in
// place, or into another blob that only that layer reads. The results equal plain loops computed
// here, with and without callbacks, for slope 0 and a leaky slope, a ReLU that is not in place,
// and a raw blob another layer also reads; an Eltwise applies the ReLU after it the same way.

import assert from "node:assert/strict";
import { readPrototxt } from "../src/caffe/prototxt.ts";
import { runNet, type Tensor } from "../src/engine/run.ts";
import { engineKernels } from "../src/wasm/engine.ts";
import {
  deconv,
  deconvForward,
  layer,
  net as builtNet,
  random,
  randomValues,
  scale,
} from "./_builders.ts";

const [C, H, W, O] = [3, 6, 5, 4];

/** 3x3 convolution, pad 1, then ReLU with `slope`, in float64. */
function expected(x: Float32Array, w: Float32Array, b: Float32Array, slope: number): number[] {
  const y: number[] = [];
  for (let o = 0; o < O; o++) {
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < W; j++) {
        let sum = b[o];
        for (let c = 0; c < C; c++) {
          for (let a = 0; a < 3; a++) {
            for (let d = 0; d < 3; d++) {
              const [ih, iw] = [i - 1 + a, j - 1 + d];
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              sum += w[((o * C + c) * 3 + a) * 3 + d] * x[(c * H + ih) * W + iw];
            }
          }
        }
        y.push(sum > 0 ? sum : sum * slope);
      }
    }
  }
  return y;
}

function net(reluText: string, moreLayers = "", between = "") {
  const parsed = readPrototxt(`input: "x" input_shape { dim: 1 dim: ${C} dim: ${H} dim: ${W} }
layer { name: "conv" type: "Convolution" bottom: "x" top: "conv"
  convolution_param { num_output: ${O} kernel_size: 3 pad: 1 } }
${between}
layer { name: "relu" type: "ReLU" ${reluText} }
${moreLayers}`);
  parsed.layers[0].blobs = [
    { shape: [O, C, 3, 3], data: randomValues(O * C * 9, 2) },
    { shape: [O], data: randomValues(O, 3) },
  ];
  return parsed;
}

function assertClose(actual: Tensor, wanted: number[]): void {
  assert.deepEqual(actual.shape, [1, O, H, W]);
  actual.data.forEach((value, i) => assert.ok(Math.abs(value - wanted[i]) < 1e-5, `at ${i}`));
}

for (const slope of [0, 0.1]) {
  Deno.test(`Convolution + in-place ReLU (slope ${slope}): fused and with callbacks`, async () => {
    const x = randomValues(C * H * W, 1);
    const text = `bottom: "conv" top: "conv" relu_param { negative_slope: ${slope} }`;
    const model = net(text);
    const [w, b] = model.layers[0].blobs.map((blob) => blob.data as Float32Array);
    const want = expected(x, w, b, slope);
    const inputs = new Map([["x", { shape: [1, C, H, W], data: x }]]);
    const fused = await runNet(model, { inputs });
    assertClose(fused.outputs.get("conv")!, want);
    const seen: string[] = [];
    const hooked = await runNet(model, { inputs, written: (layer) => seen.push(layer.name) });
    assertClose(hooked.outputs.get("conv")!, want);
    assert.deepEqual(seen, ["conv", "relu"]);
  });
}

Deno.test("Convolution + ReLU into another blob: both values kept", async () => {
  const x = randomValues(C * H * W, 4);
  const model = net(`bottom: "conv" top: "act"`);
  const [w, b] = model.layers[0].blobs.map((blob) => blob.data as Float32Array);
  const result = await runNet(model, {
    inputs: new Map([["x", { shape: [1, C, H, W], data: x }]]),
  });
  assertClose(result.outputs.get("act")!, expected(x, w, b, 0));
  const raw = expected(x, w, b, 1);
  const keep = await runNet(model, {
    inputs: new Map([["x", { shape: [1, C, H, W], data: x }]]),
    keepAll: true,
  });
  assertClose(keep.blobs.get("conv")!, raw);
});

Deno.test("Convolution + ReLU into another blob while a later layer reads the raw blob: not fused", async () => {
  const x = randomValues(C * H * W, 5);
  const model = net(
    `bottom: "conv" top: "act"`,
    `layer { name: "copy" type: "Power" bottom: "conv" top: "raw" }`,
  );
  const [w, b] = model.layers[0].blobs.map((blob) => blob.data as Float32Array);
  const result = await runNet(model, {
    inputs: new Map([["x", { shape: [1, C, H, W], data: x }]]),
  });
  assertClose(result.outputs.get("act")!, expected(x, w, b, 0));
  assertClose(result.outputs.get("raw")!, expected(x, w, b, 1));
  assert.deepEqual([...result.outputs.keys()].sort(), ["act", "raw"]);
});

Deno.test("Convolution + BatchNorm + Scale + ReLU: applied by the convolution, same values as layer by layer", async () => {
  const x = randomValues(C * H * W, 6);
  const model = net(
    `bottom: "bn" top: "act"`,
    "",
    `layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "bn" }
layer { name: "scale" type: "Scale" bottom: "bn" top: "bn" scale_param { bias_term: true } }`,
  );
  const [bn, scale] = [model.layers[1], model.layers[2]];
  const mean = randomValues(O, 7);
  const variance = randomValues(O, 8).map((v) => Math.abs(v) + 0.5);
  bn.blobs = [
    { shape: [O], data: mean },
    { shape: [O], data: variance },
    { shape: [1], data: new Float32Array([2]) },
  ];
  const [factors, shifts] = [randomValues(O, 9), randomValues(O, 10)];
  scale.blobs = [{ shape: [O], data: factors }, { shape: [O], data: shifts }];
  const [w, b] = model.layers[0].blobs.map((blob) => blob.data as Float32Array);
  const raw = expected(x, w, b, 1);
  const want = raw.map((value, i) => {
    const o = Math.floor(i / (H * W));
    const normal = (value - mean[o] / 2) / Math.sqrt(variance[o] / 2 + 1e-5);
    const y = normal * factors[o] + shifts[o];
    return Math.max(y, 0);
  });
  const inputs = new Map([["x", { shape: [1, C, H, W], data: x }]]);
  const fused = await runNet(model, { inputs });
  assertClose(fused.outputs.get("act")!, want);
  assert.deepEqual([...fused.outputs.keys()], ["act"]);
  const seen: string[] = [];
  const layered = await runNet(model, { inputs, written: (layer) => seen.push(layer.name) });
  assert.deepEqual(seen, ["conv", "bn", "scale", "relu"]);
  assert.deepEqual(layered.outputs.get("act")!.data, fused.outputs.get("act")!.data);
});

Deno.test("Deconvolution + Scale + leaky ReLU: applied by the deconvolution, same bits as layer by layer", async () => {
  const next = random(21);
  const [channels, outputs, kernel] = [3, 4, 3];
  const up = deconv("up", "x", "up", { numOutput: outputs, channelsIn: channels, kernel, next });
  const model = builtNet("x", [1, channels, H, W], [
    up,
    scale("scale", "up", "up", outputs, next),
    layer("relu", "ReLU", ["up"], ["act"], { relu_param: { negative_slope: 0.1 } }),
  ]);
  const x = randomValues(channels * H * W, 22);
  const [w, b] = up.blobs.map((blob) => blob.data as Float32Array);
  const [factors, shifts] = model.layers[1].blobs.map((blob) => blob.data as Float32Array);
  const raw = deconvForward(
    { shape: [channels, H, W], data: Float64Array.from(x) },
    w,
    b,
    outputs,
    kernel,
    1,
  );
  const plane = raw.shape[1] * raw.shape[2];
  const want = Array.from(raw.data, (value, i) => {
    const o = Math.floor(i / plane);
    const y = value * factors[o] + shifts[o];
    return y > 0 ? y : 0.1 * y;
  });
  const inputs = new Map([["x", { shape: [1, channels, H, W], data: x }]]);
  await countingReluCalls(async (reluCalls) => {
    const fused = await runNet(model, { inputs });
    assert.equal(reluCalls.count, 0, "the ReLU is applied by the deconvolution");
    assert.deepEqual([...fused.outputs.keys()], ["act"]);
    const act = fused.outputs.get("act")!;
    assert.deepEqual(act.shape, [1, ...raw.shape]);
    act.data.forEach((value, i) =>
      assert.ok(Math.abs(value - want[i]) < 1e-5, `at ${i}: ${value} ${want[i]}`)
    );
    const seen: string[] = [];
    const layered = await runNet(model, { inputs, written: (layer) => seen.push(layer.name) });
    assert.equal(reluCalls.count, 1);
    assert.deepEqual(seen, ["up", "scale", "relu"]);
    assert.deepEqual(layered.outputs.get("act")!.data, act.data);
  });
});

Deno.test("Eltwise SUM + ReLU: the ReLU runs in the Eltwise's call, same values as layer by layer", async () => {
  const model = readPrototxt(`input: "a" input_shape { dim: 1 dim: 3 dim: 4 dim: 5 }
input: "b" input_shape { dim: 1 dim: 3 dim: 4 dim: 5 }
layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "sum"
  eltwise_param { operation: SUM coeff: 1 coeff: -2 } }
layer { name: "relu" type: "ReLU" bottom: "sum" top: "act" relu_param { negative_slope: 0.25 } }`);
  const [a, b] = [randomValues(60, 11), randomValues(60, 12)];
  const inputs = new Map([
    ["a", { shape: [1, 3, 4, 5], data: a }],
    ["b", { shape: [1, 3, 4, 5], data: b }],
  ]);
  const want = Array.from(a, (value, i) => {
    const sum = Math.fround(value + Math.fround(-2 * b[i]));
    return sum > 0 ? sum : Math.fround(0.25 * sum);
  });
  await countingReluCalls(async (reluCalls) => {
    const fused = await runNet(model, { inputs });
    assert.equal(reluCalls.count, 0);
    assert.deepEqual([...fused.outputs.keys()], ["act"]);
    fused.outputs.get("act")!.data.forEach((value, i) => assert.equal(value, want[i], `at ${i}`));
    const seen: string[] = [];
    const layered = await runNet(model, { inputs, written: (layer) => seen.push(layer.name) });
    assert.equal(reluCalls.count, 1);
    assert.deepEqual(seen, ["sum", "relu"]);
    assert.deepEqual(layered.outputs.get("act")!.data, fused.outputs.get("act")!.data);
  });
});

Deno.test("Eltwise SUM of two inputs in one pass: Caffe's 0 + c0 x0 + c1 x1 and ReLU, bit for bit", async () => {
  const kernels = await engineKernels();
  const f32 = Math.fround;
  // Signed zeros, subnormals, infinities and NaN, then seeded values; 4k + 3 of them, so that the
  // one-value tail runs too.
  const special = [-0, 0, 1e-45, -1e-45, 1.5e-39, Infinity, -Infinity, NaN, 3, -3, 1e38, -1e38];
  const a = Float32Array.from([...special, ...special.toReversed(), ...randomValues(39, 31)]);
  const b = Float32Array.from([...special.toReversed(), ...special, ...randomValues(39, 32)]);
  assert.equal(a.length % 4, 3);
  // Caffe's std::max(x, 0) + slope * std::min(x, 0): each returns its first argument unless the
  // other is less.
  const relu = (x: number, slope: number) => f32((x < 0 ? 0 : x) + f32(slope * (0 < x ? 0 : x)));
  for (const [c0, c1] of [[1, 1], [1, -2], [-0.5, 3], [0, 1]]) {
    for (const slope of [undefined, 0, 0.25]) {
      const post = slope === undefined ? [] : [{ kind: "relu" as const, slope }];
      const y = kernels.eltwise("SUM", [a, b], [c0, c1], post);
      a.forEach((value, i) => {
        const sum = f32(f32(b[i] * c1) + f32(f32(value * c0) + 0));
        const want = slope === undefined ? sum : relu(sum, slope);
        assert.ok(Object.is(y[i], want), `${c0} ${c1} ${slope} at ${i}: ${y[i]} != ${want}`);
      });
    }
  }
});

Deno.test("observeOnly: observe sees only the named layers, and the run keeps its fusion and output buffer", async () => {
  const model = net(
    `bottom: "conv" top: "conv"`,
    `layer { name: "conv2" type: "Convolution" bottom: "conv" top: "out"
  convolution_param { num_output: 2 kernel_size: 1 } }`,
  );
  model.layers[2].blobs = [
    { shape: [2, O, 1, 1], data: randomValues(2 * O, 13) },
    { shape: [2], data: randomValues(2, 14) },
  ];
  const x = randomValues(C * H * W, 15);
  const [w, b] = model.layers[0].blobs.map((blob) => blob.data as Float32Array);
  const inputs = new Map([["x", { shape: [1, C, H, W], data: x }]]);
  const kernels = await engineKernels();
  await countingReluCalls(async (reluCalls) => {
    const plain = await runNet(model, { inputs });
    /** The run's observed layers and copies of what each read, and its output. */
    const observed = async (observeOnly?: ReadonlySet<string>) => {
      const reads = new Map<string, Float32Array>();
      const inArena: boolean[] = [];
      const result = await runNet(model, {
        inputs,
        observeOnly,
        observe(layer, bottoms) {
          reads.set(layer.name, bottoms[0].data.slice());
          inArena.push(kernels.inOutputArena(bottoms[0].data));
        },
      });
      return { reads, inArena, out: result.outputs.get("out")!.data };
    };
    reluCalls.count = 0;
    const all = await observed();
    assert.deepEqual([...all.reads.keys()], ["conv", "relu", "conv2"]);
    assert.equal(reluCalls.count, 1);
    reluCalls.count = 0;
    const only = await observed(new Set(["conv2"]));
    assert.deepEqual([...only.reads.keys()], ["conv2"]);
    assert.equal(reluCalls.count, 0, "the ReLU is applied by the convolution");
    assert.deepEqual(only.inArena, [true], "values are kept in the output buffer");
    assert.deepEqual(only.reads.get("conv2"), all.reads.get("conv2"));
    assertClose({ shape: [1, O, H, W], data: only.reads.get("conv2")! }, expected(x, w, b, 0));
    assert.deepEqual(only.out, plain.outputs.get("out")!.data);
    // An observed layer inside a fusion chain runs on its own, reading the raw convolution.
    reluCalls.count = 0;
    const cut = await observed(new Set(["relu"]));
    assert.deepEqual([...cut.reads.keys()], ["relu"]);
    assert.equal(reluCalls.count, 1);
    assertClose({ shape: [1, O, H, W], data: cut.reads.get("relu")! }, expected(x, w, b, 1));
    assert.deepEqual(cut.out, plain.outputs.get("out")!.data);
  });
});

/** Runs `body` with the engine's ReLU kernel counting its calls in `calls.count`. */
async function countingReluCalls(body: (calls: { count: number }) => Promise<void>): Promise<void> {
  const kernels = await engineKernels();
  const relu = kernels.relu;
  const calls = { count: 0 };
  kernels.relu = (values, slope) => {
    calls.count++;
    return relu(values, slope);
  };
  try {
    await body(calls);
  } finally {
    kernels.relu = relu;
  }
}
