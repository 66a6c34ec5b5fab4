import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import protobuf from "npm:protobufjs@8.0.0";
import { modelFile, modelNames, modelsDir } from "./_models.ts";
import { runCli as run } from "./_cli.ts";

/** V1 enum names of SOURCES.md mapped to V2 type names (written here, independent of upgrade.ts). */
const V1_NAMES: Record<string, string> = {
  CONVOLUTION: "Convolution",
  POOLING: "Pooling",
  INNER_PRODUCT: "InnerProduct",
  RELU: "ReLU",
  SOFTMAX: "Softmax",
  LRN: "LRN",
};

/** Per model folder: layer count and count per type, as SOURCES.md states them. */
async function sourcesLayerCounts(): Promise<
  Map<string, { total: number; types: Map<string, number> }>
> {
  const text = await readFile(new URL("SOURCES.md", modelsDir), "utf8");
  const result = new Map<string, { total: number; types: Map<string, number> }>();
  for (const section of text.split("\n### ").slice(1)) {
    const name = section.slice(0, section.indexOf(" "));
    const start = section.indexOf("- Layers: ");
    const rest = section.slice(start + "- Layers: ".length);
    const end = rest.search(/\n- |\n\n/);
    const line = (end < 0 ? rest : rest.slice(0, end)).replace(/\s+/g, " ");
    const total = Number(/\((\d+) layers\)/.exec(line)![1]);
    const types = new Map<string, number>();
    let depth = 0;
    let item = "";
    for (const ch of line.replace(/\(\d+ layers\)/, "") + ",") {
      if (ch === "(") depth++;
      if (ch === ")") depth--;
      if (ch === "," && depth === 0) {
        const match = /^\s*([A-Za-z_]+)(?: \([^)]*\))?(?: ×(\d+))?/.exec(item)!;
        const type = V1_NAMES[match[1]] ?? match[1];
        types.set(type, (types.get(type) ?? 0) + Number(match[2] ?? 1));
        item = "";
      } else {
        item += ch;
      }
    }
    result.set(name, { total, types });
  }
  return result;
}

/** Blob element counts per layer name, decoded by protobufjs from our schema (an independent reader). */
async function referenceBlobCounts(name: string): Promise<Map<string, number[]>> {
  const root = protobuf.loadSync(new URL("../proto/caffe.proto", import.meta.url).pathname);
  const net = root.lookupType("caffe.NetParameter").decode(
    await readFile(modelFile(name, "weights.caffemodel")),
  ) as unknown as {
    layer?: { name: string; blobs?: { data?: number[] }[] }[];
    layers?: { name: string; blobs?: { data?: number[] }[] }[];
  };
  const counts = new Map<string, number[]>();
  for (const layer of [...(net.layer ?? []), ...(net.layers ?? [])]) {
    counts.set(layer.name, (layer.blobs ?? []).map((blob) => blob.data?.length ?? 0));
  }
  return counts;
}

for (const name of modelNames) {
  Deno.test(`inspect --json on ${name} agrees with SOURCES.md and an independent reader`, async () => {
    const expected = (await sourcesLayerCounts()).get(name);
    assert.ok(expected, `SOURCES.md describes ${name}`);
    const { code, out, err } = await run(
      "inspect",
      modelFile(name, "deploy.prototxt"),
      modelFile(name, "weights.caffemodel"),
      "--json",
    );
    assert.equal(code, 0, err);
    const summary = JSON.parse(out) as {
      layers: { name: string; type: string; blobShapes: number[][]; parameterCount: number }[];
    };
    assert.equal(summary.layers.length, expected.total);
    const types = new Map<string, number>();
    for (const layer of summary.layers) types.set(layer.type, (types.get(layer.type) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries(types), Object.fromEntries(expected.types));
    const reference = await referenceBlobCounts(name);
    for (const layer of summary.layers) {
      const counts = reference.get(layer.name) ?? [];
      assert.deepEqual(
        layer.blobShapes.map((shape) => shape.reduce((a, b) => a * b, 1)),
        counts,
        `blobs of ${layer.name}`,
      );
    }
  });
}

Deno.test("inspect without weights lists layers and quantizability", async () => {
  const dir = await mkdtemp("/tmp/caffe-quant-cli-");
  const model = join(dir, "net.prototxt");
  await writeFile(
    model,
    `input: "data" input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8
layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "p" type: "Pooling" bottom: "c" top: "p" pooling_param { pool: MAX kernel_size: 2 } }
layer { name: "a" type: "Pooling" bottom: "p" top: "a" pooling_param { pool: AVE kernel_size: 2 } }
`,
  );
  const { code, out } = await run("inspect", model, "--json");
  assert.equal(code, 0);
  const summary = JSON.parse(out);
  assert.deepEqual(
    summary.layers.map((l: { name: string; quantizable: boolean }) => [l.name, l.quantizable]),
    [["c", true], ["p", false], ["a", true]],
  );
  assert.match(summary.layers[1].reason, /AVE/);
  assert.deepEqual(summary.inputs, [{ name: "data", shape: [1, 3, 8, 8] }]);
});

Deno.test("a user error exits 2 with error[CODE] file:line:col on stderr and JSON on stdout", async () => {
  const dir = await mkdtemp("/tmp/caffe-quant-cli-");
  const model = join(dir, "bad.prototxt");
  await writeFile(
    model,
    'name: "x"\nlayer {\n  name: "a"\n  type: "ReLU"\n  bottom: "nowhere"\n}\n',
  );
  const { code, out, err } = await run("inspect", model, "--json");
  assert.equal(code, 2);
  const { message } = JSON.parse(out).error;
  assert.equal(err, `error[UNDEFINED_BOTTOM] ${model}:5:3: layer "a": ${message}\n`);
  assert.match(message, /"nowhere"/);
  assert.equal(JSON.parse(out).error.code, "UNDEFINED_BOTTOM");
  assert.equal(JSON.parse(out).error.line, 5);
  assert.equal(JSON.parse(out).error.column, 3);
});

Deno.test("usage mistakes exit 2 with USAGE", async () => {
  for (
    const argv of [["inspect"], ["convert", "a", "b"], ["frobnicate"], ["inspect", "x", "--nope"]]
  ) {
    const { code, err } = await run(...argv);
    assert.equal(code, 2, argv.join(" "));
    assert.match(err, /^error\[USAGE\]/);
  }
  assert.equal((await run("--help")).code, 0);
});

Deno.test("convert writes the five files and prints what it did", {
  ignore: !modelNames.includes("lenet"),
}, async () => {
  const dir = await mkdtemp("/tmp/caffe-quant-cli-");
  const record = join(dir, "record.txt");
  // SPEC §4's worked factors on conv1, per tensor; ip1 per tensor.
  await writeFile(
    record,
    `record { key: "conv1" value { scale_d: 1.07450986 offset_d: -14 scale_w: 0.00448934268 offset_w: 0 } }
record { key: "ip1" value { scale_d: 0.05 offset_d: 0 scale_w: 0.001 offset_w: 0 } }
`,
  );
  const args = [
    "convert",
    modelFile("lenet", "deploy.prototxt"),
    modelFile("lenet", "weights.caffemodel"),
    record,
    join(dir, "out", "lenet"),
  ];
  const human = await run(...args);
  assert.equal(human.code, 0, human.err);
  assert.match(human.out, /quantized\s+2 layers: conv1, ip1/);
  assert.deepEqual((await readdir(join(dir, "out"))).sort(), [
    "lenet_deploy_model.prototxt",
    "lenet_deploy_weights.caffemodel",
    "lenet_fake_quant_model.prototxt",
    "lenet_fake_quant_weights.caffemodel",
    "lenet_quant.json",
  ]);
  const again = await run(...args, "--json");
  assert.equal(again.code, 0);
  const report = JSON.parse(again.out);
  assert.deepEqual(report.quantizedLayers, ["conv1", "ip1"]);
  const overwrote = report.warnings.filter((warning: string) => warning.startsWith("overwrote"));
  assert.equal(overwrote.length, 5, "re-running warns about each overwritten file");
  assert.ok(
    report.warnings.includes(
      '2 quantizable layers have no record entry and stay float: "conv2", "ip2"',
    ),
  );
  assert.match(again.err, /warning: overwrote the existing file/);
  const deploy = await readFile(join(dir, "out", "lenet_deploy_model.prototxt"), "utf8");
  assert.match(deploy, /offset: "\\362"/);
});

Deno.test("run reproduces OpenCV's reference outputs from the .npy input", {
  ignore: !modelNames.includes("mtcnn_onet"),
}, async () => {
  const dir = await mkdtemp("/tmp/caffe-quant-cli-");
  const ref = (file: string) => modelFile("mtcnn_onet", `ref/${file}`);
  const { code, out, err } = await run(
    "run",
    modelFile("mtcnn_onet", "deploy.prototxt"),
    modelFile("mtcnn_onet", "weights.caffemodel"),
    "--input",
    `data=${ref("input.data.npy")}`,
    "--out",
    dir,
    "--json",
  );
  assert.equal(code, 0, err);
  const written = JSON.parse(out).outputs.map((o: { blob: string }) => o.blob).sort();
  assert.deepEqual(written, ["conv6-2", "conv6-3", "prob1"]);
  for (const blob of written) {
    const ours = await readFile(join(dir, `output.${blob}.npy`));
    const theirs = await readFile(ref(`output.${blob}.npy`));
    // Same header (shape, dtype); values within the engine tests' tolerance.
    const header = (bytes: Uint8Array) => bytes.subarray(0, 10 + (bytes[8] | (bytes[9] << 8)));
    assert.deepEqual(header(ours), header(theirs));
    const a = new Float32Array(ours.buffer.slice(ours.byteOffset + header(ours).length));
    const b = new Float32Array(theirs.buffer.slice(theirs.byteOffset + header(theirs).length));
    const scale = Math.max(1, ...b.map(Math.abs));
    a.forEach((value, i) => assert.ok(Math.abs(value - b[i]) <= 1e-4 * scale, `${blob}[${i}]`));
  }
});

Deno.test("record --calibrate, convert --compare and compare --lockstep --html", {
  ignore: !modelNames.includes("lenet"),
}, async () => {
  const dir = await mkdtemp("/tmp/caffe-quant-cli-");
  const model = modelFile("lenet", "deploy.prototxt");
  const weights = modelFile("lenet", "weights.caffemodel");
  const record = join(dir, "record.txt");
  const made = await run("record", model, weights, "--calibrate", "2", "--out", record);
  assert.equal(made.code, 0, made.err);
  const recordText = await readFile(record, "utf8");
  assert.equal(recordText.match(/key: /g)?.length, 4, "conv1, conv2, ip1, ip2");
  assert.doesNotMatch(recordText, /scale_d: 0\.007843138\n/, "observed, not default, factors");

  const converted = await run("convert", model, weights, record, join(dir, "m"), "--compare");
  assert.equal(converted.code, 0, converted.err);
  for (const net of ["fake-quant", "deploy"]) {
    const accuracy = new RegExp(
      `${net} +prob \\(classifier\\): PASS: cosine (\\S+), .*top-1 100\\.0%`,
    )
      .exec(converted.out);
    assert.ok(accuracy, converted.out);
    assert.ok(Number(accuracy[1]) > 0.99);
  }
  assert.match(converted.out, /\nmost sensitive layers alone: \w+ rel L2 /);
  assert.match(converted.out, /\nflagged layers: none\n/);
  const lockstep = /lockstep\): worst relative L2 (\S+) at (\S+)/.exec(converted.out);
  assert.ok(lockstep, converted.out);
  assert.ok(Number(lockstep[1]) > 0 && Number(lockstep[1]) <= 1e-5, lockstep[0]);

  const html = join(dir, "report.html");
  const compared = await run(
    "compare",
    model,
    weights,
    join(dir, "m_fake_quant_model.prototxt"),
    join(dir, "m_fake_quant_weights.caffemodel"),
    "--lockstep",
    "--json",
    "--html",
    html,
  );
  assert.equal(compared.code, 0, compared.err);
  const report = JSON.parse(compared.out);
  assert.equal(report.lockstep, true);
  // ip1 is quantized and followed by relu1 in place: one row each, ip1's at its DeQuant.
  assert.deepEqual(
    report.rows.map((row: { layer: string; blob: string }) => `${row.layer}:${row.blob}`),
    [
      "data:data",
      "conv1:conv1",
      "pool1:pool1",
      "conv2:conv2",
      "pool2:pool2",
      "ip1:ip1",
      "relu1:ip1",
      "ip2:ip2",
      "prob:prob",
    ],
  );
  assert.deepEqual(
    report.sensitivity.map((entry: { layer: string }) => entry.layer),
    ["conv1", "conv2", "ip1", "ip2"], // lenet pools by MAX: not quantized
  );
  assert.match(compared.err, new RegExp(`wrote ${html.replaceAll(".", "\\.")}\n`));
  const effects = await run(
    "compare",
    model,
    weights,
    join(dir, "m_fake_quant_model.prototxt"),
    join(dir, "m_fake_quant_weights.caffemodel"),
    "--sensitivity-outputs",
  );
  assert.equal(effects.code, 0, effects.err);
  assert.match(effects.out, /\n {2}rank +layer +blob +cosine +rel L2 +SQNR +net outputs' rel L2/);
  for (const layer of ["conv1", "conv2", "ip1", "ip2"]) {
    assert.match(effects.out, new RegExp(`\\n +\\d +${layer} \\(\\w+\\) .* prob \\S+\\n`));
  }
  const page = await readFile(html, "utf8");
  assert.match(page, /<svg/);
  assert.doesNotMatch(page, /<script src|<link /);
});

Deno.test(
  "convert --compare with an absurd record: a weight warning, the layer flagged, the output failed",
  {
    ignore: !modelNames.includes("lenet"),
  },
  async () => {
    const dir = await mkdtemp("/tmp/caffe-quant-cli-");
    const model = modelFile("lenet", "deploy.prototxt");
    const weights = modelFile("lenet", "weights.caffemodel");
    // ip2's weights lie within ±1: scale_w 10 rounds every one of them to 0.
    const record = join(dir, "record.txt");
    await writeFile(
      record,
      'record { key: "ip2" value { scale_d: 0.05 offset_d: 0 scale_w: 10 offset_w: 0 } }\n',
    );
    const converted = await run("convert", model, weights, record, join(dir, "m"), "--compare");
    assert.equal(converted.code, 0, converted.err);
    assert.match(converted.err, /warning: layer "ip2": 100\.0% of its weights quantize to 0/);
    assert.match(converted.out, /\nflagged layers \(alone\): ip2 \(.*rel L2 \S+ > 0\.1.*\)\n/);
    assert.match(converted.out, /fake-quant +prob \(classifier\): FAIL \(/);
    const lenient = await run(
      "convert",
      model,
      weights,
      record,
      join(dir, "n"),
      "--compare",
      "--max-rel-l2",
      "100",
      "--min-cosine",
      "-1",
      "--min-top1",
      "0",
    );
    assert.equal(lenient.code, 0, lenient.err);
    assert.match(lenient.out, /\nflagged layers: none\n/);
    assert.match(lenient.out, /fake-quant +prob \(classifier\): PASS/);
    const wrong = await run("convert", model, weights, record, join(dir, "o"), "--min-top1", "2");
    assert.equal(wrong.code, 2);
    assert.match(wrong.err, /--min-top1 must lie in \[0, 1\], not 2/);
  },
);
