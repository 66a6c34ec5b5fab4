/**
 * Values computed from a layer's parameter tree alone (its window, group, checks…), kept per
 * layer so that repeated runs do not parse the tree again. Valid within `runNet`, which checks
 * before each run that the net's trees did not change (src/caffe/net_stamp.ts) and forgets the
 * values of a changed net's layers.
 *
 * @module
 */

import type { Layer } from "../caffe/net.ts";

/** Each layer's kept values, by the function that computed them. */
const MEMOS = new WeakMap<Layer, Map<(layer: Layer) => unknown, unknown>>();

/**
 * `compute(layer)`, computed once per layer while its tree stays the same. `compute` must read
 * nothing but the layer's parameter tree (no blobs); one that throws is not kept (it throws
 * again on the next call, with the same error).
 */
export function memo<T>(layer: Layer, compute: (layer: Layer) => T): T {
  let values = MEMOS.get(layer);
  if (values?.has(compute)) return values.get(compute) as T;
  const value = compute(layer);
  if (values === undefined) MEMOS.set(layer, values = new Map());
  values.set(compute, value);
  return value;
}

/** Forgets every value kept for `layers` (their trees changed, or may have). */
export function forgetMemos(layers: Iterable<Layer>): void {
  for (const layer of layers) MEMOS.delete(layer);
}
