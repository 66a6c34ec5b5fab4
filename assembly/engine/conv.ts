// Convolution and deconvolution as Caffe computes them (im2col + GEMM, col2im for the transposed
// form), generic over the element type T (f32: the deploy model's integer layers are
// assembly/engine/intconv.ts).
// Tensors are NCHW; arguments are byte offsets into linear memory owned by the caller, the window
// geometry one of a Window (assembly/engine/window.ts).

import { relu as reluKernel } from "./elementwise";
import { at, gemm, gemmTransB, madd, packedA, packedB, transpose } from "./gemm";
import { copyRun, gatherRun, gemmPanels, packedRowsBytes, packRows, zeroRun } from "./panels";
import { endInside, firstInside, Window } from "./window";


/**
 * im2col straight into column panels (assembly/engine/panels.ts) for float input: B[(c*kh + i)*kw
 * + j, (oh - rowStart)*outW + ow] as im2col's col, in panels of `depth` products.
 */
function im2colPanels(
  x: usize,
  channels: i32,
  height: i32,
  width: i32,
  window: Window,
  rowStart: i32,
  rowEnd: i32,
  outW: i32,
  depth: i32,
  packed: usize,
): void {
  const kh = window.kernelH;
  const kw = window.kernelW;
  const sh = window.strideH;
  const sw = window.strideW;
  let p = 0;
  for (let c = 0; c < channels; c++) {
    const plane = at(x, c * height * width);
    for (let i = 0; i < kh; i++) {
      const rowShift = i * window.dilationH - window.padH;
      for (let j = 0; j < kw; j++) {
        const shift = j * window.dilationW - window.padW;
        const first = min(firstInside(shift, sw), outW);
        const end = max(endInside(shift, sw, width, outW), first);
        let q = 0;
        for (let oh = rowStart; oh < rowEnd; oh++) {
          const ih = oh * sh + rowShift;
          if (ih < 0 || ih >= height || first == end) {
            zeroRun(outW, packed, depth, p, q);
          } else {
            zeroRun(first, packed, depth, p, q);
            const source = at(plane, ih * width + shift + first * sw);
            if (sw == 1) copyRun(source, end - first, packed, depth, p, q + first);
            else gatherRun(source, sw, end - first, packed, depth, p, q + first);
            zeroRun(outW - end, packed, depth, p, q + end);
          }
          q += outW;
        }
        p++;
      }
    }
  }
}

/**
 * Caffe's col2im for column rows rowStart..rowEnd (of colW columns): the transpose of im2col,
 * adding every column entry into x.
 */
function col2im<T>(
  col: usize,
  channels: i32,
  height: i32,
  width: i32,
  window: Window,
  rowStart: i32,
  rowEnd: i32,
  colW: i32,
  x: usize,
): void {
  const kh = window.kernelH;
  const kw = window.kernelW;
  const sh = window.strideH;
  const sw = window.strideW;
  let source = col;
  for (let c = 0; c < channels; c++) {
    const plane = at(x, c * height * width);
    for (let i = 0; i < kh; i++) {
      const rowShift = i * window.dilationH - window.padH;
      for (let j = 0; j < kw; j++) {
        const shift = j * window.dilationW - window.padW;
        const first = min(firstInside(shift, sw), colW);
        const end = max(endInside(shift, sw, width, colW), first);
        for (let oh = rowStart; oh < rowEnd; oh++) {
          const ih = oh * sh + rowShift;
          if (ih >= 0 && ih < height) {
            const rowStart = at(plane, ih * width + shift);
            for (let ow = first; ow < end; ow++) {
              const target = at(rowStart, ow * sw);
              store<T>(target, load<T>(target) + load<T>(at(source, ow)));
            }
          }
          source = at(source, colW);
        }
      }
    }
  }
}

/**
 * Depthwise convolution (one input and one output channel per group), computed directly, then
 * + bias and, when `relu` (float), the ReLU. 3x3 kernels at stride 1 or 2 keep their taps and
 * sums in registers (depthwise3x3); others add w * (shifted input row) to the output row per
 * tap, with SIMD along rows at stride 1. Either way each output sums its taps in order (rows,
 * then columns; taps outside the image skipped) before the bias.
 */
function depthwise<T>(
  x: usize,
  batch: i32,
  channels: i32,
  height: i32,
  width: i32,
  weights: usize,
  bias: usize,
  window: Window,
  outH: i32,
  outW: i32,
  y: usize,
  relu: bool,
  slope: f32,
): void {
  const kh = window.kernelH;
  const kw = window.kernelW;
  const sh = window.strideH;
  const sw = window.strideW;
  if (kh == 3 && kw == 3 && sw <= 2) {
    depthwise3x3<T>(x, batch, channels, height, width, weights, bias, window, outH, outW, y, relu, slope);
    return;
  }
  const planes = batch * channels;
  memory.fill(y, 0, <usize>(planes * outH * outW) << 2);
  for (let plane = 0; plane < planes; plane++) {
    const source = at(x, plane * height * width);
    const target = at(y, plane * outH * outW);
    const kernel = at(weights, (plane % channels) * kh * kw);
    for (let oh = 0; oh < outH; oh++) {
      const outRow = at(target, oh * outW);
      for (let i = 0; i < kh; i++) {
        const ih = oh * sh - window.padH + i * window.dilationH;
        if (ih < 0 || ih >= height) continue;
        const inRow = at(source, ih * width);
        for (let j = 0; j < kw; j++) {
          const shift = j * window.dilationW - window.padW;
          const first = min(firstInside(shift, sw), outW);
          const end = max(endInside(shift, sw, width, outW), first);
          const tap = load<T>(at(kernel, i * kw + j));
          let ow = first;
          if (sw == 1) {
            const taps = v128.splat<T>(tap);
            for (; ow + 4 <= end; ow += 4) {
              const out = at(outRow, ow);
              v128.store(out, madd<T>(taps, v128.load(at(inRow, ow + shift)), v128.load(out)));
            }
          }
          for (; ow < end; ow++) {
            const out = at(outRow, ow);
            store<T>(out, load<T>(out) + tap * load<T>(at(inRow, ow * sw + shift)));
          }
        }
      }
    }
  }
  if (bias != 0) addChannelBias<T>(y, batch, channels, outH * outW, bias);
  if (!isInteger<T>() && relu) reluKernel(y, planes * outH * outW, slope, y);
}

/**
 * 3x3 depthwise convolution at stride 1 or 2 (any pad and dilation): per plane the nine taps in
 * registers; per output row, the outputs whose taps are all inside the row sixteen and then four
 * at a time (four independent sums), the others one by one; then + bias and the ReLU.
 */
function depthwise3x3<T>(
  x: usize,
  batch: i32,
  channels: i32,
  height: i32,
  width: i32,
  weights: usize,
  bias: usize,
  window: Window,
  outH: i32,
  outW: i32,
  y: usize,
  relu: bool,
  slope: f32,
): void {
  const sh = window.strideH;
  const sw = window.strideW;
  const dh = window.dilationH;
  const dw = window.dilationW;
  const ph = window.padH;
  const pw = window.padW;
  // Outputs [inFirst, vectorEnd) have every column tap inside the row, and so do the SIMD loads
  // of a group of four of them (at stride 2 they read one value past the last tap).
  const inFirst = min((pw + sw - 1) / sw, outW);
  const room = width - (2 * dw - pw) - (sw == 2 ? 1 : 0);
  const vectorEnd = room <= 0 ? inFirst : max(min(outW, (room + sw - 1) / sw), inFirst);
  const runEnd = inFirst + ((vectorEnd - inFirst) & ~3);
  const slopes = f32x4.splat(slope);
  const zero = f32x4.splat(0);
  const planes = batch * channels;
  const groupStep = <usize>(4 * sw) << 2;
  for (let plane = 0; plane < planes; plane++) {
    const source = at(x, plane * height * width);
    const target = at(y, plane * outH * outW);
    const channel = plane % channels;
    const kernel = at(weights, channel * 9);
    const t0 = v128.splat<T>(load<T>(kernel));
    const t1 = v128.splat<T>(load<T>(kernel, 4));
    const t2 = v128.splat<T>(load<T>(kernel, 8));
    const t3 = v128.splat<T>(load<T>(kernel, 12));
    const t4 = v128.splat<T>(load<T>(kernel, 16));
    const t5 = v128.splat<T>(load<T>(kernel, 20));
    const t6 = v128.splat<T>(load<T>(kernel, 24));
    const t7 = v128.splat<T>(load<T>(kernel, 28));
    const t8 = v128.splat<T>(load<T>(kernel, 32));
    const biasValue: T = bias == 0 ? <T>0 : load<T>(at(bias, channel));
    const biasLanes = v128.splat<T>(biasValue);
    for (let oh = 0; oh < outH; oh++) {
      const outRow = at(target, oh * outW);
      const top = oh * sh - ph;
      const use0 = top >= 0 && top < height;
      const use1 = top + dh >= 0 && top + dh < height;
      const use2 = top + 2 * dh >= 0 && top + 2 * dh < height;
      const in0 = at(source, top * width - pw);
      const in1 = at(in0, dh * width);
      const in2 = at(in1, dh * width);
      let ow = 0;
      for (; ow < inFirst; ow++) {
        depthwiseOne<T>(source, height, width, kernel, window, oh, ow, outRow, bias, biasValue, relu, slope);
      }
      for (; ow + 16 <= runEnd; ow += 16) {
        const offset = <usize>(ow * sw) << 2;
        let s0 = v128.splat<T>(<T>0);
        let s1 = s0;
        let s2 = s0;
        let s3 = s0;
        if (use0) {
          const from = in0 + offset;
          s0 = taps3<T>(s0, from, t0, t1, t2, sw, dw);
          s1 = taps3<T>(s1, from + groupStep, t0, t1, t2, sw, dw);
          s2 = taps3<T>(s2, from + 2 * groupStep, t0, t1, t2, sw, dw);
          s3 = taps3<T>(s3, from + 3 * groupStep, t0, t1, t2, sw, dw);
        }
        if (use1) {
          const from = in1 + offset;
          s0 = taps3<T>(s0, from, t3, t4, t5, sw, dw);
          s1 = taps3<T>(s1, from + groupStep, t3, t4, t5, sw, dw);
          s2 = taps3<T>(s2, from + 2 * groupStep, t3, t4, t5, sw, dw);
          s3 = taps3<T>(s3, from + 3 * groupStep, t3, t4, t5, sw, dw);
        }
        if (use2) {
          const from = in2 + offset;
          s0 = taps3<T>(s0, from, t6, t7, t8, sw, dw);
          s1 = taps3<T>(s1, from + groupStep, t6, t7, t8, sw, dw);
          s2 = taps3<T>(s2, from + 2 * groupStep, t6, t7, t8, sw, dw);
          s3 = taps3<T>(s3, from + 3 * groupStep, t6, t7, t8, sw, dw);
        }
        const out = at(outRow, ow);
        v128.store(out, finish<T>(s0, bias, biasLanes, relu, slopes, zero));
        v128.store(out, finish<T>(s1, bias, biasLanes, relu, slopes, zero), 16);
        v128.store(out, finish<T>(s2, bias, biasLanes, relu, slopes, zero), 32);
        v128.store(out, finish<T>(s3, bias, biasLanes, relu, slopes, zero), 48);
      }
      for (; ow < runEnd; ow += 4) {
        const offset = <usize>(ow * sw) << 2;
        let sum = v128.splat<T>(<T>0);
        if (use0) sum = taps3<T>(sum, in0 + offset, t0, t1, t2, sw, dw);
        if (use1) sum = taps3<T>(sum, in1 + offset, t3, t4, t5, sw, dw);
        if (use2) sum = taps3<T>(sum, in2 + offset, t6, t7, t8, sw, dw);
        v128.store(at(outRow, ow), finish<T>(sum, bias, biasLanes, relu, slopes, zero));
      }
      for (; ow < outW; ow++) {
        depthwiseOne<T>(source, height, width, kernel, window, oh, ow, outRow, bias, biasValue, relu, slope);
      }
    }
  }
}

/** Four sums + bias (when there is one), then the ReLU when `relu` (float). */
@inline
function finish<T>(sum: v128, bias: usize, biasLanes: v128, relu: bool, slopes: v128, zero: v128): v128 {
  let value = bias != 0 ? v128.add<T>(sum, biasLanes) : sum;
  if (!isInteger<T>() && relu) {
    value = f32x4.add(f32x4.max(value, zero), f32x4.mul(slopes, f32x4.min(value, zero)));
  }
  return value;
}

/** One output of a 3x3 depthwise convolution, its taps checked one by one. */
@inline
function depthwiseOne<T>(
  source: usize,
  height: i32,
  width: i32,
  kernel: usize,
  window: Window,
  oh: i32,
  ow: i32,
  outRow: usize,
  bias: usize,
  biasValue: T,
  relu: bool,
  slope: f32,
): void {
  let sum: T = <T>0;
  for (let i = 0; i < 3; i++) {
    const ih = oh * window.strideH - window.padH + i * window.dilationH;
    if (ih < 0 || ih >= height) continue;
    const inRow = at(source, ih * width);
    for (let j = 0; j < 3; j++) {
      const column = ow * window.strideW + j * window.dilationW - window.padW;
      if (column < 0 || column >= width) continue;
      sum += load<T>(at(kernel, i * 3 + j)) * load<T>(at(inRow, column));
    }
  }
  if (bias != 0) sum += biasValue;
  if (!isInteger<T>() && relu) {
    const value = <f32>sum;
    sum = <T>(max(value, <f32>0) + slope * min(value, <f32>0));
  }
  store<T>(at(outRow, ow), sum);
}

/**
 * `sum` + the three taps of one kernel row times the input at `from` + j*dw, for four outputs
 * `stride` (1 or 2) apart, in tap order.
 */
@inline
function taps3<T>(sum: v128, from: usize, t0: v128, t1: v128, t2: v128, stride: i32, dw: i32): v128 {
  const step = <usize>dw << 2;
  let total = madd<T>(t0, inputs<T>(from, stride), sum);
  total = madd<T>(t1, inputs<T>(from + step, stride), total);
  return madd<T>(t2, inputs<T>(from + 2 * step, stride), total);
}

/** Four inputs `stride` (1 or 2) apart from `from`. */
@inline
function inputs<T>(from: usize, stride: i32): v128 {
  return stride == 1
    ? v128.load(from)
    : v128.shuffle<T>(v128.load(from), v128.load(from, 16), 0, 2, 4, 6);
}

/** y[n, c, ...] += bias[c] over `inner` elements per channel. */
export function addChannelBias<T>(
  y: usize,
  batch: i32,
  channels: i32,
  inner: i32,
  bias: usize,
): void {
  let target = y;
  for (let n = 0; n < batch; n++) {
    for (let c = 0; c < channels; c++) {
      const value = load<T>(at(bias, c));
      const lanes = v128.splat<T>(value);
      let i = 0;
      for (; i + 4 <= inner; i += 4) {
        v128.store(target, v128.add<T>(v128.load(target), lanes));
        target += 16;
      }
      for (; i < inner; i++) {
        store<T>(target, load<T>(target) + value);
        target += 4;
      }
    }
  }
}

/** Bytes of a float convolution's weights packed by {@link packWeights}. */
export function packedWeightsBytes(cout: i32, groups: i32, depth: i32): i32 {
  return groups * packedRowsBytes(cout / groups, depth);
}

/**
 * Packs a float convolution's weights [cout, depth] (depth = cin/groups * kh * kw) at `packed`
 * in row panels, group after group, as {@link convolution} packs them on each call; it reads
 * them from there when given them as `packedWeights`.
 */
export function packWeights(weights: usize, cout: i32, groups: i32, depth: i32, packed: usize): void {
  const coutGroup = cout / groups;
  const groupBytes = <usize>packedRowsBytes(coutGroup, depth);
  for (let g = 0; g < groups; g++) {
    const groupWeights = at(weights, g * coutGroup * depth);
    packRows(groupWeights, depth, coutGroup, depth, packed + <usize>g * groupBytes);
  }
}

/**
 * Caffe's Convolution forward: for each image and group, y_g = W_g x im2col(x_g) (+ bias), then
 * when `relu` max(y, 0) + slope * min(y, 0), in bands of `bandRows` output rows, with 1x1/stride
 * 1/no pad kernels read directly and depthwise kernels computed directly. `weights` is [cout,
 * cin/group, kh, kw]; `bias` is 0 for no bias; the packing scratch is set
 * (gemmScratchBytes(cout/group, bandRows*outW, (cin/group)*kh*kw)). `packedWeights`, when not
 * 0, holds the float weights as {@link packWeights} packs them (read instead of packing them).
 */
export function convolution<T>(
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
  packedWeights: usize,
): void {
  const window = changetype<Window>(geometry);
  const cinGroup = cin / groups;
  const coutGroup = cout / groups;
  const depth = cinGroup * window.kernelH * window.kernelW;
  const spatial = outH * outW;
  if (cinGroup == 1 && coutGroup == 1) {
    depthwise<T>(x, batch, cin, height, width, weights, bias, window, outH, outW, y, relu, slope);
    return;
  }
  const direct = window.kernelH == 1 && window.kernelW == 1 && window.strideH == 1 &&
    window.strideW == 1 && window.padH == 0 && window.padW == 0;
  for (let n = 0; n < batch; n++) {
    for (let g = 0; g < groups; g++) {
      const xGroup = at(x, (n * cin + g * cinGroup) * height * width);
      const yGroup = at(y, (n * cout + g * coutGroup) * spatial);
      const groupWeights = at(weights, g * coutGroup * depth);
      const groupBias = bias == 0 ? 0 : at(bias, g * coutGroup);
      let groupPanels = packedA();
      if (packedWeights != 0) {
        groupPanels = packedWeights + <usize>g * <usize>packedRowsBytes(coutGroup, depth);
      } else {
        packRows(groupWeights, depth, coutGroup, depth, groupPanels);
      }
      const panels = packedB(coutGroup, depth);
      for (let rowStart = 0; rowStart < outH; rowStart += bandRows) {
        const rowEnd = min(rowStart + bandRows, outH);
        const columns = (rowEnd - rowStart) * outW;
        if (direct) {
          for (let p = 0; p < depth; p++) {
            const source = at(xGroup, p * spatial + rowStart * outW);
            copyRun(source, columns, panels, depth, p, 0);
          }
        } else {
          im2colPanels(xGroup, cinGroup, height, width, window, rowStart, rowEnd, outW, depth, panels);
        }
        const band = at(yGroup, rowStart * outW);
        gemmPanels(coutGroup, columns, depth, groupPanels, panels, band, spatial, groupBias, relu, slope);
      }
    }
  }
}

/**
 * Caffe's Deconvolution forward (the backward pass of a convolution): for each image and group,
 * col = W_g^T x x_g, then col2im into y_g (+ bias), in bands of `bandRows` input rows.
 * `weights` is [cin, cout/group, kh, kw]; `weightsT` is scratch for their per-group transposes
 * (same size); `col` is scratch of (cout/group)*kh*kw*bandRows*width elements.
 */
export function deconvolution<T>(
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
  const window = changetype<Window>(geometry);
  const cinGroup = cin / groups;
  const coutGroup = cout / groups;
  const depth = coutGroup * window.kernelH * window.kernelW;
  const spatial = height * width;
  for (let g = 0; g < groups; g++) {
    const start = g * cinGroup * depth;
    transpose<T>(at(weights, start), cinGroup, depth, at(weightsT, start));
  }
  for (let n = 0; n < batch; n++) {
    for (let g = 0; g < groups; g++) {
      const xGroup = at(x, (n * cin + g * cinGroup) * spatial);
      const groupWeightsT = at(weightsT, g * cinGroup * depth);
      const yGroup = at(y, (n * cout + g * coutGroup) * outH * outW);
      memory.fill(yGroup, 0, <usize>(coutGroup * outH * outW) << 2);
      for (let rowStart = 0; rowStart < height; rowStart += bandRows) {
        const rowEnd = min(rowStart + bandRows, height);
        const columns = (rowEnd - rowStart) * width;
        const band = at(xGroup, rowStart * width);
        gemm<T>(depth, columns, cinGroup, groupWeightsT, band, spatial, col, columns);
        col2im<T>(col, coutGroup, outH, outW, window, rowStart, rowEnd, width, yGroup);
      }
    }
  }
  if (bias != 0) addChannelBias<T>(y, batch, cout, outH * outW, bias);
}

/**
 * Caffe's InnerProduct forward: y[rows, outputs] = x[rows, depth] x W^T (+ bias), W stored
 * [outputs, depth], or [depth, outputs] when `transposed`.
 */
export function innerProduct<T>(
  x: usize,
  rows: i32,
  depth: i32,
  weights: usize,
  transposed: bool,
  bias: usize,
  outputs: i32,
  y: usize,
): void {
  if (transposed) {
    gemm<T>(rows, outputs, depth, x, weights, outputs, y, outputs);
  } else {
    gemmTransB<T>(rows, outputs, depth, x, weights, y);
  }
  if (bias != 0) addChannelBias<T>(y, rows, outputs, 1, bias);
}
