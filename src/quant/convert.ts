/**
 * `convert_model` in memory (docs/): record → fusion → plan → both output nets → quant
 * info. No file system: the same code runs in Deno, Node, browsers and edge functions.
 *
 * @module
 */

import { type BinaryInput, textArgument } from "../arguments.ts";
import { printPrototxt } from "../caffe/prototxt.ts";
import { isUpgradedV1Layer } from "../caffe/upgrade.ts";
import { quantizeBlocker } from "../caffe/layers.ts";
import { openCaffemodelBlob } from "../caffe/caffemodel_blob.ts";
import { caffemodelSections, writeCaffemodel } from "../caffe/caffemodel_write.ts";
import { hasV1Weights, loadNet, type ModelFiles } from "../caffe/model.ts";
import type { Blob as NetBlob, Net } from "../caffe/net.ts";
import { fuseBatchNorm, type FusedComposite } from "./fuse.ts";
import { checkFloatModel } from "./blobs.ts";
import { planQuantization } from "./plan.ts";
import { quantInfoJson } from "./quant_info.ts";
import { readRecord } from "./record.ts";
import { rewriteNets } from "./rewrite.ts";

import { guardProgress, type ProgressCallback } from "./progress.ts";

export type { ProgressCallback } from "./progress.ts";

/** One line naming the quantizable layers the record leaves out (the first ten of them). */
function stayFloatWarning(names: string[]): string {
  const shown = names.slice(0, 10).map((name) => `"${name}"`).join(", ");
  const more = names.length > 10 ? ` and ${names.length - 10} more` : "";
  return `${names.length} quantizable layer${names.length === 1 ? " has" : "s have"} no ` +
    `record entry and stay${names.length === 1 ? "s" : ""} float: ${shown}${more}`;
}

/** What a conversion did. */
export interface ConvertReport {
  /** Quantized layers in layer order. */
  quantizedLayers: string[];
  /** Conv/Deconv/IP + BatchNorm + Scale composites fused, in layer order. */
  fusedComposites: FusedComposite[];
  /** Quant layers that feed more than one quantized layer, with those layers. */
  sharedQuantLayers: { name: string; consumers: string[] }[];
  /** Things the user should know that are not errors. */
  warnings: string[];
  /**
   * Milliseconds spent per stage. The int8 weights and every check are made in `quantize`; only
   * the float weights of the fake-quant model (and folded weights of fused layers that are not
   * quantized) are computed while the caffemodels are written, so that work counts in
   * `serialize` (in memory) or `write` (files).
   */
  timings: Record<string, number>;
}

/** The converted nets in memory. */
export interface ConvertResult {
  /** The fake-quant net (float weights, Quant/DeQuant layers). */
  fakeQuant: Net;
  /** The deploy net (integer weights, packed dequant scales). */
  deploy: Net;
  /** The `_quant.json` document. */
  quantInfo: string;
  /** What was done. */
  report: ConvertReport;
}

/** Names of the three inputs, used in errors (paths, or labels for in-memory input). */
export interface InputFiles extends ModelFiles {
  /** The record file's name. */
  record?: string;
}

/** Options of {@linkcode convertNet}. */
export interface ConvertNetOptions {
  /** Names of the inputs, for errors. */
  files?: InputFiles;
  /**
   * Called as each stage progresses. A throw, or a rejection of a promise it returns (waited for
   * before the result is returned), fails the conversion with that error.
   */
  onProgress?: ProgressCallback;
  /**
   * Awaited before a layer's blobs are quantized, with those blobs (e.g. to read weights kept in
   * a `Blob`).
   */
  prepare?: (blobs: readonly NetBlob[]) => Promise<void>;
}

/**
 * Converts a loaded float net with the factors of `recordText`. `net` is not changed: the
 * outputs share the parameter trees and blobs of the layers they leave untouched.
 *
 * @example
 * ```ts ignore
 * const net = loadNet(prototxtText, caffemodelBytes);
 * const { fakeQuant, deploy, quantInfo, report } = await convertNet(net, recordText);
 * ```
 */
export async function convertNet(
  net: Net,
  recordText: string,
  options: ConvertNetOptions = {},
): Promise<ConvertResult> {
  const { files = {} } = options;
  const progress = guardProgress(options.onProgress);
  const onProgress = progress.report;
  const timings: Record<string, number> = {};
  let started = performance.now();
  // Each stage reports once as a single step (1 of 1), or unit by unit ending at total of total.
  const finish = (stage: string, reported = false) => {
    const now = performance.now();
    timings[stage] = now - started;
    started = now;
    if (!reported) onProgress(stage, 1, 1);
  };
  checkFloatModel(net, files);
  const record = readRecord(recordText, net, files.record);
  finish("record");
  const skipFusion = new Set(
    [...record.values()].filter((entry) => entry.skipFusion).map((entry) => entry.layer),
  );
  const fusion = await fuseBatchNorm(net, { skipFusion, files });
  finish("fuse");
  const plan = planQuantization(fusion.net, record);
  const nets = await rewriteNets(fusion.net, plan, {
    files,
    onLayer: (done, total) => onProgress("quantize", done, total),
    prepare: options.prepare,
  });
  finish("quantize", plan.layers.size > 0);
  const quantInfo = quantInfoJson(nets.fakeQuant, plan, fusion.composites);
  finish("info");
  const warnings = [...record.values()]
    .filter((entry) => entry.factors === undefined && !entry.skipFusion)
    .map((entry) =>
      `the record for "${entry.layer}" has neither factors nor skip_fusion: true; it does nothing`
    );
  warnings.push(...fusion.warnings, ...nets.warnings);
  const v1Layers = net.layers.filter((layer) => isUpgradedV1Layer(layer.params)).length;
  if (v1Layers > 0) {
    warnings.push(
      `${files.model ?? "the model"} is a legacy V1 net (layers { type: CONVOLUTION }): ` +
        `${v1Layers === net.layers.length ? "its" : `${v1Layers} of its`} layers were ` +
        `upgraded to V2, and the output models are V2 (layer { type: "Convolution" })`,
    );
  }
  if (hasV1Weights(net)) {
    warnings.push(
      `${files.weights ?? "the caffemodel"} is a legacy V1 caffemodel (layers, field 2): its ` +
        `weights were matched to the layers by name, and the output caffemodels are V2`,
    );
  }
  if (plan.layers.size === 0) {
    warnings.push("the record gives factors for no layer: nothing is quantized");
  } else {
    const unrecorded = fusion.net.layers
      .filter((layer) => !plan.layers.has(layer.name) && quantizeBlocker(layer) === undefined)
      .map((layer) => layer.name);
    if (unrecorded.length > 0) warnings.push(stayFloatWarning(unrecorded));
  }
  await progress.settled();
  return {
    fakeQuant: nets.fakeQuant,
    deploy: nets.deploy,
    quantInfo,
    report: {
      quantizedLayers: [...plan.layers.keys()],
      fusedComposites: fusion.composites,
      sharedQuantLayers: plan.groups
        .filter((group) => group.consumers.length > 1)
        .map(({ name, consumers }) => ({ name, consumers })),
      warnings,
      timings,
    },
  };
}

/** The inputs of {@linkcode convertInMemory}. */
export interface ConvertInput {
  /** The float model's prototxt text. */
  model: string;
  /** The float model's caffemodel bytes: a `Uint8Array`, an `ArrayBuffer` or another view. */
  weights: BinaryInput;
  /** The record file's text. */
  record: string;
  /** Names of the inputs, for errors. */
  files?: InputFiles;
  /**
   * Called as each stage progresses. A throw, or a rejection of a promise it returns (waited for
   * before the result is returned), fails the conversion with that error.
   */
  onProgress?: ProgressCallback;
}

/** The five outputs' contents (docs/formats.md names without the prefix). */
export interface ConvertedFiles {
  /** `fake_quant_model.prototxt` */
  fakeQuantModel: string;
  /** `fake_quant_weights.caffemodel` */
  fakeQuantWeights: Uint8Array;
  /** `deploy_model.prototxt` */
  deployModel: string;
  /** `deploy_weights.caffemodel` */
  deployWeights: Uint8Array;
  /** `quant.json` */
  quantInfo: string;
}

/** What {@linkcode convertInMemory} returns. */
export interface ConvertOutput {
  /** The five outputs. */
  files: ConvertedFiles;
  /** What was done. */
  report: ConvertReport;
}

/** The outputs of a conversion before the caffemodels are written. */
export interface ConvertedNets {
  /** The fake-quant net, for `fake_quant_weights.caffemodel`. */
  fakeQuant: Net;
  /** The deploy net, for `deploy_weights.caffemodel`. */
  deploy: Net;
  /** The three text outputs. */
  texts: Pick<ConvertedFiles, "fakeQuantModel" | "deployModel" | "quantInfo">;
  /** What was done (timings up to printing the texts, as `serialize`). */
  report: ConvertReport;
}

/** What {@linkcode convertToNets} calls while it converts, for inputs not held in memory. */
export interface ConvertHooks {
  /**
   * Called (and awaited) with the float net as soon as it is loaded (a file reader replaces blobs
   * left in the file there).
   */
  loaded?: (net: Net) => void | Promise<void>;
  /** Awaited before a layer's blobs are quantized, with those blobs. */
  prepare?: (blobs: readonly NetBlob[]) => Promise<void>;
}

/**
 * `convert_model` on in-memory inputs up to the caffemodels: loads and converts the net (every
 * check and the int8 weights included) and prints the text outputs. The fake-quant and folded
 * float weights are computed when the nets are written.
 */
export async function convertToNets(
  input: ConvertInput,
  hooks: ConvertHooks = {},
): Promise<ConvertedNets> {
  const { files = {}, onProgress } = input;
  let started = performance.now();
  const net = loadNet(input.model, input.weights, files);
  await hooks.loaded?.(net);
  const record = textArgument(input.record, "the record", files.record);
  onProgress?.("load", 1, 1);
  const loadMs = performance.now() - started;
  const result = await convertNet(net, record, { files, onProgress, prepare: hooks.prepare });
  started = performance.now();
  const texts = {
    fakeQuantModel: printPrototxt(result.fakeQuant),
    deployModel: printPrototxt(result.deploy),
    quantInfo: result.quantInfo,
  };
  const { report } = result;
  return {
    fakeQuant: result.fakeQuant,
    deploy: result.deploy,
    texts,
    report: {
      ...report,
      timings: { load: loadMs, ...report.timings, serialize: performance.now() - started },
    },
  };
}

/**
 * `convert_model` on in-memory inputs: loads the net, converts it and serialises the five
 * outputs. The same inputs always give byte-identical outputs.
 *
 * @example
 * ```ts ignore
 * const { files, report } = await convertInMemory({ model, weights, record });
 * ```
 */
export async function convertInMemory(input: ConvertInput): Promise<ConvertOutput> {
  const progress = guardProgress(input.onProgress);
  const { fakeQuant, deploy, texts, report } = await convertToNets({
    ...input,
    onProgress: progress.report,
  });
  const started = performance.now();
  const converted: ConvertedFiles = {
    fakeQuantModel: texts.fakeQuantModel,
    fakeQuantWeights: writeCaffemodel(fakeQuant),
    deployModel: texts.deployModel,
    deployWeights: writeCaffemodel(deploy),
    quantInfo: texts.quantInfo,
  };
  progress.report("serialize", 1, 1);
  // A callback's rejected promise fails the conversion (never an unhandled rejection).
  await progress.settled();
  const serializeMs = report.timings.serialize + performance.now() - started;
  return {
    files: converted,
    report: { ...report, timings: { ...report.timings, serialize: serializeMs } },
  };
}

/** The five outputs as `Blob`s (docs/formats.md names without the prefix). */
export type ConvertedBlobs = Record<keyof ConvertedFiles, Blob>;

/** What {@linkcode convertToBlobs} returns. */
export interface ConvertBlobsOutput {
  /** The five outputs. */
  files: ConvertedBlobs;
  /** What was done. */
  report: ConvertReport;
}

/**
 * The inputs of {@linkcode convertToBlobs}: those of {@linkcode convertInMemory}, and the
 * caffemodel may also be a `Blob` (a `File` from a file input, a fetched `Response.blob()`).
 */
export interface ConvertBlobsInput extends Omit<ConvertInput, "weights"> {
  /** The float model's caffemodel: bytes, or a `Blob` read range by range. */
  weights: BinaryInput | Blob;
}

/**
 * {@linkcode convertInMemory} with the outputs as `Blob`s: the caffemodels are made in bounded
 * pieces, each copied into a `Blob` part as it is made, so that no output caffemodel is ever
 * held whole as a JavaScript array (a browser keeps Blob data out of the page's memory: ready
 * for a download link, `blob.stream()`, or `await blob.bytes()` when the bytes are wanted).
 * A caffemodel given as a `Blob` is not read whole either: the weights of its Convolution,
 * Deconvolution and InnerProduct layers are read from it one layer at a time, when that layer
 * is quantized or written; in a dedicated worker (`FileReaderSync`), 16 MiB at a time as the
 * kernels stream them, so that no layer's weights are held whole. The bytes are those of
 * {@linkcode convertInMemory}.
 *
 * @example
 * ```ts ignore
 * const { files } = await convertToBlobs({ model, weights: fileInput.files[0], record });
 * link.href = URL.createObjectURL(files.deployWeights);
 * ```
 */
export async function convertToBlobs(input: ConvertBlobsInput): Promise<ConvertBlobsOutput> {
  const progress = guardProgress(input.onProgress);
  const source = input.weights instanceof Blob
    ? await openCaffemodelBlob(input.weights)
    : undefined;
  const prepare = source?.prepare ?? (() => Promise.resolve());
  const { fakeQuant, deploy, texts, report } = await convertToNets(
    {
      ...input,
      weights: source?.bytes ?? input.weights as BinaryInput,
      onProgress: progress.report,
    },
    { loaded: source?.loaded, prepare: source?.prepare },
  );
  const started = performance.now();
  const caffemodelBlob = async (net: Net) => {
    // A piece is valid only until the one after the next is made: each is copied at once.
    const parts: Blob[] = [];
    for (const { layer, pieces } of caffemodelSections(net)) {
      if (layer !== undefined) await prepare(layer.blobs);
      for (const piece of pieces) parts.push(new Blob([piece as BlobPart]));
    }
    await prepare([]);
    return new Blob(parts, { type: "application/octet-stream" });
  };
  const text = (content: string) => new Blob([content], { type: "text/plain" });
  const files: ConvertedBlobs = {
    fakeQuantModel: text(texts.fakeQuantModel),
    fakeQuantWeights: await caffemodelBlob(fakeQuant),
    deployModel: text(texts.deployModel),
    deployWeights: await caffemodelBlob(deploy),
    quantInfo: text(texts.quantInfo),
  };
  progress.report("serialize", 1, 1);
  await progress.settled();
  const serializeMs = report.timings.serialize + performance.now() - started;
  return { files, report: { ...report, timings: { ...report.timings, serialize: serializeMs } } };
}
