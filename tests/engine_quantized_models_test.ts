// The simulator on the fake-quant and deploy models that convert_model makes from every real
// model of ../shared/models (record from the weights and the float net's observed input ranges).
//
// - In lockstep (each layer of the deploy net reads what the fake-quant net's layer read), every
//   value the two nets write agrees within relative L2 1e-5 (SPEC §10), each quantized layer
//   measured at its DeQuant output (before any in-place layer after it): the two output models
//   say the same thing, layer by layer.
// - Float vs fake-quant in lockstep has one row per quantized layer, named by it, and the same
//   layers in its sensitivity list.
// - Running freely, a float rounding difference just before a Quant layer now and then moves a
//   value across a rounding boundary (one int8 step), and that propagates: the outputs still
//   agree with cosine > 0.9999, while their relative L2 error reaches ~4e-3 on the largest nets.
// - Both stay close to the float model (cosine > 0.98: int8 noise; mtcnn_rnet's 4-value
//   conv5-2 is the lowest, ~0.989).
// - Each of the three nets gives the same outputs, bit for bit, run plainly (convolutions apply
//   the ReLU/BatchNorm/Scale/DeQuant layers after them and quantize their deploy input
//   themselves) and layer by layer (a `written` callback turns that off), in either build of the
//   engine module (relaxed SIMD and portable).

import assert from "node:assert/strict";
import { loadNet } from "../src/caffe/model.ts";
import { observeActivationRanges } from "../src/engine/calibrate.ts";
import { compareNets } from "../src/engine/compare.ts";
import { runNet } from "../src/engine/run.ts";
import { convertInMemory } from "../src/quant/convert.ts";
import { makeRecord } from "../src/quant/make_record.ts";
import { ENGINE_BUILDS, withEngineBuild } from "./_engine_builds.ts";
import { modelFile, modelNames } from "./_models.ts";

for (const name of modelNames) {
  Deno.test(`fake-quant and deploy models of ${name} agree in the simulator`, async () => {
    const model = Deno.readTextFileSync(modelFile(name, "deploy.prototxt"));
    const weights = Deno.readFileSync(modelFile(name, "weights.caffemodel"));
    const floatNet = loadNet(model, weights);
    const activationRanges = await observeActivationRanges(floatNet, { samples: 1, seed: 1 });
    const record = await makeRecord(floatNet, { activationRanges });
    const { files, report } = await convertInMemory({ model, weights, record });
    const fakeNet = loadNet(files.fakeQuantModel, files.fakeQuantWeights);
    const deployNet = loadNet(files.deployModel, files.deployWeights);
    const outputs = [...(await runNet(floatNet, { seed: 2 })).outputs.keys()];
    const toFake = await compareNets(floatNet, fakeNet, { seed: 2 });
    const toDeploy = await compareNets(fakeNet, deployNet, { seed: 2 });
    const lockstep = await compareNets(fakeNet, deployNet, { seed: 2, lockstep: true });
    assert.deepEqual(toDeploy.skippedB, toFake.skippedA);
    for (const output of outputs) {
      const quantization = toFake.rows.find((row) => row.blob === output)!;
      const deployment = toDeploy.rows.find((row) => row.blob === output)!;
      console.log(
        `${name} ${output}: float vs fake-quant cosine ${quantization.cosine.toFixed(6)}, ` +
          `fake-quant vs deploy cosine ${deployment.cosine.toFixed(8)}, ` +
          `rel L2 ${deployment.relativeL2.toExponential(1)}`,
      );
      assert.ok(quantization.cosine > 0.98, `${output}: float vs fake ${quantization.cosine}`);
      assert.ok(deployment.cosine > 0.9999, `${output}: fake vs deploy ${deployment.cosine}`);
    }
    const compared = lockstep.rows.filter((row) => row.note === undefined);
    for (const output of outputs) {
      assert.ok(compared.some((row) => row.blob === output), `${output} is compared`);
    }
    const quantizedRows = compared.filter((row) => row.quantized).map((row) => row.layer);
    assert.deepEqual(quantizedRows, report.quantizedLayers);
    for (const row of compared) {
      assert.ok(row.relativeL2 <= 1e-5, `lockstep ${row.layer}: rel L2 ${row.relativeL2}`);
    }
    const worst = compared.reduce((x, y) => (y.relativeL2 > x.relativeL2 ? y : x));
    console.log(
      `${name}: fake vs deploy lockstep worst rel L2 ${worst.relativeL2.toExponential(1)} at ` +
        `${worst.layer} over ${compared.length} values`,
    );
    for (const build of ENGINE_BUILDS) {
      await withEngineBuild(build, async () => {
        for (const candidate of [floatNet, fakeNet, deployNet]) {
          const fused = await runNet(candidate, { seed: 3 });
          const layered = await runNet(candidate, { seed: 3, written: () => {} });
          assert.deepEqual([...fused.outputs.keys()], [...layered.outputs.keys()]);
          for (const [blob, tensor] of fused.outputs) {
            assert.deepEqual(
              tensor,
              layered.outputs.get(blob),
              `${blob}: fused vs layer by layer (${build})`,
            );
          }
        }
      });
    }
    const alone = await compareNets(floatNet, fakeNet, { seed: 2, lockstep: true });
    assert.deepEqual(
      alone.rows.filter((row) => row.quantized).map((row) => row.layer),
      report.quantizedLayers,
    );
    assert.deepEqual(alone.sensitivity.map((entry) => entry.layer), report.quantizedLayers);
    for (const entry of alone.sensitivity) {
      assert.ok(entry.relativeL2 > 0, `${entry.layer} alone adds some error`);
    }
  });
}
