/**
 * The engine pool's wire format (src/engine/engine_worker.ts): a job's tensors cross as one array
 * and one JSON string, and come back as the same names, shapes, elements and per-group notes.
 */

import assert from "node:assert/strict";
import { bundleTensors, unbundleTensors } from "../src/engine/engine_worker.ts";
import type { Tensor } from "../src/engine/run.ts";

function tensor(shape: number[], first: number): Tensor {
  const count = shape.reduce((a, b) => a * b, 1);
  return { shape, data: Float32Array.from({ length: count }, (_, i) => first + i * 0.5) };
}

Deno.test("bundleTensors/unbundleTensors: groups, absent groups, empty tensors and notes round-trip", () => {
  const a = tensor([1, 2, 3], 1);
  const empty = tensor([0, 4], 0);
  const b = tensor([4], -7);
  const c = tensor([2, 2], 100);
  const groups = [
    { tensors: new Map([["a", a], ["none", empty], ["b", b]]) },
    undefined,
    { tensors: new Map<string, Tensor>() },
    {
      tensors: new Map([["c", c], ["none", empty]]),
      skipped: [{ layer: "x", type: "Python", reason: "not simulated" }],
      deployBlobs: new Map([["c", "int8" as const]]),
    },
  ];
  const bundle = bundleTensors(groups);
  assert.equal(bundle.data.length, 6 + 0 + 4 + 4);
  const back = unbundleTensors(bundle);
  assert.equal(back.length, 4);
  assert.equal(back[1], undefined);
  assert.deepEqual([...back[0]!.tensors.keys()], ["a", "none", "b"]);
  assert.deepEqual(back[0]!.tensors.get("a"), a);
  assert.deepEqual(back[0]!.tensors.get("none"), empty);
  assert.deepEqual(back[0]!.tensors.get("b"), b);
  assert.equal(back[2]!.tensors.size, 0);
  assert.deepEqual(back[3]!.tensors.get("c"), c);
  assert.deepEqual(back[3]!.tensors.get("none"), empty);
  assert.deepEqual(back[3]!.skipped, groups[3]!.skipped);
  assert.deepEqual(back[3]!.deployBlobs, new Map([["c", "int8"]]));
  assert.deepEqual(back[0]!.skipped, []);
  assert.equal(back[0]!.deployBlobs.size, 0);
});

Deno.test("bundleTensors copies; unbundled tensors are copies unless views are asked for", () => {
  const a = tensor([3], 1);
  const bundle = bundleTensors([{ tensors: new Map([["a", a]]) }]);
  a.data[0] = 42;
  assert.equal(bundle.data[0], 1);

  const copies = unbundleTensors(bundle);
  const views = unbundleTensors(bundle, true);
  const copy = copies[0]!.tensors.get("a")!.data;
  const view = views[0]!.tensors.get("a")!.data;
  assert.notEqual(copy.buffer, bundle.data.buffer);
  assert.equal(view.buffer, bundle.data.buffer);
  bundle.data[1] = -1;
  assert.equal(copy[1], 1.5);
  assert.equal(view[1], -1);
});
