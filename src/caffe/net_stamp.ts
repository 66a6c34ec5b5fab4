/**
 * A cheap record of a net's parameter trees, to tell whether they changed since it was taken:
 * what is derived from the trees alone (the simulator's run plan, layers' parsed parameters) may
 * then be kept between runs. It notes the layer list, each layer and its `params` message, and
 * every message's `fields` array with its length. Every `TextMessage` / `Layer` method that
 * changes a tree (`set`, `setAll`, `add`, `delete`, the `name`/`type`/`bottoms`/`tops` setters)
 * replaces or lengthens a `fields` array, so a stamp sees them; writing into a field entry
 * directly (which tree.ts tells callers not to do) is not seen. Blobs are not part of it.
 *
 * @module
 */

import { TextMessage } from "../proto/tree.ts";
import type { Net } from "./net.ts";

/** What {@linkcode netStamp} noted. */
export type NetStamp = readonly unknown[];

/**
 * The stamp of `net` as it is now: the layer list and its length, the header's items, then per
 * layer the layer, its `params` and their items (a message's items: its `fields` array, its
 * length, then the items of each field's nested message in order).
 */
export function netStamp(net: Net): NetStamp {
  const items: unknown[] = [net.layers, net.layers.length];
  const message = (tree: TextMessage) => {
    items.push(tree.fields, tree.fields.length);
    for (const field of tree.fields) {
      if (field.value instanceof TextMessage) message(field.value);
    }
  };
  message(net.header);
  for (const layer of net.layers) {
    items.push(layer, layer.params);
    message(layer.params);
  }
  return items;
}

/** Whether `net`'s trees are as they were when `stamp` was taken (compared in the order netStamp noted them). */
export function sameStamp(net: Net, stamp: NetStamp): boolean {
  const { layers } = net;
  if (stamp[0] !== layers || stamp[1] !== layers.length) return false;
  let index = sameMessage(net.header, stamp, 2);
  // Indexed loops: iterators would allocate on every run.
  for (let i = 0; i < layers.length; i++) {
    const layer = layers[i];
    if (index < 0 || stamp[index] !== layer || stamp[index + 1] !== layer.params) return false;
    index = sameMessage(layer.params, stamp, index + 2);
  }
  return index === stamp.length;
}

/** The stamp index after `tree`'s items when they match those from `index`, else -1. */
function sameMessage(tree: TextMessage, stamp: NetStamp, index: number): number {
  const { fields } = tree;
  if (stamp[index] !== fields || stamp[index + 1] !== fields.length) return -1;
  let next = index + 2;
  for (let i = 0; i < fields.length; i++) {
    if (next < 0) return -1;
    const { value } = fields[i];
    if (value instanceof TextMessage) next = sameMessage(value, stamp, next);
  }
  return next;
}
