/**
 * Calibration samples: a source read once per pass over the data, cut into batches (samples
 * concatenated along axis 0) for the engine.
 *
 * @module
 */

import { ConvertError } from "../errors.ts";
import type { Tensor } from "../engine/run.ts";
import { concatRows } from "../engine/tensor.ts";

/** One calibration sample: a tensor for each net input, by blob name (axis 0 is the batch). */
export type Sample = Map<string, Tensor>;

/** Samples, as any (async) iterable, or a function giving a fresh iterable for each pass. */
export type SampleSource =
  | Iterable<Sample>
  | AsyncIterable<Sample>
  | (() => Iterable<Sample> | AsyncIterable<Sample>);

/** Reads a {@linkcode SampleSource} once per pass, in batches. */
export class SamplePasses {
  readonly #source: SampleSource;
  readonly #batchSize: number;
  readonly #limit: number;
  /** Samples kept from the first pass when the source cannot be read again, else null. */
  #kept: Sample[] | null;

  /**
   * `limit`: read at most this many samples per pass. `keep`: whether a later pass may come,
   * so a source that cannot be read twice (not a function, not an array) is kept in memory.
   */
  constructor(source: SampleSource, batchSize: number, limit: number, keep: boolean) {
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new ConvertError(
        "BAD_ARGUMENT",
        `the batch size must be a positive integer, not ${batchSize}`,
      );
    }
    this.#source = source;
    this.#batchSize = batchSize;
    this.#limit = limit;
    this.#kept = keep && typeof source !== "function" && !Array.isArray(source) ? [] : null;
  }

  /** The samples of one pass, `batchSize` at a time (the last batch may be smaller). */
  async *batches(pass: number): AsyncGenerator<{ batch: Sample; samples: number }> {
    let pending: Sample[] = [];
    let count = 0;
    for await (const sample of this.#samples(pass)) {
      if (count >= this.#limit) break;
      count++;
      if (pass === 0) this.#kept?.push(sample);
      pending.push(sample);
      if (pending.length === this.#batchSize) {
        yield { batch: concatenated(pending), samples: pending.length };
        pending = [];
      }
    }
    if (pending.length > 0) yield { batch: concatenated(pending), samples: pending.length };
  }

  #samples(pass: number): Iterable<Sample> | AsyncIterable<Sample> {
    if (pass > 0 && this.#kept !== null) return this.#kept;
    return typeof this.#source === "function" ? this.#source() : this.#source;
  }
}

/** One sample of several: each input's tensors concatenated along axis 0. */
function concatenated(samples: Sample[]): Sample {
  if (samples.length === 1) return samples[0];
  const batch: Sample = new Map();
  for (const [name, first] of samples[0]) {
    const parts = samples.map((sample) => sample.get(name));
    const joined = parts.every((part) => part !== undefined)
      ? concatRows(parts as Tensor[])
      : undefined;
    if (joined === undefined) {
      const index = parts.findIndex((part) =>
        part === undefined || concatRows([first, part]) === undefined
      );
      throw new ConvertError(
        "BAD_INPUT",
        `calibration sample ${index} of a batch has no input "${name}" shaped like the first ` +
          `sample's [${first.shape.join(", ")}]: samples batched together must agree`,
      );
    }
    batch.set(name, joined);
  }
  return batch;
}
