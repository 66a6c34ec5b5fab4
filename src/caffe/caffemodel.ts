/**
 * Caffe's binary weights file (`.caffemodel`, a binary `NetParameter`) <-> {@linkcode Net}.
 *
 * Reading walks the file with the wire reader: blobs are parsed here into typed arrays that are
 * views into the input bytes, or, for float data at an offset that is not a multiple of 4, into a
 * {@linkcode DeferredBlob} holding a byte view (so no blob data is copied); every other field the
 * schema knows is decoded with protobufjs into a lossless text tree; fields the schema does not
 * know are kept as raw bytes on their layer. Writing sizes everything first and then fills one
 * preallocated buffer ({@linkcode writeCaffemodel}) or streams bounded pieces
 * ({@linkcode caffemodelPieces}); deferred blobs are produced straight into the output.
 *
 * @module
 */

import { ConvertError } from "../errors.ts";
import { caffeType } from "../proto/schema.ts";
import { messageFromObject, objectFromMessage } from "../proto/text.ts";
import { TextMessage } from "../proto/tree.ts";
import {
  int32sSize,
  lengthFieldSize,
  signedVarintSize,
  uint64sSize,
  WireReader,
  WireType,
  WireWriter,
} from "../proto/wire.ts";
import { type Blob, type BlobData, Layer, type Net } from "./net.ts";
import { upgradeV1Layer } from "./upgrade.ts";

/** A protobufjs message type of the schema. */
type MessageType = ReturnType<typeof caffeType>;

/** Field numbers of `NetParameter`, `LayerParameter`, `V1LayerParameter`, `BlobProto`. */
const NET_LAYERS_V1 = 2;
const NET_LAYER = 100;
const LAYER_BLOBS = 7;
const V1_LAYER_BLOBS = 6;
const BLOB_NUM = 1;
const BLOB_WIDTH = 4;
const BLOB_DATA = 5;
const BLOB_SHAPE = 7;
const BLOB_DOUBLE_DATA = 8;
const BLOB_INT8_DATA = 10;
const BLOB_INT32_DATA = 11;
const BLOB_UINT64_DATA = 12;
const SHAPE_DIM = 1;

/** Nesting depth of a layer's fields (the net's own fields are at depth 0). */
const LAYER_DEPTH = 1;

/** A tag as it appears on the wire for field `field` with wire type `wireType`. */
function tagOf(field: number, wireType: number): number {
  return field * 8 + wireType;
}

/** Half-open byte range `[start, end)` of one whole field (tag and value) in the input. */
interface FieldRange {
  start: number;
  end: number;
}

/** The element types of blob data, as stored in a caffemodel. */
export type ElementType = "float32" | "int8" | "int32" | "uint64";

/** Bytes per element of the fixed-width element types. */
const ELEMENT_SIZE = { float32: 4, int8: 1 } as const;

/**
 * A float32 blob whose elements are not held in a typed array until someone reads `data`: float
 * data at an unaligned offset of a caffemodel (a byte view), or weights that kernels compute from
 * another tensor. Writers take its bytes with {@linkcode DeferredBlob.writeBytes} instead, in pieces,
 * straight into their output. The first read of `data` makes the array; from then on `data` is
 * what the blob holds (later reads give the same array, and changes to it are written).
 */
export abstract class DeferredBlob implements Blob {
  /** Dimensions, outermost first. */
  shape: number[];
  /** True when the file gave legacy `num/channels/height/width` instead of `shape`. */
  declare legacyShape?: boolean;
  /** The number of elements. */
  readonly length: number;
  #held: BlobData | undefined;

  /** A blob of `shape`. */
  constructor(shape: number[]) {
    this.shape = shape;
    this.length = shape.reduce((product, dim) => product * dim, 1);
  }

  /** The elements, made on first use. */
  get data(): BlobData {
    if (this.#held === undefined) {
      const data = new Float32Array(this.length);
      this.produce(0, this.length, new Uint8Array(data.buffer));
      this.#held = data;
    }
    return this.#held;
  }
  set data(value: BlobData) {
    this.#held = value;
  }

  /** The array the blob holds once `data` was read or set, else undefined. */
  get held(): BlobData | undefined {
    return this.#held;
  }

  /**
   * The little-endian bytes of elements [start, start + count) into `target` (exactly their
   * size: 4 bytes each, or those of the held array's type), from the held array if there is one.
   */
  writeBytes(start: number, count: number, target: Uint8Array): void {
    const held = this.#held;
    if (held === undefined) {
      this.produce(start, count, target);
      return;
    }
    const size = held.BYTES_PER_ELEMENT;
    target.set(new Uint8Array(held.buffer, held.byteOffset + start * size, count * size));
  }

  /** The bytes of the elements as they are stored somewhere already (no copy), if they are. */
  storedBytes(): Uint8Array | undefined {
    return undefined;
  }

  /** Writes the bytes of elements [start, start + count) into `target`. */
  protected abstract produce(start: number, count: number, target: Uint8Array): void;
}

/** Float data at an unaligned offset of a caffemodel: a byte view on the file. */
class UnalignedFloats extends DeferredBlob {
  readonly #bytes: Uint8Array;

  constructor(shape: number[], bytes: Uint8Array) {
    super(shape);
    this.#bytes = bytes;
  }

  override storedBytes(): Uint8Array | undefined {
    return this.held === undefined ? this.#bytes : undefined;
  }

  protected produce(start: number, count: number, target: Uint8Array): void {
    target.set(this.#bytes.subarray(start * 4, (start + count) * 4));
  }
}

/** The element type of a blob's data, without making the array of a deferred blob. */
export function blobElementType(blob: Blob): ElementType {
  const data = blob instanceof DeferredBlob ? blob.held : blob.data;
  if (data === undefined) return "float32";
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Int8Array) return "int8";
  if (data instanceof Int32Array) return "int32";
  return "uint64";
}

/**
 * The little-endian bytes of a blob's data as they are stored (a view, no copy): its typed array,
 * or the file bytes of an unaligned float blob; undefined for data not computed yet.
 */
export function blobBytes(blob: Blob): Uint8Array | undefined {
  if (blob instanceof DeferredBlob && blob.held === undefined) return blob.storedBytes();
  const { data } = blob;
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Reads a binary caffemodel. V1 nets (`layers`, field 2) are upgraded to V2 layers; blobs are
 * typed arrays, views into `bytes` where alignment allows. Errors are {@linkcode ConvertError}s
 * with the byte offset, and `file` when given.
 *
 * @example
 * ```ts ignore
 * const net = readCaffemodel(await Deno.readFile("weights.caffemodel"), "weights.caffemodel");
 * console.log(net.layers.map((layer) => `${layer.name}: ${layer.blobs.length} blobs`));
 * ```
 */
export function readCaffemodel(bytes: Uint8Array, file?: string): Net {
  try {
    return readNet(bytes);
  } catch (error) {
    if (error instanceof ConvertError && file !== undefined) throw error.inFile(file);
    throw error;
  }
}

function readNet(bytes: Uint8Array): Net {
  const netType = caffeType("caffe.NetParameter");
  const reader = new WireReader(bytes);
  const headerFields: FieldRange[] = [];
  const layers: Layer[] = [];
  while (!reader.done) {
    const tag = reader.tag();
    const start = reader.tagAt;
    if (tag === tagOf(NET_LAYER, WireType.LENGTH)) {
      layers.push(readLayer(reader.message(), start, false));
    } else if (tag === tagOf(NET_LAYERS_V1, WireType.LENGTH)) {
      layers.push(readLayer(reader.message(), start, true));
    } else if (fieldFits(netType, tag, reader, 0)) {
      headerFields.push({ start, end: reader.pos });
    }
  }
  return { header: decodeFields(netType, bytes, headerFields), layers };
}

/** Reads one `layer` (V2) or `layers` (V1, then upgraded) message whose field is at `layerAt`. */
function readLayer(reader: WireReader, layerAt: number, v1: boolean): Layer {
  const layerType = caffeType(v1 ? "caffe.V1LayerParameter" : "caffe.LayerParameter");
  const blobsTag = tagOf(v1 ? V1_LAYER_BLOBS : LAYER_BLOBS, WireType.LENGTH);
  const blobMessages: WireReader[] = [];
  const blobStarts: number[] = [];
  const known: FieldRange[] = [];
  const unknown: FieldRange[] = [];
  while (!reader.done) {
    const tag = reader.tag();
    const start = reader.tagAt;
    if (tag === blobsTag) {
      blobMessages.push(reader.message());
      blobStarts.push(start);
    } else {
      const fits = fieldFits(layerType, tag, reader, LAYER_DEPTH);
      (fits ? known : unknown).push({ start, end: reader.pos });
    }
  }
  const decoded = decodeFields(layerType, reader.bytes, known);
  const params = v1 ? upgradeV1(decoded, layerAt) : decoded;
  const name = String(params.get("name") ?? "");
  const blobs = blobMessages.map((message, i) => readBlob(message, blobStarts[i], name));
  // V1 field numbers mean nothing in a V2 layer, so a V1 layer's unknown fields are not kept.
  const unknownBytes = v1 ? new Uint8Array(0) : gather(reader.bytes, unknown);
  return new Layer(params, blobs, unknownBytes);
}

/** Upgrades a decoded V1 layer; its errors (a type the schema lacks) get the layer's offset. */
function upgradeV1(v1: TextMessage, offset: number): TextMessage {
  try {
    return upgradeV1Layer(v1);
  } catch (error) {
    if (!(error instanceof ConvertError)) throw error;
    const layer = v1.get("name");
    throw new ConvertError(error.code, `${error.message} (V1 layer at byte ${offset})`, {
      offset,
      layer: layer === undefined ? undefined : String(layer),
    });
  }
}

/**
 * Consumes the value of a field whose tag was just read and tells whether the schema `type`
 * knows the field with this wire type, its nested messages included (protobuf treats a known
 * field with another wire type as unknown). Structural damage is an error either way.
 */
function fieldFits(type: MessageType, tag: number, reader: WireReader, depth: number): boolean {
  const field = type.fieldsById[tag >>> 3];
  const wireType = tag & 7;
  if (field === undefined || field.map || field.delimited) {
    reader.skip(tag, depth);
    return false;
  }
  const resolved = field.resolve().resolvedType;
  if (resolved !== null && "fieldsById" in resolved) {
    if (wireType !== WireType.LENGTH) {
      reader.skip(tag, depth);
      return false;
    }
    return messageFits(resolved, reader.message(), depth + 1);
  }
  const scalarWireType = resolved !== null ? WireType.VARINT : SCALAR_WIRE_TYPES[field.type];
  if (wireType === scalarWireType) {
    reader.skip(tag, depth);
    return true;
  }
  if (wireType !== WireType.LENGTH || !field.repeated || scalarWireType === WireType.LENGTH) {
    reader.skip(tag, depth);
    return false;
  }
  reader.skipPacked(scalarWireType);
  return true;
}

/** Wire types of the scalar field types (enums are varints). */
const SCALAR_WIRE_TYPES: Record<string, number> = {
  double: WireType.FIXED64,
  float: WireType.FIXED32,
  int32: WireType.VARINT,
  uint32: WireType.VARINT,
  sint32: WireType.VARINT,
  fixed32: WireType.FIXED32,
  sfixed32: WireType.FIXED32,
  int64: WireType.VARINT,
  uint64: WireType.VARINT,
  sint64: WireType.VARINT,
  fixed64: WireType.FIXED64,
  sfixed64: WireType.FIXED64,
  bool: WireType.VARINT,
  string: WireType.LENGTH,
  bytes: WireType.LENGTH,
};

/**
 * Walks a nested message: true when every field it has fits `type` (see `fieldFits`). The
 * schema's messages nest a few levels only; deeper nesting can only come from groups, which
 * the wire reader limits.
 */
function messageFits(type: MessageType, reader: WireReader, depth: number): boolean {
  let fits = true;
  while (!reader.done) {
    const tag = reader.tag();
    const known = fieldFits(type, tag, reader, depth);
    if (!known && type.fieldsById[tag >>> 3] !== undefined) fits = false;
  }
  return fits;
}

/** The bytes of `ranges` of `bytes`, concatenated into one new array. */
function gather(bytes: Uint8Array, ranges: FieldRange[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(ranges.reduce((size, range) => size + range.end - range.start, 0));
  let at = 0;
  for (const range of ranges) {
    out.set(bytes.subarray(range.start, range.end), at);
    at += range.end - range.start;
  }
  return out;
}

/**
 * Decodes the fields at `ranges` (already checked to fit `type`) with protobufjs into a text
 * tree, in field-number order. Should protobufjs still reject them, that is
 * `BINARY_NOT_PROTOBUF` at the first of the fields.
 */
function decodeFields(type: MessageType, bytes: Uint8Array, ranges: FieldRange[]): TextMessage {
  try {
    return messageFromObject(type, type.decode(gather(bytes, ranges)));
  } catch (error) {
    const offset = ranges[0]?.start ?? 0;
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConvertError(
      "BINARY_NOT_PROTOBUF",
      `the ${type.name} fields from byte ${offset} do not decode: ${reason}`,
      { offset },
    );
  }
}

/** Parses one `BlobProto`; `start` is the offset of its field in the layer, for errors. */
function readBlob(reader: WireReader, start: number, layer: string): Blob {
  const legacyDims = [0, 0, 0, 0];
  let legacyShape = false;
  let shape: number[] | undefined;
  const floats: Uint8Array[] = [];
  const doubles: Float64Array[] = [];
  const int32s: Int32Array[] = [];
  const uint64s: BigUint64Array[] = [];
  let int8s: Int8Array | undefined;
  while (!reader.done) {
    const tag = reader.tag();
    const field = tag >>> 3;
    const wireType = tag & 7;
    const packed = wireType === WireType.LENGTH;
    if (field >= BLOB_NUM && field <= BLOB_WIDTH && wireType === WireType.VARINT) {
      legacyDims[field - BLOB_NUM] = reader.int32();
      legacyShape = true;
    } else if (tag === tagOf(BLOB_SHAPE, WireType.LENGTH)) {
      shape = readShape(reader.message(), shape ?? []);
    } else if (field === BLOB_DATA && (packed || wireType === WireType.FIXED32)) {
      floats.push(reader.packedBytes(packed ? reader.length() : 4, 4));
    } else if (field === BLOB_DOUBLE_DATA && (packed || wireType === WireType.FIXED64)) {
      doubles.push(reader.doubles(packed ? reader.length() : 8));
    } else if (tag === tagOf(BLOB_INT8_DATA, WireType.LENGTH)) {
      int8s = reader.int8s(reader.length());
    } else if (field === BLOB_INT32_DATA && (packed || wireType === WireType.VARINT)) {
      int32s.push(packed ? reader.int32s(reader.length()) : Int32Array.of(reader.int32()));
    } else if (field === BLOB_UINT64_DATA && (packed || wireType === WireType.VARINT)) {
      uint64s.push(packed ? reader.uint64s(reader.length()) : BigUint64Array.of(reader.uint64()));
    } else {
      reader.skip(tag, LAYER_DEPTH + 1); // diff, double_diff, fields of other schemas
    }
  }
  // Caffe's Blob::FromProto: `shape` wins over legacy dims; double_data over data.
  const dims = shape ?? (legacyShape ? legacyDims : []);
  const floatBytes = totalLength(floats);
  const data: BlobData | Uint8Array = totalLength(doubles) > 0
    ? new Float32Array(joined(doubles, (n) => new Float64Array(n)))
    : floatBytes > 0
    ? floats.length === 1
      ? floats[0]
      : new Float32Array(joined(floats, (n) => new Uint8Array(n)).buffer)
    : int8s !== undefined && int8s.length > 0
    ? int8s
    : totalLength(int32s) > 0
    ? joined(int32s, (n) => new Int32Array(n))
    : totalLength(uint64s) > 0
    ? joined(uint64s, (n) => new BigUint64Array(n))
    : new Float32Array(0);
  const length = data instanceof Uint8Array ? data.length / 4 : data.length;
  const bad = dims.find((dim) => !Number.isSafeInteger(dim) || dim < 0);
  const count = dims.reduce((product, dim) => product * dim, 1);
  if (bad !== undefined || count !== length) {
    const problem = bad !== undefined
      ? `has dimension ${bad}`
      : `has ${length} values but its shape [${dims.join(", ")}] needs ${count}`;
    throw new ConvertError(
      "BLOB_SIZE_MISMATCH",
      `the blob at byte ${start} of layer "${layer}" ${problem}`,
      { offset: start, layer },
    );
  }
  const blob: Blob = !(data instanceof Uint8Array)
    ? { shape: dims, data }
    : data.byteOffset % 4 === 0
    ? { shape: dims, data: new Float32Array(data.buffer, data.byteOffset, length) }
    : new UnalignedFloats(dims, data);
  if (shape === undefined && legacyShape) blob.legacyShape = true;
  return blob;
}

/** Reads a `BlobShape`, appending its dims (packed or not) to `dims`. */
function readShape(reader: WireReader, dims: number[]): number[] {
  while (!reader.done) {
    const tag = reader.tag();
    if (tag === tagOf(SHAPE_DIM, WireType.VARINT)) {
      dims.push(reader.int64());
    } else if (tag === tagOf(SHAPE_DIM, WireType.LENGTH)) {
      const packed = reader.message();
      while (!packed.done) dims.push(packed.int64());
    } else {
      reader.skip(tag, LAYER_DEPTH + 2);
    }
  }
  return dims;
}

/** The number of elements in `parts`. */
function totalLength(parts: ArrayLike<unknown>[]): number {
  return parts.reduce((length, part) => length + part.length, 0);
}

/** One array holding `parts` in order (the part itself when there is one). */
function joined<A extends Uint8Array | Float64Array | Int32Array | BigUint64Array>(
  parts: A[],
  make: (length: number) => A,
): A {
  if (parts.length === 1) return parts[0];
  const out = make(totalLength(parts));
  const outBytes = new Uint8Array(out.buffer);
  let at = 0;
  for (const part of parts) {
    outBytes.set(new Uint8Array(part.buffer, part.byteOffset, part.byteLength), at);
    at += part.byteLength;
  }
  return out;
}

/** A blob with the sizes it takes on the wire. */
interface BlobPlan {
  blob: Blob;
  /** The type of its elements. */
  elementType: ElementType;
  /** The number of elements. */
  length: number;
  /** Bytes of the packed `dim` values. */
  dimsSize: number;
  /** Bytes of the `BlobShape` message. */
  shapeSize: number;
  /** Bytes of the data payload (packed values or raw bytes). */
  dataSize: number;
  /** Bytes of the `BlobProto` message. */
  size: number;
}

/** A layer with its encoded parameters and the sizes it takes on the wire. */
interface LayerPlan {
  params: Uint8Array;
  unknownBytes: Uint8Array;
  blobs: BlobPlan[];
  /** Bytes of the `LayerParameter` message. */
  size: number;
}

/** A whole net sized for the wire. */
interface NetPlan {
  header: Uint8Array;
  layers: LayerPlan[];
  /** Bytes of the file. */
  size: number;
}

/**
 * Writes `net` as a V2 binary caffemodel: the header fields, then one `layer` per layer holding
 * its parameters (without `phase`), its raw unknown fields and its blobs (with `shape`). The
 * output is one buffer of precomputed size; blob data goes into it with one copy each, and
 * deferred blobs are produced straight into it.
 *
 * @example
 * ```ts ignore
 * await Deno.writeFile("out.caffemodel", writeCaffemodel(net));
 * ```
 */
export function writeCaffemodel(net: Net): Uint8Array {
  const plan = planNet(net);
  const writer = new WireWriter(plan.size);
  for (const _ of netPieces(plan, writer, undefined)) {
    throw new Error("caffemodel writer: the preallocated buffer was too small");
  }
  return writer.finish();
}

/** Pieces of a caffemodel that may be this long or longer are handed out as they are. */
const DIRECT_PIECE_BYTES = 1 << 16;

/**
 * The bytes of {@linkcode writeCaffemodel}`(net)` as a sequence of pieces, for streaming to a
 * file without holding the whole output: the pieces are written through two buffers of
 * `bufferBytes` bytes used in turn, except blob data already held somewhere (e.g. views on the
 * input file), which comes as it is. A piece is valid until the piece after the next one is
 * asked for, so a consumer may write one piece while the next is being made.
 *
 * @example
 * ```ts ignore
 * for (const piece of caffemodelPieces(net)) await file.write(piece);
 * ```
 */
export function* caffemodelPieces(net: Net, bufferBytes = 1 << 22): Generator<Uint8Array> {
  const plan = planNet(net);
  const size = Math.max(4096, bufferBytes);
  const writer = new WireWriter(new Uint8Array(size));
  yield* netPieces(plan, writer, new Uint8Array(size));
  if (writer.pos > 0) yield writer.swap(writer.bytes);
}

/** Sizes every layer and blob of `net` for the wire. */
function planNet(net: Net): NetPlan {
  const header = encodeMessage(caffeType("caffe.NetParameter"), net.header);
  const layerType = caffeType("caffe.LayerParameter");
  const layers = net.layers.map((layer) => planLayer(layer, layerType));
  const size = layers.reduce(
    (total, layer) => total + lengthFieldSize(NET_LAYER, layer.size),
    header.length,
  );
  return { header, layers, size };
}

/** Encodes a text tree as `type` with protobufjs (fields the schema does not know are left out). */
function encodeMessage(type: MessageType, message: TextMessage): Uint8Array {
  return type.encode(type.fromObject(objectFromMessage(type, message))).finish();
}

function planLayer(layer: Layer, layerType: MessageType): LayerPlan {
  const params = encodeMessage(
    layerType,
    new TextMessage(layer.params.fields.filter((field) => field.name !== "phase")),
  );
  const blobs = layer.blobs.map(planBlob);
  const size = blobs.reduce(
    (total, blob) => total + lengthFieldSize(LAYER_BLOBS, blob.size),
    params.length + layer.unknownBytes.length,
  );
  return { params, unknownBytes: layer.unknownBytes, blobs, size };
}

function planBlob(blob: Blob): BlobPlan {
  const elementType = blobElementType(blob);
  const length = blob instanceof DeferredBlob && blob.held === undefined
    ? blob.length
    : blob.data.length;
  const dimsSize = blob.shape.reduce((total, dim) => total + signedVarintSize(dim), 0);
  const shapeSize = blob.shape.length > 0 ? lengthFieldSize(SHAPE_DIM, dimsSize) : 0;
  const dataSize = elementType === "int32"
    ? int32sSize(blob.data as Int32Array)
    : elementType === "uint64"
    ? uint64sSize(blob.data as BigUint64Array)
    : length * ELEMENT_SIZE[elementType];
  const size = lengthFieldSize(BLOB_SHAPE, shapeSize) +
    (length > 0 ? lengthFieldSize(DATA_FIELDS[elementType], dataSize) : 0);
  return { blob, elementType, length, dimsSize, shapeSize, dataSize, size };
}

/** The `BlobProto` field that holds data of each element type. */
const DATA_FIELDS: Record<ElementType, number> = {
  float32: BLOB_DATA,
  int8: BLOB_INT8_DATA,
  int32: BLOB_INT32_DATA,
  uint64: BLOB_UINT64_DATA,
};

/** Room for the tags and length varints written between two checks (each at most 10 bytes). */
const SMALL_WRITE_BYTES = 64;

/**
 * Writes a sized net with `writer`. With no `spare` buffer, everything must fit the writer's
 * buffer and nothing is yielded; with one, the writer's buffer and `spare` take turns, each
 * yielded when full, and large data held elsewhere is yielded as it is.
 */
function* netPieces(
  plan: NetPlan,
  writer: WireWriter,
  spare: Uint8Array | undefined,
): Generator<Uint8Array> {
  /** Yields what the buffer holds (streaming only) and goes on in the other buffer. */
  function* flush(): Generator<Uint8Array> {
    if (spare === undefined || writer.pos === 0) return;
    const next = spare;
    spare = writer.bytes;
    yield writer.swap(next);
  }
  /** Makes room for `size` bytes (at most a buffer's size). */
  function* room(size: number): Generator<Uint8Array> {
    if (writer.room < size) yield* flush();
  }
  /** True when `size` bytes go out as a piece of their own rather than through the buffer. */
  const direct = (size: number) =>
    spare !== undefined && (size >= DIRECT_PIECE_BYTES || size > writer.bytes.length);
  /** Writes bytes held elsewhere: copied into the buffer, or yielded as they are when large. */
  function* stored(bytes: Uint8Array): Generator<Uint8Array> {
    if (direct(bytes.length)) {
      yield* flush();
      yield bytes;
    } else {
      yield* room(bytes.length);
      writer.raw(bytes);
    }
  }

  /** The data field of a blob: tag, length, then the elements. */
  function* blobData(plan: BlobPlan): Generator<Uint8Array> {
    yield* room(SMALL_WRITE_BYTES);
    writer.tag(DATA_FIELDS[plan.elementType], WireType.LENGTH);
    writer.varint(plan.dataSize);
    const { blob } = plan;
    if (plan.elementType === "int32" || plan.elementType === "uint64") {
      // Varint data (biases, dequant scales) is small; a run larger than a buffer gets its own.
      const own = direct(plan.dataSize) ? new WireWriter(plan.dataSize) : undefined;
      if (own === undefined) yield* room(plan.dataSize);
      const target = own ?? writer;
      if (plan.elementType === "int32") target.int32s(blob.data as Int32Array);
      else target.uint64s(blob.data as BigUint64Array);
      if (own !== undefined) yield* stored(own.finish());
      return;
    }
    const bytes = blobBytes(blob);
    if (bytes !== undefined) {
      yield* stored(bytes);
      return;
    }
    const deferred = blob as DeferredBlob;
    const size = ELEMENT_SIZE.float32;
    for (let done = 0; done < plan.length;) {
      yield* room(size);
      const count = Math.min(plan.length - done, Math.floor(writer.room / size));
      deferred.writeBytes(
        done,
        count,
        writer.bytes.subarray(writer.pos, writer.pos + count * size),
      );
      writer.pos += count * size;
      done += count;
    }
  }

  yield* stored(plan.header);
  for (const layer of plan.layers) {
    yield* room(SMALL_WRITE_BYTES);
    writer.tag(NET_LAYER, WireType.LENGTH);
    writer.varint(layer.size);
    yield* stored(layer.params);
    yield* stored(layer.unknownBytes);
    for (const blob of layer.blobs) {
      yield* room(SMALL_WRITE_BYTES);
      writer.tag(LAYER_BLOBS, WireType.LENGTH);
      writer.varint(blob.size);
      writer.tag(BLOB_SHAPE, WireType.LENGTH);
      writer.varint(blob.shapeSize);
      if (blob.blob.shape.length > 0) {
        yield* room(blob.shapeSize);
        writer.tag(SHAPE_DIM, WireType.LENGTH);
        writer.varint(blob.dimsSize);
        for (const dim of blob.blob.shape) writer.signedVarint(dim);
      }
      if (blob.length > 0) yield* blobData(blob);
    }
  }
}
