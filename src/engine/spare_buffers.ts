/**
 * Buffers handed back for reuse: a buffer already touched costs less to write again than a new
 * one, whose pages are fresh (here a page touched for the first time costs ~13 µs). The engine
 * pool keeps the sample buffers its workers hand back, and joined runs the arrays they joined
 * their inputs into.
 *
 * @module
 */

/** Buffers kept for reuse, the largest `limit` of those given back. */
export class SpareBuffers {
  /** Smallest first. */
  readonly #buffers: ArrayBuffer[] = [];
  readonly #limit: number;

  /** Keeps at most `limit` buffers. */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** The smallest kept buffer of at least `bytes` bytes, no longer kept; undefined if none. */
  take(bytes: number): ArrayBuffer | undefined {
    const at = this.#buffers.findIndex((buffer) => buffer.byteLength >= bytes);
    return at < 0 ? undefined : this.#buffers.splice(at, 1)[0];
  }

  /** Keeps `buffer` for a later {@linkcode take}, letting go of the smallest beyond the limit. */
  give(buffer: ArrayBuffer): void {
    this.#buffers.push(buffer);
    this.#buffers.sort((a, b) => a.byteLength - b.byteLength);
    this.#buffers.splice(0, Math.max(0, this.#buffers.length - this.#limit));
  }
}
