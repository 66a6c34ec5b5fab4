/**
 * A record made from the weights alone (docs/math.md), for tests and for users without AMCT's
 * calibration: weight scales from the fused weights, activation factors from observed ranges
 * when known, else from defaults.
 *
 * @module
 */

import { quantizeBlocker } from "../caffe/layers.ts";
import { ConvertError } from "../errors.ts";
import type { Layer, Net } from "../caffe/net.ts";
import { caffeType } from "../proto/schema.ts";
import { printText } from "../proto/text_print.ts";
import { TextMessage } from "../proto/tree.ts";
import { quantKernels } from "../wasm/quant.ts";
import { channelLayout } from "./channel_layout.ts";
import type { ModelFiles } from "../caffe/model.ts";
import { fuseBatchNorm } from "./fuse.ts";
import { checkFloatBlob, checkFloatModel, floatData } from "./blobs.ts";
import { MIN_NORMAL_FLOAT32, storedScaleProblem } from "./record.ts";
import { weightTensor } from "./weights.ts";

/** Activation factors: `scale_d` (float32) and `offset_d`. */
export interface ActivationFactors {
  /** `scale_d`. */
  scaleD: number;
  /** `offset_d`, -128..127. */
  offsetD: number;
}

/** The range of values a layer's input takes, e.g. observed by the simulator. */
export interface ActivationRange {
  /** Smallest value seen. */
  min: number;
  /** Largest value seen. */
  max: number;
}

/** Options of {@linkcode makeRecord}. */
export interface MakeRecordOptions {
  /** `scale_d` for layers without an observed range (default: that of the range [-1, 1]). */
  scaleD?: number;
  /**
   * `offset_d` for layers without an observed range (default: 0 when `scaleD` is given, else
   * that of the range [-1, 1]).
   */
  offsetD?: number;
  /** One `scale_w` per layer instead of one per output channel. */
  perTensor?: boolean;
  /**
   * Observed input ranges by layer name (from the simulator); a layer listed here gets
   * {@linkcode activationFactors} of its range instead of the defaults.
   */
  activationRanges?: ReadonlyMap<string, ActivationRange>;
  /** The model's files, named in errors. */
  files?: ModelFiles;
}

/** Round half to even. */
function rint(value: number): number {
  const rounded = Math.round(value);
  return Math.abs(value % 1) === 0.5 && rounded % 2 !== 0 ? rounded - 1 : rounded;
}

/**
 * docs/math.md asymmetric int8 factors for a range (widened to hold 0):
 * `scale_d = (max − min)/255`, `offset_d = clamp(−128 − rint(min/scale_d), −128, 127)`.
 * An all-zero range gives `scale_d` 1.
 */
export function activationFactors(range: ActivationRange): ActivationFactors {
  const min = Math.min(range.min, 0);
  const max = Math.max(range.max, 0);
  const scaleD = Math.fround((max - min) / 255) || 1;
  const offsetD = Math.min(127, Math.max(-128, -128 - rint(min / scaleD)));
  return { scaleD, offsetD };
}

/**
 * The factors for layers without an observed range: `options.scaleD` (float32, finite, > 0, with
 * a finite 1/scale_d) and `options.offsetD` (an integer in -128..127, default 0 when a scale is
 * given), else those of the range [-1, 1].
 */
function defaultFactors(options: MakeRecordOptions): ActivationFactors {
  if (options.scaleD === undefined && options.offsetD === undefined) {
    return activationFactors({ min: -1, max: 1 });
  }
  const scaleD = Math.fround(options.scaleD ?? activationFactors({ min: -1, max: 1 }).scaleD);
  const offsetD = options.offsetD ?? 0;
  if (!(scaleD > 0) || !Number.isFinite(scaleD)) {
    throw new ConvertError("RECORD_BAD_SCALE", `scale_d ${options.scaleD} is not a usable scale`);
  }
  const quantScaleProblem = storedScaleProblem(1 / scaleD);
  if (quantScaleProblem !== undefined) {
    throw new ConvertError(
      "RECORD_BAD_SCALE",
      `scale_d ${options.scaleD} is not a usable scale: 1/scale_d ${quantScaleProblem}`,
    );
  }
  if (!Number.isInteger(offsetD) || offsetD < -128 || offsetD > 127) {
    throw new ConvertError(
      "RECORD_BAD_OFFSET_D",
      `offset_d ${offsetD} is not an integer in -128..127`,
    );
  }
  return { scaleD, offsetD };
}

/**
 * A record text (`ScaleOffsetRecord` text format) with factors for every layer of `net` that
 * docs/layers.md allows quantizing. Weight scales come from the fused weights; InnerProduct layers and
 * `perTensor` get one scale for the whole tensor.
 *
 * @example
 * ```ts ignore
 * const recordText = await makeRecord(loadNet(prototxt, caffemodel), { scaleD: 0.02 });
 * ```
 */
export async function makeRecord(net: Net, options: MakeRecordOptions = {}): Promise<string> {
  const { files } = options;
  checkFloatModel(net, files);
  const defaults = defaultFactors(options);
  const kernels = await quantKernels();
  const fused = new Map(
    (await fuseBatchNorm(net, { files })).net.layers.map((layer) => [layer.name, layer]),
  );
  const root = new TextMessage();
  for (const original of net.layers) {
    if (quantizeBlocker(original) !== undefined) continue;
    const layer = fused.get(original.name)!;
    const range = options.activationRanges?.get(layer.name);
    const { scaleD, offsetD } = range !== undefined ? activationFactors(range) : defaults;
    const value = new TextMessage([
      { name: "scale_d", value: scaleD },
      { name: "offset_d", value: offsetD },
    ]);
    const scaleW = layer.blobs.length === 0 ? [1] : weightScales(
      kernels,
      layer,
      scaleD,
      options.perTensor === true || layer.type === "InnerProduct",
    );
    for (const scale of scaleW) value.add("scale_w", scale);
    for (const _ of scaleW) value.add("offset_w", 0);
    root.add(
      "record",
      new TextMessage([{ name: "key", value: layer.name }, { name: "value", value }]),
    );
  }
  return printText(root, caffeType("ScaleOffsetRecord"));
}

/**
 * docs/math.md weight scales of a (fused) weighted layer (ARQ, docs/calibration.md). Per tensor: the largest
 * per-channel scale, where channels the kernel set to 1.0 because their weights and bias are all
 * zero do not count (the whole-tensor weight scale still does).
 */
export function weightScales(
  kernels: Awaited<ReturnType<typeof quantKernels>>,
  layer: Layer,
  scaleD: number,
  perTensor: boolean,
): number[] {
  checkFloatBlob(layer, 0);
  const channelMax = kernels.channelMaxAbs(weightTensor(layer.blobs[0], channelLayout(layer)));
  const bias = layer.blobs.length > 1 ? floatData(layer, 1) : null;
  for (
    const [what, values] of [["weights of channel", channelMax], ["bias element", bias]] as const
  ) {
    const bad = values === null ? -1 : kernels.firstNonFinite(values);
    if (bad >= 0) {
      throw new ConvertError(
        "WEIGHTS_NOT_FINITE",
        `layer "${layer.name}": the ${what} ${bad} hold NaN or infinity`,
        { layer: layer.name },
      );
    }
  }
  const perChannel = kernels.weightScalesFromMax(channelMax, bias, scaleD);
  if (!perTensor) return [...perChannel].map((scale) => withNormalDequant(scale, scaleD));
  const tensorMax = channelMax.reduce((largest, value) => Math.max(largest, value), 0);
  let scale = kernels.weightScalesFromMax(Float32Array.of(tensorMax), null, scaleD)[0];
  for (const channelScale of perChannel) {
    if (channelScale !== 1 && channelScale > scale) scale = channelScale;
  }
  return [withNormalDequant(scale, scaleD)];
}

/**
 * `scale` (a float32 scale_w), or the smallest float32 above it whose dequant scale
 * f32(scaleD · scale_w) is a normal float32 when `scale`'s is not: convert refuses subnormal
 * dequant scales, which only weights and biases near 0 (or a tiny scale_d) give.
 */
export function withNormalDequant(scale: number, scaleD: number): number {
  let raised = scale;
  if (Math.fround(scaleD * raised) < MIN_NORMAL_FLOAT32) {
    raised = Math.max(raised, Math.fround(MIN_NORMAL_FLOAT32 / scaleD));
  }
  // f32 rounding of the quotient may land one step low
  while (Math.fround(scaleD * raised) < MIN_NORMAL_FLOAT32) raised = nextFloat32Up(raised);
  return raised;
}

/** The next float32 above a float32 `value` >= 0. */
function nextFloat32Up(value: number): number {
  const bits = new Uint32Array(Float32Array.of(value).buffer);
  bits[0]++;
  return new Float32Array(bits.buffer)[0];
}
