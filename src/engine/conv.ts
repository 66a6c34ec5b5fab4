/**
 * Convolution, Deconvolution and InnerProduct, float and deploy (int8 weights, int32 bias, input
 * from a Quant layer: the output holds the int32 accumulators for the DeQuant that follows).
 *
 * @module
 */

import { boolParam, groupCount, hasBiasTerm, kernelSize, numberParam } from "../caffe/layers.ts";
import { checkLayerParams } from "../caffe/layer_checks.ts";
import { ConvertError } from "../errors.ts";
import type { Layer } from "../caffe/net.ts";
import type { FakeQuant, Kernel, PostOp, Window2d } from "../wasm/engine.ts";
import { batchNormOp, scaleOp } from "./channel.ts";
import { preluOp, reluOp } from "./elementwise.ts";
import { dequantOps } from "./quant.ts";
import { eachBottom, requiredBlob, type RunContext, type RunnerTable } from "./context.ts";
import { keyedMemo, memo } from "./layer_memo.ts";
import {
  ACCUMULATOR,
  badInput,
  canonicalAxis,
  checkTensorSize,
  type Domain,
  FLOAT,
  product,
  shapeText,
  unsupported,
  type Value,
} from "./tensor.ts";

/**
 * A [height, width] field of `convolution_param`: `<field>_h`/`<field>_w` when given, else the
 * repeated `<field>` (one value for both, or two), else `fallback`.
 */
function spatialPair(layer: Layer, field: string, fallback: number): [number, number] {
  const height = layer.param("convolution_param", `${field}_h`);
  const width = layer.param("convolution_param", `${field}_w`);
  if (typeof height === "number" || typeof width === "number") {
    return [Number(height ?? fallback), Number(width ?? fallback)];
  }
  const values = layer.paramAll("convolution_param", field).map(Number);
  return [values[0] ?? fallback, values[1] ?? values[0] ?? fallback];
}

/** The window of a Convolution or Deconvolution layer. */
export function convolutionWindow(layer: Layer): Window2d {
  return {
    kernel: kernelSize(layer),
    pad: spatialPair(layer, "pad", 0),
    stride: spatialPair(layer, "stride", 1),
    dilation: spatialPair(layer, "dilation", 1),
  };
}

/** The weights and bias of a weighted layer, with their float or deploy (int8/int32) form. */
interface LayerWeights {
  weights: Float32Array | Int8Array;
  bias: Float32Array | Int32Array | null;
  /** The Quant layer's offset_d for the deploy form, undefined for float. */
  offsetD: number | undefined;
  /** Set when the input is still float: the Quant layer's scale to quantize it with first. */
  quantScale?: number;
  /** Float form: the fake-quant Quant layer whose quantization the layer does on its input. */
  fakeQuant?: FakeQuant;
}

/** Reads weights and bias, and checks that their form matches the input's domain. */
function layerWeights(layer: Layer, input: Value): LayerWeights {
  const weights = requiredBlob(layer, 0).data;
  const bias = memo(layer, hasBiasTerm) ? requiredBlob(layer, 1).data : null;
  const int8Input = input.domain.kind === "int8" ? input.domain : undefined;
  if (int8Input !== undefined) {
    if (!(weights instanceof Int8Array) || !(bias === null || bias instanceof Int32Array)) {
      throw badInput(layer, "it reads a Quant layer's int8 output but its weights are not int8");
    }
    return { weights, bias, offsetD: int8Input.offsetD, quantScale: int8Input.quantScale };
  }
  if (weights instanceof Int8Array) {
    throw badInput(
      layer,
      "its weights are int8 (deploy model) but its input is not a Quant output",
    );
  }
  if (!(weights instanceof Float32Array) || !(bias === null || bias instanceof Float32Array)) {
    throw badInput(layer, "its weights or bias are not float data");
  }
  const fakeQuant = input.domain.kind === "float" ? input.domain.fakeQuant : undefined;
  return { weights, bias, offsetD: undefined, fakeQuant };
}

/** `convolution_param.axis`. */
function convolutionAxis(layer: Layer): number {
  return numberParam(layer, "convolution_param", "axis", 1);
}

/** The [N, C, H, W] of a 4-D input; other ranks are not simulated. */
function imageShape(layer: Layer, input: Value): [number, number, number, number] {
  const { shape } = input.tensor;
  if (shape.length !== 4) {
    throw unsupported(layer, `only 4-D (NCHW) inputs are simulated, got ${shapeText(shape)}`);
  }
  if (memo(layer, convolutionAxis) !== 1) {
    throw unsupported(layer, "only convolution_param.axis 1 is simulated");
  }
  return [shape[0], shape[1], shape[2], shape[3]];
}

/**
 * A weighted layer's kernel call for one form of input, its blobs and its fusion chain: the
 * kernel worked out for them, the output's shape and domain, and how many of the fusable layers
 * after it the call applies. Made once and kept while those stay the same (keyedMemo).
 */
interface WeightedCall {
  run: Kernel;
  shape: number[];
  domain: Domain;
  fused: number;
}

/**
 * What a weighted layer's call depends on besides the trees (keys of keyedMemo): the input's
 * form and shape, and the blobs of the layer and of the fusable layers after it.
 */
function callKeys(layer: Layer, input: Value, context: RunContext): unknown[] {
  const { domain, tensor: { shape } } = input;
  const chain = context.fusable(layer);
  // The kernels instance too: a kept kernel runs in the module instance that made it.
  const keys = CALL_KEYS;
  // Written in place, the length set last: emptying the array first would let go of its
  // storage, and every call would allocate it again.
  let at = 0;
  keys[at++] = context.kernels;
  keys[at++] = chain;
  keys[at++] = domain.kind;
  keys[at++] = shape.length;
  // Indexed loops: iterators would allocate on every run.
  for (let i = 0; i < shape.length; i++) keys[at++] = shape[i];
  if (domain.kind === "int8") {
    keys[at++] = domain.offsetD;
    keys[at++] = domain.quantScale;
  } else if (domain.kind === "float" && domain.fakeQuant !== undefined) {
    keys[at++] = domain.fakeQuant.scaleD;
    keys[at++] = domain.fakeQuant.offsetD;
  }
  at = blobKeys(layer, keys, at);
  for (let i = 0; i < chain.length; i++) at = blobKeys(chain[i], keys, at);
  keys.length = at;
  return keys;
}

/**
 * Writes `layer`'s blob list, its length, and each blob with its data and shape arrays into
 * `keys` from index `at`; returns the index after them.
 */
function blobKeys(layer: Layer, keys: unknown[], at: number): number {
  const { blobs } = layer;
  keys[at++] = blobs;
  keys[at++] = blobs.length;
  for (let i = 0; i < blobs.length; i++) {
    keys[at++] = blobs[i];
    keys[at++] = blobs[i].data;
    keys[at++] = blobs[i].shape;
  }
  return at;
}

/** The keys {@linkcode callKeys} fills on each call (keyedMemo copies those it keeps). */
const CALL_KEYS: unknown[] = [];

/** Runs `layer`'s kept (or new) call on `input`, telling the run which layers it applied. */
function runCall(
  layer: Layer,
  input: Value,
  context: RunContext,
  prepare: (layer: Layer, input: Value, context: RunContext) => WeightedCall,
): Value {
  const keys = callKeys(layer, input, context);
  const call = keyedMemo(layer, prepare, keys, () => prepare(layer, input, context));
  context.fused(layer, call.fused);
  const data = call.run(input.tensor.data);
  return { tensor: { shape: call.shape.slice(), data }, domain: call.domain };
}

/** Convolution / Deconvolution of one bottom. */
function convolve(layer: Layer, input: Value, context: RunContext, transposed: boolean): Value {
  return runCall(layer, input, context, transposed ? deconvolutionCall : convolutionCall);
}

function convolutionCall(layer: Layer, input: Value, context: RunContext) {
  return convolutionLikeCall(layer, input, context, false);
}

function deconvolutionCall(layer: Layer, input: Value, context: RunContext) {
  return convolutionLikeCall(layer, input, context, true);
}

/** A Convolution's or Deconvolution's call on `input` (checked). */
function convolutionLikeCall(
  layer: Layer,
  input: Value,
  context: RunContext,
  transposed: boolean,
): WeightedCall {
  memo(layer, checkLayerParams);
  const shape = imageShape(layer, input);
  const [batch, channels, height, width] = shape;
  const window = memo(layer, convolutionWindow);
  const groups = memo(layer, groupCount);
  const { weights, bias, offsetD, quantScale, fakeQuant } = layerWeights(layer, input);
  const weightShape = requiredBlob(layer, 0).shape;
  const outputs = transposed ? (weightShape[1] ?? 0) * groups : weightShape[0] ?? 0;
  const inputChannels = transposed ? weightShape[0] : (weightShape[1] ?? 0) * groups;
  if (channels !== inputChannels || channels % groups !== 0 || outputs % groups !== 0) {
    throw badInput(
      layer,
      `input ${shapeText(input.tensor.shape)} does not fit weights ${shapeText(weightShape)} ` +
        `with group ${groups}`,
    );
  }
  const outSize = [0, 1].map((axis) => {
    const extent = window.dilation[axis] * (window.kernel[axis] - 1) + 1;
    const size = [height, width][axis];
    return transposed
      ? window.stride[axis] * (size - 1) + extent - 2 * window.pad[axis]
      : Math.floor((size + 2 * window.pad[axis] - extent) / window.stride[axis]) + 1;
  }) as [number, number];
  if (outSize[0] < 1 || outSize[1] < 1) {
    throw badInput(layer, `input ${shapeText(input.tensor.shape)} gives an empty output`);
  }
  checkTensorSize(layer.tops[0], [batch, outputs, ...outSize], layer);
  // A stride beyond the padded input (forward) or over an input of size 1 (transposed) is never
  // taken: the kernels get the smallest stride with the same output, as offsets are 32-bit.
  const stride = [0, 1].map((axis) => {
    const size = [height, width][axis];
    return transposed
      ? (size === 1 ? 1 : window.stride[axis])
      : Math.min(window.stride[axis], size + 2 * window.pad[axis]);
  }) as [number, number];
  const [post, fused] = postOps(layer, [batch, outputs, ...outSize], offsetD, context);
  const args = {
    offsetD,
    quantScale,
    fakeQuant,
    post,
    shape,
    weights,
    bias,
    outputs,
    groups,
    window: { ...window, stride },
    outSize,
  };
  const dequantized = offsetD !== undefined && post.length > 0;
  return {
    run: context.kernels.convolutionKernel(args, transposed),
    shape: [batch, outputs, ...outSize],
    domain: offsetD === undefined || dequantized ? FLOAT : ACCUMULATOR,
    fused,
  };
}

/**
 * How each fusable layer type acts on a convolution's output (see RunContext.fusable), or
 * undefined when this layer cannot be applied so.
 */
const POST_OPS: Record<
  string,
  (layer: Layer, shape: number[], accumulators: boolean) => PostOp[] | undefined
> = {
  ReLU: (layer) => [memo(layer, reluOp)],
  PReLU: (layer, shape) => [preluOp(layer, shape)],
  BatchNorm: (layer, shape) => {
    const op = batchNormOp(layer, shape);
    return op === undefined ? undefined : [op];
  },
  Scale: (layer, shape) => [scaleOp(layer, shape)],
  DeQuant: dequantOps,
};

/** The layer types a Convolution, Deconvolution or InnerProduct may apply to its output itself. */
export const POST_OP_TYPES: ReadonlySet<string> = new Set(Object.keys(POST_OPS));

/**
 * The operations of `layer` (a fusable layer), or undefined when it is to run on its own: when it
 * cannot act so, or when it is not simulated (its own run reports it skipped, with the reason).
 */
function postOpsOf(layer: Layer, shape: number[], accumulators: boolean): PostOp[] | undefined {
  try {
    return POST_OPS[layer.type]?.(layer, shape, accumulators);
  } catch (error) {
    if (error instanceof ConvertError && error.code === "UNSUPPORTED_LAYER") return undefined;
    throw error;
  }
}

/**
 * The operations of the fusable layers after `layer` that it applies itself, and how many they
 * are: for the deploy form (int32 accumulators) only from a DeQuant on, which makes the values
 * float. A BatchNorm with the batch's own statistics ends the chain.
 */
function postOps(
  layer: Layer,
  shape: number[],
  offsetD: number | undefined,
  context: RunContext,
): [ops: PostOp[], count: number] {
  const ops: PostOp[] = [];
  let accumulators = offsetD !== undefined;
  let count = 0;
  for (const next of context.fusable(layer)) {
    if (accumulators && next.type !== "DeQuant") break;
    const nextOps = postOpsOf(next, shape, accumulators);
    if (nextOps === undefined) break;
    ops.push(...nextOps);
    accumulators = false;
    count++;
  }
  return [ops, count];
}

/** `inner_product_param`'s axis and transpose. */
function innerProductParams(layer: Layer): { axis: number; transposed: boolean } {
  return {
    axis: numberParam(layer, "inner_product_param", "axis", 1),
    transposed: boolParam(layer, "inner_product_param", "transpose", false),
  };
}

/** InnerProduct of one bottom. */
function innerProduct(layer: Layer, input: Value, context: RunContext): Value {
  return runCall(layer, input, context, innerProductCall);
}

/** An InnerProduct's call on `input` (checked). */
function innerProductCall(
  layer: Layer,
  input: Value,
  context: RunContext,
): WeightedCall {
  const { shape } = input.tensor;
  const { axis: axisParam, transposed } = memo(layer, innerProductParams);
  const axis = canonicalAxis(layer, axisParam, shape.length);
  const { weights, bias, offsetD, quantScale, fakeQuant } = layerWeights(layer, input);
  const rows = product(shape.slice(0, axis));
  const depth = product(shape.slice(axis));
  // Weights are [N, K] ([K, N] transposed): each row of the input must hold exactly K values
  // (Caffe: "Input size incompatible with inner product parameters").
  const weightShape = requiredBlob(layer, 0).shape;
  const outputs = (transposed ? weightShape.at(-1) : weightShape[0]) ?? 0;
  const expected = outputs === 0 ? 0 : weights.length / outputs;
  if (outputs === 0 || depth !== expected) {
    throw badInput(
      layer,
      `input ${shapeText(shape)} has ${depth} values per row from axis ${axis}, but the ` +
        `weights ${shapeText(weightShape)} take ${expected}`,
    );
  }
  checkTensorSize(layer.tops[0], [...shape.slice(0, axis), outputs], layer);
  const outShape = [...shape.slice(0, axis), outputs];
  const [post, fused] = postOps(layer, outShape, offsetD, context);
  return {
    run: context.kernels.innerProductKernel({
      offsetD,
      quantScale,
      fakeQuant,
      post,
      rows,
      depth,
      weights,
      transposed,
      bias,
      outputs,
    }),
    shape: outShape,
    domain: offsetD === undefined || post.length > 0 ? FLOAT : ACCUMULATOR,
    fused,
  };
}

/** Convolution, Deconvolution and InnerProduct. */
export const convolutionRunners: RunnerTable = {
  Convolution: {
    run: (layer, bottoms, context) =>
      eachBottom(layer, bottoms, (value) => convolve(layer, value, context, false)),
    readsInt8: true,
  },
  Deconvolution: {
    run: (layer, bottoms, context) =>
      eachBottom(layer, bottoms, (value) => convolve(layer, value, context, true)),
    readsInt8: true,
  },
  InnerProduct: {
    run: (layer, bottoms, context) =>
      eachBottom(layer, bottoms, (value) => innerProduct(layer, value, context)),
    readsInt8: true,
  },
};
