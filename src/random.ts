/**
 * The one seeded pseudo-random source of the project (seeded inputs, calibration, examples,
 * benchmark nets, tests): mulberry32, a 32-bit state that each step advances by 0x6D2B79F5 and
 * mixes into a uint32.
 *
 * @module
 */

/** A generator of uint32 values (as numbers in [0, 2^32)) whose sequence depends on `seed` only. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = Math.imul(state ^ (state >>> 15), state | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return (mixed ^ (mixed >>> 14)) >>> 0;
  };
}

/** A generator of numbers uniform in [0, 1) (multiples of 2^-32) from {@linkcode mulberry32}. */
export function unitGenerator(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}
