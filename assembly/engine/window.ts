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
