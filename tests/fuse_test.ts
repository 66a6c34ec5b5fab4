import assert from "node:assert/strict";
import { ConvertError } from "../src/errors.ts";
import type { Layer, Net } from "../src/caffe/net.ts";
import { readPrototxt } from "../src/caffe/prototxt.ts";
import { fuseBatchNorm } from "../src/quant/fuse.ts";
import { storedTensor } from "../src/quant/weights.ts";
import { outputChannelCount, quantKernels } from "../src/wasm/quant.ts";
import { channelLayout } from "../src/quant/channel_layout.ts";
import {
  batchNorm,
  batchNormScaleForward,
  blob,
  conv,
  convForward,
  deconv,
  deconvForward,
  innerProduct,
  innerProductForward,
  layer,
  maxRelativeError,
  net,
  random,
  relu,
  scale,
  type Tensor,
  tensor,
} from "./_builders.ts";

type Kind = "Convolution" | "Deconvolution" | "InnerProduct";

interface Case {
  kind: Kind;
  group: number;
  convBias: boolean;
  scaleBias: boolean;
  factor: number;
  eps?: number;
}

const CHANNELS_IN = 4;
const CHANNELS_OUT = 6;
const KERNEL = 3;

/** The weighted layer of a case (seeded). */
function weighted(kind: Kind, group: number, bias: boolean, next: () => number): Layer {
  const options = {
    numOutput: CHANNELS_OUT,
    channelsIn: CHANNELS_IN,
    kernel: KERNEL,
    group,
    bias,
    next,
  };
  if (kind === "Convolution") return conv("L", "data", "x", options);
  if (kind === "Deconvolution") return deconv("L", "data", "x", options);
  return innerProduct("L", "data", "x", { ...options, channelsIn: CHANNELS_IN * 5 * 5 });
}

/** The float64 forward pass of a weighted layer with the given float32 weights and bias. */
function forward(
  kind: Kind,
  input: Tensor,
  weights: Float32Array,
  bias: Float32Array | null,
  group: number,
) {
  if (kind === "Convolution") return convForward(input, weights, bias, CHANNELS_OUT, KERNEL, group);
  if (kind === "Deconvolution") {
    return deconvForward(input, weights, bias, CHANNELS_OUT, KERNEL, group);
  }
  return innerProductForward(input, weights, bias, CHANNELS_OUT);
}

/** Snapshot of a net for "not changed" checks: params as JSON and blob copies. */
function snapshot(target: Net): string {
  return JSON.stringify(target.layers.map((l) => ({
    params: l.params,
    blobs: l.blobs.map((b) => ({ shape: b.shape, data: [...b.data as Float32Array] })),
  })));
}

const cases: Case[] = [];
for (const kind of ["Convolution", "Deconvolution", "InnerProduct"] as Kind[]) {
  for (const group of kind === "InnerProduct" ? [1] : [1, 2]) {
    for (const convBias of [false, true]) {
      for (const scaleBias of [false, true]) {
        cases.push({ kind, group, convBias, scaleBias, factor: 999.982 });
      }
    }
  }
}
cases.push({ kind: "Convolution", group: 1, convBias: true, scaleBias: true, factor: 0 });
cases.push({
  kind: "Deconvolution",
  group: 2,
  convBias: false,
  scaleBias: true,
  factor: 1,
  eps: 1e-3,
});

for (const testCase of cases) {
  const { kind, group, convBias, scaleBias, factor, eps } = testCase;
  const name = `${kind} group ${group}, ${convBias ? "with" : "no"} layer bias, ` +
    `${scaleBias ? "with" : "no"} Scale bias, factor ${factor}${eps ? `, eps ${eps}` : ""}`;
  Deno.test(`fusion equals conv -> BN -> Scale: ${name}`, async () => {
    const next = random(7 + cases.indexOf(testCase));
    const first = weighted(kind, group, convBias, next);
    const bn = batchNorm("bn", "x", "x", CHANNELS_OUT, next, { factor, eps });
    const sc = scale("sc", "x", "x", CHANNELS_OUT, next, scaleBias);
    const input = net("data", [1, CHANNELS_IN, 5, 5], [first, bn, sc]);
    const before = snapshot(input);
    const { net: fused, composites } = await fuseBatchNorm(input);
    assert.deepEqual(composites, [{ layer: "L", batchNorm: "bn", scale: "sc" }]);
    assert.equal(fused.layers.length, 1);
    const result = fused.layers[0];
    assert.equal(result.name, "L");
    assert.equal(result.type, kind);
    assert.deepEqual(result.tops, ["x"]);
    const paramName = kind === "InnerProduct" ? "inner_product_param" : "convolution_param";
    assert.equal(result.param(paramName, "bias_term"), true);
    assert.deepEqual(result.blobs[0].shape, first.blobs[0].shape);
    assert.deepEqual(result.blobs[1].shape, [CHANNELS_OUT]);

    const image = tensor([CHANNELS_IN, 5, 5], () => next());
    const originalBias = convBias ? first.blobs[1].data as Float32Array : null;
    const plain = forward(kind, image, first.blobs[0].data as Float32Array, originalBias, group);
    const expected = batchNormScaleForward(plain, bn, sc, Math.fround(eps ?? 1e-5));
    const actual = forward(
      kind,
      image,
      result.blobs[0].data as Float32Array,
      result.blobs[1].data as Float32Array,
      group,
    );
    assert.ok(
      maxRelativeError(actual.data, expected.data) < 2e-5,
      `error ${maxRelativeError(actual.data, expected.data)}`,
    );
    assert.equal(snapshot(input), before, "the input net changed");
  });
}

Deno.test("fusion: non-adjacent, non-in-place composite writes the Scale's top at the first place", async () => {
  const next = random(3);
  const options = { numOutput: 4, channelsIn: 3, next };
  const input = net("data", [1, 3, 6, 6], [
    conv("conv1", "data", "c1", options),
    conv("conv2", "data", "c2", options),
    batchNorm("bn1", "c1", "b1", 4, next),
    relu("relu2", "c2", "c2"),
    scale("scale1", "b1", "s1", 4, next),
    layer("sum", "Eltwise", ["s1", "c2"], ["sum"]),
  ]);
  const { net: fused, composites } = await fuseBatchNorm(input);
  assert.deepEqual(composites, [{ layer: "conv1", batchNorm: "bn1", scale: "scale1" }]);
  assert.deepEqual(fused.layers.map((l) => l.name), ["conv1", "conv2", "relu2", "sum"]);
  assert.deepEqual(fused.layers[0].tops, ["s1"]);
  assert.deepEqual(fused.layers[0].bottoms, ["data"]);
  // untouched layers are the same objects
  assert.equal(fused.layers[1], input.layers[1]);
  assert.equal(fused.layers[3], input.layers[5]);
  assert.deepEqual(input.layers[0].tops, ["c1"]);
});

Deno.test("fusion: a blob read by another layer breaks the composite", async () => {
  const next = random(4);
  const options = { numOutput: 4, channelsIn: 3, next };
  const convOutputShared = net("data", [1, 3, 6, 6], [
    conv("conv1", "data", "c1", options),
    batchNorm("bn1", "c1", "b1", 4, next),
    relu("tap", "c1", "t"),
    scale("scale1", "b1", "s1", 4, next),
  ]);
  assert.deepEqual((await fuseBatchNorm(convOutputShared)).composites, []);
  const bnOutputShared = net("data", [1, 3, 6, 6], [
    conv("conv1", "data", "c1", options),
    batchNorm("bn1", "c1", "b1", 4, next),
    scale("scale1", "b1", "s1", 4, next),
    relu("tap", "b1", "t"),
  ]);
  const result = await fuseBatchNorm(bnOutputShared);
  assert.deepEqual(result.composites, []);
  assert.equal(result.net, bnOutputShared);
});

Deno.test("fusion: in-place readers of earlier values do not break the composite", async () => {
  // tap reads "x" after the Scale rewrote it in place: a later value, not the conv's output
  const next = random(5);
  const input = net("data", [1, 3, 6, 6], [
    conv("conv1", "data", "x", { numOutput: 4, channelsIn: 3, next }),
    batchNorm("bn1", "x", "x", 4, next),
    scale("scale1", "x", "x", 4, next),
    relu("relu1", "x", "x"),
    relu("tap", "x", "t"),
  ]);
  const { net: fused, composites } = await fuseBatchNorm(input);
  assert.equal(composites.length, 1);
  assert.deepEqual(fused.layers.map((l) => l.name), ["conv1", "relu1", "tap"]);
});

Deno.test("fusion: Scale with axis 2, two bottoms or a non-BatchNorm middle is not a composite", async () => {
  const next = random(6);
  const options = { numOutput: 4, channelsIn: 3, next };
  const axis2 = scale("scale1", "x", "x", 4, next);
  axis2.params.message("scale_param")!.set("axis", 2);
  const twoBottoms = layer("scale1", "Scale", ["x", "data"], ["x"], {});
  for (const last of [axis2, twoBottoms]) {
    const input = net("data", [1, 3, 6, 6], [
      conv("conv1", "data", "x", options),
      batchNorm("bn1", "x", "x", 4, next),
      last,
    ]);
    assert.deepEqual((await fuseBatchNorm(input)).composites, []);
  }
  const reluMiddle = net("data", [1, 3, 6, 6], [
    conv("conv1", "data", "x", options),
    relu("relu1", "x", "x"),
    scale("scale1", "x", "x", 4, next),
  ]);
  assert.deepEqual((await fuseBatchNorm(reluMiddle)).composites, []);
});

Deno.test("fusion: skip_fusion keeps the composite, even with use_global_stats: false", async () => {
  const next = random(8);
  const input = net("data", [1, 3, 6, 6], [
    conv("conv1", "data", "x", { numOutput: 4, channelsIn: 3, next }),
    batchNorm("bn1", "x", "x", 4, next, { useGlobalStats: false }),
    scale("scale1", "x", "x", 4, next),
  ]);
  const result = await fuseBatchNorm(input, { skipFusion: new Set(["conv1"]) });
  assert.deepEqual(result.composites, []);
  assert.deepEqual(result.net.layers.map((l) => l.name), ["conv1", "bn1", "scale1"]);
});

Deno.test("fusion: BN_NOT_GLOBAL_STATS names the BatchNorm; an explicit true is fused", async () => {
  const next = random(9);
  const build = (useGlobalStats: boolean) =>
    net("data", [1, 3, 6, 6], [
      conv("conv1", "data", "x", { numOutput: 4, channelsIn: 3, next }),
      batchNorm("bn1", "x", "x", 4, next, { useGlobalStats }),
      scale("scale1", "x", "x", 4, next),
    ]);
  await assert.rejects(
    () => fuseBatchNorm(build(false), { files: { model: "m.prototxt" } }),
    (error: unknown) => {
      assert.ok(error instanceof ConvertError);
      assert.equal(error.code, "BN_NOT_GLOBAL_STATS");
      assert.equal(error.layer, "bn1");
      assert.equal(error.file, "m.prototxt");
      return true;
    },
  );
  assert.equal((await fuseBatchNorm(build(true))).composites.length, 1);
});

Deno.test("fusion: a layer between that uses the Scale's top blocks fusion with a warning", async () => {
  const next = random(10);
  const input = net("data", [1, 3, 6, 6], [
    relu("relu0", "data", "s1"),
    conv("conv1", "data", "c1", { numOutput: 4, channelsIn: 3, next }),
    relu("reader", "s1", "r"),
    batchNorm("bn1", "c1", "b1", 4, next),
    scale("scale1", "b1", "s1", 4, next),
  ]);
  const result = await fuseBatchNorm(input);
  assert.deepEqual(result.composites, []);
  assert.equal(result.warnings.length, 1);
  assert.ok(result.warnings[0].includes("reader"), result.warnings[0]);
});

Deno.test("fusion: BatchNorm statistics that do not match the output channels are an error", async () => {
  const next = random(11);
  const input = net("data", [1, 3, 6, 6], [
    conv("conv1", "data", "x", { numOutput: 4, channelsIn: 3, next }),
    batchNorm("bn1", "x", "x", 5, next),
    scale("scale1", "x", "x", 4, next),
  ]);
  await assert.rejects(() => fuseBatchNorm(input), (error: unknown) => {
    assert.ok(error instanceof ConvertError);
    assert.equal(error.code, "WEIGHTS_SHAPE_MISMATCH");
    assert.equal(error.layer, "bn1");
    return true;
  });
});

Deno.test("fusion: a transposed InnerProduct ([K, N] weights) folds along axis 1", async () => {
  const next = random(12);
  const inputs = 10;
  const outputs = 3;
  const fc = layer("fc", "InnerProduct", ["data"], ["x"], {
    inner_product_param: { num_output: outputs, transpose: true },
  }, [blob([inputs, outputs], next), blob([outputs], next)]);
  const bn = batchNorm("bn", "x", "x", outputs, next);
  const sc = scale("sc", "x", "x", outputs, next);
  const { net: fused } = await fuseBatchNorm(net("data", [1, inputs], [fc, bn, sc]));
  const transposedForward = (weights: Float32Array, bias: Float32Array, x: Float64Array) => {
    const out = new Float64Array(outputs);
    for (let o = 0; o < outputs; o++) {
      out[o] = bias[o];
      for (let k = 0; k < inputs; k++) out[o] += weights[k * outputs + o] * x[k];
    }
    return { shape: [outputs, 1, 1] as [number, number, number], data: out };
  };
  const x = Float64Array.from({ length: inputs }, () => next());
  const expected = batchNormScaleForward(
    transposedForward(fc.blobs[0].data as Float32Array, fc.blobs[1].data as Float32Array, x),
    bn,
    sc,
    Math.fround(1e-5),
  );
  const [weights, bias] = fused.layers[0].blobs.map((b) => b.data as Float32Array);
  const actual = transposedForward(weights, bias, x);
  assert.ok(maxRelativeError(actual.data, expected.data) < 2e-5);
});

/** Round half to even. */
function rint(value: number): number {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (diff !== 0.5) return Math.round(value);
  return floor % 2 === 0 ? floor : floor + 1;
}

Deno.test("channelLayout of a layer: a transposed InnerProduct's output channel is axis 1", async () => {
  const next = random(13);
  const inputs = 5;
  const outputs = 3;
  const transposed = layer("fc", "InnerProduct", ["data"], ["x"], {
    inner_product_param: { num_output: outputs, transpose: true },
  }, [blob([inputs, outputs], next)]);
  const plain = layer("fc2", "InnerProduct", ["data"], ["y"], {
    inner_product_param: { num_output: outputs },
  }, [blob([outputs, inputs], next)]);
  const scaleW = Float32Array.from([0.01, 0.02, 0.04]);
  const kernels = await quantKernels();
  const cases: [Layer, (index: number) => number][] = [
    [transposed, (index) => index % outputs], // [K, N]: element (k, n) is output channel n
    [plain, (index) => Math.floor(index / inputs)], // [N, K]: element (n, k) is channel n
  ];
  for (const [weighted, channelOf] of cases) {
    const layout = channelLayout(weighted);
    assert.equal(outputChannelCount(layout), outputs, weighted.name);
    const weights = weighted.blobs[0].data as Float32Array;
    const weightsInt8 = new Int8Array(weights.length);
    assert.equal(
      kernels.quantizeToInt8(storedTensor(weighted.blobs[0], layout), scaleW, weightsInt8)
        .nonFinite,
      -1,
    );
    const expected = Array.from(
      weights,
      (w, i) => Math.min(127, Math.max(-128, rint(Math.fround(w / scaleW[channelOf(i)])))),
    );
    assert.deepEqual([...weightsInt8], expected, weighted.name);
  }
  // the same layout from the type, shape and transpose flag
  assert.deepEqual(
    channelLayout("InnerProduct", [inputs, outputs], 1, true),
    channelLayout(transposed),
  );
});

Deno.test("fusion: a net without weights (prototxt only) is left as it is", async () => {
  // makeRecord is public and takes any Net, e.g. one read from a prototxt alone
  const input = readPrototxt(`input: "data" input_shape { dim: 1 dim: 3 dim: 4 dim: 4 }
    layer { name: "conv1" type: "Convolution" bottom: "data" top: "x"
            convolution_param { num_output: 2 kernel_size: 1 } }
    layer { name: "bn1" type: "BatchNorm" bottom: "x" top: "x" }
    layer { name: "scale1" type: "Scale" bottom: "x" top: "x" }`);
  const result = await fuseBatchNorm(input);
  assert.deepEqual(result.composites, []);
  assert.equal(result.net, input);
});
