/**
 * The engine worker's side of {@linkcode EnginePool} (src/engine/engine_pool.ts): the messages both
 * sides exchange and the loop a worker runs. A worker holds its own copy of the nets (sent once,
 * packed) and its own WebAssembly instances; each job is one sample's inputs, run through some
 * of those nets with `runNet`. Tensors cross as typed arrays whose buffers are transferred, and a
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
import { runNet, type RunResult, type SkippedLayer, type Tensor } from "./run.ts";
import { type EngineBuild, useEngineBuild } from "../wasm/engine_build.ts";

/** A named tensor as it crosses to or from a worker. */
export interface WireTensor {
  /** Blob name. */
  name: string;
  /** Dimensions. */
  shape: number[];
  /** Elements. */
  data: Float32Array;
}

/** A `RunResult` as it crosses back (no `blobs` nor `checkpoints`: they stay in the worker). */
export interface WireResult {
  /** The net's outputs. */
  outputs: WireTensor[];
  /** Layers not run. */
  skipped: SkippedLayer[];
  /** Outputs holding a deploy model's integers. */
  deployBlobs: [string, "int8" | "accumulator"][];
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
  }
  | {
    kind: "run";
    id: number;
    nets: number[];
    /** Samples, each run through every net of `nets` (undefined: inputs all seeded). */
    samples: (WireTensor[] | undefined)[];
    seed: number;
  };

/** What a worker answers. */
export type FromWorker =
  | { kind: "ready" }
  | {
    kind: "done";
    id: number;
    /** Per sample done, per net, in order: up to the failing sample when `error` is set. */
    results: WireResult[][];
    /** The first sample's error; the samples after it were not run. */
    error?: WireError;
    /** Time spent running the samples. */
    milliseconds: number;
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

/** Named tensors as a map. */
export function tensorMap(tensors: readonly WireTensor[]): Map<string, Tensor> {
  return new Map(tensors.map(({ name, shape, data }) => [name, { shape, data }]));
}

/**
 * `tensors` as wire tensors, and the buffers to transfer: each distinct buffer once; data in a
 * buffer of `keep` (e.g. the net's weights) is copied first, so that nothing of it is sent.
 */
export function wireTensors(
  tensors: Iterable<[string, Tensor]>,
  keep: ReadonlySet<ArrayBufferLike> = new Set(),
): { tensors: WireTensor[]; transfer: ArrayBuffer[] } {
  const transfer = new Set<ArrayBuffer>();
  const wire: WireTensor[] = [];
  for (const [name, tensor] of tensors) {
    let data = tensor.data;
    if (keep.has(data.buffer) || !(data.buffer instanceof ArrayBuffer)) data = data.slice();
    transfer.add(data.buffer as ArrayBuffer);
    wire.push({ name, shape: tensor.shape, data });
  }
  return { tensors: wire, transfer: [...transfer] };
}

/** Runs the worker's loop on `endpoint`: nets first, then jobs. */
export function serveEngine(endpoint: WorkerEndpoint): void {
  let nets: Net[] = [];
  let weights = new Set<ArrayBufferLike>();
  endpoint.listen(async (message) => {
    if (message.kind === "nets") {
      try {
        useEngineBuild(message.build);
        nets = message.nets.map(unpackNet);
        weights = new Set(message.nets.map((net) => net.data));
        endpoint.post({ kind: "ready" }, []);
      } catch (error) {
        endpoint.post({ kind: "failed", error: wireError(error) }, []);
      }
      return;
    }
    const started = performance.now();
    const transfer = new Set<ArrayBuffer>();
    const results: WireResult[][] = [];
    let failure: WireError | undefined;
    for (const sample of message.samples) {
      try {
        const inputs = sample && tensorMap(sample);
        const runs: RunResult[] = [];
        for (const index of message.nets) {
          runs.push(await runNet(nets[index], { inputs, seed: message.seed }));
        }
        results.push(runs.map((result) => {
          const outputs = wireTensors(result.outputs, weights);
          for (const buffer of outputs.transfer) transfer.add(buffer);
          return {
            outputs: outputs.tensors,
            skipped: result.skipped,
            deployBlobs: [...result.deployBlobs],
          };
        }));
      } catch (error) {
        failure = wireError(error);
        break;
      }
    }
    const milliseconds = performance.now() - started;
    endpoint.post(
      { kind: "done", id: message.id, results, error: failure, milliseconds },
      [...transfer],
    );
  });
}
