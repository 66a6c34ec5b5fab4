/**
 * A `.npy` file's rows (its arrays along axis 0) read a few at a time into memory that is used
 * again once released, so a batch of any size is read without holding
 * it whole, and without the fresh pages a whole-file read touches (on this project's VM each 4 KiB
 * page first touched costs ~12 µs: reading a 61 MB batch at once took 240 ms, through reused
 * memory 8 ms).
 *
 * @module
 */

import type { Tensor } from "../engine/tensor.ts";
import { ConvertError } from "../errors.ts";
import { inputError, openInput } from "./files.ts";
import { npyDataStart, npyLayout, npyValuesInto } from "./npy.ts";

/** Bytes a read aims at: rows are read together up to this size (at least one row). */
const CHUNK_BYTES = 1 << 20;

/** Chunk buffers kept for reuse once all their rows are released. */
const SPARE_CHUNKS = 4;

/** Consecutive rows of a `.npy` file, read together. */
export interface NpyRows {
  /** The first row's index on axis 0. */
  first: number;
  /** The rows, of shape `[n, …]` (the file's shape with n rows). */
  tensor: Tensor;
  /**
   * Says the rows are no longer needed, so their memory may hold later rows (`tensor.data` may
   * change after it). Optional: memory not released is left to the garbage collector.
   */
  release(): void;
}

/** An open `.npy` file whose rows are read on demand. */
export interface NpyRowFile {
  /** The file's shape. */
  readonly shape: number[];
  /**
   * The rows in order, read up to 1 MiB (at least one row) at a time when asked for, then the
   * file is closed. Read errors are `INPUT_UNREADABLE` naming the file.
   */
  rows(): AsyncGenerator<NpyRows>;
  /** Closes the file without reading its rows. */
  close(): Promise<void>;
}

/** Memory for a read's rows: the values, and the bytes read into (the values' own for `<f4`). */
interface Chunk {
  bytes: Uint8Array;
  values: Float32Array;
}

/**
 * Opens the `.npy` file at `path` (noted as an input, as `readInput` notes it) and checks its
 * header and size as `readNpy` does (`NPY_FORMAT`). A file of rank 0 has no rows.
 */
export async function openNpyRows(path: string): Promise<NpyRowFile> {
  const { handle, stat } = await openInput(path);
  try {
    const size = Number(stat.size);
    const readAt = async (bytes: Uint8Array, position: number) => {
      let done = 0;
      while (done < bytes.length) {
        const { bytesRead } = await handle.read(bytes, done, bytes.length - done, position + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return bytes.subarray(0, done);
    };
    let head = await readAt(new Uint8Array(Math.min(size, 4096)), 0);
    const dataStart = npyDataStart(head, path);
    if (dataStart > head.length && dataStart <= size) {
      head = await readAt(new Uint8Array(dataStart), 0);
    }
    const { shape, itemSize } = npyLayout(head, size, path);
    const rowValues = shape.slice(1).reduce((total, n) => total * n, 1);
    const rowBytes = rowValues * itemSize;
    const perChunk = Math.max(1, Math.floor(CHUNK_BYTES / Math.max(1, rowBytes)));
    // Values read in place: `<f4` on a little-endian host (otherwise converted from bytes of
    // their own).
    const inPlace = itemSize === 4 && new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
    const spare: Chunk[] = [];
    const chunkFor = (rows: number): Chunk => {
      const found = spare.findIndex((chunk) => chunk.values.length >= rows * rowValues);
      if (found >= 0) return spare.splice(found, 1)[0];
      const values = new Float32Array(perChunk * rowValues);
      const bytes = inPlace ? new Uint8Array(values.buffer) : new Uint8Array(perChunk * rowBytes);
      return { bytes, values };
    };
    const rows = async function* (): AsyncGenerator<NpyRows> {
      try {
        for (let first = 0; first < shape[0]; first += perChunk) {
          const count = Math.min(perChunk, shape[0] - first);
          const chunk = chunkFor(count);
          const raw = await readAt(
            chunk.bytes.subarray(0, count * rowBytes),
            dataStart + first * rowBytes,
          );
          if (raw.length < count * rowBytes) {
            throw inputError(path, new Error("the file became shorter while it was read"));
          }
          const values = chunk.values.subarray(0, count * rowValues);
          if (!inPlace) npyValuesInto(raw, itemSize, values);
          let released = false;
          yield {
            first,
            tensor: { shape: [count, ...shape.slice(1)], data: values },
            release: () => {
              if (released) return;
              released = true;
              if (spare.length < SPARE_CHUNKS) spare.push(chunk);
            },
          };
        }
      } catch (error) {
        throw error instanceof ConvertError ? error : inputError(path, error);
      } finally {
        await handle.close().catch(() => {});
      }
    };
    return { shape, rows, close: () => handle.close().catch(() => {}) };
  } catch (error) {
    await handle.close().catch(() => {});
    throw error;
  }
}
