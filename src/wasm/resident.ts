/**
 * Arrays kept in WebAssembly memory across kernel calls: a layer's weights (or a form made from
 * them, e.g. int8 widened to int32) are copied in on the first call that uses them and read in
 * place by later calls, while the same array object comes back. The array is the key: arrays
 * handed to the kernels must not be changed in place afterwards (a blob gets a new array
 * instead). Within a budget of bytes per module instance: an array that does not fit is
 * prepared in the call's scratch as before. Once the budget is full, what is kept stays while it
 * is read again (a net larger than the budget keeps the layers that fit); when more forms missed
 * than are kept and none was read again meanwhile (another net runs now), everything is let go at
 * the start of the next call and kept anew.
 *
 * A typed wrapper calls {@linkcode ResidentArrays.begin} right after `wasm.reset()` at the start
 * of a call, then takes its kept forms with {@linkcode ResidentArrays.prepared} before any scratch.
 *
 * @module
 */

import type { WasmInstance } from "./load.ts";

/** Bytes of weights an engine instance keeps by default (each worker has its own instance). */
export const DEFAULT_RESIDENT_BYTES = 256 * 1024 * 1024;

/** Prepared forms of arrays kept in one module instance's memory, under a budget. */
export class ResidentArrays {
  readonly #wasm: WasmInstance;
  #budget: number;
  /** Offset of each kept form, by source array and form name. */
  #kept = new WeakMap<object, Map<string, number>>();
  /** Forms kept. */
  #count = 0;
  /** Set when a form did not fit; then the forms found kept and those that missed since. */
  #full = false;
  #hits = 0;
  #misses = 0;

  /** Keeps forms in `wasm`'s memory, at most `budget` bytes. */
  constructor(wasm: WasmInstance, budget: number) {
    this.#wasm = wasm;
    this.#budget = budget;
  }

  /** The budget in bytes (0: nothing is kept); lowering it below what is kept frees it all. */
  get budget(): number {
    return this.#budget;
  }
  set budget(bytes: number) {
    this.#budget = bytes;
    if (this.#wasm.keptBytes > bytes) this.#free();
  }

  /**
   * Start of a call, right after `wasm.reset()`. Once the budget ran full, each time more forms
   * missed than are kept: everything is freed if none was found meanwhile, else counting starts
   * over.
   */
  begin(): void {
    if (!this.#full || this.#misses <= this.#count) return;
    if (this.#hits === 0) this.#free();
    else [this.#hits, this.#misses] = [0, 0];
  }

  /** The offset of form `form` of `source` when it is kept (as {@linkcode prepared} finds it). */
  found(source: object, form: string): number | undefined {
    const at = this.#kept.get(source)?.get(form);
    if (at !== undefined && this.#full) this.#hits++;
    return at;
  }

  /**
   * The offset of form `form` of `source` (`bytes` bytes), made by `prepare(at)` on first use
   * (it may take scratch, freed after); undefined when it is not kept (over the budget, or the
   * call took scratch already): the caller then makes it in scratch.
   */
  prepared(
    source: object,
    form: string,
    bytes: number,
    prepare: (at: number) => void,
  ): number | undefined {
    const kept = this.found(source, form);
    if (kept !== undefined) return kept;
    const forms = this.#kept.get(source);
    if (!this.#wasm.canKeep) return undefined;
    if (this.#wasm.keptBytes + bytes > this.#budget) {
      this.#full = true;
      this.#misses++;
      return undefined;
    }
    const at = this.#wasm.keep(bytes);
    try {
      prepare(at);
    } catch (error) {
      this.#free();
      throw error;
    }
    this.#wasm.reset();
    if (forms === undefined) this.#kept.set(source, new Map([[form, at]]));
    else forms.set(form, at);
    this.#count++;
    return at;
  }

  /** Lets go of every kept form (and frees the instance's kept regions). */
  clear(): void {
    this.#free();
  }

  #free(): void {
    this.#wasm.release();
    this.#kept = new WeakMap();
    this.#count = 0;
    this.#full = false;
    this.#hits = 0;
    this.#misses = 0;
  }
}
