/**
 * The calibration driver (docs/calibration.md): runs the (fused) float net over calibration samples,
 * calibrates the input of every layer to quantize with its algorithm, computes ARQ weight scales,
 * and writes AMCT's record.
 *
 * Memory: samples stream through in batches; the engine holds the live blobs of one batch. HFMG
 * and min/max keep a fixed state per blob. IFMR keeps the non-zero values of its blobs while
 * `memoryBudget` allows and finishes after one pass; the blobs beyond the budget are calibrated
 * exactly all the same, by two more passes over the data (histogram, then candidate errors).
 *
 * @module
 */

import { quantizeBlocker } from "../caffe/layers.ts";
import { type Layer, type Net, netInputs } from "../caffe/net.ts";
import { runNet, type Tensor } from "../engine/run.ts";
import { ConvertError } from "../errors.ts";
import { caffeType } from "../proto/schema.ts";
import { printText } from "../proto/text_print.ts";
import { TextMessage } from "../proto/tree.ts";
import { checkFloatModel } from "../quant/blobs.ts";
import { convertNet } from "../quant/convert.ts";
import { foldedLayers, fuseBatchNorm } from "../quant/fuse.ts";
import { weightScales } from "../quant/make_record.ts";
import { type CalibrateKernels, calibrateKernels } from "../wasm/calibrate.ts";
import { quantKernels } from "../wasm/quant.ts";
import {
  type ActivationAlgorithm,
  type ActivationCollector,
  activationCollector,
  type StoreBudget,
} from "./activation.ts";
import {
  type CalibrationConfig,
  defaultCalibrationConfig,
  type LayerCalibration,
} from "./config.ts";
import { SamplePasses, type SampleSource } from "./samples.ts";
import { rectifiedOutput, SearchCollector, searchMeasures, type SearchResult } from "./search.ts";

export type { Sample, SampleSource } from "./samples.ts";

/** Default bytes IFMR may use to keep activation values (256 MiB). */
export const DEFAULT_MEMORY_BUDGET = 256 * 1024 * 1024;

/** Where a calibration is, for progress displays. */
export interface CalibrationProgress {
  /** Pass over the data, from 0; IFMR blobs beyond the memory budget need passes 1 and 2. */
  pass: number;
  /** Samples done in this pass. */
  samples: number;
  /** Samples per pass, when known (an array, `batchNum`, or after the first pass). */
  totalSamples?: number;
  /** The layer whose input is being calibrated (the engine is at it). */
  layer?: string;
  /** Estimated seconds left in this pass, when the total is known. */
  etaSeconds?: number;
}

/** Options of {@linkcode calibrate}. */
export interface CalibrateOptions {
  /** What to calibrate and how (default: every quantizable layer with AMCT's defaults). */
  config?: CalibrationConfig;
  /** Samples per forward pass (default 1). */
  batchSize?: number;
  /** Bytes IFMR may use to keep values between passes (default {@linkcode DEFAULT_MEMORY_BUDGET}). */
  memoryBudget?: number;
  /** Called after every batch and whenever the engine reaches a layer to calibrate. */
  onProgress?: (progress: CalibrationProgress) => void;
}

/** What calibration found for one quantized layer. */
export interface LayerCalibrationStats {
  /** The layer. */
  layer: string;
  /** The blob calibrated (its `bottom[0]`). */
  blob: string;
  /** The other layers that read the same value and share these factors. */
  sharedWith: string[];
  /** Activation algorithm. */
  algorithm: ActivationAlgorithm;
  /** Smallest and largest value seen. */
  range: [number, number];
  /** The range the Quant layer represents with the chosen factors. */
  clip: [number, number];
  /** `scale_d`. */
  scaleD: number;
  /** `offset_d`. */
  offsetD: number;
  /** `scale_w` (one, or one per output channel). */
  scaleW: number[];
  /** The blob's C, H, W (1 for missing axes), as the record carries them. */
  shape: [number, number, number];
  /** Values seen (elements over every sample). */
  values: number;
}

/** What {@linkcode calibrate} returns. */
export interface CalibrationResult {
  /** The record file text (AMCT's `ScaleOffsetRecord` text format). */
  record: string;
  /** Per quantized layer, in net order. */
  layers: LayerCalibrationStats[];
  /** Samples used (per pass). */
  samples: number;
  /** Passes made over the data. */
  passes: number;
  /** Notes for the user (e.g. `skip_fusion` on a layer that heads no composite). */
  warnings: string[];
}

/** A group of quantized layers that read the same value with the same settings. */
interface Group {
  /** The first reader in net order: where the value is observed. */
  observer: string;
  /** Every reader. */
  layers: string[];
  blob: string;
  algorithm: ActivationAlgorithm;
  collector: ActivationCollector;
  shape?: number[];
}

/** The C, H, W of a blob shape [N, C, H, W] (1 for missing axes). */
function recordShape(shape: number[]): [number, number, number] {
  return [shape[1] ?? 1, shape[2] ?? 1, shape[3] ?? 1];
}

/**
 * Groups the layers to quantize by the value they read: the blob of `bottom[0]` as last written
 * before the layer (in-place layers before it count, those after it do not), and their
 * activation settings.
 */
function groupReaders(
  net: Net,
  config: CalibrationConfig,
  makeCollector: (settings: LayerCalibration, readers: Layer[]) => ActivationCollector,
): Map<string, Group> {
  const lastWriter = new Map<string, number>();
  const groups = new Map<string, { settings: LayerCalibration; readers: Layer[] }>();
  net.layers.forEach((layer, index) => {
    const settings = config.layers.get(layer.name);
    if (settings !== undefined) {
      const blob = layer.bottoms[0];
      const key = JSON.stringify([blob, lastWriter.get(blob) ?? -1, settings.activation]);
      const group = groups.get(key);
      if (group === undefined) groups.set(key, { settings, readers: [layer] });
      else group.readers.push(layer);
    }
    for (const top of layer.tops) lastWriter.set(top, index);
  });
  const byObserver = new Map<string, Group>();
  for (const { settings, readers } of groups.values()) {
    byObserver.set(readers[0].name, {
      observer: readers[0].name,
      layers: readers.map((layer) => layer.name),
      blob: readers[0].bottoms[0],
      algorithm: settings.activation.algorithm,
      collector: makeCollector(settings, readers),
    });
  }
  return byObserver;
}

/**
 * The collector of a group: the search's (with its readers that it measures, each with its
 * configured weight granularity) or that of an algorithm looking at the input alone.
 */
function groupCollector(
  kernels: CalibrateKernels,
  net: Net,
  config: CalibrationConfig,
  settings: LayerCalibration,
  readers: Layer[],
  budget: StoreBudget,
): ActivationCollector {
  const { activation } = settings;
  if (activation.algorithm !== "search") {
    return activationCollector(kernels, activation.algorithm, activation, budget);
  }
  const ifmr = activationCollector(kernels, "ifmr", activation, budget);
  const measured = readers.filter(searchMeasures).map((layer) => ({
    layer,
    perTensor: !config.layers.get(layer.name)!.channelWise || layer.type === "InnerProduct",
    rectified: rectifiedOutput(net, layer),
  }));
  return new SearchCollector(kernels, ifmr, measured, activation.withOffset);
}

/** Checks a configuration against `net`: its layers exist and may be quantized. */
function checkConfig(net: Net, config: CalibrationConfig): void {
  const layers = new Map(net.layers.map((layer) => [layer.name, layer]));
  for (const name of [...config.layers.keys(), ...config.skipFusionLayers]) {
    const layer = layers.get(name);
    if (layer === undefined) {
      throw new ConvertError(
        "CONFIG_UNKNOWN_LAYER",
        `the configuration names layer "${name}", which the model lacks`,
        { layer: name },
      );
    }
    const blocker = config.layers.has(name) ? quantizeBlocker(layer) : undefined;
    if (blocker !== undefined) {
      throw new ConvertError(
        "RECORD_NOT_QUANTIZABLE",
        `the configuration quantizes layer "${name}", but ${blocker}`,
        { layer: name },
      );
    }
  }
}

/** The first layers of every Conv/Deconv/IP + BatchNorm + Scale composite of `net`. */
function compositeHeads(net: Net): Set<string> {
  return new Set([...foldedLayers(net, new Set()).values()].map((composite) => composite.layer));
}

/**
 * Calibrates `net` (a float model) on `samples` and returns AMCT's record with per-layer
 * statistics (docs/calibration.md). Each quantized layer's `bottom[0]`, as the layer reads it, is calibrated
 * with its configured algorithm (IFMR by default; layers reading the same value share one
 * calibration and identical factors); weights get ARQ scales; Conv + BatchNorm + Scale
 * composites are fused first unless the configuration says otherwise, and then carry
 * `skip_fusion: true`. The record carries each blob's C, H, W as AMCT writes them.
 *
 * `samples` is read once per pass; a source that is neither an array nor a function returning a
 * fresh iterable is kept in memory (inputs only) when IFMR needs more than one pass.
 *
 * @example
 * ```ts ignore
 * const net = loadNet(prototxtText, caffemodelBytes);
 * const samples = [new Map([["data", { shape: [1, 3, 32, 32], data: pixels }]])];
 * const { record, layers } = await calibrate(net, samples, {
 *   onProgress: ({ pass, samples }) => console.error(`pass ${pass}: ${samples} samples`),
 * });
 * const result = await convert({ model: prototxtText, weights: caffemodelBytes, record });
 * ```
 */
export async function calibrate(
  net: Net,
  samples: SampleSource,
  options: CalibrateOptions = {},
): Promise<CalibrationResult> {
  checkFloatModel(net);
  const config = options.config ?? defaultCalibrationConfig(net);
  checkConfig(net, config);
  const heads = compositeHeads(net);
  const skipFusion = new Set(
    config.doFusion ? config.skipFusionLayers : [...heads, ...config.skipFusionLayers],
  );
  if (config.layers.size === 0 && ![...skipFusion].some((name) => heads.has(name))) {
    throw new ConvertError("CALIBRATION_NO_DATA", "the configuration quantizes no layer");
  }
  const fusion = await fuseBatchNorm(net, { skipFusion });
  const fused = fusion.net;
  const kernels = await calibrateKernels();
  const budget: StoreBudget = { bytesLeft: options.memoryBudget ?? DEFAULT_MEMORY_BUDGET };
  const groups = groupReaders(
    fused,
    config,
    (settings, readers) => groupCollector(kernels, fused, config, settings, readers, budget),
  );
  const batchSize = options.batchSize ?? 1;
  const limit = config.batchNum === undefined ? Infinity : config.batchNum * batchSize;
  const mayNeedMorePasses = [...groups.values()].some((group) =>
    group.algorithm === "ifmr" || group.algorithm === "search"
  );
  const passes = new SamplePasses(samples, batchSize, limit, mayNeedMorePasses);
  let totalSamples = Array.isArray(samples) ? Math.min(samples.length, limit) : undefined;
  let pass = 0;
  for (; [...groups.values()].some((group) => group.collector.needsPass(pass)); pass++) {
    const active = new Map(
      [...groups].filter(([, group]) => group.collector.needsPass(pass)),
    );
    const done = await runPass(fused, passes, pass, active, totalSamples, options.onProgress);
    if (pass === 0) {
      totalSamples = done;
      checkObserved(fused, groups, done);
    }
    for (const group of active.values()) group.collector.endPass(pass);
  }
  let stats = await layerStats(fused, config, groups);
  let record = recordText(net, stats, skipFusion, heads);
  const searches = [...groups.values()].filter((group) =>
    group.collector instanceof SearchCollector
  );
  if (searches.length > 0) {
    const { fakeQuant } = await convertNet(net, record);
    await quantizedPass(fakeQuant, passes, pass, searches, totalSamples, options.onProgress);
    for (const group of searches) (group.collector as SearchCollector).refine();
    pass++;
    stats = await layerStats(fused, config, groups);
    record = recordText(net, stats, skipFusion, heads);
  }
  return {
    record,
    layers: stats,
    samples: totalSamples ?? 0,
    passes: pass,
    warnings: fusion.warnings,
  };
}

/** One pass over the data; returns the number of samples. */
async function runPass(
  net: Net,
  passes: SamplePasses,
  pass: number,
  active: Map<string, Group>,
  totalSamples: number | undefined,
  onProgress: CalibrateOptions["onProgress"],
): Promise<number> {
  const started = Date.now();
  let samples = 0;
  const progress = (layer?: string) => {
    if (onProgress === undefined) return;
    const elapsed = (Date.now() - started) / 1000;
    const etaSeconds = totalSamples !== undefined && samples > 0
      ? elapsed / samples * (totalSamples - samples)
      : undefined;
    onProgress({ pass, samples, totalSamples, layer, etaSeconds });
  };
  const inputs = netInputs(net).map((input) => input.name);
  // Only the layers calibrated are observed, so the run keeps its fusion and output buffer.
  const observeOnly = new Set(active.keys());
  for await (const { batch, samples: count } of passes.batches(pass)) {
    const missing = inputs.find((name) => !batch.has(name));
    if (missing !== undefined) {
      throw new ConvertError(
        "BAD_INPUT",
        `calibration sample ${samples} has no tensor for the net input "${missing}"`,
      );
    }
    await runNet(net, {
      inputs: batch,
      observeOnly,
      observe(layer: Layer, bottoms: readonly Tensor[]) {
        const group = active.get(layer.name);
        if (group === undefined) return;
        progress(layer.name);
        group.shape ??= bottoms[0].shape;
        group.collector.add(pass, bottoms[0].data, bottoms[0].shape);
      },
    });
    samples += count;
    progress();
  }
  return samples;
}

/**
 * The search's last pass: runs `fakeQuant` (the net quantized with the search's first choice)
 * over the data and gives each search group its blob as the Quant layer before its first reader
 * reads it there, every quantized layer before it in effect.
 */
async function quantizedPass(
  fakeQuant: Net,
  passes: SamplePasses,
  pass: number,
  searches: Group[],
  totalSamples: number | undefined,
  onProgress: CalibrateOptions["onProgress"],
): Promise<void> {
  const byQuantTop = new Map<string, SearchCollector>();
  const layers = new Map(fakeQuant.layers.map((layer) => [layer.name, layer]));
  for (const group of searches) {
    const reader = layers.get(group.observer);
    if (reader !== undefined) {
      byQuantTop.set(reader.bottoms[0], group.collector as SearchCollector);
    }
  }
  const observeOnly = new Set(
    fakeQuant.layers
      .filter((layer) => layer.type === "Quant" && byQuantTop.has(layer.tops[0]))
      .map((layer) => layer.name),
  );
  let samples = 0;
  for await (const { batch, samples: count } of passes.batches(pass)) {
    await runNet(fakeQuant, {
      inputs: batch,
      observeOnly,
      observe(layer: Layer, bottoms: readonly Tensor[]) {
        if (layer.type !== "Quant") return;
        const collector = byQuantTop.get(layer.tops[0]);
        collector?.addQuantized(bottoms[0].data, bottoms[0].shape);
      },
    });
    samples += count;
    onProgress?.({ pass, samples, totalSamples });
  }
}

/** After the first pass: every group saw finite values. */
function checkObserved(net: Net, groups: Map<string, Group>, samples: number): void {
  if (samples === 0) {
    throw new ConvertError("CALIBRATION_NO_DATA", "there are no calibration samples");
  }
  for (const group of groups.values()) {
    const { min, max, count } = group.collector.seen();
    const layer = group.observer;
    if (count === 0) {
      const type = net.layers.find((candidate) => candidate.name === layer)?.type;
      throw new ConvertError(
        "CALIBRATION_NO_DATA",
        `layer "${layer}" (${type}) to calibrate was not run by the simulator (an earlier layer ` +
          `it depends on cannot be simulated); skip it in the configuration`,
        { layer },
      );
    }
    if (!Number.isFinite(min) || !Number.isFinite(max)) {
      throw new ConvertError(
        "CALIBRATION_NOT_FINITE",
        `the input "${group.blob}" of layer "${layer}" holds NaN or infinity on the calibration ` +
          `data (range ${min} … ${max})`,
        { layer },
      );
    }
  }
}

/** Per quantized layer of `fused`, in net order: activation factors and ARQ weight scales. */
async function layerStats(
  fused: Net,
  config: CalibrationConfig,
  groups: Map<string, Group>,
): Promise<LayerCalibrationStats[]> {
  const quant = await quantKernels();
  const groupOf = new Map<string, Group>();
  for (const group of groups.values()) {
    for (const layer of group.layers) groupOf.set(layer, group);
  }
  const stats: LayerCalibrationStats[] = [];
  for (const layer of fused.layers) {
    const settings = config.layers.get(layer.name);
    const group = groupOf.get(layer.name);
    if (settings === undefined || group === undefined) continue;
    const result = group.collector.result();
    const perTensor = !settings.channelWise || layer.type === "InnerProduct";
    const arq = layer.blobs.length === 0
      ? [1]
      : weightScales(quant, layer, result.scaleD, perTensor);
    const scaleW = (result as Partial<SearchResult>).weightScales?.get(layer.name) ?? arq;
    stats.push({
      layer: layer.name,
      blob: group.blob,
      sharedWith: group.layers.filter((name) => name !== layer.name),
      algorithm: group.algorithm,
      range: [result.min, result.max],
      clip: result.clip,
      scaleD: result.scaleD,
      offsetD: result.offsetD,
      scaleW,
      shape: recordShape(group.shape ?? []),
      values: result.count,
    });
  }
  return stats;
}

/**
 * The record: an entry per quantized layer in the order of `net` (scale_d, offset_d, scale_w,
 * offset_w, channels, height, width, and skip_fusion when its composite stays unfused), and an
 * entry with only `skip_fusion: true` for each unfused composite whose layer is not quantized.
 */
function recordText(
  net: Net,
  stats: LayerCalibrationStats[],
  skipFusion: Set<string>,
  heads: Set<string>,
): string {
  const byLayer = new Map(stats.map((entry) => [entry.layer, entry]));
  const root = new TextMessage();
  for (const layer of net.layers) {
    const entry = byLayer.get(layer.name);
    const unfused = skipFusion.has(layer.name) && heads.has(layer.name);
    if (entry === undefined && !unfused) continue;
    const value = new TextMessage();
    if (entry !== undefined) {
      value.add("scale_d", entry.scaleD);
      value.add("offset_d", entry.offsetD);
      for (const scale of entry.scaleW) value.add("scale_w", scale);
      for (const _ of entry.scaleW) value.add("offset_w", 0);
      const [channels, height, width] = entry.shape;
      value.add("channels", channels);
      value.add("height", height);
      value.add("width", width);
    }
    if (unfused) value.add("skip_fusion", true);
    root.add(
      "record",
      new TextMessage([{ name: "key", value: layer.name }, { name: "value", value }]),
    );
  }
  return printText(root, caffeType("ScaleOffsetRecord"));
}
