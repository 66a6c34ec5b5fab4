/**
 * The `--threads N` option of the commands that run the engine over many samples.
 *
 * @module
 */

import type { ParsedArgs } from "./args.ts";
import { integerOption } from "./common.ts";

/** The option's usage. */
export const THREADS_USAGE = "[--threads N]";

/** The option's help text. */
export const THREADS_HELP =
  "--threads N runs the samples on N threads: the main one and N-1 workers (sharing one\n" +
  "copy of the weights; default: every core). Results are the same for any N.\n";

/** The thread count given with `--threads` (a whole number ≥ 1), or undefined (every core). */
export function threadsOption(args: ParsedArgs): number | undefined {
  return args.options.has("threads") ? integerOption(args, "threads", 1, 1) : undefined;
}
