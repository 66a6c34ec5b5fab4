/**
 * The one loader of caffe-quant's WebAssembly modules, and the scratch memory both modules share
 * as a scheme (each module has its own memory).
 *
 * Memory scheme: a module's exported memory starts at its compiled size (no runtime, no heap);
 * everything above is scratch owned by JavaScript. A typed wrapper calls {@linkcode
 * WasmInstance.reset} at the start of each call, takes regions with {@linkcode
 * WasmInstance.alloc} / {@linkcode WasmInstance.copyIn} (16-byte aligned, growing the memory
 * when needed), runs its kernel on the offsets, and copies results out with {@linkcode
 * WasmInstance.copyOut}. Regions are reused by the next call; memory never shrinks. Offset 0 is
 * never handed out, so kernels may read 0 as "absent". Growing the memory detaches earlier views
 * of it, so views are made fresh after the last `alloc` of a call. Below the scratch, regions
 * taken with {@linkcode WasmInstance.keep} outlive calls (e.g. weights kept resident, see
 * src/wasm/resident.ts) until {@linkcode WasmInstance.release}.
 *
 * Works wherever `WebAssembly` and `atob` exist: Deno, Node 20+, browsers (main thread and
 * workers) and edge runtimes that allow compiling WebAssembly from bytes.
 *
 * @module
 */

/** A typed array the scratch memory can hold. */
export type ScratchArray =
  | Int8Array
  | Uint8Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigUint64Array;

/** A typed-array constructor, as used by {@linkcode WasmInstance.copyOut}. */
export interface ScratchArrayType<T extends ScratchArray> {
  /** A view of `length` elements of `buffer` from byte `byteOffset`. */
  new (buffer: ArrayBuffer, byteOffset: number, length: number): T;
  /** Bytes per element. */
  readonly BYTES_PER_ELEMENT: number;
}

const PAGE_BYTES = 65536;
const ALIGN_BYTES = 16;

function alignUp(value: number): number {
  return Math.ceil(value / ALIGN_BYTES) * ALIGN_BYTES;
}

/** Views of a whole memory buffer. */
interface MemoryViews {
  buffer: ArrayBuffer;
  bytes: Uint8Array;
  floats: Float32Array;
  ints: Int32Array;
}

function memoryViews(buffer: ArrayBuffer): MemoryViews {
  const ints = new Int32Array(buffer);
  return { buffer, bytes: new Uint8Array(buffer), floats: new Float32Array(buffer), ints };
}

/** An instantiated module with its exported memory and a bump allocator for scratch regions. */
export class WasmInstance {
  /** The module's exports (functions taking byte offsets into {@linkcode memory}). */
  readonly exports: WebAssembly.Exports;
  /** The module's exported, growable memory. */
  readonly memory: WebAssembly.Memory;
  readonly #base: number;
  /** Views of the whole memory, made again when it grows (growing detaches them). */
  #views = memoryViews(new ArrayBuffer(0));
  /** The end of the reserved region (see {@linkcode reserve}): where kept regions start. */
  #reserved: number;
  /** The end of the kept regions: where scratch starts. */
  #kept: number;
  #top: number;

  /** Wraps an instance whose memory is exported as `memory`. */
  constructor(instance: WebAssembly.Instance) {
    const memory = instance.exports.memory;
    if (!(memory instanceof WebAssembly.Memory)) {
      throw new Error("the WebAssembly module does not export its memory as `memory`");
    }
    this.exports = instance.exports;
    this.memory = memory;
    this.#base = alignUp(Math.max(memory.buffer.byteLength, ALIGN_BYTES));
    this.#reserved = this.#base;
    this.#kept = this.#base;
    this.#top = this.#base;
  }

  /** Whether the memory is shared: views of it stay valid when it grows. */
  get shared(): boolean {
    return typeof SharedArrayBuffer === "function" &&
      this.memory.buffer instanceof SharedArrayBuffer;
  }

  /**
   * Sets aside `byteLength` bytes at the bottom of the memory, below the kept regions, that no
   * call takes (e.g. the engine's output arena in a shared memory); returns its offset. Only while
   * nothing is kept nor taken ({@linkcode release} first); it stays until set again.
   */
  reserve(byteLength: number): number {
    if (this.#kept !== this.#reserved || this.#top !== this.#kept) {
      throw new Error("reserve() while regions are kept or taken");
    }
    this.#top = this.#base;
    const at = this.alloc(byteLength);
    this.#reserved = this.#top;
    this.#kept = this.#top;
    return at;
  }

  /** Frees every scratch region (start of a call); kept regions stay. */
  reset(): void {
    this.#top = this.#kept;
  }

  /** Bytes of the kept regions. */
  get keptBytes(): number {
    return this.#kept - this.#reserved;
  }

  /**
   * Takes a 16-byte-aligned region of `byteLength` bytes that later calls' scratch leaves alone,
   * until {@linkcode release}; returns its offset. Only while no scratch is taken (right after
   * {@linkcode reset}), as scratch lies above the kept regions.
   */
  keep(byteLength: number): number {
    if (!this.canKeep) throw new Error("keep() while scratch regions are taken");
    const offset = this.alloc(byteLength);
    this.#kept = this.#top;
    return offset;
  }

  /** Whether {@linkcode keep} may be called now: no scratch region is taken. */
  get canKeep(): boolean {
    return this.#top === this.#kept;
  }

  /** Frees every kept region and every scratch region (the reserved region stays). */
  release(): void {
    this.#kept = this.#reserved;
    this.#top = this.#reserved;
  }

  /** Takes a 16-byte-aligned region of `byteLength` bytes; returns its offset. Grows the memory. */
  alloc(byteLength: number): number {
    const offset = this.#top;
    const end = alignUp(offset + byteLength);
    const size = this.memory.buffer.byteLength;
    if (end > size) {
      const pages = Math.ceil((end - size) / PAGE_BYTES);
      try {
        this.memory.grow(pages);
      } catch (cause) {
        throw new Error(`WebAssembly memory cannot grow to ${end} bytes`, { cause });
      }
    }
    this.#top = end;
    return offset;
  }

  /** Allocates room for `values` and copies them in with one `.set`; returns the offset. */
  copyIn(values: ScratchArray): number {
    const offset = this.alloc(values.byteLength);
    this.write(offset, values);
    return offset;
  }

  /** Copies `values` to the region at `offset` (taken already) with one `.set`. */
  write(offset: number, values: ScratchArray): void {
    const views = this.#current();
    if (values instanceof Float32Array && (offset & 3) === 0) {
      views.floats.set(values, offset >>> 2);
    } else {
      views.bytes.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), offset);
    }
  }

  /**
   * The whole memory as float32 (index = byte offset / 4), kept between calls; valid until the
   * memory next grows (read it after the call's last `alloc`).
   */
  get floats(): Float32Array {
    return this.#current().floats;
  }

  /** The whole memory as int32 (index = byte offset / 4); valid as {@linkcode floats}. */
  get ints(): Int32Array {
    return this.#current().ints;
  }

  /** The views of the memory's current buffer. */
  #current(): MemoryViews {
    const buffer = this.memory.buffer as ArrayBuffer;
    if (this.#views.buffer !== buffer) this.#views = memoryViews(buffer);
    return this.#views;
  }

  /** A live view of `length` elements at `offset` (valid until the memory next grows). */
  view<T extends ScratchArray>(type: ScratchArrayType<T>, offset: number, length: number): T {
    return new type(this.memory.buffer as ArrayBuffer, offset, length);
  }

  /** A copy of `length` elements at `offset`, made with one `.slice`. */
  copyOut<T extends ScratchArray>(type: ScratchArrayType<T>, offset: number, length: number): T {
    return this.view(type, offset, length).slice() as T;
  }
}

/** The runtime's own base64 decoders, where it has them. */
const nativeBase64 = globalThis as {
  Uint8Array: { fromBase64?: (text: string) => Uint8Array<ArrayBuffer> };
  Buffer?: { from(text: string, encoding: "base64"): Uint8Array };
};

/**
 * Bytes of standard base64 text: with `Uint8Array.fromBase64` where the runtime has it (Deno,
 * current browsers), Node's `Buffer`, else `atob` (every supported runtime) and a loop, which
 * takes ~8 ms for the engine's 117 KB module in a fresh process against well under 1.
 */
export function decodeBase64(base64: string): Uint8Array<ArrayBuffer> {
  // Called on the constructor (its `this`), typed locally: not every TypeScript library has it.
  const typed = nativeBase64.Uint8Array;
  if (typed.fromBase64 !== undefined) return typed.fromBase64(base64);
  const { Buffer } = nativeBase64;
  if (Buffer !== undefined) return new Uint8Array(Buffer.from(base64, "base64"));
  const binaryText = atob(base64);
  const bytes = new Uint8Array(binaryText.length);
  for (let index = 0; index < binaryText.length; index++) {
    bytes[index] = binaryText.charCodeAt(index);
  }
  return bytes;
}

/** Imports every module gets: AssemblyScript's `env.abort`, raised as an Error. */
const IMPORTS: WebAssembly.Imports = {
  env: {
    abort(_message: number, _file: number, line: number, column: number): never {
      throw new Error(`WebAssembly kernel aborted at ${line}:${column}`);
    },
  },
};

/**
 * Compiles and instantiates a base64-encoded module (asynchronously, so browsers allow it). With
 * `shared`, its memory is made shared (see {@linkcode sharedMemoryModule}) where the runtime allows
 * it (Deno, Node; browsers only cross-origin isolated), so that views of it survive its growth;
 * elsewhere, or if that fails, the module is instantiated as it is.
 */
export async function instantiate(base64: string, shared = false): Promise<WasmInstance> {
  const bytes = decodeBase64(base64);
  if (shared && typeof SharedArrayBuffer === "function") {
    const patched = sharedMemoryModule(bytes);
    if (patched !== undefined) {
      try {
        const { instance } = await WebAssembly.instantiate(patched, IMPORTS);
        return new WasmInstance(instance);
      } catch {
        // Shared memory refused (e.g. a browser page that is not cross-origin isolated).
      }
    }
  }
  const { instance } = await WebAssembly.instantiate(bytes, IMPORTS);
  return new WasmInstance(instance);
}

/** Pages of 64 KiB a shared memory may grow to: all of wasm32's 4 GiB. */
const SHARED_MAXIMUM_PAGES = 65536;

/**
 * `module`'s bytes with its one defined memory declared shared, with a maximum of 4 GiB (a shared
 * memory needs one); undefined when the module does not define exactly one memory. A shared
 * memory never moves: growing it leaves the views of its earlier buffers valid.
 */
export function sharedMemoryModule(module: Uint8Array): Uint8Array<ArrayBuffer> | undefined {
  let at = 8; // magic and version
  while (at < module.length) {
    const id = module[at];
    const [size, sizeEnd] = readLeb(module, at + 1);
    const end = sizeEnd + size;
    if (id === 5) {
      const [count, limitsAt] = readLeb(module, sizeEnd);
      const flags = module[limitsAt];
      if (count !== 1 || (flags !== 0 && flags !== 1)) return undefined;
      const [minimum, minimumEnd] = readLeb(module, limitsAt + 1);
      const limitsEnd = flags === 1 ? readLeb(module, minimumEnd)[1] : minimumEnd;
      if (limitsEnd !== end) return undefined;
      const body = [1, 3, ...lebBytes(minimum), ...lebBytes(SHARED_MAXIMUM_PAGES)];
      const header = [5, ...lebBytes(body.length)];
      const patched = new Uint8Array(module.length - (end - at) + header.length + body.length);
      patched.set(module.subarray(0, at));
      patched.set(header, at);
      patched.set(body, at + header.length);
      patched.set(module.subarray(end), at + header.length + body.length);
      return patched;
    }
    at = end;
  }
  return undefined;
}

/** The unsigned LEB128 number at `at` and the offset after it. */
function readLeb(bytes: Uint8Array, at: number): [number, number] {
  let value = 0;
  let scale = 1;
  let next = at;
  for (;;) {
    const byte = bytes[next++];
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, next];
    scale *= 128;
  }
}

/** The unsigned LEB128 bytes of `value`. */
function lebBytes(value: number): number[] {
  const bytes: number[] = [];
  let rest = value;
  do {
    const low = rest % 128;
    rest = Math.floor(rest / 128);
    bytes.push(rest > 0 ? low | 0x80 : low);
  } while (rest > 0);
  return bytes;
}

/**
 * A loader that instantiates a base64-encoded module once and binds its kernels with `bind`;
 * every call shares the result, and a failed instantiation is retried on the next call. `base64`
 * gives the module's text, from the generated file imported on first use (`import()`): a program
 * that never runs a module's kernels does not load its text (the engine's builds are 150 KB
 * each), so the bundles keep it in a chunk of its own. `shared` as for {@linkcode instantiate}.
 */
export function onceLoader<T>(
  base64: () => Promise<string>,
  bind: (wasm: WasmInstance) => T,
  shared = false,
): () => Promise<T> {
  let cached: Promise<T> | undefined;
  return () => {
    cached ??= base64().then((text) => instantiate(text, shared)).then(bind, (error) => {
      cached = undefined;
      throw error;
    });
    return cached;
  };
}
