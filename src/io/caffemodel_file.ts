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
import {
  type DataRange,
  LARGE_DATA_BYTES,
  rangesBetween,
  scanCaffemodel,
  scanWith,
  viewOn,
} from "../caffe/caffemodel_scan.ts";
import { DeferredBlob } from "../caffe/deferred_blob.ts";
import type { Net } from "../caffe/net.ts";
import { ConvertError } from "../errors.ts";
import { inputError, openInput } from "./files.ts";

/** A blob's packed float `data` of at least this many bytes stays in the file until streamed. */
export const FILE_DATA_BYTES = LARGE_DATA_BYTES;

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
    let ranges = new Map<number, DataRange>();
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
      ranges = scanWith(scanCaffemodel(bytes), read) ?? new Map();
      // Everything between the data ranges, in as few reads as there are ranges (synchronous, as
      // the data's: a few kilobytes each, where a thread pool's round trip costs more).
      for (const { start, end } of rangesBetween(ranges, size)) {
        read(start, bytes.subarray(start, end));
      }
    }
    return {
      bytes,
      deferBlobs(net) {
        for (const layer of net.layers) {
          layer.blobs = layer.blobs.map((blob) => {
            const view = viewOn(blob, bytes);
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
