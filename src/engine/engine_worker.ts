/**
 * The engine worker's side of {@linkcode EnginePool} (src/engine/engine_pool.ts): the messages both
 * sides exchange and the loop a worker runs. A worker holds the nets (sent once, packed: their
 * blobs in a buffer all workers share where the runtime allows, else its own copy) and its own
 * WebAssembly instances; each job is some samples' inputs, run through some of those nets
 * (`runSamples`: as one batch per net when the net allows it, the same bits per sample;
 * src/engine/joined_run.ts). A job's tensors cross as one {@linkcode TensorBundle}: their
 * elements in one transferred array and the rest in one JSON string, since cloning a message
 * costs per object in it (a few microseconds per sample, as much as a small net's run). A
 * `ConvertError` crosses as its code, message and place.
 *
 * The runtime-specific entries are tiny: src/engine/engine_worker_web.ts (Web Workers: Deno,
 * browsers) and src/io/engine_worker_node.ts (`node:worker_threads`).
 *
 * @module
 */

import type { Net } from "../caffe/net.ts";
import { ConvertError, type ErrorCode, type ErrorPlace } from "../errors.ts";
import { type PackedNet, unpackNet } from "./net_transfer.ts";
import { runSamples } from "./joined_run.ts";
import type { RunResult, SkippedLayer, Tensor } from "./run.ts";
import { type EngineBuild, useEngineBuild } from "../wasm/engine_build.ts";

/**
 * Groups of named tensors (a job's samples, or its results) as they cross: every element in one
 * array, and each group's names, shapes and offsets, with anything else a group carries, as JSON.
 */
export interface TensorBundle {
  /** JSON of `BundleEntry[]`, one per group (null: a group without tensors). */
  entries: string;
  /** The elements of every tensor, one tensor after the other. */
  data: Float32Array;
}

/** One group of a {@linkcode TensorBundle}: its tensors as [name, shape, first element]. */
interface BundleEntry {
  tensors: [string, number[], number][];
  /** Layers not run (results only). */
  skipped?: SkippedLayer[];
  /** Outputs holding a deploy model's integers (results only). */
  deployBlobs?: [string, "int8" | "accumulator"][];
}

/** A group for {@linkcode bundleTensors}: tensors and what else crosses with them. */
export interface BundleGroup {
  /** The named tensors. */
  tensors: Iterable<[string, Tensor]>;
  /** Layers not run. */
  skipped?: readonly SkippedLayer[];
  /** Outputs holding a deploy model's integers. */
  deployBlobs?: ReadonlyMap<string, "int8" | "accumulator">;
}

/**
 * `groups` (undefined: none) as one bundle; the elements are copied into one array: the start of
 * the buffer `reuse(bytes)` gives, if it gives one (a buffer already touched: fresh pages cost
 * more than the copy), else a new one.
 */
export function bundleTensors(
  groups: readonly (BundleGroup | undefined)[],
  reuse?: (bytes: number) => ArrayBuffer | undefined,
): TensorBundle {
  const entries: (BundleEntry | null)[] = [];
  const parts: Float32Array[] = [];
  let length = 0;
  for (const group of groups) {
    if (group === undefined) {
      entries.push(null);
      continue;
    }
    const entry: BundleEntry = { tensors: [] };
    for (const [name, { shape, data }] of group.tensors) {
      entry.tensors.push([name, shape, length]);
      parts.push(data);
      length += data.length;
    }
    if (group.skipped !== undefined) entry.skipped = [...group.skipped];
    if (group.deployBlobs !== undefined) entry.deployBlobs = [...group.deployBlobs];
    entries.push(entry);
  }
  const reused = reuse?.(length * 4);
  const data = reused === undefined
    ? new Float32Array(length)
    : new Float32Array(reused, 0, length);
  let at = 0;
  for (const part of parts) {
    data.set(part, at);
    at += part.length;
  }
  return { entries: JSON.stringify(entries), data };
}

/** A group of a bundle as it arrives: its tensors (copies, or views when asked) and the rest. */
export interface UnbundledGroup {
  /** The named tensors. */
  tensors: Map<string, Tensor>;
  /** Layers not run (empty when none crossed). */
  skipped: SkippedLayer[];
  /** Outputs holding a deploy model's integers. */
  deployBlobs: Map<string, "int8" | "accumulator">;
}

/**
 * The groups of `bundle`. Each tensor's elements are its own copy, or with `views` a view into
 * the bundle's array (a worker's inputs, read during the job only; the results a worker
 * transferred, which own their buffer).
 */
export function unbundleTensors(
  bundle: TensorBundle,
  views = false,
): (UnbundledGroup | undefined)[] {
  const entries = JSON.parse(bundle.entries) as (BundleEntry | null)[];
  return entries.map((entry, index) => {
    if (entry === null) return undefined;
    const tensors = new Map<string, Tensor>();
    for (let i = 0; i < entry.tensors.length; i++) {
      const [name, shape, start] = entry.tensors[i];
      const end = i + 1 < entry.tensors.length
        ? entry.tensors[i + 1][2]
        : nextStart(entries, index, bundle.data.length);
      const data = views ? bundle.data.subarray(start, end) : bundle.data.slice(start, end);
      tensors.set(name, { shape, data });
    }
    return {
      tensors,
      skipped: entry.skipped ?? [],
      deployBlobs: new Map(entry.deployBlobs ?? []),
    };
  });
}

/** Where the elements after group `index`'s last tensor start. */
function nextStart(entries: (BundleEntry | null)[], index: number, total: number): number {
  for (let i = index + 1; i < entries.length; i++) {
    const first = entries[i]?.tensors[0];
    if (first !== undefined) return first[2];
  }
  return total;
}

/** An error as it crosses back: a `ConvertError`'s fields, or another error's message. */
export interface WireError {
  /** The `ConvertError` code; absent for any other error (a bug). */
  code?: ErrorCode;
  /** The message. */
  message: string;
  /** The `ConvertError`'s place. */
  place?: ErrorPlace;
}

/** What the pool sends a worker. */
export type ToWorker =
  | {
    kind: "nets";
    nets: PackedNet[];
    /** The engine build the pool's own thread uses (results stay bit-identical to it). */
    build: EngineBuild;
    /** Who took each job, by its `claim` slot (0: no one yet; where memory is shared). */
    claims?: Int32Array;
  }
  | {
    kind: "run";
    id: number;
    nets: number[];
    /** Samples, each run through every net of `nets` (a group without tensors: all seeded). */
    samples: TensorBundle;
    seed: number;
    /** Its slot in `claims`: the worker runs it only if it claims it first. */
    claim?: number;
  };

/** What a worker answers. */
export type FromWorker =
  | { kind: "ready" }
  | {
    kind: "done";
    id: number;
    /**
     * Per sample done, per net, in order (group sample * nets + net): the net's outputs, skipped
     * layers and deploy blobs; up to the failing sample when `error` is set.
     */
    results: TensorBundle;
    /** The job's sample buffer, handed back for the pool's next bundle. */
    spent: ArrayBuffer;
    /** The first sample's error; the samples after it were not run. */
    error?: WireError;
    /** Time spent running the samples. */
    milliseconds: number;
    /** The job's `claim`, which the worker reads no more. */
    claim?: number;
  }
  | {
    /** The pool's own thread took the job before this worker started it. */
    kind: "taken";
    id: number;
    spent: ArrayBuffer;
    claim?: number;
  }
  | { kind: "failed"; error: WireError };

/** A worker's end of its channel to the pool. */
export interface WorkerEndpoint {
  /** Sends `message` to the pool, transferring `transfer`. */
  post(message: FromWorker, transfer: ArrayBuffer[]): void;
  /** Calls `handler` with each message from the pool. */
  listen(handler: (message: ToWorker) => void): void;
}

/** `error` as plain data. */
export function wireError(error: unknown): WireError {
  if (error instanceof ConvertError) {
    return { code: error.code, message: error.message, place: error.place() };
  }
  return { message: error instanceof Error ? error.message : String(error) };
}

/** The error `wire` describes: the same `ConvertError`, or an `Error` (a bug in the worker). */
export function errorFromWire(wire: WireError): Error {
  if (wire.code === undefined) return new Error(`engine worker: ${wire.message}`);
  return new ConvertError(wire.code, wire.message, wire.place);
}

/** A run's outputs, skipped layers and deploy blobs, as a result group. */
function groupOf(result: RunResult): BundleGroup {
  return { tensors: result.outputs, skipped: result.skipped, deployBlobs: result.deployBlobs };
}

/** Runs the worker's loop on `endpoint`: nets first, then jobs, one message at a time. */
export function serveEngine(endpoint: WorkerEndpoint): void {
  let nets: Net[] = [];
  let claims: Int32Array | undefined;
  const handle = async (message: ToWorker): Promise<void> => {
    if (message.kind === "nets") {
      try {
        useEngineBuild(message.build);
        nets = message.nets.map(unpackNet);
        claims = message.claims;
        endpoint.post({ kind: "ready" }, []);
      } catch (error) {
        endpoint.post({ kind: "failed", error: wireError(error) }, []);
      }
      return;
    }
    const { id, claim } = message;
    const spent = message.samples.data.buffer as ArrayBuffer;
    if (claims !== undefined && claim !== undefined) {
      if (Atomics.compareExchange(claims, claim, 0, 1) !== 0) {
        endpoint.post({ kind: "taken", id, spent, claim }, [spent]);
        return;
      }
    }
    const started = performance.now();
    const samples = unbundleTensors(message.samples, true);
    const { results, error } = await runSamples(
      message.nets.map((index) => nets[index]),
      samples.map((sample) => sample?.tensors),
      message.seed,
    );
    // Copied into one array: an output may be a view the next run overwrites, or share a buffer.
    const bundle = bundleTensors(results.flat().map(groupOf));
    const milliseconds = performance.now() - started;
    endpoint.post(
      {
        kind: "done",
        id,
        results: bundle,
        spent,
        error: error === undefined ? undefined : wireError(error),
        milliseconds,
        claim,
      },
      [bundle.data.buffer as ArrayBuffer, spent],
    );
  };
  // A job is claimed when it starts, not while an earlier one waits (e.g. for the engine to
  // load): the pool's thread may still take it back. A failure stays unhandled, as a worker's
  // error.
  let handled = Promise.resolve();
  endpoint.listen((message) => {
    const handling = handled.then(() => handle(message));
    handled = handling.catch(() => {});
  });
}
