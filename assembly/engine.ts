// The simulator's kernels (src/engine), compiled to WebAssembly by scripts/build_wasm.ts and
// wrapped by src/wasm/engine.ts. Every export works on whole tensors the caller has copied into
// scratch memory; arguments are byte offsets into linear memory (0 = absent). The kernels never
// allocate: the caller owns all memory above the module's initial size (src/wasm/load.ts).

import { convolution, deconvolution, innerProduct } from "./engine/conv";
import { avePool } from "./engine/pool";

export { maxPool } from "./engine/pool";
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
  unary,
} from "./engine/elementwise";
export { lrnAcrossChannels, normalize, permute, softmax } from "./engine/channel";
export { agreement, range } from "./engine/stats";
export {
  int32ToFloat,
  quantize,
  quantizedDifference,
  widenInt8,
} from "./engine/quant";

/** Float convolution; see assembly/engine/conv.ts. */
export function convolutionF32(
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
  col: usize,
  y: usize,
): void {
  convolution<f32>(
    x, batch, cin, height, width, weights, bias, cout, groups, geometry, outH, outW, bandRows,
    col, y,
  );
}

/** Integer (int32) convolution of the deploy model; see assembly/engine/conv.ts. */
export function convolutionI32(
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
  col: usize,
  y: usize,
): void {
  convolution<i32>(
    x, batch, cin, height, width, weights, bias, cout, groups, geometry, outH, outW, bandRows,
    col, y,
  );
}

/** Float deconvolution; see assembly/engine/conv.ts. */
export function deconvolutionF32(
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
  deconvolution<f32>(
    x, batch, cin, height, width, weights, bias, cout, groups, geometry, outH, outW, bandRows,
    weightsT, col, y,
  );
}

/** Integer (int32) deconvolution of the deploy model; see assembly/engine/conv.ts. */
export function deconvolutionI32(
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
  deconvolution<i32>(
    x, batch, cin, height, width, weights, bias, cout, groups, geometry, outH, outW, bandRows,
    weightsT, col, y,
  );
}

/** Float InnerProduct; see assembly/engine/conv.ts. */
export function innerProductF32(
  x: usize,
  rows: i32,
  depth: i32,
  weights: usize,
  transposed: bool,
  bias: usize,
  outputs: i32,
  y: usize,
): void {
  innerProduct<f32>(x, rows, depth, weights, transposed, bias, outputs, y);
}

/** Integer (int32) InnerProduct of the deploy model; see assembly/engine/conv.ts. */
export function innerProductI32(
  x: usize,
  rows: i32,
  depth: i32,
  weights: usize,
  transposed: bool,
  bias: usize,
  outputs: i32,
  y: usize,
): void {
  innerProduct<i32>(x, rows, depth, weights, transposed, bias, outputs, y);
}

/** Float AVE pooling; see assembly/engine/pool.ts. */
export function avePoolF32(
  x: usize,
  planes: i32,
  height: i32,
  width: i32,
  geometry: usize,
  outH: i32,
  outW: i32,
  y: usize,
): void {
  avePool<f32>(x, planes, height, width, geometry, outH, outW, y);
}

/** AVE pooling of int32 input (deploy model): exact sums, float32 output. */
export function avePoolI32(
  x: usize,
  planes: i32,
  height: i32,
  width: i32,
  geometry: usize,
  outH: i32,
  outW: i32,
  y: usize,
): void {
  avePool<i32>(x, planes, height, width, geometry, outH, outW, y);
}
