import assert from "node:assert/strict";
import { concatRows } from "../src/engine/tensor.ts";

Deno.test("concatRows: rows of tensors one after another; other axes must agree", () => {
  const a = { shape: [1, 2, 2], data: new Float32Array([1, 2, 3, 4]) };
  const b = { shape: [2, 2, 2], data: new Float32Array([5, 6, 7, 8, 9, 10, 11, 12]) };
  const joined = concatRows([a, b])!;
  assert.deepEqual(joined.shape, [3, 2, 2]);
  assert.deepEqual([...joined.data], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  assert.equal(concatRows([a]), a, "one tensor as it is");
  assert.equal(concatRows([a, { shape: [1, 4], data: new Float32Array(4) }]), undefined);
  assert.equal(concatRows([a, { shape: [1, 2, 3], data: new Float32Array(6) }]), undefined);
});
