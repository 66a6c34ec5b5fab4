/**
 * The inputs a task notes (src/io/inputs.ts) stay that task's: after an `import()` made inside
 * `readingInputs` (as the WebAssembly loaders do on first use), Deno 2.9 can leave the task's
 * store in place for code it starts later (here: the next test), where `refuseInputs` outside any
 * task must not refuse the finished task's inputs, and a new task must note its own.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { readingInputs, refuseInputs } from "../src/io/inputs.ts";
import { readInputText } from "../src/io/files.ts";

const dir = Deno.makeTempDirSync({ prefix: "caffe-quant-inputs-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const input = join(dir, "model.prototxt");
Deno.writeTextFileSync(input, "name: 'a'\n");

Deno.test("a task reads an input and imports a module it had not loaded", async () => {
  const module = join(dir, "fresh.ts");
  Deno.writeTextFileSync(module, "export const loaded = true;\n");
  await readingInputs(async () => {
    await readInputText(input);
    const { loaded } = await import(`file://${module}`);
    assert.equal(loaded, true);
    // Inside the task its input is refused as an output.
    await assert.rejects(refuseInputs([input], []), { code: "OUTPUT_OVERWRITES_INPUT" });
  });
});

Deno.test("after it, outside any task, that input is no input; a new task notes its own", async () => {
  await refuseInputs([input], []);
  const other = join(dir, "weights.caffemodel");
  Deno.writeTextFileSync(other, "w");
  await readingInputs(async () => {
    await readInputText(other);
    await assert.rejects(refuseInputs([other], []), { code: "OUTPUT_OVERWRITES_INPUT" });
    await refuseInputs([input], []);
  });
  await refuseInputs([other], []);
});
