// AMCT's configuration files (SPEC §11 "Configuration"): the JSON file create_quant_config
// writes and the simplified protobuf-text config, good ones resolved per layer as written by
// hand here, bad ones refused with their code, line and column.

import assert from "node:assert/strict";
import { DEFAULT_ACTIVATION_SETTINGS } from "../src/calibrate/activation.ts";
import { calibrate } from "../src/calibrate/calibrate.ts";
import type { CalibrationConfig } from "../src/calibrate/config.ts";
import { readJsonConfig, writeJsonConfig } from "../src/calibrate/config_json.ts";
import { readQuantConfig } from "../src/calibrate/config_read.ts";
import { readTextConfig } from "../src/calibrate/config_text.ts";
import { ConvertError } from "../src/errors.ts";
import { runCli as run } from "./_cli.ts";
import { loadNet } from "../src/caffe/model.ts";
import { modelFile, modelNames } from "./_models.ts";
import { avePool, conv, innerProduct, layer, net, random, relu } from "./_builders.ts";

function model() {
  const next = random(9);
  return net("data", [1, 2, 6, 6], [
    conv("conv_a", "data", "a", { numOutput: 3, channelsIn: 2, next }),
    relu("relu0", "data", "data"),
    conv("conv_b", "data", "b", { numOutput: 4, channelsIn: 2, next }),
    layer("pool_max", "Pooling", ["b"], ["m"], { pooling_param: { pool: "MAX", kernel_size: 1 } }),
    avePool("pool", "m", "p"),
    innerProduct("fc", "p", "fc", { numOutput: 5, channelsIn: 4 * 2 * 2, next }),
  ]);
}

const IFMR = { ...DEFAULT_ACTIVATION_SETTINGS };

/** Asserts `run` throws a ConvertError with `code` at `line`:`column`. */
function throwsAt(run: () => unknown, code: string, line: number, column: number) {
  assert.throws(run, (error) => {
    assert.ok(error instanceof ConvertError, String(error));
    assert.equal(error.code, code, error.message);
    assert.deepEqual([error.line, error.column], [line, column], error.message);
    assert.equal(error.file, "cfg");
    return true;
  });
}

Deno.test("the JSON config written for a model reads back as written", () => {
  const text = writeJsonConfig(model(), { skip: ["conv_b"] });
  const document = JSON.parse(text);
  assert.deepEqual(Object.keys(document), [
    "version",
    "batch_num",
    "activation_offset",
    "do_fusion",
    "skip_fusion_layers",
    "conv_a",
    "conv_b",
    "pool",
    "fc",
  ]);
  assert.deepEqual(document.conv_a, {
    quant_enable: true,
    activation_quant_params: {
      num_bits: 8,
      act_algo: "ifmr",
      max_percentile: 0.999999,
      min_percentile: 0.999999,
      search_range: [0.7, 1.3],
      search_step: 0.01,
    },
    weight_quant_params: { num_bits: 8, wts_algo: "arq_quantize", channel_wise: true },
  });
  assert.equal(document.conv_b.quant_enable, false);
  assert.equal(document.fc.weight_quant_params.channel_wise, false);
  const config = readJsonConfig(text, model(), "cfg");
  const expected: CalibrationConfig = {
    batchNum: 1,
    doFusion: true,
    skipFusionLayers: [],
    layers: new Map([
      ["conv_a", { activation: IFMR, channelWise: true }],
      ["pool", { activation: IFMR, channelWise: false }],
      ["fc", { activation: IFMR, channelWise: false }],
    ]),
  };
  assert.deepEqual(config, expected);
  assert.throws(() => writeJsonConfig(model(), { skip: ["nope"] }), /nope/);
});

Deno.test("a JSON config by hand: per-layer algorithms, asymmetric, fusion, batch_num", () => {
  const text = `{
    "version": 1, "batch_num": 3, "activation_offset": false, "do_fusion": false,
    "skip_fusion_layers": ["conv_a"],
    "conv_a": { "quant_enable": true,
      "activation_quant_params": { "act_algo": "hfmg", "num_of_bins": 1024, "asymmetric": true },
      "weight_quant_params": { "channel_wise": false } },
    "conv_b": { "activation_quant_params": { "max_percentile": 0.99, "search_range": [0.5, 1.5],
      "search_step": 0.05 } },
    "fc": { "quant_enable": false }
  }`;
  const config = readQuantConfig(text, model(), "cfg");
  assert.equal(config.batchNum, 3);
  assert.equal(config.doFusion, false);
  assert.deepEqual(config.skipFusionLayers, ["conv_a"]);
  assert.deepEqual([...config.layers.keys()], ["conv_a", "conv_b"]);
  assert.deepEqual(config.layers.get("conv_a"), {
    activation: { ...IFMR, algorithm: "hfmg", numOfBins: 1024, withOffset: true },
    channelWise: false,
  });
  assert.deepEqual(config.layers.get("conv_b"), {
    activation: {
      ...IFMR,
      withOffset: false,
      maxPercentile: 0.99,
      searchRange: [0.5, 1.5],
      searchStep: 0.05,
    },
    channelWise: true,
  });
});

Deno.test("JSON config errors name their line and column", () => {
  const cases: [string, string, number, number][] = [
    ['{\n  "batch_num": 1,\n  "bach_size": 2\n}', "CONFIG_UNKNOWN_FIELD", 3, 3],
    ['{\n  "conv9": { "quant_enable": true }\n}', "CONFIG_UNKNOWN_LAYER", 2, 3],
    ['{\n  "relu0": {}\n}', "CONFIG_BAD_VALUE", 2, 3],
    ['{\n  "pool_max": {}\n}', "CONFIG_BAD_VALUE", 2, 3],
    [
      '{ "conv_a": {\n  "activation_quant_params": { "max_percentile": 0.3 } } }',
      "CONFIG_BAD_VALUE",
      2,
      50,
    ],
    ['{ "conv_a": {\n  "quant_enable": "yes" } }', "CONFIG_BAD_VALUE", 2, 19],
    [
      '{ "conv_a": {\n  "activation_quant_params": { "act_algo": "kl" } } }',
      "CONFIG_BAD_VALUE",
      2,
      44,
    ],
    [
      '{ "conv_a": {\n  "activation_quant_params": { "act_algo": "hfmg", "search_step": 0.1 } } }',
      "CONFIG_UNKNOWN_FIELD",
      2,
      52,
    ],
    [
      '{ "conv_a": {\n  "activation_quant_params": { "num_of_bins": 100, "act_algo": "hfmg" } } }',
      "CONFIG_BAD_VALUE",
      2,
      47,
    ],
    [
      '{ "conv_a": {\n  "activation_quant_params": { "search_range": [1.3, 0.7] } } }',
      "CONFIG_BAD_VALUE",
      2,
      48,
    ],
    ['{ "conv_a": {\n  "weight_quant_params": { "num_bits": 4 } } }', "CONFIG_BAD_VALUE", 2, 40],
    ['{\n  "skip_fusion_layers": ["conv_a", "bn9"]\n}', "CONFIG_UNKNOWN_LAYER", 2, 36],
    ['{\n  "batch_num": 0\n}', "CONFIG_BAD_VALUE", 2, 16],
    ['{\n  "joint_quant": true\n}', "CONFIG_BAD_VALUE", 2, 18],
    ['{\n  "batch_num": 1,\n}', "CONFIG_SYNTAX", 3, 1],
    ['{\n  "batch_num": 1,\n  "batch_num": 2\n}', "CONFIG_SYNTAX", 3, 3],
    ['{\n  "batch_num": 01\n}', "CONFIG_SYNTAX", 2, 17],
    ['{\n  "a": "x\n"}', "CONFIG_SYNTAX", 2, 10],
    ["[1, 2]", "CONFIG_BAD_VALUE", 1, 1],
  ];
  for (const [text, code, line, column] of cases) {
    throwsAt(() => readJsonConfig(text, model(), "cfg"), code, line, column);
  }
});

Deno.test("the simplified config: skips, common config, overrides by type and by name", () => {
  const text = `batch_num: 2
activation_offset: false
skip_layers: "conv_b"
common_config {
  arq_quantize { channel_wise: false }
  ifmr_quantize { search_range_start: 0.8 search_range_end: 1.2 search_step: 0.02 }
}
override_layer_types {
  layer_type: "Pooling"
  calibration_config { hfmg_quantize { num_of_bins: 2048 } }
}
override_layer_configs {
  layer_name: "fc"
  calibration_config { ifmr_quantize { max_percentile: 0.9999 } }
}
do_fusion: true
skip_fusion_layers: "conv_a"
`;
  const config = readQuantConfig(text, model(), "cfg");
  const common = {
    ...IFMR,
    withOffset: false,
    searchRange: [Math.fround(0.8), Math.fround(1.2)],
    searchStep: Math.fround(0.02),
  };
  const expected: CalibrationConfig = {
    batchNum: 2,
    doFusion: true,
    skipFusionLayers: ["conv_a"],
    layers: new Map([
      ["conv_a", { activation: common, channelWise: false } as never],
      ["pool", {
        activation: { ...IFMR, withOffset: false, algorithm: "hfmg", numOfBins: 2048 },
        channelWise: true,
      }],
      ["fc", {
        activation: { ...IFMR, withOffset: false, maxPercentile: Math.fround(0.9999) },
        channelWise: true,
      }],
    ]),
  };
  assert.deepEqual(config, expected);
  const byType = readTextConfig('skip_layer_types: "Convolution"', model(), "cfg");
  assert.deepEqual([...byType.layers.keys()], ["pool", "fc"]);
  assert.deepEqual(readTextConfig("", model()).layers.size, 4);
});

Deno.test("simplified config errors name their line and column", () => {
  const cases: [string, string, number, number][] = [
    ["batch_num: 1\nbatch_size: 2", "TEXT_UNKNOWN_FIELD", 2, 1],
    ['skip_layers: "conv_a"\nskip_layers: "conv9"', "CONFIG_UNKNOWN_LAYER", 2, 1],
    ['skip_layer_types: "ReLU"', "CONFIG_BAD_VALUE", 1, 1],
    [
      'override_layer_configs {\n  layer_name: "relu0"\n  calibration_config {}\n}',
      "CONFIG_BAD_VALUE",
      2,
      3,
    ],
    ["override_layer_configs {\n  calibration_config {}\n}", "CONFIG_BAD_VALUE", 1, 1],
    ["common_config {\n  ifmr_quantize {\n    search_step: 0\n  }\n}", "CONFIG_BAD_VALUE", 3, 5],
    ["common_config {\n  ifmr_quantize { min_percentile: 1.5 }\n}", "CONFIG_BAD_VALUE", 2, 19],
    ["common_config {\n  hfmg_quantize { num_of_bins: 10 }\n}", "CONFIG_BAD_VALUE", 2, 19],
    ["common_config {\n  ifmr_quantize {}\n  hfmg_quantize {}\n}", "CONFIG_BAD_VALUE", 3, 3],
    ["common_config {\n  ifmr_quantize { search_range_end: 0.5 }\n}", "CONFIG_BAD_VALUE", 2, 19],
    ['skip_fusion_layers: "bn"', "CONFIG_UNKNOWN_LAYER", 1, 1],
    ["joint_quant: true", "CONFIG_BAD_VALUE", 1, 1],
    ["batch_num: 0", "CONFIG_BAD_VALUE", 1, 1],
    ["batch_num: 1 {", "TEXT_SYNTAX", 1, 14],
  ];
  for (const [text, code, line, column] of cases) {
    throwsAt(() => readTextConfig(text, model(), "cfg"), code, line, column);
  }
});

Deno.test("calibrate() follows a config file", async () => {
  const net = model();
  const sample = new Map([["data", {
    shape: [1, 2, 6, 6],
    data: Float32Array.from({ length: 72 }, (_, i) => (i % 13) - 4),
  }]]);
  const config = readQuantConfig('skip_layers: "fc"\nskip_layer_types: "Pooling"', net);
  const { record } = await calibrate(net, [sample], { config });
  assert.deepEqual([...record.matchAll(/key: "(\w+)"/g)].map((match) => match[1]), [
    "conv_a",
    "conv_b",
  ]);
});

Deno.test("caffe-quant config writes the JSON config; --skip, --algo, --out; bad --skip", {
  ignore: !modelNames.includes("lenet"),
}, async () => {
  const model = modelFile("lenet", "deploy.prototxt");
  const weights = modelFile("lenet", "weights.caffemodel");
  const printed = await run("config", model, weights, "--skip", "ip2", "--algo", "hfmg");
  assert.equal(printed.code, 0, printed.err);
  const document = JSON.parse(printed.out);
  assert.deepEqual(Object.keys(document).slice(5), ["conv1", "conv2", "ip1", "ip2"]);
  assert.equal(document.ip2.quant_enable, false);
  assert.deepEqual(document.conv1.activation_quant_params, {
    num_bits: 8,
    act_algo: "hfmg",
    num_of_bins: 4096,
  });
  const dir = await Deno.makeTempDir({ prefix: "caffe-quant-config-" });
  const out = `${dir}/config.json`;
  const written = await run("config", model, weights, "--out", out);
  assert.equal(written.code, 0, written.err);
  const net = loadNet(Deno.readTextFileSync(model), Deno.readFileSync(weights));
  assert.equal(readQuantConfig(Deno.readTextFileSync(out), net).layers.size, 4);
  const bad = await run("config", model, weights, "--skip", "conv9");
  assert.equal(bad.code, 2);
  assert.match(bad.err, /CONFIG_UNKNOWN_LAYER/);
  await Deno.remove(dir, { recursive: true });
});
