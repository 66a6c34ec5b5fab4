/**
 * Calibration by simulation: the range of values each quantizable layer reads, observed by
 * running the float net on seeded (or given) inputs, for docs/math.md's activation factors.
 *
 * @module
 */

import { quantizeBlocker } from "../caffe/layers.ts";
import type { Net } from "../caffe/net.ts";
import type { ActivationRange } from "../quant/make_record.ts";
import { engineKernels } from "../wasm/engine.ts";
import { runNet, type Tensor } from "./run.ts";

/** Options of {@linkcode observeActivationRanges}. */
export interface CalibrationOptions {
  /** Runs on seeded inputs (default 8); ignored when `inputs` is given. */
  samples?: number;
  /** Seed of the first sample (sample i uses seed + i; default 0). */
  seed?: number;
  /** Input batches to run instead of seeded ones (one map of tensors per run). */
  inputs?: Map<string, Tensor>[];
}

/**
 * The range of `bottom[0]` of every layer docs/layers.md allows quantizing, over all runs: the min and
 * max of the values the layer reads, as it reads them (after in-place layers before it).
 *
 * @example
 * ```ts ignore
 * const ranges = await observeActivationRanges(net, { samples: 16 });
 * const record = await makeRecord(net, { activationRanges: ranges });
 * ```
 */
export async function observeActivationRanges(
  net: Net,
  options: CalibrationOptions = {},
): Promise<Map<string, ActivationRange>> {
  const kernels = await engineKernels();
  const quantizable = new Set(
    net.layers.filter((layer) => quantizeBlocker(layer) === undefined).map((layer) => layer.name),
  );
  const seed = options.seed ?? 0;
  const runs = options.inputs ??
    Array.from({ length: options.samples ?? 8 }, () => undefined);
  const ranges = new Map<string, ActivationRange>();
  for (const [index, inputs] of runs.entries()) {
    await runNet(net, {
      inputs,
      seed: seed + index,
      observeOnly: quantizable,
      observe(layer, bottoms) {
        if (!quantizable.has(layer.name)) return;
        const [min, max] = kernels.range(bottoms[0].data);
        const seen = ranges.get(layer.name);
        ranges.set(layer.name, {
          min: Math.min(min, seen?.min ?? Infinity),
          max: Math.max(max, seen?.max ?? -Infinity),
        });
      },
    });
  }
  return ranges;
}
