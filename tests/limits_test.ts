// Resource limits and invalid UTF-8: each is a typed error at its place, found before the
// memory it guards is allocated.

import assert from "node:assert/strict";
import { readCaffemodel } from "../src/caffe/caffemodel_read.ts";
import { readPrototxt } from "../src/caffe/prototxt.ts";
import { ConvertError, type ErrorCode } from "../src/errors.ts";
import { LIMITS } from "../src/limits.ts";
import { caffeType } from "../src/proto/schema.ts";
import { parseText } from "../src/proto/text_read.ts";
import { assertConvertErrorAt, lengthField, stringField, varintField } from "./_protobuf_bytes.ts";
import { blob, layer, net, random } from "./_builders.ts";
import { runNet } from "../src/engine/run.ts";

const NET = caffeType("caffe.NetParameter");

function assertTextError(source: string, code: ErrorCode, line: number, column: number) {
  assert.throws(() => parseText(source, NET, "net.prototxt"), (error) => {
    assert.ok(error instanceof ConvertError, String(error));
    assert.deepEqual([error.code, error.file, error.line, error.column], [
      code,
      "net.prototxt",
      line,
      column,
    ], error.message);
    return true;
  });
}

Deno.test("text: a message with more fields than the limit fails at the first one too many", () => {
  const limit = LIMITS.fieldsPerMessage;
  const atLimit = 'input: "x"\n'.repeat(limit);
  assert.equal(parseText(atLimit, NET).fields.length, limit);
  assertTextError(atLimit + 'input: "y"\n', "LIMIT_EXCEEDED", limit + 1, 1);
  // A list counts its values.
  const list = `layer { bottom: [${Array(limit + 1).fill('"b"').join(",")}] }`;
  assertTextError(list, "LIMIT_EXCEEDED", 1, 18 + 4 * limit);
});

Deno.test("text: a string longer than the limit fails at its opening quote", () => {
  const long = "a".repeat(LIMITS.stringBytes + 1);
  assertTextError(`name: "x"\nlayer { name: "${long}" }`, "LIMIT_EXCEEDED", 2, 15);
  // Adjacent literals count together.
  const half = "a".repeat(LIMITS.stringBytes / 2 + 1);
  assertTextError(`name: "${half}" "${half}"`, "LIMIT_EXCEEDED", 1, LIMITS.stringBytes / 2 + 11);
  assert.equal(
    parseText(`name: "${"a".repeat(LIMITS.stringBytes)}"`, NET).get("name"),
    "a".repeat(LIMITS.stringBytes),
  );
});

Deno.test("text: strings that are not UTF-8 are INVALID_UTF8; comments may hold any bytes", () => {
  assertTextError(String.raw`name: "n\377"`, "INVALID_UTF8", 1, 7);
  // A file decoded with replacement characters (as readInputText does).
  const bytes = new Uint8Array([
    ...new TextEncoder().encode('layer { name: "a'),
    0xc0,
    0x22,
    0x20,
    0x7d,
  ]);
  assertTextError(new TextDecoder().decode(bytes), "INVALID_UTF8", 1, 15);
  // In an unknown field too: its raw text is printed back, and would no longer hold those bytes.
  assertTextError('layer { ssd_extra: "a\uFFFD" }', "INVALID_UTF8", 1, 20);
  // Escaped bytes in an unknown field are printed back as written, whatever they are.
  const unknownBytes = String.raw`layer { fork_bytes: "\377\000" }`;
  assert.equal(
    parseText(unknownBytes, NET).message("layer")?.fields[0].raw,
    String.raw`"\377\000"`,
  );
  const comment = new Uint8Array([
    0x23,
    0xb2,
    0xe2,
    0xca,
    0xd4,
    0x0a,
    ...new TextEncoder().encode('name: "n"'),
  ]);
  assert.equal(readPrototxt(new TextDecoder().decode(comment)).header.get("name"), "n");
  // bytes fields hold raw bytes and are not checked.
  const quant = parseText(String.raw`offset: "\377"`, caffeType("caffe.QuantParameter"));
  assert.deepEqual(quant.get("offset"), new Uint8Array([0xff]));
});

const layerField = (payload: number[]) => lengthField(100, payload);

Deno.test("caffemodel: more layers than the limit fail at the first one too many", () => {
  const empty = layerField([]); // 3 bytes each
  const bytes = new Uint8Array(empty.length * (LIMITS.layers + 1));
  for (let i = 0; i <= LIMITS.layers; i++) bytes.set(empty, i * empty.length);
  assert.equal(readCaffemodel(bytes.subarray(0, LIMITS.layers * 3)).layers.length, LIMITS.layers);
  assertConvertErrorAt(() => readCaffemodel(bytes), "LIMIT_EXCEEDED", LIMITS.layers * 3);
});

Deno.test("caffemodel: a blob shape with more axes than Caffe's 32 fails at the 33rd", () => {
  const shapeOf = (axes: number) => lengthField(7, lengthField(1, Array(axes).fill(1)));
  const blob = (axes: number) =>
    layerField([
      ...stringField(1, "a"),
      ...lengthField(7, [...shapeOf(axes), ...lengthField(5, [0, 0, 0x80, 0x3f])]),
    ]);
  const ok = readCaffemodel(new Uint8Array(blob(32)));
  assert.equal(ok.layers[0].blobs[0].shape.length, 32);
  // layer tag+len (3) name (3) blobs tag+len (2) shape tag+len (2) dim tag+len (2): 33rd dim at 12+32.
  assertConvertErrorAt(() => readCaffemodel(new Uint8Array(blob(40))), "LIMIT_EXCEEDED", 12 + 32);
});

Deno.test("caffemodel: a string longer than the limit fails at its field", () => {
  const name = "n".repeat(LIMITS.stringBytes);
  assert.equal(
    readCaffemodel(new Uint8Array(layerField(stringField(1, name.slice(4))))).layers[0].name.length,
    LIMITS.stringBytes - 4,
  );
  const bytes = new Uint8Array(layerField([...varintField(10, 0), ...stringField(1, name)]));
  // The layer's 2-byte tag and 3-byte length come first, then phase (2 bytes), then the name.
  assertConvertErrorAt(() => readCaffemodel(bytes), "LIMIT_EXCEEDED", 2 + 3 + 2);
});

Deno.test("caffemodel: a string that is not UTF-8 is INVALID_UTF8 at its layer's fields", () => {
  const bytes = new Uint8Array([
    ...layerField(stringField(1, "good")),
    ...layerField([...lengthField(2, [0x52, 0xff, 0x4c]), ...stringField(1, "bad")]),
  ]);
  // The first layer takes 9 bytes; the second's fields start after its 2-byte tag and length.
  assertConvertErrorAt(() => readCaffemodel(bytes), "INVALID_UTF8", 9 + 3);
  // A lead byte before a byte that does not continue it, a lone continuation byte, an encoded
  // surrogate and an overlong form are not UTF-8 either (protobufjs's lenient decoder, which read
  // these fields before, made "RÌ", "RL" and "R" with a lone U+D800 of the first three).
  for (const bad of [[0xc3, 0x4c], [0x80, 0x4c], [0xed, 0xa0, 0x80], [0xc0, 0xaf]]) {
    const layer = new Uint8Array(layerField(lengthField(2, [0x52, ...bad])));
    assertConvertErrorAt(() => readCaffemodel(layer), "INVALID_UTF8", 3);
  }
});

Deno.test("simulator: an input or a layer output too large to allocate is LIMIT_EXCEEDED", async () => {
  const next = random(3);
  await assert.rejects(runNet(net("data", [1, 1, 100000, 100000], [])), (error) => {
    assert.ok(error instanceof ConvertError && error.code === "LIMIT_EXCEEDED", String(error));
    return true;
  });
  // A 1×1 deconvolution with stride 60000 turns a 2×2 input into 60001×60001 (3.6e9 floats).
  const wide = layer("wide", "Deconvolution", ["data"], ["out"], {
    convolution_param: { num_output: 1, kernel_size: 1, stride: 60000, bias_term: false },
  }, [blob([1, 1, 1, 1], next)]);
  await assert.rejects(runNet(net("data", [1, 1, 2, 2], [wide])), (error) => {
    assert.ok(error instanceof ConvertError, String(error));
    assert.deepEqual([error.code, error.layer], ["LIMIT_EXCEEDED", "wide"], error.message);
    return true;
  });
});
