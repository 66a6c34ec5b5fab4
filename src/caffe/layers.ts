/**
 * What caffe-quant knows about each layer type, in one place: parameter defaults it relies on,
 * which layers carry weights, the output-channel axis of weights, and the rule (docs/layers.md) for which
 * layers may be quantized. Fusion, planning, loading, `inspect` and the simulator ask here.
 *
 * @module
 */

import { withArticle } from "../printable.ts";
import type { Layer } from "./net.ts";

/** Layer types whose weights are quantized per output channel: Conv, Deconv, InnerProduct. */
export const WEIGHTED_TYPES: ReadonlySet<string> = new Set([
  "Convolution",
  "Deconvolution",
  "InnerProduct",
]);

/** Layer types that mark a net as already quantized (docs/errors.md). */
export const QUANTIZED_MARKER_TYPES: ReadonlySet<string> = new Set([
  "Quant",
  "DeQuant",
  "AntiQuant",
  "IFMR",
  "SearchN",
]);

/** The parameter message name of each weighted layer type. */
const PARAM_MESSAGE: Record<string, string> = {
  Convolution: "convolution_param",
  Deconvolution: "convolution_param",
  InnerProduct: "inner_product_param",
};

/** The parameter message of a weighted layer type (`convolution_param`…), else `undefined`. */
export function weightParamMessage(type: string): string | undefined {
  return PARAM_MESSAGE[type];
}

/** A numeric field of a layer's parameter message, or `fallback` (the schema default). */
export function numberParam(
  layer: Layer,
  message: string,
  field: string,
  fallback: number,
): number {
  const value = layer.param(message, field);
  return typeof value === "number" ? value : fallback;
}

/** A boolean field of a layer's parameter message, or `fallback` (the schema default). */
export function boolParam(
  layer: Layer,
  message: string,
  field: string,
  fallback: boolean,
): boolean {
  const value = layer.param(message, field);
  return typeof value === "boolean" ? value : fallback;
}

/** An enum field (value name) of a layer's parameter message, or `fallback`. */
export function enumParam(layer: Layer, message: string, field: string, fallback: string): string {
  const value = layer.param(message, field);
  return typeof value === "string" ? value : fallback;
}

/** `num_output` of a Convolution, Deconvolution or InnerProduct layer (undefined for others). */
export function numOutput(layer: Layer): number | undefined {
  const message = PARAM_MESSAGE[layer.type];
  if (message === undefined) return undefined;
  const value = layer.param(message, "num_output");
  return typeof value === "number" ? value : undefined;
}

/** Kernel height and width of a convolution from `kernel_size` or `kernel_h`/`kernel_w`. */
export function kernelSize(layer: Layer): [number, number] {
  const sizes = layer.paramAll("convolution_param", "kernel_size").map(Number);
  const kernelH = numberParam(layer, "convolution_param", "kernel_h", sizes[0] ?? 1);
  const kernelW = numberParam(layer, "convolution_param", "kernel_w", sizes[1] ?? sizes[0] ?? 1);
  return [kernelH, kernelW];
}

/** `group` of a Convolution or Deconvolution (1 for every other layer). */
export function groupCount(layer: Layer): number {
  if (PARAM_MESSAGE[layer.type] !== "convolution_param") return 1;
  return numberParam(layer, "convolution_param", "group", 1);
}

/** Whether a weighted layer has a bias blob (`bias_term`, default true). */
export function hasBiasTerm(layer: Layer): boolean {
  const message = PARAM_MESSAGE[layer.type];
  return message === undefined ? false : boolParam(layer, message, "bias_term", true);
}

/** The weight axis that indexes output channels: 1 for Deconvolution, else 0. */
export function weightChannelAxis(type: string): 0 | 1 {
  return type === "Deconvolution" ? 1 : 0;
}

/**
 * Why `layer` cannot be quantized (docs/layers.md), or `undefined` when it can.
 * Pooling qualifies with `pool: AVE`, not global; weighted layers by their structure. A layer
 * computed in place (top = bottom) cannot be: its DeQuant layer would write that blob again, not
 * in place, which Caffe (and caffe-quant) refuse to read. Nor can a layer without a name (records
 * address layers by name).
 */
export function quantizeBlocker(layer: Layer): string | undefined {
  const blocker = typeBlocker(layer);
  if (blocker === undefined && layer.name === "") {
    return "it has no name, and records and quant.json address a quantized layer by its name " +
      "(two unnamed layers would share one record); give it a name";
  }
  if (blocker !== undefined || layer.tops[0] !== layer.bottoms[0]) return blocker;
  return `it computes "${layer.tops[0]}" in place (top = bottom), and the DeQuant layer that ` +
    `would follow it cannot write that blob again; give the layer a top of its own`;
}

/** Why the rule for its type (docs/layers.md) keeps `layer` from being quantized. */
function typeBlocker(layer: Layer): string | undefined {
  const { type } = layer;
  const oneTop = layer.tops.length === 1;
  const oneBottom = layer.bottoms.length === 1;
  switch (type) {
    case "Convolution":
    case "Deconvolution": {
      if (layer.blobs.length > 0 && layer.blobs[0].shape.length !== 4) {
        return `its weight blob is ${layer.blobs[0].shape.length}-D, not 4-D`;
      }
      if (!oneBottom || !oneTop) return "it must have exactly one bottom and one top";
      if (type === "Convolution") return undefined;
      if (groupCount(layer) !== 1) return "a Deconvolution must have group 1";
      const dilations = layer.paramAll("convolution_param", "dilation").map(Number);
      if (dilations.some((d) => d !== 1)) return "a Deconvolution must have every dilation 1";
      return undefined;
    }
    case "InnerProduct":
      if (boolParam(layer, "inner_product_param", "transpose", false)) {
        return "an InnerProduct with transpose: true cannot be quantized";
      }
      if (numberParam(layer, "inner_product_param", "axis", 1) !== 1) {
        return "an InnerProduct must have axis 1";
      }
      if (!oneBottom || !oneTop) return "it must have exactly one bottom and one top";
      return undefined;
    case "Pooling":
      if (enumParam(layer, "pooling_param", "pool", "MAX") !== "AVE") {
        return "only AVE pooling can be quantized";
      }
      if (boolParam(layer, "pooling_param", "global_pooling", false)) {
        return "a global pooling cannot be quantized";
      }
      if (!oneTop) return "it must have exactly one top";
      return undefined;
    default:
      return `${withArticle(type)} layer cannot be quantized`;
  }
}
