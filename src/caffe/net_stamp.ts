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

/** Calls `visit` with each noted item in a fixed order until it returns false; false then. */
function walk(net: Net, visit: (item: unknown) => boolean): boolean {
  const message = (tree: TextMessage): boolean => {
    if (!visit(tree.fields) || !visit(tree.fields.length)) return false;
    for (const field of tree.fields) {
      if (field.value instanceof TextMessage && !message(field.value)) return false;
    }
    return true;
  };
  if (!visit(net.layers) || !visit(net.layers.length) || !message(net.header)) return false;
  for (const layer of net.layers) {
    if (!visit(layer) || !visit(layer.params) || !message(layer.params)) return false;
  }
  return true;
}

/** The stamp of `net` as it is now. */
export function netStamp(net: Net): NetStamp {
  const items: unknown[] = [];
  walk(net, (item) => items.push(item) > 0);
  return items;
}

/** Whether `net`'s trees are as they were when `stamp` was taken. */
export function sameStamp(net: Net, stamp: NetStamp): boolean {
  let index = 0;
  return walk(net, (item) => item === stamp[index++]) && index === stamp.length;
}
