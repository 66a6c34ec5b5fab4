// The direction of dependencies the code rules fix: kernels see arrays, not nets; the
// comparison and its report depend one way.

import assert from "node:assert/strict";

/** The module paths `file` imports or re-exports. */
function importsOf(file: URL): string[] {
  const text = Deno.readTextFileSync(file);
  return [...text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+"([^"]+)"/gms)].map((m) => m[1]);
}

const src = new URL("../src/", import.meta.url);

Deno.test("src/wasm/ imports no Caffe, quantization or simulator module", () => {
  for (const entry of Deno.readDirSync(new URL("wasm/", src))) {
    if (!entry.name.endsWith(".ts")) continue;
    for (const path of importsOf(new URL(`wasm/${entry.name}`, src))) {
      assert.doesNotMatch(
        path,
        /^\.\.\/(caffe|quant|engine|proto|io|cli)\//,
        `${entry.name}: ${path}`,
      );
    }
  }
});

Deno.test("src/engine/report.ts reads compare.ts, and compare.ts does not import report.ts", () => {
  assert.ok(importsOf(new URL("engine/report.ts", src)).includes("./compare.ts"));
  assert.ok(!importsOf(new URL("engine/compare.ts", src)).includes("./report.ts"));
});
