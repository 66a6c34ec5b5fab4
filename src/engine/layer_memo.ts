/**
 * Values computed from a layer's parameter tree alone (its window, group, checks…), kept per
 * layer so that repeated runs do not parse the tree again; and values that also depend on what
 * a run hands the layer (its input's shape, its blobs' arrays), kept while those stay the same
 * ({@linkcode keyedMemo}). Valid within `runNet`, which checks before each run that the net's
 * trees did not change (src/caffe/net_stamp.ts) and forgets the values of a changed net's layers.
 *
 * @module
 */

import type { Layer } from "../caffe/net.ts";

/** Each layer's kept values, by the function that computed them (or the tag of keyedMemo). */
const MEMOS = new WeakMap<Layer, Map<object, unknown>>();

/** A value of {@linkcode keyedMemo} with the keys it was computed for. */
interface Keyed {
  keys: readonly unknown[];
  value: unknown;
}

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

/**
 * `compute()`, kept for `layer` under `tag` while `keys` stay the same item by item (`===`) and
 * the layer's tree does not change; the last value only. `keys` must hold everything besides the
 * tree that `compute` reads (e.g. the input shape's sizes, the blob objects and their arrays,
 * which are replaced, never changed in place); a copy of them is kept, so the caller may fill
 * the same array on every call. One that throws is not kept.
 */
export function keyedMemo<T>(
  layer: Layer,
  tag: object,
  keys: readonly unknown[],
  compute: () => T,
): T {
  let values = MEMOS.get(layer);
  const kept = values?.get(tag) as Keyed | undefined;
  if (kept !== undefined && sameKeys(kept.keys, keys)) return kept.value as T;
  const keptKeys = keys.slice();
  const value = compute();
  if (values === undefined) MEMOS.set(layer, values = new Map());
  values.set(tag, { keys: keptKeys, value });
  return value;
}

function sameKeys(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** `layer.tops`, read once while its tree stays the same (the getter makes a new array). */
export function keptTops(layer: Layer): readonly string[] {
  return memo(layer, topsOf);
}

function topsOf(layer: Layer): readonly string[] {
  return layer.tops;
}

/** Forgets every value kept for `layers` (their trees changed, or may have). */
export function forgetMemos(layers: Iterable<Layer>): void {
  for (const layer of layers) MEMOS.delete(layer);
}
