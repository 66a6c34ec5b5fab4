// Record messages that point at the fix (issue 16.6): a misspelt key gets the nearest layer
// name, a record for another model says how many keys the model lacks, and quantizable layers
// the record leaves out are named in one "stay float" line.

import assert from "node:assert/strict";
import { ConvertError } from "../src/errors.ts";
import { convertNet } from "../src/quant/convert.ts";
import { nearestName, readRecord } from "../src/quant/record.ts";
import { avePool, conv, innerProduct, layer, net, random, recordText, relu } from "./_builders.ts";

const next = random(2);
const testNet = () =>
  net("data", [1, 3, 8, 8], [
    conv("conv1", "data", "conv1", { numOutput: 4, channelsIn: 3, next }),
    relu("relu1", "conv1", "conv1"),
    avePool("pool1", "conv1", "pool1"),
    layer("pool2", "Pooling", ["conv1"], ["pool2"], { pooling_param: { pool: "MAX" } }),
    innerProduct("ip1", "pool1", "ip1", { numOutput: 3, channelsIn: 36, next }),
  ]);

const GOOD = "scale_d: 0.5 offset_d: -3 scale_w: 0.1 offset_w: 0";

function unknownLayerMessage(entries: Record<string, string>): string {
  try {
    readRecord(recordText(entries), testNet(), "r.txt");
  } catch (error) {
    assert.ok(error instanceof ConvertError && error.code === "RECORD_UNKNOWN_LAYER", `${error}`);
    return error.message;
  }
  throw new Error("no error");
}

Deno.test("nearestName: edit distance up to a third of the key's length", () => {
  const names = ["conv1", "conv2", "conv3", "pool1", "fc1000"];
  assert.equal(nearestName("conv_3", names), "conv3"); // one insertion
  assert.equal(nearestName("cnov3", names), "conv3"); // one swap of neighbours
  assert.equal(nearestName("conv", names), "conv1"); // one deletion from three: the first name
  assert.equal(nearestName("Conv3", names), "conv3"); // one substitution
  assert.equal(nearestName("fc100", names), "fc1000"); // one deletion
  assert.equal(nearestName("ip1", names), undefined); // 3 edits from anything, limit 1
  assert.equal(nearestName("prob", names), undefined);
  assert.equal(nearestName("x", []), undefined);
});

Deno.test("RECORD_UNKNOWN_LAYER suggests the nearest layer name", () => {
  assert.equal(
    unknownLayerMessage({ conv_1: GOOD }),
    'record "conv_1": the model has no layer "conv_1"; did you mean "conv1"?',
  );
  assert.equal(
    unknownLayerMessage({ conv1: GOOD, detection_out: GOOD }),
    'record "detection_out": the model has no layer "detection_out"',
  );
});

Deno.test("RECORD_UNKNOWN_LAYER says how many keys the model lacks: a record for another model", () => {
  const message = unknownLayerMessage({
    res2a_branch1: GOOD,
    res2a_branch2a: GOOD,
    conv1: GOOD,
    res2a_branch2b: GOOD,
  });
  assert.match(
    message,
    /no layer "res2a_branch1" \(3 of the record's 4 keys name no layer of the model: is the record made for another model\?\)$/,
  );
  const few = unknownLayerMessage({ conv1: GOOD, ip1: GOOD, pool2x: GOOD, a: GOOD, b: GOOD });
  assert.match(
    few,
    /"pool2x"; did you mean "pool2"\? \(3 of the record's 5 keys name no layer of the model: is/,
  );
  const two = unknownLayerMessage({ conv1: GOOD, ip1: GOOD, a: GOOD, b: GOOD });
  assert.match(two, /no layer "a" \(2 of the record's 4 keys name no layer of the model\)$/);
});

Deno.test("convert names the quantizable layers without a record entry in one line", async () => {
  // Quantizable in testNet: conv1, pool1 (AVE), ip1; relu1 and the MAX pool2 are not.
  const { report } = await convertNet(testNet(), recordText({ conv1: GOOD }));
  const lines = report.warnings.filter((warning) => warning.includes("stay"));
  assert.deepEqual(lines, [
    '2 quantizable layers have no record entry and stay float: "pool1", "ip1"',
  ]);
  const one = await convertNet(testNet(), recordText({ conv1: GOOD, pool1: "scale_d: 0.5" }));
  assert.deepEqual(one.report.warnings.filter((warning) => warning.includes("stay")), [
    '1 quantizable layer has no record entry and stays float: "ip1"',
  ]);
  const all = await convertNet(
    testNet(),
    recordText({ conv1: GOOD, pool1: "scale_d: 0.5", ip1: GOOD }),
  );
  assert.deepEqual(all.report.warnings.filter((warning) => warning.includes("stay")), []);
});
