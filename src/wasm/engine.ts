/**
 * The typed wrapper of the simulator's kernels (assembly/engine.ts). Every call copies each
 * tensor into WebAssembly memory once, runs its kernels over whole tensors and copies the result
 * out once, as a new array. Weights and bias of convolutions and inner products stay in
 * WebAssembly memory across calls while the same array comes back (src/wasm/resident.ts): they
 * must not be changed in place once handed to a kernel. Shapes are the caller's to check (src/engine validates layers and
 * raises `ConvertError`s); a wrapper only checks that arrays fill the sizes it is given and
 * throws a `RangeError` otherwise.
 *
 * Integer (deploy model) forms: an input `q` holds the Quant layer's int8 values as float32 and
 * `offsetD` is its activation offset; the kernels work on the int32 differences q - offset_d with
 * int8 weights and int32 bias, and return the int32 results converted to float32 (what
 * AscendDequant reads).
 *
 * @module
 */

import { instantiate, onceLoader, type WasmInstance } from "./load.ts";
import { OutputArena } from "./output_arena.ts";
import { DEFAULT_RESIDENT_BYTES, ResidentArrays } from "./resident.ts";
import { type EngineBuild, engineBuild, engineModuleBase64 } from "./engine_build.ts";

/** A 2-D window: kernel, pad, stride and dilation, each [height, width]. */
export interface Window2d {
  /** Kernel height and width. */
  kernel: [number, number];
  /** Zero padding on each side. */
  pad: [number, number];
  /** Stride. */
  stride: [number, number];
  /** Dilation (pooling uses 1). */
  dilation: [number, number];
}

/** A float input, or the deploy model's int8 values with their activation offset. */
export interface KernelInput {
  /** NCHW values (float, or int8 q values held as float32). */
  x: Float32Array;
  /** Present for the deploy model's integer form: the Quant layer's offset_d. */
  offsetD?: number;
  /**
   * Integer form only: `x` is still the Quant layer's float input, quantized here first with
   * this scale (as the quantize kernel does).
   */
  quantScale?: number;
  /**
   * Float form only: `x` is still a fake-quant model's Quant layer's input, fake-quantized here
   * first (SPEC §4, as `fakeQuantize` does) with its scale_d and offset_d.
   */
  fakeQuant?: FakeQuant;
}

/** A fake-quant Quant layer's scale_d and offset_d (an integer in -128..127). */
export interface FakeQuant {
  /** scale_d. */
  scaleD: number;
  /** offset_d. */
  offsetD: number;
}

/**
 * An operation a convolution applies to its output in WebAssembly memory before handing it out
 * (a layer fused into it): the kernel its own layer would run, on the same values.
 */
export type PostOp =
  | { kind: "relu"; slope: number }
  | { kind: "prelu"; view: ChannelView; slopes: Float32Array }
  | { kind: "affine"; view: ChannelView; scale: Float32Array | null; bias: Float32Array | null }
  | { kind: "batchNorm"; view: ChannelView; mean: Float32Array; deviation: Float32Array };

/** Arguments of a convolution or deconvolution over an NCHW input. */
export interface ConvolutionArgs extends KernelInput {
  /** [N, C, H, W] of `x`. */
  shape: [number, number, number, number];
  /** Weights: float, or int8 for the integer form. */
  weights: Float32Array | Int8Array;
  /** Bias per output channel (int32 for the integer form), or null. */
  bias: Float32Array | Int32Array | null;
  /** Output channels. */
  outputs: number;
  /** Groups. */
  groups: number;
  /** Window geometry. */
  window: Window2d;
  /** Output height and width. */
  outSize: [number, number];
  /**
   * Convolution only: operations applied in order to the output (bias included; the integer
   * form's accumulators as float32), in place of separate layers. A lone float ReLU runs in the
   * matrix product's epilogue.
   */
  post?: readonly PostOp[];
  /**
   * Convolution only: how a 3x3 or 5x5 window at stride 1 and dilation 1 is
   * computed. "auto" (the default) takes a Winograd form (float F(4x4, 3x3), F(2x2, 3x3) or
   * F(2x2, 5x5); integer: the exact F(2x2, 3x3), a 5x5 window as four 3x3 blocks) where it is
   * faster ({@linkcode winogradForm}, {@linkcode intWinogradWins}), "direct" im2col + GEMM;
   * "winograd" Winograd at any size (float: F(4x4, 3x3) or F(2x2, 5x5), its rounding differs from
   * the direct form's; integer: F(2x2, 3x3), the same bits), "winograd2x2" F(2x2, 3x3) for a 3x3
   * window (float: its own rounding).
   */
  algorithm?: "auto" | "direct" | "winograd" | "winograd2x2";
}

/** Arguments of an InnerProduct: y[rows, outputs] = x[rows, depth] W^T + bias. */
export interface InnerProductArgs extends KernelInput {
  /** Rows (product of the axes before `axis`). */
  rows: number;
  /** Inputs per row. */
  depth: number;
  /** Weights [outputs, depth], or [depth, outputs] when `transposed`. */
  weights: Float32Array | Int8Array;
  /** Whether the weights are stored [depth, outputs]. */
  transposed: boolean;
  /** Bias (int32 for the integer form), or null. */
  bias: Float32Array | Int32Array | null;
  /** Outputs per row. */
  outputs: number;
  /** Operations applied in order to the output, as for a convolution (`ConvolutionArgs.post`). */
  post?: readonly PostOp[];
}

/** Arguments of a pooling over planes of an NCHW input. */
export interface PoolingArgs extends KernelInput {
  /** N*C planes. */
  planes: number;
  /** Input height and width. */
  size: [number, number];
  /** Window (dilation unused). */
  window: Window2d;
  /** Output height and width. */
  outSize: [number, number];
}

/** A tensor seen as [outer, channels, inner] for per-channel operations. */
export interface ChannelView {
  /** Product of the axes before the channel axis. */
  outer: number;
  /** Channels. */
  channels: number;
  /** Product of the axes after the channel axis. */
  inner: number;
}

/** A kernel call worked out for one set of arguments, run on an input `x` of their shape. */
export type Kernel = (x: Float32Array) => Float32Array;

/** A kernel's arguments but its input values (see {@linkcode EngineKernels.convolutionKernel}). */
export type KernelArgs<Args extends KernelInput> = Omit<Args, "x">;

/** Element-wise unary functions. */
export type UnaryFunction = "tanh" | "sigmoid" | "abs";

/** The simulator's kernels; each takes whole tensors and returns a new output array. */
export interface EngineKernels {
  /** Caffe Convolution (im2col + GEMM, SIMD). */
  convolution(args: ConvolutionArgs): Float32Array;
  /** Caffe Deconvolution (GEMM + col2im); weights [C_in, C_out/G, kh, kw]. */
  deconvolution(args: ConvolutionArgs): Float32Array;
  /** Caffe InnerProduct. */
  innerProduct(args: InnerProductArgs): Float32Array;
  /**
   * The convolution (`transposed`: deconvolution) of `args` as a function of its input values,
   * worked out once (checks, form, scratch sizes): what {@linkcode convolution} runs, for a layer
   * run again and again on inputs of one shape. It reads `args`' arrays on every call: replace
   * them, never change them in place.
   */
  convolutionKernel(args: KernelArgs<ConvolutionArgs>, transposed: boolean): Kernel;
  /** As {@linkcode convolutionKernel}, for an InnerProduct. */
  innerProductKernel(args: KernelArgs<InnerProductArgs>): Kernel;
  /**
   * AVE (`average`) or MAX pooling of `args` for any input `x` of its shape (checked), made once
   * for calls again and again: MAX with Caffe's window clipping, AVE with Caffe's pool size (the
   * integer form divides the exact sum in float32).
   */
  poolingKernel(args: KernelArgs<PoolingArgs>, average: boolean): Kernel;
  /** y = max(x, 0) + slope * min(x, 0). */
  relu(x: Float32Array, slope: number): Float32Array;
  /** PReLU with one slope, or one per channel. */
  prelu(x: Float32Array, view: ChannelView, slopes: Float32Array): Float32Array;
  /** TanH, Sigmoid or AbsVal. */
  unary(fn: UnaryFunction, x: Float32Array): Float32Array;
  /** Caffe Power: (shift + scale * x) ^ power. */
  power(x: Float32Array, exponent: number, scale: number, shift: number): Float32Array;
  /** y = x * scale[c] + bias[c]; either may be null, a length-1 array is shared by all channels. */
  channelAffine(
    x: Float32Array,
    view: ChannelView,
    scale: Float32Array | null,
    bias: Float32Array | null,
  ): Float32Array;
  /** y = (x - mean[c]) / deviation[c]. */
  batchNorm(
    x: Float32Array,
    view: ChannelView,
    mean: Float32Array,
    deviation: Float32Array,
  ): Float32Array;
  /** Per-channel batch mean and biased variance. */
  channelMoments(
    x: Float32Array,
    view: ChannelView,
  ): { mean: Float32Array; variance: Float32Array };
  /**
   * Caffe Eltwise over 2 or more equally sized inputs: SUM with coefficients, PROD or MAX; then
   * `post` (as a convolution's `post`) on the result.
   */
  eltwise(
    operation: "SUM" | "PROD" | "MAX",
    inputs: Float32Array[],
    coefficients: number[],
    post?: readonly PostOp[],
  ): Float32Array;
  /** Softmax over the channel axis of the view. */
  softmax(x: Float32Array, view: ChannelView): Float32Array;
  /** LRN ACROSS_CHANNELS over [N, C, spatial]. */
  lrnAcrossChannels(
    x: Float32Array,
    shape: [number, number, number],
    params: { size: number; alpha: number; beta: number; k: number },
  ): Float32Array;
  /**
   * LRN WITHIN_CHANNEL as Caffe builds it: x * (1 + alpha * AVE-pool(x^2)) ^ -beta, the pooling
   * of size x size with pad (size-1)/2 and stride 1.
   */
  lrnWithinChannel(
    x: Float32Array,
    planes: number,
    size: [number, number],
    params: { size: number; alpha: number; beta: number },
  ): Float32Array;
  /** SSD Normalize over [N, C, spatial]; `scale` has 1 or C values. */
  normalize(
    x: Float32Array,
    shape: [number, number, number],
    params: { acrossSpatial: boolean; eps: number; scale: Float32Array },
  ): Float32Array;
  /** Permute: output axis i is input axis order[i]. */
  permute(x: Float32Array, shape: number[], order: number[]): Float32Array;
  /** The deploy Quant layer: q = clamp(rint(f32(x * S)) + offsetD, -128, 127) as float32. */
  quantize(x: Float32Array, quantScale: number, offsetD: number): Float32Array;
  /** Float64 sums over equally long a and b, and max |a - b| (NaN when a difference is NaN). */
  agreement(a: Float32Array, b: Float32Array): Agreement;
  /** Smallest and largest value, NaNs ignored (`[Infinity, -Infinity]` when none is left). */
  range(x: Float32Array): [number, number];
  /**
   * Sets how many bytes of weights this instance keeps in WebAssembly memory across calls
   * (default 256 MiB; 0 copies them in on every call as the only way).
   */
  setResidentBudget(bytes: number): void;
  /**
   * Runs `body` with the tensor outputs of these kernels taken as views from one buffer that the
   * next `withOutputArena` takes again from its start: `body`'s caller must copy every such output
   * it keeps beyond that (see {@linkcode EngineKernels.inOutputArena}). `inputFloats`, the size
   * of the run's inputs, sizes the buffer for a run on larger inputs than the last.
   */
  withOutputArena<T>(body: () => T, inputFloats?: number): T;
  /** Whether `values` is an output taken from the arena of {@linkcode withOutputArena}. */
  inOutputArena(values: Float32Array): boolean;
  /**
   * An array of `count` floats for a layer output that JavaScript writes whole (Concat, Slice,
   * Crop): inside {@linkcode withOutputArena} a view of its buffer (holding old values until
   * written), else a new array.
   */
  outputArray(count: number): Float32Array;
  /**
   * Says an output of this {@linkcode withOutputArena} run that nothing reads any more may give
   * its memory to later outputs of the run (other arrays are left alone).
   */
  releaseOutput(values: Float32Array): void;
}

/**
 * The {@linkcode EngineKernels} methods that run no kernel of their own (settings, the output
 * arena's scope): what scripts that time each kernel call leave as they are.
 */
export const NOT_KERNEL_METHODS: ReadonlySet<string> = new Set(
  [
    "setResidentBudget",
    "withOutputArena",
    "inOutputArena",
    "outputArray",
    "releaseOutput",
  ] satisfies (keyof EngineKernels)[],
);

/** Sums that compare two tensors (see {@linkcode EngineKernels.agreement}). */
export interface Agreement {
  /** Sum of a*b. */
  dot: number;
  /** Sum of a^2. */
  squaresA: number;
  /** Sum of b^2. */
  squaresB: number;
  /** Sum of (a-b)^2. */
  squaresDiff: number;
  /** Max |a-b|. */
  maxAbs: number;
}

/** The exports of assembly/engine.ts (offsets are bytes into the module's memory; 0 = absent). */
interface EngineExports {
  convolution(
    ...args: [
      ...ConvolutionArgsIn,
      y: number,
      relu: boolean,
      slope: number,
      slopes: number,
      packedWeights: number,
    ]
  ): void;
  packedConvolutionBytes(cout: number, groups: number, depth: number): number;
  depthwiseScratchBytes(outH: number, outW: number, geometry: number): number;
  packConvolutionWeights(
    weights: number,
    cout: number,
    groups: number,
    depth: number,
    packed: number,
  ): void;
  deconvolution(
    ...args: [...ConvolutionArgsIn, weightsT: number, col: number, y: number]
  ): void;
  innerProduct(
    x: number,
    rows: number,
    depth: number,
    weights: number,
    transposed: boolean,
    bias: number,
    outputs: number,
    y: number,
  ): void;
  maxPool(...args: [...PoolArgsIn, scratch: number]): void;
  maxPoolScratchBytes(outH: number, outW: number, geometry: number): number;
  avePool(...args: [...PoolArgsIn, integer: boolean]): void;
  relu(x: number, count: number, slope: number, y: number): void;
  prelu(
    x: number,
    outer: number,
    channels: number,
    inner: number,
    slopes: number,
    slopeStride: number,
    y: number,
  ): void;
  unary(operation: number, x: number, count: number, y: number): void;
  power(x: number, count: number, exponent: number, scale: number, shift: number, y: number): void;
  channelAffine(
    x: number,
    outer: number,
    channels: number,
    inner: number,
    scale: number,
    scaleStride: number,
    bias: number,
    biasStride: number,
    y: number,
  ): void;
  batchNorm(
    x: number,
    outer: number,
    channels: number,
    inner: number,
    mean: number,
    deviation: number,
    y: number,
  ): void;
  channelMoments(
    x: number,
    outer: number,
    channels: number,
    inner: number,
    mean: number,
    variance: number,
  ): void;
  addScaled(y: number, x: number, count: number, coefficient: number): void;
  sumPair(
    y: number,
    b: number,
    count: number,
    ca: number,
    cb: number,
    relu: boolean,
    slope: number,
  ): void;
  multiply(y: number, x: number, count: number): void;
  maximum(y: number, x: number, count: number): void;
  softmax(x: number, outer: number, channels: number, inner: number, y: number): void;
  lrnAcrossChannels(
    x: number,
    batch: number,
    channels: number,
    spatial: number,
    size: number,
    alpha: number,
    beta: number,
    k: number,
    y: number,
  ): void;
  lrnRowBytes(width: number, size: number): number;
  lrnWithinChannel(
    x: number,
    planes: number,
    height: number,
    width: number,
    size: number,
    alpha: number,
    beta: number,
    row: number,
    y: number,
  ): void;
  normalize(
    x: number,
    batch: number,
    channels: number,
    spatial: number,
    acrossSpatial: boolean,
    eps: number,
    scale: number,
    scaleStride: number,
    y: number,
  ): void;
  permute(x: number, ndim: number, outShape: number, inStrides: number, y: number): void;
  quantize(x: number, count: number, quantScale: number, offsetD: number, y: number): void;
  fakeQuantize(x: number, count: number, scaleD: number, offsetD: number, y: number): void;
  quantizedDifference(x: number, count: number, offset: number, y: number): void;
  agreement(a: number, b: number, count: number, out: number): void;
  range(x: number, count: number, out: number): void;
  gemmScratchBytes(m: number, n: number, k: number): number;
  setGemmScratch(at: number): void;
  winogradWeightsBytes(
    coutGroup: number,
    cinGroup: number,
    groups: number,
    kernel: number,
    tile: number,
  ): number;
  winogradWeights(
    weights: number,
    cout: number,
    cinGroup: number,
    groups: number,
    kernel: number,
    tile: number,
    target: number,
  ): void;
  winogradScratchBytes(
    cinGroup: number,
    coutGroup: number,
    outW: number,
    bandTileRows: number,
    kernel: number,
    tile: number,
  ): number;
  winogradConvolution(
    x: number,
    batch: number,
    cin: number,
    height: number,
    width: number,
    transformed: number,
    bias: number,
    cout: number,
    groups: number,
    kernel: number,
    tile: number,
    padH: number,
    padW: number,
    outH: number,
    outW: number,
    bandTileRows: number,
    scratch: number,
    y: number,
    relu: boolean,
    slope: number,
  ): void;
  int16Differences(
    x: number,
    rows: number,
    length: number,
    stride: number,
    quantize: boolean,
    quantScale: number,
    offset: number,
    y: number,
  ): void;
  int8ToFloat(x: number, count: number, y: number): void;
  weightPairsBytes(m: number, k: number): number;
  packWeightPairs(
    a: number,
    m: number,
    k: number,
    rowStride: number,
    columnStride: number,
    packed: number,
  ): void;
  packWeightRows(
    w: number,
    outputs: number,
    depth: number,
    transposed: boolean,
    packed: number,
  ): void;
  convolutionPairs(...args: [...IntegerConvolutionArgsIn, epilogue: number]): void;
  pointwisePairs(
    x: number,
    batch: number,
    cin: number,
    spatial: number,
    weights: number,
    cout: number,
    groups: number,
    y: number,
    epilogue: number,
    quantize: boolean,
    quantScale: number,
    offset: number,
  ): void;
  deconvolutionPairs(...args: IntegerConvolutionArgsIn): void;
  depthwise3x3Int(
    x: number,
    batch: number,
    channels: number,
    height: number,
    width: number,
    weights: number,
    offset: number,
    geometry: number,
    outH: number,
    outW: number,
    y: number,
    epilogue: number,
    scratch: number,
    quantize: boolean,
    quantScale: number,
  ): void;
  innerProductRows(
    x: number,
    rows: number,
    depth: number,
    weights: number,
    outputs: number,
    y: number,
  ): void;
  accumulatorsOut(
    acc: number,
    outer: number,
    channels: number,
    inner: number,
    epilogue: number,
  ): void;
  intWinogradWeightsBytes(
    coutGroup: number,
    cinGroup: number,
    groups: number,
    kernel: number,
  ): number;
  intWinogradWeights(
    weights: number,
    cout: number,
    cinGroup: number,
    groups: number,
    kernel: number,
    target: number,
  ): void;
  intWinogradPaddedWidth(outW: number): number;
  intWinogradPaddedHeight(outH: number, kernel: number): number;
  intWinogradScratchBytes(
    cinGroup: number,
    coutGroup: number,
    outW: number,
    bandTileRows: number,
    kernel: number,
  ): number;
  paddedDifferences(
    x: number,
    planes: number,
    height: number,
    width: number,
    padH: number,
    padW: number,
    paddedH: number,
    paddedW: number,
    quantize: boolean,
    quantScale: number,
    offset: number,
    y: number,
  ): void;
  intWinogradConvolution(
    padded: number,
    batch: number,
    cin: number,
    paddedH: number,
    paddedW: number,
    transformed: number,
    cout: number,
    groups: number,
    outH: number,
    outW: number,
    kernel: number,
    bandTileRows: number,
    scratch: number,
    y: number,
    epilogue: number,
  ): void;
}

/** The arguments of the integer convolution exports (see assembly/engine/intconv.ts). */
type IntegerConvolutionArgsIn = [
  x: number,
  batch: number,
  cin: number,
  height: number,
  width: number,
  weights: number,
  cout: number,
  groups: number,
  geometry: number,
  outH: number,
  outW: number,
  bandRows: number,
  col: number,
  y: number,
];

/**
 * How the integer kernels read a layer's int8 weights (assembly/engine/intconv.ts): as weight
 * pairs of each group's [rows, depth] matrix (`stride` = elements between a row's values, 1, or
 * between rows; convolution: W_g, deconvolution: W_g^T), as InnerProduct weight rows, as
 * float32 (depthwise kernels), or transformed for the integer Winograd
 * (assembly/engine/intwinograd.ts: 3x3 or 5x5 kernels [outputs, cinGroup]).
 */
export type Int8Packing =
  | { kind: "pairs"; groups: number; rows: number; depth: number; transposed: boolean }
  | { kind: "rows"; outputs: number; depth: number; transposed: boolean }
  | { kind: "float" }
  | { kind: "winograd"; groups: number; outputs: number; cinGroup: number; kernel: 3 | 5 };

/** The arguments the convolution exports share (see assembly/engine.ts). */
type ConvolutionArgsIn = [
  x: number,
  batch: number,
  cin: number,
  height: number,
  width: number,
  weights: number,
  bias: number,
  cout: number,
  groups: number,
  geometry: number,
  outH: number,
  outW: number,
  bandRows: number,
];

/** The arguments the pooling exports share. */
type PoolArgsIn = [
  x: number,
  planes: number,
  height: number,
  width: number,
  geometry: number,
  outH: number,
  outW: number,
  y: number,
];

const UNARY_CODES: Record<UnaryFunction, number> = { tanh: 0, sigmoid: 1, abs: 2 };

/** Elements of the im2col / col2im scratch a convolution may use (8 MB), at least one row. */
const COLUMN_LIMIT = 1 << 21;

/**
 * Bytes of transformed input and products per band of a Winograd convolution (at least one row
 * of tiles): s * s x (cin + cout) x tiles floats for s x s points.
 */
const WINOGRAD_BAND_BYTES = 1 << 20;

/**
 * Bytes of transformed input and products per band of an integer Winograd convolution (at least
 * one row of tiles): 16 x (2 cin + 4 cout) x tiles.
 */
const INT_WINOGRAD_BAND_BYTES = 1 << 20;

/**
 * The kernel size of a window Winograd computes: 3 for a 3x3 window and 5 for a 5x5 one, at
 * stride 1 and dilation 1; else null.
 */
function winogradKernel(window: Window2d): 3 | 5 | null {
  const { kernel: [kernelH, kernelW], stride, dilation } = window;
  if (stride[0] !== 1 || stride[1] !== 1 || dilation[0] !== 1 || dilation[1] !== 1) return null;
  if (kernelH !== kernelW) return null;
  return kernelH === 3 ? 3 : kernelH === 5 ? 5 : null;
}

/** A float Winograd form F(tile x tile, kernel x kernel) (assembly/engine/winograd.ts). */
export interface WinogradForm {
  /** The window's size: 3 or 5. */
  kernel: 3 | 5;
  /** Outputs across a tile: 4 (F(4x4, 3x3)) or 2 (F(2x2, 3x3), F(2x2, 5x5)). */
  tile: 2 | 4;
}

/** The float Winograd forms of a 3x3 window and of a 5x5 one. */
const FORMS: Record<3 | 5, readonly WinogradForm[]> = {
  3: [{ kernel: 3, tile: 4 }, { kernel: 3, tile: 2 }],
  5: [{ kernel: 5, tile: 2 }],
};

/**
 * The cost of a float convolution of `outSize` outputs per plane and `kernels` (cin * cout per
 * group) kernels through Winograd form `form`, per pair of input and output channels, in units of
 * one product (see {@linkcode winogradForm}).
 */
function formCost(
  { kernel, tile }: WinogradForm,
  outSize: [number, number],
  kernels: number,
): number {
  const tiles = Math.ceil(outSize[0] / tile) * Math.ceil(outSize[1] / tile);
  if (tile === 2 && kernel === 3) return 16 * (tiles + 4.5 + kernels / 65536);
  return 36 * (tiles + 12 + kernels / 8192);
}

/**
 * The float Winograd form a convolution goes through rather than im2col + GEMM, or null: stride
 * 1 and dilation 1, at least 4 input and output channels per group, and outputs enough for the
 * s*s products per tile of s x s points (F(4x4, 3x3): 36 per 16 outputs, F(2x2, 5x5): 36 per 4,
 * F(2x2, 3x3): 16 per 4; against 144, 100 and 36) to pay for transforming and reading the weights
 * (s*s/(r*r) x theirs) on each call. Measured with scripts/bench_winograd.ts: the direct form
 * costs about r*r units per output; the 6x6 forms 36 per tile and 36 x (12 + cin*cout/8192) for
 * the weights (their matrix products of few columns read 36 weight matrices, which stop fitting
 * the caches beyond a few hundred channels); F(2x2, 3x3) 16 per tile and 16 x (4.5 +
 * cin*cout/65536). The cheapest form is taken when 10 % faster than the direct one by that count.
 * Shape only: every run and worker rounds the same, weights resident or not.
 */
export function winogradForm(args: KernelArgs<ConvolutionArgs>): WinogradForm | null {
  const [, channels] = args.shape;
  const [outH, outW] = args.outSize;
  const cinGroup = channels / args.groups;
  const coutGroup = args.outputs / args.groups;
  const kernel = winogradKernel(args.window);
  if (args.offsetD !== undefined || kernel === null) return null;
  if (cinGroup < 4 || coutGroup < 4) return null;
  let best: WinogradForm | null = null;
  let bestCost = kernel * kernel * outH * outW / 1.1;
  for (const form of FORMS[kernel]) {
    const cost = formCost(form, args.outSize, cinGroup * coutGroup);
    if (cost < bestCost) [best, bestCost] = [form, cost];
  }
  return best;
}

/**
 * Input channels per group up to which the integer Winograd is exact for a 3x3 or 5x5 window: it
 * computes 4 x the sum in int32, so |sum| <= taps * 255 * 128 * channels must stay below 2^29.
 */
function intWinogradMaxChannels(kernel: 3 | 5): number {
  return Math.floor(2 ** 29 / (kernel * kernel * 255 * 128));
}

/**
 * The 3x3 blocks the integer Winograd splits a 3x3 or 5x5 window into, each a virtual input
 * channel (assembly/engine/intwinograd.ts `blocksOf`).
 */
function intWinogradBlocks(kernel: 3 | 5): number {
  return kernel === 5 ? 4 : 1;
}

/**
 * Whether an integer (deploy) convolution goes through the exact integer Winograd F(2x2, 3x3)
 * (assembly/engine/intwinograd.ts; a 5x5 window as four 3x3 blocks) rather than im2col + the
 * int16-pair GEMM: a 3x3 or 5x5 window at stride 1 and dilation 1, 4 (5x5: 2) to
 * {@linkcode intWinogradMaxChannels} input channels and at least 4 output channels per group, and
 * outputs enough for the 16 products per 2x2 tile and 3x3 block (against 36 or 100) to pay for
 * the 16 smaller matrix products. Measured with `scripts/bench_winograd.ts --integer`: the direct
 * form costs about 1 unit per tap and output, Winograd 16 per tile and block and 16 x (12 +
 * blocks * cin * cout / 8192) for the products; Winograd is taken when 10 % faster by that count.
 * Both give the same bits; shape only, like {@linkcode winogradForm}.
 */
export function intWinogradWins(args: KernelArgs<ConvolutionArgs>): boolean {
  const [, channels] = args.shape;
  const [outH, outW] = args.outSize;
  const cinGroup = channels / args.groups;
  const coutGroup = args.outputs / args.groups;
  const kernel = winogradKernel(args.window);
  if (args.offsetD === undefined || kernel === null) return false;
  const blocks = intWinogradBlocks(kernel);
  const fewest = kernel === 5 ? 2 : 4;
  if (cinGroup < fewest || cinGroup > intWinogradMaxChannels(kernel) || coutGroup < 4) return false;
  const tiles = Math.ceil(outH / 2) * Math.ceil(outW / 2);
  const weightTiles = 12 + blocks * cinGroup * coutGroup / 8192;
  return kernel * kernel * outH * outW > 1.1 * 16 * (blocks * tiles + weightTiles);
}

function checkLength(name: string, values: ArrayLike<unknown>, expected: number): void {
  if (values.length !== expected) {
    throw new RangeError(`${name} has ${values.length} values, expected ${expected}`);
  }
}

/** Elements per row of InnerProduct weight rows and inputs: the depth rounded up to 8. */
function paddedDepth(depth: number): number {
  return Math.ceil(depth / 8) * 8;
}

function product(sizes: readonly number[]): number {
  return sizes.reduce((total, size) => total * size, 1);
}

/** The read stride of a per-channel parameter: 0 when shared (1 value), else 1. */
function channelStride(name: string, values: Float32Array, channels: number): number {
  if (values.length === 1) return 0;
  checkLength(name, values, channels);
  return 1;
}

/** A convolution kernel with the arguments it was made for (`x` left out). */
interface PreparedConvolution {
  args: ConvolutionArgs;
  transposed: boolean;
  run: Kernel;
}

/** No values (the `x` of a kept call's arguments). */
const NO_VALUES = new Float32Array(0);

/** Whether convolution arguments `a` and `b` are the same but for `x` (arrays by identity). */
function sameConvolution(a: ConvolutionArgs, b: ConvolutionArgs): boolean {
  const wa = a.window;
  const wb = b.window;
  return a.weights === b.weights && a.bias === b.bias && a.post === b.post &&
    a.offsetD === b.offsetD && a.quantScale === b.quantScale && a.algorithm === b.algorithm &&
    sameFakeQuant(a.fakeQuant, b.fakeQuant) &&
    a.outputs === b.outputs && a.groups === b.groups && samePair(a.outSize, b.outSize) &&
    a.shape[0] === b.shape[0] && a.shape[1] === b.shape[1] && a.shape[2] === b.shape[2] &&
    a.shape[3] === b.shape[3] && samePair(wa.kernel, wb.kernel) && samePair(wa.pad, wb.pad) &&
    samePair(wa.stride, wb.stride) && samePair(wa.dilation, wb.dilation);
}

/** Whether InnerProduct arguments `a` and `b` are the same but for `x` (arrays by identity). */
function sameInnerProduct(a: InnerProductArgs, b: InnerProductArgs): boolean {
  return a.weights === b.weights && a.bias === b.bias && a.post === b.post &&
    a.offsetD === b.offsetD && a.quantScale === b.quantScale && a.rows === b.rows &&
    sameFakeQuant(a.fakeQuant, b.fakeQuant) &&
    a.depth === b.depth && a.outputs === b.outputs && a.transposed === b.transposed;
}

function sameFakeQuant(a: FakeQuant | undefined, b: FakeQuant | undefined): boolean {
  return a?.scaleD === b?.scaleD && a?.offsetD === b?.offsetD;
}

function samePair(a: readonly number[], b: readonly number[]): boolean {
  return a[0] === b[0] && a[1] === b[1];
}

/** How int8 weights are packed for the integer kernels: the form's name, bytes and packing. */
interface Int8Form {
  name: string;
  bytes: number;
  pack: (bytesAt: number, at: number) => void;
}

/**
 * What the integer kernels' epilogue applies after + bias and the conversion to float: a scale
 * (DeQuant) and slopes (ReLU / PReLU after it), or null; and the post operations left.
 */
interface IntegerEpilogue {
  scale: Float32Array | null;
  slopes: Float32Array | null;
  rest: readonly PostOp[];
}

/** One array per ReLU slope: kept arrays are keyed by array, so the same slope reuses one. */
const RELU_SLOPES = new Map<number, Float32Array>();

function reluSlopes(slope: number): Float32Array {
  let slopes = RELU_SLOPES.get(slope);
  if (slopes === undefined) RELU_SLOPES.set(slope, slopes = Float32Array.of(slope));
  return slopes;
}

/**
 * How a float convolution packs its weights in panels, with the name they are kept under (made
 * once per kernel, not per call): one weights array read as two shapes (the same count of values)
 * is packed once per shape.
 */
interface Panels {
  outputs: number;
  groups: number;
  depth: number;
  name: string;
}

/** The {@linkcode Panels} of a convolution's weights. */
function panelsOf(outputs: number, groups: number, depth: number): Panels {
  return { outputs, groups, depth, name: `panels ${outputs} ${groups} ${depth}` };
}

/** Binds the kernels to an instance of assembly/engine.ts. */
function bindKernels(wasm: WasmInstance): EngineKernels {
  const kernels = wasm.exports as unknown as EngineExports;
  const resident = new ResidentArrays(wasm, DEFAULT_RESIDENT_BYTES);
  /** The kernel of the last convolution call of each weights array. */
  const preparedConvolutions = new WeakMap<object, PreparedConvolution>();
  /** The kernel of the last InnerProduct call of each weights array. */
  const preparedInnerProducts = new WeakMap<object, { args: InnerProductArgs; run: Kernel }>();
  const arena = new OutputArena(wasm, () => resident.clear());

  /** Where a kernel that only reads `x` reads it: in place in the arena, else copied in. */
  const readIn = (x: Float32Array): number => arena.offsetOf(x) ?? wasm.copyIn(x);
  /**
   * Where a kernel reads `x` as its form reads it: the float form with no change reads it in place
   * (see readIn); the integer form reads int32 differences q - offsetD (quantized first when
   * `quantScale` says so), and a float form with `fakeQuant` fake-quantized values, both made in
   * scratch from `x` where it lies in the arena, else from a copy.
   */
  const inputIn = (x: Float32Array, form: KernelArgs<KernelInput>): number => {
    const { offsetD, quantScale, fakeQuant } = form;
    if (offsetD === undefined && fakeQuant === undefined) return readIn(x);
    // Read where they are in the arena, else copied in and changed in place.
    const arenaAt = arena.offsetOf(x);
    const at = arenaAt === undefined ? wasm.copyIn(x) : wasm.alloc(x.byteLength);
    const from = arenaAt ?? at;
    if (offsetD !== undefined) {
      if (quantScale === undefined) kernels.quantizedDifference(from, x.length, offsetD, at);
      else {
        kernels.quantize(from, x.length, quantScale, offsetD, at);
        kernels.quantizedDifference(at, x.length, offsetD, at);
      }
    } else if (fakeQuant !== undefined) {
      kernels.fakeQuantize(from, x.length, fakeQuant.scaleD, fakeQuant.offsetD, at);
    }
    return at;
  };
  /**
   * Float weights and bias in WebAssembly memory: kept from an earlier call, or
   * copied in (kept when they fit). First thing in a call, before any scratch is taken. With
   * `panels` (a float convolution that packs its weights), the weights packed for it
   * (`packedAt`; `weightsAt` is then 0) when they are kept so.
   */
  const weightsIn = (
    weights: Float32Array,
    bias: Float32Array | null,
    panels?: Panels,
  ): [weightsAt: number, biasAt: number, packedAt: number] => {
    resident.begin();
    if (panels !== undefined) {
      const packedAt = resident.found(weights, panels.name) ?? packedIn(weights, panels);
      if (packedAt !== undefined) return [0, bias === null ? 0 : keptCopy(bias), packedAt];
    }
    return [keptCopy(weights), bias === null ? 0 : keptCopy(bias), 0];
  };
  /** Float convolution weights packed in panels, kept now (undefined when they do not fit). */
  const packedIn = (weights: Float32Array, { outputs, groups, depth, name }: Panels) =>
    resident.prepared(
      weights,
      name,
      kernels.packedConvolutionBytes(outputs, groups, depth),
      (at) => kernels.packConvolutionWeights(wasm.copyIn(weights), outputs, groups, depth, at),
    );
  /** Copies `values` in, or finds them kept from an earlier call (see weightsIn). */
  const keptCopy = (values: Float32Array | Int32Array): number =>
    resident.found(values, "copy") ??
      resident.prepared(values, "copy", values.byteLength, (at) => wasm.write(at, values)) ??
      wasm.copyIn(values);
  /**
   * Float 3x3 or 5x5 weights and bias in a Winograd form (winogradWeights), kept from an earlier
   * call when they fit the resident budget; as weightsIn, the first thing after `wasm.reset()`.
   */
  const winogradWeightsIn = (
    weights: Float32Array,
    bias: Float32Array | null,
    outputs: number,
    cinGroup: number,
    groups: number,
    { kernel, tile }: WinogradForm,
  ): [transformedAt: number, biasAt: number] => {
    resident.begin();
    const bytes = kernels.winogradWeightsBytes(outputs / groups, cinGroup, groups, kernel, tile);
    const transform = (at: number) =>
      kernels.winogradWeights(wasm.copyIn(weights), outputs, cinGroup, groups, kernel, tile, at);
    const name = `winograd ${groups} ${outputs} ${cinGroup} ${kernel} ${tile}`;
    let transformedAt = resident.prepared(weights, name, bytes, transform);
    if (transformedAt === undefined) {
      transformedAt = wasm.alloc(bytes);
      transform(transformedAt);
    }
    return [transformedAt, bias === null ? 0 : keptCopy(bias)];
  };
  const optionalIn = (values: Float32Array | Int32Array | null) =>
    values === null ? 0 : wasm.copyIn(values);
  /** Checks that the integer form has int8 weights and int32 bias, and the float form floats. */
  const checkForm = (
    input: KernelArgs<KernelInput>,
    weights: Float32Array | Int8Array,
    bias: Float32Array | Int32Array | null,
  ): boolean => {
    const integer = input.offsetD !== undefined;
    const weightsOk = integer ? weights instanceof Int8Array : weights instanceof Float32Array;
    const biasOk = bias === null ||
      (integer ? bias instanceof Int32Array : bias instanceof Float32Array);
    if (!weightsOk || !biasOk) {
      throw new RangeError(
        integer
          ? "the integer form needs int8 weights and int32 bias"
          : "the float form needs float weights and bias",
      );
    }
    if (integer && input.fakeQuant !== undefined) {
      throw new RangeError("the integer form takes no fakeQuant (its input is quantized)");
    }
    return integer;
  };
  /** Copies a window in as assembly/engine/window.ts lays it out. */
  const geometryIn = (window: Window2d) => {
    const at = wasm.alloc(8 * 4);
    const { kernel, pad, stride, dilation } = window;
    const geometry = wasm.ints;
    const i = at >>> 2;
    geometry[i] = kernel[0];
    geometry[i + 1] = kernel[1];
    geometry[i + 2] = pad[0];
    geometry[i + 3] = pad[1];
    geometry[i + 4] = stride[0];
    geometry[i + 5] = stride[1];
    geometry[i + 6] = dilation[0];
    geometry[i + 7] = dilation[1];
    return at;
  };

  /** Applies `op` in place to the `count` floats at `at`. */
  const postOpIn = (op: PostOp, at: number, count: number): void => {
    if (op.kind === "relu") return kernels.relu(at, count, op.slope, at);
    const { outer, channels, inner } = op.view;
    checkLength("view", { length: count }, outer * channels * inner);
    if (op.kind === "prelu") {
      const stride = channelStride("slopes", op.slopes, channels);
      kernels.prelu(at, outer, channels, inner, wasm.copyIn(op.slopes), stride, at);
      return;
    }
    if (op.kind === "affine") {
      const scaleStride = op.scale === null ? 0 : channelStride("scale", op.scale, channels);
      const biasStride = op.bias === null ? 0 : channelStride("bias", op.bias, channels);
      const scaleAt = optionalIn(op.scale);
      const biasAt = optionalIn(op.bias);
      kernels.channelAffine(
        at,
        outer,
        channels,
        inner,
        scaleAt,
        scaleStride,
        biasAt,
        biasStride,
        at,
      );
      return;
    }
    checkLength("mean", op.mean, channels);
    checkLength("deviation", op.deviation, channels);
    const meanAt = wasm.copyIn(op.mean);
    const deviationAt = wasm.copyIn(op.deviation);
    kernels.batchNorm(at, outer, channels, inner, meanAt, deviationAt, at);
  };

  /**
   * Applies `post` to the `count` float results at `at` (from `arena.outputAt`), hands them out.
   */
  const postOpsOut = (post: readonly PostOp[], at: number, count: number): Float32Array => {
    for (const op of post) postOpIn(op, at, count);
    return arena.output(at, count);
  };

  /**
   * How int8 weights are made into the form `packing` the integer kernels read
   * (assembly/engine/intconv.ts): the form's name and bytes, and the packing from the weights'
   * bytes at `bytesAt` to `at`.
   */
  const int8Form = (weights: Int8Array, packing: Int8Packing): Int8Form => {
    if (packing.kind === "float") {
      const pack = (bytesAt: number, at: number) =>
        kernels.int8ToFloat(bytesAt, weights.length, at);
      return { name: "int8 float", bytes: weights.length * 4, pack };
    }
    if (packing.kind === "winograd") {
      const { groups, outputs, cinGroup, kernel } = packing;
      return {
        name: `int8 winograd ${groups} ${outputs} ${cinGroup} ${kernel}`,
        bytes: kernels.intWinogradWeightsBytes(outputs / groups, cinGroup, groups, kernel),
        pack: (bytesAt, at) =>
          kernels.intWinogradWeights(bytesAt, outputs, cinGroup, groups, kernel, at),
      };
    }
    if (packing.kind === "rows") {
      const { outputs, depth, transposed } = packing;
      return {
        name: `int8 rows ${outputs} ${depth} ${transposed}`,
        bytes: outputs * paddedDepth(depth) * 2,
        pack: (bytesAt, at) => kernels.packWeightRows(bytesAt, outputs, depth, transposed, at),
      };
    }
    const { groups, rows, depth, transposed } = packing;
    const groupBytes = kernels.weightPairsBytes(rows, depth);
    const [rowStride, columnStride] = transposed ? [1, rows] : [depth, 1];
    return {
      name: `int8 pairs ${groups} ${rows} ${depth} ${transposed}`,
      bytes: groups * groupBytes,
      pack: (bytesAt, at) => {
        for (let g = 0; g < groups; g++) {
          const from = bytesAt + g * rows * depth;
          kernels.packWeightPairs(from, rows, depth, rowStride, columnStride, at + g * groupBytes);
        }
      },
    };
  };

  /**
   * Int8 weights in `form` (int8Form) and the int32 bias, in WebAssembly memory: kept from an
   * earlier call, or made now (kept when they fit). First thing in a call, before any scratch is
   * taken.
   */
  const int8WeightsIn = (
    weights: Int8Array,
    bias: Int32Array | null,
    form: Int8Form,
  ): [weightsAt: number, biasAt: number] => {
    resident.begin();
    const prepare = (at: number) => form.pack(wasm.copyIn(weights), at);
    let weightsAt = resident.prepared(weights, form.name, form.bytes, prepare);
    if (weightsAt === undefined) {
      weightsAt = wasm.alloc(form.bytes);
      prepare(weightsAt);
    }
    return [weightsAt, bias === null ? 0 : keptCopy(bias)];
  };

  /**
   * What the integer kernels' epilogue (assembly/engine/intconv.ts `Epilogue`) applies for
   * results laid out as `layout`: + bias, made float, then from `post` a leading plain scale (a
   * DeQuant) and a ReLU or PReLU right after it; and the operations of `post` left to apply.
   */
  const integerEpilogueOf = (post: readonly PostOp[], layout: ChannelView): IntegerEpilogue => {
    const sameLayout = (view: ChannelView) =>
      view.outer === layout.outer && view.channels === layout.channels &&
      view.inner === layout.inner;
    const perChannel = (values: Float32Array, view: ChannelView) =>
      values.length === 1 || (values.length === layout.channels && sameLayout(view));
    const [first, second] = post;
    const scale = first?.kind === "affine" && first.bias === null && first.scale !== null &&
        perChannel(first.scale, first.view)
      ? first.scale
      : null;
    let slopes: Float32Array | null = null;
    if (scale !== null && second?.kind === "relu") slopes = reluSlopes(second.slope);
    if (scale !== null && second?.kind === "prelu" && perChannel(second.slopes, second.view)) {
      slopes = second.slopes;
    }
    const rest = post.slice((scale === null ? 0 : 1) + (slopes === null ? 0 : 1));
    return { scale, slopes, rest };
  };

  /** Writes `epilogue` with the bias at `biasAt` into WebAssembly memory; returns its offset. */
  const epilogueIn = (biasAt: number, epilogue: IntegerEpilogue): number => {
    const { scale, slopes } = epilogue;
    // The scales and slopes first: kept arrays are taken before any scratch.
    const scaleAt = scale === null ? 0 : keptCopy(scale);
    const slopesAt = slopes === null ? 0 : keptCopy(slopes);
    const epilogueAt = wasm.alloc(5 * 4);
    const fields = wasm.ints;
    const i = epilogueAt >>> 2;
    fields[i] = biasAt;
    fields[i + 1] = scaleAt;
    fields[i + 2] = scale === null || scale.length === 1 ? 0 : 1;
    fields[i + 3] = slopesAt;
    fields[i + 4] = slopes === null || slopes.length === 1 ? 0 : 1;
    return epilogueAt;
  };

  /** The integer Convolution or Deconvolution (deploy model) of `args`, for any input `x`. */
  const integerConvolution = (args: KernelArgs<ConvolutionArgs>, transposed: boolean): Kernel => {
    const [batch, channels, height, width] = args.shape;
    const [outH, outW] = args.outSize;
    const [kernelH, kernelW] = args.window.kernel;
    const { groups, outputs, window } = args;
    const offsetD = args.offsetD ?? 0;
    const quantize = args.quantScale !== undefined;
    const quantScale = args.quantScale ?? 0;
    const post = args.post ?? [];
    const inputCount = batch * channels * height * width;
    const outCount = batch * outputs * outH * outW;
    const layout = { outer: batch, channels: outputs, inner: outH * outW };
    const taps = kernelH * kernelW;
    const cinGroup = channels / groups;
    const coutGroup = outputs / groups;
    const depth = transposed ? coutGroup * taps : cinGroup * taps;
    // 3x3 and 5x5 stride-1 kernels over channels: the exact integer Winograd where it is faster.
    const algorithm = args.algorithm ?? "auto";
    const winogradSize = winogradKernel(window);
    const winograd = !transposed && winogradSize !== null &&
      (algorithm === "winograd" || algorithm === "winograd2x2" ||
        (algorithm === "auto" && intWinogradWins(args)));
    if (winograd && cinGroup > intWinogradMaxChannels(winogradSize)) {
      throw new RangeError(
        `the integer Winograd is exact up to ${
          intWinogradMaxChannels(winogradSize)
        } input channels per group for a ${winogradSize}x${winogradSize} window`,
      );
    }
    // 3x3 depthwise kernels at column stride 1 or 2 have their own kernel (exact float sums).
    const depthwise = !winograd && !transposed && groups === channels && groups === outputs &&
      kernelH === 3 && kernelW === 3 && window.stride[1] <= 2;
    // 1x1 kernels at stride 1 without pad read their float input in place, made into
    // differences as the product packs it (no int16 copy of the input first).
    const pointwise = !winograd && !transposed && taps === 1 && window.stride[0] === 1 &&
      window.stride[1] === 1 && window.pad[0] === 0 && window.pad[1] === 0;
    const packing: Int8Packing = winograd
      ? { kind: "winograd", groups, outputs, cinGroup, kernel: winogradSize }
      : depthwise
      ? { kind: "float" }
      : transposed
      ? { kind: "pairs", groups, rows: depth, depth: cinGroup, transposed: true }
      : { kind: "pairs", groups, rows: coutGroup, depth, transposed: false };
    const weights = args.weights as Int8Array;
    const bias = args.bias as Int32Array | null;
    const form = int8Form(weights, packing);
    const epilogue = integerEpilogueOf(post, layout);
    const [rows, rowWidth] = transposed ? [height, width] : [outH, outW];
    const bandRows = Math.max(1, Math.min(rows, Math.floor(COLUMN_LIMIT / (depth * rowWidth))));
    // im2colColumns' four-value int16 stores may run 6 bytes past col's end.
    const colBytes = depth * bandRows * rowWidth * (transposed ? 4 : 2) + 8;
    if (winograd) {
      const [padH, padW] = window.pad;
      const paddedH = kernels.intWinogradPaddedHeight(outH, winogradSize);
      const paddedW = kernels.intWinogradPaddedWidth(outW);
      const paddedBytes = (batch * channels * paddedH + 1) * paddedW * 2;
      const tilesAcross = Math.ceil(outW / 2);
      const virtualChannels = intWinogradBlocks(winogradSize) * cinGroup;
      const bandBytesPerRow = 16 * (2 * virtualChannels + 4 * coutGroup) * tilesAcross;
      const bandTileRows = Math.max(
        1,
        Math.min(Math.ceil(outH / 2), Math.floor(INT_WINOGRAD_BAND_BYTES / bandBytesPerRow)),
      );
      const scratchBytes = kernels.intWinogradScratchBytes(
        cinGroup,
        coutGroup,
        outW,
        bandTileRows,
        winogradSize,
      );
      return (x) => {
        checkLength("x", x, inputCount);
        wasm.reset();
        const [weightsAt, biasAt] = int8WeightsIn(weights, bias, form);
        const epilogueAt = epilogueIn(biasAt, epilogue);
        const paddedAt = wasm.alloc(paddedBytes);
        const floatAt = readIn(x);
        kernels.paddedDifferences(
          floatAt,
          batch * channels,
          height,
          width,
          padH,
          padW,
          paddedH,
          paddedW,
          quantize,
          quantScale,
          offsetD,
          paddedAt,
        );
        const scratchAt = wasm.alloc(scratchBytes);
        const yAt = arena.outputAt(outCount);
        kernels.intWinogradConvolution(
          paddedAt,
          batch,
          channels,
          paddedH,
          paddedW,
          weightsAt,
          outputs,
          groups,
          outH,
          outW,
          winogradSize,
          bandTileRows,
          scratchAt,
          yAt,
          epilogueAt,
        );
        return postOpsOut(epilogue.rest, yAt, outCount);
      };
    }
    return (x) => {
      checkLength("x", x, inputCount);
      wasm.reset();
      const [weightsAt, biasAt] = int8WeightsIn(weights, bias, form);
      const epilogueAt = epilogueIn(biasAt, epilogue);
      if (pointwise) {
        const floatAt = readIn(x);
        const yAt = arena.outputAt(outCount);
        kernels.pointwisePairs(
          floatAt,
          batch,
          channels,
          height * width,
          weightsAt,
          outputs,
          groups,
          yAt,
          epilogueAt,
          quantize,
          quantScale,
          offsetD,
        );
        return postOpsOut(epilogue.rest, yAt, outCount);
      }
      const geometryAt = geometryIn(window);
      if (depthwise) {
        const xAt = readIn(x);
        const yAt = arena.outputAt(outCount);
        const scratchAt = wasm.alloc(kernels.depthwiseScratchBytes(outH, outW, geometryAt));
        kernels.depthwise3x3Int(
          xAt,
          batch,
          channels,
          height,
          width,
          weightsAt,
          offsetD,
          geometryAt,
          outH,
          outW,
          yAt,
          epilogueAt,
          scratchAt,
          quantize,
          quantScale,
        );
        return postOpsOut(epilogue.rest, yAt, outCount);
      }
      const xAt = wasm.alloc(inputCount * 2);
      const floatAt = readIn(x);
      kernels.int16Differences(
        floatAt,
        1,
        inputCount,
        inputCount,
        quantize,
        quantScale,
        offsetD,
        xAt,
      );
      const colAt = wasm.alloc(colBytes);
      const yAt = arena.outputAt(outCount);
      if (transposed) {
        kernels.deconvolutionPairs(
          xAt,
          batch,
          channels,
          height,
          width,
          weightsAt,
          outputs,
          groups,
          geometryAt,
          outH,
          outW,
          bandRows,
          colAt,
          yAt,
        );
        kernels.accumulatorsOut(yAt, batch, outputs, outH * outW, epilogueAt);
      } else {
        kernels.convolutionPairs(
          xAt,
          batch,
          channels,
          height,
          width,
          weightsAt,
          outputs,
          groups,
          geometryAt,
          outH,
          outW,
          bandRows,
          colAt,
          yAt,
          epilogueAt,
        );
      }
      return postOpsOut(epilogue.rest, yAt, outCount);
    };
  };

  /** Checks a convolution's arrays against its shape; returns whether it is the integer form. */
  const checkConvolution = (args: KernelArgs<ConvolutionArgs>, transposed: boolean): boolean => {
    const channels = args.shape[1];
    const [kernelH, kernelW] = args.window.kernel;
    const { groups, outputs } = args;
    const integer = checkForm(args, args.weights, args.bias);
    const weightCount = transposed
      ? channels * (outputs / groups) * kernelH * kernelW
      : outputs * (channels / groups) * kernelH * kernelW;
    checkLength("weights", args.weights, weightCount);
    if (args.bias !== null) checkLength("bias", args.bias, outputs);
    return integer;
  };

  /** The ReLU a float convolution applies in its epilogue: the lone post op, when a ReLU. */
  const epilogueOf = (post: readonly PostOp[]): { slope: number } | null => {
    const [first] = post;
    return post.length === 1 && first.kind === "relu" ? first : null;
  };
  /**
   * As epilogueOf, and a PReLU alone after a convolution whose output is `layout` (one slope, or
   * one per output channel): its slopes, which the direct and depthwise kernels apply per channel.
   */
  const convolutionEpilogueOf = (
    post: readonly PostOp[],
    layout: ChannelView,
  ): { slope: number; slopes: Float32Array | null } | null => {
    const relu = epilogueOf(post);
    if (relu !== null) return { slope: relu.slope, slopes: null };
    const [first] = post;
    if (post.length !== 1 || first.kind !== "prelu") return null;
    const { view, slopes } = first;
    if (view.outer !== layout.outer || view.channels !== layout.channels) return null;
    if (view.inner !== layout.inner) return null;
    if (slopes.length === 1) return { slope: slopes[0], slopes: null };
    return slopes.length === layout.channels ? { slope: 0, slopes } : null;
  };

  /**
   * The convolution (or deconvolution) of `args` on `args.x`: through the kernel worked out for
   * the last call with the same weights array when everything but `x` is the same (as a layer's
   * calls are run after run), else through a new one.
   */
  const convolutionLike = (args: ConvolutionArgs, transposed: boolean): Float32Array => {
    const kept = preparedConvolutions.get(args.weights);
    if (kept?.transposed === transposed && sameConvolution(kept.args, args)) {
      return kept.run(args.x);
    }
    const run = convolutionKernel(args, transposed);
    preparedConvolutions.set(args.weights, { args: { ...args, x: NO_VALUES }, transposed, run });
    return run(args.x);
  };

  /** The convolution (or deconvolution) of `args` for any input `x` of its shape (checked). */
  const convolutionKernel = (args: KernelArgs<ConvolutionArgs>, transposed: boolean): Kernel => {
    const integer = checkConvolution(args, transposed);
    const algorithm = args.algorithm ?? "auto";
    const winogradSize = winogradKernel(args.window);
    const forced = algorithm === "winograd" || algorithm === "winograd2x2";
    const small = algorithm === "winograd2x2";
    if (forced && (transposed || winogradSize === null || (small && winogradSize !== 3))) {
      throw new RangeError(
        "Winograd takes 3x3 and 5x5 windows at stride 1, dilation 1; F(2x2, 3x3) 3x3 windows",
      );
    }
    if (integer) return integerConvolution(args, transposed);
    const form = forced && winogradSize !== null
      ? FORMS[winogradSize][small ? 1 : 0]
      : algorithm === "auto" && !transposed
      ? winogradForm(args)
      : null;
    if (form !== null) {
      const inputCount = product(args.shape);
      return (x) => {
        checkLength("x", x, inputCount);
        return winogradRun({ ...args, x }, form);
      };
    }
    const [batch, channels, height, width] = args.shape;
    const [outH, outW] = args.outSize;
    const [kernelH, kernelW] = args.window.kernel;
    const { groups, outputs, window } = args;
    // Column depth per row of the band: the unfolded kernel over one output (or input) row.
    const depth = (transposed ? outputs : channels) / groups * kernelH * kernelW;
    // The float GEMM packs the weights in panels (depthwise convolutions read them as they are).
    const depthwise = channels === groups && outputs === groups;
    const panels = transposed || depthwise ? undefined : panelsOf(outputs, groups, depth);
    const weights = args.weights as Float32Array;
    const bias = args.bias as Float32Array | null;
    const inputCount = batch * channels * height * width;
    const outCount = batch * outputs * outH * outW;
    const [rows, rowWidth] = transposed ? [height, width] : [outH, outW];
    const bandRows = Math.max(1, Math.min(rows, Math.floor(COLUMN_LIMIT / (depth * rowWidth))));
    const bandColumns = bandRows * rowWidth;
    // Depthwise convolutions take their scratch size from the geometry in memory (per call).
    const gemmScratchBytes = transposed
      ? kernels.gemmScratchBytes(depth, bandColumns, channels / groups)
      : depthwise
      ? 0
      : kernels.gemmScratchBytes(outputs / groups, bandColumns, depth);
    const post = args.post ?? [];
    const epilogue = transposed
      ? null
      : convolutionEpilogueOf(post, { outer: batch, channels: outputs, inner: outH * outW });
    const rest = epilogue ? [] : post;
    const relu = epilogue !== null;
    const slope = epilogue?.slope ?? 0;
    const slopes = epilogue?.slopes ?? null;
    return (x) => {
      checkLength("x", x, inputCount);
      wasm.reset();
      const [weightsAt, biasAt, packedAt] = weightsIn(weights, bias, panels);
      const slopesAt = slopes === null ? 0 : keptCopy(slopes);
      const xAt = inputIn(x, args);
      const geometryAt = geometryIn(window);
      const yAt = arena.outputAt(outCount);
      const weightsTAt = transposed ? wasm.alloc(weights.length * 4) : 0;
      // col2im's rows (convolutions write im2col's straight into the packing scratch).
      const colAt = transposed ? wasm.alloc(depth * bandRows * rowWidth * 4) : 0;
      const scratchBytes = depthwise && !transposed
        ? kernels.depthwiseScratchBytes(outH, outW, geometryAt)
        : gemmScratchBytes;
      kernels.setGemmScratch(wasm.alloc(scratchBytes));
      if (transposed) {
        kernels.deconvolution(
          xAt,
          batch,
          channels,
          height,
          width,
          weightsAt,
          biasAt,
          outputs,
          groups,
          geometryAt,
          outH,
          outW,
          bandRows,
          weightsTAt,
          colAt,
          yAt,
        );
      } else {
        kernels.convolution(
          xAt,
          batch,
          channels,
          height,
          width,
          weightsAt,
          biasAt,
          outputs,
          groups,
          geometryAt,
          outH,
          outW,
          bandRows,
          yAt,
          relu,
          slope,
          slopesAt,
          packedAt,
        );
      }
      return postOpsOut(rest, yAt, outCount);
    };
  };

  /** The InnerProduct of `args` for any input `x` of its shape (checked). */
  const innerProductKernel = (args: KernelArgs<InnerProductArgs>): Kernel => {
    const integer = checkForm(args, args.weights, args.bias);
    const { rows, depth, outputs, transposed } = args;
    checkLength("weights", args.weights, outputs * depth);
    if (args.bias !== null) checkLength("bias", args.bias, outputs);
    const post = args.post ?? [];
    const outCount = rows * outputs;
    if (integer) {
      const weights = args.weights as Int8Array;
      const bias = args.bias as Int32Array | null;
      const form = int8Form(weights, { kind: "rows", outputs, depth, transposed });
      const epilogue = integerEpilogueOf(post, { outer: rows, channels: outputs, inner: 1 });
      const stride = paddedDepth(depth);
      const quantize = args.quantScale !== undefined;
      const quantScale = args.quantScale ?? 0;
      const offsetD = args.offsetD ?? 0;
      return (x) => {
        checkLength("x", x, rows * depth);
        wasm.reset();
        const [weightsAt, biasAt] = int8WeightsIn(weights, bias, form);
        const epilogueAt = epilogueIn(biasAt, epilogue);
        const floatAt = readIn(x);
        const xAt = wasm.alloc(rows * stride * 2);
        kernels.int16Differences(floatAt, rows, depth, stride, quantize, quantScale, offsetD, xAt);
        const yAt = arena.outputAt(outCount);
        kernels.innerProductRows(xAt, rows, depth, weightsAt, outputs, yAt);
        kernels.accumulatorsOut(yAt, rows, outputs, 1, epilogueAt);
        return postOpsOut(epilogue.rest, yAt, outCount);
      };
    }
    const weights = args.weights as Float32Array;
    const bias = args.bias as Float32Array | null;
    const gemmScratchBytes = transposed ? kernels.gemmScratchBytes(rows, outputs, depth) : 0;
    return (x) => {
      checkLength("x", x, rows * depth);
      wasm.reset();
      const [weightsAt, biasAt] = weightsIn(weights, bias);
      const xAt = inputIn(x, args);
      const yAt = arena.outputAt(outCount);
      if (transposed) kernels.setGemmScratch(wasm.alloc(gemmScratchBytes));
      kernels.innerProduct(xAt, rows, depth, weightsAt, transposed, biasAt, outputs, yAt);
      return postOpsOut(post, yAt, outCount);
    };
  };

  /**
   * A checked float convolution of 3x3 or 5x5 windows at stride 1 and dilation 1 through the
   * Winograd form `form`.
   */
  const winogradRun = (args: ConvolutionArgs, form: WinogradForm): Float32Array => {
    const [batch, channels, height, width] = args.shape;
    const [outH, outW] = args.outSize;
    const { groups, outputs } = args;
    const cinGroup = channels / groups;
    const coutGroup = outputs / groups;
    wasm.reset();
    const weights = args.weights as Float32Array;
    const bias = args.bias as Float32Array | null;
    const [transformedAt, biasAt] = winogradWeightsIn(
      weights,
      bias,
      outputs,
      cinGroup,
      groups,
      form,
    );
    const xAt = inputIn(args.x, args);
    const outCount = batch * outputs * outH * outW;
    const yAt = arena.outputAt(outCount);
    const { kernel, tile } = form;
    const side = tile + kernel - 1;
    const tilesAcross = Math.ceil(outW / tile);
    const tilesDown = Math.ceil(outH / tile);
    const tileRowBytes = side * side * (cinGroup + coutGroup) * tilesAcross * 4;
    const bandTileRows = Math.max(
      1,
      Math.min(tilesDown, Math.floor(WINOGRAD_BAND_BYTES / tileRowBytes)),
    );
    const scratchBytes = kernels.winogradScratchBytes(
      cinGroup,
      coutGroup,
      outW,
      bandTileRows,
      kernel,
      tile,
    );
    const scratchAt = wasm.alloc(scratchBytes);
    const post = args.post ?? [];
    const epilogue = epilogueOf(post);
    const [padH, padW] = args.window.pad;
    kernels.winogradConvolution(
      xAt,
      batch,
      channels,
      height,
      width,
      transformedAt,
      biasAt,
      outputs,
      groups,
      kernel,
      tile,
      padH,
      padW,
      outH,
      outW,
      bandTileRows,
      scratchAt,
      yAt,
      epilogue !== null,
      epilogue?.slope ?? 0,
    );
    return postOpsOut(epilogue ? [] : post, yAt, outCount);
  };

  /** MAX or AVE (`average`) pooling. */
  const poolingKernel = (args: KernelArgs<PoolingArgs>, average: boolean): Kernel => {
    if (!average && args.offsetD !== undefined) {
      throw new RangeError("MAX pooling has no integer form");
    }
    const { planes, window } = args;
    const [height, width] = args.size;
    const [outH, outW] = args.outSize;
    const inputCount = planes * height * width;
    const outCount = planes * outH * outW;
    const integer = args.offsetD !== undefined;
    // MAX pooling's scratch: known once the geometry is in memory, the same on every call.
    let scratchBytes = -1;
    return (x) => {
      checkLength("x", x, inputCount);
      wasm.reset();
      const xAt = inputIn(x, args);
      const geometryAt = geometryIn(window);
      // MAX pooling writes outputs four at a time: three floats of slack.
      const yAt = arena.outputAt(outCount, 3);
      if (average) {
        kernels.avePool(xAt, planes, height, width, geometryAt, outH, outW, yAt, integer);
      } else {
        if (scratchBytes < 0) scratchBytes = kernels.maxPoolScratchBytes(outH, outW, geometryAt);
        const scratchAt = wasm.alloc(scratchBytes);
        kernels.maxPool(xAt, planes, height, width, geometryAt, outH, outW, yAt, scratchAt);
      }
      return arena.output(yAt, outCount);
    };
  };

  /** Runs `kernel(xAt, yAt)` over a copy of `x` into a same-sized output. */
  const mapped = (x: Float32Array, kernel: (xAt: number, yAt: number) => void): Float32Array => {
    wasm.reset();
    const xAt = readIn(x);
    const yAt = arena.outputAt(x.length);
    kernel(xAt, yAt);
    return arena.output(yAt, x.length);
  };
  const checkView = (x: Float32Array, view: ChannelView) =>
    checkLength("x", x, view.outer * view.channels * view.inner);

  return {
    convolution: (args) => convolutionLike(args, false),
    deconvolution: (args) => convolutionLike(args, true),
    convolutionKernel,
    innerProductKernel,

    innerProduct(args) {
      const kept = preparedInnerProducts.get(args.weights);
      if (kept !== undefined && sameInnerProduct(kept.args, args)) return kept.run(args.x);
      const run = innerProductKernel(args);
      preparedInnerProducts.set(args.weights, { args: { ...args, x: NO_VALUES }, run });
      return run(args.x);
    },

    poolingKernel,

    relu: (x, slope) => mapped(x, (xAt, yAt) => kernels.relu(xAt, x.length, slope, yAt)),

    prelu(x, view, slopes) {
      checkView(x, view);
      const stride = channelStride("slopes", slopes, view.channels);
      return mapped(x, (xAt, yAt) => {
        const slopesAt = wasm.copyIn(slopes);
        kernels.prelu(xAt, view.outer, view.channels, view.inner, slopesAt, stride, yAt);
      });
    },

    unary: (fn, x) => mapped(x, (xAt, yAt) => kernels.unary(UNARY_CODES[fn], xAt, x.length, yAt)),

    power: (x, exponent, scale, shift) =>
      mapped(x, (xAt, yAt) => kernels.power(xAt, x.length, exponent, scale, shift, yAt)),

    channelAffine(x, view, scale, bias) {
      checkView(x, view);
      const scaleStride = scale === null ? 0 : channelStride("scale", scale, view.channels);
      const biasStride = bias === null ? 0 : channelStride("bias", bias, view.channels);
      return mapped(x, (xAt, yAt) => {
        const scaleAt = optionalIn(scale);
        const biasAt = optionalIn(bias);
        const { outer, channels, inner } = view;
        kernels.channelAffine(
          xAt,
          outer,
          channels,
          inner,
          scaleAt,
          scaleStride,
          biasAt,
          biasStride,
          yAt,
        );
      });
    },

    batchNorm(x, view, mean, deviation) {
      checkView(x, view);
      checkLength("mean", mean, view.channels);
      checkLength("deviation", deviation, view.channels);
      return mapped(x, (xAt, yAt) => {
        const meanAt = wasm.copyIn(mean);
        const deviationAt = wasm.copyIn(deviation);
        kernels.batchNorm(xAt, view.outer, view.channels, view.inner, meanAt, deviationAt, yAt);
      });
    },

    channelMoments(x, view) {
      checkView(x, view);
      wasm.reset();
      const xAt = wasm.copyIn(x);
      const meanAt = wasm.alloc(view.channels * 4);
      const varianceAt = wasm.alloc(view.channels * 4);
      kernels.channelMoments(xAt, view.outer, view.channels, view.inner, meanAt, varianceAt);
      return {
        mean: wasm.copyOut(Float32Array, meanAt, view.channels),
        variance: wasm.copyOut(Float32Array, varianceAt, view.channels),
      };
    },

    eltwise(operation, inputs, coefficients, post = []) {
      const count = inputs[0].length;
      inputs.forEach((input, i) => checkLength(`input ${i}`, input, count));
      if (operation === "SUM") checkLength("coefficients", coefficients, inputs.length);
      if (inputs.length < 2) throw new RangeError("Eltwise takes at least 2 inputs");
      wasm.reset();
      const yAt = arena.outputAt(count);
      wasm.write(yAt, inputs[0]);
      if (operation === "SUM") {
        // Caffe's 0 + c0 x0 + c1 x1 + …: the first two in one pass, with the ReLU after them
        // when there are no more (ResNet's residual sums).
        const [first, ...rest] = post;
        const relu = inputs.length === 2 && first?.kind === "relu";
        const slope = relu ? first.slope : 0;
        const bAt = readIn(inputs[1]);
        kernels.sumPair(yAt, bAt, count, coefficients[0], coefficients[1], relu, slope);
        for (let i = 2; i < inputs.length; i++) {
          kernels.addScaled(yAt, readIn(inputs[i]), count, coefficients[i]);
        }
        return postOpsOut(relu ? rest : post, yAt, count);
      }
      for (let i = 1; i < inputs.length; i++) {
        const xAt = readIn(inputs[i]);
        if (operation === "PROD") kernels.multiply(yAt, xAt, count);
        else kernels.maximum(yAt, xAt, count);
      }
      return postOpsOut(post, yAt, count);
    },

    softmax(x, view) {
      checkView(x, view);
      return mapped(
        x,
        (xAt, yAt) => kernels.softmax(xAt, view.outer, view.channels, view.inner, yAt),
      );
    },

    lrnAcrossChannels(x, [batch, channels, spatial], { size, alpha, beta, k }) {
      checkLength("x", x, batch * channels * spatial);
      return mapped(
        x,
        (xAt, yAt) =>
          kernels.lrnAcrossChannels(xAt, batch, channels, spatial, size, alpha, beta, k, yAt),
      );
    },

    lrnWithinChannel(x, planes, [height, width], { size, alpha, beta }) {
      checkLength("x", x, planes * height * width);
      return mapped(x, (xAt, yAt) => {
        const rowAt = wasm.alloc(kernels.lrnRowBytes(width, size));
        kernels.lrnWithinChannel(xAt, planes, height, width, size, alpha, beta, rowAt, yAt);
      });
    },

    normalize(x, [batch, channels, spatial], { acrossSpatial, eps, scale }) {
      checkLength("x", x, batch * channels * spatial);
      const scaleStride = channelStride("scale", scale, channels);
      return mapped(x, (xAt, yAt) => {
        const scaleAt = wasm.copyIn(scale);
        kernels.normalize(
          xAt,
          batch,
          channels,
          spatial,
          acrossSpatial,
          eps,
          scaleAt,
          scaleStride,
          yAt,
        );
      });
    },

    permute(x, shape, order) {
      checkLength("x", x, product(shape));
      checkLength("order", order, shape.length);
      const strides = shape.map((_, axis) => product(shape.slice(axis + 1)));
      return mapped(x, (xAt, yAt) => {
        const shapeAt = wasm.copyIn(Int32Array.from(order, (axis) => shape[axis]));
        const stridesAt = wasm.copyIn(Int32Array.from(order, (axis) => strides[axis]));
        kernels.permute(xAt, shape.length, shapeAt, stridesAt, yAt);
      });
    },

    quantize: (x, quantScale, offsetD) =>
      mapped(x, (xAt, yAt) => kernels.quantize(xAt, x.length, quantScale, offsetD, yAt)),

    agreement(a, b) {
      checkLength("b", b, a.length);
      wasm.reset();
      const aAt = wasm.copyIn(a);
      const bAt = wasm.copyIn(b);
      const outAt = wasm.alloc(5 * 8);
      kernels.agreement(aAt, bAt, a.length, outAt);
      const [dot, squaresA, squaresB, squaresDiff, maxAbs] = wasm.copyOut(Float64Array, outAt, 5);
      return { dot, squaresA, squaresB, squaresDiff, maxAbs };
    },

    range(x) {
      wasm.reset();
      const xAt = wasm.copyIn(x);
      const outAt = wasm.alloc(2 * 4);
      kernels.range(xAt, x.length, outAt);
      const [lowest, highest] = wasm.copyOut(Float32Array, outAt, 2);
      return [lowest, highest];
    },

    setResidentBudget(bytes) {
      resident.budget = bytes;
    },

    withOutputArena: (body, inputFloats) => arena.within(body, inputFloats),
    inOutputArena: (values) => arena.holds(values),
    outputArray: (count) => arena.take(count),
    releaseOutput: (values) => arena.release(values),
  };
}

const loaders: Record<EngineBuild, () => Promise<EngineKernels>> = {
  relaxed: onceLoader(() => engineModuleBase64("relaxed"), bindKernels, true),
  portable: onceLoader(() => engineModuleBase64("portable"), bindKernels, true),
};

/**
 * Kernels of another module compiled from assembly/engine.ts (base64), instantiated anew: for
 * benchmarks that compare builds or kernel variants side by side (scripts/bench_gemm.ts).
 */
export async function engineKernelsOf(base64: string): Promise<EngineKernels> {
  return bindKernels(await instantiate(base64, true));
}

/**
 * The simulator's kernels from the current build (src/wasm/engine_build.ts), each build
 * instantiated once (later calls share the instance).
 */
export function engineKernels(): Promise<EngineKernels> {
  return loaders[engineBuild()]();
}
