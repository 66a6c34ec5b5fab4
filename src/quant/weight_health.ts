/**
 * Warnings about a quantized layer's int8 weights and int32 bias that point at a bad record: many
 * weights clipped at -128/127 (`scale_w` too small), most weights rounded to 0 (`scale_w` too
 * large), or a bias so large that the accumulator has little room left (`scale_d · scale_w` too
 * small). Counted from the int8 and int32 outputs in one pass over typed arrays.
 *
 * @module
 */

import type { ChannelLayout } from "../wasm/quant.ts";

/** More than this fraction of weights at -128 or 127 is a warning. */
const CLIPPED_LIMIT = 0.01;

/** More than this fraction of weights at 0 is a warning. */
const ZERO_LIMIT = 0.5;

/** A quantized bias beyond this magnitude (half the int32 range) is a warning. */
const BIAS_LIMIT = 2 ** 30;

/** A percentage with one decimal. */
function percent(part: number, whole: number): string {
  return `${((100 * part) / whole).toFixed(1)}%`;
}

/** What {@linkcode weightWarnings} reads besides the int8 weights. */
export interface WeightHealthInput {
  /** How the weights map to output channels. */
  layout: ChannelLayout;
  /** max |W[c]| per output channel (the float weights as quantized). */
  channelMax: Float32Array;
  /** scale_w: one value, or one per output channel. */
  scaleW: Float32Array | number[];
  /** b_q, the int32 bias, if any. */
  bias?: Int32Array;
}

/**
 * The warnings for layer `layer` with int8 weights `weights` (w_q): empty when the weights and
 * bias look like a sound record's. A weight counts as clipped when it is at -128 or 127 in a
 * channel whose max |W| / scale_w exceeds 127.5 (so rounding alone cannot put it there).
 */
export function weightWarnings(
  layer: string,
  weights: Int8Array,
  { layout, channelMax, scaleW, bias }: WeightHealthInput,
): string[] {
  const channels = channelMax.length;
  const clips = new Uint8Array(channels);
  let clipping = false;
  for (let c = 0; c < channels; c++) {
    clips[c] = channelMax[c] / scaleW[scaleW.length === 1 ? 0 : c] > 127.5 ? 1 : 0;
    clipping ||= clips[c] === 1;
  }
  let clipped = 0;
  let zeros = 0;
  const perGroup = layout.outer / layout.groups;
  for (let i = 0; i < weights.length; i++) {
    const value = weights[i];
    if (value === 0) {
      zeros++;
    } else if (clipping && (value === 127 || value === -128)) {
      const row = Math.floor(i / layout.inner);
      const outer = Math.floor(row / layout.mid);
      const channel = layout.channelAxis === 0
        ? outer
        : Math.floor(outer / perGroup) * layout.mid + (row % layout.mid);
      clipped += clips[channel];
    }
  }
  const warnings: string[] = [];
  const count = weights.length;
  if (count > 0 && clipped > CLIPPED_LIMIT * count) {
    warnings.push(
      `layer "${layer}": ${percent(clipped, count)} of its weights clip at -128/127 ` +
        `(more than ${100 * CLIPPED_LIMIT}%): is scale_w too small? (max|W|/127 clips none)`,
    );
  }
  if (count > 0 && zeros > ZERO_LIMIT * count) {
    warnings.push(
      `layer "${layer}": ${percent(zeros, count)} of its weights quantize to 0 ` +
        `(more than ${100 * ZERO_LIMIT}%): is scale_w too large? (max|W|/127 is the usual choice)`,
    );
  }
  let largest = 0;
  let channel = -1;
  for (let c = 0; c < (bias?.length ?? 0); c++) {
    const size = Math.abs(bias![c]);
    if (size > largest) {
      largest = size;
      channel = c;
    }
  }
  if (largest > BIAS_LIMIT) {
    warnings.push(
      `layer "${layer}": the quantized bias of channel ${channel} is ${bias![channel]}, over ` +
        `half the int32 range, so the int32 accumulator saturates easily: is scale_d · scale_w ` +
        `too small?`,
    );
  }
  return warnings;
}
