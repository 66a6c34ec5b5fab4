/**
 * A float model as Caffe loads it: the prototxt's net with the caffemodel's blobs attached by
 * layer name (docs/formats.md, Caffe's `CopyTrainedLayersFrom`), legacy blob dims turned into the shapes
 * Caffe gives them, and every weighted layer checked against its prototxt parameters.
 *
 * @module
 */

import { type BinaryInput, bytesArgument, textArgument } from "../arguments.ts";
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
  /**
   * True when the caller gives up the weights' bytes (read for this, kept for nothing else): the
   * caffemodel's unaligned float data are aligned in place instead of copied on first use
   * (see `readCaffemodel`'s `alignInPlace`). Default false: the bytes are never written.
   */
  alignInPlace?: boolean;
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
 * Parses `modelText` and attaches the blobs of `weights` by layer name. `weights` may be a
 * `Uint8Array`, an `ArrayBuffer` or another view of bytes (`BAD_ARGUMENT` for anything else).
 *
 * @example
 * ```ts ignore
 * const net = loadNet(await Deno.readTextFile("deploy.prototxt"),
 *   await Deno.readFile("weights.caffemodel"), { model: "deploy.prototxt" });
 * ```
 */
export function loadNet(
  modelText: string,
  weightsBytes: BinaryInput,
  files: ModelFiles = {},
): Net {
  textArgument(modelText, "the model", files.model);
  const weights = bytesArgument(weightsBytes, "the weights", files.weights);
  let net: Net;
  let trainedNet: Net;
  try {
    net = readPrototxt(modelText, files.model);
    trainedNet = readCaffemodel(weights, files.weights, { alignInPlace: files.alignInPlace });
  } catch (error) {
    throw withSwapHint(error, modelText, weights, files);
  }
  const trained = new Map<string, Layer>();
  for (const layer of trainedNet.layers) trained.set(layer.name, layer);
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

/**
 * `error` (from reading the prototxt or the caffemodel) with a hint when the inputs look swapped:
 * a weights file that is text (a prototxt, or a record file), given where the binary caffemodel
 * belongs, perhaps with the caffemodel given as the prototxt.
 */
function withSwapHint(
  error: unknown,
  modelText: string,
  weights: Uint8Array,
  files: ModelFiles,
): unknown {
  if (!(error instanceof ConvertError)) return error;
  const weightsText = textStart(weights);
  if (weightsText === undefined) return error;
  const weightsName = files.weights ?? "the weights";
  const modelName = files.model ?? "the model";
  const what = /^\s*record\s*\{/m.test(weightsText) ? "a record file (text)" : "a prototxt (text)";
  const modelBinary = modelText.slice(0, 4096).includes("\0");
  const hint = modelBinary
    ? `${modelName} looks like a binary caffemodel and ${weightsName} like ${what}: are ` +
      "`model_file` and `weights_file` swapped?"
    : `${weightsName} looks like ${what}, not a binary caffemodel: are ` +
      (what.startsWith("a record")
        ? "`weights_file` and `record_file` swapped?"
        : "`model_file` and `weights_file` swapped?");
  // A text file read as a caffemodel often "ends early": that guess would mislead here.
  const message = error.message.replace(
    /: the file ends at \d+ bytes .* truncated download\?$/,
    "",
  );
  return new ConvertError(error.code, `${message}; ${hint}`, error.place());
}

/**
 * The first 4 KiB of `bytes` as text when they look like a text file (no NUL byte, almost only
 * printable characters, starting with a letter or `#` after blanks), else `undefined`.
 */
function textStart(bytes: Uint8Array): string | undefined {
  const head = bytes.subarray(0, 4096);
  if (head.length === 0 || head.includes(0)) return undefined;
  let printable = 0;
  for (const byte of head) {
    if (byte >= 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d) printable++;
  }
  if (printable < head.length * 0.98) return undefined;
  const text = new TextDecoder().decode(head);
  return /^\s*[A-Za-z#]/.test(text) ? text : undefined;
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
  } else if (blob.shape.slice(0, -1).every((dim) => dim === 1)) {
    shape = [count];
  } else {
    // Caffe compares a legacy blob with a 1-D parameter as [1, 1, 1, n]; keep other dims as
    // they are, for the checks below to refuse.
    shape = blob.shape;
  }
  if (!(blob instanceof DeferredBlob)) return { shape, data: blob.data };
  blob.shape = shape;
  delete blob.legacyShape;
  return blob;
}

function shapeText(shape: number[]): string {
  return `[${shape.join(", ")}]`;
}

/**
 * Checks a layer's blobs as Caffe's `LayerSetUp` and `CopyTrainedLayersFrom` do: weighted layers
 * against `num_output`, `group`, kernel size and `bias_term`; BatchNorm's three blobs (mean and
 * variance of one length, a factor of one value); a one-bottom Scale's γ (and β with
 * `bias_term: true`, of γ's shape).
 *
 * @throws {ConvertError} `WEIGHTS_SHAPE_MISMATCH` naming the layer, with `file`.
 */
export function checkWeights(layer: Layer, file: string | undefined): void {
  const mismatch = (message: string) =>
    new ConvertError("WEIGHTS_SHAPE_MISMATCH", `layer "${layer.name}": ${message}`, {
      file,
      layer: layer.name,
    });
  if (layer.type === "BatchNorm") return checkBatchNorm(layer, mismatch);
  if (layer.type === "Scale" && layer.bottoms.length === 1) return checkScale(layer, mismatch);
  const outputs = numOutput(layer);
  if (outputs === undefined) return;
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
  if (layer.type === "Deconvolution" && (weights[0] ?? 0) % groupCount(layer) !== 0) {
    throw mismatch(
      `weight blob ${shapeText(weights)} has ${weights[0]} input channels, which group ` +
        `${groupCount(layer)} does not divide`,
    );
  }
  if (expectedBlobs === 2) {
    const bias = layer.blobs[1].shape;
    if (bias.length !== 1 || bias[0] !== outputs) {
      throw mismatch(`bias blob ${shapeText(bias)} is not [${outputs}] (num_output)`);
    }
  }
}

/** BatchNorm: mean [C], variance [C], factor [1] (Caffe's blobs; C ≥ 1). */
function checkBatchNorm(layer: Layer, mismatch: (message: string) => ConvertError): void {
  if (layer.blobs.length !== 3) {
    throw mismatch(
      `a BatchNorm has 3 blobs (mean, variance, factor), the caffemodel has ${layer.blobs.length}`,
    );
  }
  const [mean, variance, factor] = layer.blobs.map((blob) => blob.shape);
  if (mean.length !== 1 || mean[0] < 1 || shapeText(variance) !== shapeText(mean)) {
    throw mismatch(
      `BatchNorm mean ${shapeText(mean)} and variance ${shapeText(variance)} must be one ` +
        `[C] shape`,
    );
  }
  if (factor.reduce((a, b) => a * b, 1) !== 1) {
    throw mismatch(`the BatchNorm factor blob ${shapeText(factor)} must hold one value`);
  }
}

/** One-bottom Scale: γ, and β of γ's shape exactly when `bias_term: true`. */
function checkScale(layer: Layer, mismatch: (message: string) => ConvertError): void {
  const biasTerm = boolParam(layer, "scale_param", "bias_term", false);
  const expected = biasTerm ? 2 : 1;
  if (layer.blobs.length !== expected) {
    throw mismatch(
      `the caffemodel has ${layer.blobs.length} blobs, the prototxt (bias_term: ${biasTerm}) ` +
        `needs ${expected}`,
    );
  }
  const [gamma, beta] = layer.blobs.map((blob) => blob.shape);
  if (gamma.reduce((a, b) => a * b, 1) < 1) {
    throw mismatch(`the Scale blob ${shapeText(gamma)} is empty`);
  }
  if (beta !== undefined && shapeText(beta) !== shapeText(gamma)) {
    throw mismatch(
      `the Scale bias ${shapeText(beta)} is not of the scale's shape ${shapeText(gamma)}`,
    );
  }
}
