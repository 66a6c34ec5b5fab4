// Convolution and deconvolution as Caffe computes them (im2col + GEMM, col2im for the transposed
// form), generic over the element type T (f32: the deploy model's integer layers are
// assembly/engine/intconv.ts).
// Tensors are NCHW; arguments are byte offsets into linear memory owned by the caller, the window
// geometry one of a Window (assembly/engine/window.ts).

import { borderedColumns, borderedRows, copyInsideBorder, fillBorder } from "./border";
import { prelu as preluKernel, relu as reluKernel, reluLanes } from "./elementwise";
import {
  at,
  fourFloats,
  gemm,
  gemmTransB,
  madd,
  packedA,
  packedB,
  storeFirstLanes,
  transpose,
} from "./gemm";
import { colRowStride, gemmPanels, packedRowsBytes, packRows } from "./panels";
import { endInside, firstInside, Window } from "./window";


/**
 * Caffe's im2col of T (f32: float input; i16: the integer layers' differences) into row-major col
 * [depth, columns] (columns = (rowEnd - rowStart) * outW, rows `rowStride` values apart, the
 * matrix product's B as it is):
 * col[(c*kh + i)*kw + j, (oh - rowStart)*outW + ow] = x[c, oh*sh - ph + i*dh, ow*sw - pw + j*dw],
 * 0 outside the image. Inputs are copied four at a time at every column stride (one 16-byte store
 * of floats, or one 8-byte store of int16); a store may run up to three values past its run into
 * places written after it (or col's slack), and loads may read up to seven values past an input
 * row (the caller's memory goes on after x).
 */
export function im2colColumns<T>(
  x: usize,
  channels: i32,
  height: i32,
  width: i32,
  window: Window,
  rowStart: i32,
  rowEnd: i32,
  outW: i32,
  col: usize,
  rowStride: i32,
): void {
  const sw = window.strideW;
  if (sw == 1) {
    im2colColumnsAt<T>(x, channels, height, width, window, rowStart, rowEnd, outW, col, rowStride, 1);
  } else if (sw == 2) {
    im2colColumnsAt<T>(x, channels, height, width, window, rowStart, rowEnd, outW, col, rowStride, 2);
  } else {
    im2colColumnsAt<T>(x, channels, height, width, window, rowStart, rowEnd, outW, col, rowStride, sw);
  }
}


/** Byte offset of element `index` of an array of T at `base`. */
@inline
function elementAt<T>(base: usize, index: i32): usize {
  return base + (<usize>index << alignof<T>());
}

/** Four int16 of a row `stride` apart from `from`, as the 64 bits of one store. */
@inline
function fourInt16(from: usize, stride: i32): i64 {
  if (stride == 1) return load<i64>(from);
  if (stride == 2) {
    const values = v128.load(from);
    return i64x2.extract_lane(
      i8x16.shuffle(values, values, 0, 1, 4, 5, 8, 9, 12, 13, 0, 1, 4, 5, 8, 9, 12, 13),
      0,
    );
  }
  const step = <usize>stride << 1;
  return <i64>load<u16>(from) | (<i64>load<u16>(from + step) << 16) |
    (<i64>load<u16>(from + 2 * step) << 32) | (<i64>load<u16>(from + 3 * step) << 48);
}

/** Stores four values of T `stride` apart from `from` at `to`. */
@inline
function copyFour<T>(to: usize, from: usize, stride: i32): void {
  if (sizeof<T>() == 4) v128.store(to, fourFloats(from, stride));
  else store<i64>(to, fourInt16(from, stride));
}

/** Stores four zeros of T at `to`. */
@inline
function zeroFour<T>(to: usize): void {
  if (sizeof<T>() == 4) v128.store(to, f32x4.splat(0));
  else store<i64>(to, 0);
}

/** im2colColumns at column stride `sw`, inlined with a constant one. */
@inline
function im2colColumnsAt<T>(
  x: usize,
  channels: i32,
  height: i32,
  width: i32,
  window: Window,
  rowStart: i32,
  rowEnd: i32,
  outW: i32,
  col: usize,
  rowStride: i32,
  sw: i32,
): void {
  const kh = window.kernelH;
  const kw = window.kernelW;
  const sh = window.strideH;
  let colRow = col;
  for (let c = 0; c < channels; c++) {
    const plane = elementAt<T>(x, c * height * width);
    for (let i = 0; i < kh; i++) {
      const rowShift = i * window.dilationH - window.padH;
      for (let j = 0; j < kw; j++) {
        let target = colRow;
        colRow = elementAt<T>(colRow, rowStride);
        const shift = j * window.dilationW - window.padW;
        const first = min(firstInside(shift, sw), outW);
        const end = max(endInside(shift, sw, width, outW), first);
        for (let oh = rowStart; oh < rowEnd; oh++) {
          const ih = oh * sh + rowShift;
          if (ih < 0 || ih >= height || first == end) {
            for (let ow = 0; ow < outW; ow += 4) zeroFour<T>(elementAt<T>(target, ow));
          } else {
            const row = elementAt<T>(plane, ih * width + shift);
            for (let ow = 0; ow < first; ow++) store<T>(elementAt<T>(target, ow), <T>0);
            for (let ow = first; ow < end; ow += 4) {
              copyFour<T>(elementAt<T>(target, ow), elementAt<T>(row, ow * sw), sw);
            }
            for (let ow = end; ow < outW; ow++) store<T>(elementAt<T>(target, ow), <T>0);
          }
          target = elementAt<T>(target, outW);
        }
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
 * + bias and, when `relu` (float), the ReLU. 3x3 kernels at column stride 1 or 2 read a
 * zero-padded copy of each plane with their taps and sums in registers (depthwise3x3; taps in the
 * padding add w * 0); others add w * (shifted input row) to the output row per tap, with SIMD
 * along rows at stride 1 (taps outside the image skipped). Either way each output sums its taps
 * in order (rows, then columns) before the bias.
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
  slopes: usize,
): void {
  const kh = window.kernelH;
  const kw = window.kernelW;
  const sh = window.strideH;
  const sw = window.strideW;
  if (kh == 3 && kw == 3 && sw <= 2) {
    depthwise3x3<T>(x, batch, channels, height, width, weights, bias, window, outH, outW, y, relu, slope, slopes);
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
  if (!isInteger<T>() && relu) {
    if (slopes != 0) preluKernel(y, batch, channels, outH * outW, slopes, 1, y);
    else reluKernel(y, planes * outH * outW, slope, y);
  }
}

/** Rows of the bordered plane a 3x3 depthwise kernel reads: every output row's three taps. */
@inline
export function depthwiseRows3x3(window: Window, outH: i32): i32 {
  return borderedRows(window, outH, 2 * window.dilationH + 1);
}

/**
 * Columns of the bordered plane a 3x3 depthwise kernel reads: at column stride 2 the three floats
 * past the last tap that its loads take (taps3 reads twelve floats for four outputs).
 */
@inline
export function depthwiseColumns3x3(window: Window, outW: i32): i32 {
  return borderedColumns(window, outW, 2 * window.dilationW + 1, window.strideW == 2 ? 3 : 0);
}

/**
 * Bytes of scratch a 3x3 depthwise convolution at column stride 1 or 2 needs (the float one's
 * is set by setGemmScratch; the integer one takes it as an argument): one input plane inside a
 * border (depthwisePlane), 0 for other kernels.
 */
export function depthwiseScratchBytes(outH: i32, outW: i32, geometry: usize): i32 {
  const window = changetype<Window>(geometry);
  if (window.kernelH != 3 || window.kernelW != 3 || window.strideW > 2) return 0;
  return depthwiseRows3x3(window, outH) * depthwiseColumns3x3(window, outW) * 4;
}

/**
 * 3x3 depthwise convolution at stride 1 or 2 (any pad and dilation): per plane, the input is
 * copied into a zero border (packing scratch; depthwiseScratchBytes) so that every tap is a plain
 * load, then depthwisePlane. Each output sums its nine taps in order (rows, then columns; taps in
 * the padding multiply zeros), then adds the bias.
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
  slopes: usize,
): void {
  const rows = depthwiseRows3x3(window, outH);
  const columns = depthwiseColumns3x3(window, outW);
  const padded = packedA();
  const zero = v128.splat<T>(<T>0);
  fillBorder(padded, rows, columns, 0);
  for (let plane = 0; plane < batch * channels; plane++) {
    const channel = plane % channels;
    copyInsideBorder(at(x, plane * height * width), height, width, window, rows, columns, padded, false, 0, 0);
    const biasLanes = bias == 0 ? zero : v128.splat<T>(load<T>(at(bias, channel)));
    const planeSlopes = f32x4.splat(slopes == 0 ? slope : load<f32>(at(slopes, channel)));
    const target = at(y, plane * outH * outW);
    const kernel = at(weights, channel * 9);
    depthwisePlane<T>(padded, columns, window, outH, outW, target, kernel, biasLanes, relu, planeSlopes, false, zero, false, zero);
  }
}

/**
 * The outputs of one 3x3 depthwise plane at `target` from its bordered copy `padded` (rows of
 * `columns` floats, every tap inside) and its nine weights at `kernel`: depthwiseRows with the
 * common strides and dilations as constants. Each four sums are finished as finish does.
 */
@inline
export function depthwisePlane<T>(
  padded: usize,
  columns: i32,
  window: Window,
  outH: i32,
  outW: i32,
  target: usize,
  kernel: usize,
  biases: v128,
  activated: bool,
  slopes: v128,
  corrected: bool,
  corrections: v128,
  scaled: bool,
  scales: v128,
): void {
  const sh = window.strideH;
  const sw = window.strideW;
  const dh = window.dilationH;
  const dw = window.dilationW;
  if (sh == 1 && sw == 1 && dh == 1 && dw == 1) {
    depthwiseRows<T>(padded, columns, outH, outW, target, kernel, biases, activated, slopes, corrected, corrections, scaled, scales, 1, 1, 1, 1);
  } else if (sh == 2 && sw == 2 && dh == 1 && dw == 1) {
    depthwiseRows<T>(padded, columns, outH, outW, target, kernel, biases, activated, slopes, corrected, corrections, scaled, scales, 2, 2, 1, 1);
  } else {
    depthwiseRows<T>(padded, columns, outH, outW, target, kernel, biases, activated, slopes, corrected, corrections, scaled, scales, sh, sw, dh, dw);
  }
}

/**
 * The outputs of one plane from its bordered copy (`padW` floats per row), each four finished by
 * finish: two output rows at a time, eight outputs of each per step (four sums in flight; at
 * stride 1 and dilation 1 the two rows share the loads of their common input rows); each row's
 * last outputs short of eight and a last odd row by depthwiseRow. Inlined with constant strides
 * and dilations.
 */
@inline
function depthwiseRows<T>(
  padded: usize,
  padW: i32,
  outH: i32,
  outW: i32,
  target: usize,
  kernel: usize,
  biases: v128,
  activated: bool,
  slopes: v128,
  corrected: bool,
  corrections: v128,
  scaled: bool,
  scales: v128,
  sh: i32,
  sw: i32,
  dh: i32,
  dw: i32,
): void {
  const t0 = v128.splat<T>(load<T>(kernel));
  const t1 = v128.splat<T>(load<T>(kernel, 4));
  const t2 = v128.splat<T>(load<T>(kernel, 8));
  const t3 = v128.splat<T>(load<T>(kernel, 12));
  const t4 = v128.splat<T>(load<T>(kernel, 16));
  const t5 = v128.splat<T>(load<T>(kernel, 20));
  const t6 = v128.splat<T>(load<T>(kernel, 24));
  const t7 = v128.splat<T>(load<T>(kernel, 28));
  const t8 = v128.splat<T>(load<T>(kernel, 32));
  const rowStep = <usize>(sh * padW) << 2;
  const tapRows = <usize>(dh * padW) << 2;
  const half = <usize>(4 * sw) << 2;
  const zero = v128.splat<T>(<T>0);
  const vectorEnd = outW & ~7;
  let a0 = padded;
  let outRow = target;
  let oh = 0;
  for (; oh + 2 <= outH; oh += 2) {
    const a1 = a0 + tapRows;
    const a2 = a1 + tapRows;
    const b0 = a0 + rowStep;
    const b1 = b0 + tapRows;
    const b2 = b1 + tapRows;
    const nextRow = at(outRow, outW);
    for (let ow = 0; ow < vectorEnd; ow += 8) {
      const offset = <usize>(ow * sw) << 2;
      let sa0: v128;
      let sa1: v128;
      let sb0: v128;
      let sb1: v128;
      if (sh == 1 && sw == 1 && dh == 1 && dw == 1) {
        // Input rows a0, a1 = b0, a2 = b1, b2: each loaded once for both output rows.
        sa0 = taps3<T>(zero, a0 + offset, t0, t1, t2, 1, 1);
        sa1 = taps3<T>(zero, a0 + offset + 16, t0, t1, t2, 1, 1);
        let p = a1 + offset;
        let x0 = v128.load(p);
        let x1 = v128.load(p, 4);
        let x2 = v128.load(p, 8);
        sa0 = madd<T>(t5, x2, madd<T>(t4, x1, madd<T>(t3, x0, sa0)));
        sb0 = madd<T>(t2, x2, madd<T>(t1, x1, madd<T>(t0, x0, zero)));
        x0 = v128.load(p, 16);
        x1 = v128.load(p, 20);
        x2 = v128.load(p, 24);
        sa1 = madd<T>(t5, x2, madd<T>(t4, x1, madd<T>(t3, x0, sa1)));
        sb1 = madd<T>(t2, x2, madd<T>(t1, x1, madd<T>(t0, x0, zero)));
        p = a2 + offset;
        x0 = v128.load(p);
        x1 = v128.load(p, 4);
        x2 = v128.load(p, 8);
        sa0 = madd<T>(t8, x2, madd<T>(t7, x1, madd<T>(t6, x0, sa0)));
        sb0 = madd<T>(t5, x2, madd<T>(t4, x1, madd<T>(t3, x0, sb0)));
        x0 = v128.load(p, 16);
        x1 = v128.load(p, 20);
        x2 = v128.load(p, 24);
        sa1 = madd<T>(t8, x2, madd<T>(t7, x1, madd<T>(t6, x0, sa1)));
        sb1 = madd<T>(t5, x2, madd<T>(t4, x1, madd<T>(t3, x0, sb1)));
        sb0 = taps3<T>(sb0, b2 + offset, t6, t7, t8, 1, 1);
        sb1 = taps3<T>(sb1, b2 + offset + 16, t6, t7, t8, 1, 1);
      } else {
        sa0 = taps3<T>(zero, a0 + offset, t0, t1, t2, sw, dw);
        sa1 = taps3<T>(zero, a0 + offset + half, t0, t1, t2, sw, dw);
        sb0 = taps3<T>(zero, b0 + offset, t0, t1, t2, sw, dw);
        sb1 = taps3<T>(zero, b0 + offset + half, t0, t1, t2, sw, dw);
        sa0 = taps3<T>(sa0, a1 + offset, t3, t4, t5, sw, dw);
        sa1 = taps3<T>(sa1, a1 + offset + half, t3, t4, t5, sw, dw);
        sb0 = taps3<T>(sb0, b1 + offset, t3, t4, t5, sw, dw);
        sb1 = taps3<T>(sb1, b1 + offset + half, t3, t4, t5, sw, dw);
        sa0 = taps3<T>(sa0, a2 + offset, t6, t7, t8, sw, dw);
        sa1 = taps3<T>(sa1, a2 + offset + half, t6, t7, t8, sw, dw);
        sb0 = taps3<T>(sb0, b2 + offset, t6, t7, t8, sw, dw);
        sb1 = taps3<T>(sb1, b2 + offset + half, t6, t7, t8, sw, dw);
      }
      const outA = at(outRow, ow);
      const outB = at(nextRow, ow);
      v128.store(outA, finish<T>(sa0, biases, activated, slopes, corrected, corrections, scaled, scales));
      v128.store(outA, finish<T>(sa1, biases, activated, slopes, corrected, corrections, scaled, scales), 16);
      v128.store(outB, finish<T>(sb0, biases, activated, slopes, corrected, corrections, scaled, scales));
      v128.store(outB, finish<T>(sb1, biases, activated, slopes, corrected, corrections, scaled, scales), 16);
    }
    if (vectorEnd < outW) {
      depthwiseRow<T>(a0, a1, a2, outRow, vectorEnd, outW, t0, t1, t2, t3, t4, t5, t6, t7, t8, biases, activated, slopes, corrected, corrections, scaled, scales, sw, dw);
      depthwiseRow<T>(b0, b1, b2, nextRow, vectorEnd, outW, t0, t1, t2, t3, t4, t5, t6, t7, t8, biases, activated, slopes, corrected, corrections, scaled, scales, sw, dw);
    }
    a0 += rowStep << 1;
    outRow = at(nextRow, outW);
  }
  if (oh < outH) {
    const a1 = a0 + tapRows;
    const a2 = a1 + tapRows;
    depthwiseRow<T>(a0, a1, a2, outRow, 0, outW, t0, t1, t2, t3, t4, t5, t6, t7, t8, biases, activated, slopes, corrected, corrections, scaled, scales, sw, dw);
  }
}

/**
 * Outputs `first`..`end` of one output row from padded input rows `in0`, `in1`, `in2`, four at a
 * time; the last one to three through storeFirstLanes.
 */
@inline
function depthwiseRow<T>(
  in0: usize,
  in1: usize,
  in2: usize,
  outRow: usize,
  first: i32,
  end: i32,
  t0: v128,
  t1: v128,
  t2: v128,
  t3: v128,
  t4: v128,
  t5: v128,
  t6: v128,
  t7: v128,
  t8: v128,
  biases: v128,
  activated: bool,
  slopes: v128,
  corrected: bool,
  corrections: v128,
  scaled: bool,
  scales: v128,
  sw: i32,
  dw: i32,
): void {
  for (let ow = first; ow < end; ow += 4) {
    const offset = <usize>(ow * sw) << 2;
    let sum = taps3<T>(v128.splat<T>(<T>0), in0 + offset, t0, t1, t2, sw, dw);
    sum = taps3<T>(sum, in1 + offset, t3, t4, t5, sw, dw);
    sum = taps3<T>(sum, in2 + offset, t6, t7, t8, sw, dw);
    sum = finish<T>(sum, biases, activated, slopes, corrected, corrections, scaled, scales);
    if (ow + 4 <= end) v128.store(at(outRow, ow), sum);
    else storeFirstLanes(at(outRow, ow), sum, end - ow);
  }
}

/**
 * Four sums of a depthwise plane as stored: less `corrections` when `corrected` (the integer
 * kernel's offset times its weights), + `biases`, times `scales` + 0 when `scaled`, then when
 * `activated` (float) max(y, 0) + slopes * min(y, 0).
 */
@inline
function finish<T>(
  sum: v128,
  biases: v128,
  activated: bool,
  slopes: v128,
  corrected: bool,
  corrections: v128,
  scaled: bool,
  scales: v128,
): v128 {
  let value = corrected ? v128.sub<T>(sum, corrections) : sum;
  value = v128.add<T>(value, biases);
  if (scaled) value = v128.add<T>(v128.mul<T>(value, scales), v128.splat<T>(<T>0));
  if (!isInteger<T>() && activated) value = reluLanes(value, slopes);
  return value;
}

/**
 * `sum` + the three taps of one kernel row times the input at `from` + j*dw, for four outputs
 * `stride` (1 or 2) apart, in tap order (at stride 2 and dilation 1 reading twelve floats from
 * `from`). The integer depthwise kernel uses it too: its values are small integers, exact.
 */
@inline
export function taps3<T>(sum: v128, from: usize, t0: v128, t1: v128, t2: v128, stride: i32, dw: i32): v128 {
  if (stride == 2 && dw == 1) {
    // Columns 0..8 of `from` as evens (0, 2, 4, 6), odds (1, 3, 5, 7) and evens from 2.
    const a = v128.load(from);
    const b = v128.load(from, 16);
    const evens = v128.shuffle<T>(a, b, 0, 2, 4, 6);
    const odds = v128.shuffle<T>(a, b, 1, 3, 5, 7);
    const next = v128.shuffle<T>(evens, v128.load(from, 32), 1, 2, 3, 4);
    const total = madd<T>(t0, evens, sum);
    return madd<T>(t2, next, madd<T>(t1, odds, total));
  }
  const step = <usize>dw << 2;
  let total = madd<T>(t0, fourFloats(from, stride), sum);
  total = madd<T>(t1, fourFloats(from + step, stride), total);
  return madd<T>(t2, fourFloats(from + 2 * step, stride), total);
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
  slopes: usize,
  packedWeights: usize,
): void {
  const window = changetype<Window>(geometry);
  const cinGroup = cin / groups;
  const coutGroup = cout / groups;
  const depth = cinGroup * window.kernelH * window.kernelW;
  const spatial = outH * outW;
  if (cinGroup == 1 && coutGroup == 1) {
    depthwise<T>(x, batch, cin, height, width, weights, bias, window, outH, outW, y, relu, slope, slopes);
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
      const groupSlopes = slopes == 0 ? 0 : at(slopes, g * coutGroup);
      let groupPanels = packedA();
      if (packedWeights != 0) {
        groupPanels = packedWeights + <usize>g * <usize>packedRowsBytes(coutGroup, depth);
      } else {
        packRows(groupWeights, depth, coutGroup, depth, groupPanels);
      }
      if (direct) {
        gemmPanels(coutGroup, spatial, depth, groupPanels, xGroup, spatial, yGroup, spatial, groupBias, relu, slope, groupSlopes);
        continue;
      }
      const panels = packedB(coutGroup, depth);
      for (let rowStart = 0; rowStart < outH; rowStart += bandRows) {
        const rowEnd = min(rowStart + bandRows, outH);
        const columns = (rowEnd - rowStart) * outW;
        const rowStride = colRowStride(columns);
        im2colColumns<f32>(xGroup, cinGroup, height, width, window, rowStart, rowEnd, outW, panels, rowStride);
        const band = at(yGroup, rowStart * outW);
        gemmPanels(coutGroup, columns, depth, groupPanels, panels, rowStride, band, spatial, groupBias, relu, slope, groupSlopes);
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
