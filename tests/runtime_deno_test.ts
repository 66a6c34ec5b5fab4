/**
 * Deno: scripts/convert.ts converts lenet with no permission but file access
 * (`--allow-read --allow-write`, no prompts), and writes what the in-process conversion gives.
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

const PERMISSIONS = ["--no-prompt", "--allow-read", "--allow-write"];

Deno.test({
  name: "scripts/convert.ts converts lenet with only --allow-read --allow-write",
  ignore: !haveLenet,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "caffe-quant-deno-" });
    try {
      const record = await writeLenetRecord(dir);
      const result = await runCommand(Deno.execPath(), [
        "run",
        ...PERMISSIONS,
        "scripts/convert.ts",
        lenetModel,
        lenetWeights,
        record,
        `${dir}/out/lenet`,
      ], { cwd: repoRoot });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /quantized conv1, conv2, ip1, ip2/);
      const written = await hashOutputs(await readOutputs(`${dir}/out`, "lenet"));
      assert.deepEqual(written, await hashOutputs(await referenceOutputs()));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("scripts/convert.ts reports a missing input as error[INPUT_NOT_FOUND], exit 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "caffe-quant-deno-" });
  try {
    const missing = `${dir}/missing.prototxt`;
    const result = await runCommand(Deno.execPath(), [
      "run",
      ...PERMISSIONS,
      "scripts/convert.ts",
      missing,
      `${dir}/missing.caffemodel`,
      `${dir}/missing.txt`,
      `${dir}/out/x`,
    ], { cwd: repoRoot });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^error\[INPUT_NOT_FOUND\] .*missing\./m);
    assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace for a user mistake");
    await assert.rejects(Deno.stat(`${dir}/out`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("scripts/convert.ts prints its usage and exits 2 on wrong arguments", async () => {
  const result = await runCommand(Deno.execPath(), [
    "run",
    ...PERMISSIONS,
    "scripts/convert.ts",
    "only-one",
  ], { cwd: repoRoot });
  assert.equal(result.code, 2);
  assert.match(
    result.stderr,
    /^usage: npx deno run --allow-read --allow-write scripts\/convert\.ts/,
  );
});
