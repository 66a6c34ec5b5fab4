// The window geometry of a convolution or a pooling: 8 i32 values at a byte offset the caller
// passes (kernel h, w; pad h, w; stride h, w; dilation h, w), read in place as
// `changetype<Window>(geometry)`. Pooling ignores the dilation.

/** A window geometry in linear memory (no object header: each field is a plain load). */
@unmanaged
export class Window {
  kernelH: i32;
  kernelW: i32;
  padH: i32;
  padW: i32;
  strideH: i32;
  strideW: i32;
  dilationH: i32;
  dilationW: i32;
}

/** The first output column whose input column `ow*stride + shift` is >= 0. */
@inline
export function firstInside(shift: i32, stride: i32): i32 {
  return shift >= 0 ? 0 : (stride - 1 - shift) / stride;
}

/** One past the last output column whose input column `ow*stride + shift` is < width. */
@inline
export function endInside(shift: i32, stride: i32, width: i32, outW: i32): i32 {
  const room = width - shift;
  return room <= 0 ? 0 : min(outW, (room + stride - 1) / stride);
}
