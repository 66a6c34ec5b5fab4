/**
 * The README's test command: runs `deno test` over the project, colour only on a terminal (and
 * never with `NO_COLOR` set), and ends with one plain line `tests: N passed, N failed` taken from
 * the runner's own summary, so a run that executed no test can be told from a green one.
 *
 * ```sh
 * npm test                       # = deno run -A scripts/run_tests.ts
 * npm test -- tests/npy_test.ts  # arguments go to `deno test`
 * ```
 * @module
 */

const colour = Deno.stdout.isTerminal() && Deno.env.get("NO_COLOR") === undefined;
const env: Record<string, string> = colour ? {} : { NO_COLOR: "1" };
const child = new Deno.Command(Deno.execPath(), {
  args: ["test", "-A", "--v8-flags=--expose-gc", ...Deno.args],
  env,
  stdout: "piped",
  stderr: "inherit",
}).spawn();

// Pass the runner's output through as it comes, keeping only its last lines for the summary.
let tail = "";
const decoder = new TextDecoder();
for await (const chunk of child.stdout) {
  await Deno.stdout.write(chunk);
  tail = (tail + decoder.decode(chunk, { stream: true })).slice(-4096);
}
const status = await child.status;

// `ok | 469 passed (6 steps) | 0 failed | 3 ignored (25s)` or `FAILED | 3 passed | 1 failed (2s)`.
// deno-lint-ignore no-control-regex
const plain = tail.replace(/\x1b\[[0-9;]*m/g, "");
const summary = [
  ...plain.matchAll(/\|\s*(\d+) passed[^|\n]*\|\s*(\d+) failed(?:\s*\|\s*(\d+) ignored)?/g),
].at(-1);
if (summary === undefined) {
  console.log("tests: 0 passed, 0 failed");
  console.error("test: no summary line from deno test (no test ran?)");
  Deno.exit(status.success ? 1 : status.code);
}
const passed = Number(summary[1]);
const failed = Number(summary[2]);
const ignored = Number(summary[3] ?? 0);
console.log(`tests: ${passed} passed, ${failed} failed` + (ignored ? `, ${ignored} skipped` : ""));
if (passed === 0 && failed === 0) Deno.exit(1);
Deno.exit(status.code);
