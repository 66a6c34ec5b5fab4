// Joined runs (src/engine/joined_run.ts): several samples of a net run as one batch give each
// sample's outputs to the bit as its own `runNet` does, on the real nets whose every layer keeps
// the images of a batch apart (float, fake-quant and deploy); nets with a layer that mixes them
// (Concat or Softmax on axis 0, a Reshape or Permute that rewrites it, BatchNorm with batch
// statistics, a layer the simulator does not run) are refused; and a pool streaming many samples
// of such a net (its jobs then carry several samples each), on workers and in-process, still
// equals `runNet` per sample.

import assert from "node:assert/strict";
import { loadNet } from "../src/caffe/model.ts";
import { type Net, netInputs } from "../src/caffe/net.ts";
import { readPrototxt } from "../src/caffe/prototxt.ts";
import { EnginePool } from "../src/engine/engine_pool.ts";
import { allowsJoinedRuns, joinedRun, runSamples } from "../src/engine/joined_run.ts";
import { runNet, type RunResult, type Tensor } from "../src/engine/run.ts";
import { ConvertError } from "../src/errors.ts";
import { convertInMemory } from "../src/quant/convert.ts";
import { makeRecord } from "../src/quant/make_record.ts";
import { randomValues } from "./_builders.ts";
import { modelFile, modelNames } from "./_models.ts";

/** `count` samples of the net's declared input shapes with `rows` rows each, from seed `seed`. */
function samples(net: Net, count: number, seed: number, rows = 1): Map<string, Tensor>[] {
  return Array.from(
    { length: count },
    (_, i) =>
      new Map(
        netInputs(net).map(({ name, shape }, j) => {
          const batched = [rows, ...shape.slice(1)];
          const size = batched.reduce((a, b) => a * b, 1);
          return [name, { shape: batched, data: randomValues(size, seed + 100 * i + j) }];
        }),
      ),
  );
}

/** The bits of a float array. */
function bits(data: Float32Array): Uint32Array {
  return new Uint32Array(data.buffer, data.byteOffset, data.length);
}

/** Asserts `actual` equals `expected` to the bit (outputs, skipped layers, deploy blobs). */
function assertSameRun(actual: RunResult, expected: RunResult, what: string): void {
  assert.deepEqual([...actual.outputs.keys()], [...expected.outputs.keys()], what);
  for (const [blob, tensor] of expected.outputs) {
    const got = actual.outputs.get(blob)!;
    assert.deepEqual(got.shape, tensor.shape, `${what} ${blob} shape`);
    assert.deepEqual(bits(got.data), bits(tensor.data), `${what} ${blob} bits`);
  }
  assert.deepEqual(actual.skipped, expected.skipped, `${what} skipped`);
  assert.deepEqual(actual.deployBlobs, expected.deployBlobs, `${what} deploy blobs`);
}

/** Asserts each of `runs` (one per net of `nets`) equals its net's own `runNet` on `inputs`. */
async function assertAsRunNet(
  runs: RunResult[],
  nets: Net[],
  inputs: Map<string, Tensor>,
  what: string,
): Promise<void> {
  assert.equal(runs.length, nets.length, what);
  for (const [k, net] of nets.entries()) {
    assertSameRun(runs[k], await runNet(net, { inputs }), `${what} net ${k}`);
  }
}

/** The float, fake-quant and deploy nets of shared model `name`. */
async function threeNets(name: string): Promise<Net[]> {
  const model = Deno.readTextFileSync(modelFile(name, "deploy.prototxt"));
  const weights = Deno.readFileSync(modelFile(name, "weights.caffemodel"));
  const float = loadNet(model, weights);
  const { files } = await convertInMemory({ model, weights, record: await makeRecord(float) });
  return [
    float,
    loadNet(files.fakeQuantModel, files.fakeQuantWeights),
    loadNet(files.deployModel, files.deployWeights),
  ];
}

/** Shared models whose every layer keeps the images of a batch apart. */
const JOINABLE = [
  "lenet",
  "cifar10_quick_v1format",
  "mtcnn_pnet",
  "mtcnn_rnet",
  "mtcnn_onet",
  "mtcnn_lnet",
  "vanilla_cnn",
];

for (const name of JOINABLE) {
  Deno.test({
    name: `joined run: ${name} float, fake-quant and deploy, 5 samples as one batch equal runNet`,
    ignore: !modelNames.includes(name),
    async fn() {
      for (const [kind, net] of (await threeNets(name)).entries()) {
        assert.ok(allowsJoinedRuns(net), `${name} net ${kind} allows joined runs`);
        // Samples of one and of two rows, so that rows are split per sample, not per image.
        for (const rows of [1, 2]) {
          const inputs = samples(net, 5, 11 + rows, rows);
          const joined = await joinedRun(net, inputs);
          assert.ok(joined !== undefined, `${name} net ${kind}: joined`);
          assert.equal(joined.length, inputs.length);
          for (const [i, sample] of inputs.entries()) {
            const alone = await runNet(net, { inputs: sample });
            assertSameRun(joined[i], alone, `${name} net ${kind} rows ${rows} sample ${i}`);
          }
          // Distinct samples, distinct outputs: a sample's rows taken from another cannot pass.
          const first = (run: RunResult) => bits([...run.outputs.values()][0].data);
          assert.notDeepEqual(first(joined[0]), first(joined[1]));
        }
      }
    },
  });
}

/** A one-layer-after-Input net of `layerText` (reading "data", writing "out"). */
function netWith(layerText: string, shape = "dim: 1 dim: 4 dim: 3 dim: 3"): Net {
  return readPrototxt(
    `input: "data" input_shape { ${shape} }\nlayer { bottom: "data" top: "out" ${layerText} }`,
  );
}

Deno.test("joined run: layers that mix the images of a batch are refused, their kin allowed", () => {
  const cases: [string, boolean][] = [
    [`name: "c" type: "Concat"`, true],
    [`name: "c" type: "Concat" concat_param { axis: 0 }`, false],
    [`name: "c" type: "Concat" concat_param { concat_dim: 0 }`, false],
    [`name: "c" type: "Concat" concat_param { axis: -1 }`, false],
    [`name: "s" type: "Slice" slice_param { axis: 0 }`, false],
    [`name: "s" type: "Softmax"`, true],
    [`name: "s" type: "Softmax" softmax_param { axis: 0 }`, false],
    [`name: "f" type: "Flatten" flatten_param { axis: 0 }`, false],
    [`name: "r" type: "Reshape" reshape_param { shape { dim: 0 dim: -1 } }`, true],
    [`name: "r" type: "Reshape" reshape_param { shape { dim: 1 dim: -1 } }`, false],
    [`name: "r" type: "Reshape" reshape_param { shape { dim: -1 } }`, false],
    [`name: "r" type: "Reshape" reshape_param { axis: 1 shape { dim: -1 } }`, true],
    [`name: "p" type: "Permute" permute_param { order: 0 order: 2 order: 3 order: 1 }`, true],
    [`name: "p" type: "Permute" permute_param { order: 1 order: 0 order: 2 order: 3 }`, false],
    [`name: "b" type: "BatchNorm"`, true],
    [`name: "b" type: "BatchNorm" batch_norm_param { use_global_stats: false }`, false],
    [`name: "x" type: "PriorBox" prior_box_param { min_size: 4 }`, false],
    [`name: "x" type: "MyCustomLayer"`, false],
    [`name: "x" type: "ReLU"`, true],
  ];
  for (const [text, allowed] of cases) {
    assert.equal(allowsJoinedRuns(netWith(text)), allowed, text);
  }
  // A net edited after it was judged is judged again (a pool without workers runs the caller's).
  const edited = netWith(`name: "c" type: "Concat" concat_param { axis: 1 }`);
  assert.equal(allowsJoinedRuns(edited), true);
  edited.layers[0].params.message("concat_param")!.set("axis", 0);
  assert.equal(allowsJoinedRuns(edited), false);
});

Deno.test("joined run: not for one sample, a refusing net, or samples of other shapes", async () => {
  const concat0 = netWith(`name: "c" type: "Concat" concat_param { axis: 0 }`);
  assert.equal(await joinedRun(concat0, samples(concat0, 3, 1)), undefined);
  const relu = netWith(`name: "x" type: "ReLU"`);
  assert.equal(await joinedRun(relu, samples(relu, 1, 1)), undefined);
  const mixed = [
    ...samples(relu, 2, 1),
    new Map([["data", { shape: [1, 4, 2, 3], data: randomValues(24, 5) }]]),
  ];
  assert.equal(await joinedRun(relu, mixed), undefined);
  const joined = await joinedRun(relu, samples(relu, 3, 2));
  assert.equal(joined?.length, 3);
  // Two inputs of one sample with other row counts: not joined (each sample runs alone).
  const twoInputs = readPrototxt(
    `input: "a" input_shape { dim: 1 dim: 2 dim: 3 dim: 3 }
     input: "b" input_shape { dim: 1 dim: 2 dim: 3 dim: 3 }
     layer { name: "c" type: "Concat" bottom: "a" bottom: "b" top: "out" }`,
  );
  const tensorOf = (rows: number, seed: number) => ({
    shape: [rows, 2, 3, 3],
    data: randomValues(rows * 18, seed),
  });
  const uneven = [1, 2].map((seed) =>
    new Map([["a", tensorOf(1, seed)], ["b", tensorOf(2, seed + 10)]])
  );
  assert.equal(await joinedRun(twoInputs, uneven), undefined);
  const even = [1, 2].map((seed) =>
    new Map([["a", tensorOf(1, seed)], ["b", tensorOf(1, seed + 10)]])
  );
  assert.equal((await joinedRun(twoInputs, even))?.length, 2);
});

Deno.test({
  name:
    "joined run: a pool streaming 300 samples of mtcnn_pnet (jobs of many samples) equals runNet, on 2 workers and in-process",
  ignore: !modelNames.includes("mtcnn_pnet"),
  async fn() {
    const [float, , deploy] = await threeNets("mtcnn_pnet");
    const inputs = samples(float, 300, 3);
    for (const threads of [2, 1]) {
      const pool = await EnginePool.open([float, deploy], { threads });
      try {
        let i = 0;
        for await (const runs of pool.runAll(inputs)) {
          await assertAsRunNet(runs, [float, deploy], inputs[i], `${threads} threads sample ${i}`);
          i++;
        }
        assert.equal(i, inputs.length);
      } finally {
        pool.close();
      }
    }
  },
});

Deno.test({
  name:
    "joined run: runSamples over 19 samples (two groups of 8, then 3 one by one) equals runNet; a bad sample stops it there",
  ignore: !modelNames.includes("lenet"),
  async fn() {
    const [float, , deploy] = await threeNets("lenet");
    const inputs = samples(float, 19, 7);
    const { results, error } = await runSamples([float, deploy], inputs, 0);
    assert.equal(error, undefined);
    assert.equal(results.length, 19);
    for (const [i, sample] of inputs.entries()) {
      await assertAsRunNet(results[i], [float, deploy], sample, `sample ${i}`);
    }
    // Sample 13 (in the second group) holds too few values for its shape.
    const bad = inputs.slice();
    bad[13] = new Map([["data", { shape: [1, 1, 28, 28], data: new Float32Array(5) }]]);
    const stopped = await runSamples([float], bad, 0);
    assert.equal(stopped.results.length, 13);
    assert.ok(stopped.error instanceof ConvertError && stopped.error.code === "BAD_INPUT");
    assertSameRun(stopped.results[12][0], results[12][0], "sample 12 before the bad one");
  },
});

Deno.test({
  name: "joined run: inputs joined into reused arrays: runs at once stay apart, and an input " +
    "that is also an output keeps its values",
  ignore: !modelNames.includes("lenet"),
  async fn() {
    const [float] = await threeNets("lenet");
    // Two streams at once: each group's joined inputs are written while the other's run waits.
    const streams = [samples(float, 24, 40), samples(float, 24, 80)];
    const runs = await Promise.all(streams.map((inputs) => runSamples([float], inputs, 0)));
    for (const [s, inputs] of streams.entries()) {
      assert.equal(runs[s].results.length, inputs.length);
      for (const i of [0, 9, 23]) {
        await assertAsRunNet(runs[s].results[i], [float], inputs[i], `stream ${s} sample ${i}`);
      }
    }
    // "extra" is read by no layer: the net's output as it came in, joined.
    const passing = readPrototxt(
      `input: "data" input_shape { dim: 1 dim: 2 dim: 3 dim: 3 }
       input: "extra" input_shape { dim: 1 dim: 5 }
       layer { name: "r" type: "ReLU" bottom: "data" top: "out" }`,
    );
    const inputs = samples(passing, 32, 9);
    const { results } = await runSamples([passing], inputs, 0);
    assert.ok(allowsJoinedRuns(passing));
    for (const [i, sample] of inputs.entries()) {
      const extra = results[i][0].outputs.get("extra");
      assert.deepEqual(extra?.data, sample.get("extra")!.data, `sample ${i} extra`);
    }
  },
});
