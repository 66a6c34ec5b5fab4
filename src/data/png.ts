/**
 * PNG to 8-bit BGR or gray as OpenCV's `imread` gives it (libpng with OpenCV's settings):
 * fast-png inflates and unfilters; this module then does libpng's transforms: 16-bit samples
 * keep their high byte (`png_set_strip_16`), 1/2/4-bit gray is scaled to 0..255, palettes are
 * expanded, alpha is dropped (not blended), gray becomes three equal channels for colour output,
 * and colour becomes gray with libpng's `png_set_rgb_to_gray(…, 0.299, 0.587)` weights
 * (9797, 19234 and 3737 of 32768), in linear light when the file states a gamma (png_gamma.ts;
 * not for 16-bit samples, where libpng's 16-bit gamma tables are not reproduced).
 *
 * @module
 */

import { decode as decodePng } from "npm:fast-png@8.0.0";
import type { Image8 } from "../wasm/image.ts";
import { imageError } from "./image_error.ts";
import { grayInLinearLight, pngFileGamma } from "./png_gamma.ts";

/** Decodes a PNG to BGR (`color`) or gray. */
export function decodePngImage(bytes: Uint8Array, color: boolean, file: string): Image8 {
  let png: ReturnType<typeof decodePng>;
  try {
    png = decodePng(bytes);
  } catch (error) {
    throw imageError(`the PNG does not decode: ${(error as Error).message}`, file);
  }
  const { width, height, depth, channels: stored, palette } = png;
  const pixels = width * height;
  if (pixels === 0 || png.data.length === 0) throw imageError("the PNG has no pixels", file);
  // Each pixel's samples as 8-bit values: gray (1), gray+alpha (2), RGB (3) or RGBA (4).
  const samples = palette ? 3 : stored;
  const eight = new Uint8Array(pixels * samples);
  if (palette) {
    const indices = unpack(png.data, width, height, depth, 1);
    for (let p = 0; p < pixels; p++) {
      const entry = palette[indices[p]] ?? [0, 0, 0];
      eight[p * 3] = entry[0];
      eight[p * 3 + 1] = entry[1];
      eight[p * 3 + 2] = entry[2];
    }
  } else if (depth === 16 && (color || samples < 3)) {
    for (let i = 0; i < eight.length; i++) eight[i] = png.data[i] >> 8;
  } else if (depth === 16) {
    // libpng converts to gray before stripping to 8 bits: on the 16-bit samples, rounded.
    const out = new Uint8Array(pixels);
    for (let p = 0; p < pixels; p++) {
      const [r, g, b] = [
        png.data[p * samples],
        png.data[p * samples + 1],
        png.data[p * samples + 2],
      ];
      out[p] = (r === g && r === b ? r : (9797 * r + 19234 * g + 3737 * b + 16384) >> 15) >> 8;
    }
    return { height, width, channels: 1, data: out };
  } else if (depth === 8) {
    eight.set(png.data.subarray(0, eight.length));
  } else {
    const levels = unpack(png.data, width, height, depth, stored);
    const factor = 255 / ((1 << depth) - 1);
    for (let i = 0; i < eight.length; i++) eight[i] = levels[i] * factor;
  }
  const isColor = samples >= 3;
  const gamma = !color && isColor
    ? pngFileGamma(bytes, png.iccEmbeddedProfile?.profile)
    : undefined;
  if (gamma !== undefined) {
    const rgb = new Uint8Array(pixels * 3);
    for (let p = 0; p < pixels; p++) rgb.set(eight.subarray(p * samples, p * samples + 3), p * 3);
    return { height, width, channels: 1, data: grayInLinearLight(rgb, pixels, gamma) };
  }
  const channels = color ? 3 : 1;
  const out = new Uint8Array(pixels * channels);
  for (let p = 0; p < pixels; p++) {
    const at = p * samples;
    if (!isColor) {
      for (let c = 0; c < channels; c++) out[p * channels + c] = eight[at];
    } else if (color) {
      out[p * 3] = eight[at + 2];
      out[p * 3 + 1] = eight[at + 1];
      out[p * 3 + 2] = eight[at];
    } else {
      const [r, g, b] = [eight[at], eight[at + 1], eight[at + 2]];
      out[p] = r === g && r === b ? r : (9797 * r + 19234 * g + 3737 * b) >> 15;
    }
  }
  return { height, width, channels, data: out };
}

/** Samples of bit depth 1, 2 or 4, packed MSB first with rows padded to bytes, one per byte. */
function unpack(
  data: ArrayLike<number>,
  width: number,
  height: number,
  depth: number,
  samples: number,
): Uint8Array {
  if (depth >= 8) return Uint8Array.from(data as ArrayLike<number>);
  const perRow = width * samples;
  const rowBytes = Math.ceil((perRow * depth) / 8);
  const mask = (1 << depth) - 1;
  const out = new Uint8Array(perRow * height);
  for (let y = 0; y < height; y++) {
    for (let i = 0; i < perRow; i++) {
      const bit = i * depth;
      const byte = data[y * rowBytes + (bit >> 3)];
      out[y * perRow + i] = (byte >> (8 - depth - (bit & 7))) & mask;
    }
  }
  return out;
}
