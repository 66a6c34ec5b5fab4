import assert from "node:assert/strict";
import { BlobValues } from "../src/engine/blob_values.ts";
import { FLOAT, type Value } from "../src/engine/tensor.ts";
import { random } from "./_builders.ts";

/** A value over `data`. */
function valueOf(data: Float32Array): Value {
  return { tensor: { shape: [data.length], data }, domain: FLOAT };
}

Deno.test("blob values: random sets, deletes, opens and closes keep a Map's and a Set's orders", () => {
  const next = random(7);
  const slots = 9;
  for (let round = 0; round < 200; round++) {
    const store = new BlobValues(slots);
    // The reference: what runNet held before slots, a Map of values and a Set of open blobs.
    const values = new Map<number, Value>();
    const open = new Set<number>();
    for (let step = 0; step < 40; step++) {
      const slot = Math.floor(next(0, slots));
      const action = Math.floor(next(0, 4));
      if (action === 0) {
        const value = valueOf(new Float32Array(1));
        store.set(slot, value);
        values.set(slot, value);
      } else if (action === 1) {
        store.delete(slot);
        values.delete(slot);
      } else if (action === 2) {
        store.open(slot);
        open.add(slot);
      } else {
        store.close(slot);
        open.delete(slot);
      }
      assert.equal(store.get(slot), values.get(slot));
      assert.equal(store.isOpen(slot), open.has(slot));
    }
    assert.deepEqual(store.heldSlots(), [...values.keys()]);
    assert.deepEqual(store.openSlots(), [...open]);
  }
});

Deno.test("blob values: holds tells views of one buffer that overlap from those that do not", () => {
  const buffer = new Float32Array(16);
  const store = new BlobValues(2);
  store.set(0, valueOf(buffer.subarray(4, 8)));
  assert.equal(store.holds(buffer.subarray(4, 8)), true);
  assert.equal(store.holds(buffer.subarray(7, 12)), true);
  assert.equal(store.holds(buffer.subarray(0, 4)), false);
  assert.equal(store.holds(buffer.subarray(8, 16)), false);
  assert.equal(store.holds(new Float32Array(4)), false);
  store.delete(0);
  assert.equal(store.holds(buffer.subarray(4, 8)), false);
});
