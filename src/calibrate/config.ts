/**
 * What a calibration does, per layer: AMCT's quantization configuration (docs/calibration.md
 * "Configuration") in one resolved form, whichever file it came from (src/calibrate/config_json.ts
 * and config_text.ts read AMCT's two formats into it).
 *
 * @module
 */

import { quantizeBlocker } from "../caffe/layers.ts";
import type { Net } from "../caffe/net.ts";
import { type ActivationSettings, DEFAULT_ACTIVATION_SETTINGS } from "./activation.ts";

/** How one layer is calibrated. */
export interface LayerCalibration {
  /** Activation algorithm and its parameters (`activation_quant_params`). */
  activation: ActivationSettings;
  /** ARQ per output channel (true) or per tensor (`weight_quant_params.channel_wise`). */
  channelWise: boolean;
}

/** A resolved calibration configuration. */
export interface CalibrationConfig {
  /**
   * `batch_num`: forward passes of calibration data to use, each of `batchSize` samples
   * (AMCT: batches of the net's batch size); undefined uses every sample given.
   */
  batchNum?: number;
  /** `do_fusion`: fuse Conv + BatchNorm + Scale before calibrating (default true). */
  doFusion: boolean;
  /** `skip_fusion_layers`: first layers of composites to leave unfused. */
  skipFusionLayers: string[];
  /** The layers to quantize, by name, in net order, with their settings. */
  layers: Map<string, LayerCalibration>;
}

/** Options of {@linkcode defaultCalibrationConfig}. */
export interface DefaultConfigOptions {
  /** Layers not to quantize. */
  skip?: Iterable<string>;
  /** Activation settings to change from AMCT's defaults for every layer (e.g. the algorithm). */
  activation?: Partial<ActivationSettings>;
}

/** The layers of `net` that docs/layers.md allows quantizing, in net order. */
export function quantizableLayers(net: Net): string[] {
  return net.layers.filter((layer) => quantizeBlocker(layer) === undefined).map((layer) =>
    layer.name
  );
}

/**
 * The configuration without a file: every quantizable layer of `net` except `skip`, with AMCT's
 * defaults (IFMR, with offset, channel-wise ARQ; InnerProduct weights always have one scale).
 *
 * @example
 * ```ts ignore
 * const config = defaultCalibrationConfig(net, { activation: { algorithm: "hfmg" } });
 * ```
 */
export function defaultCalibrationConfig(
  net: Net,
  options: DefaultConfigOptions = {},
): CalibrationConfig {
  const skip = new Set(options.skip ?? []);
  const activation = { ...DEFAULT_ACTIVATION_SETTINGS, ...options.activation };
  const layers = new Map<string, LayerCalibration>();
  for (const name of quantizableLayers(net)) {
    if (!skip.has(name)) layers.set(name, { activation, channelWise: true });
  }
  return { doFusion: true, skipFusionLayers: [], layers };
}

/** AMCT's HFMG bin counts. */
const HFMG_BIN_COUNTS: readonly number[] = [1024, 2048, 4096, 8192];

/** Most IFMR candidates a search range and step may give. */
const MAX_IFMR_CANDIDATES = 4096;

/**
 * Why `value` is not a usable value of the AMCT setting `name` (`max_percentile`,
 * `min_percentile`, `search_step` given `searchRange`, `search_range`, `num_of_bins`,
 * `batch_num`, `num_bits`), or undefined when it is.
 */
export function settingProblem(
  name: string,
  value: number | readonly number[],
  searchRange?: readonly number[],
): string | undefined {
  const number = typeof value === "number" ? value : NaN;
  switch (name) {
    case "max_percentile":
    case "min_percentile":
      return number > 0.5 && number <= 1 ? undefined : `${name} must be in (0.5, 1], not ${value}`;
    case "search_range": {
      const [start, end] = value as number[];
      const fine = Array.isArray(value) && value.length === 2 && start > 0 && end > start &&
        Number.isFinite(end);
      return fine ? undefined : `search_range must be [start, end] with 0 < start < end`;
    }
    case "search_step": {
      const [start, end] = searchRange ?? [0, 0];
      if (!(number > 0)) return `search_step must be > 0, not ${value}`;
      return (end - start) / number <= MAX_IFMR_CANDIDATES
        ? undefined
        : `search_step ${value} gives more than ${MAX_IFMR_CANDIDATES} candidates`;
    }
    case "num_of_bins":
      return HFMG_BIN_COUNTS.includes(number)
        ? undefined
        : `num_of_bins must be one of ${HFMG_BIN_COUNTS.join(", ")}, not ${value}`;
    case "batch_num":
      return Number.isInteger(number) && number >= 1
        ? undefined
        : `batch_num must be an integer >= 1, not ${value}`;
    case "num_bits":
      return number === 8 ? undefined : `num_bits must be 8 (INT8), not ${value}`;
  }
  return undefined;
}

/**
 * Why layer `name` cannot be named by a configuration's per-layer settings: `unknown` when `net`
 * lacks it, else the reason docs/layers.md gives when it cannot be quantized; undefined when it can.
 */
export function layerProblem(net: Net, name: string): "unknown" | string | undefined {
  const layer = net.layers.find((candidate) => candidate.name === name);
  if (layer === undefined) return "unknown";
  const blocker = quantizeBlocker(layer);
  return blocker === undefined ? undefined : `layer "${name}" cannot be quantized: ${blocker}`;
}
