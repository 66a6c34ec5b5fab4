/**
 * Conv + BatchNorm + Scale fusion (docs/math.md): every `Convolution|Deconvolution|InnerProduct` →
 * `BatchNorm` → `Scale` chain whose intermediate blobs nobody else reads becomes one layer with
 * folded weights and a bias, at the first layer's place, writing the Scale's top.
 *
 * @module
 */

import { ConvertError } from "../errors.ts";
import { boolParam, numberParam, WEIGHTED_TYPES, weightParamMessage } from "../caffe/layers.ts";
import { checkWeights, type ModelFiles } from "../caffe/model.ts";
import type { Layer, Net } from "../caffe/net.ts";
import { TextMessage } from "../proto/tree.ts";
import { outputChannelCount, type QuantKernels, quantKernels } from "../wasm/quant.ts";
import { channelLayout } from "./channel_layout.ts";
import { type BlobValues, blobValues, checkFloatBlob, floatData, layerLike } from "./blobs.ts";
import { FoldedWeights, storedTensor } from "./weights.ts";

/** One fused composite, by the names of its three original layers. */
export interface FusedComposite {
  /** The Convolution, Deconvolution or InnerProduct layer (the fused layer keeps its name). */
  layer: string;
  /** The BatchNorm layer folded into it. */
  batchNorm: string;
  /** The Scale layer folded into it. */
  scale: string;
}

/** What {@linkcode fuseBatchNorm} returns. */
export interface FusionResult {
  /** The fused net: a new layer list; the input net and its layers are not changed. */
  net: Net;
  /** The composites fused, in layer order. */
  composites: FusedComposite[];
  /**
   * Composites left unfused for a reason the user should know, and `skipFusion` names that head
   * no composite (so skip nothing).
   */
  warnings: string[];
}

/** Default `batch_norm_param.eps` (1e-5; the kernel rounds it to float32). */
const DEFAULT_BN_EPS = 1e-5;

/** The indices of a composite's three layers. */
interface Composite {
  layer: number;
  batchNorm: number;
  scale: number;
}

/** Options of {@linkcode fuseBatchNorm}. */
export interface FuseOptions {
  /** Names of first layers whose composite stays unfused (record `skip_fusion: true`). */
  skipFusion?: ReadonlySet<string>;
  /** The input files, named in errors. */
  files?: ModelFiles;
}

/**
 * Fuses every Conv/Deconv/IP + BatchNorm + Scale composite of `net`, except those whose first
 * layer is in `options.skipFusion`. A BatchNorm with `use_global_stats: false` in a composite to
 * fuse is a BN_NOT_GLOBAL_STATS error. Untouched layers are shared with the input net, unchanged.
 *
 * @example
 * ```ts ignore
 * const { net: fused, composites } = await fuseBatchNorm(net, { skipFusion: new Set(["conv2"]) });
 * ```
 */
export async function fuseBatchNorm(net: Net, options: FuseOptions = {}): Promise<FusionResult> {
  const { skipFusion = new Set(), files = {} } = options;
  const { layers } = net;
  const { all, fusable: found, warnings } = searchComposites(layers, skipFusion);
  for (const composite of found) {
    const batchNorm = layers[composite.batchNorm];
    if (boolParam(batchNorm, "batch_norm_param", "use_global_stats", true) === false) {
      throw new ConvertError(
        "BN_NOT_GLOBAL_STATS",
        `BatchNorm "${batchNorm.name}" after "${layers[composite.layer].name}" has ` +
          `use_global_stats: false; the model is not set up for inference`,
        { file: files.model, line: batchNorm.line, layer: batchNorm.name },
      );
    }
  }
  for (const name of skipFusion) {
    if (all.some((composite) => layers[composite.layer].name === name)) continue;
    const member = all.find((composite) =>
      [composite.batchNorm, composite.scale].some((index) => layers[index].name === name)
    );
    warnings.push(
      member === undefined
        ? `skip_fusion on "${name}" does nothing: it heads no Convolution/Deconvolution/` +
          `InnerProduct + BatchNorm + Scale composite`
        : `skip_fusion on "${name}" does nothing: it is part of the composite ` +
          `${compositeText(layers, member)}; skip_fusion: true belongs in the record for ` +
          `"${layers[member.layer].name}"`,
    );
  }
  if (found.length === 0) return { net, composites: [], warnings };
  const kernels = await quantKernels();
  const replaced = new Map<number, Layer>();
  const removed = new Set<number>();
  for (const composite of found) {
    replaced.set(composite.layer, foldComposite(kernels, layers, composite, files.weights));
    removed.add(composite.batchNorm);
    removed.add(composite.scale);
  }
  return {
    net: {
      header: net.header,
      layers: layers.flatMap((layer, index) =>
        removed.has(index) ? [] : [replaced.get(index) ?? layer]
      ),
    },
    composites: found.map((composite) => compositeNames(layers, composite)),
    warnings,
  };
}

/**
 * The composite that fusion folds each BatchNorm and Scale layer of `net` into, by that layer's
 * name (composites whose first layer is in `skipFusion`, or that a layer between them blocks, are
 * not folded and not listed).
 */
export function foldedLayers(
  net: Net,
  skipFusion: ReadonlySet<string>,
): Map<string, FusedComposite> {
  const folded = new Map<string, FusedComposite>();
  for (const composite of searchComposites(net.layers, skipFusion).fusable) {
    const names = compositeNames(net.layers, composite);
    folded.set(names.batchNorm, names);
    folded.set(names.scale, names);
  }
  return folded;
}

/** Every composite of `layers`, those to fuse, and warnings about the ones a layer blocks. */
function searchComposites(
  layers: readonly Layer[],
  skipFusion: ReadonlySet<string>,
): { all: Composite[]; fusable: Composite[]; warnings: string[] } {
  const values = blobValues(layers);
  const all: Composite[] = [];
  const fusable: Composite[] = [];
  const warnings: string[] = [];
  layers.forEach((layer, index) => {
    const composite = findComposite(layers, values, index);
    if (composite === undefined) return;
    all.push(composite);
    if (skipFusion.has(layer.name)) return;
    const blocker = placementBlocker(layers, composite);
    if (blocker === undefined) fusable.push(composite);
    else warnings.push(`${compositeText(layers, composite)} not fused: ${blocker}`);
  });
  return { all, fusable, warnings };
}

/** The names of a composite's three layers. */
function compositeNames(layers: readonly Layer[], composite: Composite): FusedComposite {
  return {
    layer: layers[composite.layer].name,
    batchNorm: layers[composite.batchNorm].name,
    scale: layers[composite.scale].name,
  };
}

/** `conv + bn + scale`, the names of a composite's layers. */
function compositeText(layers: readonly Layer[], composite: Composite): string {
  const { layer, batchNorm, scale } = compositeNames(layers, composite);
  return `${layer} + ${batchNorm} + ${scale}`;
}

/** The only reader of the single top of layer `index`, when that is so. */
function onlyReader(
  layers: readonly Layer[],
  values: BlobValues,
  index: number,
): number | undefined {
  if (layers[index].tops.length !== 1) return undefined;
  const readers = values.readers[values.tops[index][0]];
  return readers.length === 1 ? readers[0] : undefined;
}

/** The composite that starts at layer `index`, if it is the first layer of one. */
function findComposite(
  layers: readonly Layer[],
  values: BlobValues,
  index: number,
): Composite | undefined {
  const layer = layers[index];
  // No blobs: a net made without weights (readPrototxt, then the public makeRecord) has nothing
  // to fold; loadNet never gives such a layer.
  if (!WEIGHTED_TYPES.has(layer.type) || layer.blobs.length === 0) return undefined;
  if (
    layer.type === "InnerProduct" && numberParam(layer, "inner_product_param", "axis", 1) !== 1
  ) {
    return undefined;
  }
  const batchNorm = onlyReader(layers, values, index);
  if (batchNorm === undefined || !isSingleInOut(layers[batchNorm], "BatchNorm")) return undefined;
  const scale = onlyReader(layers, values, batchNorm);
  if (scale === undefined || !isSingleInOut(layers[scale], "Scale")) return undefined;
  const scaleLayer = layers[scale];
  if (
    numberParam(scaleLayer, "scale_param", "axis", 1) !== 1 ||
    numberParam(scaleLayer, "scale_param", "num_axes", 1) !== 1
  ) {
    return undefined;
  }
  return { layer: index, batchNorm, scale };
}

/** True when `layer` has type `type`, one bottom and one top. */
function isSingleInOut(layer: Layer, type: string): boolean {
  return layer.type === type && layer.bottoms.length === 1 && layer.tops.length === 1;
}

/**
 * Why the fused layer cannot write the Scale's top at the first layer's place: a layer between
 * them (other than the BatchNorm) reads or writes that blob name.
 */
function placementBlocker(layers: readonly Layer[], composite: Composite): string | undefined {
  const output = layers[composite.scale].tops[0];
  for (let index = composite.layer + 1; index < composite.scale; index++) {
    if (index === composite.batchNorm) continue;
    const between = layers[index];
    if (between.bottoms.includes(output) || between.tops.includes(output)) {
      return `layer "${between.name}" between them uses blob "${output}"`;
    }
  }
  return undefined;
}

/** The fused layer of a composite: folded weights, a bias, `bias_term: true`, the Scale's top. */
function foldComposite(
  kernels: QuantKernels,
  layers: readonly Layer[],
  composite: Composite,
  weightsFile: string | undefined,
): Layer {
  const layer = layers[composite.layer];
  const batchNorm = layers[composite.batchNorm];
  const scale = layers[composite.scale];
  for (const member of [layer, batchNorm, scale]) checkWeights(member, weightsFile);
  const layout = channelLayout(layer);
  const channels = outputChannelCount(layout);
  const perChannel = (owner: Layer, index: number, what: string): Float32Array => {
    if (owner.blobs.length <= index) throw shapeError(owner, `has no ${what} blob`, weightsFile);
    const data = floatData(owner, index, weightsFile);
    if (data.length !== channels) {
      throw shapeError(
        owner,
        `${what} has ${data.length} values, "${layer.name}" has ${channels} output channels`,
        weightsFile,
      );
    }
    return data;
  };
  const scaleBias = boolParam(scale, "scale_param", "bias_term", false);
  checkFloatBlob(layer, 0, weightsFile);
  const variance = perChannel(batchNorm, 1, "variance");
  const factor = floatData(batchNorm, 2, weightsFile)[0];
  const eps = numberParam(batchNorm, "batch_norm_param", "eps", DEFAULT_BN_EPS);
  const factors = kernels.batchNormFactors({
    bias: layer.blobs.length > 1 ? perChannel(layer, 1, "bias") : null,
    mean: perChannel(batchNorm, 0, "mean"),
    variance,
    factor,
    eps,
    gamma: perChannel(scale, 0, "scale"),
    beta: scaleBias ? perChannel(scale, 1, "bias") : null,
  });
  checkVariance(batchNorm, factors.alpha, { variance, factor, eps }, weightsFile);
  const source = storedTensor(layer.blobs[0], layout);
  const params = layer.params.clone();
  const messageName = weightParamMessage(layer.type)!;
  let message = params.message(messageName);
  if (message === undefined) {
    message = new TextMessage();
    params.add(messageName, message);
  }
  message.set("bias_term", true);
  const shape = layer.blobs[0].shape.slice();
  const weights = new FoldedWeights(
    kernels,
    shape,
    { ...source, alpha: factors.alpha },
    layer.blobs[0],
  );
  const fused = layerLike(layer, params, [weights, { shape: [channels], data: factors.bias }]);
  fused.tops = [scale.tops[0]];
  return fused;
}

/**
 * `BN_BAD_VARIANCE` at the first channel whose folding factor γ/√(variance·f + eps) is not finite
 * because variance·f + eps ≤ 0 (f = 1/factor, 0 for factor 0, as Caffe's BatchNorm computes
 * it); other non-finite factors come from NaN/∞ blobs, which later checks name.
 */
function checkVariance(
  batchNorm: Layer,
  alpha: Float64Array,
  { variance, factor, eps }: { variance: Float32Array; factor: number; eps: number },
  file: string | undefined,
): void {
  const f = factor === 0 ? 0 : 1 / factor;
  const epsilon = Math.fround(eps);
  const channel = alpha.findIndex((a, c) => !Number.isFinite(a) && variance[c] * f + epsilon <= 0);
  if (channel < 0) return;
  throw new ConvertError(
    "BN_BAD_VARIANCE",
    `BatchNorm "${batchNorm.name}" channel ${channel}: variance/factor + eps = ` +
      `${variance[channel]}/${factor} + ${epsilon} = ${variance[channel] * f + epsilon} is not ` +
      `> 0, so the channel cannot be normalized (its square root divides the weights)`,
    { file, layer: batchNorm.name },
  );
}

/** A WEIGHTS_SHAPE_MISMATCH error about `layer`'s blobs. */
function shapeError(layer: Layer, problem: string, file: string | undefined): ConvertError {
  return new ConvertError("WEIGHTS_SHAPE_MISMATCH", `${layer.type} "${layer.name}" ${problem}`, {
    file,
    layer: layer.name,
  });
}
