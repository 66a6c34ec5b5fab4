/**
 * Caffe's TEST-phase data path for an image (the `ImageData` layer and `DataTransformer`):
 * decoded 8-bit BGR or gray → optional bilinear resize (OpenCV `INTER_LINEAR`, bit for bit) →
 * centre crop → `(pixel − mean) · scale` → float32 C × H × W, channels optionally reversed
 * (`rgb`). The arithmetic runs in WebAssembly (assembly/image.ts).
 *
 * @module
 */

import type { NetInput } from "../caffe/net.ts";
import type { Tensor } from "../engine/tensor.ts";
import { ConvertError } from "../errors.ts";
import { type Image8, imageKernels } from "../wasm/image.ts";

/** How an image becomes a tensor: Caffe's `transform_param` and `image_data_param` settings. */
export interface Transform {
  /** `new_height` × `new_width`: resize to this first. */
  resize?: { height: number; width: number };
  /** `crop_size`: the centre square of this side. */
  crop?: number;
  /** `mean_value`: one value for every channel, or one per channel (net channel order). */
  mean?: number[];
  /** `mean_file`'s blob: C × H × W values of the image before cropping (net channel order). */
  meanImage?: { shape: number[]; data: Float32Array };
  /** `scale`, applied after the mean (default 1). */
  scale?: number;
  /** Reverse the decoded BGR channels to RGB before mean and scale. */
  rgb?: boolean;
  /** `is_color: false`: decode to one gray channel. */
  gray?: boolean;
}

/** A `BAD_INPUT` error about an image sample. */
function sampleError(message: string, file: string): ConvertError {
  return new ConvertError("BAD_INPUT", message, { file });
}

/**
 * The tensor `[1, C, H, W]` Caffe's TEST phase makes of `image` for `input` (declared shape
 * `[N, C, H, W]`, or unknown). Without `resize` and `crop`, the image is resized to the input's
 * H × W. The result must have the input's C, H and W: anything else is a `BAD_INPUT` naming
 * `file` and the option that would fix it.
 */
export async function imageTensor(
  image: Image8,
  transform: Transform,
  input: NetInput,
  file: string,
): Promise<Tensor> {
  const kernels = await imageKernels();
  const declared = input.shape.length === 4 && input.shape.every((n) => n > 0)
    ? input.shape
    : undefined;
  if (declared && declared[1] !== image.channels) {
    const hint = declared[1] === 1
      ? " (pass --gray)"
      : image.channels === 1
      ? " (drop --gray)"
      : "";
    throw sampleError(
      `input "${input.name}" has ${
        declared[1]
      } channels, the decoded image ${image.channels}${hint}`,
      file,
    );
  }
  let resized = image;
  const target = transform.resize ??
    (transform.crop === undefined && declared
      ? { height: declared[2], width: declared[3] }
      : undefined);
  if (target && (target.height !== image.height || target.width !== image.width)) {
    resized = kernels.resizeLinear(image, target.height, target.width);
  }
  let [top, left, height, width] = [0, 0, resized.height, resized.width];
  if (transform.crop !== undefined) {
    const crop = transform.crop;
    if (crop > resized.height || crop > resized.width) {
      throw sampleError(
        `the image is ${resized.height}x${resized.width}, smaller than the crop ${crop}`,
        file,
      );
    }
    top = Math.floor((resized.height - crop) / 2);
    left = Math.floor((resized.width - crop) / 2);
    height = width = crop;
  }
  if (declared && (declared[2] !== height || declared[3] !== width)) {
    throw sampleError(
      `input "${input.name}" is ${declared[2]}x${declared[3]}, the preprocessed image ` +
        `${height}x${width} (set --resize HxW or --crop N to match)`,
      file,
    );
  }
  const data = kernels.normalize(resized, {
    top,
    left,
    height,
    width,
    reverse: transform.rgb === true,
    mean: meanValues(transform, resized, file),
    scale: transform.scale ?? 1,
  });
  return { shape: [1, resized.channels, height, width], data };
}

/** The mean as the kernel takes it, checked against the image as Caffe checks it. */
function meanValues(transform: Transform, image: Image8, file: string): Float32Array | null {
  const { mean, meanImage } = transform;
  if (mean !== undefined && meanImage !== undefined) {
    throw sampleError("give mean values or a mean file, not both", file);
  }
  if (mean !== undefined) {
    if (mean.length !== 1 && mean.length !== image.channels) {
      throw sampleError(
        `${mean.length} mean values for a ${image.channels}-channel image (give 1 or ${image.channels})`,
        file,
      );
    }
    return Float32Array.from(mean);
  }
  if (meanImage === undefined) return null;
  const dims = meanImage.shape.length === 4 ? meanImage.shape.slice(1) : meanImage.shape;
  const expected = [image.channels, image.height, image.width];
  if (dims.length !== 3 || dims.some((size, i) => size !== expected[i])) {
    throw sampleError(
      `the mean file's blob is [${meanImage.shape.join(", ")}], the image before cropping ` +
        `[${expected.join(", ")}]`,
      file,
    );
  }
  return meanImage.data;
}
