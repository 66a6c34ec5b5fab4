/**
 * Where a kernel wrapper puts its float output arrays during a run: normally each is a new array
 * (`slice` of WebAssembly memory); inside {@linkcode OutputArena.within} they are views into one
 * buffer instead, taken again from its start by the next such run (which first makes it large
 * enough for what the run before needed, scaled to its own inputs, up to a capacity; in a shared
 * memory {@linkcode FIRST_ROOM} is set aside before the first run; what does not fit during a run
 * gets its own array). A view whose values nothing reads any more is given back, and later outputs
 * of the run take its memory (best fit; ranges given back side by side merge), so that a run needs
 * about as much as it holds at once: ResNet-50 at batch 1 13.6 MB where it once took 19.5 (views
 * reused only by outputs of the same size), ultraface_rfb320 at batch 8 ~7,000 fewer fresh pages
 * on its first run (20.4 k -> 13.3 k page faults, ~10 µs each on this machine; warm runs the
 * same). Allocating a typed array costs about a microsecond, as much as a small layer's kernel,
 * and a large one its fresh pages too (54 KB copied out: 8.6 us into a new array, 1.4 us into a
 * kept one); the arena avoids it for the values a run computes and lets go of itself. The caller
 * of `within` copies (`slice`) every view that outlives the run before the next one.
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
  /** Floats of the arena taken from its start (views below it may have been given back). */
  #top = 0;
  /** The highest the top went in the current (or last) run. */
  #highest = 0;
  /** Floats of the outputs of the current (or last) run that did not fit the arena. */
  #unfitted = 0;
  /** The input floats of the run {@linkcode #highest} and {@linkcode #unfitted} count. */
  #askedFor = 0;
  /**
   * Counts the runs (`within`). What `#views` holds of earlier runs is stale rather than
   * cleared: a Map's `clear` allocates, and it is kept from run to run.
   */
  #run = 0;
  /** Each view taken, by its offset in floats: its float count, the floats it spans (with the
   * room a kernel may write past it), and the run that took it (-1 once given back). */
  #views = new Map<number, { count: number; span: number; run: number }>();
  /**
   * The ranges given back below the top in this run, in floats, sorted and apart (adjacent ones
   * are merged): `[#freeStarts[i], #freeEnds[i])` for i < `#freeCount` (the arrays keep their
   * length from run to run).
   */
  #freeStarts: number[] = [];
  #freeEnds: number[] = [];
  #freeCount = 0;
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
    // Room for the last run's outputs as they lay, and for those that did not fit on top.
    const asked = this.#highest + this.#unfitted;
    const wanted = Math.min(this.#limit, Math.ceil(asked * growth));
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
    this.#highest = 0;
    this.#unfitted = 0;
    this.#freeCount = 0;
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
   * Gives back a view this run took whose values nothing reads any more: later outputs of this
   * run take its memory (in new views). Anything else (a view given back already, part of a view,
   * an array not from the arena) is left alone.
   */
  release(values: Float32Array): void {
    if (!this.#active || values.buffer !== this.#backing) return;
    const at = (values.byteOffset - this.#buffer.byteOffset) >>> 2;
    const view = this.#views.get(at);
    if (view === undefined || view.run !== this.#run || view.count !== values.length) return;
    view.run = -1;
    this.#giveBack(at, at + view.span);
  }

  /** Adds `[start, end)` to the ranges given back, merged with its neighbours and the top. */
  #giveBack(start: number, end: number): void {
    const starts = this.#freeStarts;
    const ends = this.#freeEnds;
    let count = this.#freeCount;
    // The first range after it.
    let i = 0;
    while (i < count && starts[i] < start) i++;
    const joinsBefore = i > 0 && ends[i - 1] === start;
    const joinsAfter = i < count && starts[i] === end;
    if (joinsBefore && joinsAfter) {
      ends[i - 1] = ends[i];
      this.#removeRange(i);
      count--;
    } else if (joinsBefore) ends[i - 1] = end;
    else if (joinsAfter) starts[i] = start;
    else {
      for (let j = count; j > i; j--) {
        starts[j] = starts[j - 1];
        ends[j] = ends[j - 1];
      }
      starts[i] = start;
      ends[i] = end;
      count++;
    }
    this.#freeCount = count;
    // A last range that reaches the top lowers it.
    if (count > 0 && ends[count - 1] === this.#top) {
      this.#top = starts[count - 1];
      this.#freeCount = count - 1;
    }
  }

  /** Removes range `i` of the ranges given back. */
  #removeRange(i: number): void {
    const starts = this.#freeStarts;
    const ends = this.#freeEnds;
    for (let j = i + 1; j < this.#freeCount; j++) {
      starts[j - 1] = starts[j];
      ends[j - 1] = ends[j];
    }
    this.#freeCount--;
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
    this.#pending = this.#inMemory ? this.#room(count, count + slack) : undefined;
    return this.#pending?.byteOffset ?? this.#wasm.alloc((count + slack) * 4);
  }

  /** The `count` floats a kernel wrote at `offset` (from {@linkcode outputAt}) as an array. */
  output(offset: number, count: number): Float32Array {
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending?.byteOffset !== offset) return this.copyOut(offset, count);
    return pending;
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

  /**
   * A view of `count` floats of the arena, spanning `span` floats (the view's and the room a
   * kernel may write past it), or undefined where the output gets its own array. It takes the
   * smallest range given back this run that holds the span (the first of those), else the top's.
   */
  #room(count: number, span = count): Float32Array | undefined {
    if (!this.#active) return undefined;
    // Keep views 16-byte aligned.
    const taken = (span + 3) & ~3;
    const starts = this.#freeStarts;
    const ends = this.#freeEnds;
    let best = -1;
    for (let i = 0; i < this.#freeCount; i++) {
      const size = ends[i] - starts[i];
      if (size >= taken && (best < 0 || size < ends[best] - starts[best])) best = i;
    }
    let at: number;
    if (best >= 0) {
      at = starts[best];
      starts[best] += taken;
      if (starts[best] === ends[best]) this.#removeRange(best);
    } else {
      at = this.#top;
      if (at + taken > this.#buffer.length) {
        this.#unfitted += taken;
        return undefined;
      }
      this.#top += taken;
      if (this.#top > this.#highest) this.#highest = this.#top;
    }
    const view = this.#views.get(at);
    if (view === undefined) this.#views.set(at, { count, span: taken, run: this.#run });
    else {
      view.count = count;
      view.span = taken;
      view.run = this.#run;
    }
    return this.#buffer.subarray(at, at + count);
  }
}
