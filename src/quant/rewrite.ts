/**
 * The two output nets (docs/math.md, docs/layers.md): Quant and DeQuant layers inserted around each quantized
 * layer, and the quantized layers' blobs in fake-quant form (float weights that are exactly
 * representable in int8 · scale_w) and deploy form (`int8_data`, `int32_data`, `uint64_data`).
 * Every check runs here, with the int8 weights in the same pass; fake-quant weights are computed
 * from those later, while the fake-quant net is written.
 *
 * @module
 */

import { ConvertError } from "../errors.ts";
import type { ModelFiles } from "../caffe/model.ts";
import { type Blob, Layer, type Net } from "../caffe/net.ts";
import { TextMessage } from "../proto/tree.ts";
import { type QuantKernels, quantKernels } from "../wasm/quant.ts";
import { channelLayout } from "./channel_layout.ts";
import { checkFloatBlob, floatData, layerLike } from "./blobs.ts";
import type { LayerPlan, QuantGroup, QuantPlan } from "./plan.ts";
import { weightWarnings } from "./weight_health.ts";
import { FakeQuantWeights, weightTensor } from "./weights.ts";
import type { QuantFactors } from "./record.ts";

/** The fake-quant and deploy nets. */
export interface QuantizedNets {
  /** Runs in AMCT's patched Caffe: Quant quantizes and dequantizes, DeQuant is the identity. */
  fakeQuant: Net;
  /** For Ascend ATC: integer weights and packed dequant scales. */
  deploy: Net;
  /** Warnings about quantized weights and biases that suggest a bad record (weight_health.ts). */
  warnings: string[];
}

/** Options of {@linkcode rewriteNets}. */
export interface RewriteOptions {
  /** The input files, named in errors. */
  files?: ModelFiles;
  /** Called after each quantized layer with the count done and the total. */
  onLayer?: (done: number, total: number) => void;
  /** Awaited before a layer's blobs are quantized (e.g. to read weights kept in a `Blob`). */
  prepare?: (blobs: readonly Blob[]) => Promise<void>;
}

/** A quantized layer's blobs and dequant scales, for both nets. */
interface QuantizedBlobs {
  fakeQuant: Blob[];
  deploy: Blob[];
  deqScale: Float32Array;
  warnings: string[];
}

/**
 * Builds both output nets from the fused `net` and its `plan`. Layers the plan does not touch
 * keep their parameter tree and blob objects (wrapped in new `Layer`s, never changed).
 *
 * @example
 * ```ts ignore
 * const { fakeQuant, deploy } = await rewriteNets(fused, planQuantization(fused, record));
 * ```
 */
export async function rewriteNets(
  net: Net,
  plan: QuantPlan,
  options: RewriteOptions = {},
): Promise<QuantizedNets> {
  const { files = {}, onLayer, prepare } = options;
  const kernels = await quantKernels();
  const fakeQuant: Layer[] = [];
  const deploy: Layer[] = [];
  const warnings: string[] = [];
  let done = 0;
  for (const layer of net.layers) {
    const layerPlan = plan.layers.get(layer.name);
    if (layerPlan === undefined) {
      fakeQuant.push(layerLike(layer, layer.params, layer.blobs.slice()));
      deploy.push(layerLike(layer, layer.params, layer.blobs.slice()));
      continue;
    }
    if (layerPlan.quant.consumers[0] === layer.name) {
      fakeQuant.push(quantLayer(layerPlan.quant));
      deploy.push(quantLayer(layerPlan.quant));
    }
    await prepare?.(layer.blobs);
    const blobs = quantizeBlobs(kernels, layer, layerPlan.factors, files.weights);
    warnings.push(...blobs.warnings);
    const params = rewiredParams(layer, layerPlan);
    fakeQuant.push(layerLike(layer, params, blobs.fakeQuant));
    deploy.push(layerLike(layer, params.clone(), blobs.deploy));
    const channelWise = blobs.deqScale.length > 1;
    const shape = [blobs.deqScale.length];
    const zeros = () => ({ shape, data: new Float32Array(blobs.deqScale.length) });
    fakeQuant.push(
      dequantLayer(layerPlan, channelWise, [{ shape, data: blobs.deqScale }, zeros(), zeros()]),
    );
    deploy.push(dequantLayer(layerPlan, channelWise, [
      { shape, data: kernels.packDequantScales(blobs.deqScale) },
    ]));
    onLayer?.(++done, plan.layers.size);
  }
  return {
    fakeQuant: { header: net.header, layers: fakeQuant },
    deploy: { header: net.header, layers: deploy },
    warnings,
  };
}

/** `L`'s parameters with `bottom[0]` read from its Quant layer and `top[0]` renamed `<Y>_raw`. */
function rewiredParams(layer: Layer, layerPlan: LayerPlan): TextMessage {
  const rewired = new Layer(layer.params.clone());
  rewired.bottoms = [layerPlan.quant.name, ...layer.bottoms.slice(1)];
  rewired.tops = [layerPlan.rawTop, ...layer.tops.slice(1)];
  return rewired.params;
}

/** A new layer's parameter tree: name, type, one bottom, one top, then its parameter message. */
function newLayerParams(
  name: string,
  type: string,
  bottom: string,
  top: string,
  message: string,
  fields: TextMessage,
): TextMessage {
  return new TextMessage([
    { name: "name", value: name },
    { name: "type", value: type },
    { name: "bottom", value: bottom },
    { name: "top", value: top },
    { name: message, value: fields },
  ]);
}

/**
 * The Quant layer of a group: `quant_param { scale: S offset: "<offset_d byte>" with_offset:
 * true object_layer: "<first consumer>" }` with S = f32(1/scale_d); its top is its own name.
 */
function quantLayer(group: QuantGroup): Layer {
  const quantParam = new TextMessage([
    { name: "scale", value: Math.fround(1 / group.scaleD) },
    { name: "offset", value: new Uint8Array([group.offsetD & 0xff]) },
    { name: "with_offset", value: true },
    { name: "object_layer", value: group.consumers[0] },
  ]);
  return new Layer(
    newLayerParams(group.name, "Quant", group.input, group.name, "quant_param", quantParam),
  );
}

/** The DeQuant layer after `L`: reads `<Y>_raw`, writes `Y`. */
function dequantLayer(layerPlan: LayerPlan, channelWise: boolean, blobs: Blob[]): Layer {
  const dequantParam = new TextMessage([{ name: "channel_wise", value: channelWise }]);
  const params = newLayerParams(
    layerPlan.dequantName,
    "DeQuant",
    layerPlan.rawTop,
    layerPlan.output,
    "dequant_param",
    dequantParam,
  );
  return new Layer(params, blobs);
}

/**
 * docs/math.md for one layer: dequant scales, and for weighted layers the quantized weights and bias.
 * NaN/∞ in its weights or bias, or a quantized bias outside int32, is an error naming the layer.
 */
function quantizeBlobs(
  kernels: QuantKernels,
  layer: Layer,
  factors: QuantFactors,
  weightsFile: string | undefined,
): QuantizedBlobs {
  const { scaleD, scaleW } = factors;
  const deqScale = kernels.dequantScales(scaleD, scaleW);
  if (layer.blobs.length === 0) return { fakeQuant: [], deploy: [], deqScale, warnings: [] };
  const place = { file: weightsFile, layer: layer.name };
  const notFinite = (what: string, index: number, value: number) =>
    new ConvertError(
      "WEIGHTS_NOT_FINITE",
      `layer "${layer.name}": ${what} element ${index} is ${value}`,
      place,
    );
  checkFloatBlob(layer, 0, weightsFile);
  const { shape } = layer.blobs[0];
  const weights = weightTensor(layer.blobs[0], channelLayout(layer));
  const weightsInt8 = new Int8Array(weights.bytes.byteLength / 4);
  const quantization = kernels.quantizeToInt8(weights, scaleW, weightsInt8);
  const badWeight = quantization.nonFinite;
  if (badWeight >= 0) {
    const value = new Float32Array(1);
    kernels.writeWeights(weights, badWeight, 1, new Uint8Array(value.buffer));
    throw notFinite("weight", badWeight, value[0]);
  }
  const fakeWeights = new FakeQuantWeights(kernels, shape, weightsInt8, weights.layout, scaleW);
  // f32(w_q · scale_w) can only overflow when 128 · scale_w does (|w_q| <= 128): check the
  // fake-quant weights then, made now instead of while they are written.
  if (scaleW.some((scale) => Math.fround(128 * scale) === Infinity)) {
    const badFake = kernels.firstNonFinite(fakeWeights.data as Float32Array);
    if (badFake >= 0) {
      const largest = scaleW.reduce((a, b) => Math.max(a, b));
      throw new ConvertError(
        "RECORD_BAD_SCALE",
        `layer "${layer.name}": the fake-quant weight element ${badFake} = w_q · scale_w ` +
          `overflows float32 (scale_w up to ${largest} is too large for these weights)`,
        place,
      );
    }
  }
  const fakeQuant: Blob[] = [fakeWeights];
  const deploy: Blob[] = [{ shape, data: weightsInt8 }];
  if (layer.blobs.length > 1) {
    const bias = floatData(layer, 1, weightsFile);
    const badBias = kernels.firstNonFinite(bias);
    if (badBias >= 0) throw notFinite("bias", badBias, bias[badBias]);
    const quantized = kernels.quantizeBias(bias, deqScale);
    if (quantized.overflowChannel >= 0) {
      throw new ConvertError(
        "BIAS_OVERFLOW",
        `layer "${layer.name}": the quantized bias of channel ${quantized.overflowChannel} is ` +
          `${quantized.overflowValue}, outside int32 (bias ${bias[quantized.overflowChannel]}, ` +
          `dequant scale ${deqScale[deqScale.length === 1 ? 0 : quantized.overflowChannel]})`,
        place,
      );
    }
    const badFakeBias = kernels.firstNonFinite(quantized.biasFake);
    if (badFakeBias >= 0) {
      const deq = deqScale[deqScale.length === 1 ? 0 : badFakeBias];
      throw new ConvertError(
        "BIAS_OVERFLOW",
        `layer "${layer.name}": the fake-quant bias of channel ${badFakeBias}, b_q · deq = ` +
          `${quantized.biasInt32[badFakeBias]} · ${deq}, overflows float32`,
        place,
      );
    }
    fakeQuant.push({ shape: [bias.length], data: quantized.biasFake });
    deploy.push({ shape: [bias.length], data: quantized.biasInt32 });
  }
  const biasInt32 = deploy[1]?.data as Int32Array | undefined;
  const warnings = weightWarnings(layer.name, weightsInt8.length, quantization, scaleW, biasInt32);
  return { fakeQuant, deploy, deqScale, warnings };
}
