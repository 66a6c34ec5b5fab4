import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { writeNpy } from "../src/io/npy.ts";
import { writeCaffemodel } from "../src/caffe/caffemodel_write.ts";
import { loadNet } from "../src/caffe/model.ts";
import type { Net } from "../src/caffe/net.ts";
import { printPrototxt } from "../src/caffe/prototxt.ts";
import { calibrate } from "../src/calibrate/calibrate.ts";
import { defaultCalibrationConfig } from "../src/calibrate/config.ts";
import type { Tensor } from "../src/engine/run.ts";
import { runNet } from "../src/engine/run.ts";
import { autoCalibrate, cosineEvaluator } from "../src/pipeline/auto_calibrate.ts";
import { convertToNets } from "../src/quant/convert.ts";
import { conv, innerProduct, net, random, relu } from "./_builders.ts";
import { runCli as cli } from "./_cli.ts";

/**
 * conv1 → relu → conv2 → relu → conv3 → ip. conv1 and conv2 each write one output channel about
 * 1000× the others (their row 0 of weights scaled up), and conv2 and conv3 read that channel with
 * weights scaled down: per-tensor quantization of conv2's and conv3's input crushes the other
 * channels, so both must stay float; conv1's and ip's inputs are ordinary.
 */
function outlierNet(): Net {
  const next = random(7);
  const c1 = conv("conv1", "data", "c1", { numOutput: 4, channelsIn: 3, kernel: 1, next });
  const c2 = conv("conv2", "c1", "c2", { numOutput: 4, channelsIn: 4, kernel: 1, next });
  const c3 = conv("conv3", "c2", "c3", { numOutput: 4, channelsIn: 4, kernel: 1, next });
  const ip = innerProduct("ip", "c3", "out", { numOutput: 5, channelsIn: 4 * 4 * 4, next });
  for (const layer of [c1, c2]) {
    const w = layer.blobs[0].data as Float32Array;
    const inputs = layer.blobs[0].shape[1];
    for (let c = 0; c < inputs; c++) w[c] *= 1000; // output channel 0
  }
  for (const layer of [c2, c3]) {
    const w = layer.blobs[0].data as Float32Array;
    const inputs = layer.blobs[0].shape[1];
    for (let o = 0; o < 4; o++) w[o * inputs] *= 0.001; // input channel 0
  }
  return net("data", [1, 3, 4, 4], [
    c1,
    relu("relu1", "c1", "c1"),
    c2,
    relu("relu2", "c2", "c2"),
    c3,
    ip,
  ]);
}

function sample(seed: number): Map<string, Tensor> {
  const next = random(seed);
  return new Map([["data", {
    shape: [1, 3, 4, 4],
    data: Float32Array.from({ length: 48 }, () => next(0, 1)),
  }]]);
}

const built = outlierNet();
const model = printPrototxt(built);
const weights = writeCaffemodel(built);
const calibration = Array.from({ length: 16 }, (_, i) => sample(100 + i));
const evaluation = Array.from({ length: 16 }, (_, i) => ({ inputs: sample(500 + i) }));
const LAYERS = ["conv1", "conv2", "conv3", "ip"];

/** Mean cosine (float64, plain loop) of `out` over the evaluation samples, fake vs float. */
async function plainCosine(fake: Net, float: Net): Promise<number> {
  let sum = 0;
  for (const { inputs } of evaluation) {
    const a = (await runNet(float, { inputs })).outputs.get("out")!.data;
    const b = (await runNet(fake, { inputs })).outputs.get("out")!.data;
    let dot = 0, aa = 0, bb = 0;
    for (let i = 0; i < a.length; i++) {
      dot += a[i] * b[i];
      aa += a[i] * a[i];
      bb += b[i] * b[i];
    }
    sum += dot / Math.sqrt(aa * bb);
  }
  return sum / evaluation.length;
}

/** Brute force: the score of every choice of layers kept float (at least one quantized). */
async function everySubset(): Promise<Map<string, number>> {
  const float = loadNet(model, weights);
  const scores = new Map<string, number>();
  for (let mask = 0; mask < (1 << LAYERS.length) - 1; mask++) {
    const skip = LAYERS.filter((_, i) => mask & (1 << i));
    const config = defaultCalibrationConfig(float, { skip });
    const { record } = await calibrate(float, calibration, { config });
    const { fakeQuant } = await convertToNets({ model, weights, record });
    scores.set(skip.join(","), await plainCosine(fakeQuant, float));
  }
  return scores;
}

Deno.test("autoCalibrate: an outlier channel; the fewest layers kept float that meet the target (brute force over every subset)", async () => {
  const float = loadNet(model, weights);
  const evaluate = await cosineEvaluator(float, evaluation);
  const maxDrop = 1e-5;
  const result = await autoCalibrate({ model, weights, calibration, evaluate, maxDrop });
  const scores = await everySubset();
  const floatScore = 1;
  const meeting = [...scores].filter(([, score]) => floatScore - score <= maxDrop);
  const fewest = Math.min(...meeting.map(([names]) => names === "" ? 0 : names.split(",").length));
  // The case is one where quantizing everything misses and one layer in float is not enough.
  assert.ok(floatScore - scores.get("")! > maxDrop, `all quantized: ${scores.get("")}`);
  assert.equal(fewest, 2);
  assert.ok(Math.abs(result.floatScore - 1) < 1e-6);
  assert.ok(Math.abs(result.quantizedScore - scores.get("")!) < 1e-6);
  assert.equal(result.met, true);
  assert.equal(result.keptFloat.length, fewest);
  const key = LAYERS.filter((name) => result.keptFloat.includes(name)).join(",");
  assert.equal(key, "conv2,conv3");
  assert.ok(Math.abs(result.finalScore - scores.get(key)!) < 1e-6);
  assert.equal(result.sensitivity.length, 4);
  assert.deepEqual(result.steps[0].keptFloat, 0);
  assert.equal(result.steps[0].meets, false);
  // The outputs are those of the choice: its record has no entries for the kept layers.
  assert.doesNotMatch(result.record, /key: "conv2"|key: "conv3"/);
  assert.match(result.record, /key: "conv1"/);
  const fake = loadNet(result.files.fakeQuantModel, result.files.fakeQuantWeights);
  assert.ok(Math.abs((await plainCosine(fake, float)) - result.finalScore) < 1e-6);
});

Deno.test("autoCalibrate: when no choice meets the target it says so and keeps the best scoring one", async () => {
  const float = loadNet(model, weights);
  const evaluate = await cosineEvaluator(float, evaluation);
  const result = await autoCalibrate({ model, weights, calibration, evaluate, maxDrop: 0 });
  assert.equal(result.met, false);
  assert.ok(result.steps.length >= 2);
  assert.ok(result.steps.every((step) => !step.meets));
  const best = Math.max(...result.steps.map((step) => step.score));
  assert.equal(result.finalScore, best);
  const fake = loadNet(result.files.fakeQuantModel, result.files.fakeQuantWeights);
  assert.ok(Math.abs((await plainCosine(fake, float)) - best) < 1e-6);
});

/** The samples as one .npy of [N, 3, 4, 4]. */
function npyOf(samples: Map<string, Tensor>[]): Uint8Array {
  const data = new Float32Array(samples.length * 48);
  samples.forEach((sample, i) => data.set(sample.get("data")!.data, i * 48));
  return writeNpy({ shape: [samples.length, 3, 4, 4], data });
}

Deno.test("quantize --max-drop --metric cosine: the outlier net keeps conv2 and conv3 float; six files; report and JSON", async () => {
  const dir = await mkdtemp(join(await Deno.makeTempDir(), "auto"));
  await writeFile(join(dir, "net.prototxt"), model);
  await writeFile(join(dir, "net.caffemodel"), weights);
  await writeFile(join(dir, "calib.npy"), npyOf(calibration));
  await writeFile(join(dir, "eval.npy"), npyOf(evaluation.map((sample) => sample.inputs)));
  const args = [
    "quantize",
    join(dir, "net.prototxt"),
    join(dir, "net.caffemodel"),
    join(dir, "out", "q"),
    "--data",
    join(dir, "calib.npy"),
    "--eval-data",
    join(dir, "eval.npy"),
    "--max-drop",
    "0.00001",
    "--metric",
    "cosine",
  ];
  const text = await cli(...args, "--html", join(dir, "page.html"));
  assert.equal(text.code, 0, text.err);
  const page = await readFile(join(dir, "page.html"), "utf8");
  assert.match(page, /<h2>Automatic calibration<\/h2>/);
  assert.match(page, /target met with 2 layer\(s\) in float/);
  assert.match(text.out, /target met with 2 layer\(s\) in float/);
  assert.match(text.out, /layers in float: conv[23], conv[23]/);
  const record = await readFile(join(dir, "out", "q_record.txt"), "utf8");
  assert.doesNotMatch(record, /key: "conv2"|key: "conv3"/);
  assert.equal((await readdir(join(dir, "out"))).length, 6);
  const json = await cli(...args.slice(0, 3), join(dir, "out2", "q"), ...args.slice(4), "--json");
  assert.equal(json.code, 0, json.err);
  const search = JSON.parse(json.out).automaticCalibration;
  assert.equal(search.met, true);
  assert.equal(search.metric, "cosine");
  assert.deepEqual([...search.keptFloat].sort(), ["conv2", "conv3"]);
  assert.equal(search.steps[0].keptFloat, 0);
  assert.equal(search.steps[0].meets, false);

  // top1 needs labels; a negative drop is refused; nothing is written.
  const noLabels = await cli(
    ...args.slice(0, 3),
    join(dir, "out3", "q"),
    ...args.slice(4, -1),
    "top1",
  );
  assert.notEqual(noLabels.code, 0);
  assert.match(noLabels.err, /--metric top1 needs a label/);
  const negative = await cli(
    ...args.slice(0, 3),
    join(dir, "out3", "q"),
    ...args.slice(4, 8),
    "--max-drop",
    "-1",
  );
  assert.notEqual(negative.code, 0);
  assert.match(negative.err, /--max-drop must be 0 or more/);
  assert.deepEqual((await readdir(dir)).sort(), [
    "calib.npy",
    "eval.npy",
    "net.caffemodel",
    "net.prototxt",
    "out",
    "out2",
    "page.html",
  ]);
});
