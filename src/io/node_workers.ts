/**
 * Engine workers for Node (`node:worker_threads`), which has no Web Workers: importing this
 * module registers them with src/engine/worker_starter.ts (mod.ts and src/cli.ts do). Runtimes with Web
 * Workers (Deno, browsers) keep using those.
 *
 * @module
 */

import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { registerWorkerStarter, type WorkerPort } from "../engine/worker_starter.ts";

/**
 * The npm bundles' path of the Node worker script relative to the bundled code, set by
 * scripts/bundle.ts (`define`); from source it is ./engine_worker_node.ts beside this file.
 */
declare const CAFFE_QUANT_NODE_WORKER: string | undefined;

/** Starts a `node:worker_threads` worker running src/io/engine_worker_node.ts. */
function startNodeWorker(): WorkerPort {
  const script = typeof CAFFE_QUANT_NODE_WORKER === "string"
    ? CAFFE_QUANT_NODE_WORKER
    : "./engine_worker_node.ts";
  const worker = new Worker(new URL(script, import.meta.url), { name: "caffe-quant engine" });
  return {
    post: (message, transfer) => worker.postMessage(message, transfer),
    listen(onMessage, onError) {
      worker.removeAllListeners();
      worker.on("message", onMessage);
      worker.on("error", (error) => onError(error.message));
      worker.on("messageerror", () => onError("a message from the worker could not be read"));
    },
    terminate: () => void worker.terminate(),
  };
}

registerWorkerStarter(startNodeWorker, availableParallelism());
