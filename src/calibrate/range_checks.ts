/**
 * Calibration ranges that look wrong: the mistakes that make a record useless without any error,
 * found from what calibration observed (ours: AMCT leaves this open).
 *
 * - A net input read as raw 8-bit pixels (all values ≥ 0, up to 32 or more): the classic mistake
 *   of calibrating on 0–255 pixels a net trained on 0–1 (Caffe's `scale: 0.00390625`) or on
 *   mean-subtracted values.
 * - A layer input that held one value only (all zeros: a dead branch on this data): its factors
 *   measure nothing.
 * - A layer input with values beyond ±1000, rarely computed by a trained net on the data it was
 *   trained on: usually the input preprocessing is wrong.
 *
 * @module
 */

import { type Net, netInputs } from "../caffe/net.ts";
import type { LayerCalibrationStats } from "./calibrate.ts";

/** Smallest maximum of a non-negative net input taken for raw 8-bit pixels. */
const RAW_PIXEL_MAX = 32;

/** Largest magnitude of a layer input that is not flagged. */
const LARGE_VALUE = 1000;

/** A range that looks wrong, and what to check. */
export interface RangeWarning {
  /** The layer whose input it is (the first reader when several share it). */
  layer: string;
  /** The blob. */
  blob: string;
  /** What looks wrong and what to do, one sentence. */
  message: string;
}

/** A number for messages: integers as they are, others with 4 significant digits. */
function shown(value: number): string {
  if (Number.isInteger(value)) return String(value);
  const size = Math.abs(value);
  return size >= 1e-3 && size < 1e6 ? String(Number(value.toPrecision(4))) : value.toExponential(3);
}

/**
 * The ranges of `layers` (calibration statistics of `net`) that look wrong, in net order: at
 * most one warning per blob, the net input check first.
 */
export function rangeWarnings(net: Net, layers: LayerCalibrationStats[]): RangeWarning[] {
  const inputs = new Set(netInputs(net).map((input) => input.name));
  const warnings: RangeWarning[] = [];
  const seen = new Set<string>();
  for (const { layer, blob, range: [low, high] } of layers) {
    if (seen.has(blob)) continue;
    const range = `[${shown(low)}, ${shown(high)}]`;
    let message: string | undefined;
    if (inputs.has(blob) && low >= 0 && high >= RAW_PIXEL_MAX) {
      message = `net input "${blob}" held values in ${range}, like raw 8-bit pixels: if the ` +
        `net was trained on scaled or mean-subtracted data (e.g. Caffe's "scale: 0.00390625" ` +
        `for 0-1), give that preprocessing (--scale, --mean, --transform-from)`;
    } else if (low === high) {
      message = `"${blob}" held the single value ${
        shown(low)
      } on this data: its factors measure nothing (a dead branch, or data unlike the training data)`;
    } else if (Math.max(-low, high) > LARGE_VALUE) {
      message = `"${blob}" held values in ${range}, beyond ±${LARGE_VALUE}, which trained nets ` +
        `rarely compute on their own kind of data: check the input preprocessing`;
    }
    if (message !== undefined) {
      seen.add(blob);
      warnings.push({ layer, blob, message });
    }
  }
  return warnings;
}
