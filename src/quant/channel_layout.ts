/**
 * The channel layout of a weighted layer's weight blob: the Caffe knowledge (which layer types
 * carry weights, which weight axis indexes output channels, groups, InnerProduct's `transpose`)
 * that turns a layer into the {@linkcode ChannelLayout} the quantization kernels see.
 *
 * @module
 */

import { boolParam, groupCount, weightChannelAxis, WEIGHTED_TYPES } from "../caffe/layers.ts";
import type { Layer } from "../caffe/net.ts";
import type { ChannelLayout } from "../wasm/quant.ts";

/**
 * The channel layout of a `Convolution`, `InnerProduct` (channelAxis 0: outer = C_out, mid = 1,
 * inner = the rest) or `Deconvolution` weight blob (`[C_in, C_out/G, kh, kw]`: channelAxis 1,
 * outer = C_in, mid = C_out/G, inner = kh*kw; the output channel of element (i, j, k) is
 * floor(i / (C_in/G)) * (C_out/G) + j, docs/math.md). InnerProduct weights are `[N, K]`, or `[K, N]`
 * with `transpose` (channelAxis 1: outer = K, mid = N, inner = 1).
 */
export function channelLayout(
  type: string,
  shape: number[],
  groups: number,
  transpose?: boolean,
): ChannelLayout;
/**
 * The channel layout of `layer`'s weight blob (blob 0), with its `group` and, for an
 * InnerProduct, its `transpose` parameter.
 */
export function channelLayout(layer: Layer): ChannelLayout;
export function channelLayout(
  typeOrLayer: string | Layer,
  shape: number[] = [],
  groups = 1,
  transpose = false,
): ChannelLayout {
  if (typeof typeOrLayer !== "string") {
    const layer = typeOrLayer;
    const transposed = layer.type === "InnerProduct" &&
      boolParam(layer, "inner_product_param", "transpose", false);
    return channelLayout(layer.type, layer.blobs[0].shape, groupCount(layer), transposed);
  }
  const type = typeOrLayer;
  if (!WEIGHTED_TYPES.has(type)) throw new RangeError(`layer type ${type} has no weight layout`);
  if (shape.length < 1 || shape.some((size) => !Number.isInteger(size) || size < 0)) {
    throw new RangeError(`bad weight shape [${shape.join(", ")}]`);
  }
  if (type === "InnerProduct" && transpose) {
    return { outer: shape[0], mid: shape[1], inner: 1, channelAxis: 1, groups: 1 };
  }
  const channelAxis = weightChannelAxis(type);
  if (channelAxis === 0) {
    return { outer: shape[0], mid: 1, inner: product(shape.slice(1)), channelAxis, groups: 1 };
  }
  if (shape.length < 2 || !Number.isInteger(groups) || groups < 1 || shape[0] % groups !== 0) {
    throw new RangeError(`Deconvolution weights [${shape.join(", ")}] do not fit ${groups} groups`);
  }
  return { outer: shape[0], mid: shape[1], inner: product(shape.slice(2)), channelAxis, groups };
}

function product(sizes: number[]): number {
  return sizes.reduce((total, size) => total * size, 1);
}
