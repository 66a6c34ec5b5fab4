/**
 * A float model as Caffe loads it: the prototxt's net with the caffemodel's blobs attached by
 * layer name (SPEC §1, Caffe's `CopyTrainedLayersFrom`), legacy blob dims turned into the shapes
 * Caffe gives them, and every weighted layer checked against its prototxt parameters.
 *
 * @module
 */

import { ConvertError } from "../errors.ts";
import { readCaffemodel } from "./caffemodel_read.ts";
import { DeferredBlob } from "./deferred_blob.ts";
import { boolParam, groupCount, hasBiasTerm, kernelSize, numOutput } from "./layers.ts";
import type { Blob, Layer, Net } from "./net.ts";
import { readPrototxt } from "./prototxt.ts";
import { isUpgradedV1Layer } from "./upgrade.ts";

/** Names shown in errors for the two inputs (paths, or labels for in-memory input). */
export interface ModelFiles {
  /** The prototxt's name. */
  model?: string;
  /** The caffemodel's name. */
  weights?: string;
}

/** Layer types that cannot run without blobs from the caffemodel (one-bottom forms). */
const NEEDS_WEIGHTS: ReadonlySet<string> = new Set([
  "Convolution",
  "Deconvolution",
  "InnerProduct",
  "BatchNorm",
  "PReLU",
  "Normalize",
  "Embed",
]);

/** Layers whose blob is a learned per-channel parameter only when they have one bottom. */
const NEEDS_WEIGHTS_WITH_ONE_BOTTOM: ReadonlySet<string> = new Set(["Scale", "Bias"]);

/** Nets made by {@linkcode loadNet} whose weights came from V1 layers of the caffemodel. */
const netsWithV1Weights = new WeakSet<Net>();

/** True when `net` came from {@linkcode loadNet} and took weights from a legacy V1 caffemodel. */
export function hasV1Weights(net: Net): boolean {
  return netsWithV1Weights.has(net);
}

/**
 * Parses `modelText` and attaches the blobs of `weights` by layer name.
 *
 * @example
 * ```ts ignore
 * const net = loadNet(await Deno.readTextFile("deploy.prototxt"),
 *   await Deno.readFile("weights.caffemodel"), { model: "deploy.prototxt" });
 * ```
 */
export function loadNet(modelText: string, weights: Uint8Array, files: ModelFiles = {}): Net {
  const net = readPrototxt(modelText, files.model);
  const trained = new Map<string, Layer>();
  for (const layer of readCaffemodel(weights, files.weights).layers) trained.set(layer.name, layer);
  for (const layer of net.layers) {
    const source = trained.get(layer.name);
    if (source !== undefined && source.blobs.length > 0) {
      if (isUpgradedV1Layer(source.params)) netsWithV1Weights.add(net);
      layer.blobs = source.blobs.map((blob, index) => caffeShaped(layer, blob, index));
      checkWeights(layer, files.weights);
    } else if (needsWeights(layer)) {
      throw new ConvertError(
        "MISSING_WEIGHTS",
        `layer "${layer.name}" (${layer.type}) needs weights, but the caffemodel has none for it`,
        { file: files.weights, layer: layer.name },
      );
    }
    if (source !== undefined) layer.unknownBytes = source.unknownBytes;
  }
  return net;
}

function needsWeights(layer: Layer): boolean {
  if (NEEDS_WEIGHTS.has(layer.type)) return true;
  return NEEDS_WEIGHTS_WITH_ONE_BOTTOM.has(layer.type) && layer.bottoms.length === 1;
}

/**
 * The shape Caffe gives a blob that came with legacy `num/channels/height/width`: weights of
 * Convolution/Deconvolution stay 4-D, InnerProduct weights become `[N, K]`, every other blob
 * (biases, per-channel parameters) becomes 1-D. Blobs stored with `shape` are kept as they are;
 * a deferred blob (unaligned file data) is reshaped in place, its data still not made.
 */
function caffeShaped(layer: Layer, blob: Blob, index: number): Blob {
  if (!blob.legacyShape) return blob;
  const count = blob.shape.reduce((a, b) => a * b, 1);
  let shape: number[];
  if (index === 0 && (layer.type === "Convolution" || layer.type === "Deconvolution")) {
    shape = blob.shape;
  } else if (index === 0 && layer.type === "InnerProduct") {
    const [num, channels, height, width] = blob.shape;
    shape = num * channels === 1 ? [height, width] : [num, channels * height * width];
  } else {
    shape = [count];
  }
  if (!(blob instanceof DeferredBlob)) return { shape, data: blob.data };
  blob.shape = shape;
  delete blob.legacyShape;
  return blob;
}

function shapeText(shape: number[]): string {
  return `[${shape.join(", ")}]`;
}

/** Checks a weighted layer's blobs against `num_output`, `group`, kernel size and `bias_term`. */
function checkWeights(layer: Layer, file: string | undefined): void {
  const outputs = numOutput(layer);
  if (outputs === undefined) return;
  const mismatch = (message: string) =>
    new ConvertError("WEIGHTS_SHAPE_MISMATCH", `layer "${layer.name}": ${message}`, {
      file,
      layer: layer.name,
    });
  const expectedBlobs = hasBiasTerm(layer) ? 2 : 1;
  if (layer.blobs.length !== expectedBlobs) {
    throw mismatch(
      `the caffemodel has ${layer.blobs.length} blobs, the prototxt (bias_term: ` +
        `${hasBiasTerm(layer)}) needs ${expectedBlobs}`,
    );
  }
  const weights = layer.blobs[0].shape;
  // Deconvolution weights are [C_in, C_out/G, ...]; a transposed InnerProduct's are [K, N].
  const transposed = layer.type === "InnerProduct" &&
    boolParam(layer, "inner_product_param", "transpose", false);
  const channelsOut = layer.type === "Deconvolution"
    ? (weights[1] ?? 0) * groupCount(layer)
    : transposed
    ? weights[1]
    : weights[0];
  if (channelsOut !== outputs) {
    throw mismatch(
      `weight blob ${shapeText(weights)} has ${channelsOut} output channels, ` +
        `num_output is ${outputs}`,
    );
  }
  // 2-D kernels are checked; N-D convolutions load (SPEC §2 only keeps them from being quantized).
  const spatialAxes = layer.paramAll("convolution_param", "kernel_size").length;
  if (layer.type !== "InnerProduct" && weights.length === 4 && spatialAxes <= 2) {
    const [kernelH, kernelW] = kernelSize(layer);
    if (weights[2] !== kernelH || weights[3] !== kernelW) {
      throw mismatch(
        `weight blob ${shapeText(weights)} has a ${weights[2]}x${weights[3]} kernel, ` +
          `the prototxt says ${kernelH}x${kernelW}`,
      );
    }
  }
  if (expectedBlobs === 2) {
    const bias = layer.blobs[1].shape;
    const count = bias.reduce((a, b) => a * b, 1);
    if (count !== outputs) {
      throw mismatch(`bias blob ${shapeText(bias)} has ${count} values, num_output is ${outputs}`);
    }
  }
}
