// Files Caffe refuses, malformed BatchNorm/Scale blobs, in-place quantized layers, simulator shape
// checks and resource limits (issue 15, items 9–13 and 16–18), and the messages of issue 16
// (items 5, 7, 8). Expected places are found in the test's own text; expected numbers are worked
// out here by hand.

import assert from "node:assert/strict";
import { readCaffemodel } from "../src/caffe/caffemodel_read.ts";
import { writeCaffemodel } from "../src/caffe/caffemodel_write.ts";
import { inspectNet, netWarnings } from "../src/caffe/inspect.ts";
import { loadNet } from "../src/caffe/model.ts";
import type { Blob } from "../src/caffe/net.ts";
import { readPrototxt } from "../src/caffe/prototxt.ts";
import { runNet } from "../src/engine/run.ts";
import type { ConvertError } from "../src/errors.ts";
import { LIMITS } from "../src/limits.ts";
import { convertInMemory } from "../src/quant/convert.ts";
import { fuseBatchNorm } from "../src/quant/fuse.ts";
import { makeRecord } from "../src/quant/make_record.ts";
import { nameAllocator } from "../src/quant/plan.ts";
import { batchNorm, blob, blobOf, deconv, layer, net, random, scale } from "./_builders.ts";
import { lengthField, stringField, tag } from "./_protobuf_bytes.ts";
import { runCli as cli } from "./_cli.ts";
import { checkError, placeOf } from "./_errors.ts";

// ---------------------------------------------------------------------------------------------
// Helpers

/** The prototxt `text` with the blobs of `blobs` (by layer name), as caffemodel bytes. */
function weightsFor(text: string, blobs: Record<string, Blob[]>): Uint8Array {
  const target = readPrototxt(text);
  for (const each of target.layers) each.blobs = blobs[each.name] ?? [];
  return writeCaffemodel(target);
}

/** A 1-D float blob of `values`. */
const vector = (values: number[]): Blob => blobOf([values.length], values);

const HEADER = 'input: "data"\ninput_shape { dim: 1 dim: 2 dim: 4 dim: 4 }\n';

/** One layer of prototxt text. */
function layerText(name: string, type: string, bottom: string, top: string, params = ""): string {
  return `layer { name: "${name}" type: "${type}" bottom: "${bottom}" top: "${top}" ${params} }\n`;
}

// ---------------------------------------------------------------------------------------------
// Item 9: files Caffe refuses

Deno.test("a prototxt mixing V1 `layers` and V2 `layer` is MIXED_LAYER_FORMATS at the second kind", () => {
  const text = HEADER + layerText("a", "ReLU", "data", "a") +
    'layers { name: "b" type: RELU bottom: "a" top: "b" }\n';
  assert.throws(
    () => readPrototxt(text, "net.prototxt"),
    (error) =>
      checkError(error, {
        code: "MIXED_LAYER_FORMATS",
        file: "net.prototxt",
        ...placeOf(text, "layers {"),
        parts: ["both legacy V1"],
      }),
  );
});

Deno.test("a caffemodel mixing V1 `layers` and V2 `layer` is MIXED_LAYER_FORMATS at the second", () => {
  const v2 = lengthField(100, stringField(1, "a"));
  const v1 = lengthField(2, stringField(4, "b"));
  assert.throws(
    () => readCaffemodel(new Uint8Array([...v2, ...v1]), "w.caffemodel"),
    (error) =>
      checkError(error, { code: "MIXED_LAYER_FORMATS", file: "w.caffemodel", offset: v2.length }),
  );
});

Deno.test("input_dim and input_shape that disagree, or miscounted, are INPUT_SHAPE_CONFLICT", () => {
  const disagree = 'input: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 8\ninput_dim: 8\n' +
    "input_shape { dim: 1 dim: 3 dim: 8 dim: 9 }\n";
  assert.throws(
    () => readPrototxt(disagree, "n.prototxt"),
    (error) =>
      checkError(error, {
        code: "INPUT_SHAPE_CONFLICT",
        file: "n.prototxt",
        ...placeOf(disagree, "input_shape"),
        parts: ["[1, 3, 8, 9]", "[1, 3, 8, 8]"],
      }),
  );
  // Both forms agreeing are accepted (Caffe uses input_shape).
  const agree = disagree.replace("dim: 9", "dim: 8");
  assert.equal(readPrototxt(agree).header.getAll("input_dim").length, 4);
  const threeDims = 'input: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 8\n';
  assert.throws(
    () => readPrototxt(threeDims, "n.prototxt"),
    (error) =>
      checkError(error, { code: "INPUT_SHAPE_CONFLICT", ...placeOf(threeDims, "input_dim") }),
  );
});

Deno.test("a Convolution bias blob of shape [2, 2] is WEIGHTS_SHAPE_MISMATCH (Caffe wants [N])", () => {
  const text = HEADER +
    layerText(
      "conv",
      "Convolution",
      "data",
      "c",
      "convolution_param { num_output: 4 kernel_size: 1 }",
    );
  const next = random(1);
  const weights = weightsFor(text, { conv: [blob([4, 2, 1, 1], next), blob([2, 2], next)] });
  assert.throws(
    () => loadNet(text, weights, { weights: "w.caffemodel" }),
    (error) =>
      checkError(error, {
        code: "WEIGHTS_SHAPE_MISMATCH",
        file: "w.caffemodel",
        layer: "conv",
        parts: ["[2, 2]", "[4]"],
      }),
  );
  // The same four values as [4] load.
  const good = weightsFor(text, { conv: [blob([4, 2, 1, 1], next), blob([4], next)] });
  assert.equal(loadNet(text, good).layers[0].blobs[1].shape.join(), "4");
});

Deno.test("group 0, a group not dividing num_output, stride/kernel/dilation 0: BAD_LAYER_PARAM at the field", () => {
  const cases: [params: string, field: string, part: string][] = [
    ["num_output: 4 kernel_size: 3 group: 0", "group", "group is 0"],
    ["num_output: 4 kernel_size: 3 group: 3", "group", "not a multiple of group 3"],
    ["num_output: 4 kernel_size: 3 stride: 0", "stride", "stride must be > 0"],
    ["num_output: 4 kernel_size: 3 stride_h: 0 stride_w: 1", "stride_h", "stride must be > 0"],
    ["num_output: 4 kernel_size: 0", "kernel_size", "kernel dimension must be > 0"],
    ["num_output: 4 kernel_h: 3 kernel_w: 0", "kernel_w", "kernel dimension must be > 0"],
    ["num_output: 4 kernel_size: 3 dilation: 0", "dilation", "dilation must be > 0"],
    ["num_output: 4 kernel_size: 3 kernel_h: 3 kernel_w: 3", "kernel_h", "not both"],
  ];
  for (const [params, field, part] of cases) {
    for (const type of ["Convolution", "Deconvolution"]) {
      const text = HEADER + layerText("c", type, "data", "c", `convolution_param { ${params} }`);
      const at = text.indexOf("convolution_param") + `convolution_param { ${params}`.indexOf(field);
      const line = text.slice(0, at).split("\n").length;
      const column = at - text.lastIndexOf("\n", at - 1);
      assert.throws(
        () => readPrototxt(text, "n.prototxt"),
        (error) =>
          checkError(error, {
            code: "BAD_LAYER_PARAM",
            file: "n.prototxt",
            line,
            column,
            layer: "c",
            parts: [part],
          }),
        `${type} ${params}`,
      );
    }
  }
});

Deno.test("Pooling: stride 0, kernel 0, pad not below the kernel, global with a kernel: BAD_LAYER_PARAM", () => {
  const cases: [params: string, field: string, part: string][] = [
    ["pool: AVE kernel_size: 2 stride: 0", "stride", "stride must be > 0"],
    ["pool: MAX kernel_size: 0", "kernel_size", "kernel dimension must be > 0"],
    ["pool: MAX kernel_size: 2 pad: 2", "pad", "pad 2 must be smaller than the kernel"],
    ["pool: AVE global_pooling: true kernel_size: 2", "kernel_size", "takes no kernel"],
    ["pool: MAX kernel_h: 2", "kernel_h", "together"],
  ];
  for (const [params, field, part] of cases) {
    const text = HEADER + layerText("p", "Pooling", "data", "p", `pooling_param { ${params} }`);
    const start = text.indexOf("pooling_param");
    assert.throws(
      () => readPrototxt(text, "n.prototxt"),
      (error) =>
        checkError(error, {
          code: "BAD_LAYER_PARAM",
          column: start + `pooling_param { ${params}`.indexOf(field) -
            text.lastIndexOf("\n", start),
          layer: "p",
          parts: [part],
        }),
      params,
    );
  }
});

Deno.test("a negative pad is TEXT_OUT_OF_RANGE at the value (pad is uint32, as in Caffe's schema)", () => {
  const text = HEADER +
    layerText(
      "c",
      "Convolution",
      "data",
      "c",
      "convolution_param { num_output: 2 kernel_size: 1 pad: -1 }",
    );
  assert.throws(
    () => readPrototxt(text, "n.prototxt"),
    (error) => checkError(error, { code: "TEXT_OUT_OF_RANGE", ...placeOf(text, "-1") }),
  );
});

Deno.test("stride 0 in a net made in code: the simulator says BAD_LAYER_PARAM, not 'Infinity bytes'", async () => {
  const next = random(2);
  const conv = layer("c", "Convolution", ["data"], ["c"], {
    convolution_param: { num_output: 1, kernel_size: 1, stride: 0 },
  }, [blob([1, 2, 1, 1], next), blob([1], next)]);
  await assert.rejects(
    runNet(net("data", [1, 2, 4, 4], [conv])),
    (error) => checkError(error, { code: "BAD_LAYER_PARAM", layer: "c", parts: ["stride"] }),
  );
});

// ---------------------------------------------------------------------------------------------
// Items 10 and 11: BatchNorm and Scale blobs, Deconvolution groups

const COMPOSITE = HEADER +
  layerText(
    "conv",
    "Convolution",
    "data",
    "c",
    "convolution_param { num_output: 2 kernel_size: 1 }",
  ) +
  layerText("bn", "BatchNorm", "c", "c") +
  layerText("sc", "Scale", "c", "c", "scale_param { bias_term: true }");

/** The composite's blobs, with `changes` applied. */
function compositeBlobs(changes: Record<string, Blob[]> = {}): Record<string, Blob[]> {
  return {
    conv: [blobOf([2, 2, 1, 1], [1, 2, 3, 4]), vector([0.5, -0.5])],
    bn: [vector([0.1, 0.2]), vector([1, 4]), vector([1])],
    sc: [vector([1, 2]), vector([0, 1])],
    ...changes,
  };
}

Deno.test("BatchNorm with 4 blobs or an empty factor, a Scale with a β it has no bias_term for: WEIGHTS_SHAPE_MISMATCH", () => {
  const cases: [changes: Record<string, Blob[]>, text: string, layer: string, part: string][] = [
    [{ bn: [vector([0, 0]), vector([1, 1]), vector([1]), vector([1])] }, COMPOSITE, "bn", "has 4"],
    [{ bn: [vector([0, 0]), vector([1, 1]), vector([])] }, COMPOSITE, "bn", "one value"],
    [{ bn: [vector([0, 0]), vector([1, 1, 1]), vector([1])] }, COMPOSITE, "bn", "[3]"],
    [{}, COMPOSITE.replace("bias_term: true", "bias_term: false"), "sc", "bias_term: false"],
  ];
  for (const [changes, text, name, part] of cases) {
    const weights = weightsFor(text, compositeBlobs(changes));
    assert.throws(
      () => loadNet(text, weights, { weights: "w.caffemodel" }),
      (error) =>
        checkError(error, {
          code: "WEIGHTS_SHAPE_MISMATCH",
          file: "w.caffemodel",
          layer: name,
          parts: [part],
        }),
      `${name}: ${part}`,
    );
  }
});

Deno.test("a BatchNorm variance with variance/factor + eps <= 0 is BN_BAD_VARIANCE at its channel", async () => {
  const record =
    'record { key: "conv" value { scale_d: 0.1 offset_d: 0 scale_w: 0.1 offset_w: 0 } }';
  // Channel 1: variance -2 with factor 2 gives -1 + 1e-5 < 0; channel 0 is fine.
  const blobs = compositeBlobs({ bn: [vector([0, 0]), vector([1, -2]), vector([2])] });
  await assert.rejects(
    convertInMemory({
      model: COMPOSITE,
      weights: weightsFor(COMPOSITE, blobs),
      record,
      files: { weights: "w.caffemodel" },
    }),
    (error) =>
      checkError(error, {
        code: "BN_BAD_VARIANCE",
        layer: "bn",
        file: "w.caffemodel",
        parts: ["channel 1", "-2/2"],
      }),
  );
  // variance -eps exactly (factor 1): the sum is 0, refused too; eps itself is float32.
  const eps = Math.fround(1e-5);
  const zero = compositeBlobs({ bn: [vector([0, 0]), vector([-eps, 1]), vector([1])] });
  await assert.rejects(
    convertInMemory({ model: COMPOSITE, weights: weightsFor(COMPOSITE, zero), record }),
    (error) => checkError(error, { code: "BN_BAD_VARIANCE", parts: ["channel 0"] }),
  );
});

Deno.test("Deconvolution + BN + Scale whose group does not divide the input channels: typed, never RangeError", async () => {
  const next = random(5);
  // Weights [3, 1, 3, 3] with group 2: C_in = 3 is not a multiple of 2 (num_output 2 is).
  const bad = deconv("up", "data", "u", { numOutput: 2, channelsIn: 3, group: 2, next });
  bad.blobs[0] = blob([3, 1, 3, 3], next);
  const built = net("data", [1, 3, 4, 4], [
    bad,
    batchNorm("bn", "u", "u", 2, next),
    scale("sc", "u", "u", 2, next),
  ]);
  await assert.rejects(
    fuseBatchNorm(built, { files: { weights: "w.caffemodel" } }),
    (error) =>
      checkError(error, { code: "WEIGHTS_SHAPE_MISMATCH", layer: "up", parts: ["group 2"] }),
  );
  const text = HEADER.replace("dim: 2", "dim: 3") +
    layerText(
      "up",
      "Deconvolution",
      "data",
      "u",
      "convolution_param { num_output: 2 kernel_size: 3 group: 2 }",
    );
  assert.throws(
    () => loadNet(text, weightsFor(text, { up: bad.blobs })),
    (error) => checkError(error, { code: "WEIGHTS_SHAPE_MISMATCH", layer: "up" }),
  );
});

// ---------------------------------------------------------------------------------------------
// Item 12: in-place quantized layers

Deno.test("an in-place Convolution or AVE Pooling is not quantizable: RECORD_NOT_QUANTIZABLE, makeRecord skips it", async () => {
  const text = HEADER +
    layerText(
      "conv",
      "Convolution",
      "data",
      "data",
      "convolution_param { num_output: 2 kernel_size: 1 }",
    ) +
    layerText("pool", "Pooling", "data", "data", "pooling_param { pool: AVE kernel_size: 1 }") +
    layerText(
      "conv2",
      "Convolution",
      "data",
      "out",
      "convolution_param { num_output: 2 kernel_size: 1 }",
    );
  const next = random(7);
  const weights = weightsFor(text, {
    conv: [blob([2, 2, 1, 1], next), blob([2], next)],
    conv2: [blob([2, 2, 1, 1], next), blob([2], next)],
  });
  const factors = "value { scale_d: 0.1 offset_d: 0 scale_w: 0.1 offset_w: 0 }";
  for (const name of ["conv", "pool"]) {
    const record = `record { key: "${name}" ${factors} }`;
    await assert.rejects(
      convertInMemory({ model: text, weights, record, files: { record: "r.txt" } }),
      (error) =>
        checkError(error, {
          code: "RECORD_NOT_QUANTIZABLE",
          file: "r.txt",
          layer: name,
          parts: ["in place"],
        }),
    );
  }
  const loaded = loadNet(text, weights);
  const record = await makeRecord(loaded);
  assert.ok(record.includes('"conv2"') && !record.includes('"conv"') && !record.includes('"pool"'));
  // Its record converts, and both outputs read back and run.
  const { files } = await convertInMemory({ model: text, weights, record });
  for (
    const [model, bytes] of [
      [files.fakeQuantModel, files.fakeQuantWeights],
      [files.deployModel, files.deployWeights],
    ] as const
  ) {
    const output = loadNet(model, bytes);
    assert.equal((await runNet(output, { seed: 1 })).outputs.get("out")?.shape.join(), "1,2,4,4");
  }
  const summary = inspectNet(loaded).layers;
  assert.deepEqual(summary.map((each) => each.quantizable), [false, false, true]);
});

// ---------------------------------------------------------------------------------------------
// Item 13: simulator shape checks

Deno.test("InnerProduct: an input whose row count differs from the weights' K is BAD_INPUT naming the layer", async () => {
  const next = random(9);
  // Weights [5, 16]: K = 16. An input [2, 2, 4, 4] has 32 values per row (old code: N = 10).
  const ip = layer("fc", "InnerProduct", ["data"], ["fc"], {
    inner_product_param: { num_output: 5 },
  }, [blob([5, 16], next), blob([5], next)]);
  await assert.rejects(
    runNet(net("data", [2, 2, 4, 4], [ip])),
    (error) => checkError(error, { code: "BAD_INPUT", layer: "fc", parts: ["32", "16"] }),
  );
  // [2, 1, 4, 4]: 16 values per row fit.
  const fits = await runNet(net("data", [2, 1, 4, 4], [ip]));
  assert.equal(fits.outputs.get("fc")?.shape.join(), "2,5");
});

Deno.test("simulator: a layer with no bottom, an Eltwise of one, a Flatten ending before it starts: BAD_INPUT", async () => {
  const header = 'input: "data"\ninput_shape { dim: 2 dim: 3 dim: 4 }\n';
  // Concat, Slice, Eltwise, Scale and Bias without bottoms threw a TypeError before.
  for (const type of ["Concat", "Slice", "Eltwise", "Scale", "Bias"]) {
    const text = header + `layer { name: "x" type: "${type}" top: "y" }\n`;
    await assert.rejects(
      runNet(readPrototxt(text)),
      (error) => checkError(error, { code: "BAD_INPUT", layer: "x", parts: ["no bottom"] }),
      type,
    );
  }
  const one = header + 'layer { name: "e" type: "Eltwise" bottom: "data" top: "y" }\n';
  await assert.rejects(
    runNet(readPrototxt(one)),
    (error) => checkError(error, { code: "BAD_INPUT", layer: "e", parts: ["at least 2"] }),
  );
  // axis 2, end_axis 0 of [2, 3, 4] gave the shape [2, 3, 1, 3, 4] for 24 values.
  const flatten = header +
    'layer { name: "f" type: "Flatten" bottom: "data" top: "y" flatten_param { axis: 2 end_axis: 0 } }\n';
  await assert.rejects(
    runNet(readPrototxt(flatten)),
    (error) => checkError(error, { code: "BAD_INPUT", layer: "f", parts: ["end_axis 0"] }),
  );
});

Deno.test("simulator: a stride far beyond the input gives the one window Caffe computes, not a crash", async () => {
  const next = random(11);
  const input = Float32Array.from({ length: 25 }, () => next());
  const weights = Float32Array.from({ length: 9 }, () => next());
  // 3×3 kernel over a 5×5 input, stride 2^31 - 1: one output, the top-left window's dot product.
  let expected = 0;
  for (let y = 0; y < 3; y++) {
    for (let x = 0; x < 3; x++) expected += Math.fround(input[y * 5 + x]) * weights[y * 3 + x];
  }
  const conv = layer("c", "Convolution", ["data"], ["c"], {
    convolution_param: { num_output: 1, kernel_size: 3, stride: 2 ** 31 - 1, bias_term: false },
  }, [{ shape: [1, 1, 3, 3], data: weights }]);
  const result = await runNet(net("data", [1, 1, 5, 5], [conv]), {
    inputs: new Map([["data", { shape: [1, 1, 5, 5], data: input }]]),
  });
  const output = result.outputs.get("c")!;
  assert.deepEqual(output.shape, [1, 1, 1, 1]);
  assert.ok(Math.abs(output.data[0] - expected) < 1e-5, `${output.data[0]} vs ${expected}`);
});

// ---------------------------------------------------------------------------------------------
// Items 16–18: resources

Deno.test("new names from one base take linear lookups (33,000 `_raw` names)", () => {
  let lookups = 0;
  class CountingSet extends Set<string> {
    override has(value: string): boolean {
      lookups++;
      return super.has(value);
    }
  }
  const free = nameAllocator(new CountingSet(["x_raw"]));
  const names = Array.from({ length: 33_000 }, () => free("x_raw"));
  assert.equal(new Set(names).size, 33_000);
  assert.deepEqual(names.slice(0, 3), ["x_raw_1", "x_raw_2", "x_raw_3"]);
  // Each name: the base, then one suffix; the quadratic search made ~5.4e8 lookups.
  assert.ok(lookups <= 2 * 33_000, `${lookups} lookups`);
});

Deno.test("caffemodel: a message with more fields than the limit fails at the first one too many", () => {
  // One layer holding LIMITS.fieldsPerMessage + 1 empty unknown fields (field 999, length 0).
  const empty = [...lengthField(999, [])];
  const count = LIMITS.fieldsPerMessage + 1;
  const payload = new Uint8Array(empty.length * count);
  for (let i = 0; i < count; i++) payload.set(empty, i * empty.length);
  const head = tag(100, 2); // a V2 layer; its length follows
  const length: number[] = [];
  for (let rest = payload.length;; rest = Math.floor(rest / 128)) {
    if (rest < 128) {
      length.push(rest);
      break;
    }
    length.push((rest & 0x7f) | 0x80);
  }
  const bytes = new Uint8Array([...head, ...length, ...payload]);
  const start = head.length + length.length;
  assert.throws(
    () => readCaffemodel(bytes, "w.caffemodel"),
    (error) =>
      checkError(error, {
        code: "LIMIT_EXCEEDED",
        file: "w.caffemodel",
        offset: start + LIMITS.fieldsPerMessage * empty.length,
      }),
  );
});

Deno.test("simulator: a tensor of 4 GiB or more is LIMIT_EXCEEDED naming the blob, before it is allocated", async () => {
  // 32768 · 32768 float32 values are 4 GiB: the input itself cannot be made.
  await assert.rejects(
    runNet(net("data", [1, 1, 32768, 32768], [])),
    (error) =>
      checkError(error, { code: "LIMIT_EXCEEDED", parts: ['"data"', "[1, 1, 32768, 32768]"] }),
  );
  // A 1×1 deconvolution with stride 32768 of a 3×3 input gives 65537×65537 (4.3e9 values).
  const next = random(4);
  const wide = layer("wide", "Deconvolution", ["data"], ["big"], {
    convolution_param: { num_output: 1, kernel_size: 1, stride: 32768, bias_term: false },
  }, [blob([1, 1, 1, 1], next)]);
  await assert.rejects(
    runNet(net("data", [1, 1, 3, 3], [wide])),
    (error) =>
      checkError(error, { code: "LIMIT_EXCEEDED", layer: "wide", parts: ['"big"', "65537"] }),
  );
});

// ---------------------------------------------------------------------------------------------
// Issue 16, items 5, 7, 8: messages that point at the fix

Deno.test("swapped model and weights files, or a record as weights, are named as such", () => {
  const text = HEADER + layerText("r", "ReLU", "data", "r");
  const weights = weightsFor(text, {});
  // The caffemodel decoded as text where the prototxt belongs, the prototxt as the weights.
  const asText = new TextDecoder().decode(weights);
  assert.throws(
    () =>
      loadNet(asText, new TextEncoder().encode(text), {
        model: "w.caffemodel",
        weights: "n.prototxt",
      }),
    (error) =>
      checkError(error, {
        code: (error as ConvertError).code,
        parts: ["are `model_file` and `weights_file` swapped?"],
      }),
  );
  // A prototxt where the caffemodel belongs.
  assert.throws(
    () => loadNet(text, new TextEncoder().encode(text), { weights: "n2.prototxt" }),
    (error) =>
      checkError(error, {
        code: (error as ConvertError).code,
        parts: ["n2.prototxt looks like a prototxt", "swapped?"],
      }),
  );
  // A record file where the caffemodel belongs.
  const record = 'record {\n  key: "r"\n  value { scale_d: 1 }\n}\n';
  assert.throws(
    () => loadNet(text, new TextEncoder().encode(record), { weights: "r.txt" }),
    (error) =>
      checkError(error, {
        code: (error as ConvertError).code,
        parts: ["r.txt looks like a record file", "`weights_file` and `record_file` swapped?"],
      }) && !(error as ConvertError).message.includes("truncated download"),
  );
});

Deno.test("a BatchNorm with use_global_stats: false: makeRecord names the file, inspect and run warn", async () => {
  const text = COMPOSITE.replace(
    'type: "BatchNorm" bottom: "c" top: "c"',
    'type: "BatchNorm" bottom: "c" top: "c" batch_norm_param { use_global_stats: false }',
  );
  const loaded = loadNet(text, weightsFor(text, compositeBlobs()), { model: "n.prototxt" });
  await assert.rejects(
    makeRecord(loaded, { files: { model: "n.prototxt", weights: "w.caffemodel" } }),
    (error) =>
      checkError(error, {
        code: "BN_NOT_GLOBAL_STATS",
        file: "n.prototxt",
        line: placeOf(text, 'name: "bn"').line,
      }),
  );
  const warnings = netWarnings(loaded);
  assert.equal(warnings.length, 1);
  assert.ok(warnings[0].includes('"bn"') && warnings[0].includes("use_global_stats: false"));
  assert.deepEqual(inspectNet(loaded).warnings, warnings);
  assert.deepEqual(netWarnings(loadNet(COMPOSITE, weightsFor(COMPOSITE, compositeBlobs()))), []);
});

Deno.test("a truncated caffemodel says where the file ends and how long it must be", () => {
  const text = COMPOSITE;
  const whole = weightsFor(text, compositeBlobs());
  const cut = whole.subarray(0, whole.length - 7);
  assert.throws(
    () => readCaffemodel(cut, "w.caffemodel"),
    (error) =>
      checkError(error, {
        code: "BINARY_TRUNCATED",
        parts: [
          `the file ends at ${cut.length} bytes but needs at least`,
          "truncated download?",
        ],
      }),
  );
  // The last layer's length field promises the whole file: at least `whole.length` bytes.
  const error = (() => {
    try {
      readCaffemodel(cut);
    } catch (error) {
      return error as ConvertError;
    }
  })()!;
  const needed = Number(/needs at least (\d+)/.exec(error.message)![1]);
  assert.equal(needed, whole.length);
});

Deno.test("CLI: record names the prototxt of a BatchNorm with use_global_stats: false; run and inspect warn", async () => {
  const text = COMPOSITE.replace(
    'type: "BatchNorm" bottom: "c" top: "c"',
    'type: "BatchNorm" bottom: "c" top: "c" batch_norm_param { use_global_stats: false }',
  );
  const dir = await Deno.makeTempDir();
  try {
    const model = `${dir}/n.prototxt`;
    const weights = `${dir}/w.caffemodel`;
    await Deno.writeTextFile(model, text);
    await Deno.writeFile(weights, weightsFor(text, compositeBlobs()));
    const { line } = placeOf(text, 'name: "bn"');
    for (const extra of [[], ["--calibrate", "1"]]) {
      const record = await cli("record", model, weights, ...extra);
      assert.equal(record.code, 2, record.err);
      assert.ok(
        record.err.includes(`error[BN_NOT_GLOBAL_STATS] ${model}:${line}:`),
        `${extra.join(" ")}: ${record.err}`,
      );
    }
    const inspected = await cli("inspect", model, weights);
    assert.equal(inspected.code, 0, inspected.err);
    assert.match(inspected.out, /warning: BatchNorm "bn" .*use_global_stats: false/);
    const ran = await cli("run", model, weights, "--out", `${dir}/out`);
    assert.equal(ran.code, 0, ran.err);
    assert.match(ran.err, /warning: BatchNorm "bn" .*use_global_stats: false/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
