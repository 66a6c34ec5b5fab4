/**
 * The engine worker under `node:worker_threads`; started by src/io/node_workers.ts.
 *
 * @module
 */

import { parentPort } from "node:worker_threads";
import { serveEngine } from "../engine/engine_worker.ts";

const port = parentPort!;

serveEngine({
  post: (message, transfer) => port.postMessage(message, transfer),
  listen: (handler) => port.on("message", handler),
});
