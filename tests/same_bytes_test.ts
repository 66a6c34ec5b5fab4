/**
 * Same inputs, same bytes: lenet + record converted in Deno (core.ts), in Node (the npm bundle,
 * dist/mod.js) and in Chromium (the web page's worker) gives five files with equal SHA-256.
 */

import assert from "node:assert/strict";
import { convertInPage, haveChromium, withPage } from "./_browser.ts";
import {
  assertSuccess,
  hashOutputs,
  haveLenet,
  lenetModel,
  lenetWeights,
  readOutputs,
  referenceOutputs,
  repoRoot,
  runCommand,
  writeLenetRecord,
} from "./_runtime_fixture.ts";

Deno.test({
  name: "Deno, Node and Chromium write byte-identical outputs for lenet",
  ignore: !haveChromium || !haveLenet,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "caffe-quant-same-" });
    try {
      const record = await writeLenetRecord(dir);
      const deno = await hashOutputs(await referenceOutputs());

      const bundle = await runCommand(Deno.execPath(), ["run", "-A", "scripts/bundle.ts"], {
        cwd: repoRoot,
        timeoutMs: 300_000,
      });
      assertSuccess(bundle, "scripts/bundle.ts");
      await Deno.writeTextFile(
        `${dir}/convert.mjs`,
        `import { convertModel } from ${JSON.stringify(`${repoRoot}dist/mod.js`)};
const [modelFile, weightsFile, recordFile, savePath] = process.argv.slice(2);
await convertModel({ modelFile, weightsFile, recordFile, savePath });
`,
      );
      const node = await runCommand("node", [
        `${dir}/convert.mjs`,
        lenetModel,
        lenetWeights,
        record,
        `${dir}/node/lenet`,
      ]);
      assertSuccess(node, "node convert.mjs");
      const nodeHashes = await hashOutputs(await readOutputs(`${dir}/node`, "lenet"));

      let chromiumHashes;
      await withPage(async (session) => {
        const inputs = { model: lenetModel, weights: lenetWeights, record };
        chromiumHashes = await hashOutputs(await convertInPage(session, inputs, "lenet"));
      });

      assert.deepEqual({ node: nodeHashes, chromium: chromiumHashes }, {
        node: deno,
        chromium: deno,
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
