/**
 * The quantization plan (SPEC §5): which layers of the fused net are quantized, which of them
 * share one Quant layer, and the names of every new layer and blob. No blob data is touched.
 *
 * @module
 */

import { ConvertError } from "../errors.ts";
import { blobElementType } from "../caffe/deferred_blob.ts";
import { QUANTIZED_MARKER_TYPES } from "../caffe/layers.ts";
import { type Blob, Layer, type Net } from "../caffe/net.ts";
import type { TextMessage } from "../proto/tree.ts";
import type { QuantFactors, QuantRecord } from "./record.ts";

/** A new layer with `params` and `blobs` that keeps `source`'s unknown caffemodel bytes. */
export function layerLike(source: Layer, params: TextMessage, blobs: Blob[]): Layer {
  const layer = new Layer(params, blobs);
  layer.unknownBytes = source.unknownBytes;
  return layer;
}

/**
 * Throws ALREADY_QUANTIZED unless blob `index` of `layer` holds float32 data (`int8_data`,
 * `int32_data`, `uint64_data` mean the model is already quantized). Deferred data is not made.
 */
export function checkFloatBlob(layer: Layer, index: number, file?: string): void {
  const type = blobElementType(layer.blobs[index]);
  if (type === "float32") return;
  const kind = type === "int8" ? "int8_data" : type === "int32" ? "int32_data" : "uint64_data";
  throw new ConvertError(
    "ALREADY_QUANTIZED",
    `layer "${layer.name}" blob ${index} holds ${kind}: the model is already quantized`,
    { file, layer: layer.name },
  );
}

/** Blob `index` of `layer` as float32 data (see {@linkcode checkFloatBlob}). */
export function floatData(layer: Layer, index: number, file?: string): Float32Array {
  checkFloatBlob(layer, index, file);
  return layer.blobs[index].data as Float32Array;
}

/**
 * Throws ALREADY_QUANTIZED for a Quant/DeQuant/AntiQuant/IFMR/SearchN layer (naming `files.model`)
 * or integer blob data (naming `files.weights`).
 */
export function checkFloatModel(net: Net, files: { model?: string; weights?: string } = {}): void {
  for (const layer of net.layers) {
    if (QUANTIZED_MARKER_TYPES.has(layer.type)) {
      throw new ConvertError(
        "ALREADY_QUANTIZED",
        `layer "${layer.name}" has type ${layer.type}: the model is already quantized`,
        { file: files.model, line: layer.line, layer: layer.name },
      );
    }
    layer.blobs.forEach((_, index) => checkFloatBlob(layer, index, files.weights));
  }
}

/**
 * The values of a net's blobs: every write of a blob name (in-place writes included) makes a new
 * value, so two layers read "the same blob" only when no layer rewrote it in between.
 */
export interface BlobValues {
  /** The value each bottom of each layer reads, by layer index. */
  bottoms: number[][];
  /** The value each top of each layer writes, by layer index. */
  tops: number[][];
  /** The indices of the layers reading each value, in order, each layer once. */
  readers: number[][];
}

/** Numbers the blob values of `layers` (blobs read before any write are net inputs). */
export function blobValues(layers: readonly Layer[]): BlobValues {
  const current = new Map<string, number>();
  const readers: number[][] = [];
  const newValue = (name: string): number => {
    readers.push([]);
    current.set(name, readers.length - 1);
    return readers.length - 1;
  };
  const bottoms: number[][] = [];
  const tops: number[][] = [];
  layers.forEach((layer, index) => {
    bottoms.push(layer.bottoms.map((name) => {
      const value = current.get(name) ?? newValue(name);
      const valueReaders = readers[value];
      if (valueReaders[valueReaders.length - 1] !== index) valueReaders.push(index);
      return value;
    }));
    tops.push(layer.tops.map(newValue));
  });
  return { bottoms, tops, readers };
}

/** One Quant layer, possibly shared by several quantized layers reading the same input. */
export interface QuantGroup {
  /** The Quant layer's name, also the name of its top blob. */
  name: string;
  /** The blob it quantizes (`bottom[0]` of its consumers). */
  input: string;
  /** `scale_d`, float32. */
  scaleD: number;
  /** `offset_d`. */
  offsetD: number;
  /** The quantized layers it feeds, in layer order; the first is its `object_layer`. */
  consumers: string[];
}

/** The plan for one quantized layer `L`. */
export interface LayerPlan {
  /** `L`'s name. */
  layer: string;
  /** `L`'s record factors. */
  factors: QuantFactors;
  /** The Quant layer feeding `L`. */
  quant: QuantGroup;
  /** `L`'s new top, `<Y>_raw` (or a free variant). */
  rawTop: string;
  /** The blob `L` wrote, now written by the DeQuant layer. */
  output: string;
  /** The DeQuant layer's name, `<L>_dequant_layer` (or a free variant). */
  dequantName: string;
}

/** The whole plan, in layer order. */
export interface QuantPlan {
  /** Quantized layers by name, in layer order. */
  layers: Map<string, LayerPlan>;
  /** Quant layers in layer order. */
  groups: QuantGroup[];
}

/**
 * Plans the quantization of `net` (already fused) for the layers `record` gives factors for.
 * Quant layers are shared by layers reading the same blob value with equal float32 `scale_d`
 * and `offset_d`. New names that clash with a layer or blob name get the first free `_1`, `_2`…
 */
export function planQuantization(net: Net, record: QuantRecord): QuantPlan {
  const values = blobValues(net.layers);
  const taken = new Set<string>(net.header.getAll("input").map(String));
  for (const layer of net.layers) {
    taken.add(layer.name);
    for (const name of [...layer.bottoms, ...layer.tops]) taken.add(name);
  }
  const freeName = (base: string): string => {
    let name = base;
    for (let suffix = 1; taken.has(name); suffix++) name = `${base}_${suffix}`;
    taken.add(name);
    return name;
  };
  const groupsByKey = new Map<string, QuantGroup>();
  const plan: QuantPlan = { layers: new Map(), groups: [] };
  net.layers.forEach((layer, index) => {
    const factors = record.get(layer.name)?.factors;
    if (factors === undefined) return;
    const key = `${values.bottoms[index][0]}/${factors.scaleD}/${factors.offsetD}`;
    let quant = groupsByKey.get(key);
    if (quant === undefined) {
      quant = {
        name: freeName(`${layer.name}_quant_layer`),
        input: layer.bottoms[0],
        scaleD: factors.scaleD,
        offsetD: factors.offsetD,
        consumers: [],
      };
      groupsByKey.set(key, quant);
      plan.groups.push(quant);
    }
    quant.consumers.push(layer.name);
    const output = layer.tops[0];
    plan.layers.set(layer.name, {
      layer: layer.name,
      factors,
      quant,
      rawTop: freeName(`${output}_raw`),
      output,
      dequantName: freeName(`${layer.name}_dequant_layer`),
    });
  });
  return plan;
}
