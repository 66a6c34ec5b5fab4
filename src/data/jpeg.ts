/**
 * JPEG to 8-bit BGR or gray as OpenCV's `imread` gives it.
 *
 * OpenCV decodes JPEG with libjpeg-turbo (islow IDCT, "fancy" chroma upsampling). So does
 * `@jsquash/jpeg`: libjpeg-turbo's decoder (as MozJPEG's) compiled to WebAssembly, which runs in
 * Deno, Node, browsers and edge runtimes; its module is embedded in src/wasm/mozjpeg_dec.generated.ts
 * and instantiated from memory. Its RGB output equals OpenCV's BGR bytes on every photo measured.
 * It has no grayscale output, so gray (`IMREAD_GRAYSCALE`, where libjpeg hands out the Y plane)
 * is libjpeg's own RGB-to-Y formula applied to the decoded RGB: within one level of OpenCV's on
 * at least 99 % of pixels (README "Data"). The EXIF orientation is applied, as `imread` does.
 *
 * @module
 */

import decodeRgba, { init } from "npm:@jsquash/jpeg@1.6.0/decode.js";
import { decodeBase64 } from "../wasm/load.ts";
import type { Image8 } from "../wasm/image.ts";
import { imageError } from "./image_error.ts";
import { applyOrientation, jpegOrientation } from "./orientation.ts";

let ready: Promise<void> | undefined;

/**
 * Instantiates the decoder once, from the embedded module, with libjpeg's warnings ("Premature
 * end of JPEG file") kept off the console; errors still throw.
 */
function decoderReady(): Promise<void> {
  ready ??= import("../wasm/mozjpeg_dec.generated.ts").then(({ wasmBase64 }) =>
    WebAssembly.compile(decodeBase64(wasmBase64))
  ).then((module) =>
    init(
      {
        instantiateWasm(imports: WebAssembly.Imports, done: unknown) {
          const instance = new WebAssembly.Instance(module, imports);
          // Emscripten's callback takes the instance (its type says module).
          (done as unknown as (instance: WebAssembly.Instance) => void)(instance);
          return instance.exports;
        },
        print: () => {},
        printErr: () => {},
      } as Parameters<typeof init>[0],
    )
  ).catch((error) => {
    ready = undefined;
    throw error;
  });
  return ready;
}

/** libjpeg's rgb_gray_convert weights, FIX(0.299), FIX(0.587), FIX(0.114) of 2^16. */
const GRAY_R = 19595;
const GRAY_G = 38470;
const GRAY_B = 7471;

/** Decodes a JPEG to BGR (`color`) or gray; a file that does not decode is `IMAGE_FORMAT`. */
export async function decodeJpeg(bytes: Uint8Array, color: boolean, file: string): Promise<Image8> {
  await decoderReady();
  let rgba: { width: number; height: number; data: Uint8ClampedArray };
  try {
    const copy = bytes.slice();
    rgba = await decodeRgba(copy.buffer);
  } catch (error) {
    throw imageError(`the JPEG does not decode (${(error as Error).message})`, file);
  }
  const { width, height } = rgba;
  if (width < 1 || height < 1) throw imageError("the JPEG has no pixels", file);
  const source = rgba.data;
  const pixels = width * height;
  const channels = color ? 3 : 1;
  const data = new Uint8Array(pixels * channels);
  if (color) {
    for (let p = 0; p < pixels; p++) {
      data[p * 3] = source[p * 4 + 2];
      data[p * 3 + 1] = source[p * 4 + 1];
      data[p * 3 + 2] = source[p * 4];
    }
  } else {
    for (let p = 0; p < pixels; p++) {
      const at = p * 4;
      data[p] = (source[at] * GRAY_R + source[at + 1] * GRAY_G + source[at + 2] * GRAY_B +
        32768) >> 16;
    }
  }
  return applyOrientation({ height, width, channels, data }, jpegOrientation(bytes));
}
