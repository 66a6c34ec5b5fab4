// The binary codec of text trees (src/proto/binary_message.ts) against protobufjs as the oracle:
// on the header and every layer of every shared caffemodel, and on seeded random messages of a
// schema with every field type (singular, repeated, packed, nested), our decoding gives the tree
// protobufjs's decoding gives, and our encoding the bytes protobufjs's encoding gives.

import assert from "node:assert/strict";
// deno-lint-ignore no-import-prefix -- the team's one allowed specifier for protobufjs
import protobuf from "npm:protobufjs@8.0.0";
import { decodeMessage, encodeMessage } from "../src/proto/binary_message.ts";
import { type MessageType, messageTypes } from "../src/proto/field_info.ts";
import { caffeType } from "../src/proto/schema.ts";
import { describeSchema, parseSchema, protoFilesSchema } from "../scripts/build_schema.ts";
import { type FieldValue, TextMessage } from "../src/proto/tree.ts";
import { WireReader } from "../src/proto/wire.ts";
import { random } from "./_builders.ts";
import { modelFile, modelNames } from "./_models.ts";
import { messageFromObject, objectFromMessage } from "./_protobufjs_oracle.ts";

const EVERY_TYPE_PROTO = `
syntax = "proto2";
package t;
message M {
  enum Color { RED = 0; GREEN = 1; BLUE = -2; }
  optional int32 i32 = 1;
  optional uint32 u32 = 2;
  optional sint32 s32 = 3;
  optional fixed32 f32 = 4;
  optional sfixed32 sf32 = 5;
  optional int64 i64 = 6;
  optional uint64 u64 = 7;
  optional sint64 s64 = 8;
  optional fixed64 f64 = 9;
  optional sfixed64 sf64 = 10;
  optional float fl = 11;
  optional double db = 12;
  optional bool b = 13;
  optional string s = 14;
  optional bytes by = 15;
  optional Color color = 16 [default = GREEN];
  optional M sub = 17;
  repeated M subs = 18;
  repeated int32 r_i32 = 19;
  repeated sint64 r_s64 = 20 [packed = true];
  repeated float r_fl = 21 [packed = true];
  repeated double r_db = 22;
  repeated bool r_b = 23 [packed = true];
  repeated string r_s = 24;
  repeated Color r_color = 25;
  repeated fixed32 r_f32 = 26 [packed = true];
  repeated uint64 r_u64 = 27;
}
`;
const root = new protobuf.Root();
protobuf.parse(EVERY_TYPE_PROTO, root, { keepCase: true });
root.resolveAll();
/** The test type as protobufjs reads it (the oracle) and as our schema describes it. */
const M = root.lookupType("t.M");
const ourM = messageTypes(describeSchema(parseSchema([EVERY_TYPE_PROTO])))("t.M");
/** `proto/`'s schema as protobufjs reads it. */
const caffeRoot = protoFilesSchema();

/** The fields of a tree as plain nested arrays, for deep comparison. */
function plain(message: TextMessage): unknown[] {
  return message.fields.map((
    field,
  ) => [field.name, field.value instanceof TextMessage ? plain(field.value) : field.value]);
}

/** protobufjs's decoding of `bytes` as `type`, as a tree. */
function oracleDecode(type: protobuf.Type, bytes: Uint8Array): TextMessage {
  return messageFromObject(type, type.decode(bytes));
}

/** protobufjs's encoding of `message` as `type`. */
function oracleEncode(type: protobuf.Type, message: TextMessage): Uint8Array {
  return Uint8Array.from(type.encode(type.fromObject(objectFromMessage(type, message))).finish());
}

/**
 * Asserts both directions on `bytes` of `type` (protobufjs's and `ours`): the same tree, and that
 * tree to the same bytes.
 */
function assertAsProtobufjs(
  type: protobuf.Type,
  ours: MessageType,
  bytes: Uint8Array,
  where: string,
): void {
  const expected = oracleDecode(type, bytes);
  const decoded = decodeMessage(ours.info, bytes);
  assert.deepEqual(plain(decoded), plain(expected), `decoded ${where}`);
  assert.deepEqual(
    encodeMessage(ours.info, decoded),
    oracleEncode(type, expected),
    `encoded ${where}`,
  );
}

/** Wire types of the scalar types (enums are varints). */
const WIRE: Record<string, number> = {
  double: 1,
  fixed64: 1,
  sfixed64: 1,
  float: 5,
  fixed32: 5,
  sfixed32: 5,
  string: 2,
  bytes: 2,
};

/**
 * Whether every known field of the message read by `reader`, at any depth, comes with its
 * type's wire type (or packed, for repeated scalars). The caffemodel reader keeps a field that
 * does not as unknown bytes and decodes only the others: protobufjs reads such a field by its
 * declared type whatever its wire type.
 */
function fits(type: protobuf.Type, reader: WireReader): boolean {
  while (!reader.done) {
    const tag = reader.tag();
    const field = type.fieldsById[tag >>> 3]?.resolve();
    const wireType = tag & 7;
    if (field === undefined) {
      reader.skip(tag, 0);
      continue;
    }
    if (field.resolvedType instanceof protobuf.Type) {
      if (wireType !== 2 || !fits(field.resolvedType, reader.message())) return false;
      continue;
    }
    const expected = field.resolvedType !== null ? 0 : WIRE[field.type] ?? 0;
    if (wireType !== expected && !(field.repeated && wireType === 2 && expected !== 2)) {
      return false;
    }
    reader.skip(tag, 0);
  }
  return true;
}

/**
 * The bytes of the fields of one message (`reader`'s) of `type` but those numbered `without`
 * and those that do not fit the type (see `fits`).
 */
function fittingFields(type: protobuf.Type, reader: WireReader, without: number): Uint8Array {
  const kept: number[] = [];
  while (!reader.done) {
    const tag = reader.tag();
    const start = reader.tagAt;
    reader.skip(tag, 0);
    const field = reader.bytes.subarray(start, reader.pos);
    if (tag >>> 3 !== without && fits(type, new WireReader(field))) kept.push(...field);
  }
  return Uint8Array.from(kept);
}

for (const model of modelNames) {
  Deno.test(`binary messages: ${model}'s header and layers decode and encode as protobufjs does`, () => {
    const bytes = Deno.readFileSync(modelFile(model, "weights.caffemodel"));
    const net = caffeRoot.lookupType("caffe.NetParameter");
    const header: number[] = [];
    const reader = new WireReader(bytes);
    let layers = 0;
    while (!reader.done) {
      const tag = reader.tag();
      const start = reader.tagAt;
      const field = tag >>> 3;
      if (field === 100 || field === 2) {
        // A layer (V2, field 100) or V1 layer (field 2), blobs (7 / 6) left out as the reader does.
        const name = field === 100 ? "caffe.LayerParameter" : "caffe.V1LayerParameter";
        const type = caffeRoot.lookupType(name);
        const params = fittingFields(type, reader.message(), field === 100 ? 7 : 6);
        assertAsProtobufjs(type, caffeType(name), params, `layer ${layers++} of ${model}`);
      } else {
        reader.skip(tag, 0);
        const headerField = bytes.subarray(start, reader.pos);
        if (fits(net, new WireReader(headerField))) header.push(...headerField);
      }
    }
    assert.ok(layers > 0);
    const headerBytes = Uint8Array.from(header);
    assertAsProtobufjs(net, caffeType("caffe.NetParameter"), headerBytes, `the header of ${model}`);
  });
}

/** A seeded random value for a field of protobufjs type `type` (a scalar type or enum). */
function randomValue(field: protobuf.Field, next: () => number): unknown {
  const pick = <T>(values: T[]): T => values[Math.floor(next() * values.length)];
  const integer = (bits: number) => Math.floor((next() - 0.5) * 2 ** bits);
  switch (field.type) {
    case "int32":
    case "sint32":
    case "sfixed32":
      return pick([0, 1, -1, 127, 128, 2147483647, -2147483648, integer(32)]);
    case "uint32":
    case "fixed32":
      return pick([0, 1, 4294967295, Math.floor(next() * 2 ** 32)]);
    case "int64":
    case "sint64":
    case "sfixed64":
      return pick([0, -1, 2 ** 40, -(2 ** 40) - 3, integer(53), -(2 ** 53) + 1]);
    case "uint64":
    case "fixed64":
      return pick([0, 1, 2 ** 32, 2 ** 53 - 1, Math.floor(next() * 2 ** 53)]);
    case "float":
      return pick([0, -0, 1.5, -3.25e-3, 1e-40, 3.4e38, Math.fround(next() * 100 - 50)]);
    case "double":
      return pick([0, -0, 0.1, -1e300, 5e-324, next() * 1e6]);
    case "bool":
      return next() < 0.5;
    case "string":
      return pick(["", "conv1", "é ñ 中文 \u{1F600}", 'a\nb"c']);
    case "bytes":
      return Uint8Array.from({ length: Math.floor(next() * 5) }, () => Math.floor(next() * 256));
    default:
      return pick(["RED", "GREEN", "BLUE", 0, 1, -2, 7]);
  }
}

/** A seeded random plain object of `type` (messages nested up to `depth`). */
function randomObject(type: protobuf.Type, next: () => number, depth: number): object {
  const object: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    if (next() < 0.5) continue;
    const nested = field.resolvedType instanceof protobuf.Type ? field.resolvedType : null;
    if (nested !== null && depth === 0) continue;
    const one = () =>
      nested !== null ? randomObject(nested, next, depth - 1) : randomValue(field, next);
    object[field.name] = field.repeated
      ? Array.from({ length: 1 + Math.floor(next() * 3) }, one)
      : one();
  }
  return object;
}

Deno.test("binary messages: 400 seeded random messages of every field type as protobufjs", () => {
  const unit = random(20261205);
  const next = () => unit(0, 1);
  for (let i = 0; i < 400; i++) {
    const bytes = Uint8Array.from(M.encode(M.fromObject(randomObject(M, next, 2))).finish());
    assertAsProtobufjs(M, ourM, bytes, `random message ${i}`);
  }
});

Deno.test("binary messages: repeated and packed forms, last singular value, unknown fields", () => {
  const info = ourM.info;
  // r_i32 (19, not packed) given packed and unpacked; i32 (1) twice; sub (17) twice, each
  // holding an i32 (not merged: the last wins); field 99 unknown (skipped); s64 packed.
  const bytes = Uint8Array.of(
    0x98,
    0x01,
    0x05, // r_i32: 5
    0x9a,
    0x01,
    0x02,
    0x06,
    0x07, // r_i32 packed: 6, 7
    0x08,
    0x01, // i32: 1
    0x8a,
    0x01,
    0x02,
    0x08,
    0x09, // sub { i32: 9 }
    0x08,
    0x02, // i32: 2
    0x8a,
    0x01,
    0x02,
    0x10,
    0x03, // sub { u32: 3 }
    0x98,
    0x06,
    0x01, // field 99: 1
    0xa2,
    0x01,
    0x02,
    0x03,
    0x04, // r_s64 packed: -2, 2
  );
  const tree = decodeMessage(info, bytes);
  assert.deepEqual(plain(tree), [
    ["i32", 2],
    ["sub", [["u32", 3]]],
    ["r_i32", 5],
    ["r_i32", 6],
    ["r_i32", 7],
    ["r_s64", -2],
    ["r_s64", 2],
  ]);
  assert.deepEqual(plain(tree), plain(oracleDecode(M, bytes)));
  // Encoded back: field-number order, r_i32 unpacked, r_s64 packed as the schema says.
  assert.deepEqual(
    encodeMessage(info, tree),
    Uint8Array.of(
      0x08,
      0x02,
      0x8a,
      0x01,
      0x02,
      0x10,
      0x03,
      0x98,
      0x01,
      0x05,
      0x98,
      0x01,
      0x06,
      0x98,
      0x01,
      0x07,
      0xa2,
      0x01,
      0x02,
      0x03,
      0x04,
    ),
  );
  // A tree's unknown fields, a message given for a scalar field and an enum name the enum
  // lacks (singular) are left out; a base64 string for bytes is decoded, as protobufjs does.
  const odd = new TextMessage([
    { name: "mystery", value: 1, raw: "1", unknown: true },
    { name: "i32", value: new TextMessage([]) },
    { name: "color", value: "PURPLE" },
    { name: "by", value: "8g==" },
    { name: "r_color", value: "PURPLE" },
  ]);
  assert.deepEqual(encodeMessage(info, odd), oracleEncode(M, odd));
  assert.deepEqual(encodeMessage(info, odd), Uint8Array.of(0x7a, 0x01, 0xf2, 0xc8, 0x01, 0x00));
  // A scalar given for a message field is a TypeError, as in protobufjs.
  const wrong = new TextMessage([{ name: "sub", value: 3 as FieldValue }]);
  assert.throws(() => encodeMessage(info, wrong), TypeError);
  assert.throws(() => oracleEncode(M, wrong), TypeError);
});

Deno.test("binary messages: a repeated field of 200,000 packed values given twice", () => {
  const values = new Uint8Array(200_000).fill(1);
  // r_i32 (19) packed: tag 0x9a 0x01, length 200000 as a varint, then 200,000 one-byte values.
  const field = [0x9a, 0x01, 0xc0, 0x9a, 0x0c, ...values];
  const tree = decodeMessage(ourM.info, Uint8Array.from([...field, ...field]));
  assert.equal(tree.fields.length, 400_000);
  assert.ok(tree.fields.every((item) => item.name === "r_i32" && item.value === 1));
});
