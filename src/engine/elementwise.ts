/**
 * Element-wise layers: ReLU, PReLU, TanH, Sigmoid, AbsVal, Power, Dropout (test phase) and
 * Eltwise, with Caffe's float32 arithmetic.
 *
 * @module
 */

import { boolParam, enumParam, numberParam } from "../caffe/layers.ts";
import type { Layer } from "../caffe/net.ts";
import type { ChannelView, UnaryFunction } from "../wasm/engine.ts";
import { eachBottom, floatBlob, type RunContext, type RunnerTable } from "./context.ts";
import { memo } from "./layer_memo.ts";
import { badInput, floatValue, product, shapeText, type Value } from "./tensor.ts";

/** A runner applying `compute` to each bottom's data, keeping its shape. */
function mapData(
  compute: (layer: Layer, data: Float32Array, shape: number[], context: RunContext) => Float32Array,
) {
  return {
    run: (layer: Layer, bottoms: Value[], context: RunContext) =>
      eachBottom(
        layer,
        bottoms,
        ({ tensor }) =>
          floatValue(tensor.shape, compute(layer, tensor.data, tensor.shape, context)),
      ),
  };
}

/** A runner for a unary function. */
function unaryRunner(fn: UnaryFunction) {
  return mapData((_layer, data, _shape, context) => context.kernels.unary(fn, data));
}

/** PReLU: one slope per channel (axis 1), or one for all with `channel_shared`. */
function prelu(
  layer: Layer,
  data: Float32Array,
  shape: number[],
  context: RunContext,
): Float32Array {
  const { view, slopes } = preluOp(layer, shape);
  return context.kernels.prelu(data, view, slopes);
}

/** A PReLU layer as an operation on input `shape`: its slopes over the channels of axis 1. */
export function preluOp(
  layer: Layer,
  shape: number[],
): { kind: "prelu"; view: ChannelView; slopes: Float32Array } {
  const slopes = floatBlob(layer, 0);
  const channels = shape.length > 1 ? shape[1] : 1;
  const shared = boolParam(layer, "prelu_param", "channel_shared", false);
  if (slopes.length !== (shared ? 1 : channels)) {
    throw badInput(layer, `${slopes.length} slopes for input ${shapeText(shape)}`);
  }
  const view = { outer: shape[0] ?? 1, channels, inner: product(shape.slice(2)) };
  return { kind: "prelu", view, slopes };
}

/**
 * Dropout at test time: identity, or x * (1 - ratio) with `scale_train: false` (a field of Caffe
 * forks that BVLC's schema lacks, so it is read from the kept unknown field's text).
 */
function dropout(
  layer: Layer,
  data: Float32Array,
  _shape: number[],
  context: RunContext,
): Float32Array {
  const scaleTrain = layer.param("dropout_param", "scale_train");
  if (scaleTrain !== false && scaleTrain !== "false") return data;
  const ratio = numberParam(layer, "dropout_param", "dropout_ratio", 0.5);
  const trainScale = Math.fround(1 / (1 - ratio));
  return context.kernels.power(data, 1, Math.fround(1 / trainScale), 0);
}

/** Eltwise: SUM (with `coeff`), PROD or MAX of equally shaped bottoms. */
function eltwise(layer: Layer, bottoms: Value[], context: RunContext): Value[] {
  const operation = enumParam(layer, "eltwise_param", "operation", "SUM");
  if (operation !== "SUM" && operation !== "PROD" && operation !== "MAX") {
    throw badInput(layer, `unknown operation ${operation}`);
  }
  if (bottoms.length < 2) {
    throw badInput(layer, `Eltwise needs at least 2 bottoms, got ${bottoms.length}`);
  }
  const shape = bottoms[0].tensor.shape;
  for (const { tensor } of bottoms) {
    if (shapeText(tensor.shape) !== shapeText(shape)) {
      throw badInput(layer, `bottoms ${shapeText(shape)} and ${shapeText(tensor.shape)} differ`);
    }
  }
  const coefficients = layer.paramAll("eltwise_param", "coeff").map(Number);
  if (coefficients.length > 0 && (operation !== "SUM" || coefficients.length !== bottoms.length)) {
    throw badInput(layer, `${coefficients.length} coeff values for ${bottoms.length} bottoms`);
  }
  // A ReLU right after it (RunContext.fusable) runs on the sum in WebAssembly memory.
  const [next] = context.fusable(layer);
  const post = next?.type === "ReLU" ? [memo(next, reluOp)] : [];
  context.fused(layer, post.length);
  const data = context.kernels.eltwise(
    operation,
    bottoms.map((value) => value.tensor.data),
    coefficients.length > 0 ? coefficients : bottoms.map(() => 1),
    post,
  );
  return [floatValue(shape, data)];
}

/** A ReLU layer as an operation: max(x, 0) + negative_slope * min(x, 0). */
export function reluOp(layer: Layer): { kind: "relu"; slope: number } {
  return { kind: "relu", slope: numberParam(layer, "relu_param", "negative_slope", 0) };
}

/** ReLU, PReLU, TanH, Sigmoid, AbsVal, Power, Dropout, Eltwise. */
export const elementwiseRunners: RunnerTable = {
  ReLU: mapData((layer, data, _shape, context) => context.kernels.relu(data, reluOp(layer).slope)),
  PReLU: mapData(prelu),
  TanH: unaryRunner("tanh"),
  Sigmoid: unaryRunner("sigmoid"),
  AbsVal: unaryRunner("abs"),
  Power: mapData((layer, data, _shape, context) =>
    context.kernels.power(
      data,
      numberParam(layer, "power_param", "power", 1),
      numberParam(layer, "power_param", "scale", 1),
      numberParam(layer, "power_param", "shift", 0),
    )
  ),
  Dropout: mapData(dropout),
  Eltwise: { run: eltwise },
};
