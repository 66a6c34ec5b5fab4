/**
 * The fast record reader (src/quant/record_scan.ts) against the protobuf text reader's tree
 * (recordEntriesOfText): on every text it takes, the same entries (values, float32 rounding,
 * places), and it takes nothing the text reader refuses. Texts: the records makeRecord writes for
 * the shared models, hand-written variants (comments, CRLF, tabs, fields in any order, exponents,
 * -0, integers in float fields, a byte-order mark, hex and octal, separators, escapes, `<>`),
 * texts it leaves to the text reader (list syntax, unknown fields, errors), and 3,000 random one-
 * to three-character edits of a record.
 */

import assert from "node:assert/strict";
import { loadNet } from "../src/caffe/model.ts";
import { ConvertError } from "../src/errors.ts";
import { makeRecord } from "../src/quant/make_record.ts";
import { recordEntriesOfText } from "../src/quant/record.ts";
import { type RecordEntry, scanRecord } from "../src/quant/record_scan.ts";
import { modelFile, modelNames } from "./_models.ts";

/** The text reader's entries of `text`, or the error code it refuses it with. */
function treeEntries(text: string): RecordEntry[] | string {
  try {
    return [...recordEntriesOfText(text, "r.txt").values()];
  } catch (error) {
    if (error instanceof ConvertError) return error.code;
    throw error;
  }
}

/** Asserts that the fast reader gives the tree's entries for `text`, or declines it. */
function assertAgrees(text: string, label: string): "taken" | "declined" {
  const scanned = scanRecord(text);
  if (scanned === undefined) return "declined";
  const tree = treeEntries(text);
  assert.ok(typeof tree !== "string", `${label}: taken, but the text reader refuses it (${tree})`);
  assert.deepEqual(scanned, tree, label);
  return "taken";
}

const SMALL = `record {
  key: "conv1"
  value {
    scale_d: 0.007843138
    offset_d: -1
    scale_w: 7.902446e-8
    scale_w: 0.0050909547
    offset_w: 0
    offset_w: 0
  }
}
record {
  key: "pool1"
  value {
    scale_d: 0.5
    offset_d: 3
    skip_fusion: true
  }
}
`;

Deno.test("record reader: the records makeRecord writes for every shared model", async () => {
  for (const name of modelNames) {
    const net = loadNet(
      await Deno.readTextFile(modelFile(name, "deploy.prototxt")),
      await Deno.readFile(modelFile(name, "weights.caffemodel")),
    );
    const text = await makeRecord(net);
    assert.equal(assertAgrees(text, name), "taken", name);
  }
});

Deno.test("record reader: variants of the subset it reads give the tree's entries", () => {
  const taken = [
    SMALL,
    SMALL.replaceAll("\n", "\r\n"),
    SMALL.replaceAll("  ", "\t"),
    "# a comment\n" + SMALL.replace("offset_d: -1", "offset_d: -1 # trailing"),
    'record { value { scale_d: 1 scale_w: 2 offset_w: 0 } key: "a" }',
    'record{key:"a" value{scale_d:1e-3 scale_w:1.5E+2 offset_w:-0 channels:3 height:0 width:7}}',
    'record { key: "a" value { scale_d: -0 offset_d: 0 skip_fusion: false } }',
    'record { key: "a" value { scale_d: 3.4028235e38 } }',
    'record { key: "a" value { scale_d: 1. scale_w: 0.0 } }',
    'record { key: "a" value { } } record { key: "b" value { } }',
    'record { key: "" value { scale_d: 1e-50 } }',
    "",
    "  \n# only a comment\n",
  ];
  for (const [index, text] of taken.entries()) {
    assert.equal(assertAgrees(text, `variant ${index}`), "taken", text);
  }
  // Numbers as the text reader rounds them.
  const [entry] = scanRecord('record { key: "a" value { scale_d: 0.1 scale_w: 1e-50 } }')!;
  assert.equal(entry.scaleD!.value, Math.fround(0.1));
  assert.deepEqual(entry.scaleW.values, [0]);
  assert.deepEqual([entry.scaleD!.line, entry.scaleD!.column], [1, 27]);
});

Deno.test("record reader: the text format's other forms, read as the tree reads them or left to it", () => {
  const taken = [
    "\uFEFF" + SMALL,
    SMALL.replace("offset_d: -1", "offset_d: 0x1"),
    SMALL.replace("offset_d: -1", "offset_d: 07"),
    SMALL.replace("offset_d: -1", "offset_d: - 1"),
    SMALL.replace("offset_d: -1", "offset_d: -1;"),
    SMALL.replace("scale_d: 0.5", "scale_d: .5,"),
    SMALL.replace("scale_d: 0.5", "scale_d: 0.5f"),
    SMALL.replace("scale_d: 0.5", "scale_d: inf"),
    SMALL.replace("skip_fusion: true", "skip_fusion: 1"),
    SMALL.replace("skip_fusion: true", "skip_fusion: True shift_bit: 1 shift_bit: 2"),
    SMALL.replace('key: "pool1"', 'key: "po" "ol1"'),
    SMALL.replace('key: "pool1"', 'key: "po\\x6fl1"'),
    SMALL.replace('key: "pool1"', 'key: "pööl1"'),
    SMALL.replace('key: "pool1"', "key: 'pool1'"),
    SMALL.replace('record {\n  key: "pool1"', 'record: {\n  key: "pool1"'),
    SMALL.replace("value {\n    scale_d: 0.5", "value <\n    scale_d: 0.5")
      .replace("true\n  }", "true\n  >"),
    'record { key: "a" value { } };',
  ];
  for (const [index, text] of taken.entries()) {
    assert.equal(assertAgrees(text, `taken ${index}`), "taken", text);
  }
  const declined = [
    SMALL.replace("scale_d: 0.5", "scale_d: 1e39"),
    SMALL.replace("scale_d: 0.5", "scale_d: 0.5 scale_d: 0.5"),
    SMALL.replace("scale_d: 0.5", 'scale_d: "0.5"'),
    SMALL.replace("offset_d: 3", "offset_d: 3.0"),
    SMALL.replace("offset_d: 3", "offset_d: 2147483648"),
    SMALL.replace("offset_d: 3", "offset_d: 3x"),
    SMALL.replace("skip_fusion: true", "skip_fusion: 2"),
    SMALL.replace("skip_fusion: true", "colour: 1"),
    SMALL.replace('key: "pool1"', 'key: "po\\q"'),
    SMALL.replace('key: "pool1"', "key: pool1"),
    SMALL.replace(
      "scale_w: 7.902446e-8\n    scale_w: 0.0050909547",
      "scale_w: [7.902446e-8, 0.0050909547]",
    ),
    'record { key: "a" }',
    "record { value { } }",
    'record { key: "a" key: "b" value { } }',
    'record { key: "a" value { } } records { }',
    SMALL + "}",
    SMALL.slice(0, -3),
  ];
  for (const [index, text] of declined.entries()) {
    assert.equal(assertAgrees(text, `declined ${index}`), "declined", text);
  }
});

Deno.test("record reader: random edits of a record, taken only as the text reader reads them", () => {
  const alphabet = ' \n\t{}:"#-.;,0159eExy_<>[]';
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const counts = { taken: 0, declined: 0 };
  for (let round = 0; round < 3000; round++) {
    let text = SMALL;
    const edits = 1 + Math.floor(random() * 3);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(random() * (text.length + 1));
      const char = alphabet[Math.floor(random() * alphabet.length)];
      const kind = Math.floor(random() * 3);
      text = kind === 0
        ? text.slice(0, at) + text.slice(at + 1)
        : kind === 1
        ? text.slice(0, at) + char + text.slice(at)
        : text.slice(0, at) + char + text.slice(at + 1);
    }
    counts[assertAgrees(text, `edit ${round}: ${JSON.stringify(text)}`)]++;
  }
  console.log(`random edits: ${counts.taken} taken, ${counts.declined} left to the text reader`);
  assert.ok(counts.taken > 150 && counts.declined > 150, JSON.stringify(counts));
});
