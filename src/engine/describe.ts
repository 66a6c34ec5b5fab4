/**
 * `inspect`'s full summary of a net: what the net says ({@linkcode inspectNet}), plus each
 * layer's output shapes from one simulator run and the layers fusion folds away.
 *
 * @module
 */

import { inspectNet, type NetSummary } from "../caffe/inspect.ts";
import type { Net } from "../caffe/net.ts";
import { ConvertError } from "../errors.ts";
import { foldedLayers } from "../quant/fuse.ts";
import { runNet } from "./run.ts";

/**
 * Summarises `net`: with `shapes` (the net has its weights) the net runs once on seeded inputs
 * of its declared shapes to learn every layer's top shapes (a net the simulator cannot run is
 * summarised without them, saying why); each BatchNorm and Scale that `convert` would fold is
 * marked with the layer it is folded into.
 */
export async function describeNet(net: Net, options: { shapes: boolean }): Promise<NetSummary> {
  const fusedInto = new Map(
    [...foldedLayers(net, new Set())].map(([name, composite]) => [name, composite.layer]),
  );
  if (!options.shapes) return inspectNet(net, { fusedInto });
  const topShapes = new Map<string, number[][]>();
  try {
    await runNet(net, {
      written: (layer, tops) => topShapes.set(layer.name, tops.map((top) => [...top.shape])),
    });
  } catch (error) {
    if (!(error instanceof ConvertError)) throw error;
    return inspectNet(net, { fusedInto, topShapes, shapeProblem: error.format() });
  }
  return inspectNet(net, { fusedInto, topShapes });
}
