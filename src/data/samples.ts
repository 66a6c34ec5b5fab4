/**
 * Samples for a net from what users hold: encoded images (JPEG, PNG; in browsers `File`/`Blob`),
 * `.npy` files of N×C×H×W float32 samples, tensors, or a tensor per input. One streaming API,
 * {@linkcode readSamples}: items are decoded one at a time, so a data set never sits in memory
 * whole. Every tensor is checked (non-empty, finite, shaped like the net input or a batch of it).
 *
 * @module
 */

import { type Net, type NetInput, netInputs } from "../caffe/net.ts";
import { product, shapeText, type Tensor } from "../engine/tensor.ts";
import { ConvertError } from "../errors.ts";
import { readNpy } from "../io/npy.ts";
import { quantKernels } from "../wasm/quant.ts";
import { decodeImage, isImage } from "./decode.ts";
import { imageTensor, type Transform } from "./transform.ts";

/** One sample: where it came from, its label if known, and a tensor `[1, …]` per net input. */
export interface DataSample {
  /** The file (or item) name; `name[i]` for sample i of a multi-sample `.npy`. */
  name: string;
  /** The integer label, from a list file or a labels file. */
  label?: number;
  /** A tensor per net input it feeds, each with batch 1. */
  inputs: Map<string, Tensor>;
  /**
   * Given with samples read into memory that is used again (a `.npy` batch read row by row):
   * says the sample's tensors are no longer needed, so later samples may be read into them.
   */
  release?: () => void;
}

/** Encoded bytes: a JPEG or PNG image, or a `.npy` file (one or several samples). */
export interface EncodedItem {
  /** The file name, for messages and {@linkcode DataSample.name}. */
  name: string;
  /** The file's bytes. */
  bytes: Uint8Array;
  /** The integer label, if known. */
  label?: number;
}

/** An item a sample source yields. */
export type SampleItem =
  | EncodedItem
  /**
   * A tensor for the image input: `[C, H, W]`, or `[N, C, H, W]` (N samples). With `first`, its
   * samples are those from `first` on of a larger batch, named `name[first + i]`; `release` is
   * called once each of its samples is released ({@linkcode DataSample.release}).
   */
  | { name: string; tensor: Tensor; label?: number; first?: number; release?: () => void }
  /** A tensor per net input (one sample, batch 1). */
  | { name: string; inputs: Map<string, Tensor>; label?: number }
  /** A browser `File` or `Blob` holding an image or a `.npy` file. */
  | Blob;

/** Options of {@linkcode readSamples}. */
export interface ReadSamplesOptions {
  /** How images become tensors (Caffe's transform_param); default: resize to the input. */
  transform?: Transform;
  /** The net input that images and plain tensors feed (default: the net's only input). */
  input?: string;
  /** Stop after this many samples. */
  limit?: number;
  /** Labels by sample position, one per sample (a sample's own label, from a list file, wins). */
  labels?: number[];
}

/** A `BAD_INPUT` error naming the sample's file. */
function badSample(message: string, file: string): ConvertError {
  return new ConvertError("BAD_INPUT", message, { file });
}

/**
 * Checks `tensor` for net input `input` and splits it into samples of batch 1 (views of its array,
 * not copies): its shape must be the input's shape without the batch axis, or `[N, …]` with the
 * input's other dimensions (any shape when the net declares none); it must have elements, all
 * finite. Errors name `file`, and a value by its index in the file: `firstValue` is the index of
 * the tensor's first value there (for rows read from a larger batch).
 */
export async function splitSamples(
  tensor: Tensor,
  input: NetInput,
  file: string,
  firstValue = 0,
): Promise<Tensor[]> {
  const { shape, data } = tensor;
  if (shape.length === 0 || product(shape) === 0 || data.length === 0) {
    throw badSample(`input "${input.name}": the tensor ${shapeText(shape)} has no elements`, file);
  }
  if (data.length !== product(shape)) {
    throw badSample(
      `input "${input.name}": ${data.length} values for shape ${shapeText(shape)}`,
      file,
    );
  }
  const bad = (await quantKernels()).firstNonFinite(data);
  if (bad >= 0) {
    throw badSample(
      `input "${input.name}": value ${firstValue + bad} is ${data[bad]} (every value must be ` +
        "finite)",
      file,
    );
  }
  const batched = samplesShape(shape, input, file);
  const count = batched[0];
  if (count === 1) return [{ shape: batched, data }];
  const size = data.length / count;
  return Array.from({ length: count }, (_, i) => ({
    shape: [1, ...batched.slice(1)],
    data: data.subarray(i * size, (i + 1) * size),
  }));
}

/**
 * `shape` as a batch for `input`: `[1, …shape]` when it is the input's shape without the batch
 * axis, else itself, which must then be `[N, …]` with the input's other dimensions (any shape when
 * the net declares none); otherwise a `BAD_INPUT` naming `file`.
 */
export function samplesShape(shape: number[], input: NetInput, file: string): number[] {
  const declared = input.shape.length > 0 && input.shape.every((n) => Number.isInteger(n) && n > 0)
    ? input.shape
    : undefined;
  if (!declared) return shape;
  const batched = shape.length === declared.length - 1 ? [1, ...shape] : shape;
  const rest = declared.slice(1);
  if (batched.length !== declared.length || batched.slice(1).some((n, i) => n !== rest[i])) {
    throw badSample(
      `input "${input.name}" is ${shapeText(declared)}: the tensor ${shapeText(shape)} is ` +
        `neither ${shapeText(rest)} nor [N, ${rest.join(", ")}]`,
      file,
    );
  }
  return batched;
}

/** The input that images and plain tensors feed. */
function imageInput(net: Net, name: string | undefined): NetInput {
  const inputs = netInputs(net);
  if (name !== undefined) {
    const found = inputs.find((input) => input.name === name);
    if (found) return found;
    throw new ConvertError(
      "BAD_INPUT",
      `"${name}" is not an input of the net (inputs: ${inputs.map((i) => i.name).join(", ")})`,
    );
  }
  if (inputs.length !== 1) {
    throw new ConvertError(
      "BAD_INPUT",
      `the net has ${inputs.length} inputs (${inputs.map((i) => i.name).join(", ")}): ` +
        "say which one the data feeds, or give a tensor per input",
    );
  }
  return inputs[0];
}

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

/** The samples of one item. */
async function* itemSamples(
  net: Net,
  item: SampleItem,
  index: number,
  options: ReadSamplesOptions,
): AsyncIterable<Omit<DataSample, "label"> & { label?: number }> {
  if (item instanceof Blob) {
    const name = "name" in item && typeof item.name === "string" ? item.name : `blob ${index}`;
    yield* itemSamples(net, { name, bytes: new Uint8Array(await item.arrayBuffer()) }, index, {
      ...options,
    });
    return;
  }
  const label = item.label;
  if ("inputs" in item) {
    const declared = new Map(netInputs(net).map((input) => [input.name, input]));
    const inputs = new Map<string, Tensor>();
    for (const [name, tensor] of item.inputs) {
      const input = declared.get(name);
      if (input === undefined) {
        throw badSample(
          `"${name}" is not an input of the net (inputs: ${[...declared.keys()].join(", ")})`,
          item.name,
        );
      }
      const [one, ...more] = await splitSamples(tensor, input, item.name);
      if (more.length > 0) {
        throw badSample(
          `input "${name}": give one sample per item, not ${more.length + 1}`,
          item.name,
        );
      }
      inputs.set(name, one);
    }
    yield { name: item.name, label, inputs };
    return;
  }
  const input = imageInput(net, options.input);
  let tensor: Tensor;
  if ("tensor" in item) {
    tensor = item.tensor;
  } else if (NPY_MAGIC.every((byte, i) => item.bytes[i] === byte)) {
    tensor = readNpy(item.bytes, item.name);
  } else if (isImage(item.bytes)) {
    const transform = options.transform ?? {};
    const image = await decodeImage(item.bytes, transform.gray !== true, item.name);
    const sample = await imageTensor(image, transform, input, item.name);
    yield { name: item.name, label, inputs: new Map([[input.name, sample]]) };
    return;
  } else {
    throw new ConvertError("IMAGE_FORMAT", "not a JPEG, PNG or .npy file", { file: item.name });
  }
  const first = "first" in item ? item.first : undefined;
  const firstValue = first === undefined ? 0 : first * (tensor.data.length / tensor.shape[0]);
  const parts = await splitSamples(tensor, input, item.name, firstValue);
  const whole = "release" in item ? item.release : undefined;
  let unreleased = parts.length;
  for (const [i, part] of parts.entries()) {
    const name = first !== undefined
      ? `${item.name}[${first + i}]`
      : parts.length === 1
      ? item.name
      : `${item.name}[${i}]`;
    const inputs = new Map([[input.name, part]]);
    if (whole === undefined) {
      yield { name, label, inputs };
      continue;
    }
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (--unreleased === 0) whole();
    };
    yield { name, label, inputs, release };
  }
}

/**
 * The samples of `source` for `net`, one at a time: images decoded and preprocessed (Caffe's
 * TEST phase, {@linkcode Transform}), `.npy` files and tensors split into batch-1 samples, each
 * checked against the net's input. Labels come from the items, else from `options.labels` in
 * order (a sample left without one, or labels left over, is a `BAD_INPUT`). Stops after
 * `options.limit` samples.
 *
 * @example
 * ```ts ignore
 * const files = [...input.files]; // an <input type="file" multiple> in a browser
 * for await (const sample of readSamples(net, files, { transform: { mean: [104, 117, 123] } })) {
 *   console.log(sample.name, sample.inputs.get("data")?.shape);
 * }
 * ```
 */
export async function* readSamples(
  net: Net,
  source: Iterable<SampleItem> | AsyncIterable<SampleItem>,
  options: ReadSamplesOptions = {},
): AsyncIterable<DataSample> {
  const limit = options.limit ?? Infinity;
  let count = 0;
  let index = 0;
  if (limit <= 0) return;
  const labels = options.labels;
  for await (const item of source) {
    for await (const sample of itemSamples(net, item, index++, options)) {
      if (labels !== undefined && sample.label === undefined && count >= labels.length) {
        throw new ConvertError(
          "BAD_INPUT",
          `${labels.length} labels for more samples: ${sample.name} has none`,
          { file: sample.name },
        );
      }
      const label = sample.label ?? labels?.[count];
      const given: DataSample = { name: sample.name, inputs: sample.inputs };
      if (label !== undefined) given.label = label;
      if (sample.release !== undefined) given.release = sample.release;
      yield given;
      if (++count >= limit) return;
    }
  }
  if (labels !== undefined && count < labels.length) {
    throw new ConvertError("BAD_INPUT", `${labels.length} labels for ${count} samples`);
  }
}
