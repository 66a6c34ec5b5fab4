/**
 * EXIF orientation, applied as OpenCV's `imread` applies it to JPEG files (unless
 * `IMREAD_IGNORE_ORIENTATION`): the tag 0x0112 of the first IFD of an `Exif` APP1 segment.
 *
 * @module
 */

import type { Image8 } from "../wasm/image.ts";

/** The EXIF orientation (1–8) of a JPEG file, 1 when it has none or it does not parse. */
export function jpegOrientation(bytes: Uint8Array): number {
  let at = 2;
  while (at + 4 <= bytes.length && bytes[at] === 0xff) {
    const marker = bytes[at + 1];
    if (marker === 0xda || marker === 0xd9) break; // start of scan, end of image
    const length = (bytes[at + 2] << 8) | bytes[at + 3];
    const body = at + 4;
    if (marker === 0xe1 && length >= 16 && body + length - 2 <= bytes.length) {
      const orientation = exifOrientation(bytes.subarray(body, body + length - 2));
      if (orientation !== undefined) return orientation;
    }
    at = body + length - 2;
  }
  return 1;
}

/** The orientation tag of an APP1 body, if it is EXIF and has one in IFD0. */
function exifOrientation(app1: Uint8Array): number | undefined {
  if (String.fromCharCode(...app1.subarray(0, 6)) !== "Exif\0\0") return undefined;
  const tiff = new DataView(app1.buffer, app1.byteOffset + 6, app1.byteLength - 6);
  if (tiff.byteLength < 8) return undefined;
  const order = tiff.getUint16(0);
  if (order !== 0x4949 && order !== 0x4d4d) return undefined;
  const little = order === 0x4949;
  const ifd = tiff.getUint32(4, little);
  if (ifd + 2 > tiff.byteLength) return undefined;
  const count = tiff.getUint16(ifd, little);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > tiff.byteLength) return undefined;
    if (tiff.getUint16(entry, little) === 0x0112) {
      const value = tiff.getUint16(entry + 8, little);
      return value >= 1 && value <= 8 ? value : undefined;
    }
  }
  return undefined;
}

/**
 * `image` turned upright for EXIF orientation `orientation`, as OpenCV's ApplyExifOrientation:
 * 2 mirror, 3 rotate 180°, 4 flip, 5 transpose, 6 rotate 90° clockwise, 7 transverse,
 * 8 rotate 90° counter-clockwise.
 */
export function applyOrientation(image: Image8, orientation: number): Image8 {
  if (orientation < 2 || orientation > 8) return image;
  const { height, width, channels, data } = image;
  const transposed = orientation >= 5;
  const outHeight = transposed ? width : height;
  const outWidth = transposed ? height : width;
  // After the optional transpose, a horizontal and/or vertical flip.
  const flipX = orientation === 2 || orientation === 3 || orientation === 6 || orientation === 7;
  const flipY = orientation === 3 || orientation === 4 || orientation === 7 || orientation === 8;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < outHeight; y++) {
    for (let x = 0; x < outWidth; x++) {
      const ty = flipY ? outHeight - 1 - y : y;
      const tx = flipX ? outWidth - 1 - x : x;
      const [sy, sx] = transposed ? [tx, ty] : [ty, tx];
      const from = (sy * width + sx) * channels;
      const to = (y * outWidth + x) * channels;
      for (let c = 0; c < channels; c++) out[to + c] = data[from + c];
    }
  }
  return { height: outHeight, width: outWidth, channels, data: out };
}
