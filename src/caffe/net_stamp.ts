/**
 * A cheap record of a net's parameter trees, to tell whether they changed since it was taken:
 * what is derived from the trees alone (the simulator's run plan, layers' parsed parameters) may
 * then be kept between runs. It notes the layer list, each layer and its `params` message, and
 * every message's `fields` array with its length. Every `TextMessage` / `Layer` method that
 * changes a tree (`set`, `setAll`, `add`, `delete`, the `name`/`type`/`bottoms`/`tops` setters)
 * replaces or lengthens a `fields` array, so a stamp sees them; writing into a field entry
 * directly (which tree.ts tells callers not to do) is not seen, but for an entry that held a
 * nested message. Blobs are not part of it. A check compares only the arrays, their lengths and
 * the nested messages at the places they were found, not every field: a warm run of a small net
 * checks its stamp every time (mtcnn_pnet's deploy net, 19 layers, spent ~5 % of its run walking
 * every field).
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
 * length, the count of its fields holding a nested message, then for each of those in order its
 * place in `fields`, the nested message and that message's items).
 */
export function netStamp(net: Net): NetStamp {
  const items: unknown[] = [net.layers, net.layers.length];
  const message = (tree: TextMessage) => {
    const { fields } = tree;
    items.push(fields, fields.length);
    const countAt = items.push(0) - 1;
    let count = 0;
    for (let place = 0; place < fields.length; place++) {
      const { value } = fields[place];
      if (!(value instanceof TextMessage)) continue;
      items.push(place, value);
      message(value);
      count++;
    }
    items[countAt] = count;
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
  const count = stamp[index + 2] as number;
  let next = index + 3;
  for (let i = 0; i < count; i++) {
    const nested = stamp[next + 1];
    if (fields[stamp[next] as number].value !== nested) return -1;
    next = sameMessage(nested as TextMessage, stamp, next + 2);
    if (next < 0) return -1;
  }
  return next;
}
