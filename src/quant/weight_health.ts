/**
 * Warnings about a quantized layer's int8 weights and int32 bias that point at a bad record: many
 * weights clipped at -128/127 (`scale_w` too small), most weights rounded to 0 (`scale_w` too
 * large), or a bias so large that the accumulator has little room left (`scale_d · scale_w` too
 * small). Counted by the kernel that quantizes the weights, in the same pass.
 *
 * @module
 */

import type { WeightQuantization } from "../wasm/quant.ts";

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

/**
 * The warnings for layer `layer` with `count` int8 weights (w_q), from what their quantization
 * counted (`quantization`, see {@linkcode WeightQuantization}), their `scaleW` (one value, or one
 * per output channel) and `bias` (b_q, the int32 bias, if any): empty when the weights and bias
 * look like a sound record's. A weight counts as clipped when it is at -128 or 127 in a channel
 * whose max |W| / scale_w exceeds 127.5 (so rounding alone cannot put it there).
 */
export function weightWarnings(
  layer: string,
  count: number,
  quantization: WeightQuantization,
  scaleW: Float32Array | number[],
  bias: Int32Array | undefined,
): string[] {
  const { channelMax, extremes, zeros } = quantization;
  let clipped = 0;
  for (let c = 0; c < channelMax.length; c++) {
    if (channelMax[c] / scaleW[scaleW.length === 1 ? 0 : c] > 127.5) clipped += extremes[c];
  }
  const warnings: string[] = [];
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
