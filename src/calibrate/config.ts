/**
 * What a calibration does, per layer: AMCT's quantization configuration (SPEC §11
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

/** The layers of `net` that SPEC §2 allows quantizing, in net order. */
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
