/**
 * The typed wrapper of the image kernels (assembly/image.ts): OpenCV's 8-bit bilinear resize and
 * Caffe's TEST-phase crop, mean and scale. Each call copies its image into WebAssembly memory
 * once and the result out once. Arguments that break a kernel's contract throw a `RangeError`;
 * src/data validates user input first.
 *
 * @module
 */

import { onceLoader, type WasmInstance } from "./load.ts";

/** An 8-bit image, interleaved: `data[(y * width + x) * channels + c]` (BGR or gray). */
export interface Image8 {
  /** Rows. */
  height: number;
  /** Columns. */
  width: number;
  /** 1 (gray) or 3 (BGR). */
  channels: number;
  /** height × width × channels bytes. */
  data: Uint8Array;
}

/** What {@linkcode ImageKernels.normalize} computes. */
export interface NormalizeArgs {
  /** First row and column of the window (Caffe's h_off, w_off). */
  top: number;
  /** First column of the window. */
  left: number;
  /** Window height. */
  height: number;
  /** Window width. */
  width: number;
  /** Output channel c reads image channel channels - 1 - c (BGR to RGB). */
  reverse: boolean;
  /**
   * Subtracted before scaling: null, one value, one per channel, or a mean image of
   * channels × image height × image width (indexed at the window's position).
   */
  mean: Float32Array | null;
  /** Multiplies after the mean (float32). */
  scale: number;
}

/** The image kernels. */
export interface ImageKernels {
  /** `cv::resize(image, Size(width, height), INTER_LINEAR)` bit for bit (assembly/image.ts). */
  resizeLinear(image: Image8, height: number, width: number): Image8;
  /** Caffe's TEST-phase transform of a window of `image` into float32 C × H × W. */
  normalize(image: Image8, args: NormalizeArgs): Float32Array;
}

interface ImageExports {
  resizeLinear(
    src: number,
    sh: number,
    sw: number,
    cn: number,
    dst: number,
    dh: number,
    dw: number,
    work: number,
  ): void;
  resizeHalf(src: number, sw: number, cn: number, dst: number, dh: number, dw: number): void;
  normalize(
    src: number,
    h: number,
    w: number,
    cn: number,
    top: number,
    left: number,
    ch: number,
    cw: number,
    reverse: boolean,
    mean: number,
    meanCount: number,
    scale: number,
    out: number,
  ): void;
}

function checkImage(image: Image8): void {
  const { height, width, channels, data } = image;
  if (
    !Number.isInteger(height) || height < 1 || !Number.isInteger(width) || width < 1 ||
    (channels !== 1 && channels !== 3) || data.length !== height * width * channels
  ) {
    throw new RangeError(`bad image ${height}x${width}x${channels} of ${data.length} bytes`);
  }
}

function bindKernels(wasm: WasmInstance): ImageKernels {
  const kernels = wasm.exports as unknown as ImageExports;
  return {
    resizeLinear(image, height, width) {
      checkImage(image);
      if (!Number.isInteger(height) || height < 1 || !Number.isInteger(width) || width < 1) {
        throw new RangeError(`bad size ${height}x${width}`);
      }
      const { channels: cn } = image;
      if (height === image.height && width === image.width) {
        return { ...image, data: image.data.slice() };
      }
      wasm.reset();
      const srcAt = wasm.copyIn(image.data);
      const dstAt = wasm.alloc(height * width * cn);
      // OpenCV turns INTER_LINEAR into its fast INTER_AREA path for an exact 2x reduction.
      if (image.height === 2 * height && image.width === 2 * width) {
        kernels.resizeHalf(srcAt, image.width, cn, dstAt, height, width);
      } else {
        const workAt = wasm.alloc(width * cn * 16);
        kernels.resizeLinear(srcAt, image.height, image.width, cn, dstAt, height, width, workAt);
      }
      return {
        height,
        width,
        channels: cn,
        data: wasm.copyOut(Uint8Array, dstAt, height * width * cn),
      };
    },

    normalize(image, args) {
      checkImage(image);
      const { top, left, height, width, mean } = args;
      if (
        top < 0 || left < 0 || height < 1 || width < 1 || top + height > image.height ||
        left + width > image.width
      ) {
        throw new RangeError(`window ${height}x${width} at ${top},${left} outside the image`);
      }
      const cn = image.channels;
      const imageMean = cn * image.height * image.width;
      if (mean !== null && mean.length !== 1 && mean.length !== cn && mean.length !== imageMean) {
        throw new RangeError(`mean has ${mean.length} values`);
      }
      wasm.reset();
      const srcAt = wasm.copyIn(image.data);
      const meanAt = mean === null ? 0 : wasm.copyIn(mean);
      const count = cn * height * width;
      const outAt = wasm.alloc(count * 4);
      kernels.normalize(
        srcAt,
        image.height,
        image.width,
        cn,
        top,
        left,
        height,
        width,
        args.reverse,
        meanAt,
        // -1: a mean image (a 1x1 mean image is the same as one value per channel).
        mean === null ? 0 : mean.length === imageMean && imageMean > cn ? -1 : mean.length,
        Math.fround(args.scale),
        outAt,
      );
      return wasm.copyOut(Float32Array, outAt, count);
    },
  };
}

/** The image kernels, instantiated once (later calls share the instance). */
export const imageKernels: () => Promise<ImageKernels> = onceLoader(
  async () => (await import("./image.generated.ts")).wasmBase64,
  bindKernels,
);
