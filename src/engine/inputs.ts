/**
 * The inputs of a run: the net's declared inputs, filled from given tensors or from a seeded
 * pseudo-random generator.
 *
 * @module
 */

import { type Net, type NetInput, netInputs } from "../caffe/net.ts";
import { ConvertError } from "../errors.ts";
import { mulberry32 } from "../random.ts";
import { checkTensorSize, product, shapeText, type Tensor } from "./tensor.ts";

/**
 * A seeded generator of floats uniform in [-1, 1): mulberry32 (32-bit state; each step adds
 * 0x6D2B79F5 to the state and mixes it) gives a uint32 u, and the value is
 * (u >>> 8) / 2^23 - 1, a multiple of 2^-23 that float32 holds exactly.
 */
export function uniformGenerator(seed: number): () => number {
  const next = mulberry32(seed);
  return () => (next() >>> 8) / 0x800000 - 1;
}

/**
 * One tensor per declared input (net order) except those named in `skip`, uniform in [-1, 1)
 * from {@linkcode uniformGenerator}(seed), filled in C order, one input after the other from the
 * same stream. `declared` is `netInputs(net)` (given when the caller has it already).
 */
export function seededInputs(
  net: Net,
  seed: number,
  skip: ReadonlySet<string> = new Set(),
  declared: readonly NetInput[] = netInputs(net),
): Map<string, Tensor> {
  const next = uniformGenerator(seed);
  const inputs = new Map<string, Tensor>();
  for (const { name, shape } of declared) {
    if (skip.has(name)) continue;
    if (shape.length === 0 || shape.some((size) => !Number.isInteger(size) || size < 1)) {
      throw new ConvertError(
        "BAD_INPUT",
        `input "${name}" has no usable declared shape ${shapeText(shape)}; give it as a tensor`,
      );
    }
    checkTensorSize(name, shape);
    const data = new Float32Array(product(shape));
    for (let i = 0; i < data.length; i++) data[i] = next();
    inputs.set(name, { shape: shape.slice(), data });
  }
  return inputs;
}

/**
 * The run's inputs: each declared input from `given` (any shape: the net reshapes to it), the
 * others seeded ({@linkcode seededInputs}). A given tensor whose data does not fill its shape, or
 * that names no declared input, is a `BAD_INPUT`. `declared` is `netInputs(net)` (given when the
 * caller has it already).
 */
export function runInputs(
  net: Net,
  given: Map<string, Tensor> = new Map(),
  seed = 0,
  declared: readonly NetInput[] = netInputs(net),
): Map<string, Tensor> {
  for (const [name, tensor] of given) {
    if (!declared.some((input) => input.name === name)) {
      const names = [...new Set(declared.map((input) => input.name))];
      throw new ConvertError(
        "BAD_INPUT",
        `"${name}" is not an input of the net (inputs: ${names.join(", ")})`,
      );
    }
    if (tensor.data.length !== product(tensor.shape)) {
      throw new ConvertError(
        "BAD_INPUT",
        `input "${name}" has ${tensor.data.length} values for shape ${shapeText(tensor.shape)}`,
      );
    }
  }
  const inputs = seededInputs(net, seed, new Set(given.keys()), declared);
  for (const [name, tensor] of given) inputs.set(name, tensor);
  return inputs;
}
