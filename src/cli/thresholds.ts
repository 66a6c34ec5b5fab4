/**
 * The verdict options `compare` and `convert --compare` share: `--min-cosine`, `--max-rel-l2`,
 * `--min-top1`, `--min-psnr`, `--min-confident`.
 *
 * @module
 */

import { ConvertError } from "../errors.ts";
import { DEFAULT_THRESHOLDS, type Thresholds } from "../engine/metrics.ts";
import type { ParsedArgs } from "./args.ts";
import { numberOption } from "./common.ts";

/** Each option, the threshold it sets and the range of values it takes. */
const OPTIONS: { name: string; key: keyof Thresholds; low: number; high: number }[] = [
  { name: "min-cosine", key: "minCosine", low: -1, high: 1 },
  { name: "max-rel-l2", key: "maxRelativeL2", low: 0, high: Infinity },
  { name: "min-top1", key: "minTop1", low: 0, high: 1 },
  { name: "min-psnr", key: "minPsnr", low: -Infinity, high: Infinity },
  { name: "min-confident", key: "minConfident", low: 0, high: 1 },
];

/** The option names, for a command's `parseArgs` spec. */
export const THRESHOLD_OPTIONS: string[] = OPTIONS.map((option) => option.name);

/** The usage text of the options. */
export const THRESHOLD_USAGE = "[--min-cosine X] [--max-rel-l2 X] [--min-top1 F] " +
  "[--min-psnr DB] [--min-confident F]";

/** The help text of the options, with their defaults. */
export const THRESHOLD_HELP =
  `Each output gets a verdict, PASS or FAIL, and layers are flagged, by thresholds:\n` +
  `--min-cosine (default ${DEFAULT_THRESHOLDS.minCosine}), --max-rel-l2 (relative L2 error, ` +
  `default ${DEFAULT_THRESHOLDS.maxRelativeL2}),\n--min-top1 (top-1 agreement of classifier ` +
  `outputs, a fraction, default ${DEFAULT_THRESHOLDS.minTop1}), --min-psnr (image\noutputs, ` +
  `dB, default ${DEFAULT_THRESHOLDS.minPsnr}), --min-confident (detector scores: share of ` +
  `positions scoring > 0.5\nin either net that do in both, default ` +
  `${DEFAULT_THRESHOLDS.minConfident}).`;

/** The thresholds the options give, over the defaults. */
export function thresholdOptions(args: ParsedArgs): Thresholds {
  const thresholds: Thresholds = { ...DEFAULT_THRESHOLDS };
  for (const { name, key, low, high } of OPTIONS) {
    const value = numberOption(args, name);
    if (value === undefined) continue;
    if (value < low || value > high) {
      throw new ConvertError("USAGE", `--${name} must lie in [${low}, ${high}], not ${value}`);
    }
    thresholds[key] = value;
  }
  return thresholds;
}
