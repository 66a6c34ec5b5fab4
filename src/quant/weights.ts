/**
 * Float weight blobs that the kernels compute while they are written: folded weights (docs/math.md)
 * from the input tensor, and fake-quant weights (docs/math.md) from the int8 ones, chunk by chunk
 * straight into the output, so no full copy of them is held. Reading a blob's `data` computes it
 * whole.
 *
 * @module
 */

import { blobBytes, DeferredBlob } from "../caffe/deferred_blob.ts";
import type { Blob } from "../caffe/net.ts";
import type { ChannelLayout, QuantKernels, WeightTensor } from "../wasm/quant.ts";

/** Folded weights W' = f32(W * a[c]) (docs/math.md), computed from the input tensor when needed. */
export class FoldedWeights extends DeferredBlob {
  /** The tensor the weights come from, with its fold factors. */
  readonly tensor: WeightTensor;
  readonly #kernels: QuantKernels;
  readonly #source: Blob;

  /** The weights of `shape` that `tensor` (the elements of `source`, folded) stands for. */
  constructor(kernels: QuantKernels, shape: number[], tensor: WeightTensor, source: Blob) {
    super(shape);
    this.#kernels = kernels;
    this.tensor = tensor;
    this.#source = source;
  }

  /** The input weights the folded ones are computed from. */
  override get computedFrom(): Blob {
    return this.#source;
  }

  /** Folds elements [start, start + count) into `target` through the kernels. */
  protected produce(start: number, count: number, target: Uint8Array): void {
    this.#kernels.writeWeights(this.tensor, start, count, target);
  }
}

/** Fake-quant weights w_fake = f32(w_q * scale_w[c]) (docs/math.md), made from the int8 ones. */
export class FakeQuantWeights extends DeferredBlob {
  readonly #kernels: QuantKernels;
  readonly #weightsInt8: Int8Array;
  readonly #layout: ChannelLayout;
  readonly #scaleW: Float32Array;

  /** The fake-quant weights of `shape` for `weightsInt8` (laid out as `layout`) and `scaleW`. */
  constructor(
    kernels: QuantKernels,
    shape: number[],
    weightsInt8: Int8Array,
    layout: ChannelLayout,
    scaleW: Float32Array,
  ) {
    super(shape);
    this.#kernels = kernels;
    this.#weightsInt8 = weightsInt8;
    this.#layout = layout;
    this.#scaleW = scaleW;
  }

  /** Computes elements [start, start + count) into `target` through the kernels. */
  protected produce(start: number, count: number, target: Uint8Array): void {
    this.#kernels.writeFakeWeights(
      this.#weightsInt8,
      this.#layout,
      this.#scaleW,
      start,
      count,
      target,
    );
  }
}

/**
 * The tensor a float32 weight blob stands for, with `layout`: the folded tensor of computed W'
 * weights not made yet (so folding and quantizing run in one pass), else
 * {@linkcode storedTensor}.
 */
export function weightTensor(blob: Blob, layout: ChannelLayout): WeightTensor {
  if (blob instanceof FoldedWeights && blob.held === undefined) return { ...blob.tensor, layout };
  return storedTensor(blob, layout);
}

/**
 * A float32 blob's elements as an unfolded tensor with `layout`: the bytes where they are stored
 * already (no copy); for a deferred blob that reads stored bytes (a file), those bytes range by
 * range as the kernels stream them (its array is never made); else those of its data, made first
 * when it is computed.
 */
export function storedTensor(blob: Blob, layout: ChannelLayout): WeightTensor {
  const stored = blobBytes(blob);
  if (stored !== undefined) return { bytes: stored, layout, alpha: null };
  if (blob instanceof DeferredBlob && blob.readsStoredBytes) {
    const bytes = {
      byteLength: blob.length * 4,
      read: (byteOffset: number, target: Uint8Array) =>
        blob.writeBytes(byteOffset / 4, target.length / 4, target),
    };
    return { bytes, layout, alpha: null };
  }
  const { data } = blob;
  return {
    bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    layout,
    alpha: null,
  };
}
