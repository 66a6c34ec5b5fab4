// Error codes of the right class (issue 15.22): byte containers other than Uint8Array are
// accepted as weights, other types say what is expected; impossible tensor sizes are BAD_INPUT,
// only real resource limits LIMIT_EXCEEDED.

import assert from "node:assert/strict";
import { exampleFiles } from "../scripts/example_model.ts";
import { convertInMemory } from "../src/quant/convert.ts";
import { readCaffemodel } from "../src/caffe/caffemodel_read.ts";
import { checkTensorSize } from "../src/engine/tensor.ts";
import { ConvertError, ERROR_CODES, type ErrorCode } from "../src/errors.ts";

function assertCode(action: () => unknown, code: ErrorCode, pattern: RegExp) {
  assert.throws(
    action,
    (error: unknown) =>
      error instanceof ConvertError && error.code === code && pattern.test(error.message),
  );
}

async function assertRejects(action: () => Promise<unknown>, code: ErrorCode, pattern: RegExp) {
  await assert.rejects(
    action,
    (error: unknown) =>
      error instanceof ConvertError && error.code === code && pattern.test(error.message),
  );
}

Deno.test("convert: weights as an ArrayBuffer, a DataView or an Int8Array give the same files as a Uint8Array", async () => {
  const { model, weights, record } = await exampleFiles();
  const expected = await convertInMemory({ model, weights, record });
  // A copy at an offset inside a larger buffer, so views must honour byteOffset.
  const padded = new Uint8Array(weights.length + 8);
  padded.set(weights, 4);
  const buffer = weights.slice().buffer;
  for (
    const input of [
      buffer,
      new DataView(padded.buffer, 4, weights.length),
      new Int8Array(buffer),
    ]
  ) {
    const { files } = await convertInMemory({ model, weights: input, record });
    assert.deepEqual(files.deployWeights, expected.files.deployWeights);
    assert.deepEqual(files.fakeQuantModel, expected.files.fakeQuantModel);
  }
  assert.equal(readCaffemodel(buffer).layers.length, readCaffemodel(weights).layers.length);
});

Deno.test("convert: weights or texts of the wrong type are BAD_ARGUMENT saying what is expected", async () => {
  const { model, weights, record } = await exampleFiles();
  const text = new TextDecoder("latin1").decode(weights);
  await assertRejects(
    () => convertInMemory({ model, weights: text as never, record }),
    "BAD_ARGUMENT",
    /the weights must be bytes \(a Uint8Array, an ArrayBuffer .*\), not a string \(a file read as text/,
  );
  await assertRejects(
    () => convertInMemory({ model, weights: [1, 2, 3] as never, record }),
    "BAD_ARGUMENT",
    /not an Array/,
  );
  await assertRejects(
    () => convertInMemory({ model: new TextEncoder().encode(model) as never, weights, record }),
    "BAD_ARGUMENT",
    /the model must be text \(a string\), not a Uint8Array \(decode the bytes first/,
  );
  await assertRejects(
    () => convertInMemory({ model, weights, record: undefined as never }),
    "BAD_ARGUMENT",
    /the record must be text \(a string\), not undefined/,
  );
});

Deno.test("checkTensorSize: sizes that are not whole numbers >= 0 are BAD_INPUT, too large is LIMIT_EXCEEDED", () => {
  assertCode(() => checkTensorSize("b", [1, -2]), "BAD_INPUT", /sizes must be whole numbers/);
  assertCode(() => checkTensorSize("b", [1, 2.5]), "BAD_INPUT", /\[1, 2\.5\]/);
  assertCode(() => checkTensorSize("b", [NaN]), "BAD_INPUT", /blob "b"/);
  assertCode(() => checkTensorSize("b", [2 ** 15, 2 ** 15]), "LIMIT_EXCEEDED", /4 GiB/);
  assertCode(() => checkTensorSize("b", [1e20]), "LIMIT_EXCEEDED", /4 GiB/);
  checkTensorSize("b", [2 ** 14, 2 ** 14 - 1]);
  checkTensorSize("b", [0, 3]);
});

Deno.test("docs/errors.md lists every error code, and no code that does not exist", () => {
  const text = Deno.readTextFileSync(new URL("../docs/errors.md", import.meta.url));
  const documented = new Set(
    [...text.matchAll(/^\| `([A-Z0-9_]+)`/gm)].map((match) => match[1]),
  );
  assert.deepEqual([...documented].sort(), Object.keys(ERROR_CODES).sort());
});
