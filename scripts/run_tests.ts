/**
 * The README's test command: runs `deno test` over the project, colour only on a terminal (and
 * never with `NO_COLOR` set), and ends with one plain line `tests: N passed, N failed` taken from
 * the runner's own summary, so a run that executed no test can be told from a green one.
 *
 * Without colour, deno's per-file header `running 3 tests from ./tests/x_test.ts` is the line
 * cargo test opens with, and a log reader that knows cargo then looks for cargo's closing line and
 * finds none. So the header is printed as `./tests/x_test.ts: 3 tests` instead.
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
const SUMMARY = /\|\s*(\d+) passed[^|]*\|\s*(\d+) failed(?:\s*\|\s*(\d+) ignored)?/;

// Pass the runner's output through line by line, keeping its last summary line.
let summary: RegExpMatchArray | null = null;
const encoder = new TextEncoder();
function passLine(line: string) {
  const plain = line.replace(ESCAPES, "");
  const header = colour ? null : plain.match(FILE_HEADER);
  summary = plain.match(SUMMARY) ?? summary;
  return header ? `${header[2]}: ${header[1]}` : line;
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
const passed = Number(summary[1]);
const failed = Number(summary[2]);
const ignored = Number(summary[3] ?? 0);
console.log(`tests: ${passed} passed, ${failed} failed` + (ignored ? `, ${ignored} skipped` : ""));
if (passed === 0 && failed === 0) Deno.exit(1);
Deno.exit(status.code);
