// compareNets and its text / HTML forms, on small nets whose agreement is known in closed form.

import assert from "node:assert/strict";
import type { Net } from "../src/caffe/net.ts";
import { readPrototxt } from "../src/caffe/prototxt.ts";
import { compareNets, layerSensitivity } from "../src/engine/compare.ts";
import { evaluateAccuracy } from "../src/engine/evaluate.ts";
import { compareReportHtml, formatCompareTable } from "../src/engine/report.ts";
import { ConvertError } from "../src/errors.ts";
import { runNet, type Tensor } from "../src/engine/run.ts";

/** data [2, 5] -> y = scale * data (Power) -> prob (Softmax). */
function scalingNet(scale: number, topName = "y"): Net {
  return readPrototxt(`
    input: "data" input_shape { dim: 2 dim: 5 }
    layer { name: "lin" type: "Power" bottom: "data" top: "${topName}" power_param { scale: ${scale} } }
    layer { name: "prob" type: "Softmax" bottom: "${topName}" top: "prob" }
  `);
}

function row(report: Awaited<ReturnType<typeof compareNets>>, blob: string) {
  const found = report.rows.find((entry) => entry.blob === blob);
  assert.ok(found, `no row for ${blob}`);
  return found;
}

Deno.test("compareNets: a net against itself agrees perfectly, rows in layer order", async () => {
  const net = scalingNet(3);
  const report = await compareNets(net, net, { samples: 3, seed: 11 });
  assert.equal(report.samples, 3);
  assert.deepEqual(report.rows.map((entry) => entry.blob), ["data", "y", "prob"]);
  assert.deepEqual(report.rows.map((entry) => entry.layer), ["data", "lin", "prob"]);
  for (const entry of report.rows) {
    assert.ok(Math.abs(entry.cosine - 1) < 1e-12, `${entry.blob} cosine ${entry.cosine}`);
    assert.equal(entry.maxAbsError, 0);
    assert.equal(entry.relativeL2, 0);
    assert.equal(entry.flagged, false);
  }
  assert.equal(row(report, "prob").top1Agreement, 1);
  assert.equal(row(report, "y").top1Agreement, undefined);
  assert.deepEqual(report.worst, []);
});

Deno.test("compareNets: y against -y has cosine -1, relative L2 2, no top-1 agreement", async () => {
  const data: Tensor = {
    shape: [2, 5],
    data: new Float32Array([0.5, -1, 0.25, 2, 0, -0.75, 1.5, 0.1, -2.5, 0.3]),
  };
  const report = await compareNets(scalingNet(1), scalingNet(-1), {
    inputs: new Map([["data", data]]),
  });
  assert.equal(report.samples, 1);
  assert.equal(report.seed, undefined);
  const y = row(report, "y");
  assert.ok(Math.abs(y.cosine + 1) < 1e-12);
  assert.equal(y.maxAbsError, 5); // 2 * max |x| = 2 * 2.5
  assert.ok(Math.abs(y.relativeL2 - 2) < 1e-12);
  assert.equal(y.flagged, true);
  // Rows' arg-max of x is the arg-min of -x: [3] vs [1], [6] vs [8].
  assert.equal(row(report, "prob").top1Agreement, 0);
  assert.equal(row(report, "data").flagged, false);
  assert.deepEqual(report.worst[0], "lin");
});

Deno.test("compareNets: samples use seed + i and aggregate the max error over samples", async () => {
  const report = await compareNets(scalingNet(1), scalingNet(-1), { samples: 2, seed: 5 });
  let largest = 0;
  for (const seed of [5, 6]) {
    const inputs = (await runNet(scalingNet(1), { seed, keepAll: true })).blobs.get("data")!;
    for (const value of inputs.data) largest = Math.max(largest, 2 * Math.abs(value));
  }
  assert.equal(row(report, "y").maxAbsError, largest);
  const single = await compareNets(scalingNet(1), scalingNet(-1), { samples: 1, seed: 6 });
  assert.ok(row(single, "y").maxAbsError <= largest);
});

/** A 1x1 convolution "c" (weight 1, no bias) writing "y", then a ReLU in place on "y". */
const FLOAT_CONV_RELU = `
  input: "data" input_shape { dim: 1 dim: 1 dim: 1 dim: 4 }
  layer { name: "c" type: "Convolution" bottom: "data" top: "y"
    convolution_param { num_output: 1 kernel_size: 1 bias_term: false } }
  layer { name: "r" type: "ReLU" bottom: "y" top: "y" }
`;

/**
 * The fake-quant (or deploy) form of {@linkcode FLOAT_CONV_RELU}: Quant with S = 4 (scale_d
 * 0.25), offset 0; scale_w 1 so the weight stays 1; DeQuant deq = 0.25 * 1.
 */
function quantizedConvRelu(deploy: boolean): Net {
  const net = readPrototxt(`
    input: "data" input_shape { dim: 1 dim: 1 dim: 1 dim: 4 }
    layer { name: "c_quant_layer" type: "Quant" bottom: "data" top: "c_quant_layer"
      quant_param { scale: 4 offset: "\\000" with_offset: true object_layer: "c" } }
    layer { name: "c" type: "Convolution" bottom: "c_quant_layer" top: "y_raw"
      convolution_param { num_output: 1 kernel_size: 1 bias_term: false } }
    layer { name: "c_dequant_layer" type: "DeQuant" bottom: "y_raw" top: "y" }
    layer { name: "r" type: "ReLU" bottom: "y" top: "y" }
  `);
  net.layers[1].blobs = [{
    shape: [1, 1, 1, 1],
    data: deploy ? new Int8Array([1]) : new Float32Array([1]),
  }];
  const deq = 0.25;
  net.layers[2].blobs = deploy
    ? [{
      shape: [1],
      data: new BigUint64Array([BigInt(new Uint32Array(new Float32Array([deq]).buffer)[0])]),
    }]
    : [{ shape: [1], data: new Float32Array([deq]) }];
  return net;
}

/** The input of the conv+ReLU nets, and its fake-quantized form at scale_d 0.25 by hand. */
const X = [0.3, -0.6, 0.9, 0.1];
const X_HAT = [0.25, -0.5, 1, 0]; // rint(4x) / 4: 1.2 -> 1, -2.4 -> -2, 3.6 -> 4, 0.4 -> 0

/** ||x - x^|| / ||x|| in float64, by hand from X and X_HAT. */
function relativeL2ByHand(a: number[], b: number[]): number {
  const diff = a.reduce((sum, value, i) => sum + (value - b[i]) ** 2, 0);
  return Math.sqrt(diff / a.reduce((sum, value) => sum + value ** 2, 0));
}

Deno.test("compareNets: a quantized layer followed by an in-place ReLU is measured at its DeQuant, named by the quantized layer", async () => {
  const inputs = new Map([["data", { shape: [1, 1, 1, 4], data: new Float32Array(X) }]]);
  const float = readPrototxt(FLOAT_CONV_RELU);
  float.layers[0].blobs = [{ shape: [1, 1, 1, 1], data: new Float32Array([1]) }];
  const expected = relativeL2ByHand(X, X_HAT); // 0.15997
  for (const lockstep of [true, false]) {
    const report = await compareNets(float, quantizedConvRelu(false), { inputs, lockstep });
    const quantized = report.rows.filter((entry) => entry.quantized);
    assert.equal(quantized.length, 1, `lockstep ${lockstep}: one row per quantized layer`);
    assert.equal(quantized[0].layer, "c");
    assert.equal(quantized[0].type, "Convolution");
    assert.equal(quantized[0].blob, "y");
    assert.ok(
      Math.abs(quantized[0].relativeL2 - expected) < 1e-6,
      `lockstep ${lockstep}: rel L2 ${quantized[0].relativeL2}, by hand ${expected}`,
    );
    assert.equal(quantized[0].flagged, true); // > 0.1
    // Running freely the ReLU's rel L2 is 0.157 (> 0.1): flagged after the conv's 0.160.
    assert.deepEqual(report.worst, lockstep ? ["c"] : ["c", "r"]);
    assert.equal(report.firstFlagged, "c");
    const relu = report.rows.find((entry) => entry.layer === "r")!;
    // In lockstep the ReLU reads A's input: it adds no error itself. Running freely it carries
    // the conv's error through max(0, .): [0.3, 0, 0.9, 0.1] vs [0.25, 0, 1, 0].
    const reluExpected = lockstep ? 0 : relativeL2ByHand([0.3, 0, 0.9, 0.1], [0.25, 0, 1, 0]);
    assert.ok(Math.abs(relu.relativeL2 - reluExpected) < 1e-6, `relu ${relu.relativeL2}`);
    assert.deepEqual(report.sensitivity.map((entry) => entry.layer), ["c"]);
    assert.ok(Math.abs(report.sensitivity[0].relativeL2 - expected) < 1e-6);
  }
  const sensitivity = await layerSensitivity(float, quantizedConvRelu(false), { inputs });
  assert.equal(sensitivity.length, 1);
  assert.ok(Math.abs(sensitivity[0].cosine - cosineByHand(X, X_HAT)) < 1e-6);
});

/** Cosine similarity in float64, by hand. */
function cosineByHand(a: number[], b: number[]): number {
  const dot = a.reduce((sum, value, i) => sum + value * b[i], 0);
  const norm = (v: number[]) => Math.sqrt(v.reduce((sum, value) => sum + value ** 2, 0));
  return dot / (norm(a) * norm(b));
}

Deno.test("compareNets: fake-quant vs deploy rows pair the DeQuant outputs; integer values are left out", async () => {
  const report = await compareNets(quantizedConvRelu(false), quantizedConvRelu(true), {
    samples: 2,
    lockstep: true,
  });
  assert.deepEqual(report.rows.map((entry) => [entry.layer, entry.blob]), [
    ["data", "data"],
    ["c", "y"],
    ["r", "y"],
  ]);
  assert.equal(report.rows[1].quantized, true);
  assert.ok(report.rows[1].relativeL2 < 1e-6, JSON.stringify(report.rows[1]));
  assert.deepEqual(report.sensitivity, []); // quantized in both nets
});

Deno.test("compareNets: different shapes are listed with a note, not compared", async () => {
  const reshaped = readPrototxt(`
    input: "data" input_shape { dim: 2 dim: 5 }
    layer { name: "lin" type: "Reshape" bottom: "data" top: "y" reshape_param { shape { dim: 10 } } }
  `);
  const report = await compareNets(scalingNet(1), reshaped, { samples: 1 });
  assert.match(row(report, "y").note ?? "", /shape \[2, 5\] in A, \[10\] in B/);
  assert.equal(row(report, "y").flagged, false);
  assert.equal(report.rows.some((entry) => entry.blob === "prob"), false);
});

Deno.test("compareNets: nets sharing no layer output are a NOTHING_TO_COMPARE error", async () => {
  const other = readPrototxt(`
    input: "image" input_shape { dim: 2 dim: 5 }
    layer { name: "other" type: "Power" bottom: "image" top: "z" }
  `);
  await assert.rejects(
    () => compareNets(scalingNet(1), other),
    (error) => error instanceof ConvertError && error.code === "NOTHING_TO_COMPARE",
  );
});

Deno.test("formatCompareTable and compareReportHtml: the rows, flags and an inline SVG, no external assets", async () => {
  const report = await compareNets(scalingNet(1, "a<b&c"), scalingNet(-1, "a<b&c"), { samples: 1 });
  const labels = { a: "float.prototxt", b: "neg<ated>.prototxt" };
  const table = formatCompareTable(report, labels);
  const lines = table.trimEnd().split("\n");
  assert.deepEqual(lines.slice(0, 2), ["A: float.prototxt", "B: neg<ated>.prototxt"]);
  assert.match(lines[2], /^1 sample\(s\) of generated inputs .*seed 0\), free-running/);
  assert.match(lines[2], /flagged: cosine < 0\.99 or rel L2 > 0\.1$/);
  assert.match(lines[3], /^#\s+layer\s+blob\s+shape\s+cosine\s+max\|err\|\s+rel L2\s+SQNR\s+flag$/);
  const flaggedLine = lines.find((line) => line.includes("a<b&c"))!;
  assert.match(flaggedLine, /^2\s+lin \(Power\)\s+a<b&c\s+\[2, 5\]\s+-1\.000000/);
  assert.match(flaggedLine, /<< cosine -1\.000000 < 0\.99, rel L2 2\.00 > 0\.1$/);
  assert.match(
    table,
    /\nworst: lin, prob; error jumps first at lin \(rel L2 2\.00, at most 0 before it\)\n/,
  );
  assert.match(table, /\n {2}prob \(classifier\): FAIL \(.*top-1 0\.0% < 99\.0%\)/);

  const html = compareReportHtml(report, labels);
  assert.match(html, /^<!DOCTYPE html>/);
  assert.match(html, /<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.equal((html.match(/<circle /g) ?? []).length, report.rows.length);
  assert.match(html, /<td>a&#60;b&#38;c<\/td>/);
  assert.match(html, /<dd>neg&#60;ated&#62;\.prototxt<\/dd>/);
  assert.doesNotMatch(html, /a<b/);
  assert.doesNotMatch(html, /\b(src|href)=/);
  assert.equal((html.match(/https?:\/\//g) ?? []).length, 1); // the SVG namespace
  assert.equal(
    (html.match(/<tr class="flagged">/g) ?? []).length,
    report.rows.filter((entry) => entry.flagged).length,
  );
});

Deno.test("formatCompareTable: the worst line names five layers, then how many more", async () => {
  const layers = Array.from(
    { length: 8 },
    (_, i) =>
      `layer { name: "p${i}" type: "Power" bottom: "${i === 0 ? "data" : `y${i - 1}`}" ` +
      `top: "y${i}" power_param { scale: SCALE } }`,
  ).join("\n");
  const chain = (scale: number) =>
    readPrototxt(
      `input: "data" input_shape { dim: 2 dim: 5 }\n${layers.replaceAll("SCALE", String(scale))}`,
    );
  const report = await compareNets(chain(1), chain(-1));
  // Every layer flips the sign once more: odd layers differ (-y), even ones agree.
  assert.deepEqual(report.worst, ["p0", "p2", "p4", "p6"]);
  const five = await compareNets(chain(1), chain(2), { thresholds: { maxRelativeL2: 0.5 } });
  // y_i = 2^(i+1) x against x: rel L2 2^(i+1) - 1, worst last.
  assert.deepEqual(five.worst, ["p7", "p6", "p5", "p4", "p3", "p2", "p1", "p0"]);
  assert.match(
    formatCompareTable(five),
    /\nworst: p7, p6, p5, p4, p3 \(\+3 more\); error jumps first at p0 /,
  );
});

Deno.test("compareNets outputs: classifier accuracy with labels, detector and image metrics", async () => {
  const data: Tensor = {
    shape: [2, 5],
    data: new Float32Array([0.5, -1, 0.25, 2, 0, -0.75, 1.5, 0.1, -2.5, 0.3]),
  };
  // Arg-max of A's rows: 3, 1; of B's (negated) rows: 1, 3. Labels 3, 1: A all right, B none.
  const classified = await compareNets(scalingNet(1), scalingNet(-1), {
    inputs: new Map([["data", data]]),
    labels: [[3, 1]],
  });
  const prob = classified.outputs.find((output) => output.blob === "prob")!;
  assert.equal(prob.task, "classifier");
  assert.equal(prob.top1, 0);
  assert.equal(prob.top5, undefined); // 5 classes: top-5 says nothing
  assert.deepEqual(prob.accuracy, { a: { top1: 1, top5: 1 }, b: { top1: 0, top5: 1 } });

  // Softmax over 2 classes at 4 positions: a detector's scores. Negating the input swaps the
  // two probabilities, so no position kept (> 0.5) by A is kept by B.
  const detector = (scale: number) =>
    readPrototxt(`
      input: "data" input_shape { dim: 1 dim: 2 dim: 1 dim: 4 }
      layer { name: "lin" type: "Power" bottom: "data" top: "y" power_param { scale: ${scale} } }
      layer { name: "score" type: "Softmax" bottom: "y" top: "score" }
    `);
  const detected = await compareNets(detector(1), detector(-1), { seed: 3 });
  const score = detected.outputs[0];
  assert.equal(score.task, "detector");
  assert.equal(score.confident, 0);
  assert.ok(score.failed.some((check) => check.startsWith("confident")));

  // The same scores as SSD lays them out (a Softmax over the last axis, flattened): still a
  // detector of 2 classes, in compare as in evaluateAccuracy.
  const flattened = (scale: number) =>
    readPrototxt(`
      input: "data" input_shape { dim: 1 dim: 4 dim: 2 }
      layer { name: "lin" type: "Power" bottom: "data" top: "y" power_param { scale: ${scale} } }
      layer { name: "score" type: "Softmax" bottom: "y" top: "score" softmax_param { axis: 2 } }
      layer { name: "flat" type: "Flatten" bottom: "score" top: "flat" }
    `);
  const flat = (await compareNets(flattened(1), flattened(-1), { seed: 3 })).outputs[0];
  assert.equal(flat.blob, "flat");
  assert.equal(flat.task, "detector");
  assert.equal(flat.confident, 0);
  const evaluated = await evaluateAccuracy(
    { float: flattened(1), fakeQuant: flattened(-1), deploy: flattened(1) },
    [{
      inputs: new Map([["data", {
        shape: [1, 4, 2],
        data: new Float32Array([1, -1, 0.5, 2, -3, 0, 0.25, -0.5]),
      }]]),
    }],
  );
  assert.equal(evaluated.outputs[0].task, "detector");

  // An image output [1, 3, 4, 4], B = 1.1 A: PSNR = 10 log10(peak² / mean (0.1 x)²).
  const image = (scale: number) =>
    readPrototxt(`
      input: "data" input_shape { dim: 1 dim: 3 dim: 4 dim: 4 }
      layer { name: "lin" type: "Power" bottom: "data" top: "y" power_param { scale: ${scale} } }
    `);
  const imaged = await compareNets(image(1), image(1.1), { seed: 4 });
  const input = (await runNet(image(1), { seed: 4 })).outputs.get("y")!.data;
  const values = [...input];
  const peak = Math.max(...values) - Math.min(...values);
  const meanSquare = values.reduce(
    (sum, x) => sum + (x - Math.fround(Math.fround(1.1) * x)) ** 2,
    0,
  ) / values.length;
  const psnr = 10 * Math.log10((peak * peak) / meanSquare);
  assert.equal(imaged.outputs[0].task, "image");
  assert.ok(
    Math.abs(imaged.outputs[0].psnr! - psnr) < 1e-3,
    `${imaged.outputs[0].psnr} vs ${psnr}`,
  );
});

Deno.test("layerSensitivity with outputs: each quantized layer alone, its effect on the net output", async () => {
  // Float: y = c1(x) (weight 1), ReLU in place, z = c2(y) (weight 2). Fake-quant: c1 at S = 4
  // (scale_d 0.25), c2 at S = 2 (scale_d 0.5), weights exact.
  const float = readPrototxt(`
    input: "data" input_shape { dim: 1 dim: 1 dim: 1 dim: 4 }
    layer { name: "c1" type: "Convolution" bottom: "data" top: "y"
      convolution_param { num_output: 1 kernel_size: 1 bias_term: false } }
    layer { name: "r" type: "ReLU" bottom: "y" top: "y" }
    layer { name: "c2" type: "Convolution" bottom: "y" top: "z"
      convolution_param { num_output: 1 kernel_size: 1 bias_term: false } }
  `);
  const fake = readPrototxt(`
    input: "data" input_shape { dim: 1 dim: 1 dim: 1 dim: 4 }
    layer { name: "c1_quant_layer" type: "Quant" bottom: "data" top: "c1_quant_layer"
      quant_param { scale: 4 offset: "\\000" with_offset: true object_layer: "c1" } }
    layer { name: "c1" type: "Convolution" bottom: "c1_quant_layer" top: "y_raw"
      convolution_param { num_output: 1 kernel_size: 1 bias_term: false } }
    layer { name: "c1_dequant_layer" type: "DeQuant" bottom: "y_raw" top: "y" }
    layer { name: "r" type: "ReLU" bottom: "y" top: "y" }
    layer { name: "c2_quant_layer" type: "Quant" bottom: "y" top: "c2_quant_layer"
      quant_param { scale: 2 offset: "\\000" with_offset: true object_layer: "c2" } }
    layer { name: "c2" type: "Convolution" bottom: "c2_quant_layer" top: "z_raw"
      convolution_param { num_output: 1 kernel_size: 1 bias_term: false } }
    layer { name: "c2_dequant_layer" type: "DeQuant" bottom: "z_raw" top: "z" }
  `);
  const weight = (value: number) => [{ shape: [1, 1, 1, 1], data: new Float32Array([value]) }];
  float.layers[0].blobs = weight(1);
  float.layers[2].blobs = weight(2);
  fake.layers[1].blobs = weight(1);
  fake.layers[2].blobs = [{ shape: [1], data: new Float32Array([0.25]) }];
  fake.layers[5].blobs = weight(2);
  fake.layers[6].blobs = [{ shape: [1], data: new Float32Array([1]) }];
  const inputs = new Map([["data", { shape: [1, 1, 1, 4], data: new Float32Array(X) }]]);
  const entries = await layerSensitivity(float, fake, { inputs, outputs: true });
  assert.deepEqual(entries.map((entry) => entry.layer), ["c1", "c2"]);
  // Float z = 2 relu(x) = [0.6, 0, 1.8, 0.2].
  const z = [0.6, 0, 1.8, 0.2];
  // c1 alone: y = [0.25, -0.5, 1, 0], z = 2 relu(y) = [0.5, 0, 2, 0].
  assert.ok(Math.abs(entries[0].relativeL2 - relativeL2ByHand(X, X_HAT)) < 1e-6);
  assert.equal(entries[0].outputs?.length, 1);
  assert.equal(entries[0].outputs![0].blob, "z");
  assert.ok(
    Math.abs(entries[0].outputs![0].relativeL2 - relativeL2ByHand(z, [0.5, 0, 2, 0])) < 1e-6,
  );
  // c2 alone: relu(x) = [0.3, 0, 0.9, 0.1] at scale_d 0.5 is [0.5, 0, 1, 0]; z = [1, 0, 2, 0].
  const c2Alone = relativeL2ByHand(z, [1, 0, 2, 0]);
  assert.ok(Math.abs(entries[1].relativeL2 - c2Alone) < 1e-6, `${entries[1].relativeL2}`);
  assert.ok(Math.abs(entries[1].outputs![0].relativeL2 - c2Alone) < 1e-6);
  assert.equal((await layerSensitivity(float, fake, { inputs }))[0].outputs, undefined);
});
