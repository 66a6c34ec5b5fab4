// Corrupted prototxt and record text: every failure is a ConvertError with a line and column,
// never another exception or a hang.

import assert from "node:assert/strict";
import { readPrototxt } from "../src/caffe/prototxt.ts";
import { uniformGenerator } from "../src/engine/inputs.ts";
import { ConvertError } from "../src/errors.ts";
import { caffeType } from "../src/proto/schema.ts";
import { parseText } from "../src/proto/text_read.ts";
import { modelFile, modelNames } from "./_models.ts";

const NOISE = ['"', "{", "}", ":", "#", "\\", "\n", "-", "e", "0x", "<", "[", ",", "nan", " "];

/** A seeded mutation of `text`: a cut, a replaced or inserted character, or a deleted span. */
function mutate(text: string, next: () => number): string {
  const at = Math.floor(((next() + 1) / 2) * text.length);
  const noise = NOISE[Math.floor(((next() + 1) / 2) * NOISE.length)];
  switch (Math.floor(((next() + 1) / 2) * 4)) {
    case 0:
      return text.slice(0, at);
    case 1:
      return text.slice(0, at) + noise + text.slice(at + 1);
    case 2:
      return text.slice(0, at) + noise + text.slice(at);
    default:
      return text.slice(0, at) + text.slice(at + 1 + Math.floor(((next() + 1) / 2) * 40));
  }
}

function expectOnlyConvertErrors(parse: () => unknown, source: string): number {
  try {
    parse();
    return 0;
  } catch (error) {
    assert.ok(error instanceof ConvertError, `${error}\n--- input ---\n${source.slice(0, 400)}`);
    if (error.code.startsWith("TEXT_")) {
      assert.ok(error.line !== undefined && error.column !== undefined, error.message);
    }
    return 1;
  }
}

for (const name of modelNames) {
  Deno.test(`corrupted ${name} prototxt: only ConvertErrors`, () => {
    const text = Deno.readTextFileSync(modelFile(name, "deploy.prototxt"));
    const next = uniformGenerator(name.length * 7919);
    let failures = 0;
    for (let i = 0; i < 300; i++) {
      const corrupted = mutate(text, next);
      failures += expectOnlyConvertErrors(
        () => readPrototxt(corrupted, "fuzz.prototxt"),
        corrupted,
      );
    }
    assert.ok(failures > 0, "some mutations must be rejected");
  });
}

Deno.test("corrupted record text: only ConvertErrors", () => {
  const record =
    `record {\n  key: "conv1"\n  value {\n    scale_d: 1.07450986\n    offset_d: -14\n` +
    `    scale_w: 0.00448934268\n    offset_w: 0\n    channels: 3\n  }\n}\n`;
  const type = caffeType("ScaleOffsetRecord");
  const next = uniformGenerator(42);
  for (let i = 0; i < 2000; i++) {
    const corrupted = mutate(record, next);
    expectOnlyConvertErrors(() => parseText(corrupted, type, "fuzz.txt"), corrupted);
  }
});
