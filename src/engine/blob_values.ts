/**
 * The blob values a run holds, by slot: the index a run plan gives each blob name. Reading and
 * writing a value is an array access, where a `Map` by name hashes the name on every access and,
 * filled and emptied on every run, grows and shrinks its table (a call into the runtime each
 * time). The orders stay those of a `Map` of values and a `Set` of open blobs: values in the
 * order their blobs were given one while holding none, open blobs in the order they opened.
 *
 * @module
 */

import type { Value } from "./tensor.ts";

/** Values and open blobs by slot, for one run. */
export class BlobValues {
  readonly #values: (Value | undefined)[];
  /** When each slot was last given a value while empty (the Map's insertion order). */
  readonly #valueOrder: number[];
  /** When each open blob (written or given and not read since) opened, 0 for the others. */
  readonly #openOrder: number[];
  /** The slots holding a value, in no order, and where each is in that list (-1: not held). */
  readonly #held: number[] = [];
  readonly #heldAt: number[];
  #sequence = 0;

  /** An empty store of `slots` slots. */
  constructor(slots: number) {
    // Plain arrays: typed arrays this small would each allocate a backing store on every run.
    this.#values = new Array<Value | undefined>(slots).fill(undefined);
    this.#valueOrder = new Array<number>(slots).fill(0);
    this.#openOrder = new Array<number>(slots).fill(0);
    this.#heldAt = new Array<number>(slots).fill(-1);
  }

  /** The value of `slot`, if held. */
  get(slot: number): Value | undefined {
    return this.#values[slot];
  }

  /** Holds `value` in `slot` (a slot that held none goes last in {@linkcode heldSlots}). */
  set(slot: number, value: Value): void {
    if (this.#values[slot] === undefined) {
      this.#valueOrder[slot] = ++this.#sequence;
      this.#heldAt[slot] = this.#held.push(slot) - 1;
    }
    this.#values[slot] = value;
  }

  /** Lets go of the value of `slot`. */
  delete(slot: number): void {
    const at = this.#heldAt[slot];
    if (at < 0) return;
    this.#values[slot] = undefined;
    this.#heldAt[slot] = -1;
    const last = this.#held.pop()!;
    if (last !== slot) {
      this.#held[at] = last;
      this.#heldAt[last] = at;
    }
  }

  /** Marks `slot` open (one that was not goes last in {@linkcode openSlots}). */
  open(slot: number): void {
    if (this.#openOrder[slot] === 0) this.#openOrder[slot] = ++this.#sequence;
  }

  /** Marks `slot` read (no longer open). */
  close(slot: number): void {
    this.#openOrder[slot] = 0;
  }

  /** Whether `slot` is open. */
  isOpen(slot: number): boolean {
    return this.#openOrder[slot] !== 0;
  }

  /** The slots holding a value, in the order a `Map` of them would iterate. */
  heldSlots(): number[] {
    return this.#held.slice().sort((a, b) => this.#valueOrder[a] - this.#valueOrder[b]);
  }

  /** The open slots, in the order they opened. */
  openSlots(): number[] {
    const slots: number[] = [];
    for (let slot = 0; slot < this.#openOrder.length; slot++) {
      if (this.#openOrder[slot] !== 0) slots.push(slot);
    }
    return slots.sort((a, b) => this.#openOrder[a] - this.#openOrder[b]);
  }

  /** Whether a held value holds any of `data`'s memory (the same array, or part of it). */
  holds(data: Float32Array): boolean {
    const end = data.byteOffset + data.byteLength;
    for (let i = 0; i < this.#held.length; i++) {
      const held = this.#values[this.#held[i]]!.tensor.data;
      if (
        held.buffer === data.buffer && held.byteOffset < end &&
        data.byteOffset < held.byteOffset + held.byteLength
      ) return true;
    }
    return false;
  }
}
