import assert from "node:assert/strict";
import {
  int32sSize,
  lengthFieldSize,
  MAX_NESTING,
  signedVarintSize,
  tagSize,
  uint64sSize,
  varintSize,
  WireReader,
  WireType,
  WireWriter,
} from "../src/proto/wire.ts";
import { assertConvertErrorAt, varint } from "./_protobuf_bytes.ts";

function reader(bytes: number[]): WireReader {
  return new WireReader(Uint8Array.from(bytes));
}

Deno.test("varints decode as the protobuf documentation encodes them", () => {
  assert.equal(reader([0x00]).uint32(), 0);
  assert.equal(reader([0x96, 0x01]).uint32(), 150);
  assert.equal(reader([0xac, 0x02]).uint32(), 300);
  const minusOne = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
  assert.equal(reader(minusOne).int32(), -1);
  assert.equal(reader(minusOne).int64(), -1);
  assert.equal(reader(minusOne).uint64(), 2n ** 64n - 1n);
  assert.equal(reader(varint(-2147483648)).int32(), -2147483648);
  assert.equal(reader(varint(2n ** 53n - 1n)).int64(), 2 ** 53 - 1);
  assert.equal(reader(varint(-(2n ** 40n))).int64(), -(2 ** 40));
  assert.equal(reader(varint(2n ** 63n + 5n)).uint64(), 2n ** 63n + 5n);
  assert.equal(reader(varint(4000000000)).uint32(), 4000000000);
  // A longer varint read as uint32 keeps the low 32 bits, as protobuf does.
  assert.equal(reader(varint(2n ** 32n + 7n)).uint32(), 7);
});

Deno.test("seeded random varints round-trip through the writer and the reader", () => {
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  for (let i = 0; i < 500; i++) {
    const big = (BigInt(next()) << 33n) ^ (BigInt(next()) << BigInt(next() % 30)) ^ BigInt(next());
    const value = BigInt.asUintN(64, big >> BigInt(next() % 64));
    const writer = new WireWriter(varint(value).length);
    writer.uint64(value);
    assert.deepEqual([...writer.finish()], varint(value));
    assert.equal(reader(varint(value)).uint64(), value);
  }
});

Deno.test("the writer encodes numbers as the independent encoder does", () => {
  for (const value of [0, 1, 127, 128, 150, 300, 16383, 16384, 2 ** 31, 2 ** 32, 2 ** 53 - 1]) {
    const writer = new WireWriter(varintSize(value));
    writer.varint(value);
    assert.deepEqual([...writer.finish()], varint(value), `varint ${value}`);
  }
  for (const value of [-1, -2, -300, -2147483648, -(2 ** 40)]) {
    assert.equal(signedVarintSize(value), 10);
    const writer = new WireWriter(10);
    writer.signedVarint(value);
    assert.deepEqual([...writer.finish()], varint(value), `signed varint ${value}`);
  }
  assert.equal(tagSize(15), 1);
  assert.equal(tagSize(16), 2);
  assert.equal(tagSize(100), 2);
  assert.equal(lengthFieldSize(100, 200), 2 + 2 + 200);
  const tagWriter = new WireWriter(2);
  tagWriter.tag(100, WireType.LENGTH);
  assert.deepEqual([...tagWriter.finish()], varint(100 * 8 + 2));
});

Deno.test("fixed-width values are little-endian", () => {
  const bytes = new Uint8Array(12);
  const view = new DataView(bytes.buffer);
  view.setFloat32(0, -1.5, true);
  view.setFloat64(4, Math.PI, true);
  const wire = new WireReader(bytes);
  assert.equal(wire.float(), -1.5);
  assert.equal(wire.double(), Math.PI);
  assert.ok(wire.done);
});

Deno.test("tags: field number, wire type and the bad ones", () => {
  const wire = reader([...varint(100 * 8 + 2)]);
  const tag = wire.tag();
  assert.equal(tag >>> 3, 100);
  assert.equal(tag & 7, WireType.LENGTH);
  assert.equal(wire.tagAt, 0);
  assertConvertErrorAt(() => reader([0x02]).tag(), "BINARY_NOT_PROTOBUF", 0); // field 0
  const sixAt2 = reader([0x08, 0x01, 0x0e]);
  sixAt2.skip(sixAt2.tag(), 0);
  assertConvertErrorAt(() => sixAt2.tag(), "BINARY_NOT_PROTOBUF", 2); // wire type 6
  assertConvertErrorAt(() => reader([0x0f]).tag(), "BINARY_NOT_PROTOBUF", 0); // wire type 7
  assertConvertErrorAt(() => reader([...varint(2n ** 35n + 8n)]).tag(), "BINARY_NOT_PROTOBUF", 0);
  const endGroup = reader([0x0c]);
  assertConvertErrorAt(() => endGroup.skip(endGroup.tag(), 0), "BINARY_NOT_PROTOBUF", 0);
});

Deno.test("varint errors: too long, truncated, past the enclosing end", () => {
  const eleven = [0x08, ...Array(10).fill(0x80), 0x01];
  const long = reader(eleven);
  long.tag();
  assertConvertErrorAt(() => long.uint64(), "BINARY_NOT_PROTOBUF", 1);
  assertConvertErrorAt(() => reader([0x96, 0x80]).skip(0x08, 0), "BINARY_TRUNCATED", 0);
  const cut = reader([0x08, 0x96]);
  cut.tag();
  assertConvertErrorAt(() => cut.uint32(), "BINARY_TRUNCATED", 1);
  // A varint that runs past its message's end while the file goes on.
  const outer = reader([0x0a, 0x02, 0x08, 0x96, 0x01]);
  outer.tag();
  const inner = outer.message();
  inner.tag();
  assertConvertErrorAt(() => inner.uint32(), "BINARY_LENGTH_PAST_END", 3);
});

Deno.test("lengths: past the file, past the message, huge, and fixed values cut short", () => {
  const pastFile = reader([0x0a, 0x05, 1, 2]);
  pastFile.tag();
  assertConvertErrorAt(() => pastFile.length(), "BINARY_TRUNCATED", 1);
  const nested = reader([0x0a, 0x03, 0x12, 0x05, 0x00, 9, 9, 9, 9, 9]);
  nested.tag();
  const inner = nested.message();
  inner.tag();
  assertConvertErrorAt(() => inner.length(), "BINARY_LENGTH_PAST_END", 3);
  // A length near 2^63 is rejected before anything is allocated.
  const huge = reader([0x0a, ...varint(2n ** 63n), 0]);
  huge.tag();
  assertConvertErrorAt(() => huge.length(), "BINARY_TRUNCATED", 1);
  const fixed = reader([0x0d, 1, 2]);
  fixed.tag();
  assertConvertErrorAt(() => fixed.float(), "BINARY_TRUNCATED", 1);
  const fixed64 = reader([0x09, 1, 2, 3, 4, 5, 6, 7]);
  assertConvertErrorAt(() => fixed64.skip(fixed64.tag(), 0), "BINARY_TRUNCATED", 1);
});

Deno.test("skip: every wire type, and nested groups up to the limit", () => {
  const bytes = [
    ...[0x08, 0x96, 0x01], // field 1 varint
    ...[0x11, 1, 2, 3, 4, 5, 6, 7, 8], // field 2 fixed64
    ...[0x1a, 0x02, 0xff, 0xff], // field 3 bytes
    ...[0x25, 1, 2, 3, 4], // field 4 fixed32
    ...[0x2b, 0x08, 0x01, 0x33, 0x34, 0x2c], // field 5 group holding field 1 and group 6
  ];
  const wire = reader(bytes);
  const tags: number[] = [];
  while (!wire.done) {
    const tag = wire.tag();
    tags.push(tag >>> 3);
    wire.skip(tag, 0);
  }
  assert.deepEqual(tags, [1, 2, 3, 4, 5]);

  const nestedGroups = (count: number) => {
    const start = Array(count).fill(0x0b); // field 1, start group
    const end = Array(count).fill(0x0c); // field 1, end group
    return reader([...start, ...end]);
  };
  const deepest = nestedGroups(MAX_NESTING);
  deepest.skip(deepest.tag(), 0);
  assert.ok(deepest.done);
  const tooDeep = nestedGroups(MAX_NESTING + 1);
  assertConvertErrorAt(() => tooDeep.skip(tooDeep.tag(), 0), "BINARY_TOO_DEEP", MAX_NESTING);

  const mismatched = reader([0x0b, 0x14]); // group 1 closed by end-group of field 2
  assertConvertErrorAt(() => mismatched.skip(mismatched.tag(), 0), "BINARY_NOT_PROTOBUF", 1);
  const unclosed = reader([0x0b, 0x08, 0x01]);
  assertConvertErrorAt(() => unclosed.skip(unclosed.tag(), 0), "BINARY_TRUNCATED", 0);
});

function floatBytes(values: number[], padding: number): Uint8Array {
  const bytes = new Uint8Array(padding + 4 * values.length);
  const view = new DataView(bytes.buffer);
  values.forEach((value, i) => view.setFloat32(padding + 4 * i, value, true));
  return bytes;
}

Deno.test("packed floats: a view when 4-aligned, one copy when not", () => {
  const values = [1.5, -2.25, 0.375, 65504];
  const aligned = new WireReader(floatBytes(values, 4), 4);
  const view = aligned.floats(16);
  assert.deepEqual([...view], values);
  assert.equal(view.buffer, aligned.bytes.buffer);
  assert.equal(view.byteOffset, 4);
  const unaligned = new WireReader(floatBytes(values, 3), 3);
  const copy = unaligned.floats(16);
  assert.deepEqual([...copy], values);
  assert.notEqual(copy.buffer, unaligned.bytes.buffer);
  // Alignment counts from the start of the ArrayBuffer, not of the Uint8Array.
  const shifted = new WireReader(floatBytes(values, 5).subarray(1), 4);
  assert.deepEqual([...shifted.floats(16)], values);
  assertConvertErrorAt(() => new WireReader(new Uint8Array(8)).floats(6), "BINARY_NOT_PROTOBUF", 0);
  assertConvertErrorAt(() => new WireReader(new Uint8Array(8)).floats(12), "BINARY_TRUNCATED", 0);
});

Deno.test("packed doubles and int8 views", () => {
  const bytes = new Uint8Array(24);
  const view = new DataView(bytes.buffer);
  view.setFloat64(8, 0.1, true);
  view.setFloat64(16, -1e300, true);
  const doubles = new WireReader(bytes, 8).doubles(16);
  assert.deepEqual([...doubles], [0.1, -1e300]);
  assert.equal(doubles.buffer, bytes.buffer);
  const int8s = reader([0x80, 0x7f, 0xff, 0x00]).int8s(4);
  assert.deepEqual([...int8s], [-128, 127, -1, 0]);
});

Deno.test("packed int32 and uint64 varints, with negatives and their sizes", () => {
  const int32Values = [0, 1, -1, 127, 128, -128, 2147483647, -2147483648, 300];
  const int32Bytes = int32Values.flatMap(varint);
  assert.deepEqual([...reader(int32Bytes).int32s(int32Bytes.length)], int32Values);
  const int32Array = Int32Array.from(int32Values);
  assert.equal(int32sSize(int32Array), int32Bytes.length);
  const int32Writer = new WireWriter(int32Bytes.length);
  int32Writer.int32s(int32Array);
  assert.deepEqual([...int32Writer.finish()], int32Bytes);

  const uint64Values = [0n, 1n, 1000214868n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n];
  const uint64Bytes = uint64Values.flatMap(varint);
  assert.deepEqual([...reader(uint64Bytes).uint64s(uint64Bytes.length)], uint64Values);
  const uint64Array = BigUint64Array.from(uint64Values);
  assert.equal(uint64sSize(uint64Array), uint64Bytes.length);
  const uint64Writer = new WireWriter(uint64Bytes.length);
  uint64Writer.uint64s(uint64Array);
  assert.deepEqual([...uint64Writer.finish()], uint64Bytes);

  // The last varint of the run is cut by the run's end (the file goes on).
  const cut = reader([0x01, 0x96, 0x01]);
  const runEnd = new WireReader(cut.bytes, 0, 2);
  assertConvertErrorAt(() => runEnd.int32s(2), "BINARY_LENGTH_PAST_END", 1);
  assertConvertErrorAt(() => reader([0x01, 0x96]).uint64s(2), "BINARY_TRUNCATED", 1);
  const eleven = [0x05, ...Array(10).fill(0xff), 0x01];
  assertConvertErrorAt(() => reader(eleven).int32s(12), "BINARY_NOT_PROTOBUF", 1);
});

Deno.test("skipPacked checks whole elements", () => {
  const varints = reader([0x03, 0x01, 0x96, 0x01, 0x07]);
  varints.skipPacked(WireType.VARINT);
  assert.equal(varints.pos, 4);
  assertConvertErrorAt(
    () => reader([0x02, 0x01, 0x96, 0x01]).skipPacked(WireType.VARINT),
    "BINARY_LENGTH_PAST_END",
    2,
  );
  const floats = reader([0x08, 1, 2, 3, 4, 5, 6, 7, 8]);
  floats.skipPacked(WireType.FIXED32);
  assert.ok(floats.done);
  assertConvertErrorAt(
    () => reader([0x06, 1, 2, 3, 4, 5, 6]).skipPacked(WireType.FIXED64),
    "BINARY_NOT_PROTOBUF",
    1,
  );
});

Deno.test("the writer copies typed arrays byte for byte and checks its size", () => {
  const floats = Float32Array.of(1, -0, NaN, Infinity);
  const writer = new WireWriter(17);
  writer.raw(Uint8Array.of(9));
  writer.typedArray(floats);
  const out = writer.finish();
  assert.deepEqual([...out.subarray(1)], [...new Uint8Array(floats.buffer)]);
  const short = new WireWriter(3);
  short.raw(Uint8Array.of(1));
  assert.throws(() => short.finish(), /filled 1 of 3/);
});
