/**
 * How engine workers start in this runtime: module Web Workers where `Worker` is a global (Deno,
 * browsers), else the starter registered by src/io/node_workers.ts (Node); and how many cores
 * there are. Kept apart from the pool so that registering costs no engine code.
 *
 * @module
 */

import type { FromWorker, ToWorker } from "./engine_worker.ts";

/** The pool's end of a channel to one worker. */
export interface WorkerPort {
  /** Sends `message`, transferring `transfer`. */
  post(message: ToWorker, transfer: ArrayBuffer[]): void;
  /** Calls `onMessage` with each answer and `onError` when the worker fails (e.g. cannot load). */
  listen(onMessage: (message: FromWorker) => void, onError: (message: string) => void): void;
  /** Stops the worker. */
  terminate(): void;
}

/** Starts one engine worker. */
export type WorkerStarter = () => WorkerPort;

/**
 * The npm bundles' path of the web worker script relative to the bundled pool code, set by
 * scripts/bundle.ts (`define`); from source it is ./engine_worker_web.ts beside this file.
 */
declare const CAFFE_QUANT_WEB_WORKER: string | undefined;

/** Starts a module Web Worker running src/engine/engine_worker_web.ts. */
function startWebWorker(): WorkerPort {
  const script = typeof CAFFE_QUANT_WEB_WORKER === "string"
    ? CAFFE_QUANT_WEB_WORKER
    : "./engine_worker_web.ts";
  const worker = new Worker(new URL(script, import.meta.url), {
    type: "module",
    name: "caffe-quant engine",
  });
  return {
    post: (message, transfer) => worker.postMessage(message, transfer),
    listen(onMessage, onError) {
      worker.onmessage = ({ data }) => onMessage(data);
      worker.onerror = (event) => {
        event.preventDefault();
        onError(event.message ?? "the worker failed");
      };
      worker.onmessageerror = () => onError("a message from the worker could not be read");
    },
    terminate: () => worker.terminate(),
  };
}

/** How runtimes without Web Workers (Node) start workers, and their cores, once registered. */
let registered: { start: WorkerStarter; cores: number } | undefined;

/**
 * Registers how to start workers where `Worker` is not a global, and the cores there
 * (src/io/node_workers.ts does for Node). Web Workers are used wherever they exist.
 */
export function registerWorkerStarter(start: WorkerStarter, cores: number): void {
  registered = { start, cores };
}

/** How workers start here, or undefined (one thread). */
export function workerStarter(): WorkerStarter | undefined {
  if (typeof Worker === "function") return startWebWorker;
  return registered?.start;
}

/**
 * The threads to use by default: every core the runtime reports (`navigator.hardwareConcurrency`,
 * or what the registered starter reports), 1 if none.
 */
export function defaultThreads(): number {
  const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator
    ?.hardwareConcurrency ?? registered?.cores;
  return Number.isInteger(cores) && cores! > 0 ? cores! : 1;
}
