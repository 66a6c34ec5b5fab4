/**
 * The simulator's values: float32 tensors in C order, and how the deploy model's blobs are held.
 *
 * @module
 */

import { ConvertError } from "../errors.ts";
import { LIMITS } from "../limits.ts";
import type { Layer } from "../caffe/net.ts";
import type { FakeQuant } from "../wasm/engine.ts";

/** A float32 tensor in C (row-major) order; NCHW for images. */
export interface Tensor {
  /** Dimensions, outermost first. */
  shape: number[];
  /** `shape`'s product of elements. */
  data: Float32Array;
}

/**
 * What a blob's numbers mean. `float` for every float blob; in a deploy model, `int8` for a
 * Quant layer's output (the values q, as float32, with the layer's activation offset) and
 * `accumulator` for a quantized layer's output before its DeQuant (int32 sums as float32, or the
 * AVE pooling window mean).
 */
export type Domain =
  | {
    kind: "float";
    /**
     * Set when the values are still a fake-quant model's Quant layer's input: its only reader, a
     * Convolution, Deconvolution or InnerProduct, fake-quantizes them itself
     * (RunContext.defersQuant).
     */
    fakeQuant?: FakeQuant;
  }
  | {
    kind: "int8";
    offsetD: number;
    /**
     * Set when the values are still the Quant layer's float input: its only reader, a
     * Convolution, Deconvolution or InnerProduct, quantizes them with this scale itself (RunContext.defersQuant).
     */
    quantScale?: number;
  }
  | { kind: "accumulator" };

/** A blob value during a run: its tensor and the meaning of its numbers. */
export interface Value {
  /** The numbers. */
  tensor: Tensor;
  /** What they mean. */
  domain: Domain;
}

/** The float domain, shared. */
export const FLOAT: Domain = { kind: "float" };

/** The accumulator domain (a deploy model's quantized layer output), shared. */
export const ACCUMULATOR: Domain = { kind: "accumulator" };

/** A float value. */
export function floatValue(shape: number[], data: Float32Array): Value {
  return { tensor: { shape, data }, domain: FLOAT };
}

/**
 * `tensors` joined along axis 0 (a batch of their rows), or `undefined` when their other axes
 * differ. One tensor is returned as it is. The rows go into `into(length)` (an array of exactly
 * `length` elements) where given, else into a new array.
 */
export function concatRows(
  tensors: readonly Tensor[],
  into?: (length: number) => Float32Array,
): Tensor | undefined {
  const [first] = tensors;
  if (tensors.length === 1) return first;
  const fits = (tensor: Tensor) =>
    tensor.shape.length === first.shape.length &&
    tensor.shape.every((size, axis) => axis === 0 || size === first.shape[axis]);
  if (!tensors.every(fits)) return undefined;
  const length = tensors.reduce((total, tensor) => total + tensor.data.length, 0);
  const data = into?.(length) ?? new Float32Array(length);
  let at = 0;
  for (const tensor of tensors) {
    data.set(tensor.data, at);
    at += tensor.data.length;
  }
  const rows = tensors.reduce((total, tensor) => total + tensor.shape[0], 0);
  return { shape: [rows, ...first.shape.slice(1)], data };
}

/** The product of `sizes` (1 for none). */
export function product(sizes: readonly number[]): number {
  return sizes.reduce((total, size) => total * size, 1);
}

/** `[1, 3, 224, 224]`, for messages. */
export function shapeText(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/** A `BAD_INPUT` error about `layer`: its inputs do not fit its parameters or weights. */
export function badInput(layer: Layer, message: string): ConvertError {
  return new ConvertError("BAD_INPUT", `layer "${layer.name}" (${layer.type}): ${message}`, {
    layer: layer.name,
  });
}

/** An `UNSUPPORTED_LAYER` error: the simulator cannot run `layer` in this form (it is skipped). */
export function unsupported(layer: Layer, message: string): ConvertError {
  return new ConvertError("UNSUPPORTED_LAYER", message, { layer: layer.name });
}

/** Caffe's CanonicalAxisIndex: a negative axis counts from the end; out of range is an error. */
export function canonicalAxis(layer: Layer, axis: number, axes: number): number {
  if (!Number.isInteger(axis) || axis < -axes || axis >= axes) {
    throw badInput(layer, `axis ${axis} is out of range for a ${axes}-D input`);
  }
  return axis < 0 ? axis + axes : axis;
}

/**
 * Checks a float32 tensor of `shape` before it is allocated: a size that is not a whole number
 * >= 0 is `BAD_INPUT`; a tensor beyond the simulator's memory ({@linkcode LIMITS}.tensorBytes,
 * the 4 GiB of WebAssembly memory) is `LIMIT_EXCEEDED`. Both name `blob` and `layer`, its
 * producer, if any.
 */
export function checkTensorSize(blob: string, shape: readonly number[], layer?: Layer): void {
  const wholeSizes = shape.every((size) => Number.isInteger(size) && size >= 0);
  const count = product(shape);
  if (wholeSizes && Number.isSafeInteger(count) && count * 4 < LIMITS.tensorBytes) return;
  const producer = layer === undefined ? "" : ` (top of layer "${layer.name}", ${layer.type})`;
  if (!wholeSizes) {
    throw new ConvertError(
      "BAD_INPUT",
      `blob "${blob}"${producer} would be ${shapeText(shape)}: sizes must be whole numbers >= 0`,
      { layer: layer?.name },
    );
  }
  throw new ConvertError(
    "LIMIT_EXCEEDED",
    `blob "${blob}"${producer} would be ${shapeText(shape)}: ${count} float32 values, not ` +
      `below the simulator's limit of ${LIMITS.tensorBytes / 4} (4 GiB, the WebAssembly memory)`,
    { layer: layer?.name },
  );
}
