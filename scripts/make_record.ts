/**
 * Writes a record file for a model from its weights (SPEC §9); the same as the command line's
 * `record` command:
 *
 * ```sh
 * npx deno run -A scripts/make_record.ts deploy.prototxt weights.caffemodel \
 *   [--calibrate N] [--input <blob>=<file.npy>]... [--scale-d X] [--offset-d N] \
 *   [--per-tensor] [--out record.txt]
 * ```
 *
 * @module
 */

import { main } from "../src/cli.ts";

if (import.meta.main) Deno.exit(await main(["record", ...Deno.args]));
