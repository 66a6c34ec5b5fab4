/**
 * AMCT's simplified quantization configuration (`calibration_config_caffe.proto`, protobuf text
 * format, usually `quant.cfg`), e.g.
 *
 * ```text
 * batch_num: 2
 * activation_offset: true
 * skip_layers: "conv1"
 * skip_layer_types: "Deconvolution"
 * common_config { arq_quantize { channel_wise: true } ifmr_quantize { search_step: 0.01 } }
 * override_layer_types { layer_type: "InnerProduct" calibration_config { hfmg_quantize { num_of_bins: 4096 } } }
 * override_layer_configs { layer_name: "conv2" calibration_config { ifmr_quantize { max_percentile: 0.9999 } } }
 * do_fusion: true
 * skip_fusion_layers: "conv3"
 * ```
 *
 * A layer's settings come from `override_layer_configs`, else `override_layer_types`, else
 * `common_config`; each `calibration_config` is whole (what it leaves out takes AMCT's
 * defaults, not the common config's values).
 *
 * @module
 */

import type { Net } from "../caffe/net.ts";
import { ConvertError, type ErrorCode } from "../errors.ts";
import { caffeType } from "../proto/schema.ts";
import { parseText } from "../proto/text_read.ts";
import { type TextField, TextMessage } from "../proto/tree.ts";
import { rejectUnknownFields } from "../quant/record.ts";
import { type ActivationSettings, DEFAULT_ACTIVATION_SETTINGS } from "./activation.ts";
import {
  type CalibrationConfig,
  type LayerCalibration,
  layerProblem,
  quantizableLayers,
  settingProblem,
} from "./config.ts";

/** Layer types that can be quantized (docs/layers.md). */
const QUANTIZABLE_TYPES = ["Convolution", "Deconvolution", "InnerProduct", "Pooling"];

/** Reads a simplified config against `net`. */
class TextConfigReader {
  constructor(readonly net: Net, readonly file?: string) {}

  fail(code: ErrorCode, message: string, field: TextField, layer?: string): never {
    throw new ConvertError(code, message, {
      file: this.file,
      line: field.line,
      column: field.column,
      layer,
    });
  }

  /** The fields named `name` of `message`. */
  all(message: TextMessage, name: string): TextField[] {
    return message.fields.filter((field) => field.name === name);
  }

  one(message: TextMessage, name: string): TextField | undefined {
    return message.fields.find((field) => field.name === name);
  }

  /** A layer name that must be in the model (and quantizable when `quantized`). */
  layerName(field: TextField, quantized: boolean): string {
    const name = String(field.value);
    const problem = layerProblem(this.net, name);
    if (problem === "unknown") {
      this.fail(
        "CONFIG_UNKNOWN_LAYER",
        `${field.name} names layer "${name}", which the model lacks`,
        field,
        name,
      );
    }
    if (quantized && problem !== undefined) this.fail("CONFIG_BAD_VALUE", problem, field, name);
    return name;
  }

  layerType(field: TextField): string {
    const type = String(field.value);
    if (!QUANTIZABLE_TYPES.includes(type)) {
      this.fail(
        "CONFIG_BAD_VALUE",
        `${field.name} "${type}" is not a layer type that can be quantized ` +
          `(${QUANTIZABLE_TYPES.join(", ")})`,
        field,
      );
    }
    return type;
  }

  /** A whole `CalibrationConfig` message as a layer's settings. */
  calibration(message: TextMessage, withOffset: boolean): LayerCalibration {
    const ifmr = this.one(message, "ifmr_quantize");
    const hfmg = this.one(message, "hfmg_quantize");
    if (ifmr !== undefined && hfmg !== undefined) {
      this.fail("CONFIG_BAD_VALUE", "ifmr_quantize and hfmg_quantize are exclusive", hfmg);
    }
    const activation: ActivationSettings = { ...DEFAULT_ACTIVATION_SETTINGS, withOffset };
    if (hfmg !== undefined) {
      activation.algorithm = "hfmg";
      const bins = this.one(hfmg.value as TextMessage, "num_of_bins");
      if (bins !== undefined) activation.numOfBins = this.number(bins);
    }
    if (ifmr !== undefined) {
      const params = ifmr.value as TextMessage;
      const start = this.one(params, "search_range_start");
      const end = this.one(params, "search_range_end");
      const range: [number, number] = [
        start === undefined ? activation.searchRange[0] : Number(start.value),
        end === undefined ? activation.searchRange[1] : Number(end.value),
      ];
      const problem = settingProblem("search_range", range);
      if (problem !== undefined) this.fail("CONFIG_BAD_VALUE", problem, end ?? start ?? ifmr);
      activation.searchRange = range;
      const step = this.one(params, "search_step");
      if (step !== undefined) activation.searchStep = this.number(step, range);
      else this.number({ ...ifmr, name: "search_step", value: activation.searchStep }, range);
      for (
        const [name, key] of [
          ["max_percentile", "maxPercentile"],
          ["min_percentile", "minPercentile"],
        ] as const
      ) {
        const field = this.one(params, name);
        if (field !== undefined) activation[key] = this.number(field);
      }
    }
    const arq = this.one(message, "arq_quantize");
    const channelWise = arq === undefined
      ? true
      : (arq.value as TextMessage).get("channel_wise") !== false;
    return { activation, channelWise };
  }

  number(field: TextField, searchRange?: readonly number[]): number {
    const value = Number(field.value);
    const problem = settingProblem(field.name, value, searchRange);
    if (problem !== undefined) this.fail("CONFIG_BAD_VALUE", problem, field);
    return value;
  }

  read(text: string): CalibrationConfig {
    const type = caffeType("amct.AMCTConfig");
    const root = parseText(text, type, this.file);
    rejectUnknownFields(root, type, this.file);
    const joint = this.one(root, "joint_quant");
    if (joint?.value === true) {
      this.fail(
        "CONFIG_BAD_VALUE",
        "joint_quant (Eltwise joint quantization) is not supported",
        joint,
      );
    }
    const batchNum = this.one(root, "batch_num");
    const withOffset = root.get("activation_offset") !== false;
    const skip = new Set(
      this.all(root, "skip_layers").map((field) => this.layerName(field, false)),
    );
    const skipTypes = new Set(
      this.all(root, "skip_layer_types").map((field) => this.layerType(field)),
    );
    const common = root.message("common_config");
    const byType = new Map<string, LayerCalibration>();
    for (const field of this.all(root, "override_layer_types")) {
      const message = field.value as TextMessage;
      const typeField = this.required(message, "layer_type", field);
      byType.set(
        this.layerType(typeField),
        this.calibration(
          this.required(message, "calibration_config", field).value as TextMessage,
          withOffset,
        ),
      );
    }
    const byName = new Map<string, LayerCalibration>();
    for (const field of this.all(root, "override_layer_configs")) {
      const message = field.value as TextMessage;
      const name = this.layerName(this.required(message, "layer_name", field), true);
      byName.set(
        name,
        this.calibration(
          this.required(message, "calibration_config", field).value as TextMessage,
          withOffset,
        ),
      );
    }
    const fallback = this.calibration(common ?? new TextMessage(), withOffset);
    const types = new Map(this.net.layers.map((layer) => [layer.name, layer.type]));
    const layers = new Map<string, LayerCalibration>();
    for (const name of quantizableLayers(this.net)) {
      const type = types.get(name)!;
      if (skip.has(name) || skipTypes.has(type)) continue;
      layers.set(name, byName.get(name) ?? byType.get(type) ?? fallback);
    }
    return {
      batchNum: batchNum === undefined ? undefined : this.number(batchNum),
      doFusion: root.get("do_fusion") !== false,
      skipFusionLayers: this.all(root, "skip_fusion_layers").map((field) =>
        this.layerName(field, false)
      ),
      layers,
    };
  }

  /** A required field of `message` (AMCT's `required`), else an error at `parent`. */
  required(message: TextMessage, name: string, parent: TextField): TextField {
    const field = this.one(message, name);
    if (field === undefined) {
      this.fail("CONFIG_BAD_VALUE", `${parent.name} needs its ${name}`, parent);
    }
    return field;
  }
}

/**
 * Reads AMCT's simplified quantization configuration (protobuf text format) for `net`. Errors are
 * ConvertErrors at their line and column: the text reader's (`TEXT_SYNTAX`, `TEXT_UNKNOWN_FIELD`,
 * …), `CONFIG_UNKNOWN_LAYER` for a layer the model lacks, `CONFIG_BAD_VALUE` for a value out of
 * range or a layer or type that cannot be quantized.
 */
export function readTextConfig(text: string, net: Net, file?: string): CalibrationConfig {
  return new TextConfigReader(net, file).read(text);
}
