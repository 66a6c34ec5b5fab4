import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ConvertError } from "../src/errors.ts";
import { convertModel } from "../src/io/convert_model.ts";
import { outputNames } from "../src/output_names.ts";
import { modelFile, modelNames } from "./_models.ts";

const hasLenet = modelNames.includes("lenet");
const RECORD =
  `record { key: "conv1" value { scale_d: 0.02 offset_d: 0 scale_w: 0.004 offset_w: 0 } }\n`;

/** A temp dir holding `record.txt` and a listing helper. */
async function workspace() {
  const dir = await mkdtemp("/tmp/caffe-quant-files-");
  const record = join(dir, "record.txt");
  await writeFile(record, RECORD);
  return { dir, record, list: async () => (await readdir(dir, { recursive: true })).sort() };
}

async function rejectsWith(promise: Promise<unknown>, code: string, file?: string) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ConvertError, String(error));
    assert.equal(error.code, code, error.message);
    if (file !== undefined) assert.equal(error.file, file);
    return true;
  });
}

Deno.test("outputNames follows SPEC §7", () => {
  assert.deepEqual(outputNames("out/dir/resnet"), {
    dir: "out/dir",
    names: {
      fakeQuantModel: "resnet_fake_quant_model.prototxt",
      fakeQuantWeights: "resnet_fake_quant_weights.caffemodel",
      deployModel: "resnet_deploy_model.prototxt",
      deployWeights: "resnet_deploy_weights.caffemodel",
      quantInfo: "resnet_quant.json",
    },
  });
  assert.equal(outputNames("out/").names.quantInfo, "quant.json");
  assert.equal(outputNames("out/").dir, "out");
  assert.equal(outputNames("prefix").dir, ".");
  assert.equal(outputNames("/abs").dir, "/");
});

const options = (record: string, savePath: string) => ({
  modelFile: modelFile("lenet", "deploy.prototxt"),
  weightsFile: modelFile("lenet", "weights.caffemodel"),
  recordFile: record,
  savePath,
});

Deno.test(
  "a missing input is INPUT_NOT_FOUND and writes nothing",
  { ignore: !hasLenet },
  async () => {
    const { dir, list } = await workspace();
    const missing = join(dir, "nope.txt");
    await rejectsWith(
      convertModel(options(missing, join(dir, "out/m"))),
      "INPUT_NOT_FOUND",
      missing,
    );
    assert.deepEqual(await list(), ["record.txt"]);
  },
);

Deno.test("a directory as input is INPUT_UNREADABLE", { ignore: !hasLenet }, async () => {
  const { dir, list } = await workspace();
  await rejectsWith(convertModel(options(dir, join(dir, "out/m"))), "INPUT_UNREADABLE", dir);
  assert.deepEqual(await list(), ["record.txt"]);
});

Deno.test(
  "an output directory that cannot be created is OUTPUT_DIR",
  { ignore: !hasLenet },
  async () => {
    const { record, list } = await workspace();
    // A regular file where a directory is needed.
    await rejectsWith(convertModel(options(record, join(record, "sub", "m"))), "OUTPUT_DIR");
    assert.deepEqual(await list(), ["record.txt"]);
  },
);

Deno.test("an output that would overwrite an input is refused", { ignore: !hasLenet }, async () => {
  const { dir, list } = await workspace();
  const record = join(dir, "m_quant.json");
  await writeFile(record, RECORD);
  await rejectsWith(
    convertModel(options(record, join(dir, "m"))),
    "OUTPUT_OVERWRITES_INPUT",
    record,
  );
  assert.deepEqual(await list(), ["m_quant.json", "record.txt"]);
  assert.equal(await readFile(record, "utf8"), RECORD);
});

Deno.test(
  "a conversion error leaves existing outputs untouched",
  { ignore: !hasLenet },
  async () => {
    const { dir, record, list } = await workspace();
    const out = join(dir, "out");
    await mkdir(out);
    await writeFile(join(out, "m_quant.json"), "old");
    const bad = join(dir, "bad.txt");
    await writeFile(bad, `record { key: "pool1" value { scale_d: 1 offset_d: 0 } }\n`);
    await rejectsWith(convertModel(options(bad, join(out, "m"))), "RECORD_NOT_QUANTIZABLE", bad);
    assert.deepEqual(await list(), ["bad.txt", "out", "out/m_quant.json", "record.txt"]);
    assert.equal(await readFile(join(out, "m_quant.json"), "utf8"), "old");
    // And a good run replaces all five, leaving no temporary files behind.
    const report = await convertModel(options(record, join(out, "m")));
    assert.equal((await readdir(out)).length, 5);
    // (RECORD's scale_w clips some of conv1's weights: weight_health_test.ts covers that warning.)
    assert.deepEqual(
      report.warnings.filter((warning) =>
        !warning.includes("of its weights") && !warning.includes("no record entry")
      ),
      [`overwrote the existing file ${join(out, "m_quant.json")}`],
    );
  },
);

/** Record texts, each with one SPEC §8 mistake, and the code it must give (on lenet). */
const BAD_RECORDS: [string, string][] = [
  ["RECORD_EMPTY", "# nothing\n"],
  ["TEXT_SYNTAX", "record { key: }\n"],
  ["RECORD_KEY_WITHOUT_VALUE", `record { key: "conv1" }\n`],
  ["RECORD_DUPLICATE_KEY", RECORD + RECORD],
  ["RECORD_UNKNOWN_LAYER", RECORD.replace("conv1", "conv9")],
  ["RECORD_NOT_QUANTIZABLE", RECORD.replace("conv1", "prob")],
  ["RECORD_BAD_SCALE", RECORD.replace("scale_d: 0.02", "scale_d: nan")],
  ["RECORD_BAD_OFFSET_D", RECORD.replace("offset_d: 0", "offset_d: 128")],
  ["RECORD_BAD_OFFSET_W", RECORD.replace("offset_w: 0", "offset_w: 1")],
  ["RECORD_BAD_LENGTH", RECORD.replace("scale_w: 0.004", "scale_w: 0.004 scale_w: 0.004")],
  ["RECORD_SHIFT_BIT", RECORD.replace("offset_w: 0", "offset_w: 0 shift_bit: 1")],
  ["BIAS_OVERFLOW", RECORD.replace("scale_d: 0.02", "scale_d: 1e-20")],
];

for (const [code, text] of BAD_RECORDS) {
  Deno.test(`record mistake ${code}: typed error at its place, nothing written`, {
    ignore: !hasLenet,
  }, async () => {
    const { dir, list } = await workspace();
    const bad = join(dir, "bad.txt");
    await writeFile(bad, text);
    await assert.rejects(convertModel(options(bad, join(dir, "out", "m"))), (error) => {
      assert.ok(error instanceof ConvertError);
      assert.equal(error.code, code, error.message);
      if (code === "BIAS_OVERFLOW") {
        assert.equal(error.layer, "conv1");
      } else if (code !== "RECORD_EMPTY") {
        assert.equal(error.file, bad);
        // The entry at fault: the second one for a duplicate key, else the only one.
        assert.equal(error.line, code === "RECORD_DUPLICATE_KEY" ? 2 : 1);
        assert.ok(error.column !== undefined);
      }
      return true;
    });
    assert.deepEqual(await list(), ["bad.txt", "record.txt"]);
  });
}

Deno.test("model mistakes: typed errors naming the layer, nothing written", {
  ignore: !hasLenet,
}, async () => {
  const { dir, record, list } = await workspace();
  const prototxt = await readFile(modelFile("lenet", "deploy.prototxt"), "utf8");
  const cases: [string, string, string][] = [
    ["MISSING_WEIGHTS", prototxt.replace('name: "ip2"', 'name: "ip9"'), "ip9"],
    ["WEIGHTS_SHAPE_MISMATCH", prototxt.replace("num_output: 500", "num_output: 400"), "ip1"],
    ["DUPLICATE_LAYER", prototxt.replace('name: "ip2"', 'name: "ip1"'), "ip1"],
  ];
  for (const [code, text, layer] of cases) {
    const model = join(dir, `${code}.prototxt`);
    await writeFile(model, text);
    await assert.rejects(
      convertModel({ ...options(record, join(dir, "out", "m")), modelFile: model }),
      (error) => {
        assert.ok(error instanceof ConvertError);
        assert.equal(error.code, code, error.message);
        assert.equal(error.layer, layer);
        return true;
      },
    );
  }
  // A model that is already quantized: convert lenet, then feed its fake-quant output back.
  const done = await convertModel(options(record, join(dir, "first", "m")));
  const before = await list();
  await assert.rejects(
    convertModel({
      modelFile: done.outputs.fakeQuantModel,
      weightsFile: done.outputs.fakeQuantWeights,
      recordFile: record,
      savePath: join(dir, "second", "m"),
    }),
    (error) => error instanceof ConvertError && error.code === "ALREADY_QUANTIZED",
  );
  assert.deepEqual(await list(), before);
});

Deno.test("path mistakes are found before the model is read or converted", {
  ignore: !hasLenet,
}, async () => {
  const { dir, list } = await workspace();
  // Both the model and the weights are missing: the model, named first, is reported.
  const missingModel = join(dir, "none.prototxt");
  await rejectsWith(
    convertModel({
      ...options(join(dir, "record.txt"), join(dir, "m")),
      modelFile: missingModel,
      weightsFile: join(dir, "none.caffemodel"),
    }),
    "INPUT_NOT_FOUND",
    missingModel,
  );
  // A record that would fail, saved where an output would replace it: the path is reported.
  const record = join(dir, "m_quant.json");
  await writeFile(record, "not a record {");
  await rejectsWith(convertModel(options(record, join(dir, "m"))), "OUTPUT_OVERWRITES_INPUT");
  assert.deepEqual(await list(), ["m_quant.json", "record.txt"]);
});
