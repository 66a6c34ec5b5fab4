import assert from "node:assert/strict";
import { readCaffemodel } from "../src/caffe/caffemodel_read.ts";
import { caffemodelPieces, writeCaffemodel } from "../src/caffe/caffemodel_write.ts";
import { blobBytes, blobElementType, DeferredBlob } from "../src/caffe/deferred_blob.ts";
import { loadNet } from "../src/caffe/model.ts";
import { type Blob, Layer, type Net } from "../src/caffe/net.ts";
import { ConvertError } from "../src/errors.ts";
import { TextMessage } from "../src/proto/tree.ts";
import { modelFile, modelNames } from "./_models.ts";
import {
  assertConvertErrorAt,
  float32Bytes,
  float64Bytes,
  lengthField,
  stringField,
  tag,
  varint,
  varintField,
} from "./_protobuf_bytes.ts";

const shapeField = (dims: number[]) => lengthField(7, lengthField(1, dims.flatMap(varint)));
const floatBlob = (dims: number[], values: number[]) =>
  lengthField(7, [...shapeField(dims), ...lengthField(5, float32Bytes(values))]);
const layerField = (payload: number[]) => lengthField(100, payload);

const bytesOf = (data: Blob["data"]) =>
  new Uint8Array(data.buffer, data.byteOffset, data.byteLength);

// ---- Reading ----

Deno.test("reads a V2 net: header, layer parameters and float blobs", () => {
  const weights = [0.5, -1, 2, 0.25, 8, -0.125];
  const file = Uint8Array.from([
    ...stringField(1, "tiny"),
    ...stringField(3, "data"),
    ...varintField(4, 1),
    ...varintField(4, 3),
    ...layerField([
      ...stringField(1, "conv"),
      ...stringField(2, "Convolution"),
      ...stringField(3, "data"),
      ...stringField(4, "conv"),
      ...floatBlob([2, 3, 1, 1], weights),
      ...floatBlob([2], [1.5, -2.5]),
      ...lengthField(106, [...varintField(1, 2), ...varintField(4, 1)]), // convolution_param
    ]),
  ]);
  const net = readCaffemodel(file, "tiny.caffemodel");
  assert.equal(net.header.get("name"), "tiny");
  assert.deepEqual(net.header.getAll("input"), ["data"]);
  assert.deepEqual(net.header.getAll("input_dim"), [1, 3]);
  assert.equal(net.layers.length, 1);
  const [conv] = net.layers;
  assert.equal(conv.name, "conv");
  assert.equal(conv.type, "Convolution");
  assert.deepEqual(conv.bottoms, ["data"]);
  assert.deepEqual(conv.tops, ["conv"]);
  assert.equal(conv.param("convolution_param", "num_output"), 2);
  assert.deepEqual(conv.paramAll("convolution_param", "kernel_size"), [1]);
  assert.deepEqual(conv.params.fields.map((f) => f.name), [
    "name",
    "type",
    "bottom",
    "top",
    "convolution_param",
  ]);
  assert.equal(conv.blobs.length, 2);
  assert.deepEqual(conv.blobs[0].shape, [2, 3, 1, 1]);
  assert.ok(conv.blobs[0].data instanceof Float32Array);
  assert.deepEqual([...conv.blobs[0].data], weights);
  assert.deepEqual(conv.blobs[1].shape, [2]);
  assert.deepEqual([...conv.blobs[1].data], [1.5, -2.5]);
  assert.equal(conv.blobs[0].legacyShape, undefined);
  assert.equal(conv.unknownBytes.length, 0);
});

/** A one-layer net whose float data starts at a byte offset chosen through the name's length. */
function netWithFloatsAt(padding: number, values: number[]) {
  const prefix = (name: string) => [
    ...tag(100, 2),
    ...varint(0), // placeholder, fixed below
    ...stringField(1, name),
    ...tag(7, 2),
    ...varint(0),
    ...shapeField([values.length]),
    ...tag(5, 2),
    ...varint(4 * values.length),
  ];
  const name = "x".repeat(padding + 1);
  const blob = [...shapeField([values.length]), ...lengthField(5, float32Bytes(values))];
  const layer = [...stringField(1, name), ...lengthField(7, blob)];
  const file = Uint8Array.from(layerField(layer));
  // Every length here is below 128, so each placeholder took one byte as the real one does.
  assert.ok(layer.length < 128);
  return { file, dataOffset: prefix(name).length };
}

Deno.test("float blobs: a view on the input when 4-aligned, a copy when not, same values", () => {
  const values = [1, -2, 3.5, 1e-3, -0, Infinity];
  const seen = new Set<number>();
  for (let padding = 0; padding < 4; padding++) {
    const { file, dataOffset } = netWithFloatsAt(padding, values);
    seen.add(dataOffset % 4);
    const data = readCaffemodel(file).layers[0].blobs[0].data;
    assert.deepEqual(bytesOf(data), Uint8Array.from(float32Bytes(values)));
    if (dataOffset % 4 === 0) {
      assert.equal(data.buffer, file.buffer, "aligned data must be a view");
      assert.equal(data.byteOffset, dataOffset);
    } else {
      assert.notEqual(data.buffer, file.buffer);
    }
  }
  assert.equal(seen.size, 4, "every alignment was tried");
});

Deno.test("an unaligned float blob is a view on the file until its data is read", () => {
  const values = [1, -2, 3.5, 0.125, 7, 0.25];
  const { file, dataOffset } = netWithFloatsAt(dataOffsetPadding(1), values);
  assert.equal(dataOffset % 4, 1);
  const net = readCaffemodel(file);
  const blob = net.layers[0].blobs[0];
  assert.ok(blob instanceof DeferredBlob);
  assert.equal(blob.held, undefined);
  assert.equal(blobElementType(blob), "float32");
  const bytes = blobBytes(blob)!;
  assert.equal(bytes.buffer, file.buffer, "no copy of the data");
  assert.equal(bytes.byteOffset, dataOffset);
  // Written back without ever making the array: the same bytes.
  assert.deepEqual(writeCaffemodel(net), file);
  assert.equal(blob.held, undefined);
  // Reading `data` makes the array once; what it then holds is what gets written.
  const data = blob.data as Float32Array;
  assert.equal(blob.data, data);
  assert.deepEqual([...data], values);
  data[0] = 42;
  assert.deepEqual([...readCaffemodel(writeCaffemodel(net)).layers[0].blobs[0].data], [
    42,
    ...values.slice(1),
  ]);
});

/** The name padding that puts the float data of `netWithFloatsAt` at `remainder` mod 4. */
function dataOffsetPadding(remainder: number): number {
  for (let padding = 0; padding < 4; padding++) {
    if (netWithFloatsAt(padding, [0]).dataOffset % 4 === remainder) return padding;
  }
  throw new Error("no padding gives that alignment");
}

Deno.test("alignInPlace: unaligned float data is moved back over its own tag and length, read in place", () => {
  const short = [1, -2, 3.5, 0.125, 7, 0.25]; // 24 bytes: a 1-byte length, 2 header bytes
  const long = Array.from({ length: 40 }, (_, i) => i / 8 - 2); // 160 bytes: 3 header bytes
  for (const values of [short, long]) {
    for (let padding = 0; padding < 4; padding++) {
      // One layer whose one blob's data ends the file.
      const blobField = [...shapeField([values.length]), ...lengthField(5, float32Bytes(values))];
      const file = Uint8Array.from(
        layerField([...stringField(1, "x".repeat(padding + 1)), ...lengthField(7, blobField)]),
      );
      const dataOffset = file.length - 4 * values.length;
      const shift = dataOffset % 4;
      const header = values === short ? 2 : 3;
      const original = file.slice();
      const what = `${values.length} values at offset ${dataOffset}`;
      // Without the option the bytes are never written.
      readCaffemodel(file).layers[0].blobs[0].data;
      assert.deepEqual(file, original, what);
      const blob = readCaffemodel(file, undefined, { alignInPlace: true }).layers[0].blobs[0];
      assert.deepEqual([...blob.data], values, what);
      if (shift === 0 || shift > header) {
        // Aligned already, or no room before it: nothing moves.
        assert.deepEqual(file, original, what);
        assert.equal(blob instanceof DeferredBlob, shift !== 0, what);
        continue;
      }
      assert.ok(!(blob instanceof DeferredBlob), what);
      assert.equal(blob.data.buffer, file.buffer, `${what}: read in place`);
      assert.equal(blob.data.byteOffset, dataOffset - shift, what);
      // Only the field's header and data bytes changed.
      const end = dataOffset + 4 * values.length;
      for (let i = 0; i < file.length; i++) {
        if (i < dataOffset - shift || i >= end) {
          assert.equal(file[i], original[i], `${what}: byte ${i}`);
        }
      }
    }
  }
});

const ALIGNED_NETS = ["lenet", "mtcnn_onet", "cifar10_quick_v1format"];

Deno.test({
  name: "alignInPlace: real nets load the same weights, none of them left to copy",
  ignore: ALIGNED_NETS.some((name) => !modelNames.includes(name)),
  fn() {
    for (const name of ALIGNED_NETS) {
      const text = Deno.readTextFileSync(modelFile(name, "deploy.prototxt"));
      const read = () => Deno.readFileSync(modelFile(name, "weights.caffemodel"));
      const copied = loadNet(text, read());
      const aligned = loadNet(text, read(), { alignInPlace: true });
      const blobs = (net: Net) => net.layers.flatMap((layer) => layer.blobs);
      assert.ok(
        blobs(copied).some((blob) => blob instanceof DeferredBlob),
        `${name}: unaligned data`,
      );
      // Left to copy: only data under 128 bytes (a 1-byte length) 3 bytes past a 4-byte boundary.
      const left = blobs(aligned).filter((blob) => blob instanceof DeferredBlob);
      assert.ok(left.every((blob) => blob.data.length < 32), name);
      assert.deepEqual(
        blobs(aligned).map((blob) => blob.data),
        blobs(copied).map((blob) => blob.data),
      );
    }
  },
});

Deno.test("double_data is rounded to float32; diff and double_diff are dropped", () => {
  const values = [0.1, 1 / 3, 1e-50, 3.4028235677973366e38, -123456789.123, 5e-324];
  const file = Uint8Array.from(layerField([
    ...stringField(1, "d"),
    ...lengthField(7, [
      ...shapeField([values.length]),
      ...lengthField(5, float32Bytes(values.map(() => 9))), // data: double_data wins, as in Caffe
      ...lengthField(8, []), // an empty double_data run changes nothing
      ...lengthField(6, float32Bytes(values.map(() => 7))), // diff
      ...lengthField(8, float64Bytes(values)),
      ...lengthField(9, float64Bytes(values)), // double_diff
    ]),
  ]));
  const data = readCaffemodel(file).layers[0].blobs[0].data;
  assert.ok(data instanceof Float32Array);
  assert.deepEqual([...data], values.map(Math.fround));
});

Deno.test("unpacked repeated values are read like packed ones", () => {
  const file = Uint8Array.from(layerField([
    ...stringField(1, "u"),
    ...lengthField(7, [
      ...lengthField(7, [...varintField(1, 2), ...varintField(1, 2)]), // unpacked dims
      ...tag(5, 5),
      ...float32Bytes([1.25]),
      ...lengthField(5, float32Bytes([2.5, -3])),
      ...tag(5, 5),
      ...float32Bytes([4]),
    ]),
    ...lengthField(7, [
      ...shapeField([3]),
      ...varintField(11, -5),
      ...lengthField(11, [
        ...varint(7),
        ...varint(-1),
      ]),
    ]),
  ]));
  const [floats, ints] = readCaffemodel(file).layers[0].blobs;
  assert.deepEqual(floats.shape, [2, 2]);
  assert.deepEqual([...floats.data], [1.25, 2.5, -3, 4]);
  assert.ok(ints.data instanceof Int32Array);
  assert.deepEqual([...ints.data], [-5, 7, -1]);
});

Deno.test("legacy num/channels/height/width become a 4-D shape marked legacyShape", () => {
  const file = Uint8Array.from(layerField([
    ...stringField(1, "ip"),
    ...lengthField(7, [
      ...varintField(1, 1),
      ...varintField(2, 1),
      ...varintField(3, 2),
      ...varintField(4, 3),
      ...lengthField(5, float32Bytes([1, 2, 3, 4, 5, 6])),
    ]),
    // `shape` wins over legacy dims, as in Caffe.
    ...lengthField(7, [
      ...varintField(1, 9),
      ...shapeField([2]),
      ...lengthField(5, float32Bytes([7, 8])),
    ]),
  ]));
  const [legacy, shaped] = readCaffemodel(file).layers[0].blobs;
  assert.deepEqual(legacy.shape, [1, 1, 2, 3]);
  assert.equal(legacy.legacyShape, true);
  assert.deepEqual(shaped.shape, [2]);
  assert.equal(shaped.legacyShape, undefined);
});

Deno.test("net-level fields the schema lacks are not kept; known ones are, in field order", () => {
  const file = Uint8Array.from([
    ...varintField(5, 1), // force_backward
    ...varintField(777, 3), // unknown
    ...stringField(1, "n"),
  ]);
  const header = readCaffemodel(file).header;
  assert.deepEqual(header.fields.map((f) => [f.name, f.value]), [["name", "n"], [
    "force_backward",
    true,
  ]]);
});

// ---- Writing ----

function layer(fields: [string, string][], blobs: Blob[]): Layer {
  return new Layer(
    new TextMessage(fields.map(([name, value]) => ({ name, value }))),
    blobs,
  );
}

Deno.test("writes integer blobs as the protobuf encoding, and they read back equal", () => {
  const int8s = Int8Array.from([-128, -1, 0, 1, 127, 5]);
  const int32s = Int32Array.from([0, -1, 2147483647, -2147483648, 300]);
  const uint64s = BigUint64Array.from([1000214868n, 0n, 2n ** 64n - 1n]);
  const net: Net = {
    header: new TextMessage([{ name: "name", value: "q" }]),
    layers: [layer([["name", "conv"], ["type", "Convolution"]], [
      { shape: [2, 3], data: int8s },
      { shape: [5], data: int32s },
      { shape: [3], data: uint64s },
    ])],
  };
  const written = writeCaffemodel(net);
  const expected = [
    ...stringField(1, "q"),
    ...layerField([
      ...stringField(1, "conv"),
      ...stringField(2, "Convolution"),
      ...lengthField(7, [
        ...shapeField([2, 3]),
        ...lengthField(10, [...new Uint8Array(int8s.buffer)]),
      ]),
      ...lengthField(7, [...shapeField([5]), ...lengthField(11, [...int32s].flatMap(varint))]),
      ...lengthField(7, [...shapeField([3]), ...lengthField(12, [...uint64s].flatMap(varint))]),
    ]),
  ];
  assert.deepEqual([...written], expected);
  const blobs = readCaffemodel(written).layers[0].blobs;
  assert.ok(blobs[0].data instanceof Int8Array);
  assert.deepEqual([...blobs[0].data], [...int8s]);
  assert.equal(blobs[0].data.buffer, written.buffer, "int8 data is a view on the input");
  assert.ok(blobs[1].data instanceof Int32Array);
  assert.deepEqual([...blobs[1].data], [...int32s]);
  assert.ok(blobs[2].data instanceof BigUint64Array);
  assert.deepEqual([...blobs[2].data], [...uint64s]);
  assert.deepEqual(blobs.map((b) => b.shape), [[2, 3], [5], [3]]);
});

/** A deferred blob whose elements are computed from their index: 0.25·i. */
class IndexBlob extends DeferredBlob {
  protected produce(start: number, count: number, target: Uint8Array): void {
    const values = Float32Array.from({ length: count }, (_, i) => (start + i) * 0.25);
    target.set(new Uint8Array(values.buffer));
  }
}

/** Equal bytes, or a failure naming the first difference (not a diff of large arrays). */
function assertSameBytes(actual: Uint8Array, expected: Uint8Array, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  const at = actual.findIndex((byte, i) => byte !== expected[i]);
  assert.equal(at, -1, `${label}: first difference at byte ${at}`);
}

/** A net with every kind of blob data: plain, large, unaligned in a file, deferred, varints. */
function mixedBlobNet(deferred: boolean): Net {
  const { file } = netWithFloatsAt(dataOffsetPadding(3), [0.5, -1.5, 2]);
  const unaligned = readCaffemodel(file).layers[0].blobs[0];
  const large = Float32Array.from({ length: 100_003 }, (_, i) => Math.sin(i));
  const floats = (count: number) => Float32Array.from({ length: count }, (_, i) => i * 0.25);
  const int8s = (count: number) => Int8Array.from({ length: count }, (_, i) => (i % 251) - 125);
  const computed = (count: number): Blob =>
    deferred ? new IndexBlob([count]) : { shape: [count], data: floats(count) };
  const params = (name: string) => new TextMessage([{ name: "name", value: name }]);
  return {
    header: new TextMessage([{ name: "name", value: "mixed" }]),
    layers: [
      new Layer(params("large"), [{ shape: [100_003], data: large }, {
        shape: [2],
        data: Float32Array.of(1, 2),
      }]),
      new Layer(params("unaligned"), [unaligned], Uint8Array.from(varintField(999, 5))),
      new Layer(params("computed"), [computed(50_001), { shape: [70_001], data: int8s(70_001) }]),
      new Layer(params("computed too"), [computed(300_007)]),
      new Layer(params("varints"), [
        { shape: [20_000], data: Int32Array.from({ length: 20_000 }, (_, i) => -i * 977) },
        { shape: [3], data: BigUint64Array.of(1n, 2n ** 63n, 1000214868n) },
      ]),
      new Layer(params("empty"), [{ shape: [0], data: new Float32Array(0) }]),
    ],
  };
}

Deno.test("deferred blobs are written as the arrays they stand for, without making them", () => {
  const net = mixedBlobNet(true);
  const written = writeCaffemodel(net);
  assertSameBytes(written, writeCaffemodel(mixedBlobNet(false)), "deferred vs plain");
  const deferred = [net.layers[2].blobs[0], net.layers[3].blobs[0]] as DeferredBlob[];
  for (const blob of deferred) assert.equal(blob.held, undefined);
  const layers = readCaffemodel(written).layers;
  assert.equal(layers[2].blobs[0].data[50_000], 12_500);
  assert.equal(layers[3].blobs[0].data[300_006], 75_001.5);
});

Deno.test("caffemodelPieces: writeCaffemodel's bytes; a piece holds until the next-but-one", () => {
  const net = mixedBlobNet(true);
  const expected = writeCaffemodel(net);
  for (const bufferBytes of [4096, 65_536, 1 << 22]) {
    const pieces = caffemodelPieces(net, bufferBytes);
    const received: Uint8Array[] = [];
    const copies: Uint8Array[] = [];
    for (let next = pieces.next(); !next.done; next = pieces.next()) {
      // The piece before the previous one may be reused now; the previous one must be intact.
      const previous = received.length - 1;
      if (previous >= 0) {
        assertSameBytes(received[previous], copies[previous], `${bufferBytes}: piece ${previous}`);
      }
      received.push(next.value);
      copies.push(next.value.slice());
    }
    assert.ok(received.length > 1 || bufferBytes > expected.length);
    const joined = new Uint8Array(expected.length);
    let at = 0;
    for (const copy of copies) {
      joined.set(copy, at);
      at += copy.length;
    }
    assert.equal(at, expected.length, `${bufferBytes}: total size`);
    assertSameBytes(joined, expected, `${bufferBytes}`);
  }
  for (const layer of [net.layers[2], net.layers[3]]) {
    assert.equal((layer.blobs[0] as DeferredBlob).held, undefined);
  }
});

Deno.test("writing drops phase, skips unknown text fields and puts blobs after the parameters", () => {
  const params = new TextMessage([
    { name: "name", value: "p" },
    { name: "phase", value: "TEST" },
    { name: "fancy_fork_field", value: "1", raw: "1", unknown: true },
    { name: "type", value: "InnerProduct" },
  ]);
  const data = Float32Array.of(1, 2, 3);
  const net: Net = {
    header: new TextMessage(),
    layers: [new Layer(params, [{ shape: [3], data }])],
  };
  const expected = layerField([
    ...stringField(1, "p"),
    ...stringField(2, "InnerProduct"),
    ...floatBlob([3], [1, 2, 3]),
  ]);
  assert.deepEqual([...writeCaffemodel(net)], expected);
});

Deno.test("unknown layer fields are kept in order, raw, and written back after the parameters", () => {
  const unknownFields = [
    ...varintField(999, 5),
    ...lengthField(1000, [1, 2, 3]),
    ...tag(1001, 3), // a group holding a varint and a nested group
    ...varintField(1, 7),
    ...tag(2, 3),
    ...tag(2, 4),
    ...tag(1001, 4),
    ...tag(2, 5), // `type` with wire type fixed32 does not fit the schema: unknown
    1,
    2,
    3,
    4,
  ];
  const blob = floatBlob([1], [42]);
  const file = Uint8Array.from(layerField([
    ...stringField(1, "odd"),
    ...unknownFields.slice(0, 3), // field 999
    ...blob,
    ...unknownFields.slice(3),
    ...stringField(2, "ReLU"),
  ]));
  const net = readCaffemodel(file);
  const [odd] = net.layers;
  assert.equal(odd.name, "odd");
  assert.equal(odd.type, "ReLU");
  assert.deepEqual([...odd.unknownBytes], unknownFields);
  const expected = layerField([
    ...stringField(1, "odd"),
    ...stringField(2, "ReLU"),
    ...unknownFields,
    ...blob,
  ]);
  assert.deepEqual([...writeCaffemodel(net)], expected);
});

Deno.test("a V1 net reads with upgraded layer types", () => {
  const file = Uint8Array.from([
    ...stringField(1, "old"),
    ...lengthField(2, [
      ...stringField(2, "data"), // bottom
      ...stringField(3, "conv1"), // top
      ...stringField(4, "conv1"), // name
      ...varintField(5, 4), // type: CONVOLUTION
      ...lengthField(6, [
        ...varintField(1, 1),
        ...varintField(2, 1),
        ...varintField(3, 1),
        ...varintField(4, 2),
        ...lengthField(5, float32Bytes([3, 4])),
      ]),
      ...varintField(9999, 1), // unknown V1 field: not carried into the V2 layer
    ]),
  ]);
  const [conv] = readCaffemodel(file).layers;
  assert.equal(conv.name, "conv1");
  assert.equal(conv.type, "Convolution");
  assert.deepEqual(conv.bottoms, ["data"]);
  assert.deepEqual(conv.tops, ["conv1"]);
  assert.deepEqual(conv.blobs[0].shape, [1, 1, 1, 2]);
  assert.equal(conv.blobs[0].legacyShape, true);
  assert.equal(conv.unknownBytes.length, 0);
});

// ---- Errors ----

Deno.test("a V1 layer type number the schema lacks fails with the layer's offset", () => {
  const header = stringField(1, "old");
  const file = [
    ...header,
    ...lengthField(2, [...stringField(4, "mystery"), ...varintField(5, 150)]),
  ];
  assert.throws(() => readCaffemodel(Uint8Array.from(file), "old.caffemodel"), (error: unknown) => {
    assert.ok(error instanceof ConvertError, String(error));
    assert.equal(error.code, "TEXT_UNKNOWN_ENUM");
    assert.equal(error.offset, header.length);
    assert.equal(error.layer, "mystery");
    assert.equal(error.file, "old.caffemodel");
    return true;
  });
});

Deno.test("not protobuf: bad wire types, field 0, an overlong varint", () => {
  assertConvertErrorAt(() => readCaffemodel(Uint8Array.of(0x0f)), "BINARY_NOT_PROTOBUF", 0);
  assertConvertErrorAt(
    () => readCaffemodel(new TextEncoder().encode("hello")),
    "BINARY_NOT_PROTOBUF",
    2,
  );
  const layerPrefix = [...stringField(1, "n")];
  const inLayer = [...layerPrefix, ...layerField([...stringField(1, "a"), 0x0e, 0x00])];
  // tag(100) is 2 bytes, its length 1 byte, then name "a" (3 bytes): wire type 6 at +6.
  assertConvertErrorAt(
    () => readCaffemodel(Uint8Array.from(inLayer)),
    "BINARY_NOT_PROTOBUF",
    layerPrefix.length + 6,
  );
  const fieldZeroInBlob = layerField([...lengthField(7, [0x00, 0x00])]);
  assertConvertErrorAt(
    () => readCaffemodel(Uint8Array.from(fieldZeroInBlob)),
    "BINARY_NOT_PROTOBUF",
    5,
  );
  const overlong = [...tag(5, 0), ...Array(10).fill(0x80), 0x00];
  assertConvertErrorAt(() => readCaffemodel(Uint8Array.from(overlong)), "BINARY_NOT_PROTOBUF", 1);
  const file = Uint8Array.of(0x0f);
  assert.throws(() => readCaffemodel(file, "w.caffemodel"), (error: unknown) => {
    assert.ok(error instanceof ConvertError);
    assert.equal(error.file, "w.caffemodel");
    return true;
  });
});

Deno.test("truncated files fail with the offset of the cut item", () => {
  const name = stringField(1, "net"); // bytes 0..4: tag, length 3, "net"
  const layerBody = [...stringField(1, "L"), ...floatBlob([4], [1, 2, 3, 4])];
  const file = [...name, ...layerField(layerBody)]; // layer tag at 5..6, its length at 7
  assert.ok(layerBody.length < 128);
  const cases: [cut: number, offset: number][] = [
    [1, 1], // the name's length is missing
    [3, 1], // the name is cut: its length runs past the end
    [6, 5], // inside the layer's two-byte tag
    [7, 7], // the layer's length is missing
    [15, 7], // the layer is cut
    [file.length - 1, 7],
  ];
  for (const [cut, offset] of cases) {
    assertConvertErrorAt(
      () => readCaffemodel(Uint8Array.from(file.slice(0, cut))),
      "BINARY_TRUNCATED",
      offset,
    );
  }
  // Cut inside the blob's data with the layer's length fixed up to match: now the blob's own
  // length (at 12: layer body at 8, name 3 bytes, blob tag 1 byte) runs past the end.
  const cutBody = layerBody.slice(0, -3);
  const cutBlob = [...name, ...tag(100, 2), ...varint(cutBody.length), ...cutBody];
  assertConvertErrorAt(() => readCaffemodel(Uint8Array.from(cutBlob)), "BINARY_TRUNCATED", 12);
});

Deno.test("a length past its enclosing message (not the file) fails at that length", () => {
  const blob = lengthField(7, [
    ...shapeField([1]),
    ...tag(5, 2),
    ...varint(8),
    ...float32Bytes([1]),
  ]);
  const file = [
    ...layerField([...stringField(1, "L"), ...blob]),
    ...stringField(1, "after-the-layer"),
  ];
  // layer: tag 2 + length 1; name 3 bytes; blob tag 1 + length 1; shape 5 bytes; data tag 1.
  const lengthAt = 3 + 3 + 2 + 5 + 1;
  assertConvertErrorAt(
    () => readCaffemodel(Uint8Array.from(file)),
    "BINARY_LENGTH_PAST_END",
    lengthAt,
  );
});

Deno.test("groups nested past the limit fail with BINARY_TOO_DEEP at the deepest group", () => {
  // A layer's fields are at depth 1, so its k-th nested group is at depth k + 1; 99 are fine.
  const groups = (count: number) => [...Array(count).fill(0x0b), ...Array(count).fill(0x0c)];
  const ok = layerField([...stringField(1, "g"), ...groups(99)]);
  assert.equal(readCaffemodel(Uint8Array.from(ok)).layers[0].unknownBytes.length, 198);
  const deep = layerField([...stringField(1, "g"), ...groups(100)]);
  const firstGroupAt = 2 + 2 + 3; // layer tag 2 bytes, its length 2 bytes, name 3 bytes
  assert.equal(varint(200 + 3).length, 2);
  assertConvertErrorAt(
    () => readCaffemodel(Uint8Array.from(deep)),
    "BINARY_TOO_DEEP",
    firstGroupAt + 99,
  );
});

Deno.test("a blob whose data count disagrees with its shape fails with offset and layer", () => {
  const header = stringField(1, "n");
  const first = floatBlob([2], [1, 2]);
  const bad = floatBlob([2, 3], [1, 2, 3, 4, 5]);
  const file = [...header, ...layerField([...stringField(1, "conv9"), ...first, ...bad])];
  const badAt = header.length + 3 + 7 + first.length;
  assertConvertErrorAt(
    () => readCaffemodel(Uint8Array.from(file)),
    "BLOB_SIZE_MISMATCH",
    badAt,
    "conv9",
  );
  const negative = layerField([...stringField(1, "neg"), ...lengthField(7, shapeField([-1]))]);
  assertConvertErrorAt(
    () => readCaffemodel(Uint8Array.from(negative)),
    "BLOB_SIZE_MISMATCH",
    8,
    "neg",
  );
});

// ---- Real models ----

/** A tree as nested `[name, value]` pairs: what a field says, without its source place. */
type Plain = [string, unknown][];
function plain(message: TextMessage): Plain {
  return message.fields.map((
    f,
  ) => [f.name, f.value instanceof TextMessage ? plain(f.value) : f.value]);
}

function blobBytesEqual(a: Blob, b: Blob, where: string): void {
  assert.equal(a.data.constructor, b.data.constructor, where);
  assert.deepEqual(bytesOf(a.data), bytesOf(b.data), where);
}

for (const model of modelNames) {
  Deno.test(`${model}: read -> write -> read keeps every blob bit for bit and every layer tree`, () => {
    const bytes = Deno.readFileSync(modelFile(model, "weights.caffemodel"));
    const first = readCaffemodel(bytes, model);
    assert.ok(first.layers.length > 0);
    const second = readCaffemodel(writeCaffemodel(first), model);
    assert.deepEqual(plain(second.header), plain(first.header));
    assert.equal(second.layers.length, first.layers.length);
    if (model === "yufacedetect_v1") {
      // Its layers carry varint fields 145..148, which our schema lacks: the round trip below
      // must carry them through.
      assert.ok(first.layers.every((layer) => layer.unknownBytes.length > 0));
      assert.ok(first.layers.some((layer) => layer.params.has("phase")));
    }
    first.layers.forEach((layer, i) => {
      const again = second.layers[i];
      const withoutPhase = plain(layer.params).filter(([name]) => name !== "phase");
      assert.deepEqual(plain(again.params), withoutPhase, layer.name);
      assert.deepEqual(again.unknownBytes, layer.unknownBytes, layer.name);
      assert.equal(again.blobs.length, layer.blobs.length, layer.name);
      layer.blobs.forEach((blob, j) => {
        assert.deepEqual(again.blobs[j].shape, blob.shape, `${layer.name} blob ${j}`);
        blobBytesEqual(again.blobs[j], blob, `${layer.name} blob ${j}`);
      });
    });
  });
}

const v1Models = modelNames.filter((name) => name.endsWith("_v1format"));
for (const model of v1Models) {
  Deno.test(`${model}: V1 layers read with V2 types and legacy-shaped blobs`, () => {
    const net = readCaffemodel(Deno.readFileSync(modelFile(model, "weights.caffemodel")));
    const types = new Set(net.layers.map((layer) => layer.type));
    assert.ok(types.has("Convolution") && types.has("InnerProduct") && types.has("Pooling"));
    for (const type of types) assert.match(type, /^[A-Z][A-Za-z]+$/, `V2 type name ${type}`);
    const weighted = net.layers.filter((layer) => layer.blobs.length > 0);
    assert.ok(weighted.length > 0);
    for (const layer of weighted) {
      for (const blob of layer.blobs) {
        assert.equal(blob.legacyShape, true, layer.name);
        assert.equal(blob.shape.length, 4, layer.name);
      }
    }
    // InnerProduct weights are [1, 1, out, in] in these files (SOURCES.md).
    const ip = weighted.find((layer) => layer.type === "InnerProduct")!;
    assert.deepEqual(ip.blobs[0].shape.slice(0, 2), [1, 1]);
  });
}

if (modelNames.includes("lenet") && modelNames.includes("lenet_v1format")) {
  Deno.test("lenet and lenet_v1format hold blobs of the same sizes", () => {
    const v2 = readCaffemodel(Deno.readFileSync(modelFile("lenet", "weights.caffemodel")));
    const v1 = readCaffemodel(Deno.readFileSync(modelFile("lenet_v1format", "weights.caffemodel")));
    for (const layer of v2.layers.filter((l) => l.blobs.length > 0)) {
      const old = v1.layers.find((l) => l.name === layer.name);
      assert.ok(old, layer.name);
      assert.equal(old.type, layer.type);
      layer.blobs.forEach((blob, j) => {
        const count = blob.shape.reduce((a, b) => a * b, 1);
        assert.equal(old.blobs[j].shape.reduce((a, b) => a * b, 1), count);
      });
    }
  });
}

if (modelNames.includes("lenet")) {
  Deno.test("fuzz: cut or corrupted lenet files fail only with ConvertError", () => {
    const original = Deno.readFileSync(modelFile("lenet", "weights.caffemodel"));
    let seed = 20240607;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    // Structure lives mostly in the first bytes of each field; bias positions toward headers
    // by sampling both the whole file and its first few kilobytes.
    const position = () => random(2) === 0 ? random(original.length) : random(4096);
    let failures = 0;
    for (let round = 0; round < 400; round++) {
      const bytes = original.slice();
      let input = bytes;
      const kind = round % 4;
      if (kind === 0) input = bytes.subarray(0, position());
      else if (kind === 1) bytes[position()] ^= 1 << random(8);
      else if (kind === 2) bytes[position()] = random(256);
      else for (let i = 0; i < 8; i++) bytes[position()] = 0xff;
      try {
        readCaffemodel(input, "lenet");
      } catch (error) {
        failures++;
        assert.ok(error instanceof ConvertError, `round ${round}: ${error}`);
        assert.equal(typeof error.offset, "number", `round ${round}: ${error.message}`);
        assert.equal(error.file, "lenet");
      }
    }
    assert.ok(failures > 50, `only ${failures} inputs failed; the corruption is too mild`);
  });
}
