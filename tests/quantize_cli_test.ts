import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { writeNpy } from "../core.ts";
import { lenetInput, mnistAvailable, mnistDigits } from "./_mnist.ts";
import { modelFile, modelNames } from "./_models.ts";
import { runCli as run } from "./_cli.ts";

const ignore = !modelNames.includes("lenet") || !mnistAvailable;
const model = modelFile("lenet", "deploy.prototxt");
const weights = modelFile("lenet", "weights.caffemodel");

/** `count` digits (cycling through the classes) as one .npy of [N, 1, 28, 28] and a labels file. */
async function digitsNpy(dir: string, count: number, offset = 0): Promise<[string, string]> {
  const byClass = await Promise.all(Array.from({ length: 10 }, (_, d) => mnistDigits(d)));
  const digits = Array.from(
    { length: count },
    (_, i) => byClass[i % 10][offset + Math.floor(i / 10)],
  );
  const data = new Float32Array(count * 784);
  digits.forEach((digit, i) => data.set(lenetInput(digit).data, i * 784));
  const npy = join(dir, `digits${offset}.npy`);
  const labels = join(dir, `labels${offset}.txt`);
  await writeFile(npy, writeNpy({ shape: [count, 1, 28, 28], data }));
  await writeFile(labels, digits.map((digit) => digit.label).join("\n") + "\n");
  return [npy, labels];
}

Deno.test(
  "quantize: calibrates on the first --samples, evaluates on the rest, writes the record beside the five outputs",
  {
    ignore,
  },
  async () => {
    const dir = await mkdtemp("/tmp/caffe-quant-quantize-");
    const [npy, labels] = await digitsNpy(dir, 60);
    const html = join(dir, "report.html");
    const save = join(dir, "out", "lenet");
    const made = await run(
      "quantize",
      model,
      weights,
      save,
      "--data",
      npy,
      "--labels",
      labels,
      "--samples",
      "20",
      "--html",
      html,
    );
    assert.equal(made.code, 0, made.err);
    assert.match(
      made.err,
      /no --eval-data: calibrating on the first 20 of the 60 samples .* evaluating on the other 40/,
    );
    assert.match(made.out, /calibrated 4 layers on 20 samples/);
    assert.match(made.out, /accuracy on 40 evaluation samples, 40 labelled/);
    assert.match(made.out, /prob \(classifier\)\s+float\s+\d+\.\d%/);
    assert.deepEqual((await readdir(join(dir, "out"))).sort(), [
      "lenet_deploy_model.prototxt",
      "lenet_deploy_weights.caffemodel",
      "lenet_fake_quant_model.prototxt",
      "lenet_fake_quant_weights.caffemodel",
      "lenet_quant.json",
      "lenet_record.txt",
    ]);
    assert.match(await readFile(html, "utf8"), /<svg/);

    // The record is the one `record` makes from the same 20 samples.
    const recordOut = join(dir, "record.txt");
    const recorded = await run(
      "record",
      model,
      weights,
      "--data",
      npy,
      "--samples",
      "20",
      "--out",
      recordOut,
    );
    assert.equal(recorded.code, 0, recorded.err);
    assert.equal(
      await readFile(join(dir, "out", "lenet_record.txt"), "utf8"),
      await readFile(recordOut, "utf8"),
    );

    // --json: the same run as data, with --eval-data kept apart.
    const [evalNpy, evalLabels] = await digitsNpy(dir, 30, 50);
    const json = await run(
      "quantize",
      model,
      weights,
      join(dir, "json", "m"),
      "--data",
      npy,
      "--samples",
      "20",
      "--eval-data",
      evalNpy,
      "--labels",
      evalLabels,
      "--json",
    );
    assert.equal(json.code, 0, json.err);
    assert.doesNotMatch(json.err, /no --eval-data/);
    const report = JSON.parse(json.out);
    assert.equal(report.calibration.samples, 20);
    assert.equal(report.accuracy.samples, 30);
    const prob = report.accuracy.outputs[0];
    assert.equal(prob.blob, "prob");
    assert.ok(prob.nets.deploy.top1Agreement >= 29 / 30, JSON.stringify(prob.nets.deploy));
  },
);

Deno.test("quantize: usage errors", { ignore }, async () => {
  const dir = await mkdtemp("/tmp/caffe-quant-quantize-");
  const none = await run("quantize", model, weights, join(dir, "m"));
  assert.equal(none.code, 2);
  assert.match(none.err, /quantize needs calibration data: --data/);
  const [npy] = await digitsNpy(dir, 4);
  const tooFew = await run(
    "quantize",
    model,
    weights,
    join(dir, "m"),
    "--data",
    npy,
    "--samples",
    "4",
  );
  assert.equal(tooFew.code, 2);
  assert.match(tooFew.err, /--data gives 4 samples: too few to keep evaluation samples apart/);
  assert.deepEqual(await readdir(dir), ["digits0.npy", "labels0.txt"], "nothing written");
});

Deno.test(
  "quantize: an --html page naming an input or one of its own outputs is refused before anything is written",
  { ignore },
  async () => {
    const dir = await mkdtemp("/tmp/caffe-quant-quantize-");
    const [npy, labels] = await digitsNpy(dir, 4);
    const npyBytes = await readFile(npy);
    const save = join(dir, "out", "lenet");
    const quantizeWithHtml = (html: string) =>
      run("quantize", model, weights, save, "--data", npy, "--labels", labels, "--html", html);

    const onData = await quantizeWithHtml(npy);
    assert.equal(onData.code, 2, onData.err);
    assert.match(onData.err, /^error\[OUTPUT_OVERWRITES_INPUT\] .*digits0\.npy/m);
    assert.deepEqual(await readFile(npy), npyBytes, "the data file is unchanged");

    const onLabels = await quantizeWithHtml(labels);
    assert.equal(onLabels.code, 2, onLabels.err);
    assert.match(onLabels.err, /^error\[OUTPUT_OVERWRITES_INPUT\] .*labels0\.txt/m);

    const onOwn = await quantizeWithHtml(`${save}_quant.json`);
    assert.equal(onOwn.code, 2, onOwn.err);
    assert.match(onOwn.err, /^error\[USAGE\] --html .*lenet_quant\.json is one of the files/m);

    await assert.rejects(readdir(join(dir, "out")), { code: "ENOENT" }, "nothing written");
  },
);
