// A plane copied inside a border into scratch, so that a kernel reads every window whole with
// plain loads and no per-output edge code: MAX pooling (a border of -FLT_MAX, which no comparison
// takes) and the 3x3 depthwise convolutions (a border of zeros, or for the integer one of offset_d,
// where q - offset_d is 0).
// Arguments are byte offsets into caller memory, the window geometry one of a Window.

import { at, copyFloats } from "./gemm";
import { quantize } from "./quant";
import { Window } from "./window";

/**
 * Rows of the bordered plane: every output row's window, `extent` rows tall (at least one row past
 * the top padding).
 */
@inline
export function borderedRows(window: Window, outH: i32, extent: i32): i32 {
  return max((outH - 1) * window.strideH + extent, window.padH + 1);
}

/**
 * Columns of the bordered plane (a multiple of 4): every window, `extent` columns wide, of every
 * group of four outputs, and `overread` columns past the last that the kernel's loads take.
 */
@inline
export function borderedColumns(window: Window, outW: i32, extent: i32, overread: i32): i32 {
  const reach = (((outW + 3) & ~3) - 1) * window.strideW + extent + overread;
  return (max(reach, window.padW + 1) + 3) & ~3;
}

/** Fills the `rows` x `columns` floats at `scratch` with `border`. */
@inline
export function fillBorder(scratch: usize, rows: i32, columns: i32, border: f32): void {
  const lanes = f32x4.splat(border);
  for (let i = 0; i < rows * columns; i += 4) v128.store(at(scratch, i), lanes);
}

/**
 * Copies the plane `source` [height, width] into its place inside the border at `scratch` (rows
 * of `columns` floats, the plane padH rows down and padW columns in), quantized on the way when
 * `quantizing` (as the quantize kernel does with `quantScale` and `offset`). Rows and columns no
 * window reaches are not copied; the border around them is left as it is.
 */
@inline
export function copyInsideBorder(
  source: usize,
  height: i32,
  width: i32,
  window: Window,
  rows: i32,
  columns: i32,
  scratch: usize,
  quantizing: bool,
  quantScale: f32,
  offset: f32,
): void {
  const copiedRows = min(height, rows - window.padH);
  const copied = min(width, columns - window.padW);
  const inside = at(scratch, window.padH * columns + window.padW);
  const rowBytes = <usize>columns << 2;
  for (let h = 0; h < copiedRows; h++) {
    const from = at(source, h * width);
    const to = inside + <usize>h * rowBytes;
    if (quantizing) quantize(from, copied, quantScale, offset, to);
    else copyFloats(from, to, copied);
  }
}
