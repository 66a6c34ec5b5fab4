import assert from "node:assert/strict";
import { SpareBuffers } from "../src/engine/spare_buffers.ts";

Deno.test("spare buffers: the smallest that fits is taken; the largest `limit` are kept", () => {
  const spares = new SpareBuffers(2);
  const [small, middle, large] = [8, 16, 32].map((bytes) => new ArrayBuffer(bytes));
  assert.equal(spares.take(1), undefined);
  spares.give(middle);
  spares.give(small);
  spares.give(large);
  // Three given, two kept: the smallest went.
  assert.equal(spares.take(1), middle);
  assert.equal(spares.take(17), large);
  assert.equal(spares.take(1), undefined);
  spares.give(small);
  assert.equal(spares.take(9), undefined, "none large enough");
  assert.equal(spares.take(8), small);
});
