import assert from "node:assert/strict";
import { engineKernels } from "../src/wasm/engine.ts";
import { instantiate, sharedMemoryModule } from "../src/wasm/load.ts";
import { randomValues } from "./_builders.ts";

/** The WebAssembly header: magic and version 1. */
const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
/** An export section exporting memory 0 as "memory". */
const EXPORT_MEMORY = [0x07, 0x0a, 0x01, 0x06, ...new TextEncoder().encode("memory"), 0x02, 0x00];

/** `(module (memory (export "memory") <limits>))` with the memory section's limits bytes. */
function memoryModule(limits: number[]): Uint8Array {
  const body = [0x01, ...limits];
  return Uint8Array.from([...HEADER, 0x05, body.length, ...body, ...EXPORT_MEMORY]);
}

function base64Of(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

Deno.test("sharedMemoryModule: the memory section becomes shared with 65536 pages at most, the rest unchanged", () => {
  // Limits per the binary format: 0x00 min, 0x01 min max, 0x03 min max shared; LEB128 numbers
  // (65536 = 0x80 0x80 0x04).
  const sharedLimits = [0x03, 0x02, 0x80, 0x80, 0x04];
  assert.deepEqual(sharedMemoryModule(memoryModule([0x00, 0x02])), memoryModule(sharedLimits));
  assert.deepEqual(
    sharedMemoryModule(memoryModule([0x01, 0x02, 0x10])),
    memoryModule(sharedLimits),
  );
  // A minimum of 200 pages takes two LEB128 bytes (0xc8 0x01): the section grows by its size.
  assert.deepEqual(
    sharedMemoryModule(memoryModule([0x00, 0xc8, 0x01])),
    memoryModule([0x03, 0xc8, 0x01, 0x80, 0x80, 0x04]),
  );
  // No memory, or one that is shared already: nothing to patch.
  assert.equal(sharedMemoryModule(Uint8Array.from(HEADER)), undefined);
  assert.equal(sharedMemoryModule(memoryModule(sharedLimits)), undefined);
});

Deno.test("instantiate(…, true) gives a shared memory whose earlier views survive growth; without, an ordinary one", async () => {
  const text = base64Of(memoryModule([0x00, 0x01]));
  const shared = await instantiate(text, true);
  assert.equal(shared.shared, true);
  const view = new Float32Array(shared.memory.buffer, 16, 4);
  view.set([1.5, 2.5, 3.5, 4.5]);
  shared.memory.grow(3);
  assert.equal(view.length, 4);
  assert.deepEqual(Array.from(view), [1.5, 2.5, 3.5, 4.5]);
  new Float32Array(shared.memory.buffer)[5] = 7;
  assert.equal(view[1], 7);
  const plain = await instantiate(text);
  assert.equal(plain.shared, false);
});

Deno.test("output arena in shared WebAssembly memory: a value the next kernel reads after the memory grew mid-run is intact", async () => {
  const kernels = await engineKernels();
  const x = randomValues(1000, 7);
  /** One run: a = 2x + 0.5 into the arena, an input large enough to grow the memory, b = 3a. */
  const run = (largeCount: number) =>
    kernels.withOutputArena(() => {
      const a = kernels.power(x, 1, 2, 0.5);
      kernels.power(new Float32Array(largeCount), 1, 1, 0);
      const b = kernels.power(a, 1, 3, 0);
      return { a: a.slice(), b: b.slice(), held: kernels.inOutputArena(a), buffer: a.buffer };
    });
  run(1); // sizes the arena for the runs after
  const { buffer } = run(1);
  assert.ok(buffer instanceof SharedArrayBuffer, "the arena lies in shared WebAssembly memory");
  // Copying the large input in takes more than the whole memory the arena's views were made on.
  const { a, b, held } = run(buffer.byteLength / 4 + (1 << 20));
  assert.ok(held);
  // 2x is exact in float32, so 2x + 0.5 rounds once, fused or not; 3a rounds once.
  assert.deepEqual(a, x.map((value) => Math.fround(2 * value + 0.5)));
  assert.deepEqual(b, a.map((value) => Math.fround(3 * value)));
});
