// What the engine keeps between runs: weights in WebAssembly memory (src/wasm/resident.ts, keyed
// by the weights array; float convolution weights packed), each net's run plan and parsed layer
// parameters (src/engine/run.ts runPlan, src/engine/layer_memo.ts, checked with
// src/caffe/net_stamp.ts), and one buffer for the values a run computes (src/wasm/output_arena.ts).
// Outputs equal those of the per-call path (budget 0, a freshly loaded net, a `written` callback,
// which also turns off the arena and fusion) bit for bit on every shared model; a new weights
// array, a budget too small for the weights, a tree changed in place and outputs kept across runs
// are all checked against plain float64 / integer loops written here.

import assert from "node:assert/strict";
import { loadNet } from "../src/caffe/model.ts";
import type { Net } from "../src/caffe/net.ts";
import { ConvertError } from "../src/errors.ts";
import { runNet, type RunOptions, type Tensor } from "../src/engine/run.ts";
import { convertInMemory } from "../src/quant/convert.ts";
import { makeRecord } from "../src/quant/make_record.ts";
import { engineKernels } from "../src/wasm/engine.ts";
import { WasmInstance } from "../src/wasm/load.ts";
import { OutputArena } from "../src/wasm/output_arena.ts";
import { DEFAULT_RESIDENT_BYTES, ResidentArrays } from "../src/wasm/resident.ts";
import {
  conv,
  convForward,
  innerProduct,
  innerProductForward,
  layer,
  maxRelativeError,
  message,
  net,
  random,
  randomValues,
} from "./_builders.ts";
import { modelFile, modelNames } from "./_models.ts";

/** Runs `body` with the engine's resident budget set to `bytes`, restoring the default after. */
async function withBudget<T>(bytes: number, body: () => Promise<T>): Promise<T> {
  const kernels = await engineKernels();
  kernels.setResidentBudget(bytes);
  try {
    return await body();
  } finally {
    kernels.setResidentBudget(DEFAULT_RESIDENT_BYTES);
  }
}

/** The outputs' bits by blob name. */
function bits(outputs: Map<string, Tensor>): Map<string, { shape: number[]; bits: number[] }> {
  return new Map(
    [...outputs].map(([name, { shape, data }]) => [
      name,
      { shape, bits: [...new Uint32Array(data.buffer, data.byteOffset, data.length)] },
    ]),
  );
}

/** The three forms of a shared model: float, and (`quantized`) fake-quant and deploy. */
async function modelNets(name: string, quantized: boolean): Promise<Record<string, () => Net>> {
  const model = await Deno.readTextFile(modelFile(name, "deploy.prototxt"));
  const weights = await Deno.readFile(modelFile(name, "weights.caffemodel"));
  const nets: Record<string, () => Net> = { float: () => loadNet(model, weights) };
  if (!quantized) return nets;
  const record = await makeRecord(loadNet(model, weights));
  const { files } = await convertInMemory({ model, weights, record });
  nets.fakeQuant = () => loadNet(files.fakeQuantModel, files.fakeQuantWeights);
  nets.deploy = () => loadNet(files.deployModel, files.deployWeights);
  return nets;
}

/** Models small enough to convert and run in three forms here. */
const QUANTIZED = new Set(["lenet", "mtcnn_onet", "mtcnn_pnet", "cifar10_quick_v1format"]);

for (const name of modelNames) {
  Deno.test(`kept weights and plans: ${name} gives the bits of per-call copies`, async () => {
    for (const [form, load] of Object.entries(await modelNets(name, QUANTIZED.has(name)))) {
      const copied = await withBudget(0, () => runNet(load(), { seed: 3, written: () => {} }));
      const kept = load();
      const first = await runNet(kept, { seed: 3 });
      const second = await runNet(kept, { seed: 3 });
      assert.deepEqual(bits(first.outputs), bits(copied.outputs), `${name} ${form}, first run`);
      assert.deepEqual(bits(second.outputs), bits(copied.outputs), `${name} ${form}, second run`);
    }
  });
}

/** conv (3 -> 4 channels, 3x3) then an InnerProduct (-> 5), on a 1x3x6x7 input. */
function twoLayerNet(seed: number): Net {
  const next = random(seed);
  return net("x", [1, 3, 6, 7], [
    conv("conv", "x", "c", { numOutput: 4, channelsIn: 3, next }),
    innerProduct("ip", "c", "y", { numOutput: 5, channelsIn: 4 * 4 * 5, next }),
  ]);
}

/** twoLayerNet's output in float64, from its current blobs. */
function twoLayerExpected(model: Net, x: Float32Array): Float64Array {
  const [convLayer, ipLayer] = model.layers;
  const c = convForward(
    { shape: [3, 6, 7], data: Float64Array.from(x) },
    convLayer.blobs[0].data as Float32Array,
    convLayer.blobs[1].data as Float32Array,
    4,
    3,
    1,
  );
  const y = innerProductForward(
    c,
    ipLayer.blobs[0].data as Float32Array,
    ipLayer.blobs[1].data as Float32Array,
    5,
  );
  return Float64Array.from(y.data);
}

async function runTwoLayer(model: Net, x: Float32Array): Promise<Float32Array> {
  const { outputs } = await runNet(model, {
    inputs: new Map([["x", { shape: [1, 3, 6, 7], data: x }]]),
  });
  return outputs.get("y")!.data;
}

Deno.test("kept weights: a blob given a new array is read anew", async () => {
  const model = twoLayerNet(1);
  const x = randomValues(3 * 6 * 7, 5);
  const before = await runTwoLayer(model, x);
  assert.ok(maxRelativeError(before, twoLayerExpected(model, x)) < 1e-5);
  for (const [index, layer] of model.layers.entries()) {
    const old = layer.blobs[0].data as Float32Array;
    layer.blobs[0] = { ...layer.blobs[0], data: old.map((value) => -2 * value) };
    const after = await runTwoLayer(model, x);
    const wanted = twoLayerExpected(model, x);
    assert.ok(maxRelativeError(after, wanted) < 1e-5, `after layer ${index}'s new weights`);
    assert.ok(maxRelativeError(before, wanted) > 1e-2, "the new weights change the output");
  }
});

Deno.test("kept weights: budgets too small for one or for both layers copy per call", async () => {
  const model = twoLayerNet(2);
  const x = randomValues(3 * 6 * 7, 6);
  const wanted = twoLayerExpected(model, x);
  const convBytes = (4 * 3 * 9 + 4) * 4;
  // 0 and 16 bytes: nothing fits; convBytes + 64: the conv's weights and bias fit, not the
  // InnerProduct's (copied per call, the conv's found kept); the default keeps both.
  for (const budget of [0, 16, convBytes + 64, DEFAULT_RESIDENT_BYTES]) {
    await withBudget(budget, async () => {
      for (let run = 0; run < 3; run++) {
        const y = await runTwoLayer(model, x);
        assert.ok(maxRelativeError(y, wanted) < 1e-5, `budget ${budget}, run ${run}`);
      }
    });
  }
});

Deno.test("kept weights: the integer form's int8 weights, kept packed, and new ones", async () => {
  const kernels = await engineKernels();
  const [C, H, W, O] = [2, 4, 5, 3];
  const q = Float32Array.from({ length: C * H * W }, (_, i) => ((i * 37) % 255) - 128);
  const bias = Int32Array.from({ length: O }, (_, o) => 1000 * o - 700);
  const offsetD = 5;
  /** y = bias + sum (q - offsetD) * w, 3x3, no padding, in integers. */
  const expected = (weights: Int8Array) => {
    const y: number[] = [];
    for (let o = 0; o < O; o++) {
      for (let i = 0; i < H - 2; i++) {
        for (let j = 0; j < W - 2; j++) {
          let sum = bias[o];
          for (let c = 0; c < C; c++) {
            for (let a = 0; a < 3; a++) {
              for (let d = 0; d < 3; d++) {
                sum += (q[(c * H + i + a) * W + j + d] - offsetD) *
                  weights[((o * C + c) * 3 + a) * 3 + d];
              }
            }
          }
          y.push(sum);
        }
      }
    }
    return y;
  };
  const convolve = (weights: Int8Array) =>
    kernels.convolution({
      x: q,
      offsetD,
      shape: [1, C, H, W],
      weights,
      bias,
      outputs: O,
      groups: 1,
      window: { kernel: [3, 3], pad: [0, 0], stride: [1, 1], dilation: [1, 1] },
      outSize: [H - 2, W - 2],
    });
  const weights = Int8Array.from({ length: O * C * 9 }, (_, i) => ((i * 53) % 256) - 128);
  assert.deepEqual([...convolve(weights)], expected(weights));
  assert.deepEqual([...convolve(weights)], expected(weights), "second call, kept weights");
  const other = weights.map((value) => -value - 1);
  assert.deepEqual([...convolve(other)], expected(other), "a new weights array");
});

Deno.test("kept plans: a tree changed in place (stride, then type) is run as it is now", async () => {
  const next = random(4);
  const model = net("x", [1, 2, 7, 7], [
    conv("conv", "x", "y", { numOutput: 3, channelsIn: 2, next }),
  ]);
  const x = randomValues(2 * 7 * 7, 7);
  const inputs = new Map([["x", { shape: [1, 2, 7, 7], data: x }]]);
  const [weights, bias] = model.layers[0].blobs.map((blob) => blob.data as Float32Array);
  const full = convForward(
    { shape: [2, 7, 7], data: Float64Array.from(x) },
    weights,
    bias,
    3,
    3,
    1,
  );
  const first = (await runNet(model, { inputs })).outputs.get("y")!;
  assert.deepEqual(first.shape, [1, 3, 5, 5]);
  assert.ok(maxRelativeError(first.data, full.data) < 1e-5);
  model.layers[0].params.message("convolution_param")!.set("stride", 2);
  const strided = (await runNet(model, { inputs })).outputs.get("y")!;
  assert.deepEqual(strided.shape, [1, 3, 3, 3]);
  const everyOther = [...full.data].filter((_, i) => {
    const [row, column] = [Math.floor(i / 5) % 5, i % 5];
    return row % 2 === 0 && column % 2 === 0;
  });
  assert.ok(maxRelativeError(strided.data, everyOther) < 1e-5);
  model.layers[0].type = "NoSuchLayer";
  const result = await runNet(model, { inputs });
  assert.deepEqual(result.skipped.map((skipped) => skipped.layer), ["conv"]);
});

/** conv (2 -> 3 channels, 3x3) of each image of `x`, then `after` on each value with its channel. */
function convThen(
  model: Net,
  shape: number[],
  x: Float32Array,
  after: (value: number, channel: number) => number,
): number[] {
  const [batch, channels, height, width] = shape;
  const [weights, bias] = model.layers[0].blobs.map((blob) => blob.data as Float32Array);
  const image = channels * height * width;
  const values: number[] = [];
  for (let n = 0; n < batch; n++) {
    const data = Float64Array.from(x.subarray(n * image, (n + 1) * image));
    const y = convForward({ shape: [channels, height, width], data }, weights, bias, 3, 3, 1);
    const plane = y.shape[1] * y.shape[2];
    values.push(...[...y.data].map((value, i) => after(value, Math.floor(i / plane))));
  }
  return values;
}

Deno.test("kept calls: new blob arrays, input shapes, layers and parameters are run as they are now", async () => {
  const next = random(12);
  const slopes = () => ({ shape: [3], data: Float32Array.from({ length: 3 }, () => next(0, 1)) });
  const prelu = layer("prelu", "PReLU", ["c"], ["c"], {}, [slopes()]);
  const model = net("x", [1, 2, 6, 7], [
    conv("conv", "x", "c", { numOutput: 3, channelsIn: 2, next }),
    prelu,
  ]);
  const preluOf = (value: number, channel: number) =>
    value > 0 ? value : value * (prelu.blobs[0].data as Float32Array)[channel];
  const base = [1, 2, 6, 7];
  let previous: Float32Array | undefined;
  /**
   * Runs the net on an input of `shape` and checks it against `after` of the conv's values; on
   * the base shape, also that it differs from the run before (unless `same`).
   */
  const check = async (
    what: string,
    shape: number[],
    after: (value: number, channel: number) => number,
    same = false,
    options: RunOptions = {},
  ) => {
    const x = randomValues(shape.reduce((a, b) => a * b, 1), shape[0] + shape[3]);
    const inputs = new Map([["x", { shape, data: x }]]);
    const result = (await runNet(model, { ...options, inputs })).outputs.get("c")!;
    assert.deepEqual(result.shape, [shape[0], 3, shape[2] - 2, shape[3] - 2], what);
    assert.ok(maxRelativeError(result.data, convThen(model, shape, x, after)) < 1e-5, what);
    if (shape !== base) return;
    if (previous !== undefined && !same) {
      assert.ok(maxRelativeError(result.data, previous) > 1e-3, `${what} changes the output`);
    }
    previous = result.data.slice();
  };
  await check("first run", base, preluOf);
  await check("second run", base, preluOf, true);
  // Layer by layer (nothing fused), then fused again.
  await check("with a callback", base, preluOf, true, { written: () => {} });
  await check("without", base, preluOf, true);
  prelu.blobs[0] = slopes();
  await check("the PReLU's new slopes blob", base, preluOf);
  const [convLayer] = model.layers;
  convLayer.blobs[1].data = (convLayer.blobs[1].data as Float32Array).map((b) => b + 0.5);
  await check("the conv's bias given a new array", base, preluOf);
  convLayer.blobs[0] = { ...convLayer.blobs[0], data: randomValues(3 * 2 * 9, 8) };
  await check("the conv's new weights blob", base, preluOf);
  await check("another input shape", [2, 2, 5, 8], preluOf);
  await check("the first shape again", base, preluOf, true);
  const reluAfter = layer("relu", "ReLU", ["c"], ["c"], { relu_param: { negative_slope: 0 } });
  model.layers.push(reluAfter);
  const reluOf = (slope: number) => (value: number, channel: number) => {
    const v = preluOf(value, channel);
    return v > 0 ? v : v * slope;
  };
  await check("a ReLU added after the PReLU", base, reluOf(0));
  reluAfter.params.message("relu_param")!.set("negative_slope", 0.25);
  await check("the ReLU's negative_slope changed", base, reluOf(0.25));
  model.layers.splice(1, 1);
  await check("the PReLU removed", base, (value) => value > 0 ? value : value * 0.25);
});

Deno.test("kept kernels: one weights array under other arguments is run as they ask", async () => {
  const kernels = await engineKernels();
  const weights = randomValues(4 * 2 * 9, 21);
  const bias = randomValues(4, 22);
  const window = {
    kernel: [3, 3] as [number, number],
    pad: [0, 0] as [number, number],
    stride: [1, 1] as [number, number],
    dilation: [1, 1] as [number, number],
  };
  /** The convolution of `x` ([1, 2, h, w]) by `kernels` and by convForward, then `after`. */
  const convolve = (
    h: number,
    w: number,
    seed: number,
    withBias: boolean,
    relu: boolean,
  ): [Float32Array, number[]] => {
    const x = randomValues(2 * h * w, seed);
    const y = kernels.convolution({
      x,
      shape: [1, 2, h, w],
      weights,
      bias: withBias ? bias : null,
      outputs: 4,
      groups: 1,
      window,
      outSize: [h - 2, w - 2],
      post: relu ? [{ kind: "relu", slope: 0.5 }] : [],
      algorithm: "direct",
    });
    const wanted = convForward(
      { shape: [2, h, w], data: Float64Array.from(x) },
      weights,
      withBias ? bias : null,
      4,
      3,
      1,
    );
    return [y, [...wanted.data].map((v) => relu && v < 0 ? 0.5 * v : v)];
  };
  const cases: [number, number, number, boolean, boolean][] = [
    [6, 7, 1, true, false],
    [6, 7, 2, true, false],
    [5, 9, 3, true, false],
    [5, 9, 4, false, false],
    [5, 9, 5, false, true],
    [6, 7, 6, true, true],
  ];
  for (const [h, w, seed, withBias, relu] of cases) {
    const [y, wanted] = convolve(h, w, seed, withBias, relu);
    assert.equal(y.length, wanted.length);
    assert.ok(maxRelativeError(y, wanted) < 1e-5, `${h}x${w} bias ${withBias} relu ${relu}`);
  }
  const ipWeights = randomValues(3 * 10, 23);
  for (const rows of [1, 3, 2]) {
    const x = randomValues(rows * 10, rows);
    const y = kernels.innerProduct({
      x,
      rows,
      depth: 10,
      weights: ipWeights,
      transposed: false,
      bias: rows === 3 ? null : bias.subarray(0, 3),
      outputs: 3,
    });
    const wanted = Array.from({ length: rows }, (_, r) =>
      innerProductForward(
        { shape: [10, 1, 1], data: Float64Array.from(x.subarray(r * 10, r * 10 + 10)) },
        ipWeights,
        rows === 3 ? null : bias.subarray(0, 3),
        3,
      ).data).flatMap((values) => [...values]);
    assert.ok(maxRelativeError(y, wanted) < 1e-5, `InnerProduct of ${rows} rows`);
  }
});

Deno.test("kept calls: a pooling runs each input shape and its window as they are now", async () => {
  const pooling = layer("pool", "Pooling", ["x"], ["y"], {
    pooling_param: { pool: "MAX", kernel_size: 2, stride: 2 },
  });
  const model = net("x", [1, 2, 4, 6], [pooling]);
  /** MAX over k x k windows at stride k of each plane (sizes multiples of k). */
  const maxPool = (x: Float32Array, [n, c, h, w]: number[], k: number) => {
    const y: number[] = [];
    for (let plane = 0; plane < n * c; plane++) {
      for (let i = 0; i < h / k; i++) {
        for (let j = 0; j < w / k; j++) {
          let best = -Infinity;
          for (let a = 0; a < k; a++) {
            for (let b = 0; b < k; b++) {
              best = Math.max(best, x[plane * h * w + (i * k + a) * w + j * k + b]);
            }
          }
          y.push(best);
        }
      }
    }
    return y;
  };
  const check = async (shape: number[], k: number) => {
    const x = randomValues(shape.reduce((a, b) => a * b, 1), shape[2] + k);
    const y = (await runNet(model, { inputs: new Map([["x", { shape, data: x }]]) }))
      .outputs.get("y")!;
    assert.deepEqual(y.shape, [shape[0], shape[1], shape[2] / k, shape[3] / k]);
    assert.deepEqual([...y.data], maxPool(x, shape, k), `${shape} by ${k}`);
  };
  await check([1, 2, 4, 6], 2);
  await check([1, 2, 4, 6], 2);
  await check([2, 3, 6, 4], 2);
  pooling.params.message("pooling_param")!.set("kernel_size", 3);
  pooling.params.message("pooling_param")!.set("stride", 3);
  await check([2, 3, 6, 9], 3);
  await check([1, 2, 3, 6], 3);
});

Deno.test("kept plans: a layer's parameter error is raised again on the next run", async () => {
  const next = random(5);
  const bad = conv("conv", "x", "y", { numOutput: 3, channelsIn: 2, next });
  bad.params.message("convolution_param")!.set("group", 0);
  const model = net("x", [1, 2, 5, 5], [bad]);
  const messages: string[] = [];
  for (let run = 0; run < 2; run++) {
    await assert.rejects(() => runNet(model), (error) => {
      assert.ok(error instanceof ConvertError);
      assert.equal(error.code, "BAD_LAYER_PARAM");
      messages.push(error.message);
      return true;
    });
  }
  assert.equal(messages[1], messages[0]);
});

Deno.test("output arena: a run's outputs stay as they were through later runs", async () => {
  const next = random(6);
  // The conv's value is an output twice: as it is and flattened (sharing its array).
  const model = net("x", [1, 2, 5, 5], [
    conv("conv", "x", "c", { numOutput: 3, channelsIn: 2, next }),
    layer("flat", "Flatten", ["c"], ["f"]),
    layer("pool", "Pooling", ["c"], ["p"], { pooling_param: { pool: "MAX", kernel_size: 3 } }),
  ]);
  const [weights, bias] = model.layers[0].blobs.map((blob) => blob.data as Float32Array);
  const run = (seed: number) => {
    const x = randomValues(2 * 5 * 5, seed);
    const wanted = convForward(
      { shape: [2, 5, 5], data: Float64Array.from(x) },
      weights,
      bias,
      3,
      3,
      1,
    );
    return {
      wanted,
      result: runNet(model, { inputs: new Map([["x", { shape: [1, 2, 5, 5], data: x }]]) }),
    };
  };
  await run(7).result; // the arena is sized by the run before (the first has none)
  const first = run(8);
  const { outputs } = await first.result;
  const kept = new Map([...outputs].map(([name, tensor]) => [name, tensor.data.slice()]));
  assert.deepEqual([...outputs.keys()].sort(), ["f", "p"]);
  for (let seed = 9; seed < 12; seed++) {
    const later = run(seed);
    const f = (await later.result).outputs.get("f")!.data;
    assert.ok(maxRelativeError(f, later.wanted.data) < 1e-5, `run with seed ${seed}`);
  }
  assert.ok(maxRelativeError(outputs.get("f")!.data, first.wanted.data) < 1e-5);
  for (const [name, tensor] of outputs) assert.deepEqual(tensor.data, kept.get(name), name);
  const kernels = await engineKernels();
  for (const tensor of outputs.values()) assert.equal(kernels.inOutputArena(tensor.data), false);
});

Deno.test("output arena: Concat, Slice and Crop outputs are right run after run and outlive them", async () => {
  const next = random(7);
  // cat = [c (3 channels), d (2)]; s1 = its channel 0, s2 = channels 1-4; cr = s2's channels 2-3
  // (cropped to d's shape from channel 2), which are d.
  const model = net("x", [1, 2, 5, 5], [
    conv("c", "x", "c", { numOutput: 3, channelsIn: 2, next }),
    conv("d", "x", "d", { numOutput: 2, channelsIn: 2, next }),
    layer("cat", "Concat", ["c", "d"], ["cat"]),
    layer("slice", "Slice", ["cat"], ["s1", "s2"], { slice_param: { slice_point: 1 } }),
    layer("crop", "Crop", ["s2", "d"], ["cr"], { crop_param: { axis: 1, offset: [2, 0, 0] } }),
  ]);
  const [cw, cb, dw, db] = model.layers.flatMap((l) => l.blobs.map((b) => b.data as Float32Array));
  const run = (seed: number) => {
    const x = randomValues(2 * 5 * 5, seed);
    const input = { shape: [2, 5, 5] as [number, number, number], data: Float64Array.from(x) };
    const c = convForward(input, cw, cb, 3, 3, 1).data;
    const d = convForward(input, dw, db, 2, 3, 1).data;
    return {
      wanted: { s1: c.subarray(0, 9), cr: d },
      result: runNet(model, { inputs: new Map([["x", { shape: [1, 2, 5, 5], data: x }]]) }),
    };
  };
  await run(19).result; // the arena is sized by the run before (the first has none)
  const first = run(20);
  const { outputs } = await first.result;
  assert.deepEqual([...outputs.keys()].sort(), ["cr", "s1"]);
  assert.deepEqual(outputs.get("cr")!.shape, [1, 2, 3, 3]);
  const kept = new Map([...outputs].map(([name, tensor]) => [name, tensor.data.slice()]));
  for (let seed = 21; seed < 25; seed++) {
    const later = run(seed);
    const { outputs: now } = await later.result;
    assert.ok(maxRelativeError(now.get("s1")!.data, later.wanted.s1) < 1e-5, `s1, seed ${seed}`);
    assert.ok(maxRelativeError(now.get("cr")!.data, later.wanted.cr) < 1e-5, `cr, seed ${seed}`);
  }
  assert.ok(maxRelativeError(outputs.get("s1")!.data, first.wanted.s1) < 1e-5);
  assert.ok(maxRelativeError(outputs.get("cr")!.data, first.wanted.cr) < 1e-5);
  for (const [name, tensor] of outputs) assert.deepEqual(tensor.data, kept.get(name), name);
  const kernels = await engineKernels();
  for (const tensor of outputs.values()) assert.equal(kernels.inOutputArena(tensor.data), false);
});

Deno.test("output arena: a kernel output of any size up to its capacity is taken from it", async () => {
  const kernels = await engineKernels();
  // A 1x1 convolution of one channel to one, y = 0.5 x + 0.25 (exact in float32 but for the
  // add's rounding), over 4.5 M floats: an 18 MB output, larger than the 16 MiB the arena once
  // stopped at (larger outputs got fresh pages on every run).
  const [height, width] = [1500, 3000];
  const x = randomValues(height * width, 31);
  const kernel = kernels.convolutionKernel({
    shape: [1, 1, height, width],
    weights: Float32Array.of(0.5),
    bias: Float32Array.of(0.25),
    outputs: 1,
    groups: 1,
    window: { kernel: [1, 1], pad: [0, 0], stride: [1, 1], dilation: [1, 1] },
    outSize: [height, width],
  }, false);
  for (let run = 0; run < 3; run++) {
    const [inArena, wrong] = kernels.withOutputArena(() => {
      const y = kernel(x);
      let wrong = 0;
      for (let i = 0; i < y.length; i++) if (y[i] !== Math.fround(0.5 * x[i] + 0.25)) wrong++;
      return [kernels.inOutputArena(y), wrong];
    });
    assert.equal(wrong, 0, `run ${run}`);
    // The arena is sized by the run before (the first may find it smaller).
    if (run > 0) assert.ok(inArena, `run ${run}`);
  }
});

/**
 * An arena in a shared memory of one page that may grow to `maximumPages`, and how many times it
 * was resized (each resize frees what the instance keeps).
 */
function sharedArena(maximumPages: number): { arena: OutputArena; resizes: () => number } {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: maximumPages, shared: true });
  const wasm = new WasmInstance({ exports: { memory } } as unknown as WebAssembly.Instance);
  let resizes = 0;
  const arena = new OutputArena(wasm, () => {
    resizes++;
    wasm.release();
  });
  return { arena, resizes: () => resizes };
}

Deno.test("output arena: memory it cannot have leaves it as it was; outputs get their own arrays", () => {
  // Three pages: room for 32 K floats above the base.
  const { arena, resizes } = sharedArena(3);
  /** One run taking an output of `count` floats: whether the arena holds it, and its values. */
  const run = (count: number) =>
    arena.within(() => {
      const output = arena.take(count).fill(count);
      return { inArena: arena.holds(output), right: output.every((value) => value === count) };
    });
  run(1000); // sizes the arena for the next run
  assert.deepEqual(run(1000), { inArena: true, right: true });
  run(100_000); // asks 400 KB, more than the memory may grow to
  for (let i = 0; i < 2; i++) {
    assert.deepEqual(run(100_000), { inArena: false, right: true }, `run ${i}`);
    assert.deepEqual(run(1000), { inArena: true, right: true }, `run ${i}`);
  }
  // The room set aside before the first run refused (the memory is smaller), sized once, refused
  // once, then not asked for again (each attempt frees what is kept).
  assert.equal(resizes(), 3);
});

Deno.test("output arena: a run on larger inputs than the last is given room for them at its start", () => {
  const { arena, resizes } = sharedArena(64);
  /** A run on `inputs` floats taking two outputs of 10 floats per input float: in the arena? */
  const run = (inputs: number) =>
    arena.within(() => {
      const outputs = [arena.take(10 * inputs), arena.take(10 * inputs)];
      return outputs.map((output) => arena.holds(output));
    }, inputs);
  assert.deepEqual(run(1000), [false, false]); // sizes the arena for the next run
  assert.deepEqual(run(1000), [true, true]);
  // Eight times the inputs (a batch of 8): room for eight times what the last run asked.
  assert.deepEqual(run(8000), [true, true]);
  assert.deepEqual(run(8000), [true, true]);
  // Smaller inputs fit what is there.
  assert.deepEqual(run(3000), [true, true]);
  // The room set aside before the first run refused (4 MiB of memory), then sized twice: by the
  // first run, and at the start of the first larger one.
  assert.equal(resizes(), 3);
});

Deno.test("output arena: in a shared memory the first run's outputs are taken from it", () => {
  // 512 MiB: room for the 256 MiB set aside before the first run.
  const { arena, resizes } = sharedArena(8192);
  const run = () =>
    arena.within(() => {
      const outputs = [arena.take(100_000), arena.take(1_000_000)];
      return outputs.map((output) => arena.holds(output));
    }, 1000);
  for (let i = 0; i < 3; i++) assert.deepEqual(run(), [true, true], `run ${i}`);
  assert.equal(resizes(), 1);
});

Deno.test("output arena: memory given back goes to later outputs of any size, merged with its neighbours", () => {
  const { arena } = sharedArena(64);
  /** Float offsets in the arena (all views of one buffer; the first view starts it). */
  const offsets = (views: Float32Array[]) =>
    views.map((view) => (view.byteOffset - views[0].byteOffset) / 4);
  const run = () =>
    arena.within(() => {
      const a = arena.take(400); // [0, 400)
      const b = arena.take(600); // [400, 1000)
      const c = arena.take(100); // [1000, 1100)
      arena.release(a);
      arena.release(b); // merged with a's: [0, 1000) free
      const d = arena.take(700); // [0, 700): the free range holds it, whatever its size
      const e = arena.take(300); // [700, 1000): the rest of it
      arena.release(c); // it was on top: the top goes back to 1000
      const f = arena.take(50); // [1000, 1052): 50 rounded up to 16-byte alignment
      arena.release(e);
      const g = arena.take(100); // [700, 800): the smallest free range that holds it
      arena.release(a); // given back already: nothing happens
      const h = arena.take(1000); // [1052, 2052): no free range holds it (only [800, 1000))
      return {
        views: [a, b, c, d, e, f, g, h],
        inArena: [a, b, c, d, e, f, g, h].every((view) => arena.holds(view)),
      };
    });
  run(); // sizes the arena for the next run
  const { views, inArena } = run();
  assert.equal(inArena, true);
  assert.deepEqual(offsets(views), [0, 400, 1000, 0, 700, 1000, 700, 1052]);
});

/** A module with nothing but an exported memory of one page (bytes written out by hand). */
async function bareInstance(): Promise<WasmInstance> {
  const bytes = new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    ...[0x05, 0x03, 0x01, 0x00, 0x01], // memory section: one memory, min 1 page
    ...[0x07, 0x0a, 0x01, 0x06, ...new TextEncoder().encode("memory"), 0x02, 0x00], // export it
  ]);
  const { instance } = await WebAssembly.instantiate(bytes);
  return new WasmInstance(instance);
}

Deno.test("kept forms: a net larger than the budget keeps what fits; another net replaces it", async () => {
  const wasm = await bareInstance();
  const resident = new ResidentArrays(wasm, 3 * 1024);
  let prepared = 0;
  /** One call reading `source`: the offset it is kept at, or undefined. */
  const call = (source: Float32Array) => {
    wasm.reset();
    resident.begin();
    return resident.prepared(source, "copy", source.byteLength, (at) => {
      prepared++;
      wasm.write(at, source);
    });
  };
  // Net A: four 1 KiB arrays, three fit. Run after run the first three are found again.
  const netA = [1, 2, 3, 4].map((value) => new Float32Array(256).fill(value));
  const offsets = netA.map(call);
  assert.equal(offsets[3], undefined);
  for (let run = 0; run < 10; run++) assert.deepEqual(netA.map(call), offsets, `run ${run}`);
  assert.equal(prepared, 3);
  for (const [i, at] of offsets.slice(0, 3).entries()) {
    assert.deepEqual(wasm.view(Float32Array, at!, 256), netA[i], `array ${i} kept as it was`);
  }
  // Net B: its arrays miss until more missed than are kept with none of A's read; then B's kept.
  const netB = [5, 6].map((value) => new Float32Array(256).fill(value));
  const runsOfB = [];
  for (let run = 0; run < 4; run++) runsOfB.push(netB.map(call));
  assert.deepEqual(runsOfB[0], [undefined, undefined]);
  const kept = runsOfB.at(-1)!;
  assert.ok(kept.every((at) => at !== undefined), "B is kept in the end");
  assert.deepEqual(wasm.view(Float32Array, kept[1]!, 256), netB[1]);
});

Deno.test("Layer: name, type, bottoms and tops follow edits of its tree; the arrays are copies", () => {
  const edited = layer("a", "ReLU", ["x"], ["y"]);
  assert.deepEqual([edited.name, edited.type, edited.bottoms, edited.tops], ["a", "ReLU", ["x"], [
    "y",
  ]]);
  edited.bottoms.push("z");
  edited.tops[0] = "w";
  assert.deepEqual([edited.bottoms, edited.tops], [["x"], ["y"]]);
  edited.params.add("top", "y2");
  edited.params.set("name", "b");
  edited.type = "TanH";
  edited.bottoms = ["x", "x2"];
  assert.deepEqual(
    [edited.name, edited.type, edited.bottoms, edited.tops],
    ["b", "TanH", ["x", "x2"], ["y", "y2"]],
  );
  edited.params.delete("top");
  assert.deepEqual(edited.tops, []);
  edited.params = message({ name: "c", type: "Sigmoid", bottom: "p", top: "q" });
  assert.deepEqual([edited.name, edited.type, edited.bottoms, edited.tops], [
    "c",
    "Sigmoid",
    ["p"],
    ["q"],
  ]);
});
