/**
 * Import by URL: the repository served over HTTP on 127.0.0.1 (scripts/serve_modules.ts), imported as
 * `http://127.0.0.1:<port>/mod.ts` by a fresh Deno process with an empty module cache, in a
 * folder with no package.json or node_modules, converts lenet. The image decoders' `npm:`
 * specifiers then resolve from the npm registry (reachable in CI).
 */

import assert from "node:assert/strict";
import {
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
import { serveModules } from "../scripts/serve_modules.ts";

/** The registry Deno fetches npm packages from. */
const registry = Deno.env.get("NPM_CONFIG_REGISTRY") ?? "https://registry.npmjs.org/";

/** Whether the npm registry answers; required in CI, elsewhere the test is skipped without it. */
async function registryReachable(): Promise<boolean> {
  if (Deno.env.get("CI") === "true") return true;
  try {
    const response = await fetch(new URL("fast-png", registry), {
      method: "HEAD",
      signal: AbortSignal.timeout(10_000),
    });
    await response.body?.cancel();
    return true;
  } catch (error) {
    console.warn(
      `skipping the URL import test: the npm registry ${registry} is unreachable (${error})`,
    );
    return false;
  }
}

Deno.test({
  name: "a fresh Deno imports mod.ts by URL (empty cache, no package.json) and converts lenet",
  ignore: !haveLenet || !(await registryReachable()),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "caffe-quant-url-" });
    const requested: string[] = [];
    const server = serveModules({
      root: repoRoot,
      port: 0,
      onRequest: (path) => requested.push(path),
    });
    try {
      const host = `127.0.0.1:${server.addr.port}`;
      const record = await writeLenetRecord(dir);
      await Deno.mkdir(`${dir}/work`);
      await Deno.writeTextFile(
        `${dir}/work/convert.ts`,
        `import { convertModel } from "http://${host}/mod.ts";
const [model, weights, record, savePath] = Deno.args;
const report = await convertModel({ modelFile: model, weightsFile: weights, recordFile: record, savePath });
console.log(JSON.stringify(report.quantizedLayers));
`,
      );
      const env = Deno.env.toObject();
      for (const name of Object.keys(env)) if (name.startsWith("DENO_")) delete env[name];
      const result = await runCommand(Deno.execPath(), [
        "run",
        "--no-config",
        "--no-prompt",
        `--allow-import=${host}`,
        "--allow-read",
        "--allow-write",
        "convert.ts",
        lenetModel,
        lenetWeights,
        record,
        `${dir}/out/lenet`,
      ], {
        cwd: `${dir}/work`,
        env: { ...env, DENO_DIR: `${dir}/deno_dir`, NO_COLOR: "1" },
        clearEnv: true,
        timeoutMs: 240_000,
      });
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(JSON.parse(result.stdout), ["conv1", "conv2", "ip1", "ip2"]);
      assert.ok(requested.includes("/mod.ts") && requested.includes("/core.ts"));
      for (const file of ["package.json", "node_modules", "deno.json", "deno.lock"]) {
        await assert.rejects(Deno.stat(`${dir}/work/${file}`), Deno.errors.NotFound, file);
      }
      const npmCache = [...Deno.readDirSync(`${dir}/deno_dir`)].map((entry) => entry.name);
      assert.ok(npmCache.includes("npm"), `npm packages came from the registry: ${npmCache}`);
      const written = await hashOutputs(await readOutputs(`${dir}/out`, "lenet"));
      assert.deepEqual(written, await hashOutputs(await referenceOutputs()));
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
