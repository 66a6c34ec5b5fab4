// runNet on every real model of ../shared/models reproduces OpenCV's reference outputs
// (ref/output.*.npy for ref/input.*.npy) within max|error| <= 1e-4 * max(1, max|ref|), with
// either build of the engine module (relaxed SIMD and portable).

import assert from "node:assert/strict";
import { loadNet } from "../src/caffe/model.ts";
import { runNet, type Tensor } from "../src/engine/run.ts";
import { readNpy } from "../src/io/npy.ts";
import { ENGINE_BUILDS, withEngineBuild } from "./_engine_builds.ts";
import { modelFile, modelNames } from "./_models.ts";

interface Manifest {
  inputs: { blob: string; file: string; shape: number[] }[];
  outputs: { blob: string; file: string; shape: number[]; role: string }[];
}

function loadModel(name: string) {
  return loadNet(
    Deno.readTextFileSync(modelFile(name, "deploy.prototxt")),
    Deno.readFileSync(modelFile(name, "weights.caffemodel")),
    { model: "deploy.prototxt", weights: "weights.caffemodel" },
  );
}

function readRef(name: string, file: string): Tensor {
  return readNpy(Deno.readFileSync(modelFile(name, `ref/${file}`)), file);
}

/** max |a - b| and max |b|. */
function maxError(actual: Tensor, expected: Tensor): { error: number; largest: number } {
  let error = 0;
  let largest = 0;
  for (let i = 0; i < expected.data.length; i++) {
    const difference = Math.abs(actual.data[i] - expected.data[i]);
    error = Number.isNaN(difference) ? Infinity : Math.max(error, difference);
    largest = Math.max(largest, Math.abs(expected.data[i]));
  }
  return { error, largest };
}

for (
  const [name, build] of modelNames.flatMap((name) => ENGINE_BUILDS.map((b) => [name, b] as const))
) {
  Deno.test(`runNet reproduces the OpenCV reference outputs (${build} build): ${name}`, () =>
    withEngineBuild(build, async () => {
      const manifest: Manifest = JSON.parse(
        Deno.readTextFileSync(modelFile(name, "ref/manifest.json")),
      );
      const net = loadModel(name);
      const inputs = new Map(
        manifest.inputs.map((input) => [input.blob, readRef(name, input.file)]),
      );
      const result = await runNet(net, { inputs, keepAll: true });
      const skippedTypes = result.skipped.map((entry) => entry.type);
      let compared = 0;
      for (const output of manifest.outputs) {
        const produced = result.blobs.get(output.blob);
        if (produced === undefined) {
          // Only DetectionOutput (NMS) is not simulated; everything feeding it must run.
          assert.deepEqual(skippedTypes, ["DetectionOutput"], `${output.blob} missing`);
          assert.equal(output.role, "net output");
          continue;
        }
        const expected = readRef(name, output.file);
        assert.deepEqual(produced.shape, expected.shape, output.blob);
        const { error, largest } = maxError(produced, expected);
        const tolerance = 1e-4 * Math.max(1, largest);
        console.log(
          `${name} ${output.blob}: max|error| ${error.toExponential(2)} (tolerance ${
            tolerance.toExponential(2)
          })`,
        );
        assert.ok(error <= tolerance, `${name} ${output.blob}: max|error| ${error} > ${tolerance}`);
        compared++;
      }
      assert.ok(compared > 0);
      if (name === "yufacedetect_v1") {
        assert.deepEqual(result.skipped.map((entry) => entry.layer), ["detection_out"]);
        assert.deepEqual(
          [...result.outputs.keys()].sort(),
          ["mbox_conf_flatten", "mbox_loc", "mbox_priorbox"],
        );
      } else {
        assert.deepEqual(result.skipped, []);
      }
    }));
}

if (modelNames.includes("mtcnn_pnet")) {
  Deno.test("mtcnn_pnet reshapes to a larger input; its corner output equals the 12x12 crop's", async () => {
    const net = loadModel("mtcnn_pnet");
    const large = { shape: [1, 3, 24, 30], data: new Float32Array(3 * 24 * 30) };
    for (let i = 0; i < large.data.length; i++) large.data[i] = Math.sin(i * 0.37);
    const crop = { shape: [1, 3, 12, 12], data: new Float32Array(3 * 12 * 12) };
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 12; y++) {
        crop.data.set(
          large.data.subarray((c * 24 + y) * 30, (c * 24 + y) * 30 + 12),
          (c * 12 + y) * 12,
        );
      }
    }
    const whole = await runNet(net, { inputs: new Map([["data", large]]) });
    const corner = await runNet(net, { inputs: new Map([["data", crop]]) });
    const prob = whole.outputs.get("prob1")!;
    // conv 3x3: 22x28, pool 2x2/2 ceil: 11x14, conv 3x3: 9x12, conv 3x3: 7x10.
    assert.deepEqual(prob.shape, [1, 2, 7, 10]);
    const expected = corner.outputs.get("prob1")!;
    for (let c = 0; c < 2; c++) {
      assert.ok(Math.abs(prob.data[c * 70] - expected.data[c]) < 1e-6);
    }
  });
}

if (modelNames.includes("lenet")) {
  Deno.test("lenet with batch 2: each row equals its batch-1 run", async () => {
    const net = loadModel("lenet");
    const reference = readRef("lenet", "input.data.npy");
    const other = { shape: [1, 1, 28, 28], data: reference.data.map((v) => -v) };
    const batch = {
      shape: [2, 1, 28, 28],
      data: new Float32Array([...reference.data, ...other.data]),
    };
    const both = (await runNet(net, { inputs: new Map([["data", batch]]) })).outputs.get("prob")!;
    assert.deepEqual(both.shape, [2, 10]);
    for (const [row, input] of [reference, other].entries()) {
      const single = (await runNet(net, { inputs: new Map([["data", input]]) })).outputs.get(
        "prob",
      )!;
      const { error } = maxError(
        { shape: [10], data: both.data.subarray(row * 10, row * 10 + 10) },
        single,
      );
      assert.ok(error < 1e-6, `row ${row}: ${error}`);
    }
  });
}
