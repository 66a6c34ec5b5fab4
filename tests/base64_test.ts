/**
 * decodeBase64 (src/wasm/load.ts) gives the same bytes through each decoder it may take: the
 * runtime's `Uint8Array.fromBase64`, Node's `Buffer`, and `atob` with a loop.
 */

import assert from "node:assert/strict";
import { decodeBase64 } from "../src/wasm/load.ts";
import { engineModuleBase64 } from "../src/wasm/engine_build.ts";

/** Standard base64 of `bytes`, made with `btoa` (independent of the decoders under test). */
function encode(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}

/** Runs `body` with `Uint8Array.fromBase64` and, unless `keepBuffer`, `Buffer` hidden. */
function withDecoders<T>(keepBuffer: boolean, body: () => T): T {
  const uint8 = Uint8Array as { fromBase64?: unknown };
  const global = globalThis as { Buffer?: unknown };
  const [fromBase64, buffer] = [uint8.fromBase64, global.Buffer];
  uint8.fromBase64 = undefined;
  if (!keepBuffer) global.Buffer = undefined;
  try {
    return body();
  } finally {
    uint8.fromBase64 = fromBase64;
    global.Buffer = buffer;
  }
}

Deno.test("decodeBase64: every decoder gives the bytes btoa encoded", async () => {
  let seed = 12345;
  const inputs = [0, 1, 2, 3, 4, 5, 100, 4095, 4096, 70_001].map((length) =>
    Uint8Array.from({ length }, () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24)
  );
  // A real module too: its bytes start with WebAssembly's magic number and version.
  const module = await engineModuleBase64("portable");
  const texts = [...inputs.map(encode), module];
  const decoders: [string, (text: string) => Uint8Array][] = [
    ["default", decodeBase64],
    ["Buffer", (text) => withDecoders(true, () => decodeBase64(text))],
    ["atob", (text) => withDecoders(false, () => decodeBase64(text))],
  ];
  for (const [name, decode] of decoders) {
    for (const [i, input] of inputs.entries()) {
      const bytes = decode(texts[i]);
      assert.equal(bytes.constructor, Uint8Array, name);
      assert.deepEqual([...bytes], [...input], `${name}, ${input.length} bytes`);
    }
    const moduleBytes = decode(module);
    assert.deepEqual([...moduleBytes.subarray(0, 8)], [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0], name);
    assert.equal(encode(moduleBytes), module, `${name}: the module's bytes encode back`);
  }
});
