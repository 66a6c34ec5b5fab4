/**
 * The commands of the command line by name: each parses its arguments, calls the library, and
 * prints a human summary or, with `--json`, the machine form. Each command's module is imported
 * only when that command runs (or for the usage of them all), so that the command line starts by
 * loading what the one command needs (`convert` never loads image decoders or the simulator).
 *
 * @module
 */

import type { Command } from "./common.ts";

export type { Command, Output } from "./common.ts";

/** Every command by name, each loaded on first use. */
export const COMMANDS: Record<string, () => Promise<Command>> = {
  inspect: () => import("./inspect.ts").then((module) => module.inspectCommand),
  convert: () => import("./convert.ts").then((module) => module.convertCommand),
  record: () => import("./record.ts").then((module) => module.recordCommand),
  quantize: () => import("./quantize.ts").then((module) => module.quantizeCommand),
  run: () => import("./run.ts").then((module) => module.runCommand),
  compare: () => import("./compare.ts").then((module) => module.compareCommand),
  config: () => import("./config.ts").then((module) => module.configCommand),
};
