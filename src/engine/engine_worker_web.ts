/**
 * The engine worker as a module Web Worker (Deno, browsers); started by src/engine/pool.ts.
 *
 * @module
 */

import { serveEngine } from "./engine_worker.ts";

const scope = self as unknown as DedicatedWorkerGlobalScope;

serveEngine({
  post: (message, transfer) => scope.postMessage(message, transfer),
  listen: (handler) => {
    scope.onmessage = ({ data }) => handler(data);
  },
});
