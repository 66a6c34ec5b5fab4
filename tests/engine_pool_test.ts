// The engine pool (src/engine/engine_pool.ts): samples run on workers give, bit for bit and in
// sample order, what `runNet` gives on one thread (in either build of the engine module: the
// workers take the build of the thread that opens the pool); a worker's ConvertError arrives as the same
// ConvertError; without Worker the pool runs in-process; jobs of a worker that never starts or
// fails to start run on the pool's own thread; `run --threads` writes the same bytes.

import assert from "node:assert/strict";
import { loadNet } from "../src/caffe/model.ts";
import { type Net, netInputs } from "../src/caffe/net.ts";
import { EnginePool } from "../src/engine/engine_pool.ts";
import {
  bundleTensors,
  type FromWorker,
  serveEngine,
  type ToWorker,
  unbundleTensors,
} from "../src/engine/engine_worker.ts";
import { packNet } from "../src/engine/net_transfer.ts";
import { engineBuild } from "../src/wasm/engine_build.ts";
import { evaluateAccuracy } from "../src/engine/evaluate.ts";
import { runNet, type RunResult, type Tensor } from "../src/engine/run.ts";
import { ConvertError } from "../src/errors.ts";
import { convertInMemory } from "../src/quant/convert.ts";
import { makeRecord } from "../src/quant/make_record.ts";
import { randomValues } from "./_builders.ts";
import { runCli } from "./_cli.ts";
import { checkError } from "./_errors.ts";
import { lenetInput, mnistAvailable, mnistDigits } from "./_mnist.ts";
import { ENGINE_BUILDS, withEngineBuild } from "./_engine_builds.ts";
import { modelFile, modelNames } from "./_models.ts";

const have = (name: string) => modelNames.includes(name);

function readNet(name: string): { model: string; weights: Uint8Array; net: Net } {
  const model = Deno.readTextFileSync(modelFile(name, "deploy.prototxt"));
  const weights = Deno.readFileSync(modelFile(name, "weights.caffemodel"));
  return { model, weights, net: loadNet(model, weights) };
}

/** `count` samples of the net's declared input shapes, values from seed `seed` on. */
function samples(net: Net, count: number, seed: number): Map<string, Tensor>[] {
  return Array.from(
    { length: count },
    (_, i) =>
      new Map(
        netInputs(net).map(({ name, shape }, j) => {
          const size = shape.reduce((a, b) => a * b, 1);
          return [name, { shape, data: randomValues(size, seed + 100 * i + j) }];
        }),
      ),
  );
}

/** Asserts `actual` equals `expected` to the bit (outputs, skipped layers, deploy blobs). */
function assertSameRun(actual: RunResult, expected: RunResult, what: string): void {
  assert.deepEqual([...actual.outputs.keys()], [...expected.outputs.keys()], what);
  for (const [blob, tensor] of expected.outputs) {
    const got = actual.outputs.get(blob)!;
    assert.deepEqual(got.shape, tensor.shape, `${what} ${blob} shape`);
    assert.ok(got.data instanceof Float32Array, `${what} ${blob} is float32`);
    const bits = (data: Float32Array) => new Uint32Array(data.buffer, data.byteOffset, data.length);
    assert.deepEqual(bits(got.data), bits(tensor.data), `${what} ${blob} bits`);
  }
  assert.deepEqual(actual.skipped, expected.skipped, `${what} skipped`);
  assert.deepEqual(actual.deployBlobs, expected.deployBlobs, `${what} deploy blobs`);
}

async function collect(pool: EnginePool, inputs: Map<string, Tensor>[]): Promise<RunResult[][]> {
  const results: RunResult[][] = [];
  for await (const result of pool.runAll(inputs)) results.push(result);
  return results;
}

for (const build of ENGINE_BUILDS) {
  Deno.test({
    name:
      `engine pool: float, fake-quant and deploy mtcnn_onet on 2 workers equal runNet, in order (${build} build)`,
    ignore: !have("mtcnn_onet"),
    fn: () =>
      withEngineBuild(build, async () => {
        const { model, weights, net } = readNet("mtcnn_onet");
        const record = await makeRecord(net);
        const { files } = await convertInMemory({ model, weights, record });
        const nets = [
          net,
          loadNet(files.fakeQuantModel, files.fakeQuantWeights),
          loadNet(files.deployModel, files.deployWeights),
        ];
        const inputs = samples(net, 7, 1);
        const expected: RunResult[][] = [];
        for (const sample of inputs) {
          expected.push(await Promise.all(nets.map((n) => runNet(n, { inputs: sample }))));
        }
        // Distinct samples give distinct outputs, so a result out of order cannot pass.
        const first = (results: RunResult[]) => [...results[0].outputs.values()][0].data;
        assert.notDeepEqual(first(expected[0]), first(expected[1]));
        for (const threads of [1, 2]) {
          const pool = await EnginePool.open(nets, { threads });
          try {
            assert.equal(pool.threads, threads);
            const results = await collect(pool, inputs);
            assert.equal(results.length, inputs.length);
            results.forEach((sample, i) =>
              sample.forEach((result, n) =>
                assertSameRun(result, expected[i][n], `${threads} threads sample ${i} net ${n}`)
              )
            );
          } finally {
            pool.close();
          }
        }
        // The caller's input arrays are copied, not transferred away.
        assert.equal(inputs[0].get("data")!.data.length, 3 * 48 * 48);
      }),
  });
}

Deno.test({
  name:
    "engine pool: skipped layers (yufacedetect's DetectionOutput) and V1 weights (lenet_v1format)",
  ignore: !have("yufacedetect_v1") || !have("lenet_v1format"),
  async fn() {
    for (const name of ["yufacedetect_v1", "lenet_v1format"]) {
      const { net } = readNet(name);
      const inputs = samples(net, 3, 7);
      const pool = await EnginePool.open([net], { threads: 2 });
      try {
        assert.equal(pool.threads, 2);
        const results = await collect(pool, inputs);
        for (const [i, sample] of inputs.entries()) {
          assertSameRun(results[i][0], await runNet(net, { inputs: sample }), `${name} ${i}`);
        }
        if (name === "yufacedetect_v1") assert.ok(results[0][0].skipped.length > 0);
      } finally {
        pool.close();
      }
    }
  },
});

Deno.test({
  name: "engine pool: a worker's error is the ConvertError runNet throws, at its sample's turn",
  ignore: !have("lenet"),
  async fn() {
    const { net } = readNet("lenet");
    // Enough samples that later jobs carry several (lenet is fast), the bad one inside such a job.
    const inputs = samples(net, 60, 3);
    const bad = 50;
    // Three channels where the first convolution's weights take one.
    inputs[bad] = new Map([["data", { shape: [1, 3, 28, 28], data: randomValues(3 * 784, 9) }]]);
    const expected = await runNet(net, { inputs: inputs[bad] }).then(
      () => assert.fail("runNet accepted three channels"),
      (error) => error as ConvertError,
    );
    assert.ok(expected instanceof ConvertError);
    for (const threads of [1, 2]) {
      const pool = await EnginePool.open([net], { threads });
      const seen: RunResult[][] = [];
      try {
        await assert.rejects(async () => {
          for await (const result of pool.runAll(inputs)) seen.push(result);
        }, (error: unknown) => {
          assert.ok(error instanceof ConvertError, `${threads} threads: a ConvertError`);
          checkError(error, { ...expected.place(), code: expected.code });
          assert.equal(error.message, expected.message);
          return true;
        });
        assert.equal(seen.length, bad, `${threads} threads: the samples before it came through`);
        for (const i of [0, bad - 1]) {
          assertSameRun(seen[i][0], await runNet(net, { inputs: inputs[i] }), `sample ${i}`);
        }
        // The pool still runs after a failed sample.
        assertSameRun(
          (await pool.run(inputs[bad + 1]))[0],
          await runNet(net, { inputs: inputs[bad + 1] }),
          "",
        );
      } finally {
        pool.close();
      }
    }
  },
});

/** Runs `net` through a 2-thread pool opened with no global `Worker`; restores it after. */
async function withoutWebWorkers(net: Net, inputs: Map<string, Tensor>[]) {
  const saved = Object.getOwnPropertyDescriptor(globalThis, "Worker")!;
  // deno-lint-ignore no-explicit-any
  delete (globalThis as any).Worker;
  let pool: EnginePool;
  try {
    pool = await EnginePool.open([net], { threads: 2 });
  } finally {
    Object.defineProperty(globalThis, "Worker", saved);
  }
  try {
    return { threads: pool.threads, results: await collect(pool, inputs) };
  } finally {
    pool.close();
  }
}

/**
 * Runs `script` (JavaScript) in a fresh Deno process allowed to read only, with lenet's prototxt and
 * caffemodel and then `args` as its arguments: its standard output, parsed as JSON.
 */
async function lenetScriptOutput(script: string, ...args: string[]): Promise<unknown> {
  const file = await Deno.makeTempFile({ suffix: ".js" });
  try {
    await Deno.writeTextFile(file, script);
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        file,
        modelFile("lenet", "deploy.prototxt"),
        modelFile("lenet", "weights.caffemodel"),
        ...args,
      ],
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    return JSON.parse(new TextDecoder().decode(stdout));
  } finally {
    await Deno.remove(file);
  }
}

/** Asserts rows `rows` of `prob` are lenet's on `randomValues(784, seed + row)`, to the bit. */
async function assertLenetProbs(prob: number[][], seed: number, rows: number[]): Promise<void> {
  const { net } = readNet("lenet");
  for (const i of rows) {
    const data = randomValues(784, seed + i);
    const { outputs } = await runNet(net, {
      inputs: new Map([["data", { shape: [1, 1, 28, 28], data }]]),
    });
    // JSON carries float32 values exactly (as doubles).
    assert.deepEqual(prob[i], [...outputs.get("prob")!.data], `sample ${i}`);
  }
}

/** The pool's modules, in a script run by {@linkcode lenetScriptOutput}. */
const POOL_IMPORTS = `
  import { loadNet } from "${new URL("../src/caffe/model.ts", import.meta.url)}";
  import { EnginePool } from "${new URL("../src/engine/engine_pool.ts", import.meta.url)}";
  import { registerWorkerStarter } from "${new URL(
  "../src/engine/worker_starter.ts",
  import.meta.url,
)}";
  import { randomValues } from "${new URL("./_builders.ts", import.meta.url)}";
  const net = loadNet(Deno.readTextFileSync(Deno.args[0]), Deno.readFileSync(Deno.args[1]));`;

/**
 * The script's lines that run `count` lenet samples (`randomValues(784, seed + i)`) through `pool`
 * and print the prob rows (and `report`'s fields) as JSON.
 */
function probsOfPool(count: number, seed: number, report: string): string {
  return `
    const inputs = Array.from({ length: ${count} }, (_, i) =>
      new Map([["data", { shape: [1, 1, 28, 28], data: randomValues(784, ${seed} + i) }]]));
    const prob = [];
    for await (const [result] of pool.runAll(inputs)) prob.push([...result.outputs.get("prob").data]);
    pool.close();
    console.log(JSON.stringify({ ${report}, prob }));`;
}

Deno.test({
  name: "engine pool: without Worker nor a registered starter it runs in-process, same results",
  ignore: !have("lenet"),
  async fn() {
    // A fresh process: this one has Node's starter registered (src/cli.ts, via tests/_cli.ts).
    const script = `${POOL_IMPORTS}
      delete globalThis.Worker;
      const pool = await EnginePool.open([net], { threads: 2 });
      ${probsOfPool(2, 40, "threads: pool.threads")}`;
    const { threads, prob } = await lenetScriptOutput(script) as {
      threads: number;
      prob: number[][];
    };
    assert.equal(threads, 1);
    await assertLenetProbs(prob, 40, [0, 1]);
  },
});

for (const kind of ["never", "fails"] as const) {
  Deno.test({
    name: kind === "never"
      ? "engine pool: jobs posted to a worker that never starts are taken back and run here"
      : "engine pool: the jobs of a worker that fails to start run on the other threads",
    ignore: !have("lenet"),
    async fn() {
      // A fresh process whose one worker is a fake port: "never" takes messages and never
      // answers, "fails" fails to start 30 ms after it is made.
      const script = `${POOL_IMPORTS}
        delete globalThis.Worker;
        let posted = 0;
        registerWorkerStarter(() => ({
          post(message) { if (message.kind === "run") posted++; },
          listen(onMessage, onError) {
            if (Deno.args[2] === "fails") setTimeout(() => onError("cannot start"), 30);
          },
          terminate() {},
        }), 2);
        const hung = setTimeout(() => { console.error("hung"); Deno.exit(3); }, 30000);
        const pool = await EnginePool.open([net], { threads: 2 });
        ${probsOfPool(40, 70, "threads: pool.threads, posted")}
        clearTimeout(hung);`;
      const { threads, posted, prob } = await lenetScriptOutput(script, kind) as {
        threads: number;
        posted: number;
        prob: number[][];
      };
      assert.equal(threads, 2);
      // Jobs went to the fake worker (none of them came back from it).
      assert.ok(posted > 0, `${posted} jobs posted`);
      assert.equal(prob.length, 40);
      await assertLenetProbs(prob, 70, [0, 17, 39]);
    },
  });
}

Deno.test({
  name:
    "engine worker: it runs a job whose claim it wins, answers `taken` for one the pool took, " +
    "and claims a job only when it starts it",
  ignore: !have("lenet"),
  async fn() {
    const { net } = readNet("lenet");
    const claims = new Int32Array(new SharedArrayBuffer(12));
    const answers: FromWorker[] = [];
    /** Slot 2's claim when each answer was posted. */
    const laterClaims: number[] = [];
    let listener: ((message: ToWorker) => void) | undefined;
    serveEngine({
      post(message) {
        answers.push(message);
        laterClaims.push(claims[2]);
      },
      listen: (handler) => listener = handler,
    });
    const nextAnswer = async (): Promise<[FromWorker, number]> => {
      for (let waits = 0; answers.length === 0; waits++) {
        assert.ok(waits < 10_000, "the worker answers");
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      return [answers.shift()!, laterClaims.shift()!];
    };
    listener!({ kind: "nets", nets: [packNet(net, true)], build: engineBuild(), claims });
    assert.deepEqual((await nextAnswer())[0], { kind: "ready" });
    const [inputs] = samples(net, 1, 5);
    const job = (id: number, claim: number): ToWorker => ({
      kind: "run",
      id,
      nets: [0],
      samples: bundleTensors([{ tensors: inputs }]),
      seed: 0,
      claim,
    });
    // Slot 1 was claimed by the pool's thread (2): the worker leaves the job.
    claims[1] = 2;
    listener!(job(7, 1));
    const [taken] = await nextAnswer();
    assert.equal(taken.kind, "taken");
    assert.equal(taken.kind === "taken" && taken.id, 7);
    assert.equal(claims[1], 2);
    // Slot 0 is free: the worker claims it (1) and runs the job. The job after it, sent at once,
    // is not claimed until the first is done: the pool's thread may still take it back.
    listener!(job(8, 0));
    listener!(job(9, 2));
    const [done, slot2WhenDone] = await nextAnswer();
    assert.equal(done.kind, "done");
    assert.equal(claims[0], 1);
    assert.equal(slot2WhenDone, 0);
    const [second] = await nextAnswer();
    assert.equal(second.kind === "done" && second.id, 9);
    assert.equal(claims[2], 1);
    if (done.kind !== "done") return;
    assert.equal(done.id, 8);
    assert.equal(done.claim, 0);
    const [result] = unbundleTensors(done.results, true);
    const expected = await runNet(net, { inputs });
    assert.deepEqual(result!.tensors.get("prob")!.data, expected.outputs.get("prob")!.data);
  },
});

Deno.test({
  name: "engine pool: without Web Workers, node:worker_threads workers (src/io/node_workers.ts)",
  ignore: !have("lenet"),
  async fn() {
    await import("../src/io/node_workers.ts");
    const { net } = readNet("lenet");
    const inputs = samples(net, 3, 21);
    const { threads, results } = await withoutWebWorkers(net, inputs);
    assert.equal(threads, 2);
    for (const [i, sample] of inputs.entries()) {
      assertSameRun(results[i][0], await runNet(net, { inputs: sample }), `sample ${i}`);
    }
  },
});

Deno.test("engine pool: threads must be a whole number ≥ 1", async () => {
  for (const threads of [0, 1.5, -1, NaN]) {
    await assert.rejects(
      () => EnginePool.open([], { threads }),
      (error: unknown) => error instanceof ConvertError && error.code === "BAD_ARGUMENT",
    );
  }
});

Deno.test({
  name:
    "engine pool: with workers this thread runs the shared copy; the caller's unmade blobs stay so",
  ignore: !have("lenet"),
  async fn() {
    // A fresh process whose one worker never answers: this thread runs every job. lenet's
    // unaligned caffemodel data are deferred blobs, whose arrays a run on the caller's net (or
    // packing it by its arrays) would make.
    const script = `${POOL_IMPORTS}
      const { DeferredBlob } = await import("${new URL(
      "../src/caffe/deferred_blob.ts",
      import.meta.url,
    )}");
      delete globalThis.Worker;
      registerWorkerStarter(() => ({ post() {}, listen() {}, terminate() {} }), 2);
      const unmade = () => net.layers.flatMap((layer) => layer.blobs)
        .filter((blob) => blob instanceof DeferredBlob && blob.held === undefined).length;
      const unmadeBefore = unmade();
      const pool = await EnginePool.open([net], { threads: 2 });
      const inputs = Array.from({ length: 12 }, (_, i) =>
        new Map([["data", { shape: [1, 1, 28, 28], data: randomValues(784, 90 + i) }]]));
      const prob = [];
      for await (const [result] of pool.runAll(inputs)) prob.push([...result.outputs.get("prob").data]);
      pool.close();
      console.log(JSON.stringify({ unmadeBefore, unmadeAfter: unmade(), prob }));`;
    const { unmadeBefore, unmadeAfter, prob } = await lenetScriptOutput(script) as {
      unmadeBefore: number;
      unmadeAfter: number;
      prob: number[][];
    };
    assert.ok(unmadeBefore > 0, `${unmadeBefore} deferred blobs`);
    assert.equal(unmadeAfter, unmadeBefore);
    await assertLenetProbs(prob, 90, [0, 5, 11]);
  },
});

Deno.test({
  name: "caffe-quant run --threads 2 writes the bytes --threads 1 writes, samples in order",
  ignore: !have("lenet"),
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const count = 5;
      const values = randomValues(count * 784, 11);
      const header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${count}, 1, 28, 28), }`;
      const padded = header.padEnd(118 - 1, " ") + "\n";
      const npy = new Uint8Array(10 + padded.length + values.byteLength);
      npy.set([0x93, ...new TextEncoder().encode("NUMPY"), 1, 0, padded.length, 0]);
      npy.set(new TextEncoder().encode(padded), 10);
      npy.set(new Uint8Array(values.buffer), 10 + padded.length);
      await Deno.writeFile(`${dir}/digits.npy`, npy);
      const outputs: Uint8Array[] = [];
      for (const threads of ["1", "2"]) {
        const result = await runCli(
          "run",
          modelFile("lenet", "deploy.prototxt"),
          modelFile("lenet", "weights.caffemodel"),
          "--data",
          `${dir}/digits.npy`,
          "--threads",
          threads,
          "--out",
          `${dir}/out${threads}`,
        );
        assert.equal(result.code, 0, result.err);
        outputs.push(await Deno.readFile(`${dir}/out${threads}/output.prob.npy`));
      }
      assert.deepEqual(outputs[1], outputs[0]);
      // Each stacked row is its own sample's run (one-thread runNet), in order.
      const { net } = readNet("lenet");
      const rows = new Float32Array(outputs[1].slice(outputs[1].length - count * 10 * 4).buffer);
      for (let i = 0; i < count; i++) {
        const data = values.slice(i * 784, (i + 1) * 784);
        const { outputs: own } = await runNet(net, {
          inputs: new Map([["data", { shape: [1, 1, 28, 28], data }]]),
        });
        assert.deepEqual(rows.slice(i * 10, i * 10 + 10), own.get("prob")!.data, `row ${i}`);
      }
      const bad = await runCli("run", "a", "b", "--threads", "0", "--out", dir);
      assert.equal(bad.code, 2);
      assert.match(bad.err, /error\[USAGE\] --threads needs a whole number >= 1, not "0"/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "evaluateAccuracy: the report on 2 threads is the one-thread report, sample by sample",
  ignore: !have("lenet") || !mnistAvailable,
  async fn() {
    const { model, weights, net } = readNet("lenet");
    const record = await makeRecord(net);
    const { files } = await convertInMemory({ model, weights, record });
    const nets = {
      float: net,
      fakeQuant: loadNet(files.fakeQuantModel, files.fakeQuantWeights),
      deploy: loadNet(files.deployModel, files.deployWeights),
    };
    const digits = [...(await mnistDigits(3)).slice(0, 6), ...(await mnistDigits(8)).slice(0, 6)];
    const evaluation = digits.map((digit) => ({
      inputs: new Map([["data", lenetInput(digit)]]),
      label: digit.label,
    }));
    const reports = [];
    for (const threads of [1, 2]) {
      const progress: number[] = [];
      // An async source, as the CLI's data gives.
      const source = async function* () {
        yield* evaluation;
      };
      reports.push(
        await evaluateAccuracy(nets, source(), { threads, onProgress: (n) => progress.push(n) }),
      );
      assert.deepEqual(progress, digits.map((_, i) => i + 1));
    }
    assert.equal(reports[0].samples, digits.length);
    assert.equal(reports[0].labelled, digits.length);
    assert.deepEqual(reports[1], reports[0]);
  },
});

Deno.test({
  name: "engine pool: sample buffers handed back and reused, samples of mixed sizes, equal runNet",
  ignore: !have("mtcnn_pnet"),
  async fn() {
    // mtcnn_pnet is fully convolutional: samples of two sizes make jobs of different sizes, so a
    // job's samples often go into a larger buffer a worker handed back.
    const { net } = readNet("mtcnn_pnet");
    const inputs = Array.from({ length: 240 }, (_, i) => {
      const [height, width] = i % 3 === 0 ? [37, 51] : [12, 12];
      const shape = [1, 3, height, width];
      return new Map([["data", { shape, data: randomValues(3 * height * width, 500 + i) }]]);
    });
    const pool = await EnginePool.open([net], { threads: 2 });
    try {
      assert.equal(pool.threads, 2);
      const results = await collect(pool, inputs);
      for (const [i, sample] of inputs.entries()) {
        assertSameRun(results[i][0], await runNet(net, { inputs: sample }), `sample ${i}`);
      }
    } finally {
      pool.close();
    }
  },
});
