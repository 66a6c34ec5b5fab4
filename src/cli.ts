#!/usr/bin/env -S deno run -A
/**
 * The `caffe-quant` command line, for Deno (`deno run -A src/cli.ts …`) and Node (the npm bin).
 * User mistakes exit 2 with `error[CODE] file:line:col: message` on stderr (and
 * `{ "error": … }` on stdout with `--json`); anything else is a bug and exits 1.
 *
 * @module
 */

import process from "node:process";
import { ConvertError } from "./errors.ts";
import { printable } from "./printable.ts";
import { COMMANDS, type Output } from "./cli/commands.ts";
import { readingInputs } from "./io/files.ts";
// Node has no Web Workers: this registers `node:worker_threads` for the engine pool.
import "./io/node_workers.ts";

/** The usage of every command (loads them all). */
async function usage(): Promise<string> {
  const commands = await Promise.all(Object.values(COMMANDS).map((load) => load()));
  return `caffe-quant: quantize Caffe models to INT8 (AMCT convert_model)

usage:
${commands.map((command) => `  caffe-quant ${command.usage}`).join("\n")}

Run a command with --help for what it does. Documentation — file formats, the arithmetic,
layer wiring, every error code, calibration — is in docs/ of the package (docs/README.md).`;
}

/** The process's standard output and error. */
function processOutput(): Output {
  return {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    isTerminal: Boolean(process.stderr.isTTY),
  };
}

/**
 * Runs the command line on `argv` (without the program name), writing to `io` (the process's
 * standard streams by default); resolves to the exit code.
 */
export async function main(argv: string[], io: Output = processOutput()): Promise<number> {
  // Whatever goes to standard error is for a human: names in warnings and progress lines have
  // their control characters escaped (standard output may carry data, such as a record).
  const { err } = io;
  io = { ...io, err: (text) => err(printable(text, { keepLines: true })) };
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.out(await usage() + "\n");
    return name === undefined ? 2 : 0;
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  const json = rest.includes("--json");
  try {
    if (load === undefined) {
      throw new ConvertError("USAGE", `unknown command "${printable(name)}"\n${await usage()}`);
    }
    const command = await load();
    if (rest.includes("--help")) {
      io.out(`usage: caffe-quant ${command.usage}\n\n${command.help}\n`);
      return 0;
    }
    // Every file the command reads is noted, so that no output of it may replace one.
    await readingInputs(() => command.run(rest, io));
    return 0;
  } catch (error) {
    if (!(error instanceof ConvertError)) throw error;
    io.err(error.format() + "\n");
    if (json) io.out(JSON.stringify({ error: error.toJSON() }, null, 2) + "\n");
    return 2;
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => process.exitCode = code,
    (bug) => {
      process.stderr.write(`caffe-quant: internal error (a bug, please report it):\n`);
      process.stderr.write(`${(bug as Error)?.stack ?? bug}\n`);
      process.exitCode = 1;
    },
  );
}
