/**
 * The Quant and DeQuant layers of docs/layers.md, in both output models.
 *
 * A Quant layer stores `scale` S = f32(1/scale_d) and `offset` (one signed byte, offset_d).
 * Which model a Quant layer belongs to is read from its object layer's DeQuant (the DeQuant
 * reading the object layer's top): a `uint64_data` blob means the deploy model, float blobs the
 * fake-quant model (with no DeQuant found: int8 object-layer weights mean deploy).
 *
 * - Fake-quant model: Quant outputs x^ = f32((q - offset_d) * scale_d) with
 *   q = clamp(rint(f32(x * S)) + offset_d, -128, 127) (docs/math.md); DeQuant is the identity.
 *   scale_d is not stored: for an AVE Pooling object layer it is its DeQuant's deq (scale_d
 *   exactly), for other layers it is recovered from S ({@linkcode scaleDFromQuantScale}).
 * - Deploy model: Quant outputs q itself (an `int8` value carrying offset_d); the quantized layer
 *   computes on q - offset_d in int32 (src/engine/conv.ts, src/engine/pool.ts); DeQuant
 *   multiplies its float32 reading of the accumulators by deq[c], the float32 in bits 31..0 of
 *   each `uint64_data` value (one value, or one per channel of axis 1).
 *
 * @module
 */

import type { Layer } from "../caffe/net.ts";
import type { PostOp } from "../wasm/engine.ts";
import { eachBottom, requiredBlob, type RunContext, type RunnerTable } from "./context.ts";
import { keptTops, keyedMemo } from "./layer_memo.ts";
import { badInput, FLOAT, product, shapeText, unsupported, type Value } from "./tensor.ts";

/**
 * scale_d from the stored quant scale S = f32(1/scale_d). The float32 nearest 1/S need not be
 * scale_d (1/x does not always round-trip in float32), so this takes the float32 values within
 * two units in the last place of f32(1/S) whose f32(1/c) is S, and returns the one nearest to 1/S
 * in float64: scale_d itself whenever scale_d is the only float32 that maps to S, and in every
 * case a scale_d that gives back exactly this layer's S. About 86% of float32 values round-trip;
 * for the rest the result is one unit in the last place away from scale_d. (A Convolution's
 * DeQuant blob holds f32(scale_d * scale_w[c]), which cannot be split without scale_w.)
 */
export function scaleDFromQuantScale(quantScale: number): number {
  const guess = Math.fround(1 / quantScale);
  const float = new Float32Array([guess]);
  const bits = new Int32Array(float.buffer);
  const guessBits = bits[0];
  let best = guess;
  let bestDistance = Infinity;
  for (let step = -2; step <= 2; step++) {
    bits[0] = guessBits + step;
    const candidate = float[0];
    if (Math.fround(1 / candidate) !== quantScale) continue;
    const distance = Math.abs(candidate - 1 / quantScale);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** A Quant layer's S and offset_d; a missing or malformed `quant_param` is a `BAD_INPUT`. */
function quantParameters(layer: Layer): { quantScale: number; offsetD: number } {
  const params = layer.params.message("quant_param");
  const quantScale = params?.get("scale");
  if (typeof quantScale !== "number" || !(quantScale > 0) || !Number.isFinite(quantScale)) {
    throw badInput(layer, "quant_param.scale must be a finite number > 0");
  }
  const withOffset = params?.get("with_offset") === true;
  const offset = params?.get("offset");
  if (withOffset && !(offset instanceof Uint8Array && offset.length === 1)) {
    throw badInput(layer, "quant_param.offset must be one byte when with_offset is true");
  }
  const offsetD = withOffset ? ((offset as Uint8Array)[0] << 24) >> 24 : 0;
  return { quantScale: Math.fround(quantScale), offsetD };
}

/** The name of a Quant layer's object layer ("" when missing). */
function objectLayerName(layer: Layer): string {
  return String(layer.param("quant_param", "object_layer") ?? "");
}

/** The DeQuant layer reading the first top of `object`, if any. */
function dequantOf(object: Layer | undefined, context: RunContext): Layer | undefined {
  const output = object === undefined ? undefined : keptTops(object)[0];
  return output === undefined ? undefined : context.dequantReading(output);
}

/**
 * scale_d for the fake-quant model: the DeQuant of a Pooling object layer holds
 * deq = f32(scale_d * 1.0), scale_d itself, used when it gives back S; otherwise
 * {@linkcode scaleDFromQuantScale}.
 */
function fakeScaleD(
  quantScale: number,
  object: Layer | undefined,
  dequant: Layer | undefined,
): number {
  const deq = dequant?.blobs[0]?.data;
  const exact = object?.type === "Pooling" && deq instanceof Float32Array && deq.length === 1 &&
    Math.fround(1 / deq[0]) === quantScale;
  return exact ? deq[0] : scaleDFromQuantScale(quantScale);
}

/** A Quant layer's parameters, its object layer and that layer's DeQuant (see quantForm). */
interface QuantForm {
  quantScale: number;
  offsetD: number;
  object: Layer | undefined;
  dequant: Layer | undefined;
}

/** The key quantForm keeps its value under (written in place on each call). */
const FORM_KEYS: unknown[] = [undefined];

/**
 * `layer`'s parameters and the layers it quantizes for, found once per net: they depend on the
 * net's trees alone, and a run forgets every layer's kept values when any tree of its net changes
 * (src/engine/layer_memo.ts). One lookup on each run, where finding them took six (a warm run of
 * a large net finds each layer's maps out of cache, the kernels having run in between).
 */
function quantForm(layer: Layer, context: RunContext): QuantForm {
  FORM_KEYS[0] = context.net;
  return keyedMemo(layer, quantForm, FORM_KEYS, () => {
    const object = context.layerNamed(objectLayerName(layer));
    return { ...quantParameters(layer), object, dequant: dequantOf(object, context) };
  });
}

/** Quant: fake-quant x^ (fake-quant model) or q (deploy model). */
function quant(layer: Layer, input: Value, context: RunContext): Value {
  const { quantScale, offsetD, object, dequant } = quantForm(layer, context);
  const { shape, data } = input.tensor;
  const dequantScales = dequant?.blobs[0]?.data;
  const deploy = dequantScales !== undefined
    ? dequantScales instanceof BigUint64Array
    : object?.blobs[0]?.data instanceof Int8Array;
  if (deploy && context.defersQuant(layer)) {
    return { tensor: input.tensor, domain: { kind: "int8", offsetD, quantScale } };
  }
  if (deploy) {
    return {
      tensor: { shape, data: context.kernels.quantize(data, quantScale, offsetD) },
      domain: { kind: "int8", offsetD },
    };
  }
  const scaleD = fakeScaleD(quantScale, object, dequant);
  if (context.defersQuant(layer)) {
    return { tensor: input.tensor, domain: { kind: "float", fakeQuant: { scaleD, offsetD } } };
  }
  return {
    tensor: {
      shape,
      // Into the run's output arena (a view reused from run to run) when the run has one.
      data: context.quantKernels.fakeQuantActivations(
        data,
        scaleD,
        offsetD,
        context.kernels.outputArray(data.length),
      ),
    },
    domain: FLOAT,
  };
}

/** The deq[c] already unpacked from each deploy DeQuant blob (a net's blobs do not change). */
const UNPACKED = new WeakMap<BigUint64Array, Float32Array>();

/** The deq[c] of a deploy DeQuant blob: bits 31..0 of each uint64 as float32 (shift bits 0). */
function unpackDequantScales(layer: Layer, packed: BigUint64Array): Float32Array {
  const known = UNPACKED.get(packed);
  if (known !== undefined) return known;
  const words = new Uint32Array(packed.length);
  for (let i = 0; i < packed.length; i++) {
    if (packed[i] >> 32n & 0xffn) {
      throw unsupported(layer, "a non-zero shift_bit in the dequant scale is not simulated");
    }
    words[i] = Number(packed[i] & 0xffffffffn);
  }
  const scales = new Float32Array(words.buffer);
  UNPACKED.set(packed, scales);
  return scales;
}

/** DeQuant: identity on float input (fake-quant model), accumulators x deq[c] (deploy model). */
function dequant(layer: Layer, input: Value, context: RunContext): Value {
  const { shape, data } = input.tensor;
  const [op] = dequantOps(layer, shape, input.domain.kind === "accumulator");
  if (op === undefined || op.kind !== "affine") return { tensor: input.tensor, domain: FLOAT };
  return {
    tensor: { shape, data: context.kernels.channelAffine(data, op.view, op.scale, op.bias) },
    domain: FLOAT,
  };
}

/**
 * A DeQuant as operations on input `shape`: none (identity) unless it reads a deploy layer's
 * `accumulators`, which it multiplies by its dequant scales (one, or one per channel).
 */
export function dequantOps(layer: Layer, shape: number[], accumulators: boolean): PostOp[] {
  if (!accumulators) return [];
  const blob = requiredBlob(layer, 0).data;
  if (!(blob instanceof BigUint64Array)) {
    throw badInput(
      layer,
      "it reads a deploy layer's accumulators but has no uint64 dequant scales",
    );
  }
  const deqScale = unpackDequantScales(layer, blob);
  const channels = shape[1] ?? 1;
  if (deqScale.length !== 1 && deqScale.length !== channels) {
    throw badInput(layer, `${deqScale.length} dequant scales for input ${shapeText(shape)}`);
  }
  const view = deqScale.length === 1
    ? { outer: 1, channels: 1, inner: product(shape) }
    : { outer: shape[0], channels, inner: product(shape.slice(2)) };
  return [{ kind: "affine", view, scale: deqScale, bias: null }];
}

export const quantRunners: RunnerTable = {
  Quant: {
    run: (layer, bottoms, context) =>
      eachBottom(layer, bottoms, (value) => quant(layer, value, context)),
  },
  DeQuant: {
    run: (layer, bottoms, context) =>
      eachBottom(layer, bottoms, (value) => dequant(layer, value, context)),
    readsAccumulators: true,
  },
};
