/**
 * Where a kernel wrapper puts its float output arrays during a run: normally each is a new array
 * (`slice` of WebAssembly memory); inside {@linkcode OutputArena.within} they are views into one
 * buffer instead, taken one after the other and taken again from its start by the next such run
 * (which first makes it large enough for all the run before asked of it, scaled to its own inputs,
 * up to a capacity; in a shared memory {@linkcode FIRST_ROOM} is set aside before the first run;
 * what does not fit during a run gets its own array). Allocating a typed array costs about a
 * microsecond, as much as a small layer's kernel, and a large one its fresh pages too (54 KB
 * copied out: 8.6 us into a new array, 1.4 us into a kept one); the arena avoids it for the values
 * a run computes and lets go of itself. The caller of `within` copies (`slice`) every view that
 * outlives the run before the next one.
 *
 * Where the module's memory is shared (src/wasm/load.ts `instantiate`), the arena is a region of
 * that memory set aside below everything else ({@linkcode WasmInstance.reserve}): a kernel writes
 * its output straight into its view ({@linkcode OutputArena.outputAt}) and the next kernel reads
 * it where it is ({@linkcode OutputArena.offsetOf}), with no copy out and in (a shared memory's
 * views survive its growth). Elsewhere the arena is a JavaScript buffer the outputs are copied
 * to.
 *
 * @module
 */

import type { WasmInstance } from "./load.ts";

/**
 * Floats the arena grows to at most (1 GiB); outputs beyond it get their own arrays, as all do when
 * the memory for it cannot be had. Any output that fits is taken from it, however large: an array
 * of its own takes fresh pages on every run (ultraface_rfb320 joined 8 samples at a time, one
 * 19.6 MB output: 4,800 page faults and ~50 ms a run when outputs above 16 MiB got their own;
 * waifu2x_upconv7 on a 400x400 input, outputs of 82 MB, 1.19-1.41 s a run with room for 128 MiB
 * against 0.81-0.92 s). The arena grows only to what a run asks. One ResNet-50 run at 224x224
 * copies out 65 MB of outputs (73 of them): with room for 32 MiB only, half of them were new
 * arrays, whose fresh pages and collection took 172 CPU ms per run against 150 with this room
 * (runNet of both in one process, interleaved rounds of 1.5 s, medians).
 */
const CAPACITY = 1 << 28;

/**
 * Floats set aside in a shared memory before the first run (256 MiB), when what a run asks is not
 * known yet: the first run's outputs go there instead of into arrays of their own, and the runs
 * after find room (pages never touched take no memory). Without it the first run put every output
 * in a new array and the second made the arena and the kept weights above it again (ResNet-50 in a
 * fresh process: runs 2 and 3 took 361-374 and 175-181 ms against ~150 warm).
 */
const FIRST_ROOM = 1 << 26;

/** Output arrays of one module instance's kernels (see the module doc). */
export class OutputArena {
  readonly #wasm: WasmInstance;
  /** Frees the regions the instance keeps, so that the arena's region may be set again. */
  readonly #freeKept: () => void;
  #buffer = new Float32Array(0);
  /** The buffer's `buffer`, read once per resize (the getter is a call on every read). */
  #backing: ArrayBufferLike = this.#buffer.buffer;
  /** Whether the buffer lies in WebAssembly memory (a shared one). */
  #inMemory = false;
  /** The view {@linkcode outputAt} took last, until {@linkcode output} hands it on. */
  #pending: Float32Array | undefined;
  #top = 0;
  /** Floats the current (or last) run asked of the arena, whether or not they fitted. */
  #asked = 0;
  /** The input floats of the run {@linkcode #asked} counts (see {@linkcode within}). */
  #askedFor = 0;
  /**
   * Counts the runs (`within`). What `#views` and `#free` hold of earlier runs is stale rather
   * than cleared: a Map's `clear` allocates, and these are kept from run to run.
   */
  #run = 0;
  /** Each view taken, by its offset in floats: its float count and the run that took it (-1 once
   * given back). */
  #views = new Map<number, { count: number; run: number }>();
  /** Offsets of views given back, by float count, for later outputs of that count (this run's
   * when `run` is the current one). */
  #free = new Map<number, { run: number; offsets: number[] }>();
  #active = false;
  /** Floats the buffer may grow to: {@linkcode CAPACITY}, or its size once memory was refused. */
  #limit = CAPACITY;
  /** Whether {@linkcode FIRST_ROOM} was asked for (once: each attempt frees what is kept). */
  #firstRoomTried = false;

  /**
   * Output arrays of `wasm`'s kernels; `freeKept` frees what `wasm` keeps (the arena's region lies
   * below the kept regions of a shared memory).
   */
  constructor(wasm: WasmInstance, freeKept: () => void) {
    this.#wasm = wasm;
    this.#freeKept = freeKept;
  }

  /**
   * Runs `body` with outputs taken from the arena, from its start (views taken in an
   * earlier `within` are overwritten now). `inputFloats` is the size of the run's inputs: a run
   * on larger inputs than the last one (a larger batch) is given room for that many times what
   * the last one asked, as a net's outputs grow with its batch.
   */
  within<T>(body: () => T, inputFloats = 0): T {
    if (this.#active) return body();
    this.#active = true;
    const growth = inputFloats > this.#askedFor && this.#askedFor > 0
      ? inputFloats / this.#askedFor
      : 1;
    const wanted = Math.min(this.#limit, Math.ceil(this.#asked * growth));
    if (wanted > this.#buffer.length) {
      // Room for all a run like the last one asks (scaled to this run's inputs), in one array:
      // growing it during a run would leave the pages of the smaller arrays before it unused, and
      // then on the runs after; and each growth lets go of what the instance keeps, which the
      // next run makes again (lenet at a new batch size: ~5 ms a run against ~1.6 once ready).
      this.#resize(wanted);
    } else if (this.#buffer.length === 0 && this.#wasm.shared && !this.#firstRoomTried) {
      this.#firstRoomTried = true;
      this.#resize(FIRST_ROOM, true);
    }
    this.#top = 0;
    this.#asked = 0;
    this.#askedFor = inputFloats;
    this.#run++;
    try {
      return body();
    } finally {
      this.#active = false;
      this.#pending = undefined;
    }
  }

  /**
   * Makes the buffer `count` floats: in WebAssembly memory where it is shared. When that memory
   * cannot be had, the buffer stays as it was from then on (what does not fit gets its own array),
   * unless this was the room set aside before the first run (`first`).
   */
  #resize(count: number, first = false): void {
    const wasm = this.#wasm;
    if (!wasm.shared) {
      try {
        this.#buffer = new Float32Array(count);
      } catch {
        this.#limit = this.#buffer.length;
        return;
      }
      this.#backing = this.#buffer.buffer;
      return;
    }
    this.#freeKept();
    let at: number;
    try {
      // Reserved first: it may grow the memory, whose buffer is read after.
      at = wasm.reserve(count * 4);
    } catch {
      // The region below the kept ones is as it was; scratch starts above them again.
      wasm.reset();
      if (!first) this.#limit = this.#buffer.length;
      return;
    }
    this.#buffer = new Float32Array(wasm.memory.buffer, at, count);
    this.#backing = this.#buffer.buffer;
    this.#inMemory = true;
  }

  /**
   * Gives back a view this run took whose values nothing reads any more: a later output of the
   * same size in this run takes its memory (in a new view). Anything else (a view given back
   * already, part of a view, an array not from the arena) is left alone.
   */
  release(values: Float32Array): void {
    if (!this.#active || values.buffer !== this.#backing) return;
    const at = (values.byteOffset - this.#buffer.byteOffset) >>> 2;
    const view = this.#views.get(at);
    if (view === undefined || view.run !== this.#run || view.count !== values.length) return;
    view.run = -1;
    const free = this.#free.get(values.length);
    if (free === undefined) {
      this.#free.set(values.length, { run: this.#run, offsets: [at] });
      return;
    }
    if (free.run !== this.#run) {
      free.run = this.#run;
      free.offsets.length = 0;
    }
    free.offsets.push(at);
  }

  /** Whether `values` is a view into the arena (copy it if it is to outlive the run). */
  holds(values: Float32Array): boolean {
    return values.buffer === this.#backing;
  }

  /**
   * The byte offset in WebAssembly memory of `values` when they are a view of the arena there: a
   * kernel that only reads them reads them in place. Undefined otherwise (copy them in).
   */
  offsetOf(values: Float32Array): number | undefined {
    return this.#inMemory && values.buffer === this.#backing ? values.byteOffset : undefined;
  }

  /**
   * Where a kernel is to write an output of `count` floats (and may write `slack` floats past it):
   * a view of the arena in WebAssembly memory when there is one with room, else scratch. Hand the
   * offset to {@linkcode output} once the kernel has written it.
   */
  outputAt(count: number, slack = 0): number {
    this.#pending = this.#inMemory ? this.#room(count + slack) : undefined;
    return this.#pending?.byteOffset ?? this.#wasm.alloc((count + slack) * 4);
  }

  /** The `count` floats a kernel wrote at `offset` (from {@linkcode outputAt}) as an array. */
  output(offset: number, count: number): Float32Array {
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending?.byteOffset !== offset) return this.copyOut(offset, count);
    return pending.length === count ? pending : pending.subarray(0, count);
  }

  /** A copy of the `count` floats at `offset` of WebAssembly memory. */
  copyOut(offset: number, count: number): Float32Array {
    const memory = this.#wasm.floats;
    const start = offset >>> 2;
    const view = this.#room(count);
    if (view === undefined) return memory.slice(start, start + count);
    view.set(memory.subarray(start, start + count));
    return view;
  }

  /**
   * An array of `count` floats for an output that JavaScript writes whole (its values are left
   * from earlier runs until then): a view into the arena inside `within`, else a new array.
   */
  take(count: number): Float32Array {
    return this.#room(count) ?? new Float32Array(count);
  }

  /** A view of `count` floats of the arena, or undefined where the output gets its own array. */
  #room(count: number): Float32Array | undefined {
    if (!this.#active) return undefined;
    // A view given back earlier in the run (always below the top), else the top's.
    const free = this.#free.get(count);
    const at = (free?.run === this.#run ? free.offsets.pop() : undefined) ?? this.#top;
    if (at === this.#top) {
      // Keep views 16-byte aligned.
      const taken = (count + 3) & ~3;
      this.#asked += taken;
      if (this.#top + count > this.#buffer.length) return undefined;
      this.#top += taken;
    }
    const view = this.#views.get(at);
    if (view === undefined) this.#views.set(at, { count, run: this.#run });
    else {
      view.count = count;
      view.run = this.#run;
    }
    return this.#buffer.subarray(at, at + count);
  }
}
