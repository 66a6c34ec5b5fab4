/**
 * What a layer implementation gets and gives: the contract between src/engine/run.ts and the
 * per-family layer files.
 *
 * @module
 */

import type { Blob, Layer, Net } from "../caffe/net.ts";
import type { EngineKernels } from "../wasm/engine.ts";
import type { QuantKernels } from "../wasm/quant.ts";
import { badInput, type Tensor, type Value } from "./tensor.ts";
import { keptTops } from "./layer_memo.ts";

/** Everything a layer implementation may use besides its bottoms. */
export interface RunContext {
  /** The simulator's WebAssembly kernels. */
  kernels: EngineKernels;
  /** The quantization kernels (fake-quant activations). */
  quantKernels: QuantKernels;
  /** The net being run. */
  net: Net;
  /** The layer of that name, if any. */
  layerNamed(name: string): Layer | undefined;
  /** The first DeQuant layer of the net whose first bottom is blob `name`, if any. */
  dequantReading(name: string): Layer | undefined;
  /** The input tensors of the run, by blob name (Input layers read theirs here). */
  inputs: Map<string, Tensor>;
  /**
   * The layers right after `layer` (a Convolution or InnerProduct) that it may apply to its output itself, in
   * order: ReLU, PReLU, BatchNorm, Scale and DeQuant layers (after an Eltwise: ReLU) that rewrite its value in place, or
   * into a blob of their own when only they read the one before (no callback needs the values
   * between).
   */
  fusable(layer: Layer): readonly Layer[];
  /** Tells the run that `layer` applied the first `count` of its fusable layers itself. */
  fused(layer: Layer, count: number): void;
  /**
   * Whether the deploy Quant layer `layer` may hand on its float input unquantized: its only
   * reader, the next layer, is a Convolution or InnerProduct that quantizes it itself (no callback sees it).
   */
  defersQuant(layer: Layer): boolean;
}

/** One layer type's implementation. */
export interface LayerRunner {
  /** Computes the tops from the bottoms (one value per top, in order). Throws `ConvertError`s. */
  run(layer: Layer, bottoms: Value[], context: RunContext): Value[];
  /** Whether it reads the deploy model's int8 Quant outputs (quantized layers). */
  readsInt8?: boolean;
  /** Whether it reads quantized layers' accumulators (DeQuant). */
  readsAccumulators?: boolean;
}

/** A family's runners by layer type. */
export type RunnerTable = Record<string, LayerRunner>;

/** Blob `index` of `layer` as float32 data; a missing or non-float blob is a `BAD_INPUT`. */
export function floatBlob(layer: Layer, index: number): Float32Array {
  const blob = requiredBlob(layer, index);
  if (!(blob.data instanceof Float32Array)) {
    throw badInput(layer, `blob ${index} holds ${blob.data.constructor.name} data, not float`);
  }
  return blob.data;
}

/** Blob `index` of `layer`; missing is a `BAD_INPUT`. */
export function requiredBlob(layer: Layer, index: number): Blob {
  const blob = layer.blobs[index];
  if (blob === undefined) {
    throw badInput(layer, `it needs blob ${index}, but has ${layer.blobs.length} blobs`);
  }
  return blob;
}

/** Runs `compute` on each bottom, giving the tops one to one (Caffe's multi-bottom layers). */
export function eachBottom(
  layer: Layer,
  bottoms: Value[],
  compute: (value: Value) => Value,
): Value[] {
  const tops = keptTops(layer).length;
  if (tops !== bottoms.length) {
    throw badInput(layer, `it has ${bottoms.length} bottoms and ${tops} tops`);
  }
  return bottoms.map(compute);
}
