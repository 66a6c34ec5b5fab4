// The simulator's kernels (src/engine), compiled to WebAssembly by scripts/build_wasm.ts and
// wrapped by src/wasm/engine.ts. Every export works on whole tensors the caller has copied into
// scratch memory; arguments are byte offsets into linear memory (0 = absent). The kernels never
// allocate: the caller owns all memory above the module's initial size (src/wasm/load.ts).
// AssemblyScript exports no generic function: AVE pooling, generic over its element type, is
// exported once with a flag `integer` (int32 input). The deploy model's integer Convolution,
// Deconvolution and InnerProduct are assembly/engine/intconv.ts (3x3 stride-1 convolutions
// through assembly/engine/intwinograd.ts).

import * as conv from "./engine/conv";
import * as pool from "./engine/pool";

export { maxPool, maxPoolScratchBytes } from "./engine/pool";
export {
  addScaled,
  batchNorm,
  channelAffine,
  channelMoments,
  maximum,
  multiply,
  power,
  prelu,
  relu,
  sumPair,
  unary,
} from "./engine/elementwise";
export {
  lrnAcrossChannels,
  lrnRowBytes,
  lrnWithinChannel,
  normalize,
  permute,
  softmax,
} from "./engine/channel";
export { agreement, range } from "./engine/stats";
export { gemmScratchBytes, setGemmScratch } from "./engine/gemm";
export {
  winogradConvolution,
  winogradScratchBytes,
  winogradWeights,
  winogradWeightsBytes,
} from "./engine/winograd";
export { fakeQuantize, quantize, quantizedDifference } from "./engine/quant";
export {
  accumulatorsOut,
  convolutionPairs,
  deconvolutionPairs,
  depthwise3x3Int,
  innerProductRows,
  int16Differences,
  int8ToFloat,
  packWeightPairs,
  packWeightRows,
  pointwisePairs,
  weightPairsBytes,
} from "./engine/intconv";
export {
  intWinogradConvolution,
  intWinogradPaddedHeight,
  intWinogradPaddedWidth,
  intWinogradScratchBytes,
  intWinogradWeights,
  intWinogradWeightsBytes,
  paddedDifferences,
} from "./engine/intwinograd";

/** Convolution with an optional fused ReLU; see assembly/engine/conv.ts. */
export function convolution(
  x: usize,
  batch: i32,
  cin: i32,
  height: i32,
  width: i32,
  weights: usize,
  bias: usize,
  cout: i32,
  groups: i32,
  geometry: usize,
  outH: i32,
  outW: i32,
  bandRows: i32,
  y: usize,
  relu: bool,
  slope: f32,
  slopes: usize,
  packedWeights: usize,
): void {
  conv.convolution<f32>(
    x, batch, cin, height, width, weights, bias, cout, groups, geometry, outH, outW, bandRows, y,
    relu, slope, slopes, packedWeights,
  );
}

/** Bytes of scratch a 3x3 depthwise convolution (float or integer) needs; see assembly/engine/conv.ts. */
export function depthwiseScratchBytes(outH: i32, outW: i32, geometry: usize): i32 {
  return conv.depthwiseScratchBytes(outH, outW, geometry);
}

/** Bytes of float convolution weights packed by packConvolutionWeights. */
export function packedConvolutionBytes(cout: i32, groups: i32, depth: i32): i32 {
  return conv.packedWeightsBytes(cout, groups, depth);
}

/** Packs float convolution weights for `convolution`'s `packedWeights`; see assembly/engine/conv.ts. */
export function packConvolutionWeights(
  weights: usize,
  cout: i32,
  groups: i32,
  depth: i32,
  packed: usize,
): void {
  conv.packWeights(weights, cout, groups, depth, packed);
}

/** Deconvolution; see assembly/engine/conv.ts. */
export function deconvolution(
  x: usize,
  batch: i32,
  cin: i32,
  height: i32,
  width: i32,
  weights: usize,
  bias: usize,
  cout: i32,
  groups: i32,
  geometry: usize,
  outH: i32,
  outW: i32,
  bandRows: i32,
  weightsT: usize,
  col: usize,
  y: usize,
): void {
  conv.deconvolution<f32>(
    x, batch, cin, height, width, weights, bias, cout, groups, geometry, outH, outW, bandRows,
    weightsT, col, y,
  );
}

/** InnerProduct; see assembly/engine/conv.ts. */
export function innerProduct(
  x: usize,
  rows: i32,
  depth: i32,
  weights: usize,
  transposed: bool,
  bias: usize,
  outputs: i32,
  y: usize,
): void {
  conv.innerProduct<f32>(x, rows, depth, weights, transposed, bias, outputs, y);
}

/** AVE pooling (of int32 input when `integer`: exact sums); see assembly/engine/pool.ts. */
export function avePool(
  x: usize,
  planes: i32,
  height: i32,
  width: i32,
  geometry: usize,
  outH: i32,
  outW: i32,
  y: usize,
  integer: bool,
): void {
  if (integer) {
    pool.avePool<i32>(x, planes, height, width, geometry, outH, outW, y);
  } else {
    pool.avePool<f32>(x, planes, height, width, geometry, outH, outW, y);
  }
}
