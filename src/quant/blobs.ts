/**
 * Helpers over a net's layers and blobs shared by fusion, rewriting and record making: the
 * float-data checks (an integer blob or a Quant-family layer means the model is already
 * quantized), blob value numbering, and new layers that keep a source layer's unknown bytes.
 *
 * @module
 */

import { ConvertError } from "../errors.ts";
import { blobElementType } from "../caffe/deferred_blob.ts";
import { QUANTIZED_MARKER_TYPES } from "../caffe/layers.ts";
import { type Blob, Layer, type Net } from "../caffe/net.ts";
import type { TextMessage } from "../proto/tree.ts";

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
