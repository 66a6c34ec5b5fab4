// Convolution and deconvolution as Caffe computes them (im2col + GEMM, col2im for the transposed
// form), generic over the element type T (f32, or i32 for the deploy model's integer layers).
// Tensors are NCHW; arguments are byte offsets into linear memory owned by the caller, the window
// geometry one of a Window (assembly/engine/window.ts).

import { at, gemm, gemmTransB, packedA, packedB, transpose } from "./gemm";
import { relu as reluKernel } from "./elementwise";
import { copyRun, gatherRun, gemmPanels, packRows, zeroRun } from "./panels";
import { Window } from "./window";

/** The first output column whose input column `ow*stride + shift` is >= 0. */
@inline
function firstInside(shift: i32, stride: i32): i32 {
  return shift >= 0 ? 0 : (stride - 1 - shift) / stride;
}

/** One past the last output column whose input column `ow*stride + shift` is < width. */
@inline
function endInside(shift: i32, stride: i32, width: i32, outW: i32): i32 {
  const room = width - shift;
  return room <= 0 ? 0 : min(outW, (room + stride - 1) / stride);
}

/**
 * Caffe's im2col for output rows rowStart..rowEnd: col[(c*kh + i)*kw + j, (oh - rowStart)*outW +
 * ow] = x[c, oh*sh - ph + i*dh, ow*sw - pw + j*dw], 0 outside the image.
 */
function im2col<T>(
  x: usize,
  channels: i32,
  height: i32,
  width: i32,
  window: Window,
  rowStart: i32,
  rowEnd: i32,
  outW: i32,
  col: usize,
): void {
  const kh = window.kernelH;
  const kw = window.kernelW;
  const sh = window.strideH;
  const sw = window.strideW;
  const rowBytes = <usize>outW << 2;
  let target = col;
  for (let c = 0; c < channels; c++) {
    const plane = at(x, c * height * width);
    for (let i = 0; i < kh; i++) {
      const rowShift = i * window.dilationH - window.padH;
      for (let j = 0; j < kw; j++) {
        const shift = j * window.dilationW - window.padW;
        const first = min(firstInside(shift, sw), outW);
        const end = max(endInside(shift, sw, width, outW), first);
        for (let oh = rowStart; oh < rowEnd; oh++) {
          const ih = oh * sh + rowShift;
          if (ih < 0 || ih >= height || first == end) {
            memory.fill(target, 0, rowBytes);
          } else {
            memory.fill(target, 0, <usize>first << 2);
            const source = at(plane, ih * width + shift);
            if (sw == 1) {
              memory.copy(at(target, first), at(source, first), <usize>(end - first) << 2);
            } else {
              for (let ow = first; ow < end; ow++) {
                store<T>(at(target, ow), load<T>(at(source, ow * sw)));
              }
            }
            memory.fill(at(target, end), 0, <usize>(outW - end) << 2);
          }
          target += rowBytes;
        }
      }
    }
  }
}

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
 * Depthwise convolution (one input and one output channel per group), computed directly: each
 * kernel tap adds w * (shifted input row) to the output row, with SIMD along rows at stride 1.
 */
function depthwise<T>(
  x: usize,
  batch: i32,
  channels: i32,
  height: i32,
  width: i32,
  weights: usize,
  window: Window,
  outH: i32,
  outW: i32,
  y: usize,
): void {
  const kh = window.kernelH;
  const kw = window.kernelW;
  const sh = window.strideH;
  const sw = window.strideW;
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
              const product = v128.mul<T>(taps, v128.load(at(inRow, ow + shift)));
              v128.store(out, v128.add<T>(v128.load(out), product));
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

/**
 * Caffe's Convolution forward: for each image and group, y_g = W_g x im2col(x_g) (+ bias), then
 * when `relu` max(y, 0) + slope * min(y, 0) (float only), in bands of `bandRows` output rows,
 * with 1x1/stride 1/no pad kernels read directly and depthwise kernels computed directly.
 * `weights` is [cout, cin/group, kh, kw]; `bias` is 0 for no bias; `col` is scratch of
 * (cin/group)*kh*kw*bandRows*outW elements (integer form only); the packing scratch is set
 * (gemmScratchBytes(cout/group, bandRows*outW, (cin/group)*kh*kw)).
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
  col: usize,
  y: usize,
  relu: bool,
  slope: f32,
): void {
  const window = changetype<Window>(geometry);
  const cinGroup = cin / groups;
  const coutGroup = cout / groups;
  const depth = cinGroup * window.kernelH * window.kernelW;
  const spatial = outH * outW;
  if (cinGroup == 1 && coutGroup == 1) {
    depthwise<T>(x, batch, cin, height, width, weights, window, outH, outW, y);
    if (bias != 0) addChannelBias<T>(y, batch, cout, spatial, bias);
    if (relu) reluKernel(y, batch * cout * spatial, slope, y);
    return;
  }
  const direct = window.kernelH == 1 && window.kernelW == 1 && window.strideH == 1 &&
    window.strideW == 1 && window.padH == 0 && window.padW == 0;
  for (let n = 0; n < batch; n++) {
    for (let g = 0; g < groups; g++) {
      const xGroup = at(x, (n * cin + g * cinGroup) * height * width);
      const yGroup = at(y, (n * cout + g * coutGroup) * spatial);
      const groupWeights = at(weights, g * coutGroup * depth);
      if (!isInteger<T>()) {
        const groupBias = bias == 0 ? 0 : at(bias, g * coutGroup);
        packRows(groupWeights, depth, coutGroup, depth, packedA());
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
          gemmPanels(coutGroup, columns, depth, packedA(), panels, band, spatial, groupBias, relu, slope);
        }
        continue;
      }
      if (direct) {
        gemm<T>(coutGroup, spatial, depth, groupWeights, xGroup, spatial, yGroup, spatial);
        continue;
      }
      for (let rowStart = 0; rowStart < outH; rowStart += bandRows) {
        const rowEnd = min(rowStart + bandRows, outH);
        im2col<T>(xGroup, cinGroup, height, width, window, rowStart, rowEnd, outW, col);
        const band = at(yGroup, rowStart * outW);
        const columns = (rowEnd - rowStart) * outW;
        gemm<T>(coutGroup, columns, depth, groupWeights, col, columns, band, spatial);
      }
    }
  }
  if (isInteger<T>() && bias != 0) addChannelBias<T>(y, batch, cout, spatial, bias);
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
