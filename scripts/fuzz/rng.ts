/**
 * The fuzzer's seeded choices: one {@linkcode Rng} per case, from the run's seed and the case
 * index, so any case can be made again from those two numbers.
 *
 * @module
 */

import { mulberry32 } from "../../src/random.ts";

/** Seeded choices for one fuzz case. */
export class Rng {
  private readonly next: () => number;

  /** The generator of case `index` of a run seeded with `seed`. */
  constructor(seed: number, index: number) {
    this.next = mulberry32(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index, 0xc2b2ae35));
  }

  /** A uint32. */
  uint32(): number {
    return this.next();
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor((this.next() / 4294967296) * n);
  }

  /** An integer in [low, high]. */
  between(low: number, high: number): number {
    return low + this.below(high - low + 1);
  }

  /** One of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }

  /** One of `items`, each as likely as its `weight` (default 1). */
  pickWeighted<T extends { weight?: number }>(items: readonly T[]): T {
    const total = items.reduce((sum, item) => sum + (item.weight ?? 1), 0);
    let left = (this.next() / 4294967296) * total;
    for (const item of items) {
      left -= item.weight ?? 1;
      if (left < 0) return item;
    }
    return items[items.length - 1];
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() / 4294967296 < p;
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.next() & 0xff;
    return out;
  }
}
