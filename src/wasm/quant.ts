/**
 * The typed wrapper of the quantization kernels (assembly/quant.ts): BatchNorm folding (SPEC §3),
 * weight, bias and dequant-scale arithmetic (SPEC §4), weight scales from weights (SPEC §9) and
 * activation fake-quant. Every call copies each tensor into WebAssembly memory once, runs one
 * kernel over the whole tensor and copies the results out once; results equal SPEC's float32 /
 * float64 definitions bit for bit.
 *
 * Arguments that break a kernel's contract (lengths that disagree with the layout, a layer type
 * without weights) throw a `RangeError`: callers validate user input first and raise
 * `ConvertError`s with the layer's name.
 *
 * @module
 */

import { weightChannelAxis, WEIGHTED_TYPES } from "../caffe/layers.ts";
import { instantiate, type WasmInstance } from "./load.ts";
import { wasmBase64 } from "./quant.generated.ts";

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

/**
 * The channel layout of a `Convolution`, `InnerProduct` (channelAxis 0: outer = C_out, mid = 1,
 * inner = the rest) or `Deconvolution` weight blob (`[C_in, C_out/G, kh, kw]`: channelAxis 1,
 * outer = C_in, mid = C_out/G, inner = kh*kw; the output channel of element (i, j, k) is
 * floor(i / (C_in/G)) * (C_out/G) + j, SPEC §3). InnerProduct weights are expected as `[N, K]`.
 */
export function channelLayout(type: string, shape: number[], groups: number): ChannelLayout {
  if (!WEIGHTED_TYPES.has(type)) throw new RangeError(`layer type ${type} has no weight layout`);
  if (shape.length < 1 || shape.some((size) => !Number.isInteger(size) || size < 0)) {
    throw new RangeError(`bad weight shape [${shape.join(", ")}]`);
  }
  const channelAxis = weightChannelAxis(type);
  if (channelAxis === 0) {
    return { outer: shape[0], mid: 1, inner: product(shape.slice(1)), channelAxis, groups: 1 };
  }
  if (shape.length < 2 || !Number.isInteger(groups) || groups < 1 || shape[0] % groups !== 0) {
    throw new RangeError(`Deconvolution weights [${shape.join(", ")}] do not fit ${groups} groups`);
  }
  return { outer: shape[0], mid: shape[1], inner: product(shape.slice(2)), channelAxis, groups };
}

/** The number of output channels of a layout: C_out. */
export function outputChannelCount(layout: ChannelLayout): number {
  return layout.channelAxis === 0 ? layout.outer : layout.groups * layout.mid;
}

function product(sizes: number[]): number {
  return sizes.reduce((total, size) => total * size, 1);
}

/** The quantization kernels, each over whole tensors. */
export interface QuantKernels {
  /**
   * SPEC §3: a[c] = gamma[c]/sqrt(var[c]*f + eps) in float64 (f = factor == 0 ? 0 : 1/factor),
   * W' = f32(W*a), b' = f32((b - mean*f)*a + beta). `factor` and `eps` are used as float32 values.
   * A null bias or beta reads as zeros. mean, variance, gamma (and beta, bias) have C_out values.
   */
  foldBatchNorm(input: {
    weights: Float32Array;
    layout: ChannelLayout;
    bias: Float32Array | null;
    mean: Float32Array;
    variance: Float32Array;
    factor: number;
    eps: number;
    gamma: Float32Array;
    beta: Float32Array | null;
  }): { weights: Float32Array; bias: Float32Array };
  /**
   * SPEC §4: w_q = clamp(rint(f32(W/scale_w[c])), -128, 127); w_fake = f32(w_q*scale_w[c]).
   * scaleW has length 1 or C_out. A NaN weight gives w_q 127 and w_fake NaN (reject NaN first
   * with {@linkcode QuantKernels.firstNonFinite}).
   */
  quantizeWeights(
    weights: Float32Array,
    layout: ChannelLayout,
    scaleW: Float32Array,
  ): { weightsInt8: Int8Array; weightsFake: Float32Array };
  /** Index of the first NaN/Inf element, or -1. */
  firstNonFinite(values: Float32Array): number;
  /** deq[c] = f32(scale_d*scale_w[c]); `scaleD` is used as a float32 value. */
  dequantScales(scaleD: number, scaleW: Float32Array): Float32Array;
  /**
   * SPEC §4: b_q = rint(b/deq[c]) in float64, b_fake = f32(b_q*deq[c]) with the product in float64.
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
  /** SPEC §4: uint64 = float32 bits of deq[c] in bits 31..0, rest 0. */
  packDequantScales(deqScale: Float32Array): BigUint64Array;
  /**
   * SPEC §9, on fused weights W' and bias b' (null: no bias):
   * scale_w[c] = max(f32(max|W'[c]|/127), f32(|b'[c]|/(scaleD*2^30))), each quotient computed in
   * float64 and rounded once to float32 (the first equals the float32 division); a result of 0
   * (all-zero channel with zero or no bias, or quotients below the float32 range) becomes 1.0.
   * `scaleD` is used as given (float64). Weights must be finite.
   */
  weightScalesFromWeights(
    weights: Float32Array,
    layout: ChannelLayout,
    bias: Float32Array | null,
    scaleD: number,
  ): Float32Array;
  /**
   * SPEC §4 activation fake-quant: q = clamp(rint(f32(x*S)) + offsetD, -128, 127),
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
  quantizeWeights(
    weights: number,
    weightsInt8: number,
    outer: number,
    mid: number,
    inner: number,
    channelAxis: number,
    groups: number,
    scaleW: number,
    scaleStride: number,
  ): void;
  foldBatchNorm(
    weights: number,
    outer: number,
    mid: number,
    inner: number,
    channelAxis: number,
    groups: number,
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
  weightScalesFromWeights(
    weights: number,
    outer: number,
    mid: number,
    inner: number,
    channelAxis: number,
    groups: number,
    channels: number,
    bias: number,
    scaleD: number,
    channelMax: number,
    scaleOut: number,
  ): void;
  fakeQuantActivations(values: number, count: number, scaleD: number, offsetD: number): void;
}

/** Throws unless `values` has `expected` elements. */
function checkLength(name: string, values: ArrayLike<number>, expected: number): void {
  if (values.length !== expected) {
    throw new RangeError(`${name} has ${values.length} values, expected ${expected}`);
  }
}

/** Throws unless the layout is well formed and `weights` fills it. */
function checkLayout(weights: Float32Array, layout: ChannelLayout): void {
  const { outer, mid, inner, groups } = layout;
  const sizes = [outer, mid, inner, groups];
  if (sizes.some((size) => !Number.isInteger(size) || size < 0) || groups < 1) {
    throw new RangeError(`bad channel layout ${JSON.stringify(layout)}`);
  }
  if (layout.channelAxis === 1 && outer % groups !== 0) {
    throw new RangeError(`outer ${outer} is not a multiple of groups ${groups}`);
  }
  checkLength("weights", weights, outer * mid * inner);
}

/** Per-channel factors of length 1 (per tensor) or `channels`; returns the read stride (0 or 1). */
function factorStride(name: string, factors: Float32Array, channels: number): number {
  if (factors.length === 1) return 0;
  checkLength(name, factors, channels);
  return 1;
}

/** The view arguments of a layout, in kernel order: outer, mid, inner, channelAxis, groups. */
function layoutArgs(layout: ChannelLayout): [number, number, number, number, number] {
  return [layout.outer, layout.mid, layout.inner, layout.channelAxis, layout.groups];
}

/** Binds the kernels to an instance of assembly/quant.ts. */
function bindKernels(wasm: WasmInstance): QuantKernels {
  const kernels = wasm.exports as unknown as QuantExports;
  /** Copies optional `values` in; 0 (absent) for null. */
  const copyInOptional = (values: Float32Array | null) => values === null ? 0 : wasm.copyIn(values);

  return {
    foldBatchNorm(input) {
      const { weights, layout } = input;
      checkLayout(weights, layout);
      const channels = outputChannelCount(layout);
      for (const name of ["bias", "mean", "variance", "gamma", "beta"] as const) {
        const values = input[name];
        if (values !== null) checkLength(name, values, channels);
      }
      wasm.reset();
      const weightsAt = wasm.copyIn(weights);
      const biasAt = copyInOptional(input.bias);
      const meanAt = wasm.copyIn(input.mean);
      const varianceAt = wasm.copyIn(input.variance);
      const gammaAt = wasm.copyIn(input.gamma);
      const betaAt = copyInOptional(input.beta);
      const alphaAt = wasm.alloc(channels * 8);
      const biasOutAt = wasm.alloc(channels * 4);
      kernels.foldBatchNorm(
        weightsAt,
        ...layoutArgs(layout),
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
        weights: wasm.copyOut(Float32Array, weightsAt, weights.length),
        bias: wasm.copyOut(Float32Array, biasOutAt, channels),
      };
    },

    quantizeWeights(weights, layout, scaleW) {
      checkLayout(weights, layout);
      const scaleStride = factorStride("scaleW", scaleW, outputChannelCount(layout));
      wasm.reset();
      const weightsAt = wasm.copyIn(weights);
      const scaleAt = wasm.copyIn(scaleW);
      const int8At = wasm.alloc(weights.length);
      kernels.quantizeWeights(weightsAt, int8At, ...layoutArgs(layout), scaleAt, scaleStride);
      return {
        weightsInt8: wasm.copyOut(Int8Array, int8At, weights.length),
        weightsFake: wasm.copyOut(Float32Array, weightsAt, weights.length),
      };
    },

    firstNonFinite(values) {
      wasm.reset();
      return kernels.firstNonFinite(wasm.copyIn(values), values.length);
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

    weightScalesFromWeights(weights, layout, bias, scaleD) {
      checkLayout(weights, layout);
      const channels = outputChannelCount(layout);
      if (bias !== null) checkLength("bias", bias, channels);
      wasm.reset();
      const weightsAt = wasm.copyIn(weights);
      const biasAt = copyInOptional(bias);
      const channelMaxAt = wasm.alloc(channels * 4);
      const scaleAt = wasm.alloc(channels * 4);
      kernels.weightScalesFromWeights(
        weightsAt,
        ...layoutArgs(layout),
        channels,
        biasAt,
        scaleD,
        channelMaxAt,
        scaleAt,
      );
      return wasm.copyOut(Float32Array, scaleAt, channels);
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
}

let cached: Promise<QuantKernels> | undefined;

/** The quantization kernels, instantiated once (later calls share the instance). */
export function quantKernels(): Promise<QuantKernels> {
  cached ??= instantiate(wasmBase64).then(bindKernels, (error) => {
    cached = undefined;
    throw error;
  });
  return cached;
}
