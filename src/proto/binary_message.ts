/**
 * Protobuf binary messages to and from lossless text trees, typed by the schema's field facts
 * (src/proto/field_info.ts): what a caffemodel holds besides blob data (the net's header fields,
 * each layer's parameters). Decoding gives the fields in field-number order (Caffe's own print
 * order); a singular field given more than once keeps its last value, a message too (it is not
 * merged). Encoding writes the known fields of a tree in field-number order, a singular field's
 * last value, repeated fields packed where the schema says `[packed = true]`; unknown fields are
 * left out.
 *
 * @module
 */

import {
  BOOL,
  BYTES,
  DOUBLE,
  ENUM,
  type FieldInfo,
  FLOAT,
  INT32,
  INT64,
  MESSAGE,
  STRING,
  type TypeInfo,
  UINT32,
  UINT64,
} from "./field_info.ts";
import { type FieldValue, type Scalar, type TextField, TextMessage } from "./tree.ts";
import { putVarint64, WireReader, WireType } from "./wire.ts";

/** The wire type of each scalar type of the schema (enums are varints). */
const WIRE_TYPES: Record<string, number> = {
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

/** The wire type of the values of `info` (a message field's: length-delimited). */
export function wireTypeOf(info: FieldInfo): number {
  if (info.kind === ENUM) return WireType.VARINT;
  return WIRE_TYPES[info.typeName] ?? WireType.LENGTH;
}

const utf8Decoder = new TextDecoder();
const utf8Encoder = new TextEncoder();

/** Reads one scalar value of `info`'s type (not a message) as a tree value. */
function readScalar(info: FieldInfo, reader: WireReader): Scalar {
  switch (info.typeName) {
    case "double":
      return reader.double();
    case "float":
      return reader.float();
    case "fixed32":
      return reader.fixed32();
    case "sfixed32":
      return reader.fixed32() | 0;
    case "uint32":
      return reader.uint32();
    case "sint32": {
      const zigzag = reader.uint32();
      return (zigzag >>> 1) ^ -(zigzag & 1);
    }
    case "int64":
      return Number(BigInt.asIntN(64, reader.uint64()));
    case "uint64":
      return Number(reader.uint64());
    case "sint64": {
      const zigzag = reader.uint64();
      return Number((zigzag >> 1n) ^ -(zigzag & 1n));
    }
    case "fixed64":
      return Number(reader.fixed64());
    case "sfixed64":
      return Number(BigInt.asIntN(64, reader.fixed64()));
    case "bool":
      return reader.uint32() !== 0;
    case "string":
      // Bytes that are not UTF-8 become U+FFFD (which the caffemodel reader rejects).
      return utf8Decoder.decode(reader.packedBytes(reader.length(), 1));
    case "bytes":
      return new Uint8Array(reader.packedBytes(reader.length(), 1));
    default: {
      // int32 and enums: the varint's low 32 bits, signed; an enum by its first name if known.
      const value = reader.int32();
      return info.kind === ENUM ? info.enumById?.get(value) ?? value : value;
    }
  }
}

/**
 * Decodes `bytes` as a message of the type `info` describes into a tree. Fields the type does
 * not know, or given with another wire type, are skipped; damaged wire data throws the wire
 * reader's `ConvertError`.
 */
export function decodeMessage(info: TypeInfo, bytes: Uint8Array): TextMessage {
  return decodeFrom(info, new WireReader(bytes));
}

function decodeFrom(info: TypeInfo, reader: WireReader): TextMessage {
  const byId = new Map<number, FieldValue[]>();
  while (!reader.done) {
    const tag = reader.tag();
    const field = info.byNumber.get(tag >>> 3);
    if (field === undefined) {
      reader.skip(tag, 0);
      continue;
    }
    const read = readField(field, tag, reader);
    if (read === undefined) continue;
    const values = field.repeated ? byId.get(field.id) : undefined;
    if (values === undefined) byId.set(field.id, read);
    else for (const value of read) values.push(value);
  }
  const fields: TextField[] = [];
  for (const field of info.byId) {
    for (const value of byId.get(field.id) ?? []) fields.push({ name: field.name, value });
  }
  return new TextMessage(fields);
}

/**
 * The values of field `field` whose tag `tag` was just read (several for packed data), or
 * undefined when its wire type is not the field's (the value is skipped).
 */
function readField(field: FieldInfo, tag: number, reader: WireReader): FieldValue[] | undefined {
  const wireType = tag & 7;
  const fieldWireType = wireTypeOf(field);
  if (field.kind === MESSAGE && wireType === WireType.LENGTH) {
    return [decodeFrom(field.messageType!.info, reader.message())];
  }
  if (field.kind !== MESSAGE && wireType === fieldWireType) return [readScalar(field, reader)];
  if (
    field.kind !== MESSAGE && field.repeated && wireType === WireType.LENGTH &&
    fieldWireType !== WireType.LENGTH
  ) {
    const packed = reader.message();
    const values: FieldValue[] = [];
    while (!packed.done) values.push(readScalar(field, packed));
    return values;
  }
  reader.skip(tag, 0);
  return undefined;
}

/** A growing byte buffer for {@linkcode encodeMessage}. */
class ByteSink {
  bytes = new Uint8Array(256);
  pos = 0;

  /** Room for `count` more bytes. */
  room(count: number): void {
    if (this.pos + count <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.pos + count));
    grown.set(this.bytes.subarray(0, this.pos));
    this.bytes = grown;
  }

  /** A varint of the unsigned 64-bit value with 32-bit halves `lo`, `hi`. */
  varint(lo: number, hi = 0): void {
    this.room(10);
    this.pos = putVarint64(this.bytes, this.pos, lo, hi);
  }

  /** `count` little-endian bytes of `value` (32 or 64 bits as two halves). */
  fixed(lo: number, hi: number, count: 4 | 8): void {
    this.room(count);
    const view = new DataView(this.bytes.buffer, this.pos, count);
    view.setUint32(0, lo >>> 0, true);
    if (count === 8) view.setUint32(4, hi >>> 0, true);
    this.pos += count;
  }

  /** A float32 or float64, little-endian. */
  float(value: number, count: 4 | 8): void {
    this.room(count);
    const view = new DataView(this.bytes.buffer, this.pos, count);
    if (count === 4) view.setFloat32(0, value, true);
    else view.setFloat64(0, value, true);
    this.pos += count;
  }

  /** Bytes as they are. */
  raw(data: Uint8Array): void {
    this.room(data.length);
    this.bytes.set(data, this.pos);
    this.pos += data.length;
  }

  /** A length prefix and then `data`. */
  delimited(data: Uint8Array): void {
    this.varint(data.length);
    this.raw(data);
  }

  /** The bytes written. */
  result(): Uint8Array {
    return this.bytes.slice(0, this.pos);
  }
}

/** The two's-complement 32-bit halves of an integer-valued number (wrapping beyond 64 bits). */
function halvesOf(value: number): [lo: number, hi: number] {
  if (!Number.isFinite(value) || value === 0) return [0, 0];
  const negative = value < 0;
  const magnitude = Math.abs(value);
  let lo = magnitude >>> 0;
  let hi = ((magnitude - lo) / 4294967296) >>> 0;
  if (negative) {
    hi = ~hi >>> 0;
    lo = ~lo >>> 0;
    if (++lo > 0xffffffff) {
      lo = 0;
      if (++hi > 0xffffffff) hi = 0;
    }
  }
  return [lo, hi];
}

/**
 * A tree value as the field's wire value (protobuf's conversion of a plain value to the field's
 * type: numbers truncated to 32 bits for 32-bit integers, `Number` for floats, `Boolean`,
 * `String`, a base64 string for bytes), or undefined when it gives none (the value is left out).
 */
function wireValue(
  field: FieldInfo,
  value: Scalar,
): number | boolean | string | Uint8Array | undefined {
  switch (field.kind) {
    case ENUM:
      if (typeof value === "number") return value;
      // A name the enum lacks: a repeated field takes the enum's first value.
      if (typeof value === "string" && field.enumByName!.has(value)) {
        return field.enumByName!.get(value)!;
      }
      return field.repeated ? field.enumByName!.values().next().value : undefined;
    case INT32:
      return Number(value) | 0;
    case UINT32:
      return Number(value) >>> 0;
    case INT64:
    case UINT64:
      if (typeof value === "number") return value;
      if (typeof value === "string") return parseInt(value, 10);
      return typeof value === "boolean" ? undefined : 0;
    case FLOAT:
    case DOUBLE:
      return Number(value);
    case BOOL:
      return Boolean(value);
    case STRING:
      return String(value);
    case BYTES:
      if (typeof value === "string") return Uint8Array.from(atob(value), (c) => c.charCodeAt(0));
      return value instanceof Uint8Array ? value : undefined;
    default:
      return undefined;
  }
}

/** Writes one wire value of `field` (no tag). */
function writeValue(
  field: FieldInfo,
  value: number | boolean | string | Uint8Array,
  sink: ByteSink,
): void {
  switch (field.kind === ENUM ? "int32" : field.typeName) {
    case "double":
      return sink.float(value as number, 8);
    case "float":
      return sink.float(value as number, 4);
    case "fixed32":
    case "sfixed32":
      return sink.fixed(value as number, 0, 4);
    case "uint32":
      return sink.varint(value as number);
    case "sint32": {
      const v = value as number;
      return sink.varint(((v << 1) ^ (v >> 31)) >>> 0);
    }
    case "int32": {
      const v = value as number;
      return v < 0 ? sink.varint(...halvesOf(v)) : sink.varint(v >>> 0);
    }
    case "int64":
    case "uint64":
      return sink.varint(...halvesOf(value as number));
    case "sint64": {
      const [lo, hi] = halvesOf(value as number);
      const mask = hi >> 31;
      return sink.varint(((lo << 1) ^ mask) >>> 0, (((hi << 1) | (lo >>> 31)) ^ mask) >>> 0);
    }
    case "fixed64":
    case "sfixed64":
      return sink.fixed(...halvesOf(value as number), 8);
    case "bool":
      return sink.varint(value ? 1 : 0);
    case "string":
      return sink.delimited(utf8Encoder.encode(value as string));
    default:
      return sink.delimited(value as Uint8Array);
  }
}

/**
 * Encodes the fields of `message` that the type `info` describes: in field-number order, a
 * singular field's last value, repeated fields packed where the schema says so. Unknown fields
 * (and a message given for a scalar field) are left out. A scalar given for a message field is
 * a `TypeError`.
 */
export function encodeMessage(info: TypeInfo, message: TextMessage): Uint8Array {
  const sink = new ByteSink();
  encodeInto(info, message, sink);
  return sink.result();
}

function encodeInto(info: TypeInfo, message: TextMessage, sink: ByteSink): void {
  const values = new Map<FieldInfo, FieldValue[]>();
  for (const field of message.fields) {
    if (field.unknown) continue;
    const known = info.byName.get(field.name);
    if (known === undefined) continue;
    if (field.value instanceof TextMessage && known.kind !== MESSAGE) continue;
    const list = known.repeated ? values.get(known) : undefined;
    if (list === undefined) values.set(known, [field.value]);
    else list.push(field.value);
  }
  for (const field of info.byId) {
    const list = values.get(field);
    if (list === undefined) continue;
    if (field.kind === MESSAGE) {
      const nested = field.messageType!.info;
      for (const value of list) {
        if (!(value instanceof TextMessage) && !(value instanceof Uint8Array)) {
          throw new TypeError(`${field.name}: object expected`);
        }
        sink.varint(field.id * 8 + WireType.LENGTH);
        // A byte array given for a message holds none of its fields: an empty message.
        const inner = new ByteSink();
        if (value instanceof TextMessage) encodeInto(nested, value, inner);
        sink.delimited(inner.bytes.subarray(0, inner.pos));
      }
      continue;
    }
    const wire = list.map((value) => wireValue(field, value as Scalar)).filter((value) =>
      value !== undefined
    );
    if (wire.length === 0) continue;
    const wireType = wireTypeOf(field);
    if (field.packed && wireType !== WireType.LENGTH) {
      const packed = new ByteSink();
      for (const value of wire) writeValue(field, value, packed);
      sink.varint(field.id * 8 + WireType.LENGTH);
      sink.delimited(packed.bytes.subarray(0, packed.pos));
    } else {
      for (const value of wire) {
        sink.varint(field.id * 8 + wireType);
        writeValue(field, value, sink);
      }
    }
  }
}
