/**
 * Blob data that need not be a typed array yet: {@linkcode DeferredBlob} (made on first read,
 * else written straight into an output in pieces), and the element type and stored bytes of any
 * blob, found without making a deferred blob's array.
 *
 * @module
 */

import type { Blob, BlobData } from "./net.ts";

/** The element types of blob data, as stored in a caffemodel. */
export type ElementType = "float32" | "int8" | "int32" | "uint64";

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

  /**
   * True when {@linkcode DeferredBlob.writeBytes} only copies stored bytes (e.g. reads them from
   * a file) and computes nothing, so it may be called while a kernel streams the blob.
   */
  get readsStoredBytes(): boolean {
    return false;
  }

  /**
   * The stored blob this one's elements are computed from, if any (folded weights from the
   * input weights): what must be readable for {@linkcode DeferredBlob.writeBytes} to work.
   */
  get computedFrom(): Blob | undefined {
    return undefined;
  }

  /** Writes the bytes of elements [start, start + count) into `target`. */
  protected abstract produce(start: number, count: number, target: Uint8Array): void;
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

/** The number of elements of a blob's data, without making the array of a deferred blob. */
export function blobLength(blob: Blob): number {
  return blob instanceof DeferredBlob && blob.held === undefined ? blob.length : blob.data.length;
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
