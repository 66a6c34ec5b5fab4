/**
 * The commands of the command line by name: each parses its arguments, calls the library, and
 * prints a human summary or, with `--json`, the machine form.
 *
 * @module
 */

import type { Command } from "./common.ts";
import { compareCommand } from "./compare.ts";
import { configCommand } from "./config.ts";
import { convertCommand } from "./convert.ts";
import { inspectCommand } from "./inspect.ts";
import { quantizeCommand } from "./quantize.ts";
import { recordCommand } from "./record.ts";
import { runCommand } from "./run.ts";

export type { Command, Output } from "./common.ts";

/** Every command by name. */
export const COMMANDS: Record<string, Command> = {
  inspect: inspectCommand,
  convert: convertCommand,
  record: recordCommand,
  quantize: quantizeCommand,
  run: runCommand,
  compare: compareCommand,
  config: configCommand,
};
