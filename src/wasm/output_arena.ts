/**
 * Where a kernel wrapper puts its float output arrays during a run: normally each is a new array
 * (`slice` of WebAssembly memory); inside {@linkcode OutputArena.within} small ones are views
 * into one JavaScript buffer instead, taken one after the other and taken again from its start
 * by the next such run (which first makes it large enough for all the run before asked of it;
 * what does not fit during a run gets its own array). Allocating a typed array costs about a microsecond, as much as a small
 * layer's kernel, and a large one its fresh pages too (54 KB copied out: 8.6 us into a new array,
 * 1.4 us into a kept one); the arena avoids it for the values a run computes and lets go of
 * itself. The caller of `within` copies (`slice`) every view that outlives the run before the
 * next one.
 *
 * @module
 */

import type { WasmInstance } from "./load.ts";

/** Floats of the largest output taken from the arena (16 MiB); larger ones get their own array. */
const LARGEST = 1 << 22;
/**
 * Floats the arena grows to at most (128 MiB); outputs beyond it get their own arrays. One
 * ResNet-50 run at 224x224 copies out 65 MB of outputs (73 of them): with room for 32 MiB only,
 * half of them were new arrays, whose fresh pages and collection took 172 CPU ms per run against
 * 150 with this room (runNet of both in one process, interleaved rounds of 1.5 s, medians).
 */
const CAPACITY = 1 << 25;

/** Output arrays of one module instance's kernels (see the module doc). */
export class OutputArena {
  readonly #wasm: WasmInstance;
  #buffer = new Float32Array(0);
  #top = 0;
  /** Floats the current (or last) run asked of the arena, whether or not they fitted. */
  #asked = 0;
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

  /** Output arrays of `wasm`'s kernels. */
  constructor(wasm: WasmInstance) {
    this.#wasm = wasm;
  }

  /**
   * Runs `body` with small outputs taken from the arena, from its start (views taken in an
   * earlier `within` are overwritten now).
   */
  within<T>(body: () => T): T {
    if (this.#active) return body();
    this.#active = true;
    if (this.#asked > this.#buffer.length) {
      // Room for all a run like the last one asks, in one array: growing it during a run would
      // leave the pages of the smaller arrays before it unused, and then on the runs after.
      this.#buffer = new Float32Array(Math.min(CAPACITY, this.#asked));
    }
    this.#top = 0;
    this.#asked = 0;
    this.#run++;
    try {
      return body();
    } finally {
      this.#active = false;
    }
  }

  /**
   * Gives back a view this run took whose values nothing reads any more: a later output of the
   * same size in this run takes its memory (in a new view). Anything else (a view given back
   * already, part of a view, an array not from the arena) is left alone.
   */
  release(values: Float32Array): void {
    if (!this.#active || values.buffer !== this.#buffer.buffer) return;
    const at = values.byteOffset >>> 2;
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
    return values.buffer === this.#buffer.buffer;
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
    if (!this.#active || count > LARGEST) return undefined;
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
