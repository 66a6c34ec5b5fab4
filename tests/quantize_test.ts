import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { loadNet, runNet } from "../core.ts";
import { evaluateAccuracy } from "../src/engine/evaluate.ts";
import { quantize } from "../src/pipeline/quantize.ts";
import { type Digit, lenetInput, mnistAvailable, mnistDigits } from "./_mnist.ts";
import { modelFile, modelNames } from "./_models.ts";

/** Calibration digits (10 of each class, from the end of each file) and evaluation digits (210 of each, from the start). */
async function mnistSplit(): Promise<{ calibration: Digit[]; evaluation: Digit[] }> {
  const byClass = await Promise.all(Array.from({ length: 10 }, (_, d) => mnistDigits(d)));
  return {
    calibration: byClass.flatMap((digits) => digits.slice(-10)),
    evaluation: byClass.flatMap((digits) => digits.slice(0, 210)),
  };
}

/** The index of the largest value (the first of equal ones). */
function argMax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

Deno.test(
  "quantize(): LeNet on real MNIST digits, calibrated on 100, deploy top-1 within 0.1 points of float on 2,100 others",
  {
    ignore: !modelNames.includes("lenet") || !mnistAvailable,
  },
  async () => {
    const model = await readFile(modelFile("lenet", "deploy.prototxt"), "utf8");
    const weights = await readFile(modelFile("lenet", "weights.caffemodel"));
    const { calibration, evaluation } = await mnistSplit();
    const steps = new Set<string>();
    const result = await quantize({
      model,
      weights,
      calibration: calibration.map((digit) => new Map([["data", lenetInput(digit)]])),
      evaluation: evaluation.map((digit) => ({
        inputs: new Map([["data", lenetInput(digit)]]),
        label: digit.label,
      })),
      onProgress: (progress) => steps.add(progress.step),
    });
    assert.deepEqual([...steps], ["calibrate", "convert", "evaluate"]);
    assert.equal(result.calibration.samples, 100);
    assert.equal(result.calibration.layers.length, 4);
    assert.match(result.record, /key: "conv1"/);
    const accuracy = result.accuracy!;
    assert.equal(accuracy.samples, 2100);
    assert.equal(accuracy.labelled, 2100);
    const prob = accuracy.outputs.find((output) => output.blob === "prob")!;
    assert.equal(prob.task, "classifier");

    // The float net's accuracy counted here independently: arg-max of its own runs, 100 digits a
    // batch (LeNet computes each image of a batch by itself).
    const net = loadNet(model, weights);
    let correct = 0;
    for (let start = 0; start < evaluation.length; start += 100) {
      const digits = evaluation.slice(start, start + 100);
      const data = new Float32Array(digits.length * 784);
      digits.forEach((digit, i) => data.set(lenetInput(digit).data, i * 784));
      const { outputs } = await runNet(net, {
        inputs: new Map([["data", { shape: [digits.length, 1, 28, 28], data }]]),
      });
      const prob = outputs.get("prob")!.data;
      digits.forEach((digit, i) => {
        if (argMax(prob.subarray(i * 10, i * 10 + 10)) === digit.label) correct++;
      });
    }
    assert.equal(prob.nets.float.top1Accuracy, correct / evaluation.length);
    assert.ok(correct / evaluation.length > 0.98, `float top-1 ${correct / evaluation.length}`);

    const float = prob.nets.float.top1Accuracy!;
    for (const name of ["fakeQuant", "deploy"] as const) {
      const figures = prob.nets[name];
      assert.ok(
        Math.abs(figures.top1Accuracy! - float) <= 0.001,
        `${name} top-1 ${figures.top1Accuracy} vs float ${float}`,
      );
      assert.ok(figures.top1Agreement! >= 0.995, `${name} agreement ${figures.top1Agreement}`);
      assert.ok(figures.cosine > 0.999, `${name} cosine ${figures.cosine}`);
      assert.deepEqual(figures.failed, []);
    }
  },
);

Deno.test(
  "evaluateAccuracy: a net against itself agrees fully, and its accuracy is counted from the labels",
  {
    ignore: !modelNames.includes("lenet") || !mnistAvailable,
  },
  async () => {
    const net = loadNet(
      await readFile(modelFile("lenet", "deploy.prototxt"), "utf8"),
      await readFile(modelFile("lenet", "weights.caffemodel")),
    );
    const digits = (await mnistDigits(7)).slice(0, 20);
    // Labels: the true 7 for the first 15 digits, a wrong 3 for the last 5 (LeNet reads these 7s right).
    const labels = digits.map((_, i) => (i < 15 ? 7 : 3));
    const report = await evaluateAccuracy(
      { float: net, fakeQuant: net, deploy: net },
      digits.map((digit, i) => ({
        inputs: new Map([["data", lenetInput(digit)]]),
        label: labels[i],
      })),
    );
    const prob = report.outputs[0];
    for (const name of ["float", "fakeQuant", "deploy"] as const) {
      assert.equal(prob.nets[name].top1Accuracy, 15 / 20);
    }
    assert.equal(prob.nets.deploy.top1Agreement, 1);
    assert.equal(prob.nets.deploy.relativeL2, 0);
    assert.ok(Math.abs(prob.nets.deploy.cosine - 1) < 1e-12);
  },
);
