// The simulator on the fake-quant and deploy models that convert_model makes from every real
// model of ../shared/models (record from the weights and the float net's observed input ranges):
// the deploy model agrees with the fake-quant model (cosine > 0.9999), and both stay close to the
// float model (cosine > 0.98: int8 noise; mtcnn_rnet's 4-value conv5-2 is the lowest, ~0.989).

import assert from "node:assert/strict";
import { quantizeBlocker } from "../src/caffe/layers.ts";
import { loadNet } from "../src/caffe/model.ts";
import { compareNets } from "../src/engine/compare.ts";
import { runNet } from "../src/engine/run.ts";
import { convertInMemory } from "../src/quant/convert.ts";
import { makeRecord } from "../src/quant/make_record.ts";
import { modelFile, modelNames } from "./_models.ts";

for (const name of modelNames) {
  Deno.test(`fake-quant and deploy models of ${name} agree in the simulator`, async () => {
    const model = Deno.readTextFileSync(modelFile(name, "deploy.prototxt"));
    const weights = Deno.readFileSync(modelFile(name, "weights.caffemodel"));
    const floatNet = loadNet(model, weights);
    const floatRun = await runNet(floatNet, { seed: 1, keepAll: true });
    const activationRanges = new Map<string, { min: number; max: number }>();
    for (const layer of floatNet.layers) {
      const input = floatRun.blobs.get(layer.bottoms[0] ?? "");
      if (quantizeBlocker(layer) !== undefined || input === undefined) continue;
      activationRanges.set(layer.name, {
        min: input.data.reduce((a, b) => Math.min(a, b), 0),
        max: input.data.reduce((a, b) => Math.max(a, b), 0),
      });
    }
    const record = await makeRecord(floatNet, { activationRanges });
    const { files } = await convertInMemory({ model, weights, record });
    const fakeNet = loadNet(files.fakeQuantModel, files.fakeQuantWeights);
    const deployNet = loadNet(files.deployModel, files.deployWeights);
    const outputs = [...floatRun.outputs.keys()];
    const toFake = await compareNets(floatNet, fakeNet, { seed: 2 });
    const toDeploy = await compareNets(fakeNet, deployNet, { seed: 2 });
    assert.deepEqual(toDeploy.skippedB, toFake.skippedA);
    for (const output of outputs) {
      const quantization = toFake.rows.find((row) => row.blob === output)!;
      const deployment = toDeploy.rows.find((row) => row.blob === output)!;
      console.log(
        `${name} ${output}: float vs fake-quant cosine ${quantization.cosine.toFixed(6)}, ` +
          `fake-quant vs deploy cosine ${deployment.cosine.toFixed(8)}`,
      );
      assert.ok(quantization.cosine > 0.98, `${output}: float vs fake ${quantization.cosine}`);
      assert.ok(deployment.cosine > 0.9999, `${output}: fake vs deploy ${deployment.cosine}`);
    }
  });
}
