/**
 * Layers with per-channel parameters or cross-channel arithmetic: BatchNorm, Scale, Bias,
 * Softmax, LRN and SSD's Normalize, with Caffe's float32 arithmetic.
 *
 * @module
 */

import { boolParam, enumParam, numberParam } from "../caffe/layers.ts";
import type { Layer } from "../caffe/net.ts";
import type { ChannelView, PostOp } from "../wasm/engine.ts";
import { eachBottom, floatBlob, type RunContext, type RunnerTable } from "./context.ts";
import {
  badInput,
  canonicalAxis,
  floatValue,
  product,
  shapeText,
  type Tensor,
  unsupported,
  type Value,
} from "./tensor.ts";

/** The [outer, channels, inner] view of `shape` around axis 1 (channels 1 for 1-D shapes). */
function channelView(shape: number[]): ChannelView {
  return { outer: shape[0] ?? 1, channels: shape[1] ?? 1, inner: product(shape.slice(2)) };
}

/**
 * BatchNorm with its stored statistics (`use_global_stats`, the test-phase default) as the
 * operation y = (x - mean) / sqrt(variance + eps), the statistics divided by the scale factor
 * (blob 2); undefined when it normalizes with the batch's own statistics.
 */
export function batchNormOp(
  layer: Layer,
  shape: number[],
): Extract<PostOp, { kind: "batchNorm" }> | undefined {
  if (!boolParam(layer, "batch_norm_param", "use_global_stats", true)) return undefined;
  const view = channelView(shape);
  const factorBlob = floatBlob(layer, 2);
  const factor = factorBlob[0] === 0 ? 0 : Math.fround(1 / factorBlob[0]);
  const mean = floatBlob(layer, 0).map((value) => value * factor);
  const variance = floatBlob(layer, 1).map((value) => value * factor);
  if (mean.length !== view.channels || variance.length !== view.channels) {
    throw badInput(layer, `statistics of ${mean.length} channels for input ${shapeText(shape)}`);
  }
  return { kind: "batchNorm", view, mean, deviation: deviationOf(layer, variance) };
}

/** sqrt(variance + eps) per channel, in float32 steps. */
function deviationOf(layer: Layer, variance: Float32Array): Float32Array {
  const eps = Math.fround(numberParam(layer, "batch_norm_param", "eps", 1e-5));
  return variance.map((value) => Math.sqrt(Math.fround(value + eps)));
}

/** BatchNorm: batchNormOp, or the same with the batch's mean and variance. */
function batchNorm(layer: Layer, input: Value, context: RunContext): Value {
  const { shape, data } = input.tensor;
  const op = batchNormOp(layer, shape);
  if (op !== undefined) {
    return floatValue(shape, context.kernels.batchNorm(data, op.view, op.mean, op.deviation));
  }
  const view = channelView(shape);
  const { mean, variance } = context.kernels.channelMoments(data, view);
  const deviation = deviationOf(layer, variance);
  return floatValue(shape, context.kernels.batchNorm(data, view, mean, deviation));
}

/**
 * The [outer, channels, inner] view of Scale/Bias: the parameter covers `axis` .. `axis +
 * num_axes` of the first bottom (num_axes -1: to the end), or has the second bottom's shape.
 */
function parameterView(
  layer: Layer,
  message: string,
  shape: number[],
  parameter?: number[],
): ChannelView {
  let axis: number;
  let axes: number;
  if (parameter !== undefined) {
    axis = parameter.length === 0
      ? 0
      : canonicalAxis(layer, numberParam(layer, message, "axis", 1), shape.length);
    axes = parameter.length;
    if (shapeText(shape.slice(axis, axis + axes)) !== shapeText(parameter)) {
      throw badInput(
        layer,
        `bottom 1 ${shapeText(parameter)} does not match bottom 0 ${
          shapeText(shape)
        } at axis ${axis}`,
      );
    }
  } else {
    axis = canonicalAxis(layer, numberParam(layer, message, "axis", 1), shape.length);
    const numAxes = numberParam(layer, message, "num_axes", 1);
    axes = numAxes === -1 ? shape.length - axis : numAxes;
    if (axes < 0 || axis + axes > shape.length) {
      throw badInput(layer, `num_axes ${numAxes} does not fit input ${shapeText(shape)}`);
    }
  }
  return {
    outer: product(shape.slice(0, axis)),
    channels: product(shape.slice(axis, axis + axes)),
    inner: product(shape.slice(axis + axes)),
  };
}

/** Checks that a per-channel parameter has one value per channel of the view. */
function checkParameter(
  layer: Layer,
  values: Float32Array,
  view: ChannelView,
  name: string,
): Float32Array {
  if (values.length !== view.channels) {
    throw badInput(
      layer,
      `${name} has ${values.length} values, the input has ${view.channels} channels`,
    );
  }
  return values;
}

/** Scale: y = x * scale (blob 0, or bottom 1) + bias (the next blob) when `bias_term`. */
function scale(layer: Layer, bottoms: Value[], context: RunContext): Value[] {
  const { shape, data } = bottoms[0].tensor;
  const second = bottoms[1]?.tensor;
  const { view, scale, bias } = scaleParameters(layer, shape, second);
  return [floatValue(shape, context.kernels.channelAffine(data, view, scale, bias))];
}

/** A one-bottom Scale layer (factors in blob 0) as an operation on input `shape`. */
export function scaleOp(layer: Layer, shape: number[]): PostOp {
  return { kind: "affine", ...scaleParameters(layer, shape, undefined) };
}

/** Scale's view, factors (blob 0, or bottom 1 `second`) and bias (the next blob, or null). */
function scaleParameters(
  layer: Layer,
  shape: number[],
  second: Tensor | undefined,
): { view: ChannelView; scale: Float32Array; bias: Float32Array | null } {
  const view = parameterView(layer, "scale_param", shape, second?.shape);
  const factors = checkParameter(layer, second?.data ?? floatBlob(layer, 0), view, "scale");
  const biasTerm = boolParam(layer, "scale_param", "bias_term", false);
  const bias = biasTerm
    ? checkParameter(layer, floatBlob(layer, second ? 0 : 1), view, "bias")
    : null;
  return { view, scale: factors, bias };
}

/** Bias: y = x + bias (blob 0, or bottom 1). */
function bias(layer: Layer, bottoms: Value[], context: RunContext): Value[] {
  const { shape, data } = bottoms[0].tensor;
  const second = bottoms[1]?.tensor;
  const view = parameterView(layer, "bias_param", shape, second?.shape);
  const values = checkParameter(layer, second?.data ?? floatBlob(layer, 0), view, "bias");
  return [floatValue(shape, context.kernels.channelAffine(data, view, null, values))];
}

/** Softmax over `softmax_param.axis` (default 1). */
function softmax(layer: Layer, input: Value, context: RunContext): Value {
  const { shape, data } = input.tensor;
  const axis = canonicalAxis(layer, numberParam(layer, "softmax_param", "axis", 1), shape.length);
  const view = {
    outer: product(shape.slice(0, axis)),
    channels: shape[axis],
    inner: product(shape.slice(axis + 1)),
  };
  return floatValue(shape, context.kernels.softmax(data, view));
}

/** LRN, ACROSS_CHANNELS or WITHIN_CHANNEL, on a 4-D input. */
function lrn(layer: Layer, input: Value, context: RunContext): Value {
  const { shape, data } = input.tensor;
  if (shape.length !== 4) throw badInput(layer, `LRN needs a 4-D input, got ${shapeText(shape)}`);
  const size = numberParam(layer, "lrn_param", "local_size", 5);
  if (size % 2 !== 1) throw badInput(layer, `local_size ${size} is not odd`);
  const alpha = numberParam(layer, "lrn_param", "alpha", 1);
  const beta = numberParam(layer, "lrn_param", "beta", 0.75);
  const [batch, channels, height, width] = shape;
  const region = enumParam(layer, "lrn_param", "norm_region", "ACROSS_CHANNELS");
  const result = region === "WITHIN_CHANNEL"
    ? context.kernels.lrnWithinChannel(data, batch * channels, [height, width], {
      size,
      alpha,
      beta,
    })
    : context.kernels.lrnAcrossChannels(data, [batch, channels, height * width], {
      size,
      alpha,
      beta,
      k: numberParam(layer, "lrn_param", "k", 1),
    });
  return floatValue(shape, result);
}

/** SSD's Normalize: L2 norm across channels (or the whole image), times a learned scale. */
function normalize(layer: Layer, input: Value, context: RunContext): Value {
  const { shape, data } = input.tensor;
  if (shape.length < 2) {
    throw unsupported(layer, `Normalize needs at least 2 axes, got ${shapeText(shape)}`);
  }
  const channels = shape[1];
  const channelShared = boolParam(layer, "norm_param", "channel_shared", true);
  const scaleValues = floatBlob(layer, 0);
  if (scaleValues.length !== (channelShared ? 1 : channels)) {
    throw badInput(layer, `scale has ${scaleValues.length} values for input ${shapeText(shape)}`);
  }
  const result = context.kernels.normalize(data, [shape[0], channels, product(shape.slice(2))], {
    acrossSpatial: boolParam(layer, "norm_param", "across_spatial", true),
    eps: numberParam(layer, "norm_param", "eps", 1e-10),
    scale: scaleValues,
  });
  return floatValue(shape, result);
}

/** BatchNorm, Scale, Bias, Softmax, LRN, Normalize. */
export const channelRunners: RunnerTable = {
  BatchNorm: {
    run: (layer, bottoms, context) =>
      eachBottom(layer, bottoms, (value) => batchNorm(layer, value, context)),
  },
  Scale: { run: scale },
  Bias: { run: bias },
  Softmax: {
    run: (layer, bottoms, context) =>
      eachBottom(layer, bottoms, (value) => softmax(layer, value, context)),
  },
  LRN: {
    run: (layer, bottoms, context) =>
      eachBottom(layer, bottoms, (value) => lrn(layer, value, context)),
  },
  Normalize: {
    run: (layer, bottoms, context) =>
      eachBottom(layer, bottoms, (value) => normalize(layer, value, context)),
  },
};
