/**
 * The README's test command: runs `deno test` over the project, colour only on a terminal (and
 * never with `NO_COLOR` set), and ends with one plain line `tests: N passed, N failed` taken from
 * the runner's own summary, so a run that executed no test can be told from a green one.
 *
 * Without colour, deno's own lines look like other runners' lines to a log reader: its per-file
 * header `running 3 tests from ./tests/x_test.ts` is cargo test's opening line, and its summary
 * `ok | 3 passed | 0 failed (2s)` starts as go test's closing `ok <package> <time>` does, with no
 * test of go's counted. So the header is printed as `./tests/x_test.ts: 3 tests` and the summary as
 * `deno test: ok in 2s` (its counts move to the closing line, the only place they appear).
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

// deno-lint-ignore no-control-regex
const ESCAPES = /\x1b\[[0-9;]*m/g;
const FILE_HEADER = /^running (\d+ tests?) from (.+)$/;
// `ok | 469 passed | 0 failed | 3 ignored (25s)` or `FAILED | 3 passed | 1 failed (2s)`.
const SUMMARY =
  /^(ok|FAILED) \|\s*(\d+) passed[^|]*\|\s*(\d+) failed(?:\s*\|\s*(\d+) ignored)?.*?(?:\((.+)\))?$/;

// Pass the runner's output through line by line, keeping its last summary line.
let summary: RegExpMatchArray | null = null;
const encoder = new TextEncoder();
function passLine(line: string) {
  const plain = line.replace(ESCAPES, "");
  const found = plain.match(SUMMARY);
  summary = found ?? summary;
  if (colour) return line;
  const header = plain.match(FILE_HEADER);
  if (header) return `${header[2]}: ${header[1]}`;
  return found ? `deno test: ${found[1]} in ${found[5] ?? "?"}` : line;
}
let pending = "";
for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
  const lines = (pending + text).split("\n");
  pending = lines.pop()!;
  if (lines.length > 0) {
    await Deno.stdout.write(encoder.encode(lines.map(passLine).join("\n") + "\n"));
  }
}
if (pending !== "") await Deno.stdout.write(encoder.encode(passLine(pending)));
const status = await child.status;

if (summary === null) {
  console.log("tests: 0 passed, 0 failed");
  console.error("test: no summary line from deno test (no test ran?)");
  Deno.exit(status.success ? 1 : status.code);
}
const passed = Number(summary[2]);
const failed = Number(summary[3]);
const ignored = Number(summary[4] ?? 0);
console.log(`tests: ${passed} passed, ${failed} failed` + (ignored ? `, ${ignored} skipped` : ""));
if (passed === 0 && failed === 0) Deno.exit(1);
Deno.exit(status.code);
