/**
 * Arrays kept in WebAssembly memory across kernel calls: a layer's weights (or a form made from
 * them, e.g. int8 widened to int32) are copied in on the first call that uses them and read in
 * place by later calls, while the same array object comes back. The array is the key: arrays
 * handed to the kernels must not be changed in place afterwards (a blob gets a new array
 * instead). Within a budget of bytes per module instance: an array that does not fit is
 * prepared in the call's scratch as before, and the next call starts over with nothing kept (so
 * a net larger than the budget cycles through it and costs what per-call copies cost).
 *
 * A typed wrapper calls {@linkcode ResidentArrays.begin} right after `wasm.reset()` at the start
 * of a call, then takes its kept forms with {@linkcode ResidentArrays.prepared} before any scratch.
 *
 * @module
 */

import type { WasmInstance } from "./load.ts";

/** Bytes of weights an engine instance keeps by default (each worker has its own instance). */
export const DEFAULT_RESIDENT_BYTES = 64 * 1024 * 1024;

/** Prepared forms of arrays kept in one module instance's memory, under a budget. */
export class ResidentArrays {
  readonly #wasm: WasmInstance;
  #budget: number;
  /** Offset of each kept form, by source array and form name. */
  #kept = new WeakMap<object, Map<string, number>>();
  /** Set when a form did not fit: the next call frees everything first. */
  #full = false;

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

  /** Start of a call, right after `wasm.reset()`: frees everything when the budget ran full. */
  begin(): void {
    if (this.#full) this.#free();
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
    const forms = this.#kept.get(source);
    const found = forms?.get(form);
    if (found !== undefined) return found;
    if (!this.#wasm.canKeep) return undefined;
    if (this.#wasm.keptBytes + bytes > this.#budget) {
      this.#full = true;
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
    return at;
  }

  #free(): void {
    this.#wasm.release();
    this.#kept = new WeakMap();
    this.#full = false;
  }
}
