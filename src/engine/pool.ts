/**
 * Pooling (MAX, AVE, global) with Caffe's output size: ceil rounding (or `round_mode: FLOOR`),
 * then, when there is padding, dropping a last window that would start in the padding. A deploy
 * model's AVE pooling reads a Quant layer's int8 output and gives the window mean of
 * q - offset_d for its DeQuant.
 *
 * @module
 */

import { boolParam, enumParam, numberParam } from "../caffe/layers.ts";
import { checkLayerParams } from "../caffe/layer_checks.ts";
import type { Layer } from "../caffe/net.ts";
import type { Kernel, Window2d } from "../wasm/engine.ts";
import { eachBottom, type RunContext, type RunnerTable } from "./context.ts";
import { keyedMemo, memo } from "./layer_memo.ts";
import {
  ACCUMULATOR,
  badInput,
  checkTensorSize,
  type Domain,
  FLOAT,
  shapeText,
  unsupported,
  type Value,
} from "./tensor.ts";

/** A [height, width] of `pooling_param`: the `_h`/`_w` fields, else `single`, else `fallback`. */
function spatialPair(
  layer: Layer,
  [single, height, width]: [string, string, string],
  fallback: number,
): [number, number] {
  const both = numberParam(layer, "pooling_param", single, fallback);
  return [
    numberParam(layer, "pooling_param", height, both),
    numberParam(layer, "pooling_param", width, both),
  ];
}

/** Caffe's pooled size along one axis. */
function pooledSize(
  size: number,
  kernel: number,
  pad: number,
  stride: number,
  ceil: boolean,
  padded: boolean,
): number {
  const steps = (size + 2 * pad - kernel) / stride;
  let pooled = (ceil ? Math.ceil(steps) : Math.floor(steps)) + 1;
  if (padded && (pooled - 1) * stride >= size + pad) pooled--;
  return pooled;
}

/** The fields of `pooling_param` a pooling reads (kernel and stride unless global). */
function poolingParams(layer: Layer) {
  const global = boolParam(layer, "pooling_param", "global_pooling", false);
  return {
    method: enumParam(layer, "pooling_param", "pool", "MAX"),
    global,
    kernel: global ? undefined : spatialPair(layer, ["kernel_size", "kernel_h", "kernel_w"], 0),
    pad: spatialPair(layer, ["pad", "pad_h", "pad_w"], 0),
    stride: global ? undefined : spatialPair(layer, ["stride", "stride_h", "stride_w"], 1),
    ceil: enumParam(layer, "pooling_param", "round_mode", "CEIL") !== "FLOOR",
  };
}

/** A pooling's call for one input form: its kernel, output shape and domain. */
interface PoolingCall {
  run: Kernel;
  shape: number[];
  domain: Domain;
}

/** The keys {@linkcode pool} fills on each call (keyedMemo copies those it keeps). */
const POOL_KEYS: unknown[] = [];

/** Pools one bottom, through the call kept for this input form (keyedMemo). */
function pool(layer: Layer, input: Value, context: RunContext): Value {
  const { domain, tensor: { shape } } = input;
  // Written in place, the length set last (see conv.ts callKeys); the kernels instance too: a
  // kept kernel runs in the module instance that made it.
  const keys = POOL_KEYS;
  let at = 0;
  keys[at++] = context.kernels;
  keys[at++] = domain.kind;
  keys[at++] = domain.kind === "int8" ? domain.offsetD : 0;
  keys[at++] = shape.length;
  for (let i = 0; i < shape.length; i++) keys[at++] = shape[i];
  keys.length = at;
  const call = keyedMemo(layer, poolingCall, keys, () => poolingCall(layer, input, context));
  const data = call.run(input.tensor.data);
  return { tensor: { shape: call.shape.slice(), data }, domain: call.domain };
}

/** The call pooling `input` (checked). */
function poolingCall(layer: Layer, input: Value, context: RunContext): PoolingCall {
  memo(layer, checkLayerParams);
  const { shape } = input.tensor;
  if (shape.length !== 4) {
    throw unsupported(layer, `only 4-D (NCHW) inputs are simulated, got ${shapeText(shape)}`);
  }
  const [batch, channels, height, width] = shape;
  const params = memo(layer, poolingParams);
  const { method, ceil } = params;
  if (method !== "MAX" && method !== "AVE") {
    throw unsupported(layer, `pool: ${method} is not simulated (only MAX and AVE)`);
  }
  const window: Window2d = {
    kernel: params.kernel ?? [height, width],
    pad: params.pad,
    stride: params.stride ?? [1, 1],
    dilation: [1, 1],
  };
  if (window.kernel.some((size) => size < 1) || window.stride.some((step) => step < 1)) {
    throw badInput(
      layer,
      `bad window: kernel ${shapeText(window.kernel)}, stride ${shapeText(window.stride)}`,
    );
  }
  const padded = window.pad[0] > 0 || window.pad[1] > 0;
  const outSize: [number, number] = [
    pooledSize(height, window.kernel[0], window.pad[0], window.stride[0], ceil, padded),
    pooledSize(width, window.kernel[1], window.pad[1], window.stride[1], ceil, padded),
  ];
  if (outSize[0] < 1 || outSize[1] < 1) {
    throw badInput(layer, `input ${shapeText(shape)} gives an empty output`);
  }
  checkTensorSize(layer.tops[0], [batch, channels, ...outSize], layer);
  // A stride past the padded input (a window after the first starting beyond it, as Caffe's
  // ceil mode allows one) gives the same windows as the smallest such stride, image + 2 pad + 1:
  // every window after the first lies wholly beyond the image and its padding (MAX -FLT_MAX, AVE
  // 0 over a negative size), and the kernels' offsets stay small (a fuzzed 65536 ran them out of
  // bounds).
  window.stride = [0, 1].map((axis) =>
    Math.min(window.stride[axis], [height, width][axis] + 2 * window.pad[axis] + 1)
  ) as [number, number];
  const int8Input = input.domain.kind === "int8" ? input.domain : undefined;
  if (int8Input !== undefined && method !== "AVE") {
    throw unsupported(layer, "only AVE pooling can read a Quant layer's int8 output");
  }
  const args = {
    offsetD: int8Input?.offsetD,
    planes: batch * channels,
    size: [height, width] as [number, number],
    window,
    outSize,
  };
  return {
    run: context.kernels.poolingKernel(args, method === "AVE"),
    shape: [batch, channels, ...outSize],
    domain: int8Input === undefined ? FLOAT : ACCUMULATOR,
  };
}

/** Pooling. */
export const poolingRunners: RunnerTable = {
  Pooling: {
    run: (layer, bottoms, context) =>
      eachBottom(layer, bottoms, (value) => pool(layer, value, context)),
    readsInt8: true,
  },
};
