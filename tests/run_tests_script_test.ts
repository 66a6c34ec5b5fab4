/**
 * scripts/run_tests.ts (the README's `npm test`): its log carries one closing line, the plain
 * `tests: N passed, N failed`, and no line that another runner's log reader would take for its own
 * (cargo's `running N tests`, go's `ok <package>`); a failing or empty run exits non-zero.
 */

import assert from "node:assert/strict";
import { repoRoot, runCommand } from "./_runtime_fixture.ts";

const PASSING = `
Deno.test("adds", () => { if (1 + 1 !== 2) throw new Error("no"); });
Deno.test("also adds", () => {});
Deno.test({ name: "not now", ignore: true, fn() {} });
`;
const FAILING = `Deno.test("fails", () => { throw new Error("deliberate"); });`;

/** Runs the script on test files written into a fresh folder, without colour as in CI. */
async function runOn(files: Record<string, string>, extra: string[] = []) {
  const dir = await Deno.makeTempDir({ prefix: "caffe-quant-run-tests-" });
  try {
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(`${dir}/${name}`, text);
    }
    return await runCommand(Deno.execPath(), [
      "run",
      "-A",
      `${repoRoot}/scripts/run_tests.ts`,
      "--no-config",
      dir,
      ...extra,
    ], { cwd: dir, env: { NO_COLOR: "1" } });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function assertNoForeignRunnerLines(stdout: string) {
  for (const line of stdout.split("\n")) {
    assert.doesNotMatch(line, /^running \d+ tests?\b/, `cargo's opening line: ${line}`);
    assert.doesNotMatch(line, /^(ok|FAIL|FAILED)\b/, `go's closing line: ${line}`);
    assert.doesNotMatch(line, /^test result:/, `cargo's closing line: ${line}`);
  }
}

Deno.test("npm test: a green run ends with the plain counts line, and no line looks like cargo's or go's", async () => {
  const result = await runOn({ "a_test.ts": PASSING });
  assert.equal(result.code, 0, result.stderr);
  assertNoForeignRunnerLines(result.stdout);
  const lines = result.stdout.trimEnd().split("\n");
  assert.equal(lines.at(-1), "tests: 2 passed, 0 failed, 1 skipped");
  assert.match(result.stdout, /^\S*a_test\.ts: 3 tests$/m);
  assert.match(result.stdout, /^deno test: ok in \S+$/m);
});

Deno.test("npm test: a failing test is counted and the run exits non-zero", async () => {
  const result = await runOn({ "a_test.ts": PASSING, "b_test.ts": FAILING });
  assert.notEqual(result.code, 0);
  assertNoForeignRunnerLines(result.stdout);
  assert.equal(result.stdout.trimEnd().split("\n").at(-1), "tests: 2 passed, 1 failed, 1 skipped");
});

Deno.test("npm test: a filter that matches nothing makes the run fail", async () => {
  const result = await runOn({ "a_test.ts": PASSING }, ["--filter", "no test has this name"]);
  assert.notEqual(result.code, 0);
  assert.equal(result.stdout.trimEnd().split("\n").at(-1), "tests: 0 passed, 0 failed");
});
