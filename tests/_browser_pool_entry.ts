/**
 * Bundled by tests/browser_pool_test.ts and loaded in Chromium: runs samples through an
 * `EnginePool` of Web Workers, as a page would.
 *
 * @module
 */

import { type EngineBuild, engineBuild, EnginePool, loadNet } from "../core.ts";

/**
 * Runs lenet-shaped samples (784 values each) on `threads` workers; the threads, outputs and the
 * page's engine build.
 */
export async function runPool(
  model: string,
  weights: number[],
  samples: number[][],
  threads: number,
): Promise<{ threads: number; prob: number[][]; build: EngineBuild }> {
  const net = loadNet(model, Uint8Array.from(weights));
  const pool = await EnginePool.open([net], { threads });
  try {
    const inputs = samples.map((values) =>
      new Map([["data", { shape: [1, 1, 28, 28], data: Float32Array.from(values) }]])
    );
    const prob: number[][] = [];
    for await (const [result] of pool.runAll(inputs)) {
      prob.push([...result.outputs.get("prob")!.data]);
    }
    return { threads: pool.threads, prob, build: engineBuild() };
  } finally {
    pool.close();
  }
}
