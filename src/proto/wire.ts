/**
 * Protobuf binary wire format: a bounds-checked reader that hands out typed-array views of packed
 * data without copying, and a writer that fills one preallocated buffer.
 *
 * Every malformed input becomes a {@linkcode ConvertError} with the byte offset of the item that
 * is wrong; a length is checked against the bytes that remain before anything is allocated.
 * Typed-array views assume a little-endian host, as every JavaScript engine in use is.
 *
 * @module
 */

import { ConvertError, type ErrorCode } from "../errors.ts";
import { LIMITS } from "../limits.ts";

/** The wire types of the protobuf binary format. */
export const WireType = {
  /** Base-128 varint. */
  VARINT: 0,
  /** 8 little-endian bytes. */
  FIXED64: 1,
  /** A varint length, then that many bytes. */
  LENGTH: 2,
  /** Start of a (deprecated) group. */
  START_GROUP: 3,
  /** End of a group. */
  END_GROUP: 4,
  /** 4 little-endian bytes. */
  FIXED32: 5,
} as const;

/** Deepest nesting of messages and groups accepted (protobuf's own default limit). */
export const MAX_NESTING: number = LIMITS.nesting;

/** The longest varint the format allows, in bytes. */
const MAX_VARINT_BYTES = 10;

const TWO_POW_32 = 4294967296;

/**
 * Reads protobuf wire data from `bytes[pos, end)`. Offsets in errors and in `pos` are indices
 * into `bytes` (the whole file, for a caffemodel).
 */
export class WireReader {
  /** The whole input; sub-readers share it. */
  readonly bytes: Uint8Array;
  /** Index of the next byte to read. */
  pos: number;
  /** Index just past the last byte this reader may read (its enclosing message's end). */
  readonly end: number;
  /** Offset of the last tag read by `tag()`: where its field starts. */
  tagAt = 0;
  /** Low 32 bits of the last varint read by `readVarint` (unsigned). */
  private lo = 0;
  /** High 32 bits of the last varint read by `readVarint` (unsigned). */
  private hi = 0;

  /** A reader over `bytes[start, end)`. */
  constructor(bytes: Uint8Array, start = 0, end = bytes.length) {
    this.bytes = bytes;
    this.pos = start;
    this.end = end;
  }

  /** True when every byte up to `end` has been read. */
  get done(): boolean {
    return this.pos >= this.end;
  }

  /**
   * Reads a field tag and returns it whole (`tag >>> 3` is the field number, `tag & 7` the wire
   * type). Field number 0, wire types 6 and 7 and tags over 32 bits are not protobuf.
   */
  tag(): number {
    const start = this.pos;
    this.tagAt = start;
    this.readVarint();
    const tag = this.lo;
    if (this.hi !== 0) throw notProtobuf(start, "a field tag over 32 bits");
    if (tag >>> 3 === 0) throw notProtobuf(start, "field number 0");
    if ((tag & 7) > WireType.FIXED32) throw notProtobuf(start, `wire type ${tag & 7}`);
    return tag;
  }

  /** A varint's low 32 bits as an unsigned number (protobuf's `uint32`). */
  uint32(): number {
    this.readVarint();
    return this.lo;
  }

  /** A varint's low 32 bits as a signed number (protobuf's `int32`, `enum`). */
  int32(): number {
    this.readVarint();
    return this.lo | 0;
  }

  /** A varint as a signed 64-bit number; exact while it fits in ±2^53. */
  int64(): number {
    this.readVarint();
    return (this.hi | 0) * TWO_POW_32 + this.lo;
  }

  /** A varint as an exact unsigned 64-bit bigint. */
  uint64(): bigint {
    this.readVarint();
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  /** 4 little-endian bytes as an unsigned 32-bit number (protobuf's `fixed32`). */
  fixed32(): number {
    const at = this.take(4);
    return this.dataView().getUint32(at, true);
  }

  /** 8 little-endian bytes as an unsigned 64-bit bigint (protobuf's `fixed64`). */
  fixed64(): bigint {
    const at = this.take(8);
    return this.dataView().getBigUint64(at, true);
  }

  /** 4 little-endian bytes as a float32. */
  float(): number {
    const at = this.take(4);
    return this.dataView().getFloat32(at, true);
  }

  /** 8 little-endian bytes as a float64. */
  double(): number {
    const at = this.take(8);
    return this.dataView().getFloat64(at, true);
  }

  /**
   * Reads a length varint and checks that many bytes remain before `end`; `pos` is then at the
   * payload. A length past the end of the file is `BINARY_TRUNCATED`, one past the enclosing
   * message only is `BINARY_LENGTH_PAST_END` (both at the offset of the length).
   */
  length(): number {
    const start = this.pos;
    this.readVarint();
    const length = this.hi * TWO_POW_32 + this.lo; // inexact beyond 2^53, but then far too big
    if (length > this.end - this.pos) {
      throw this.pastEnd(start, this.pos + length, `a length of ${length} bytes`);
    }
    return length;
  }

  /** Reads a length-delimited field and returns a reader over its payload; skips past it. */
  message(): WireReader {
    const length = this.length();
    const sub = new WireReader(this.bytes, this.pos, this.pos + length);
    this.pos += length;
    return sub;
  }

  /**
   * Skips the value of a field whose tag was just read (by this reader), groups included.
   * `depth` is the nesting of the message holding the field, 0 for the outermost; a group
   * deeper than {@linkcode MAX_NESTING} is `BINARY_TOO_DEEP`.
   */
  skip(tag: number, depth: number): void {
    switch (tag & 7) {
      case WireType.VARINT:
        this.readVarint();
        return;
      case WireType.FIXED64:
        this.take(8);
        return;
      case WireType.LENGTH: {
        const length = this.length();
        this.pos += length;
        return;
      }
      case WireType.FIXED32:
        this.take(4);
        return;
      case WireType.START_GROUP:
        this.skipGroup(tag, depth + 1);
        return;
      default:
        throw notProtobuf(this.tagAt, `an end-group tag of field ${tag >>> 3} outside a group`);
    }
  }

  /**
   * Skips a length-delimited run of packed scalars of wire type `elementWireType` (varint,
   * fixed32 or fixed64), checking that it holds whole elements.
   */
  skipPacked(elementWireType: number): void {
    const byteLength = this.length();
    if (elementWireType === WireType.VARINT) this.countVarints(byteLength);
    else {
      const size = elementWireType === WireType.FIXED32 ? 4 : 8;
      if (byteLength % size !== 0) {
        throw notProtobuf(this.pos, `packed ${size}-byte data of ${byteLength} bytes`);
      }
    }
    this.pos += byteLength;
  }

  /**
   * `byteLength` bytes of packed fixed-width data (elements of `size` bytes) as a view on the
   * input, at any alignment.
   */
  packedBytes(byteLength: number, size: number): Uint8Array {
    if (byteLength % size !== 0) {
      throw notProtobuf(this.pos, `packed ${size}-byte data of ${byteLength} bytes`);
    }
    const at = this.take(byteLength);
    return this.bytes.subarray(at, at + byteLength);
  }

  /** `byteLength` bytes of packed float32 data: a view when 4-aligned, else one copy. */
  floats(byteLength: number): Float32Array {
    const [buffer, offset] = this.aligned(byteLength, 4);
    return new Float32Array(buffer, offset, byteLength / 4);
  }

  /** `byteLength` bytes of packed float64 data: a view when 8-aligned, else one copy. */
  doubles(byteLength: number): Float64Array {
    const [buffer, offset] = this.aligned(byteLength, 8);
    return new Float64Array(buffer, offset, byteLength / 8);
  }

  /** `byteLength` bytes as signed bytes, a view on the input. */
  int8s(byteLength: number): Int8Array {
    const at = this.take(byteLength);
    return new Int8Array(this.bytes.buffer, this.bytes.byteOffset + at, byteLength);
  }

  /** `byteLength` bytes of packed varints as int32 values (low 32 bits of each). */
  int32s(byteLength: number): Int32Array {
    const values = new Int32Array(this.countVarints(byteLength));
    const b = this.bytes;
    let pos = this.pos;
    for (let i = 0; i < values.length; i++) {
      let byte = b[pos++];
      let value = byte & 0x7f;
      for (let shift = 7; byte >= 0x80; shift += 7) {
        byte = b[pos++];
        if (shift < 32) value |= (byte & 0x7f) << shift;
      }
      values[i] = value;
    }
    this.pos = pos;
    return values;
  }

  /** `byteLength` bytes of packed varints as unsigned 64-bit values. */
  uint64s(byteLength: number): BigUint64Array {
    const values = new BigUint64Array(this.countVarints(byteLength));
    for (let i = 0; i < values.length; i++) {
      this.decodeVarint();
      values[i] = (BigInt(this.hi) << 32n) | BigInt(this.lo);
    }
    return values;
  }

  /**
   * Reads a varint into `lo`/`hi`: checks that it ends within 10 bytes and before `end`, then
   * decodes it. One-byte varints (most tags) take the short path.
   */
  private readVarint(): void {
    const b = this.bytes;
    const start = this.pos;
    if (start < this.end && b[start] < 0x80) {
      this.lo = b[start];
      this.hi = 0;
      this.pos = start + 1;
      return;
    }
    const limit = Math.min(this.end, start + MAX_VARINT_BYTES);
    let last = start;
    while (last < limit && b[last] >= 0x80) last++;
    if (last === limit) {
      if (limit === this.end) throw this.pastEnd(start, this.end + 1, "a varint");
      throw notProtobuf(start, "a varint longer than 10 bytes");
    }
    this.decodeVarint();
  }

  /** Decodes the varint at `pos`, known to end within bounds, into `lo`/`hi`. */
  private decodeVarint(): void {
    const b = this.bytes;
    let pos = this.pos;
    let lo = 0;
    let hi = 0;
    let byte: number;
    let shift = 0;
    do {
      byte = b[pos++];
      if (shift < 28) lo |= (byte & 0x7f) << shift;
      else if (shift === 28) {
        lo |= (byte & 0x7f) << 28;
        hi = (byte & 0x7f) >>> 4;
      } else hi |= (byte & 0x7f) << (shift - 32);
      shift += 7;
    } while (byte >= 0x80);
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
    this.pos = pos;
  }

  /**
   * Counts the varints in the next `byteLength` bytes, checking that none is longer than 10
   * bytes and that the last one ends inside the range.
   */
  private countVarints(byteLength: number): number {
    const b = this.bytes;
    const stop = this.pos + byteLength;
    if (stop > this.end) throw this.pastEnd(this.pos, stop, "packed data");
    let count = 0;
    let run = 0;
    for (let pos = this.pos; pos < stop; pos++) {
      if (b[pos] < 0x80) {
        count++;
        run = 0;
      } else if (++run === MAX_VARINT_BYTES) {
        throw notProtobuf(pos - run + 1, "a varint longer than 10 bytes");
      }
    }
    if (run > 0) throw this.pastEnd(stop - run, stop + 1, "a varint");
    return count;
  }

  /**
   * Consumes `byteLength` bytes (a multiple of `size`) and returns a buffer and an offset in it,
   * a multiple of `size`, where they are: the input's own buffer when aligned, else a copy.
   */
  private aligned(byteLength: number, size: number): [ArrayBufferLike, number] {
    if (byteLength % size !== 0) {
      throw notProtobuf(this.pos, `packed ${size}-byte data of ${byteLength} bytes`);
    }
    const at = this.take(byteLength);
    const absolute = this.bytes.byteOffset + at;
    if (absolute % size === 0) return [this.bytes.buffer, absolute];
    return [this.bytes.buffer.slice(absolute, absolute + byteLength), 0];
  }

  /** Skips a group whose start tag was just read, up to its matching end tag. */
  private skipGroup(startTag: number, depth: number): void {
    const start = this.tagAt;
    if (depth > MAX_NESTING) {
      throw new ConvertError(
        "BINARY_TOO_DEEP",
        `groups nested more than ${MAX_NESTING} deep at byte ${start}`,
        { offset: start },
      );
    }
    const endTag = (startTag & ~7) | WireType.END_GROUP;
    for (;;) {
      if (this.done) {
        throw this.pastEnd(start, this.end + 1, `the group of field ${startTag >>> 3}`);
      }
      const tagAt = this.pos;
      const tag = this.tag();
      if (tag === endTag) return;
      if ((tag & 7) === WireType.END_GROUP) {
        throw notProtobuf(
          tagAt,
          `an end-group tag of field ${tag >>> 3} in a group of field ${startTag >>> 3}`,
        );
      }
      this.skip(tag, depth);
    }
  }

  /** Consumes `count` bytes and returns where they start; fails when they pass `end`. */
  private take(count: number): number {
    const at = this.pos;
    if (count > this.end - at) throw this.pastEnd(at, at + count, `${count} bytes`);
    this.pos = at + count;
    return at;
  }

  /** The error for an item at `start` that would run to `stop`, past `end`. */
  private pastEnd(start: number, stop: number, what: string): ConvertError {
    const code: ErrorCode = stop > this.bytes.length
      ? "BINARY_TRUNCATED"
      : "BINARY_LENGTH_PAST_END";
    const message = code === "BINARY_TRUNCATED"
      ? `the data ends inside ${what} starting at byte ${start}: the file ends at ` +
        `${this.bytes.length} bytes but needs at least ${stop}: truncated download?`
      : `${what} at byte ${start} runs past the end of its message at byte ${this.end}`;
    return new ConvertError(code, message, { offset: start });
  }

  /** A DataView of `bytes`, made on first use (most readers never read a single float). */
  private view?: DataView;

  /** The DataView of `bytes`. */
  private dataView(): DataView {
    this.view ??= new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    return this.view;
  }
}

/** A `BINARY_NOT_PROTOBUF` error at `offset`. */
function notProtobuf(offset: number, what: string): ConvertError {
  return new ConvertError("BINARY_NOT_PROTOBUF", `not protobuf: ${what} at byte ${offset}`, {
    offset,
  });
}

/** The size of a tag for field number `field`. */
export function tagSize(field: number): number {
  return varintSize(field * 8);
}

/** The varint size of a non-negative integer up to 2^53. */
export function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

/** The varint size of an int32 or int64 number: negative values take 10 bytes. */
export function signedVarintSize(value: number): number {
  return value < 0 ? MAX_VARINT_BYTES : varintSize(value);
}

/** The size of a length-delimited field: tag, length varint and payload. */
export function lengthFieldSize(field: number, payloadSize: number): number {
  return tagSize(field) + varintSize(payloadSize) + payloadSize;
}

/** The byte size of `values` written as packed int32 varints. */
export function int32sSize(values: Int32Array): number {
  let size = 0;
  for (let i = 0; i < values.length; i++) size += signedVarintSize(values[i]);
  return size;
}

/** The byte size of `values` written as packed uint64 varints. */
export function uint64sSize(values: BigUint64Array): number {
  let size = 0;
  for (let i = 0; i < values.length; i++) {
    let value = values[i];
    size++;
    while (value >= 0x80n) {
      value >>= 7n;
      size++;
    }
  }
  return size;
}

/**
 * Writes protobuf wire data into one buffer of a size computed beforehand, or through bounded
 * buffers handed out one after another ({@linkcode WireWriter.swap}).
 *
 * @example
 * ```ts
 * import { WireType, WireWriter, lengthFieldSize } from "./wire.ts";
 * const name = new TextEncoder().encode("conv1");
 * const writer = new WireWriter(lengthFieldSize(1, name.length));
 * writer.tag(1, WireType.LENGTH);
 * writer.varint(name.length);
 * writer.raw(name);
 * const bytes = writer.finish();
 * ```
 */
export class WireWriter {
  /** The buffer being written. */
  bytes: Uint8Array;
  /** Index of the next byte to write. */
  pos = 0;

  /** A writer over a new buffer of exactly `size` bytes, or over `buffer` from its start. */
  constructor(size: number | Uint8Array) {
    this.bytes = typeof size === "number" ? new Uint8Array(size) : size;
  }

  /** The bytes written into the current buffer; writing goes on at the start of `next`. */
  swap(next: Uint8Array): Uint8Array {
    const written = this.bytes.subarray(0, this.pos);
    this.bytes = next;
    this.pos = 0;
    return written;
  }

  /** Bytes left in the current buffer. */
  get room(): number {
    return this.bytes.length - this.pos;
  }

  /** Writes the tag of field `field` with wire type `wireType`. */
  tag(field: number, wireType: number): void {
    this.varint(field * 8 + wireType);
  }

  /** Writes a non-negative integer up to 2^53 as a varint. */
  varint(value: number): void {
    const b = this.bytes;
    let pos = this.pos;
    while (value >= 0x80) {
      b[pos++] = (value % 128) | 0x80;
      value = Math.floor(value / 128);
    }
    b[pos++] = value;
    this.pos = pos;
  }

  /** Writes an int32/int64 number as a varint; negative values as 10-byte two's complement. */
  signedVarint(value: number): void {
    if (value >= 0) this.varint(value);
    else this.varint64(value >>> 0, Math.floor(value / TWO_POW_32) >>> 0);
  }

  /** Writes an unsigned 64-bit bigint as a varint. */
  uint64(value: bigint): void {
    this.varint64(Number(value & 0xffffffffn), Number(value >> 32n));
  }

  /** Writes bytes as they are, with one copy. */
  raw(data: Uint8Array): void {
    this.bytes.set(data, this.pos);
    this.pos += data.length;
  }

  /** Writes the raw bytes of a typed array (little-endian elements) with one copy. */
  typedArray(data: Float32Array | Float64Array | Int8Array): void {
    this.raw(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  /** Writes `values` as packed int32 varints (no tag, no length). */
  int32s(values: Int32Array): void {
    for (let i = 0; i < values.length; i++) this.signedVarint(values[i]);
  }

  /** Writes `values` as packed uint64 varints (no tag, no length). */
  uint64s(values: BigUint64Array): void {
    for (let i = 0; i < values.length; i++) this.uint64(values[i]);
  }

  /** The filled buffer; fails when its precomputed size was wrong (a bug, not a user error). */
  finish(): Uint8Array {
    if (this.pos !== this.bytes.length) {
      throw new Error(`wire writer filled ${this.pos} of ${this.bytes.length} bytes`);
    }
    return this.bytes;
  }

  /** Writes a varint from its unsigned low and high 32-bit halves. */
  private varint64(lo: number, hi: number): void {
    this.pos = putVarint64(this.bytes, this.pos, lo, hi);
  }
}

/**
 * Puts the varint of the unsigned 64-bit value with 32-bit halves `lo` and `hi` into `bytes` at
 * `pos` (up to 10 bytes, which must fit); returns the index after it.
 */
export function putVarint64(bytes: Uint8Array, pos: number, lo: number, hi: number): number {
  lo >>>= 0;
  hi >>>= 0;
  while (hi !== 0 || lo >= 0x80) {
    bytes[pos++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  bytes[pos++] = lo;
  return pos;
}
