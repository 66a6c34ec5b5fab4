/**
 * Bundled by tests/browser_data_test.ts and loaded in Chromium: decodes images and resizes them
 * with the library's data path, as a page would.
 *
 * @module
 */

import { decodeImage, imageKernels } from "../core.ts";

/** Decodes `bytes` (colour or gray) and optionally resizes; returns the image's bytes. */
export async function decodeAndResize(
  bytes: number[],
  color: boolean,
  name: string,
  size?: [number, number],
): Promise<number[]> {
  const image = await decodeImage(Uint8Array.from(bytes), color, name);
  const out = size ? (await imageKernels()).resizeLinear(image, size[0], size[1]) : image;
  return [...out.data];
}
