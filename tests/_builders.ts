/**
 * Test helpers that build small nets directly as `TextMessage` trees with float32 blobs, and
 * naive float64 reference computations (convolution, deconvolution, inner product, SPEC §4
 * rounding) written independently of the code under test.
 *
 * @module
 */

import { join } from "node:path";
import { writeCaffemodel } from "../src/caffe/caffemodel_write.ts";
import { type Blob, Layer, type Net } from "../src/caffe/net.ts";
import { printPrototxt } from "../src/caffe/prototxt.ts";
import { type FieldValue, TextMessage } from "../src/proto/tree.ts";
import { unitGenerator } from "../src/random.ts";

/** A plain description of a message: arrays are repeated fields, objects nested messages. */
export type Fields = { [name: string]: FieldValue | Fields | (FieldValue | Fields)[] };

/** Builds a `TextMessage` from a plain object, fields in key order. */
export function message(fields: Fields): TextMessage {
  const result = new TextMessage();
  for (const [name, value] of Object.entries(fields)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      const isMessage = typeof item === "object" && !(item instanceof Uint8Array) &&
        !(item instanceof TextMessage);
      result.add(name, isMessage ? message(item as Fields) : item as FieldValue);
    }
  }
  return result;
}

/** A layer from its wiring and parameter messages (e.g. `{ convolution_param: {...} }`). */
export function layer(
  name: string,
  type: string,
  bottoms: string[],
  tops: string[],
  params: Fields = {},
  blobs: Blob[] = [],
): Layer {
  return new Layer(message({ name, type, bottom: bottoms, top: tops, ...params }), blobs);
}

/** A net with `input: <name>` and `input_shape { dim... }` in its header. */
export function net(input: string, shape: number[], layers: Layer[]): Net {
  return { header: message({ name: "test", input, input_shape: { dim: shape } }), layers };
}

/** A seeded pseudo-random source of floats in [lo, hi) (src/random.ts). */
export function random(seed: number): (lo?: number, hi?: number) => number {
  const unit = unitGenerator(seed);
  return (lo = -1, hi = 1) => lo + (hi - lo) * unit();
}

/** Uniform floats in [-1, 1) from a 32-bit LCG (test data only; independent of the engine). */
export function randomValues(count: number, seed: number): Float32Array {
  let state = (seed * 2654435761) >>> 0;
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    values[i] = state / 2 ** 31 - 1;
  }
  return values;
}

/** A float32 blob of `shape` filled from `next`. */
export function blob(shape: number[], next: () => number): Blob {
  const count = shape.reduce((a, b) => a * b, 1);
  return { shape, data: Float32Array.from({ length: count }, () => next()) };
}

/** A float32 blob holding `values`. */
export function blobOf(shape: number[], values: number[]): Blob {
  return { shape, data: new Float32Array(values) };
}

/** Options of the weighted-layer builders. */
export interface WeightedOptions {
  /** Output channels. */
  numOutput: number;
  /** Input channels. */
  channelsIn: number;
  /** Square kernel size (Convolution/Deconvolution). */
  kernel?: number;
  /** Groups (Convolution/Deconvolution). */
  group?: number;
  /** Whether a bias blob is present (`bias_term`, written explicitly when false). */
  bias?: boolean;
  /** Random source for the blobs. */
  next: () => number;
}

/** A Convolution (stride 1, no padding) with random weights `[C_out, C_in/G, k, k]`. */
export function conv(name: string, bottom: string, top: string, options: WeightedOptions): Layer {
  const { numOutput, channelsIn, kernel = 3, group = 1, bias = true, next } = options;
  const blobs = [blob([numOutput, channelsIn / group, kernel, kernel], next)];
  if (bias) blobs.push(blob([numOutput], next));
  const param: Fields = { num_output: numOutput, kernel_size: kernel };
  if (!bias) param.bias_term = false;
  if (group !== 1) param.group = group;
  return layer(name, "Convolution", [bottom], [top], { convolution_param: param }, blobs);
}

/** A Deconvolution (stride 2, no padding) with random weights `[C_in, C_out/G, k, k]`. */
export function deconv(name: string, bottom: string, top: string, options: WeightedOptions): Layer {
  const { numOutput, channelsIn, kernel = 3, group = 1, bias = true, next } = options;
  const blobs = [blob([channelsIn, numOutput / group, kernel, kernel], next)];
  if (bias) blobs.push(blob([numOutput], next));
  const param: Fields = { num_output: numOutput, kernel_size: kernel, stride: 2 };
  if (!bias) param.bias_term = false;
  if (group !== 1) param.group = group;
  return layer(name, "Deconvolution", [bottom], [top], { convolution_param: param }, blobs);
}

/** An InnerProduct with random weights `[N, K]`. */
export function innerProduct(
  name: string,
  bottom: string,
  top: string,
  options: WeightedOptions,
): Layer {
  const { numOutput, channelsIn, bias = true, next } = options;
  const blobs = [blob([numOutput, channelsIn], next)];
  if (bias) blobs.push(blob([numOutput], next));
  const param: Fields = { num_output: numOutput };
  if (!bias) param.bias_term = false;
  return layer(name, "InnerProduct", [bottom], [top], { inner_product_param: param }, blobs);
}

/** A BatchNorm with random statistics (variance > 0) and the given `factor` blob value. */
export function batchNorm(
  name: string,
  bottom: string,
  top: string,
  channels: number,
  next: (lo?: number, hi?: number) => number,
  options: { factor?: number; eps?: number; useGlobalStats?: boolean } = {},
): Layer {
  const { factor = 1, eps, useGlobalStats } = options;
  const param: Fields = {};
  if (useGlobalStats !== undefined) param.use_global_stats = useGlobalStats;
  if (eps !== undefined) param.eps = eps;
  return layer(name, "BatchNorm", [bottom], [top], { batch_norm_param: param }, [
    blob([channels], () => next(-1, 1) * factor),
    blob([channels], () => next(0.1, 2) * factor),
    blobOf([1], [factor]),
  ]);
}

/** A Scale with random gamma (and beta when `bias`). */
export function scale(
  name: string,
  bottom: string,
  top: string,
  channels: number,
  next: (lo?: number, hi?: number) => number,
  bias = true,
): Layer {
  const blobs = [blob([channels], () => next(0.5, 1.5))];
  if (bias) blobs.push(blob([channels], next));
  return layer(name, "Scale", [bottom], [top], { scale_param: { bias_term: bias } }, blobs);
}

/** A ReLU layer. */
export function relu(name: string, bottom: string, top: string): Layer {
  return layer(name, "ReLU", [bottom], [top]);
}

/** An AVE Pooling layer (kernel 2, stride 2). */
export function avePool(name: string, bottom: string, top: string): Layer {
  return layer(name, "Pooling", [bottom], [top], {
    pooling_param: { pool: "AVE", kernel_size: 2, stride: 2 },
  });
}

/** A record file text: `record { key value { ... } }` per entry, values as written. */
export function recordText(entries: Record<string, string>): string {
  return Object.entries(entries)
    .map(([key, value]) => `record {\n  key: "${key}"\n  value {\n    ${value}\n  }\n}\n`)
    .join("");
}

/** A CHW float64 tensor. */
export interface Tensor {
  /** Channels, height, width. */
  shape: [number, number, number];
  /** Values, C-order. */
  data: Float64Array;
}

/** A random CHW tensor. */
export function tensor(shape: [number, number, number], next: () => number): Tensor {
  return { shape, data: Float64Array.from({ length: shape[0] * shape[1] * shape[2] }, next) };
}

/** Naive float64 convolution (stride 1, no padding, `group` groups) of one image. */
export function convForward(
  input: Tensor,
  weights: Float32Array,
  bias: Float32Array | null,
  numOutput: number,
  kernel: number,
  group: number,
): Tensor {
  const [channelsIn, height, width] = input.shape;
  const outH = height - kernel + 1;
  const outW = width - kernel + 1;
  const inPerGroup = channelsIn / group;
  const outPerGroup = numOutput / group;
  const out = new Float64Array(numOutput * outH * outW);
  for (let o = 0; o < numOutput; o++) {
    const g = Math.floor(o / outPerGroup);
    for (let y = 0; y < outH; y++) {
      for (let x = 0; x < outW; x++) {
        let sum = bias ? bias[o] : 0;
        for (let ci = 0; ci < inPerGroup; ci++) {
          const c = g * inPerGroup + ci;
          for (let ky = 0; ky < kernel; ky++) {
            for (let kx = 0; kx < kernel; kx++) {
              const w = weights[((o * inPerGroup + ci) * kernel + ky) * kernel + kx];
              sum += w * input.data[(c * height + y + ky) * width + x + kx];
            }
          }
        }
        out[(o * outH + y) * outW + x] = sum;
      }
    }
  }
  return { shape: [numOutput, outH, outW], data: out };
}

/** Naive float64 deconvolution (stride 2, no padding, `group` groups); weights `[C_in, C_out/G, k, k]`. */
export function deconvForward(
  input: Tensor,
  weights: Float32Array,
  bias: Float32Array | null,
  numOutput: number,
  kernel: number,
  group: number,
): Tensor {
  const stride = 2;
  const [channelsIn, height, width] = input.shape;
  const outH = (height - 1) * stride + kernel;
  const outW = (width - 1) * stride + kernel;
  const inPerGroup = channelsIn / group;
  const outPerGroup = numOutput / group;
  const out = new Float64Array(numOutput * outH * outW);
  for (let o = 0; o < numOutput; o++) {
    for (let i = 0; i < outH * outW; i++) out[o * outH * outW + i] = bias ? bias[o] : 0;
  }
  for (let c = 0; c < channelsIn; c++) {
    const g = Math.floor(c / inPerGroup);
    for (let j = 0; j < outPerGroup; j++) {
      const o = g * outPerGroup + j;
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const value = input.data[(c * height + y) * width + x];
          for (let ky = 0; ky < kernel; ky++) {
            for (let kx = 0; kx < kernel; kx++) {
              const w = weights[((c * outPerGroup + j) * kernel + ky) * kernel + kx];
              out[(o * outH + y * stride + ky) * outW + x * stride + kx] += w * value;
            }
          }
        }
      }
    }
  }
  return { shape: [numOutput, outH, outW], data: out };
}

/** Naive float64 inner product of a flattened tensor: weights `[N, K]`. */
export function innerProductForward(
  input: Tensor,
  weights: Float32Array,
  bias: Float32Array | null,
  numOutput: number,
): Tensor {
  const count = input.data.length;
  const out = new Float64Array(numOutput);
  for (let o = 0; o < numOutput; o++) {
    let sum = bias ? bias[o] : 0;
    for (let k = 0; k < count; k++) sum += weights[o * count + k] * input.data[k];
    out[o] = sum;
  }
  return { shape: [numOutput, 1, 1], data: out };
}

/** Caffe's BatchNorm (global statistics) then Scale, per channel, in float64. */
export function batchNormScaleForward(
  input: Tensor,
  batchNormLayer: Layer,
  scaleLayer: Layer,
  eps: number,
): Tensor {
  const [channels, height, width] = input.shape;
  const [mean, variance, factorBlob] = batchNormLayer.blobs.map((b) => b.data as Float32Array);
  const factor = factorBlob[0] === 0 ? 0 : 1 / factorBlob[0];
  const gamma = scaleLayer.blobs[0].data as Float32Array;
  const beta = scaleLayer.blobs[1]?.data as Float32Array | undefined;
  const out = new Float64Array(input.data.length);
  for (let c = 0; c < channels; c++) {
    const normalizer = Math.sqrt(variance[c] * factor + eps);
    for (let i = 0; i < height * width; i++) {
      const at = c * height * width + i;
      const normalized = (input.data[at] - mean[c] * factor) / normalizer;
      out[at] = normalized * gamma[c] + (beta ? beta[c] : 0);
    }
  }
  return { shape: input.shape, data: out };
}

/** Round half to even (C's `rint` in the default rounding mode). */
export function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (diff < 0.5) return floor;
  if (diff > 0.5) return floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** The largest |a - b| relative to max(1, |b|) over two equal-length arrays. */
export function maxRelativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const error = Math.abs(actual[i] - expected[i]) / Math.max(1, Math.abs(expected[i]));
    worst = Math.max(worst, error);
  }
  return worst;
}

/** The input files of a conversion, as `convertModel` takes them. */
export interface ModelFiles {
  modelFile: string;
  weightsFile: string;
  recordFile: string;
}

/**
 * Writes `model` (prototxt and caffemodel) and a record giving conv1 fixed factors into `dir`, as
 * model.prototxt, weights.caffemodel and record.txt.
 */
export async function writeConv1ModelFiles(dir: string, model: Net): Promise<ModelFiles> {
  const files = {
    modelFile: join(dir, "model.prototxt"),
    weightsFile: join(dir, "weights.caffemodel"),
    recordFile: join(dir, "record.txt"),
  };
  await Deno.writeTextFile(files.modelFile, printPrototxt(model));
  await Deno.writeFile(files.weightsFile, writeCaffemodel(model));
  await Deno.writeTextFile(
    files.recordFile,
    recordText({ conv1: "scale_d: 0.02 offset_d: 0 scale_w: 0.004 offset_w: 0" }),
  );
  return files;
}
