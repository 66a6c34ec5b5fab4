// The command line run in-process, for tests: what it returns and prints.

import { main } from "../src/cli.ts";

/** What one in-process run of the command line returned and printed. */
export interface CliResult {
  /** The exit code `main` returned. */
  code: number;
  /** Everything printed to stdout. */
  out: string;
  /** Everything printed to stderr. */
  err: string;
}

/** Runs the command line in-process (not a terminal) and captures what it prints. */
export async function runCli(...argv: string[]): Promise<CliResult> {
  let out = "";
  let err = "";
  const code = await main(argv, {
    out: (text) => void (out += text),
    err: (text) => void (err += text),
    isTerminal: false,
  });
  return { code, out, err };
}
