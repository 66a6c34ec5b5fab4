import assert from "node:assert/strict";
import { ConvertError, type ErrorCode } from "../src/errors.ts";
import { quantizeBlocker } from "../src/caffe/layers.ts";
import { activationFactors, makeRecord } from "../src/quant/make_record.ts";
import { readRecord } from "../src/quant/record.ts";
import { avePool, conv, innerProduct, layer, net, random, recordText, relu } from "./_builders.ts";

const next = random(1);
const testNet = net("data", [1, 3, 8, 8], [
  conv("conv1", "data", "conv1", { numOutput: 4, channelsIn: 3, next }),
  relu("relu1", "conv1", "conv1"),
  avePool("pool1", "conv1", "pool1"),
  layer("pool2", "Pooling", ["conv1"], ["pool2"], { pooling_param: { pool: "MAX" } }),
  innerProduct("ip1", "pool1", "ip1", { numOutput: 3, channelsIn: 36, next }),
]);

const GOOD_CONV = "scale_d: 0.5 offset_d: -3 scale_w: 0.1 offset_w: 0";

/** Expects `run` to throw a ConvertError with `code` and the given place fields. */
function assertError(
  run: () => unknown,
  code: ErrorCode,
  place: { line?: number; column?: number; layer?: string; file?: string },
  messagePart?: string,
): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ConvertError, `not a ConvertError: ${error}`);
    assert.equal(error.code, code, error.format());
    for (const [key, value] of Object.entries(place)) {
      assert.equal(error[key as keyof typeof place], value, `${key} of ${error.format()}`);
    }
    if (messagePart !== undefined) assert.ok(error.message.includes(messagePart), error.message);
    return true;
  });
}

Deno.test("a valid record gives float32 factors per layer", () => {
  const text = recordText({
    conv1: "scale_d: 1.07450986 offset_d: -14 " +
      "scale_w: 0.1 scale_w: 0.2 scale_w: 0.3 scale_w: 0.4 " +
      "offset_w: 0 offset_w: 0 offset_w: 0 offset_w: 0 channels: 3 height: 8 width: 8",
    ip1: "scale_d: 0.25 offset_d: 5 scale_w: 0.01 offset_w: 0",
    pool1: "scale_d: 2 offset_d: 0",
  });
  const record = readRecord(text, testNet, "r.txt");
  assert.deepEqual([...record.keys()], ["conv1", "ip1", "pool1"]);
  const conv1 = record.get("conv1")!;
  assert.equal(conv1.skipFusion, false);
  assert.equal(conv1.factors!.scaleD, Math.fround(1.07450986));
  assert.equal(conv1.factors!.offsetD, -14);
  assert.deepEqual(
    [...conv1.factors!.scaleW],
    [0.1, 0.2, 0.3, 0.4].map(Math.fround),
  );
  assert.deepEqual([...record.get("ip1")!.factors!.scaleW], [Math.fround(0.01)]);
  // AVE pooling without scale_w: its dequant scale is scale_d · 1.0
  assert.deepEqual([...record.get("pool1")!.factors!.scaleW], [1]);
});

Deno.test("AVE pooling takes scale_w: 1 with offset_w: 0", () => {
  const record = readRecord(
    recordText({ pool1: "scale_d: 2 offset_d: 1 scale_w: 1 offset_w: 0" }),
    testNet,
  );
  assert.deepEqual([...record.get("pool1")!.factors!.scaleW], [1]);
});

Deno.test("a record with only skip_fusion does not quantize its layer", () => {
  const record = readRecord(
    recordText({ conv1: "skip_fusion: true", relu1: "skip_fusion: true channels: 3" }),
    testNet,
  );
  assert.deepEqual(record.get("conv1"), { layer: "conv1", skipFusion: true });
  assert.equal(record.get("relu1")!.factors, undefined);
});

Deno.test("an absent offset_d is 0 (the proto default)", () => {
  const record = readRecord(recordText({ ip1: "scale_d: 0.5 scale_w: 0.1 offset_w: 0" }), testNet);
  assert.equal(record.get("ip1")!.factors!.offsetD, 0);
});

Deno.test("RECORD_EMPTY: no entries", () => {
  assertError(() => readRecord("", testNet, "r.txt"), "RECORD_EMPTY", { file: "r.txt" });
  assertError(() => readRecord("# only a comment\n", testNet), "RECORD_EMPTY", {});
});

Deno.test("RECORD_KEY_WITHOUT_VALUE: key or value missing, at the entry", () => {
  assertError(
    () => readRecord(`record { key: "conv1" }\n`, testNet, "r.txt"),
    "RECORD_KEY_WITHOUT_VALUE",
    { file: "r.txt", line: 1, column: 1, layer: "conv1" },
  );
  assertError(
    () => readRecord(recordText({ ip1: GOOD_CONV }) + `record { value { scale_d: 1 } }\n`, testNet),
    "RECORD_KEY_WITHOUT_VALUE",
    { line: 7, column: 1, layer: undefined },
  );
});

Deno.test("RECORD_DUPLICATE_KEY: at the second entry", () => {
  const text = recordText({ conv1: GOOD_CONV }) +
    `  record { key: "conv1" value { ${GOOD_CONV} } }\n`;
  assertError(
    () => readRecord(text, testNet, "r.txt"),
    "RECORD_DUPLICATE_KEY",
    { file: "r.txt", line: 7, column: 3, layer: "conv1" },
    "line 1",
  );
});

Deno.test("RECORD_UNKNOWN_LAYER: at the key", () => {
  assertError(
    () => readRecord(recordText({ conv9: GOOD_CONV }), testNet, "r.txt"),
    "RECORD_UNKNOWN_LAYER",
    { file: "r.txt", line: 2, column: 3, layer: "conv9" },
  );
});

Deno.test("RECORD_NOT_QUANTIZABLE: says why", () => {
  const relu1 = testNet.layers[1];
  assertError(
    () => readRecord(recordText({ relu1: GOOD_CONV }), testNet),
    "RECORD_NOT_QUANTIZABLE",
    { line: 1, column: 1, layer: "relu1" },
    quantizeBlocker(relu1),
  );
  assertError(
    () => readRecord(recordText({ pool2: "scale_d: 1 offset_d: 0" }), testNet),
    "RECORD_NOT_QUANTIZABLE",
    { layer: "pool2" },
    "AVE",
  );
});

Deno.test("RECORD_BAD_SCALE: scale_d or scale_w not a finite float32 > 0, at the field", () => {
  for (const bad of ["0", "-1", "nan", "inf", "-inf", "1e-50"]) {
    assertError(
      () =>
        readRecord(
          recordText({ conv1: `scale_d: ${bad} offset_d: 0 scale_w: 0.1 offset_w: 0` }),
          testNet,
          "r.txt",
        ),
      "RECORD_BAD_SCALE",
      { file: "r.txt", line: 4, column: 5, layer: "conv1" },
      "scale_d",
    );
  }
  assertError(
    () => readRecord(recordText({ conv1: "offset_d: 0 scale_w: 0.1 offset_w: 0" }), testNet),
    "RECORD_BAD_SCALE",
    { line: 3, column: 3, layer: "conv1" },
    "missing",
  );
  const perChannel =
    "scale_d: 1 offset_d: 0\n    scale_w: 0.1 scale_w: 0.2 scale_w: nan scale_w: 0.4\n" +
    "    offset_w: 0 offset_w: 0 offset_w: 0 offset_w: 0";
  assertError(
    () => readRecord(recordText({ conv1: perChannel }), testNet),
    "RECORD_BAD_SCALE",
    { line: 5, column: 31, layer: "conv1" },
    "scale_w[2]",
  );
  assertError(
    () => readRecord(recordText({ ip1: "scale_d: 1e-30 scale_w: 1e-30 offset_w: 0" }), testNet),
    "RECORD_BAD_SCALE",
    { line: 4, column: 20, layer: "ip1" },
  );
});

Deno.test("RECORD_BAD_SCALE: a subnormal scale_d whose 1/scale_d overflows float32", () => {
  // float32's largest value is (2 - 2^-23) * 2^127 ≈ 3.4028235e38, so S = 1/scale_d needs
  // scale_d ≥ about 2.9387e-39; 1e-39 is a float32 > 0 (subnormal) but S would be infinite.
  const largestFloat32 = (2 - 2 ** -23) * 2 ** 127;
  assert.ok(1 / Math.fround(1e-39) > largestFloat32 && Math.fround(1e-39) > 0);
  assertError(
    () =>
      readRecord(
        recordText({ conv1: "scale_d: 1e-39 offset_d: 0 scale_w: 0.1 offset_w: 0" }),
        testNet,
        "r.txt",
      ),
    "RECORD_BAD_SCALE",
    { file: "r.txt", line: 4, column: 5, layer: "conv1" },
    "1/scale_d",
  );
  // just above the limit: accepted, with a scale_w that keeps scale_d · scale_w a normal float32
  // (at least 2^-126; a subnormal dequant scale is refused)
  assert.ok(1 / Math.fround(3e-39) < largestFloat32);
  assert.ok(Math.fround(3e-39) * Math.fround(1000) >= 2 ** -126);
  const record = readRecord(
    recordText({ conv1: "scale_d: 3e-39 offset_d: 0 scale_w: 1000 offset_w: 0" }),
    testNet,
  );
  assert.equal(record.get("conv1")!.factors!.scaleD, Math.fround(3e-39));
});

Deno.test("TEXT_UNKNOWN_FIELD: a field the record schema does not define, at any depth", () => {
  const cases: [string, number, number, string][] = [
    // misspelt skip_fusion inside a value
    [`record {\n  key: "conv1"\n  value { skip_fusoin: true }\n}\n`, 3, 11, "skip_fusoin"],
    // a misspelt top-level field
    [`records {\n  key: "conv1"\n  value { skip_fusion: true }\n}\n`, 1, 1, "records"],
    // a misspelt entry field
    [`record {\n  kye: "conv1"\n  value { scale_d: 1 }\n}\n`, 2, 3, "kye"],
    // an unknown message nested in a value, after valid factors
    [
      recordText({ conv1: GOOD_CONV }) +
      `record {\n  key: "ip1"\n  value {\n    scale_d: 1 extra { a: 1 }\n  }\n}\n`,
      10,
      16,
      "extra",
    ],
    // an extension name
    [`record { key: "conv1" value { [pkg.scale]: 1 } }`, 1, 31, "[pkg.scale]"],
  ];
  for (const [text, line, column, name] of cases) {
    assertError(
      () => readRecord(text, testNet, "r.txt"),
      "TEXT_UNKNOWN_FIELD",
      { file: "r.txt", line, column },
      `"${name}"`,
    );
  }
});

Deno.test("RECORD_BAD_OFFSET_D: outside -128..127", () => {
  for (const bad of [128, -129, 1000]) {
    assertError(
      () =>
        readRecord(
          recordText({ conv1: `scale_d: 1 offset_d: ${bad} scale_w: 0.1 offset_w: 0` }),
          testNet,
        ),
      "RECORD_BAD_OFFSET_D",
      { line: 4, column: 16, layer: "conv1" },
    );
  }
  for (const edge of [-128, 127]) {
    const text = recordText({ conv1: `scale_d: 1 offset_d: ${edge} scale_w: 0.1 offset_w: 0` });
    assert.equal(readRecord(text, testNet).get("conv1")!.factors!.offsetD, edge);
  }
});

Deno.test("RECORD_BAD_OFFSET_W: any offset_w not 0", () => {
  assertError(
    () =>
      readRecord(recordText({ conv1: "scale_d: 1 offset_d: 0 scale_w: 0.1 offset_w: 3" }), testNet),
    "RECORD_BAD_OFFSET_W",
    { line: 4, column: 41, layer: "conv1" },
  );
  assertError(
    () => readRecord(recordText({ pool1: "scale_d: 1 scale_w: 1 offset_w: -1" }), testNet),
    "RECORD_BAD_OFFSET_W",
    { layer: "pool1" },
  );
});

Deno.test("RECORD_BAD_LENGTH: lengths unequal, not 1/num_output, per-channel InnerProduct, pooling", () => {
  const cases: [string, string, string, number][] = [
    [
      "conv1",
      "scale_d: 1 scale_w: 0.1 scale_w: 0.1 scale_w: 0.1 " +
      "offset_w: 0 offset_w: 0 offset_w: 0",
      "num_output (4)",
      4,
    ],
    ["conv1", "scale_d: 1 scale_w: 0.1 scale_w: 0.1 offset_w: 0", "offset_w has 1", 4],
    ["conv1", "scale_d: 1 offset_d: 0", "scale_w has 0", 3],
    [
      "ip1",
      "scale_d: 1 scale_w: 0.1 scale_w: 0.1 scale_w: 0.1 " +
      "offset_w: 0 offset_w: 0 offset_w: 0",
      "InnerProduct takes exactly 1",
      4,
    ],
    ["pool1", "scale_d: 1 scale_w: 2 offset_w: 0", "AVE Pooling", 4],
    ["pool1", "scale_d: 1 offset_w: 0", "offset_w has 1", 4],
  ];
  for (const [key, value, part, line] of cases) {
    assertError(
      () => readRecord(recordText({ [key]: value }), testNet),
      "RECORD_BAD_LENGTH",
      { layer: key, line },
      part,
    );
  }
});

Deno.test("RECORD_SHIFT_BIT: present at all", () => {
  assertError(
    () =>
      readRecord(
        recordText({ conv1: "scale_d: 1 scale_w: 0.1 offset_w: 0 shift_bit: 0" }),
        testNet,
        "r.txt",
      ),
    "RECORD_SHIFT_BIT",
    { file: "r.txt", line: 4, column: 41, layer: "conv1" },
  );
});

Deno.test("record syntax errors come from the text reader with their place", () => {
  assertError(
    () => readRecord(`record { key: "conv1" value { scale_d: "x" } }`, testNet, "r.txt"),
    "TEXT_WRONG_TYPE",
    { file: "r.txt", line: 1 },
  );
  assertError(
    () => readRecord(`record { key: "conv1 }`, testNet, "r.txt"),
    "TEXT_UNTERMINATED_STRING",
    { file: "r.txt", line: 1 },
  );
  assertError(
    () => readRecord(`record { key: "conv1" value { offset_d: 3000000000 } }`, testNet),
    "TEXT_OUT_OF_RANGE",
    { line: 1 },
  );
});

Deno.test("makeRecord: SPEC §9 weight scales with the bias floor and dead channels", async () => {
  const source = conv("conv1", "data", "y", { numOutput: 3, channelsIn: 1, kernel: 2, next });
  const weights = source.blobs[0].data as Float32Array;
  weights.set([0.5, -1.27, 0.1, 0, /* tiny */ 1e-9, -2e-9, 0, 0, /* dead */ 0, 0, 0, 0]);
  (source.blobs[1].data as Float32Array).set([0.25, 40, 0]);
  const target = net("data", [1, 1, 4, 4], [
    source,
    innerProduct("ip1", "y", "z", { numOutput: 2, channelsIn: 27, next }),
  ]);
  const scaleD = 0.125;
  const record = readRecord(await makeRecord(target, { scaleD, offsetD: 3 }), target);
  const conv1 = record.get("conv1")!.factors!;
  assert.equal(conv1.scaleD, 0.125);
  assert.equal(conv1.offsetD, 3);
  assert.deepEqual([...conv1.scaleW], [
    Math.fround(1.27 / 127),
    Math.fround(40 / (scaleD * 2 ** 30)),
    1,
  ]);
  // InnerProduct is always per tensor: the largest |w| over the whole tensor
  const ipWeights = target.layers[1].blobs[0].data as Float32Array;
  const ipMax = ipWeights.reduce((max, w) => Math.max(max, Math.abs(w)), 0);
  assert.deepEqual([...record.get("ip1")!.factors!.scaleW], [Math.fround(ipMax / 127)]);
  // per tensor: the largest channel scale; the dead channel's 1.0 does not count
  const perTensor = readRecord(await makeRecord(target, { scaleD, perTensor: true }), target);
  assert.deepEqual([...perTensor.get("conv1")!.factors!.scaleW], [Math.fround(1.27 / 127)]);
  weights.fill(0, 0, 4);
  const floorOnly = readRecord(await makeRecord(target, { scaleD, perTensor: true }), target);
  assert.deepEqual([...floorOnly.get("conv1")!.factors!.scaleW], [
    Math.fround(40 / (scaleD * 2 ** 30)),
  ]);
});

Deno.test("makeRecord: observed ranges give asymmetric int8 factors", async () => {
  assert.deepEqual(activationFactors({ min: -1, max: 3 }), {
    scaleD: Math.fround(4 / 255),
    offsetD: -128 - Math.round(-1 / Math.fround(4 / 255)),
  });
  // min above 0 is widened to 0: offset -128
  assert.deepEqual(activationFactors({ min: 2, max: 5.1 }), {
    scaleD: Math.fround(5.1 / 255),
    offsetD: -128,
  });
  // -1 / (2/255 rounded up to float32) is just above -127.5
  assert.equal(activationFactors({ min: -1, max: 1 }).offsetD, -1);
  // scale 0.5, min / scale = -1.5 exactly: rint rounds half to even (-2)
  assert.equal(activationFactors({ min: -0.75, max: 126.75 }).offsetD, -126);
  const record = readRecord(
    await makeRecord(testNet, { activationRanges: new Map([["conv1", { min: -1, max: 3 }]]) }),
    testNet,
  );
  assert.equal(record.get("conv1")!.factors!.scaleD, Math.fround(4 / 255));
  assert.deepEqual([...record.keys()], ["conv1", "pool1", "ip1"]);
});

Deno.test("unnamed layers: never quantized, as a record could not tell them apart", async () => {
  const unnamed = net("data", [1, 3, 8, 8], [
    conv("", "data", "a", { numOutput: 4, channelsIn: 3, next }),
    conv("", "a", "b", { numOutput: 4, channelsIn: 4, next }),
    conv("named", "b", "c", { numOutput: 4, channelsIn: 4, next }),
  ]);
  assertError(
    () => readRecord(recordText({ "": GOOD_CONV }), unnamed),
    "RECORD_NOT_QUANTIZABLE",
    { layer: "" },
    "it has no name",
  );
  const made = await makeRecord(unnamed, { scaleD: 0.1 });
  assert.deepEqual([...made.matchAll(/key: "([^"]*)"/g)].map((match) => match[1]), ["named"]);
  assert.deepEqual([...readRecord(made, unnamed).keys()], ["named"]);
});
