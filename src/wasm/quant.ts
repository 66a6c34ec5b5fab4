/**
 * The typed wrapper of the quantization kernels (assembly/quant.ts): BatchNorm folding (docs/math.md),
 * weight, bias and dequant-scale arithmetic (docs/math.md), weight scales from weights (docs/math.md) and
 * activation fake-quant. Results equal docs/math.md's float32 / float64 definitions bit for bit.
 *
 * Weight tensors ({@linkcode WeightTensor}) stream through a bounded WebAssembly buffer in chunks
 * of {@linkcode CHUNK_ELEMENTS}: each chunk is copied in once, folded and quantized there, and
 * copied out once straight into the caller's target (an output file's buffer), so the module's
 * memory stays small whatever the tensor size. Per-channel data (factors, biases) crosses the
 * boundary once per call.
 *
 * Arguments that break a kernel's contract (lengths that disagree with the layout, a layer type
 * without weights) throw a `RangeError`: callers validate user input first and raise
 * `ConvertError`s with the layer's name.
 *
 * @module
 */

import { onceLoader, type WasmInstance } from "./load.ts";

/** How a weight tensor's elements map to output channels. The tensor is viewed as [outer, mid, inner]. */
export interface ChannelLayout {
  /** Size of the first view axis (C_out, or C_in for Deconvolution). */
  outer: number;
  /** Size of the middle view axis (1, or C_out/G for Deconvolution). */
  mid: number;
  /** Elements per (outer, mid) row; every element of a row has the same output channel. */
  inner: number;
  /** The weight axis that indexes output channels (0: Convolution/InnerProduct, 1: Deconvolution). */
  channelAxis: 0 | 1;
  /** Groups G; only channelAxis 1 uses it (always 1 for channelAxis 0). */
  groups: number;
}

/** The number of output channels of a layout: C_out. */
export function outputChannelCount(layout: ChannelLayout): number {
  return layout.channelAxis === 0 ? layout.outer : layout.groups * layout.mid;
}

/**
 * Bytes that are not held in an array but read on demand, range by range (e.g. from a file or
 * computed): the kernels stream them straight into their scratch memory.
 */
export interface ByteSource {
  /** The number of bytes. */
  readonly byteLength: number;
  /** Writes bytes [byteOffset, byteOffset + target.length) into `target`. */
  read(byteOffset: number, target: Uint8Array): void;
}

/**
 * A float32 weight tensor as little-endian bytes (at any alignment, e.g. a view into a
 * caffemodel, or read on demand), optionally folded: with `alpha`, the tensor meant is
 * W' = f32(W * alpha[c]).
 */
export interface WeightTensor {
  /** The elements W as float32 little-endian bytes (4 per element). */
  bytes: Uint8Array | ByteSource;
  /** How the elements map to output channels. */
  layout: ChannelLayout;
  /** docs/math.md fold factors a[c] (float64, one per output channel), or null for W as it is. */
  alpha: Float64Array | null;
}

/** What {@linkcode QuantKernels.quantizeToInt8} saw of the weights while quantizing them. */
export interface WeightQuantization {
  /** The index of the first NaN/Inf element of the (folded) tensor, or -1 when all are finite. */
  nonFinite: number;
  /** The largest |w| of each output channel of the (folded) tensor (float32, C_out values). */
  channelMax: Float32Array;
  /** The number of w_q at 127 or -128 in each output channel (C_out values). */
  extremes: Int32Array;
  /** The number of w_q equal to 0. */
  zeros: number;
}

/** Elements per chunk of a weight tensor streamed through WebAssembly memory (256 KiB of floats). */
export const CHUNK_ELEMENTS = 1 << 16;

/** The quantization kernels. */
export interface QuantKernels {
  /**
   * docs/math.md per-channel factors: a[c] = gamma[c]/sqrt(var[c]*f + eps) in float64
   * (f = factor == 0 ? 0 : 1/factor) and b'[c] = f32((b - mean*f)*a + beta). `factor` and `eps`
   * are used as float32 values; a null bias or beta reads as zeros. All arrays have C_out values.
   */
  batchNormFactors(input: {
    bias: Float32Array | null;
    mean: Float32Array;
    variance: Float32Array;
    factor: number;
    eps: number;
    gamma: Float32Array;
    beta: Float32Array | null;
  }): { alpha: Float64Array; bias: Float32Array };
  /**
   * Writes elements [start, start + count) of the (folded) `tensor` into `target` as float32
   * little-endian bytes (exactly `count * 4`).
   */
  writeWeights(tensor: WeightTensor, start: number, count: number, target: Uint8Array): void;
  /**
   * docs/math.md w_q of the whole (folded) tensor into `target` (one per element), checking every
   * chunk first, with what the same pass sees of the weights (see
   * {@linkcode WeightQuantization}). It stops at the first NaN/Inf element of the (folded)
   * tensor (`target` and the counts are then incomplete).
   */
  quantizeToInt8(
    tensor: WeightTensor,
    scaleW: Float32Array,
    target: Int8Array,
  ): WeightQuantization;
  /**
   * docs/math.md w_fake = f32(w_q * scale_w[c]) of elements [start, start + count) of the quantized
   * weights `weightsInt8` (laid out as `layout`) into `target` as float32 little-endian bytes
   * (exactly `count * 4`). scaleW has length 1 or C_out.
   */
  writeFakeWeights(
    weightsInt8: Int8Array,
    layout: ChannelLayout,
    scaleW: Float32Array,
    start: number,
    count: number,
    target: Uint8Array,
  ): void;
  /** The largest |w| of each output channel of the (folded) tensor (float32, C_out values). */
  channelMaxAbs(tensor: WeightTensor): Float32Array;
  /**
   * docs/math.md weight scales from the per-channel largest |W'[c]| (of
   * {@linkcode QuantKernels.channelMaxAbs}) and bias b' (null: no bias):
   * scale_w[c] = max(f32(max|W'[c]|/127), f32(|b'[c]|/(scaleD*2^30))), each quotient computed in
   * float64 and rounded once to float32 (the first equals the float32 division); a result of 0
   * (all-zero channel with zero or no bias, or quotients below the float32 range) becomes 1.0.
   * `scaleD` is used as given (float64).
   */
  weightScalesFromMax(
    channelMax: Float32Array,
    bias: Float32Array | null,
    scaleD: number,
  ): Float32Array;
  /** Index of the first NaN/Inf element, or -1. */
  firstNonFinite(values: Float32Array): number;
  /** deq[c] = f32(scale_d*scale_w[c]); `scaleD` is used as a float32 value. */
  dequantScales(scaleD: number, scaleW: Float32Array): Float32Array;
  /**
   * docs/math.md: b_q = rint(b/deq[c]) in float64, b_fake = f32(b_q*deq[c]) with the product in float64.
   * deqScale has length 1 or bias.length. A b_q outside int32 (or NaN) is not thrown: the first
   * such channel and its b_q are reported (`overflowChannel` -1 and `overflowValue` 0 when none),
   * and the overflowing channels hold 0 in both outputs.
   */
  quantizeBias(
    bias: Float32Array,
    deqScale: Float32Array,
  ): {
    biasInt32: Int32Array;
    biasFake: Float32Array;
    overflowChannel: number;
    overflowValue: number;
  };
  /** docs/math.md: uint64 = float32 bits of deq[c] in bits 31..0, rest 0. */
  packDequantScales(deqScale: Float32Array): BigUint64Array;
  /**
   * docs/math.md activation fake-quant: q = clamp(rint(f32(x*S)) + offsetD, -128, 127),
   * x^ = f32((q - offsetD)*scaleD), S = f32(1/scaleD); `scaleD` is used as a float32 value and a
   * NaN stays NaN. Writes into `out` (which may be `values` itself, for in place) or a new array.
   */
  fakeQuantActivations(
    values: Float32Array,
    scaleD: number,
    offsetD: number,
    out?: Float32Array,
  ): Float32Array;
}

/** The exports of assembly/quant.ts (offsets are bytes into the module's memory; 0 = absent). */
interface QuantExports {
  quantizeRange(
    weights: number,
    weightsInt8: number,
    ...rest: [
      ...RangeArgs,
      scaleW: number,
      scaleStride: number,
      channelMax: number,
      extremes: number,
    ]
  ): number;
  batchNormFactors(
    channels: number,
    bias: number,
    mean: number,
    variance: number,
    gamma: number,
    beta: number,
    factor: number,
    eps: number,
    alpha: number,
    biasOut: number,
  ): void;
  dequantizeRange(
    weightsInt8: number,
    weights: number,
    ...rest: [...RangeArgs, scaleW: number, scaleStride: number]
  ): void;
  scaleRange(weights: number, ...rest: [...RangeArgs, alpha: number]): void;
  maxAbsRange(weights: number, ...rest: [...RangeArgs, channelMax: number]): void;
  firstNonFinite(values: number, count: number): number;
  dequantScales(scaleD: number, scaleW: number, count: number, deqOut: number): void;
  quantizeBias(
    bias: number,
    deq: number,
    deqStride: number,
    channels: number,
    biasInt32: number,
    biasFake: number,
    overflowValue: number,
  ): number;
  packDequantScales(deq: number, count: number, packedOut: number): void;
  weightScalesFromMax(
    channelMax: number,
    channels: number,
    bias: number,
    scaleD: number,
    scaleOut: number,
  ): void;
  fakeQuantActivations(values: number, count: number, scaleD: number, offsetD: number): void;
}

/**
 * The range arguments of the weight kernels: count, firstRow, rowOffset, inner, mid, channelAxis,
 * outerPerGroup (see assembly/quant.ts).
 */
type RangeArgs = [number, number, number, number, number, number, number];

/** Throws unless `values` has `expected` elements. */
function checkLength(name: string, values: ArrayLike<number>, expected: number): void {
  if (values.length !== expected) {
    throw new RangeError(`${name} has ${values.length} values, expected ${expected}`);
  }
}

/** Throws unless the layout is well formed; returns its element count. */
function layoutSize(layout: ChannelLayout): number {
  const { outer, mid, inner, groups } = layout;
  const sizes = [outer, mid, inner, groups];
  if (sizes.some((size) => !Number.isInteger(size) || size < 0) || groups < 1) {
    throw new RangeError(`bad channel layout ${JSON.stringify(layout)}`);
  }
  if (layout.channelAxis === 1 && outer % groups !== 0) {
    throw new RangeError(`outer ${outer} is not a multiple of groups ${groups}`);
  }
  return outer * mid * inner;
}

/** Throws unless `tensor` is well formed (bytes fill the layout, alpha per channel). */
function checkTensor(tensor: WeightTensor): number {
  const count = layoutSize(tensor.layout);
  if (tensor.bytes.byteLength !== count * 4) {
    throw new RangeError(`weights have ${tensor.bytes.byteLength} bytes, expected ${count * 4}`);
  }
  if (tensor.alpha !== null) checkLength("alpha", tensor.alpha, outputChannelCount(tensor.layout));
  return count;
}

/** Throws unless [start, start + count) is a range of `total` elements. */
function checkRange(start: number, count: number, total: number): void {
  if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0) {
    throw new RangeError(`bad range ${start} + ${count}`);
  }
  if (start + count > total) {
    throw new RangeError(`range ${start} + ${count} is past the ${total} weights`);
  }
}

/** The range arguments of the weight kernels for `count` elements from element `index`. */
function rangeArgs(layout: ChannelLayout, index: number, count: number): RangeArgs {
  const { outer, mid, inner, channelAxis, groups } = layout;
  const firstRow = Math.floor(index / inner);
  return [count, firstRow, index - firstRow * inner, inner, mid, channelAxis, outer / groups];
}

/** Per-channel factors of length 1 (per tensor) or `channels`; returns the read stride (0 or 1). */
function factorStride(name: string, factors: Float32Array, channels: number): number {
  if (factors.length === 1) return 0;
  checkLength(name, factors, channels);
  return 1;
}

/** The bytes of a typed array (a view, no copy). */
function bytesOf(values: Float32Array | Int8Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** A whole float32 array as an unfolded weight tensor. */
function plainTensor(weights: Float32Array, layout: ChannelLayout): WeightTensor {
  return { bytes: bytesOf(weights), layout, alpha: null };
}

/** Binds the kernels to an instance of assembly/quant.ts. */
function bindKernels(wasm: WasmInstance): QuantKernels {
  const kernels = wasm.exports as unknown as QuantExports;
  /** Copies optional `values` in; 0 (absent) for null. */
  const copyInOptional = (values: Float32Array | Float64Array | null) =>
    values === null ? 0 : wasm.copyIn(values);

  /**
   * Streams elements [start, start + count) of `tensor` through scratch memory: after `reset`
   * and the caller's `allocate` (its regions, given the chunk length), each chunk is copied in,
   * folded when the tensor has alpha, and handed to `each` with the range arguments of the
   * kernels and a view of the whole memory; `each` returns false to stop there.
   */
  function eachChunk<R>(
    tensor: WeightTensor,
    start: number,
    count: number,
    allocate: (chunkLength: number) => R,
    each: (
      regions: R,
      chunkAt: number,
      done: number,
      range: RangeArgs,
      memory: Uint8Array,
    ) => boolean,
  ): void {
    checkRange(start, count, checkTensor(tensor));
    wasm.reset();
    const chunkLength = Math.min(count, CHUNK_ELEMENTS);
    const alphaAt = copyInOptional(tensor.alpha);
    const regions = allocate(chunkLength);
    const chunkAt = wasm.alloc(chunkLength * 4);
    const memory = wasm.view(Uint8Array, 0, wasm.memory.buffer.byteLength);
    for (let done = 0; done < count;) {
      const length = Math.min(chunkLength, count - done);
      const index = start + done;
      const range = rangeArgs(tensor.layout, index, length);
      const { bytes } = tensor;
      if (bytes instanceof Uint8Array) {
        memory.set(bytes.subarray(index * 4, (index + length) * 4), chunkAt);
      } else {
        bytes.read(index * 4, memory.subarray(chunkAt, chunkAt + length * 4));
      }
      if (alphaAt !== 0) kernels.scaleRange(chunkAt, ...range, alphaAt);
      if (!each(regions, chunkAt, done, range, memory)) return;
      done += length;
    }
  }

  const kernelSet: QuantKernels = {
    batchNormFactors(input) {
      const channels = input.mean.length;
      for (const name of ["bias", "variance", "gamma", "beta"] as const) {
        const values = input[name];
        if (values !== null) checkLength(name, values, channels);
      }
      wasm.reset();
      const biasAt = copyInOptional(input.bias);
      const meanAt = wasm.copyIn(input.mean);
      const varianceAt = wasm.copyIn(input.variance);
      const gammaAt = wasm.copyIn(input.gamma);
      const betaAt = copyInOptional(input.beta);
      const alphaAt = wasm.alloc(channels * 8);
      const biasOutAt = wasm.alloc(channels * 4);
      kernels.batchNormFactors(
        channels,
        biasAt,
        meanAt,
        varianceAt,
        gammaAt,
        betaAt,
        Math.fround(input.factor),
        Math.fround(input.eps),
        alphaAt,
        biasOutAt,
      );
      return {
        alpha: wasm.copyOut(Float64Array, alphaAt, channels),
        bias: wasm.copyOut(Float32Array, biasOutAt, channels),
      };
    },

    writeWeights(tensor, start, count, target) {
      checkLength("target", target, count * 4);
      eachChunk(tensor, start, count, () => undefined, (_, chunkAt, done, range, memory) => {
        target.set(memory.subarray(chunkAt, chunkAt + range[0] * 4), done * 4);
        return true;
      });
    },

    writeFakeWeights(weightsInt8, layout, scaleW, start, count, target) {
      checkLength("weightsInt8", weightsInt8, layoutSize(layout));
      checkRange(start, count, weightsInt8.length);
      checkLength("target", target, count * 4);
      const scaleStride = factorStride("scaleW", scaleW, outputChannelCount(layout));
      wasm.reset();
      const chunkLength = Math.min(count, CHUNK_ELEMENTS);
      const scaleAt = wasm.copyIn(scaleW);
      const int8At = wasm.alloc(chunkLength);
      const floatAt = wasm.alloc(chunkLength * 4);
      const memory = wasm.view(Uint8Array, 0, wasm.memory.buffer.byteLength);
      const bytes = bytesOf(weightsInt8);
      for (let done = 0; done < count;) {
        const length = Math.min(chunkLength, count - done);
        const index = start + done;
        memory.set(bytes.subarray(index, index + length), int8At);
        const range = rangeArgs(layout, index, length);
        kernels.dequantizeRange(int8At, floatAt, ...range, scaleAt, scaleStride);
        target.set(memory.subarray(floatAt, floatAt + length * 4), done * 4);
        done += length;
      }
    },

    quantizeToInt8(tensor, scaleW, target) {
      const count = checkTensor(tensor);
      checkLength("target", target, count);
      const channels = outputChannelCount(tensor.layout);
      const scaleStride = factorStride("scaleW", scaleW, channels);
      const int8Target = bytesOf(target);
      let nonFinite = -1;
      let zeros = 0;
      // Per-channel max |w| (float32) then counts of w_q at 127 / -128 (int32), zeroed.
      let statsAt = 0;
      const allocate = (chunkLength: number) => {
        const scaleAt = wasm.copyIn(scaleW);
        statsAt = wasm.alloc(channels * 8);
        wasm.view(Uint8Array, statsAt, channels * 8).fill(0);
        return { scaleAt, int8At: wasm.alloc(chunkLength) };
      };
      eachChunk(tensor, 0, count, allocate, ({ scaleAt, int8At }, chunkAt, done, range, memory) => {
        const length = range[0];
        const bad = kernels.firstNonFinite(chunkAt, length);
        if (bad >= 0) {
          nonFinite = done + bad;
          return false;
        }
        const extremesAt = statsAt + channels * 4;
        zeros += kernels.quantizeRange(
          chunkAt,
          int8At,
          ...range,
          scaleAt,
          scaleStride,
          statsAt,
          extremesAt,
        );
        int8Target.set(memory.subarray(int8At, int8At + length), done);
        return true;
      });
      return {
        nonFinite,
        channelMax: wasm.copyOut(Float32Array, statsAt, channels),
        extremes: wasm.copyOut(Int32Array, statsAt + channels * 4, channels),
        zeros,
      };
    },

    firstNonFinite(values) {
      const layout: ChannelLayout = {
        outer: 1,
        mid: 1,
        inner: values.length,
        channelAxis: 0,
        groups: 1,
      };
      let nonFinite = -1;
      eachChunk(
        plainTensor(values, layout),
        0,
        values.length,
        () => undefined,
        (_, at, done, range) => {
          const bad = kernels.firstNonFinite(at, range[0]);
          if (bad >= 0) nonFinite = done + bad;
          return bad < 0;
        },
      );
      return nonFinite;
    },

    channelMaxAbs(tensor) {
      const channels = outputChannelCount(tensor.layout);
      let maxAt = 0;
      const allocate = () => {
        maxAt = wasm.alloc(channels * 4);
        wasm.view(Uint8Array, maxAt, channels * 4).fill(0);
      };
      eachChunk(tensor, 0, checkTensor(tensor), allocate, (_, chunkAt, _done, range) => {
        kernels.maxAbsRange(chunkAt, ...range, maxAt);
        return true;
      });
      return wasm.copyOut(Float32Array, maxAt, channels);
    },

    weightScalesFromMax(channelMax, bias, scaleD) {
      const channels = channelMax.length;
      if (bias !== null) checkLength("bias", bias, channels);
      wasm.reset();
      const maxAt = wasm.copyIn(channelMax);
      const biasAt = copyInOptional(bias);
      const scaleAt = wasm.alloc(channels * 4);
      kernels.weightScalesFromMax(maxAt, channels, biasAt, scaleD, scaleAt);
      return wasm.copyOut(Float32Array, scaleAt, channels);
    },

    dequantScales(scaleD, scaleW) {
      wasm.reset();
      const scaleAt = wasm.copyIn(scaleW);
      const deqAt = wasm.alloc(scaleW.byteLength);
      kernels.dequantScales(scaleD, scaleAt, scaleW.length, deqAt);
      return wasm.copyOut(Float32Array, deqAt, scaleW.length);
    },

    quantizeBias(bias, deqScale) {
      const deqStride = factorStride("deqScale", deqScale, bias.length);
      wasm.reset();
      const biasAt = wasm.copyIn(bias);
      const deqAt = wasm.copyIn(deqScale);
      const int32At = wasm.alloc(bias.length * 4);
      const fakeAt = wasm.alloc(bias.length * 4);
      const overflowAt = wasm.alloc(8);
      const overflowChannel = kernels.quantizeBias(
        biasAt,
        deqAt,
        deqStride,
        bias.length,
        int32At,
        fakeAt,
        overflowAt,
      );
      return {
        biasInt32: wasm.copyOut(Int32Array, int32At, bias.length),
        biasFake: wasm.copyOut(Float32Array, fakeAt, bias.length),
        overflowChannel,
        overflowValue: overflowChannel < 0 ? 0 : wasm.view(Float64Array, overflowAt, 1)[0],
      };
    },

    packDequantScales(deqScale) {
      wasm.reset();
      const deqAt = wasm.copyIn(deqScale);
      const packedAt = wasm.alloc(deqScale.length * 8);
      kernels.packDequantScales(deqAt, deqScale.length, packedAt);
      return wasm.copyOut(BigUint64Array, packedAt, deqScale.length);
    },

    fakeQuantActivations(values, scaleD, offsetD, out) {
      if (out !== undefined) checkLength("out", out, values.length);
      wasm.reset();
      const valuesAt = wasm.copyIn(values);
      kernels.fakeQuantActivations(valuesAt, values.length, scaleD, offsetD);
      if (out === undefined) return wasm.copyOut(Float32Array, valuesAt, values.length);
      out.set(wasm.view(Float32Array, valuesAt, values.length));
      return out;
    },
  };
  return kernelSet;
}

/** The quantization kernels, instantiated once (later calls share the instance). */
export const quantKernels: () => Promise<QuantKernels> = onceLoader(
  async () => (await import("./quant.generated.ts")).wasmBase64,
  bindKernels,
);
