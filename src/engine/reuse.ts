/**
 * Runs of many nets that share their first layers (the candidates of the automatic calibration,
 * SPEC §12) on the same inputs, each starting where it first differs from a net run before: the
 * blob values there are kept from the earlier run, within a memory budget. Outputs are those of
 * whole runs, bit for bit.
 *
 * @module
 */

import type { Blob, Layer, Net } from "../caffe/net.ts";
import { TextMessage } from "../proto/tree.ts";
import { canResume, type RunCheckpoint, runNet, type Tensor } from "./run.ts";

/** Options of {@linkcode ReusingRunner}. */
export interface ReuseOptions {
  /**
   * Bytes of blob values kept between runs (default 256 MiB); 0 runs every net whole. The nets
   * compared against are also kept (their layers, not copied): the last four.
   */
  memoryBudget?: number;
}

/** How much of the nets' layers {@linkcode ReusingRunner} ran. */
export interface ReuseCounts {
  /** Layers run (each run counts the layers from where it started to the last). */
  layersRun: number;
  /** Layers of the nets run (what whole runs would have run). */
  layersInNets: number;
}

/** A net run before, with its kept states per input set. */
interface Remembered {
  net: Net;
  /** For each input set (by identity), the states kept, by increasing index. */
  checkpoints: Map<Map<string, Tensor>, RunCheckpoint[]>;
}

/** The net being run: how many first layers it shares with each remembered net. */
interface Current {
  net: Net;
  entry: Remembered;
  shared: Map<Remembered, number>;
  /** Where it first differs from the remembered and the upcoming nets: where to keep states. */
  differs: Set<number>;
}

/** The nets compared against (older ones are forgotten with their states). */
const REMEMBERED_NETS = 4;

/** Default {@linkcode ReuseOptions.memoryBudget}: 256 MiB. */
const DEFAULT_BUDGET = 256 * 1024 * 1024;

/**
 * Runs nets on input sets, each run starting from the state of an earlier run of a net with the
 * same first layers, on the same input set (the same `Map` object), when one is kept. Each run
 * keeps its states where the net first differs from each remembered net and from the nets said
 * to come next, while the budget allows; the oldest states go first.
 *
 * @example
 * ```ts ignore
 * const runner = new ReusingRunner();
 * for (const net of candidates) {
 *   for (const inputs of samples) console.log(await runner.outputs(net, inputs));
 * }
 * ```
 */
export class ReusingRunner {
  readonly #budget: number;
  #held = 0;
  #nets: Remembered[] = [];
  #current: Current | undefined;
  /** Layers run so far, and layers whole runs would have run. */
  readonly counts: ReuseCounts = { layersRun: 0, layersInNets: 0 };

  /** A runner keeping at most `options.memoryBudget` bytes of blob values. */
  constructor(options: ReuseOptions = {}) {
    this.#budget = Math.max(0, options.memoryBudget ?? DEFAULT_BUDGET);
  }

  /**
   * The outputs of `net` on `inputs`: those of `runNet(net, { inputs })`. `upcoming` (looked at
   * when `net` is new) names nets that may be run next: the run also keeps its states where
   * `net` first differs from them.
   */
  async outputs(
    net: Net,
    inputs: Map<string, Tensor>,
    upcoming: readonly Net[] = [],
  ): Promise<Map<string, Tensor>> {
    this.counts.layersInNets += net.layers.length;
    if (this.#budget === 0) {
      this.counts.layersRun += net.layers.length;
      return (await runNet(net, { inputs })).outputs;
    }
    const current = this.#currentFor(net, upcoming);
    let resume: RunCheckpoint | undefined;
    for (const [entry, shared] of current.shared) {
      for (const checkpoint of entry.checkpoints.get(inputs) ?? []) {
        const later = checkpoint.index > (resume?.index ?? 0);
        if (later && checkpoint.index <= shared && canResume(net, checkpoint)) {
          resume = checkpoint;
        }
      }
    }
    const start = resume?.index ?? 0;
    const wanted = [...current.differs].filter((index) => index > start);
    const result = await runNet(net, { inputs, resume, checkpoints: wanted });
    this.counts.layersRun += net.layers.length - start;
    for (const checkpoint of result.checkpoints) this.#keep(current.entry, inputs, checkpoint);
    return result.outputs;
  }

  /** The current net's record, made (and the nets compared) when `net` is new. */
  #currentFor(net: Net, upcoming: readonly Net[]): Current {
    if (this.#current?.net === net) return this.#current;
    const shared = new Map(this.#nets.map((entry) => [entry, sharedLayers(net, entry.net)]));
    const differs = new Set([
      ...shared.values(),
      ...upcoming.map((other) => sharedLayers(net, other)),
    ]);
    const entry: Remembered = { net, checkpoints: new Map() };
    this.#nets.push(entry);
    while (this.#nets.length > REMEMBERED_NETS) this.#forget(this.#nets[0]);
    this.#current = { net, entry, shared, differs };
    return this.#current;
  }

  /** Keeps `checkpoint` of `entry`'s net on `inputs` if the budget allows, oldest states first. */
  #keep(entry: Remembered, inputs: Map<string, Tensor>, checkpoint: RunCheckpoint): void {
    if (checkpoint.bytes > this.#budget) return;
    for (const older of this.#nets) {
      if (older === entry || this.#held + checkpoint.bytes <= this.#budget) break;
      this.#dropStates(older);
    }
    if (this.#held + checkpoint.bytes > this.#budget) return;
    const list = entry.checkpoints.get(inputs) ?? [];
    entry.checkpoints.set(inputs, list);
    list.push(checkpoint);
    list.sort((a, b) => a.index - b.index);
    this.#held += checkpoint.bytes;
  }

  /** Lets go of `entry`'s states. */
  #dropStates(entry: Remembered): void {
    for (const list of entry.checkpoints.values()) {
      for (const checkpoint of list) this.#held -= checkpoint.bytes;
    }
    entry.checkpoints.clear();
  }

  /** Forgets `entry`'s net and states. */
  #forget(entry: Remembered): void {
    this.#dropStates(entry);
    this.#nets = this.#nets.filter((other) => other !== entry);
  }
}

/** How many first layers `a` and `b` have equal (parameters and blob bits), 0 if the headers differ. */
export function sharedLayers(a: Net, b: Net): number {
  if (!sameMessage(a.header, b.header)) return 0;
  const length = Math.min(a.layers.length, b.layers.length);
  let index = 0;
  while (index < length && sameLayer(a.layers[index], b.layers[index])) index++;
  return index;
}

/** Whether two layers have the same parameters and blobs. */
function sameLayer(a: Layer, b: Layer): boolean {
  if (a === b) return true;
  return sameMessage(a.params, b.params) && a.blobs.length === b.blobs.length &&
    a.blobs.every((blob, i) => sameBlob(blob, b.blobs[i]));
}

/** Whether two messages have the same fields in the same order, with the same values. */
function sameMessage(a: TextMessage, b: TextMessage): boolean {
  if (a === b) return true;
  if (a.fields.length !== b.fields.length) return false;
  return a.fields.every((field, i) => {
    const other = b.fields[i];
    if (field.name !== other.name || Boolean(field.unknown) !== Boolean(other.unknown)) {
      return false;
    }
    const [x, y] = [field.value, other.value];
    if (x instanceof TextMessage) return y instanceof TextMessage && sameMessage(x, y);
    if (x instanceof Uint8Array) return y instanceof Uint8Array && sameBytes(x, y);
    return Object.is(x, y) && field.raw === other.raw;
  });
}

/** Whether two blobs have the same shape and element type and the same bits. */
function sameBlob(a: Blob, b: Blob): boolean {
  if (a === b) return true;
  if (a.shape.length !== b.shape.length || a.shape.some((size, i) => size !== b.shape[i])) {
    return false;
  }
  const [x, y] = [a.data, b.data];
  if (x.constructor !== y.constructor) return false;
  return sameBytes(
    new Uint8Array(x.buffer, x.byteOffset, x.byteLength),
    new Uint8Array(y.buffer, y.byteOffset, y.byteLength),
  );
}

/** Whether two byte arrays are equal (compared 4 bytes at a time where aligned). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  if (a.buffer === b.buffer && a.byteOffset === b.byteOffset) return true;
  const words = a.byteOffset % 4 === 0 && b.byteOffset % 4 === 0 ? a.length >> 2 : 0;
  const wordsA = new Int32Array(a.buffer, a.byteOffset, words);
  const wordsB = new Int32Array(b.buffer, b.byteOffset, words);
  for (let i = 0; i < words; i++) if (wordsA[i] !== wordsB[i]) return false;
  for (let i = words * 4; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
