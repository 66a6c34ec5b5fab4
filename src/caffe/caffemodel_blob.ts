/**
 * A caffemodel given as a web `Blob` (a `File` from a file input, a fetched `Response.blob()`),
 * read without holding its weights in the page: everything but the large float `data` fields
 * ({@linkcode LARGE_DATA_BYTES} or more) of the weights of Convolution, Deconvolution and
 * InnerProduct layers is read into a Blob-sized array at its offsets (pages never written take no
 * memory); those weights stay in the Blob (a browser keeps Blob data out of the page) and are read
 * layer by layer, when {@linkcode CaffemodelBlob.prepare} is awaited before a layer is quantized
 * or written, and dropped at the next layer. A `Blob` reads only asynchronously in a page, which
 * is why the reads are prepared rather than made when the kernels stream the bytes. In a
 * dedicated worker (where the web page converts) `FileReaderSync` reads a Blob synchronously:
 * there the kernels read the weights as they stream them, {@linkcode SYNC_READ_BYTES} at a
 * time, and no layer's weights are ever held whole.
 *
 * @module
 */

import { type DataRange, rangesBetween, scanCaffemodel, viewOn } from "./caffemodel_scan.ts";
import { DeferredBlob } from "./deferred_blob.ts";
import type { Blob as NetBlob, Layer, Net } from "./net.ts";

/**
 * Bytes a `Blob` read brings in at least while the structure is read: each read costs a round
 * trip to where the browser keeps the data, and the scan's small reads go forward, mostly near
 * each other, so they are served from the last such window.
 */
const WINDOW_BYTES = 1 << 16;

/**
 * Bytes each synchronous read of weights brings in at least (when the Blob can be read so): the
 * kernels stream a tensor in order, in chunks of 256 KiB, served from the last read. Each read is
 * a round trip to where the browser keeps the Blob: VGG-16 converted in 4.4 s with reads of 1 MiB,
 * 2.8 s with 4 MiB and 2.3 s with 16 MiB (2.1 s reading each layer whole), the peak the same.
 */
export const SYNC_READ_BYTES = 1 << 24;

/** Reads bytes [start, end) of a Blob synchronously. */
export type SyncBlobRead = (source: Blob, start: number, end: number) => Uint8Array;

/** `FileReaderSync` as far as this module uses it (dedicated workers have it; pages do not). */
interface FileReaderSyncLike {
  readAsArrayBuffer(blob: Blob): ArrayBuffer;
}

/** A synchronous Blob reader where this runtime has one (`FileReaderSync`), else undefined. */
export function syncBlobRead(): SyncBlobRead | undefined {
  const Reader = (globalThis as { FileReaderSync?: new () => FileReaderSyncLike }).FileReaderSync;
  if (Reader === undefined) return undefined;
  const reader = new Reader();
  return (source, start, end) => new Uint8Array(reader.readAsArrayBuffer(source.slice(start, end)));
}

/** Layer types whose weights (blob 0) may stay in the Blob: only quantization and writers read them. */
const WEIGHT_LAYER_TYPES = new Set(["Convolution", "Deconvolution", "InnerProduct"]);

/** A caffemodel `Blob` opened by {@linkcode openCaffemodelBlob}. */
export interface CaffemodelBlob {
  /** The Blob's bytes at their offsets, except large float data (zeros there until `loaded`). */
  bytes: Uint8Array;
  /**
   * Once `net` is loaded from {@linkcode CaffemodelBlob.bytes}: replaces each layer weight blob
   * whose data was left in the Blob by a blob read when prepared, and reads the other large data
   * into `bytes`.
   */
  loaded(net: Net): Promise<void>;
  /**
   * Reads the data of the blobs among `blobs` (or those they are computed from) left in the Blob
   * (unless they are read synchronously when wanted), and drops the data read for the previous
   * call. Their elements are readable until the next call.
   */
  prepare(blobs: readonly NetBlob[]): Promise<void>;
}

/**
 * Weights left in the caffemodel `Blob`: read whole by `load()` and readable until the next
 * `drop()`; or, given a synchronous reader, read as they are wanted, through a window of at least
 * {@linkcode SYNC_READ_BYTES}.
 */
class BlobFloats extends DeferredBlob {
  readonly #source: Blob;
  readonly #start: number;
  readonly #readSync: SyncBlobRead | undefined;
  /** The bytes read: all of them after `load()`, else a window of them at #bytesStart. */
  #bytes: Uint8Array | undefined;
  #bytesStart = 0;

  constructor(shape: number[], source: Blob, start: number, readSync: SyncBlobRead | undefined) {
    super(shape);
    this.#source = source;
    this.#start = start;
    this.#readSync = readSync;
  }

  override get readsStoredBytes(): boolean {
    return true;
  }

  /** Reads the elements' bytes from the Blob (nothing to do when they can be read when wanted). */
  async load(): Promise<void> {
    if (this.#readSync !== undefined || this.#bytes !== undefined) return;
    const end = this.#start + this.length * 4;
    this.#bytes = new Uint8Array(await this.#source.slice(this.#start, end).arrayBuffer());
    this.#bytesStart = 0;
  }

  /** Forgets the bytes read. */
  drop(): void {
    this.#bytes = undefined;
  }

  protected produce(start: number, count: number, target: Uint8Array): void {
    const [from, to] = [start * 4, (start + count) * 4];
    const held = this.#bytes;
    const inside = held !== undefined && from >= this.#bytesStart &&
      to <= this.#bytesStart + held.length;
    if (!inside) this.#readWindow(from, to);
    const bytes = this.#bytes!;
    target.set(bytes.subarray(from - this.#bytesStart, to - this.#bytesStart));
  }

  /** Reads the window that holds bytes [from, to) of the elements. */
  #readWindow(from: number, to: number): void {
    if (this.#readSync === undefined) {
      throw new Error("caffemodel Blob: weights read before prepare() (a bug)");
    }
    const end = Math.min(this.length * 4, Math.max(to, from + SYNC_READ_BYTES));
    this.#bytes = this.#readSync(this.#source, this.#start + from, this.#start + end);
    this.#bytesStart = from;
  }
}

/**
 * Opens the caffemodel `source` (see the module documentation), its weights read with `readSync`
 * when given (by default `FileReaderSync` where the runtime has it). A Blob whose structure the
 * scan does not follow is read whole, for the caffemodel reader to report or read.
 */
export async function openCaffemodelBlob(
  source: Blob,
  readSync: SyncBlobRead | undefined = syncBlobRead(),
): Promise<CaffemodelBlob> {
  const bytes = new Uint8Array(source.size);
  let window = new Uint8Array(0);
  let windowStart = 0;
  /** Reads bytes [start, start + target.length) into `target`, through the window. */
  const read = async (start: number, target: Uint8Array) => {
    const end = start + target.length;
    if (start < windowStart || end > windowStart + window.length) {
      const windowEnd = Math.min(source.size, Math.max(end, start + WINDOW_BYTES));
      window = new Uint8Array(await source.slice(start, windowEnd).arrayBuffer());
      windowStart = start;
    }
    target.set(window.subarray(start - windowStart, end - windowStart));
  };
  const scan = scanCaffemodel(bytes);
  let ranges: Map<number, DataRange> | undefined;
  for (let step = scan.next();; step = scan.next()) {
    if (step.done) {
      ranges = step.value;
      break;
    }
    await read(step.value.position, step.value.target);
  }
  ranges ??= new Map();
  for (const { start, end } of rangesBetween(ranges, bytes.length)) {
    await read(start, bytes.subarray(start, end));
  }
  window = new Uint8Array(0);
  let prepared: BlobFloats[] = [];
  return {
    bytes,
    async loaded(net) {
      const left = new Map(ranges);
      for (const layer of net.layers) {
        const blob = layer.blobs[0];
        const range = blob === undefined ? undefined : dataRange(layer, left);
        if (range === undefined) continue;
        const floats = new BlobFloats(blob.shape, source, range.start, readSync);
        layer.blobs = [floats, ...layer.blobs.slice(1)];
        left.delete(range.start);
      }
      for (const { start, end } of left.values()) await read(start, bytes.subarray(start, end));
    },
    async prepare(blobs) {
      const wanted = new Set<BlobFloats>();
      for (const blob of blobs) {
        const stored = blob instanceof DeferredBlob ? blob.computedFrom ?? blob : blob;
        if (stored instanceof BlobFloats) wanted.add(stored);
      }
      for (const blob of prepared) if (!wanted.has(blob)) blob.drop();
      prepared = [...wanted];
      for (const blob of prepared) await blob.load();
    },
  };

  /** The range left in the Blob that holds `layer`'s weights, if its type allows it. */
  function dataRange(layer: Layer, left: Map<number, DataRange>): DataRange | undefined {
    if (!WEIGHT_LAYER_TYPES.has(layer.type)) return undefined;
    const view = viewOn(layer.blobs[0], bytes);
    if (view === undefined) return undefined;
    const range = left.get(view.byteOffset);
    return range?.end === view.byteOffset + view.byteLength ? range : undefined;
  }
}
