/**
 * The scan of a caffemodel's wire structure down to its blobs that finds the large packed float
 * `data` fields, so that a reader can leave them where they are (a file, a `Blob`) and read
 * everything else. The scan asks for the bytes it needs as it goes (tags and lengths, a block at
 * a time), so the same scan runs over a synchronous source (a file) and an asynchronous one (a
 * `Blob` in a browser): {@linkcode scanCaffemodel} yields each read it needs and its driver fills
 * it before resuming.
 *
 * @module
 */

import {
  BLOB_DATA,
  BLOB_DOUBLE_DATA,
  LAYER_BLOBS,
  NET_LAYER,
  NET_LAYERS_V1,
  V1_LAYER_BLOBS,
} from "./caffemodel_fields.ts";
import { DeferredBlob } from "./deferred_blob.ts";
import type { Blob } from "./net.ts";

/** A blob's packed float `data` of at least this many bytes is left where it is until streamed. */
export const LARGE_DATA_BYTES = 1 << 16;

/**
 * Bytes read at a time while the structure is scanned (so at most this much of the data left
 * where it is is read too, per read).
 */
const SCAN_BLOCK_BYTES = 512;

/** Wire types (protobuf encoding). */
const VARINT = 0;
const FIXED64 = 1;
const LENGTH = 2;
const FIXED32 = 5;

/** The byte range [start, end) of a blob's float data left where it is. */
export interface DataRange {
  start: number;
  end: number;
}

/** A read the scan needs: the source's bytes at `position` into all of `target`. */
export interface ScanRead {
  position: number;
  target: Uint8Array;
}

/**
 * Scans a caffemodel of `bytes.length` bytes, reading into `bytes` (at the same offsets) what it
 * needs through the reads it yields, and returns the large float data ranges by start, or
 * undefined when it cannot follow the structure (damaged, or fields of other wire types where
 * layers and blobs are): the caller then reads the source whole. A read that fails must be
 * reported by leaving the generator; the caller then reads whole too.
 */
export function* scanCaffemodel(
  bytes: Uint8Array,
): Generator<ScanRead, Map<number, DataRange> | undefined, void> {
  const scanner = new Scanner(bytes);
  try {
    yield* scanner.top();
  } catch (error) {
    if (error instanceof ScanStop) return undefined;
    throw error;
  }
  return scanner.ranges;
}

/**
 * Runs `scan` with a synchronous `read`; undefined when the scan stops or a read throws (the
 * source is then read whole).
 */
export function scanWith(
  scan: Generator<ScanRead, Map<number, DataRange> | undefined, void>,
  read: (position: number, target: Uint8Array) => void,
): Map<number, DataRange> | undefined {
  let step = scan.next();
  while (!step.done) {
    try {
      read(step.value.position, step.value.target);
    } catch {
      return undefined;
    }
    step = scan.next();
  }
  return step.value;
}

/** The byte ranges of a source of `size` bytes outside `ranges` (what is read into memory). */
export function rangesBetween(ranges: Map<number, DataRange>, size: number): DataRange[] {
  const between: DataRange[] = [];
  let at = 0;
  for (const range of [...ranges.values(), { start: size, end: size }]) {
    if (range.start > at) between.push({ start: at, end: range.start });
    at = range.end;
  }
  return between;
}

/** Thrown when the scan cannot follow the structure. */
class ScanStop extends Error {}

/** One field seen by the scan: its number, wire type and where it and its value are. */
interface ScannedField {
  field: number;
  wireType: number;
  start: number;
  valueStart: number;
  end: number;
}

/** The walk of {@linkcode scanCaffemodel}: generators that yield the reads they need. */
class Scanner {
  readonly ranges = new Map<number, DataRange>();
  #loadedStart = 0;
  #loadedEnd = 0;

  constructor(readonly bytes: Uint8Array) {}

  /** Makes sure bytes [at, at + count) (clipped to `end`) are loaded, reading a block ahead. */
  *#ensure(at: number, count: number, end: number): Generator<ScanRead, void, void> {
    const want = Math.min(at + count, end);
    if (at >= this.#loadedStart && want <= this.#loadedEnd) return;
    const blockEnd = Math.min(end, Math.max(want, at + SCAN_BLOCK_BYTES));
    yield { position: at, target: this.bytes.subarray(at, blockEnd) };
    this.#loadedStart = at;
    this.#loadedEnd = blockEnd;
  }

  /** A varint at `at` (within `end`): its value and the offset after it. */
  *#varint(at: number, end: number): Generator<ScanRead, [number, number], void> {
    yield* this.#ensure(at, 10, end);
    let value = 0;
    let scale = 1;
    for (let p = at; p < end && p < at + 10; p++) {
      const byte = this.bytes[p];
      value += (byte & 0x7f) * scale;
      scale *= 128;
      if (byte < 0x80) return [value, p + 1];
    }
    throw new ScanStop();
  }

  /** The fields of the message at [start, end), each with its value's range (no value read). */
  *#fields(start: number, end: number): Generator<ScanRead, ScannedField[], void> {
    const fields: ScannedField[] = [];
    for (let at = start; at < end;) {
      const [tag, afterTag] = yield* this.#varint(at, end);
      const wireType = tag % 8;
      let valueStart = afterTag;
      let valueEnd: number;
      if (wireType === VARINT) valueEnd = (yield* this.#varint(afterTag, end))[1];
      else if (wireType === FIXED64) valueEnd = afterTag + 8;
      else if (wireType === FIXED32) valueEnd = afterTag + 4;
      else if (wireType === LENGTH) {
        const [length, afterLength] = yield* this.#varint(afterTag, end);
        valueStart = afterLength;
        valueEnd = afterLength + length;
      } else throw new ScanStop();
      if (valueEnd > end) throw new ScanStop();
      fields.push({ field: Math.floor(tag / 8), wireType, start: at, valueStart, end: valueEnd });
      at = valueEnd;
    }
    return fields;
  }

  /** The whole source: a `NetParameter`; its layers are scanned. */
  *top(): Generator<ScanRead, void, void> {
    for (const field of yield* this.#fields(0, this.bytes.length)) {
      const v1 = field.field === NET_LAYERS_V1;
      if (field.wireType !== LENGTH || (!v1 && field.field !== NET_LAYER)) continue;
      const blobsField = v1 ? V1_LAYER_BLOBS : LAYER_BLOBS;
      for (const member of yield* this.#fields(field.valueStart, field.end)) {
        if (member.wireType === LENGTH && member.field === blobsField) yield* this.#blob(member);
      }
    }
  }

  /** A blob message: notes the data of its one large packed `data` field, if it has one. */
  *#blob(blob: ScannedField): Generator<ScanRead, void, void> {
    const fields = yield* this.#fields(blob.valueStart, blob.end);
    const data = fields.filter((field) => field.field === BLOB_DATA);
    if (
      data.length !== 1 || data[0].wireType !== LENGTH ||
      fields.some((field) => field.field === BLOB_DOUBLE_DATA)
    ) {
      return;
    }
    const { valueStart, end } = data[0];
    const size = end - valueStart;
    if (size >= LARGE_DATA_BYTES && size % 4 === 0) {
      this.ranges.set(valueStart, { start: valueStart, end });
    }
  }
}

/**
 * The bytes of a float blob's data when they are a view on `bytes` (the array a caffemodel was
 * read from), else undefined.
 */
export function viewOn(blob: Blob, bytes: Uint8Array): Uint8Array | undefined {
  const view = blob instanceof DeferredBlob
    ? blob.held === undefined ? blob.storedBytes() : undefined
    : blob.data instanceof Float32Array
    ? new Uint8Array(blob.data.buffer, blob.data.byteOffset, blob.data.byteLength)
    : undefined;
  return view !== undefined && view.buffer === bytes.buffer ? view : undefined;
}
