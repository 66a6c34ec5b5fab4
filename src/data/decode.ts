/**
 * Image bytes to an 8-bit image as OpenCV's `imread` gives it: BGR (`IMREAD_COLOR`) or gray
 * (`IMREAD_GRAYSCALE`). JPEG and PNG, told apart by their first bytes.
 *
 * @module
 */

import type { Image8 } from "../wasm/image.ts";
import { imageError } from "./image_error.ts";
import { decodeJpeg } from "./jpeg.ts";
import { decodePngImage } from "./png.ts";

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** True when `bytes` start like a JPEG or a PNG file. */
export function isImage(bytes: Uint8Array): boolean {
  return isJpeg(bytes) || isPng(bytes);
}

function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && PNG_SIGNATURE.every((byte, i) => bytes[i] === byte);
}

/**
 * Decodes a JPEG or PNG file to BGR (`color`, 3 channels) or gray (1 channel). A file that is
 * neither, or does not decode, is an `IMAGE_FORMAT` error naming `file`.
 */
export async function decodeImage(
  bytes: Uint8Array,
  color: boolean,
  file: string,
): Promise<Image8> {
  if (isJpeg(bytes)) return await decodeJpeg(bytes, color, file);
  if (isPng(bytes)) return decodePngImage(bytes, color, file);
  throw imageError("not a JPEG or PNG file", file);
}
