import assert from "node:assert/strict";
import { ConvertError, type ErrorCode } from "../src/errors.ts";
import { type MessageType, messageTypes } from "../src/proto/field_info.ts";
import { caffeType } from "../src/proto/schema.ts";
import { describeSchema, parseSchema } from "../scripts/build_schema.ts";
import { formatFloat32 } from "../src/proto/text_numbers.ts";
import { printText } from "../src/proto/text_print.ts";
import { parseText } from "../src/proto/text_read.ts";
import { type FieldValue, TextMessage } from "../src/proto/tree.ts";

// A schema with one field of every scalar kind, written for these tests.
const TEST_PROTO = `
syntax = "proto2";
package t;
message All {
  optional int32 i32 = 1;
  optional uint32 u32 = 2;
  optional int64 i64 = 3;
  optional uint64 u64 = 4;
  optional float f32 = 5;
  optional double f64 = 6;
  optional bool b = 7;
  optional string s = 8;
  optional bytes by = 9;
  enum Color { RED = 0; GREEN = 1; BLUE = -2; }
  optional Color color = 10;
  repeated int32 list = 11;
  optional All sub = 12;
  repeated All subs = 13;
  optional sint32 si32 = 14;
  optional fixed64 fx64 = 15;
}
`;
const All = messageTypes(describeSchema(parseSchema([TEST_PROTO])))("t.All");
const Net = caffeType("caffe.NetParameter");

/** The single value of field `name` parsed from `text` (a message of type All). */
function value(text: string, name: string): FieldValue | undefined {
  return parseText(text, All).get(name);
}

/** Asserts that parsing fails with `code` at `line`:`column` (and `file` when given). */
function assertError(
  text: string,
  code: ErrorCode,
  line: number,
  column: number,
  type: MessageType = All,
): void {
  assert.throws(() => parseText(text, type, "in.prototxt"), (error: unknown) => {
    assert.ok(error instanceof ConvertError, `not a ConvertError: ${error}`);
    assert.equal(error.code, code, error.message);
    assert.equal(error.file, "in.prototxt");
    assert.deepEqual([error.line, error.column], [line, column], error.message);
    return true;
  });
}

/** A tree without source places: [name, value, unknown] per field, for equality checks. */
function plain(message: TextMessage): unknown[] {
  return message.fields.map((f) => [
    f.name,
    f.value instanceof TextMessage ? plain(f.value) : f.value,
    f.unknown ?? false,
  ]);
}

Deno.test("integers: decimal, hex, octal, negative", () => {
  assert.equal(value("i32: 42", "i32"), 42);
  assert.equal(value("i32: 0x2A", "i32"), 42);
  assert.equal(value("i32: 0X2a", "i32"), 42);
  assert.equal(value("i32: 052", "i32"), 42);
  assert.equal(value("i32: 0", "i32"), 0);
  assert.equal(value("i32: -42", "i32"), -42);
  assert.equal(value("i32: - 42", "i32"), -42);
  assert.equal(value("i32: -0x10", "i32"), -16);
  assert.equal(value("si32: -7", "si32"), -7);
  assert.equal(value("u32: 4294967295", "u32"), 4294967295);
  assert.equal(value("i64: -9007199254740991", "i64"), -9007199254740991);
  assert.equal(value("u64: 9007199254740991", "u64"), 9007199254740991);
  assert.equal(value("fx64: 0xFFFFFFFF", "fx64"), 4294967295);
  assert.ok(Object.is(value("i32: -0", "i32"), 0));
});

Deno.test("integers: range limits", () => {
  assert.equal(value("i32: 2147483647", "i32"), 2147483647);
  assert.equal(value("i32: -2147483648", "i32"), -2147483648);
  assertError("i32: 2147483648", "TEXT_OUT_OF_RANGE", 1, 6);
  assertError("i32: -2147483649", "TEXT_OUT_OF_RANGE", 1, 6);
  assertError("u32: 4294967296", "TEXT_OUT_OF_RANGE", 1, 6);
  assertError("u32: -1", "TEXT_OUT_OF_RANGE", 1, 6);
  assertError("u64: -1", "TEXT_OUT_OF_RANGE", 1, 6);
  assertError("i64: 9007199254740992", "TEXT_OUT_OF_RANGE", 1, 6);
  assertError("i64: -9007199254740993", "TEXT_OUT_OF_RANGE", 1, 6);
  assertError("u64: 18446744073709551615", "TEXT_OUT_OF_RANGE", 1, 6);
  assertError("i32: 0xFFFFFFFF", "TEXT_OUT_OF_RANGE", 1, 6);
});

Deno.test("integers: wrong types and malformed numbers", () => {
  assertError("i32: 1.5", "TEXT_WRONG_TYPE", 1, 6);
  assertError("i32: 1e3", "TEXT_WRONG_TYPE", 1, 6);
  assertError("i32: 2f", "TEXT_WRONG_TYPE", 1, 6);
  assertError('i32: "7"', "TEXT_WRONG_TYPE", 1, 6);
  assertError("i32: seven", "TEXT_WRONG_TYPE", 1, 6);
  assertError("i32 { }", "TEXT_WRONG_TYPE", 1, 5);
  assertError("i32: 08", "TEXT_SYNTAX", 1, 6);
  assertError("i32: 5abc", "TEXT_SYNTAX", 1, 6);
  assertError("i32: 0x", "TEXT_SYNTAX", 1, 6);
  assertError("i32: 1.2.3", "TEXT_SYNTAX", 1, 6);
});

Deno.test("floats: every literal form, stored as float32 or float64", () => {
  const f32 = (x: number) => new Float32Array([x])[0];
  assert.equal(value("f32: 1.5", "f32"), 1.5);
  assert.equal(value("f32: 0.1", "f32"), f32(0.1));
  assert.equal(value("f64: 0.1", "f64"), 0.1);
  assert.equal(value("f32: -2.5e-3", "f32"), f32(-0.0025));
  assert.equal(value("f32: 1E5", "f32"), 100000);
  assert.equal(value("f32: 1e+2", "f32"), 100);
  assert.equal(value("f32: .5", "f32"), 0.5);
  assert.equal(value("f32: 5.", "f32"), 5);
  assert.equal(value("f32: 1.5f", "f32"), 1.5);
  assert.equal(value("f32: 2F", "f32"), 2);
  assert.equal(value("f32: 3", "f32"), 3);
  assert.equal(value("f32: 0x10", "f32"), 16);
  assert.equal(value("f32: 010", "f32"), 8);
  assert.equal(value("f32: inf", "f32"), Infinity);
  assert.equal(value("f32: -inf", "f32"), -Infinity);
  assert.equal(value("f32: Infinity", "f32"), Infinity);
  assert.equal(value("f32: -INF", "f32"), -Infinity);
  assert.equal(value("f64: -infinity", "f64"), -Infinity);
  assert.ok(Number.isNaN(value("f32: nan", "f32")));
  assert.ok(Number.isNaN(value("f64: NaN", "f64")));
  assert.ok(Object.is(value("f32: -0", "f32"), -0));
  assert.equal(value("f32: 3.4028235e38", "f32"), 3.4028234663852886e38);
  assert.equal(value("f64: 1e300", "f64"), 1e300);
});

Deno.test("floats: out of range and wrong types", () => {
  assertError("f32: 1e39", "TEXT_OUT_OF_RANGE", 1, 6);
  assertError("\n  f32: -3.5e38", "TEXT_OUT_OF_RANGE", 2, 8);
  assertError("f64: 1e400", "TEXT_OUT_OF_RANGE", 1, 6);
  assertError("f32: infinite", "TEXT_WRONG_TYPE", 1, 6);
  assertError('f32: "1.5"', "TEXT_WRONG_TYPE", 1, 6);
  assertError("f32: 1e", "TEXT_SYNTAX", 1, 6);
});

Deno.test("bools: every accepted spelling", () => {
  for (const t of ["true", "True", "t", "1", "0x1"]) assert.equal(value(`b: ${t}`, "b"), true, t);
  for (const f of ["false", "False", "f", "0"]) assert.equal(value(`b: ${f}`, "b"), false, f);
  assertError("b: 2", "TEXT_OUT_OF_RANGE", 1, 4);
  assertError("b: -1", "TEXT_OUT_OF_RANGE", 1, 4);
  assertError("b: TRUE", "TEXT_WRONG_TYPE", 1, 4);
  assertError("b: yes", "TEXT_WRONG_TYPE", 1, 4);
  assertError('b: "true"', "TEXT_WRONG_TYPE", 1, 4);
  assertError("b: 1.0", "TEXT_WRONG_TYPE", 1, 4);
});

Deno.test("enums: by name, by number (stored as name), unknown values", () => {
  assert.equal(value("color: GREEN", "color"), "GREEN");
  assert.equal(value("color: 1", "color"), "GREEN");
  assert.equal(value("color: -2", "color"), "BLUE");
  assert.equal(value("color: 0x0", "color"), "RED");
  assertError("color: PURPLE", "TEXT_UNKNOWN_ENUM", 1, 8);
  assertError("\ncolor: 7", "TEXT_UNKNOWN_ENUM", 2, 8);
  assertError("color: green", "TEXT_UNKNOWN_ENUM", 1, 8);
  assertError('color: "GREEN"', "TEXT_WRONG_TYPE", 1, 8);
  assertError("color: 1.0", "TEXT_WRONG_TYPE", 1, 8);
  // Real Caffe enums.
  const pool = parseText("pool: AVE round_mode: 1", caffeType("caffe.PoolingParameter"));
  assert.deepEqual([pool.get("pool"), pool.get("round_mode")], ["AVE", "FLOOR"]);
});

Deno.test("strings: escapes, quotes, concatenation, UTF-8", () => {
  assert.equal(value(String.raw`s: "a\nb\t\"q\"\\"`, "s"), 'a\nb\t"q"\\');
  assert.equal(value(`s: 'it"s'`, "s"), 'it"s');
  assert.equal(value(String.raw`s: 'it\'s'`, "s"), "it's");
  assert.equal(value(String.raw`s: "\a\b\f\v\r\?"`, "s"), "\x07\b\f\v\r?");
  assert.equal(value(String.raw`s: "\101\x42\x4a\103"`, "s"), "ABJC");
  assert.equal(value(String.raw`s: "\303\251t\303\251"`, "s"), "été");
  assert.equal(value(String.raw`s: "\u00e9\U0001F600"`, "s"), "é😀");
  assert.equal(value(`s: "été 😀"`, "s"), "été 😀");
  assert.equal(value(`s: "a" "b"\n 'c'  # comment\n "d"`, "s"), "abcd");
  assert.equal(value(String.raw`s: "a" "\142"`, "s"), "ab");
  assert.equal(value(`s: ""`, "s"), "");
  assertError(String.raw`s: "a\qb"`, "TEXT_SYNTAX", 1, 6);
  assertError(String.raw`s: "\xZZ"`, "TEXT_SYNTAX", 1, 5);
  assertError(String.raw`s: "\u12"`, "TEXT_SYNTAX", 1, 5);
  assertError("s: 12", "TEXT_WRONG_TYPE", 1, 4);
  assertError("s: abc", "TEXT_WRONG_TYPE", 1, 4);
});

Deno.test("bytes: octal and hex escapes give raw bytes", () => {
  assert.deepEqual(value(String.raw`by: "\362"`, "by"), new Uint8Array([0xf2]));
  assert.deepEqual(
    value(String.raw`by: "\0\x7f\xff A"`, "by"),
    new Uint8Array([0, 0x7f, 0xff, 0x20, 0x41]),
  );
  assert.deepEqual(value(`by: "é"`, "by"), new Uint8Array([0xc3, 0xa9]));
  assert.deepEqual(value(String.raw`by: "\1" "\2"`, "by"), new Uint8Array([1, 2]));
  // SPEC section 4: offset_d = -14 is the byte 0xF2, printed "\362".
  const quant = parseText(String.raw`offset: "\362"`, caffeType("caffe.QuantParameter"));
  assert.deepEqual(quant.get("offset"), new Uint8Array([242]));
});

Deno.test("unterminated strings", () => {
  assertError('s: "abc', "TEXT_UNTERMINATED_STRING", 1, 4);
  assertError('i32: 1\ns: "abc\n"', "TEXT_UNTERMINATED_STRING", 2, 4);
  assertError("s: 'abc\"", "TEXT_UNTERMINATED_STRING", 1, 4);
  assertError('s: "abc\\', "TEXT_UNTERMINATED_STRING", 1, 4);
});

Deno.test("syntax errors with their places", () => {
  assertError('s "x"', "TEXT_SYNTAX", 1, 3);
  assertError("sub {\n  i32: 1\n", "TEXT_SYNTAX", 3, 1);
  assertError("i32: 1\n}", "TEXT_SYNTAX", 2, 1);
  assertError("sub < i32: 1 }", "TEXT_SYNTAX", 1, 14);
  assertError("i32: 1 = 2", "TEXT_SYNTAX", 1, 8);
  assertError("i32:", "TEXT_SYNTAX", 1, 5);
  assertError("list: [1, 2", "TEXT_SYNTAX", 1, 12);
  assertError("list: [1 2]", "TEXT_SYNTAX", 1, 10);
  assertError("\t\ti32: +1", "TEXT_SYNTAX", 1, 8);
  assertError("sub: 5", "TEXT_WRONG_TYPE", 1, 6);
  assertError("i32: [1, 2]", "TEXT_WRONG_TYPE", 1, 6);
  assertError(
    "layer { name: 'a' convolution_param { num_output: -1 } }",
    "TEXT_OUT_OF_RANGE",
    1,
    51,
    Net,
  );
  let deep = "";
  for (let i = 0; i < 101; i++) deep += "sub {";
  assertError(deep, "TEXT_TOO_DEEP", 1, 505);
});

Deno.test("a singular field given twice is refused, as Caffe's parser does", () => {
  assertError("i32: 1\nsub { i32: 2 }\n  i32: 3", "TEXT_DUPLICATE_FIELD", 3, 3);
  assertError("sub { i32: 1 i32: 2 }", "TEXT_DUPLICATE_FIELD", 1, 14);
  assertError("sub { } sub { }", "TEXT_DUPLICATE_FIELD", 1, 9);
  // Repeated fields and unknown fields may repeat; each message counts its own fields.
  assert.equal(
    parseText("list: 1 list: 2 subs { i32: 1 } subs { i32: 1 } x: 1 x: 2", All).fields.length,
    6,
  );
});

Deno.test("message syntax: braces, angle brackets, colons, separators, comments, lists", () => {
  const text = `# header comment
i32: 1; u32: 2, subs { i32: 3 } subs: { i32: 4 }
subs < i32: 5 >   # trailing comment
list: [1, 0x2, 03] list: 4 list: []
subs [{ i32: 6 }, < i32: 7 >] subs: [ ]
`;
  const tree = parseText(text, All);
  assert.deepEqual(plain(tree), [
    ["i32", 1, false],
    ["u32", 2, false],
    ["subs", [["i32", 3, false]], false],
    ["subs", [["i32", 4, false]], false],
    ["subs", [["i32", 5, false]], false],
    ["list", 1, false],
    ["list", 2, false],
    ["list", 3, false],
    ["list", 4, false],
    ["subs", [["i32", 6, false]], false],
    ["subs", [["i32", 7, false]], false],
  ]);
  const places = tree.fields.map((f) => [f.line, f.column]);
  assert.deepEqual(places, [[2, 1], [2, 9], [2, 17], [2, 33], [3, 1], [4, 8], [4, 11], [4, 16], [
    4,
    20,
  ], [
    5,
    7,
  ], [5, 19]]);
  assert.deepEqual(parseText("", All).fields, []);
  assert.deepEqual(parseText("\ufeff  # only a comment\n", All).fields, []);
});

Deno.test("unknown fields and messages are kept and printed back as written", () => {
  const text = `name: "net"
mystery: 1.50
flag: BAZ
neg: - 7
quoted: "a\\001" 'b'
extra_param {
  k: 0x10
  nested < deep: "x" >
  list: [1, 2]
}
[ext.field]: 3
layer {
  name: "l"
  type: "MyCustomLayer"
  my_layer_param { alpha: 0.25 }
  top: "l"
}
`;
  const tree = parseText(text, Net);
  const unknown = tree.fields.filter((f) => f.unknown).map((f) => f.name);
  assert.deepEqual(unknown, ["mystery", "flag", "neg", "quoted", "extra_param", "[ext.field]"]);
  assert.equal(tree.get("mystery"), "1.50");
  assert.equal(tree.entry("neg")?.raw, "-7");
  const layer = tree.message("layer")!;
  assert.equal(layer.entry("my_layer_param")?.unknown, true);
  assert.equal(layer.entry("name")?.unknown, undefined);
  const printed = printText(tree, Net);
  assert.equal(
    printed,
    `name: "net"
mystery: 1.50
flag: BAZ
neg: -7
quoted: "a\\001" 'b'
extra_param {
  k: 0x10
  nested {
    deep: "x"
  }
  list: 1
  list: 2
}
[ext.field]: 3
layer {
  name: "l"
  type: "MyCustomLayer"
  my_layer_param {
    alpha: 0.25
  }
  top: "l"
}
`,
  );
  assert.deepEqual(plain(parseText(printed, Net)), plain(tree));
});

Deno.test("printer: canonical layout, escapes, enums, raw floats", () => {
  const tree = parseText(
    String
      .raw`s: 'a"b' by: "\362\000\n" color: 1 f32: 1.07450986 f64: 1e-7 b: t i64: -0x10 sub { }`,
    All,
  );
  assert.equal(
    printText(tree, All),
    String.raw`s: "a\"b"
by: "\362\000\n"
color: GREEN
f32: 1.07450986
f64: 1e-7
b: true
i64: -16
sub {
}
`,
  );
  // Non-ASCII text is printed as octal escapes of its UTF-8 bytes, as protobuf's CEscape does.
  const utf8 = parseText(`s: "é\\t'"`, All);
  assert.equal(printText(utf8, All), String.raw`s: "\303\251\t\'"` + "\n");
  assert.equal(printText(new TextMessage(), All), "");
});

Deno.test("printer: values without source text", () => {
  const m = new TextMessage();
  m.set("f32", Math.fround(0.1));
  m.set("f64", 0.1);
  m.set("i32", -3);
  m.set("color", "BLUE");
  m.set("by", new Uint8Array([0xf2]));
  m.add("list", 1);
  m.add("list", 2);
  const sub = new TextMessage();
  sub.set("s", "x");
  m.set("sub", sub);
  m.set("u64", Number.MAX_SAFE_INTEGER);
  m.set("f32", Math.fround(1 / 3));
  assert.equal(
    printText(m, All),
    `f32: 0.33333334
f64: 0.1
i32: -3
color: BLUE
by: "\\362"
list: 1
list: 2
sub {
  s: "x"
}
u64: 9007199254740991
`,
  );
  // A float whose source text no longer matches its value is printed from the value.
  const edited = parseText("f32: 2.5", All);
  edited.fields[0].value = Math.fround(0.2);
  assert.equal(printText(edited, All), "f32: 0.2\n");
  // Special values.
  const special = new TextMessage([
    { name: "f32", value: NaN },
    { name: "f32", value: Infinity },
    { name: "f64", value: -Infinity },
    { name: "f32", value: -0 },
  ]);
  assert.equal(printText(special, All), "f32: nan\nf32: inf\nf64: -inf\nf32: -0\n");
});

Deno.test("printer output re-parses to an equal tree", () => {
  const text = String.raw`
i32: -5 u32: 0xff i64: 123456789012 u64: 0 f32: 1e-5 f64: -2.5 b: false
s: "tab\there" by: "\000\377" color: BLUE list: [1, 2, 3]
sub { f32: nan sub { f32: -inf s: "\u00e9" } } subs { } unknown_thing { x: y }
`;
  const tree = parseText(text, All);
  const printed = printText(tree, All);
  assert.deepEqual(plain(parseText(printed, All)), plain(tree));
  assert.equal(printText(parseText(printed, All), All), printed);
});

Deno.test("formatFloat32: shortest decimal that round-trips", () => {
  assert.equal(formatFloat32(Math.fround(0.1)), "0.1");
  assert.equal(formatFloat32(1 / 3), "0.33333334");
  assert.equal(formatFloat32(16777217), "16777216");
  assert.equal(formatFloat32(100), "100");
  assert.equal(formatFloat32(3.4028234663852886e38), "3.4028235e+38");
  assert.equal(formatFloat32(1.401298464324817e-45), "1e-45");
  assert.equal(formatFloat32(NaN), "nan");
  assert.equal(formatFloat32(-Infinity), "-inf");
  assert.equal(formatFloat32(-0), "-0");
  // SPEC section 4: S = f32(1 / 1.07450986) = 0.9306569.
  assert.equal(formatFloat32(1 / Math.fround(1.07450986)), "0.9306569");
  // Random float32 bit patterns: the text reads back exactly, and no shorter decimal does.
  const bits = new Uint32Array(1);
  const float = new Float32Array(bits.buffer);
  let seed = 12345;
  for (let i = 0; i < 2000; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    bits[0] = seed;
    const v = float[0];
    if (!Number.isFinite(v)) continue;
    const text = formatFloat32(v);
    assert.equal(Math.fround(Number(text)), v, text);
    const mantissa = text.replace(/^-/, "").replace(/e.*$/, "").replace(".", "");
    const digits = mantissa.replace(/^0+/, "").replace(/0+$/, "").length;
    if (digits > 1) {
      const shorter = Number(v.toPrecision(digits - 1));
      assert.notEqual(Math.fround(shorter), v, `${text} is not the shortest`);
    }
  }
});
