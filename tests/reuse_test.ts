import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { loadNet } from "../src/caffe/model.ts";
import type { Net } from "../src/caffe/net.ts";
import { defaultCalibrationConfig } from "../src/calibrate/config.ts";
import { ReusingRunner } from "../src/engine/reuse.ts";
import { runNet, type Tensor } from "../src/engine/run.ts";
import { autoCalibrate, cosineEvaluator } from "../src/pipeline/auto_calibrate.ts";
import { conv, layer, net, random, randomValues, relu } from "./_builders.ts";
import { modelFile, modelNames } from "./_models.ts";

/** Whether two output maps hold the same blobs, in the same order, with the same bits. */
function assertSameOutputs(actual: Map<string, Tensor>, expected: Map<string, Tensor>): void {
  assert.deepEqual([...actual.keys()], [...expected.keys()]);
  for (const [blob, tensor] of expected) {
    const other = actual.get(blob)!;
    assert.deepEqual(other.shape, tensor.shape);
    const bits = (data: Float32Array) => new Uint32Array(data.buffer, data.byteOffset, data.length);
    assert.deepEqual(bits(other.data), bits(tensor.data), `blob ${blob}`);
  }
}

function inputsOf(shape: number[], seed: number): Map<string, Tensor> {
  const count = shape.reduce((a, b) => a * b, 1);
  return new Map([["data", { shape, data: randomValues(count, seed) }]]);
}

/** conv1 → relu1 → conv2 → relu2 (leaky, `slope`) → conv3, every ReLU in place. */
function leakyNet(slope: number): Net {
  const next = random(3);
  const leaky = layer("relu2", "ReLU", ["c2"], ["c2"], { relu_param: { negative_slope: slope } });
  return net("data", [1, 2, 6, 6], [
    conv("conv1", "data", "c1", { numOutput: 3, channelsIn: 2, kernel: 1, next }),
    relu("relu1", "c1", "c1"),
    conv("conv2", "c1", "c2", { numOutput: 3, channelsIn: 3, kernel: 3, next }),
    leaky,
    conv("conv3", "c2", "c3", { numOutput: 2, channelsIn: 3, kernel: 1, next }),
  ]);
}

Deno.test("ReusingRunner: a net that first differs at a ReLU its Convolution applies itself starts before that Convolution; outputs bit for bit", async () => {
  const [a, b] = [leakyNet(0.1), leakyNet(0.5)]; // same layers and weights but relu2 (index 3)
  const inputs = inputsOf([1, 2, 6, 6], 11);
  const runner = new ReusingRunner();
  assertSameOutputs(await runner.outputs(a, inputs, [b]), (await runNet(a, { inputs })).outputs);
  assertSameOutputs(await runner.outputs(b, inputs), (await runNet(b, { inputs })).outputs);
  // a: 5 layers; b from conv2 (index 2: conv2 applies relu2 itself, so its output before relu2
  // never exists in a's run): 3 layers.
  assert.deepEqual(runner.counts, { layersRun: 8, layersInNets: 10 });
  // The same with the state kept where a first differs from b (index 3): that one is taken at 2.
  const { checkpoints } = await runNet(a, { inputs, checkpoints: [3] });
  assert.deepEqual(checkpoints.map((checkpoint) => checkpoint.index), [2]);
  const resumed = await runNet(b, { inputs, resume: checkpoints[0] });
  assertSameOutputs(resumed.outputs, (await runNet(b, { inputs })).outputs);
});

Deno.test("ReusingRunner: when the earlier run let go of a value the new net still reads, it runs the new net whole", async () => {
  const next = random(5);
  const c1 = conv("conv1", "data", "c1", { numOutput: 2, channelsIn: 2, kernel: 1, next });
  const c2 = conv("conv2", "c1", "c2", { numOutput: 2, channelsIn: 2, kernel: 1, next });
  const c3 = conv("conv3", "c2", "c3", { numOutput: 2, channelsIn: 2, kernel: 1, next });
  const other = conv("conv3", "c2", "c3", { numOutput: 2, channelsIn: 2, kernel: 1, next });
  const a = net("data", [1, 2, 4, 4], [c1, c2, c3]);
  // b differs from a at index 2 and reads c1 after it, which a's run let go of after conv2.
  const b = net("data", [1, 2, 4, 4], [
    c1,
    c2,
    other,
    layer("sum", "Eltwise", ["c3", "c1"], ["s"]),
  ]);
  const inputs = inputsOf([1, 2, 4, 4], 12);
  const runner = new ReusingRunner();
  await runner.outputs(a, inputs, [b]);
  assertSameOutputs(await runner.outputs(b, inputs), (await runNet(b, { inputs })).outputs);
  assert.deepEqual(runner.counts, { layersRun: 7, layersInNets: 7 });
});

Deno.test("ReusingRunner: a layer that differs only in its weights is where the nets part", async () => {
  const next = random(9);
  const options = { numOutput: 2, channelsIn: 2, kernel: 1, next };
  const layers = [1, 2, 3, 4, 5].map((i) =>
    conv(`conv${i}`, i === 1 ? "data" : `c${i - 1}`, `c${i}`, options)
  );
  layers.push(conv("conv3", "c2", "c3", options));
  const a = net("data", [1, 2, 4, 4], layers.slice(0, 5));
  // b: conv3 with the same parameters and other weights; conv5 renamed.
  const renamed = conv("conv5b", "c4", "c5", options);
  const b = net("data", [1, 2, 4, 4], [...layers.slice(0, 2), layers[5], layers[3], renamed]);
  const inputs = inputsOf([1, 2, 4, 4], 13);
  const runner = new ReusingRunner();
  await runner.outputs(a, inputs, [b]);
  assertSameOutputs(await runner.outputs(b, inputs), (await runNet(b, { inputs })).outputs);
  assert.deepEqual(runner.counts, { layersRun: 8, layersInNets: 10 });
});

const ULTRAFACE = "ultraface_rfb320";
const hasUltraface = modelNames.includes(ULTRAFACE);

/** ultraface's files, seeded calibration and evaluation samples, and a min/max config. */
async function ultraface() {
  const model = await readFile(modelFile(ULTRAFACE, "deploy.prototxt"), "utf8");
  const weights = await readFile(modelFile(ULTRAFACE, "weights.caffemodel"));
  const float = loadNet(model, weights);
  const shape = [1, 3, 240, 320];
  const sample = (seed: number) => new Map([["input", inputsOf(shape, seed).get("data")!]]);
  return {
    model,
    weights,
    float,
    calibration: [1, 2, 3].map(sample),
    evaluation: [4, 5, 6].map((seed) => ({ inputs: sample(seed) })),
    config: defaultCalibrationConfig(float, { activation: { algorithm: "minmax" } }),
  };
}

Deno.test({
  name:
    "autoCalibrate (ultraface): reusing shared layers gives the steps and scores of whole runs, bit for bit, with fewer layers run",
  ignore: !hasUltraface,
  async fn() {
    const { model, weights, float, calibration, evaluation, config } = await ultraface();
    const results = [];
    const runners = [new ReusingRunner({ memoryBudget: 0 }), new ReusingRunner()];
    for (const runner of runners) {
      const evaluate = await cosineEvaluator(float, evaluation, { runner });
      const result = await autoCalibrate({
        model,
        weights,
        calibration,
        evaluate,
        maxDrop: 1e-4,
        config,
      });
      results.push(result);
    }
    const [whole, reusing] = results;
    assert.ok(whole.steps.length >= 4, `a search of ${whole.steps.length} steps`);
    assert.deepEqual(reusing.steps, whole.steps);
    assert.deepEqual(reusing.sensitivity, whole.sensitivity);
    assert.deepEqual(reusing.keptFloat, whole.keptFloat);
    assert.equal(reusing.finalScore, whole.finalScore);
    assert.equal(reusing.record, whole.record);
    const [wholeCounts, reusingCounts] = runners.map((runner) => runner.counts);
    assert.equal(wholeCounts.layersRun, wholeCounts.layersInNets);
    assert.equal(reusingCounts.layersInNets, wholeCounts.layersInNets);
    assert.ok(
      reusingCounts.layersRun < reusingCounts.layersInNets,
      `${reusingCounts.layersRun} of ${reusingCounts.layersInNets} layers run`,
    );
  },
});

Deno.test({
  name:
    "ReusingRunner (ultraface): every output of every net the search scores equals a whole run's, bit for bit",
  ignore: !hasUltraface,
  async fn() {
    const { model, weights, float, calibration, evaluation, config } = await ultraface();
    const runner = new ReusingRunner();
    const reference = await cosineEvaluator(float, evaluation, {
      runner: new ReusingRunner({ memoryBudget: 0 }),
    });
    let nets = 0;
    const result = await autoCalibrate({
      model,
      weights,
      calibration,
      maxDrop: 1e-4,
      config,
      evaluate: async (candidate, upcoming) => {
        nets++;
        for (const { inputs } of evaluation) {
          const outputs = await runner.outputs(candidate, inputs, upcoming);
          assertSameOutputs(outputs, (await runNet(candidate, { inputs })).outputs);
        }
        return await reference(candidate);
      },
    });
    assert.equal(nets, result.steps.length + 1);
    assert.ok(runner.counts.layersRun < runner.counts.layersInNets);
  },
});
