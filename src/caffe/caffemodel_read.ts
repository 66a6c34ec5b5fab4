/**
 * The reader of Caffe's binary weights file (`.caffemodel`, a binary `NetParameter`) into a
 * {@linkcode Net}. It walks the file with the wire reader: blobs are parsed here into typed arrays
 * that are views into the input bytes, or, for float data at an offset that is not a multiple of
 * 4, into a {@linkcode DeferredBlob} holding a byte view (so no blob data is copied); every other
 * field the schema knows is decoded into a lossless text tree; fields the schema
 * does not know are kept as raw bytes on their layer. V1 layers are upgraded to V2.
 *
 * @module
 */

import { type BinaryInput, bytesArgument } from "../arguments.ts";
import { ConvertError } from "../errors.ts";
import { LIMITS } from "../limits.ts";
import { caffeType } from "../proto/schema.ts";
import { decodeMessage, wireTypeOf } from "../proto/binary_message.ts";
import { MESSAGE, type MessageType, STRING } from "../proto/field_info.ts";
import { TextMessage } from "../proto/tree.ts";
import { WireReader, WireType } from "../proto/wire.ts";
import {
  BLOB_DATA,
  BLOB_DOUBLE_DATA,
  BLOB_INT32_DATA,
  BLOB_INT8_DATA,
  BLOB_NUM,
  BLOB_SHAPE,
  BLOB_UINT64_DATA,
  BLOB_WIDTH,
  LAYER_BLOBS,
  NET_LAYER,
  NET_LAYERS_V1,
  SHAPE_DIM,
  V1_LAYER_BLOBS,
} from "./caffemodel_fields.ts";
import { DeferredBlob } from "./deferred_blob.ts";
import { type Blob, type BlobData, Layer, type Net } from "./net.ts";
import { mixedFormats, upgradeV1Layer } from "./upgrade.ts";

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

/** Options of {@linkcode readCaffemodel}. */
export interface CaffemodelReadOptions {
  /**
   * True when the caller gives up the bytes (it read them for this and keeps no other use of them):
   * float data at an offset that is not a multiple of 4 is then moved back over its own field's
   * tag and length, within the bytes, and read in place as a `Float32Array`, where it would
   * otherwise be made into a new array on first use (fresh memory the size of the weights: 77 of
   * ResNet-50's 102 MB). Default false: `bytes` are never written.
   */
  alignInPlace?: boolean;
}

/**
 * Reads a binary caffemodel. V1 nets (`layers`, field 2) are upgraded to V2 layers; blobs are
 * typed arrays, views into `bytes` where alignment allows. `bytes` may be a `Uint8Array`, an
 * `ArrayBuffer` or another view of bytes. Errors are {@linkcode ConvertError}s with the byte
 * offset, and `file` when given.
 *
 * @example
 * ```ts ignore
 * const net = readCaffemodel(await Deno.readFile("weights.caffemodel"), "weights.caffemodel");
 * console.log(net.layers.map((layer) => `${layer.name}: ${layer.blobs.length} blobs`));
 * ```
 */
export function readCaffemodel(
  bytes: BinaryInput,
  file?: string,
  options: CaffemodelReadOptions = {},
): Net {
  try {
    return readNet(bytesArgument(bytes, "the caffemodel", file), options.alignInPlace ?? false);
  } catch (error) {
    if (error instanceof ConvertError && file !== undefined) throw error.inFile(file);
    throw error;
  }
}

/**
 * Reads a binary `BlobProto` file, such as a `mean.binaryproto` (Caffe's `mean_file`), as float32
 * values and their shape (legacy num/channels/height/width or `shape`). Errors name `file`.
 */
export function readBlobProto(
  bytes: Uint8Array,
  file: string,
): { shape: number[]; data: Float32Array } {
  try {
    const blob = readBlob(new WireReader(bytes), 0, file);
    const data = blob.data;
    if (!(data instanceof Float32Array)) {
      throw new ConvertError("BLOB_SIZE_MISMATCH", "the blob holds no float values", { offset: 0 });
    }
    return { shape: blob.shape, data };
  } catch (error) {
    if (error instanceof ConvertError) throw error.inFile(file);
    throw error;
  }
}

/**
 * `LIMIT_EXCEEDED` at the first layer beyond `LIMITS.layers`, found by skipping over the
 * top-level fields before any layer is parsed (parsing 100,000 layers first takes seconds). Other
 * damage ends the scan silently: the full read reports it, at its own place.
 */
function checkLayerCount(bytes: Uint8Array): void {
  const reader = new WireReader(bytes);
  let layers = 0;
  let others = 0;
  try {
    // Past the limit of other fields, the full read fails at once: no need to scan further.
    while (!reader.done && others <= LIMITS.fieldsPerMessage) {
      const tag = reader.tag();
      const start = reader.tagAt;
      if (
        tag === tagOf(NET_LAYERS_V1, WireType.LENGTH) || tag === tagOf(NET_LAYER, WireType.LENGTH)
      ) {
        if (++layers > LIMITS.layers) {
          throw new ConvertError(
            "LIMIT_EXCEEDED",
            `more than ${LIMITS.layers} layers (the limit) at byte ${start}`,
            { offset: start },
          );
        }
      } else {
        others++;
      }
      reader.skip(tag, 0);
    }
  } catch (error) {
    if (error instanceof ConvertError && error.code === "LIMIT_EXCEEDED") throw error;
  }
}

function readNet(bytes: Uint8Array, alignInPlace: boolean): Net {
  checkLayerCount(bytes);
  const netType = caffeType("caffe.NetParameter");
  const reader = new WireReader(bytes);
  const headerFields: FieldRange[] = [];
  const layers: Layer[] = [];
  const formats = new Set<boolean>();
  const count = fieldCounter("NetParameter");
  while (!reader.done) {
    const tag = reader.tag();
    const start = reader.tagAt;
    const v1 = tag === tagOf(NET_LAYERS_V1, WireType.LENGTH);
    if (v1 || tag === tagOf(NET_LAYER, WireType.LENGTH)) {
      formats.add(v1);
      if (formats.size > 1) throw mixedFormats({ name: v1 ? "layers" : "layer" }, undefined, start);
      if (layers.length >= LIMITS.layers) {
        throw new ConvertError(
          "LIMIT_EXCEEDED",
          `more than ${LIMITS.layers} layers (the limit) at byte ${start}`,
          { offset: start },
        );
      }
      layers.push(readLayer(reader.message(), start, v1, alignInPlace));
    } else {
      count(start);
      if (fieldFits(netType, tag, reader, 0)) headerFields.push({ start, end: reader.pos });
    }
  }
  return { header: decodeFields(netType, bytes, headerFields), layers };
}

/**
 * A counter of the fields of one message of type `typeName`: call it with each field's offset;
 * the field beyond `LIMITS.fieldsPerMessage` is `LIMIT_EXCEEDED` there, before the reader keeps
 * anything for it (a few bytes per field on disk would otherwise cost a hundred in memory).
 */
function fieldCounter(typeName: string): (offset: number) => void {
  let fields = 0;
  return (offset) => {
    if (++fields <= LIMITS.fieldsPerMessage) return;
    throw new ConvertError(
      "LIMIT_EXCEEDED",
      `more than ${LIMITS.fieldsPerMessage} fields (the limit) in one ${typeName} message, at ` +
        `byte ${offset}; Caffe writes blob values packed, as one field`,
      { offset },
    );
  };
}

/**
 * Reads one `layer` (V2) or `layers` (V1, then upgraded) message whose field is at `layerAt`
 * (`alignInPlace`: see {@linkcode CaffemodelReadOptions}).
 */
function readLayer(
  reader: WireReader,
  layerAt: number,
  v1: boolean,
  alignInPlace: boolean,
): Layer {
  const layerType = caffeType(v1 ? "caffe.V1LayerParameter" : "caffe.LayerParameter");
  const blobsTag = tagOf(v1 ? V1_LAYER_BLOBS : LAYER_BLOBS, WireType.LENGTH);
  const blobMessages: WireReader[] = [];
  const blobStarts: number[] = [];
  const known: FieldRange[] = [];
  const unknown: FieldRange[] = [];
  const count = fieldCounter(layerType.name);
  while (!reader.done) {
    const tag = reader.tag();
    const start = reader.tagAt;
    count(start);
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
  const blobs = blobMessages.map((message, i) =>
    readBlob(message, blobStarts[i], name, alignInPlace)
  );
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
  const field = type.info.byNumber.get(tag >>> 3);
  const wireType = tag & 7;
  if (field === undefined) {
    reader.skip(tag, depth);
    return false;
  }
  if (field.kind === MESSAGE) {
    if (wireType !== WireType.LENGTH) {
      reader.skip(tag, depth);
      return false;
    }
    return messageFits(field.messageType!, reader.message(), depth + 1);
  }
  const scalarWireType = wireTypeOf(field);
  if (wireType === scalarWireType) {
    const start = reader.tagAt;
    reader.skip(tag, depth);
    if (field.kind === STRING && reader.pos - start > LIMITS.stringBytes) {
      throw new ConvertError(
        "LIMIT_EXCEEDED",
        `string field "${field.name}" at byte ${start} is longer than the limit of ` +
          `${LIMITS.stringBytes} bytes`,
        { offset: start },
      );
    }
    return true;
  }
  if (wireType !== WireType.LENGTH || !field.repeated || scalarWireType === WireType.LENGTH) {
    reader.skip(tag, depth);
    return false;
  }
  reader.skipPacked(scalarWireType);
  return true;
}

/**
 * Walks a nested message: true when every field it has fits `type` (see `fieldFits`). The
 * schema's messages nest a few levels only; deeper nesting can only come from groups, which
 * the wire reader limits.
 */
function messageFits(type: MessageType, reader: WireReader, depth: number): boolean {
  let fits = true;
  const count = fieldCounter(type.name);
  while (!reader.done) {
    const tag = reader.tag();
    count(reader.tagAt);
    const known = fieldFits(type, tag, reader, depth);
    if (!known && type.info.byNumber.has(tag >>> 3)) fits = false;
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
 * Decodes the fields at `ranges` (already checked to fit `type`) into a text tree, in
 * field-number order (src/proto/binary_message.ts). Should they still not decode, that is
 * `BINARY_NOT_PROTOBUF` at the first of the fields.
 */
function decodeFields(type: MessageType, bytes: Uint8Array, ranges: FieldRange[]): TextMessage {
  let message: TextMessage;
  try {
    message = decodeMessage(type.info, gather(bytes, ranges));
  } catch (error) {
    const offset = ranges[0]?.start ?? 0;
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConvertError(
      "BINARY_NOT_PROTOBUF",
      `the ${type.name} fields from byte ${offset} do not decode: ${reason}`,
      { offset },
    );
  }
  rejectInvalidUtf8(message, type.name, ranges[0]?.start ?? 0);
  return message;
}

/**
 * `INVALID_UTF8` for a string field of `message` (at any depth) whose bytes were not UTF-8:
 * the decoder put U+FFFD in their place, and a name changed that way would not match.
 */
function rejectInvalidUtf8(message: TextMessage, typeName: string, offset: number): void {
  for (const field of message.fields) {
    if (typeof field.value === "string" && field.value.includes("\uFFFD")) {
      throw new ConvertError(
        "INVALID_UTF8",
        `the ${typeName} string field "${field.name}" from byte ${offset} is not valid UTF-8`,
        { offset },
      );
    }
    if (field.value instanceof TextMessage) rejectInvalidUtf8(field.value, typeName, offset);
  }
}

/** Parses one `BlobProto`; `start` is the offset of its field in the layer, for errors. */
function readBlob(
  reader: WireReader,
  start: number,
  layer: string,
  alignInPlace = false,
): Blob {
  const legacyDims = [0, 0, 0, 0];
  let legacyShape = false;
  let shape: number[] | undefined;
  const floats: Uint8Array[] = [];
  /** Bytes of the tag and length before the last packed float data (0 for unpacked data). */
  let floatHeader = 0;
  const doubles: Float64Array[] = [];
  const int32s: Int32Array[] = [];
  const uint64s: BigUint64Array[] = [];
  let int8s: Int8Array | undefined;
  const countField = fieldCounter("BlobProto");
  while (!reader.done) {
    const tag = reader.tag();
    countField(reader.tagAt);
    const field = tag >>> 3;
    const wireType = tag & 7;
    const packed = wireType === WireType.LENGTH;
    if (field >= BLOB_NUM && field <= BLOB_WIDTH && wireType === WireType.VARINT) {
      legacyDims[field - BLOB_NUM] = reader.int32();
      legacyShape = true;
    } else if (tag === tagOf(BLOB_SHAPE, WireType.LENGTH)) {
      shape = readShape(reader.message(), shape ?? []);
    } else if (field === BLOB_DATA && (packed || wireType === WireType.FIXED32)) {
      const byteLength = packed ? reader.length() : 4;
      floatHeader = packed ? reader.pos - reader.tagAt : 0;
      floats.push(reader.packedBytes(byteLength, 4));
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
    : alignInPlace && data.byteOffset % 4 <= floatHeader
    ? { shape: dims, data: movedBack(data, data.byteOffset % 4) }
    : new UnalignedFloats(dims, data);
  if (shape === undefined && legacyShape) blob.legacyShape = true;
  return blob;
}

/**
 * The float32 values of `bytes`, moved `shift` bytes back (over the tag and length before them, in
 * the same buffer) to a 4-byte boundary and read in place.
 */
function movedBack(bytes: Uint8Array, shift: number): Float32Array {
  const at = bytes.byteOffset - shift;
  new Uint8Array(bytes.buffer, at, bytes.byteLength + shift).copyWithin(0, shift);
  return new Float32Array(bytes.buffer, at, bytes.byteLength / 4);
}

/** Reads a `BlobShape`, appending its dims (packed or not) to `dims`. */
function readShape(reader: WireReader, dims: number[]): number[] {
  const addDim = (dim: number, at: number) => {
    if (dims.length >= LIMITS.blobAxes) {
      throw new ConvertError(
        "LIMIT_EXCEEDED",
        `a blob shape with more than ${LIMITS.blobAxes} axes (Caffe's limit) at byte ${at}`,
        { offset: at },
      );
    }
    dims.push(dim);
  };
  while (!reader.done) {
    const tag = reader.tag();
    if (tag === tagOf(SHAPE_DIM, WireType.VARINT)) {
      addDim(reader.int64(), reader.tagAt);
    } else if (tag === tagOf(SHAPE_DIM, WireType.LENGTH)) {
      const packed = reader.message();
      while (!packed.done) {
        const at = packed.pos;
        addDim(packed.int64(), at);
      }
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
