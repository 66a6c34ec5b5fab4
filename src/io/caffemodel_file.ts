/**
 * A caffemodel file read without holding its weights: everything but the large float `data`
 * fields of its blobs is read into a file-sized array at the offsets it has in the file (the
 * pages of the parts left out are never touched, so they take no memory), the caffemodel reader
 * parses that array as it would the whole file, and the blobs whose data was left out become
 * blobs that read their bytes from the file, range by range, when the kernels and the writers
 * stream them. A file that changes while it is open is refused (`INPUT_UNREADABLE`) before any
 * output is moved into place.
 *
 * @module
 */

import { readSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import {
  BLOB_DATA,
  BLOB_DOUBLE_DATA,
  LAYER_BLOBS,
  NET_LAYER,
  NET_LAYERS_V1,
  V1_LAYER_BLOBS,
} from "../caffe/caffemodel_fields.ts";
import { DeferredBlob } from "../caffe/deferred_blob.ts";
import type { Blob, Net } from "../caffe/net.ts";
import { ConvertError } from "../errors.ts";
import { inputError, openInput } from "./files.ts";

/** A blob's packed float `data` of at least this many bytes stays in the file until streamed. */
export const FILE_DATA_BYTES = 1 << 16;

/**
 * Bytes read at a time while the structure is scanned (so at most this much of the data left in
 * the file is read into memory too).
 */
const SCAN_BLOCK_BYTES = 512;

/** Wire types (protobuf encoding). */
const VARINT = 0;
const FIXED64 = 1;
const LENGTH = 2;
const FIXED32 = 5;

/** A caffemodel file opened by {@linkcode openCaffemodel}. */
export interface CaffemodelFile {
  /**
   * The file's bytes at their offsets, except the float data {@linkcode deferBlobs} reads from
   * the file (zeros there): for the caffemodel reader.
   */
  bytes: Uint8Array;
  /**
   * Replaces, in the layers of `net` (loaded from {@linkcode bytes}), each blob whose data was
   * left in the file by a blob that reads it from the file.
   */
  deferBlobs(net: Net): void;
  /** Rejects with `INPUT_UNREADABLE` when the file changed since it was opened. */
  checkUnchanged(): Promise<void>;
  /** Closes the file. */
  close(): Promise<void>;
}

/** The byte range of a blob's float data left in the file. */
interface DataRange {
  start: number;
  end: number;
}

/** Float data of a caffemodel blob that stays in its file: read range by range when streamed. */
class FileFloats extends DeferredBlob {
  readonly #read: (position: number, target: Uint8Array) => void;
  readonly #start: number;

  constructor(
    shape: number[],
    read: (position: number, target: Uint8Array) => void,
    start: number,
  ) {
    super(shape);
    this.#read = read;
    this.#start = start;
  }

  override get readsStoredBytes(): boolean {
    return true;
  }

  protected produce(start: number, count: number, target: Uint8Array): void {
    this.#read(this.#start + start * 4, target.subarray(0, count * 4));
  }
}

/**
 * Opens the caffemodel at `path` (noted as an input, errors as `readInput`'s) and reads all of it
 * except the packed float `data` of blobs that have one such field of at least
 * {@linkcode FILE_DATA_BYTES} bytes (and no `double_data`). A file whose structure the scan does
 * not follow (damaged, or fields of other wire types where layers and blobs are) is read whole,
 * for the caffemodel reader to report or read; so is a file that is not a regular file (a pipe).
 */
export async function openCaffemodel(path: string): Promise<CaffemodelFile> {
  const { handle, stat } = await openInput(path);
  try {
    const fd = handle.fd;
    const changed = () =>
      new ConvertError(
        "INPUT_UNREADABLE",
        "the file changed while it was being converted; nothing was written (convert again)",
        { file: path },
      );
    /** Reads all of `target` from the file at `position` (a short file has changed). */
    const read = (position: number, target: Uint8Array) => {
      for (let done = 0; done < target.length;) {
        const count = readSync(fd, target, done, target.length - done, position + done);
        if (count === 0) throw changed();
        done += count;
      }
    };
    const regular = stat.isFile();
    const ranges = new Map<number, DataRange>();
    let bytes: Uint8Array;
    if (!regular) {
      // A pipe or device has no size to scan: read whole, as readInput reads it.
      const whole = await handle.readFile().catch((error) => {
        throw inputError(path, error);
      });
      bytes = new Uint8Array(whole.buffer, whole.byteOffset, whole.byteLength);
    } else {
      const size = Number(stat.size);
      bytes = new Uint8Array(size);
      try {
        new Scanner(bytes, ranges, read).top();
      } catch (error) {
        if (!(error instanceof ScanStop)) throw error;
        ranges.clear();
      }
      // Everything between the data ranges, in as few reads as there are ranges.
      let at = 0;
      for (const range of [...ranges.values(), { start: size, end: size }]) {
        await readRange(handle, bytes, at, range.start, changed);
        at = range.end;
      }
    }
    return {
      bytes,
      deferBlobs(net) {
        for (const layer of net.layers) {
          layer.blobs = layer.blobs.map((blob) => {
            const view = blobView(blob, bytes);
            const range = view && ranges.get(view.byteOffset);
            if (range === undefined || range.end !== view!.byteOffset + view!.byteLength) {
              return blob;
            }
            return new FileFloats(blob.shape, read, range.start);
          });
        }
      },
      async checkUnchanged() {
        if (!regular) return;
        const now = await handle.stat({ bigint: true });
        if (now.size !== stat.size || now.mtimeNs !== stat.mtimeNs) throw changed();
      },
      close: () => handle.close(),
    };
  } catch (error) {
    await handle.close().catch(() => {});
    throw error;
  }
}

/** Reads the file's bytes [start, end) into `bytes` at the same offsets. */
async function readRange(
  handle: FileHandle,
  bytes: Uint8Array,
  start: number,
  end: number,
  changed: () => ConvertError,
): Promise<void> {
  for (let at = start; at < end;) {
    const { bytesRead } = await handle.read(bytes, at, end - at, at);
    if (bytesRead === 0) throw changed();
    at += bytesRead;
  }
}

/** The bytes of a float blob's data when they are a view on `bytes`, else undefined. */
function blobView(blob: Blob, bytes: Uint8Array): Uint8Array | undefined {
  const view = blob instanceof DeferredBlob
    ? blob.held === undefined ? blob.storedBytes() : undefined
    : blob.data instanceof Float32Array
    ? new Uint8Array(blob.data.buffer, blob.data.byteOffset, blob.data.byteLength)
    : undefined;
  return view !== undefined && view.buffer === bytes.buffer ? view : undefined;
}

/** Thrown when the scan cannot follow the structure: the file is then read whole. */
class ScanStop extends Error {}

/** One field seen by the scan: its number, wire type and where it and its value are. */
interface ScannedField {
  field: number;
  wireType: number;
  start: number;
  valueStart: number;
  end: number;
}

/**
 * Walks the wire structure of a caffemodel down to its blobs and notes in `ranges` (by start) the
 * float data to leave in the file. It reads the file block by block into `bytes` (at the same
 * offsets) as it needs the tags and lengths; the rest is read afterwards.
 */
class Scanner {
  #loadedStart = 0;
  #loadedEnd = 0;

  constructor(
    readonly bytes: Uint8Array,
    readonly ranges: Map<number, DataRange>,
    readonly read: (position: number, target: Uint8Array) => void,
  ) {}

  /** Makes sure bytes [at, at + count) (clipped to `end`) are loaded, reading a block ahead. */
  #ensure(at: number, count: number, end: number): void {
    const want = Math.min(at + count, end);
    if (at >= this.#loadedStart && want <= this.#loadedEnd) return;
    const blockEnd = Math.min(end, Math.max(want, at + SCAN_BLOCK_BYTES));
    try {
      this.read(at, this.bytes.subarray(at, blockEnd));
    } catch {
      throw new ScanStop();
    }
    this.#loadedStart = at;
    this.#loadedEnd = blockEnd;
  }

  /** A varint at `at` (within `end`): its value and the offset after it. */
  #varint(at: number, end: number): [number, number] {
    this.#ensure(at, 10, end);
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
  #fields(start: number, end: number): ScannedField[] {
    const fields: ScannedField[] = [];
    for (let at = start; at < end;) {
      const [tag, afterTag] = this.#varint(at, end);
      const wireType = tag % 8;
      let valueStart = afterTag;
      let valueEnd: number;
      if (wireType === VARINT) valueEnd = this.#varint(afterTag, end)[1];
      else if (wireType === FIXED64) valueEnd = afterTag + 8;
      else if (wireType === FIXED32) valueEnd = afterTag + 4;
      else if (wireType === LENGTH) {
        const [length, afterLength] = this.#varint(afterTag, end);
        valueStart = afterLength;
        valueEnd = afterLength + length;
      } else throw new ScanStop();
      if (valueEnd > end) throw new ScanStop();
      fields.push({ field: Math.floor(tag / 8), wireType, start: at, valueStart, end: valueEnd });
      at = valueEnd;
    }
    return fields;
  }

  /** The whole file: a `NetParameter`; its layers are scanned. */
  top(): void {
    for (const field of this.#fields(0, this.bytes.length)) {
      const v1 = field.field === NET_LAYERS_V1;
      if (field.wireType !== LENGTH || (!v1 && field.field !== NET_LAYER)) continue;
      const blobsField = v1 ? V1_LAYER_BLOBS : LAYER_BLOBS;
      for (const member of this.#fields(field.valueStart, field.end)) {
        if (member.wireType === LENGTH && member.field === blobsField) this.#blob(member);
      }
    }
  }

  /** A blob message: notes the data of its one large packed `data` field, if it has one. */
  #blob(blob: ScannedField): void {
    const fields = this.#fields(blob.valueStart, blob.end);
    const data = fields.filter((field) => field.field === BLOB_DATA);
    if (
      data.length !== 1 || data[0].wireType !== LENGTH ||
      fields.some((field) => field.field === BLOB_DOUBLE_DATA)
    ) {
      return;
    }
    const { valueStart, end } = data[0];
    const size = end - valueStart;
    if (size >= FILE_DATA_BYTES && size % 4 === 0) {
      this.ranges.set(valueStart, { start: valueStart, end });
    }
  }
}
