/**
 * AMCT's JSON quantization configuration, the file `create_quant_config` writes: read (strictly,
 * every error at its line and column) and written for a model so users can edit it.
 *
 * ```json
 * { "version": 1, "batch_num": 1, "activation_offset": true, "do_fusion": true,
 *   "skip_fusion_layers": [],
 *   "conv1": { "quant_enable": true,
 *     "activation_quant_params": { "num_bits": 8, "max_percentile": 0.999999,
 *       "min_percentile": 0.999999, "search_range": [0.7, 1.3], "search_step": 0.01,
 *       "act_algo": "ifmr" },
 *     "weight_quant_params": { "num_bits": 8, "wts_algo": "arq_quantize", "channel_wise": true } } }
 * ```
 *
 * @module
 */

import type { Net } from "../caffe/net.ts";
import { ConvertError, type ErrorCode } from "../errors.ts";
import {
  ACTIVATION_ALGORITHMS,
  type ActivationAlgorithm,
  type ActivationSettings,
  DEFAULT_ACTIVATION_SETTINGS,
} from "./activation.ts";
import {
  type CalibrationConfig,
  defaultCalibrationConfig,
  type DefaultConfigOptions,
  type LayerCalibration,
  layerProblem,
  quantizableLayers,
  settingProblem,
} from "./config.ts";
import {
  type JsonEntry,
  type JsonNode,
  type JsonPlace,
  parseJsonWithPlaces,
} from "./json_places.ts";

/** Fields of `activation_quant_params` by algorithm (besides `act_algo`, `num_bits`, `asymmetric`). */
const ALGORITHM_FIELDS: Record<ActivationAlgorithm, readonly string[]> = {
  ifmr: ["max_percentile", "min_percentile", "search_range", "search_step"],
  hfmg: ["num_of_bins"],
  minmax: [],
  // caffe-quant's search runs IFMR beside it and takes its parameters.
  search: ["max_percentile", "min_percentile", "search_range", "search_step"],
};

/** Reads a JSON config against `net`. */
class JsonConfigReader {
  constructor(readonly net: Net, readonly file?: string) {}

  fail(code: ErrorCode, message: string, place: JsonPlace, layer?: string): never {
    throw new ConvertError(code, message, { file: this.file, ...place, layer });
  }

  /** The entries of an object node, with only `known` keys allowed. */
  fields(node: JsonNode, what: string, known: readonly string[]): Map<string, JsonEntry> {
    if (node.kind !== "object") {
      this.fail("CONFIG_BAD_VALUE", `${what} must be an object`, node.place);
    }
    const fields = new Map<string, JsonEntry>();
    for (const entry of node.entries) {
      if (!known.includes(entry.key)) {
        this.fail(
          "CONFIG_UNKNOWN_FIELD",
          `${what} has no field "${entry.key}" (its fields: ${known.join(", ")})`,
          entry.keyPlace,
        );
      }
      fields.set(entry.key, entry);
    }
    return fields;
  }

  boolean(entry: JsonEntry | undefined, fallback: boolean): boolean {
    if (entry === undefined) return fallback;
    if (entry.value.kind !== "boolean") {
      this.fail("CONFIG_BAD_VALUE", `${entry.key} must be true or false`, entry.value.place);
    }
    return entry.value.value;
  }

  number(entry: JsonEntry, searchRange?: readonly number[]): number {
    if (entry.value.kind !== "number") {
      this.fail("CONFIG_BAD_VALUE", `${entry.key} must be a number`, entry.value.place);
    }
    this.check(entry, entry.value.value, searchRange);
    return entry.value.value;
  }

  check(entry: JsonEntry, value: number | number[], searchRange?: readonly number[]): void {
    const problem = settingProblem(entry.key, value, searchRange);
    if (problem !== undefined) this.fail("CONFIG_BAD_VALUE", problem, entry.value.place);
  }

  string(entry: JsonEntry, allowed: readonly string[]): string {
    const { value } = entry;
    if (value.kind !== "string" || !allowed.includes(value.value)) {
      this.fail(
        "CONFIG_BAD_VALUE",
        `${entry.key} must be one of ${allowed.map((item) => `"${item}"`).join(", ")}`,
        value.place,
      );
    }
    return value.value;
  }

  /** `skip_fusion_layers`: names of layers of the model. */
  layerNames(entry: JsonEntry): string[] {
    if (entry.value.kind !== "array") {
      this.fail(
        "CONFIG_BAD_VALUE",
        `${entry.key} must be an array of layer names`,
        entry.value.place,
      );
    }
    return entry.value.items.map((item) => {
      if (item.kind !== "string") {
        this.fail("CONFIG_BAD_VALUE", `${entry.key} must hold layer names`, item.place);
      }
      if (!this.net.layers.some((layer) => layer.name === item.value)) {
        this.fail(
          "CONFIG_UNKNOWN_LAYER",
          `${entry.key} names layer "${item.value}", which the model lacks`,
          item.place,
          item.value,
        );
      }
      return item.value;
    });
  }

  read(text: string): CalibrationConfig {
    const root = parseJsonWithPlaces(text, this.file);
    if (root.kind !== "object") {
      this.fail("CONFIG_BAD_VALUE", "the configuration must be a JSON object", root.place);
    }
    const globals = new Map<string, JsonEntry>();
    const layerEntries: JsonEntry[] = [];
    for (const entry of root.entries) {
      if (entry.value.kind === "object") layerEntries.push(entry);
      else globals.set(entry.key, entry);
    }
    const known = [
      "version",
      "batch_num",
      "activation_offset",
      "joint_quant",
      "do_fusion",
      "skip_fusion_layers",
    ];
    for (const entry of globals.values()) {
      if (!known.includes(entry.key)) {
        this.fail(
          "CONFIG_UNKNOWN_FIELD",
          `the configuration has no field "${entry.key}" (its fields: ${known.join(", ")}, ` +
            `and one object per layer)`,
          entry.keyPlace,
        );
      }
    }
    const version = globals.get("version");
    if (version !== undefined) {
      const value = this.number(version);
      if (!Number.isInteger(value) || value < 1) {
        this.fail("CONFIG_BAD_VALUE", "version must be an integer >= 1", version.value.place);
      }
    }
    const jointQuant = globals.get("joint_quant");
    if (this.boolean(jointQuant, false)) {
      this.fail(
        "CONFIG_BAD_VALUE",
        "joint_quant (Eltwise joint quantization) is not supported",
        jointQuant!.value.place,
      );
    }
    const batchNum = globals.get("batch_num");
    const withOffset = this.boolean(globals.get("activation_offset"), true);
    const layers = new Map<string, LayerCalibration>();
    const requested = new Map<string, LayerCalibration>();
    for (const entry of layerEntries) {
      const problem = layerProblem(this.net, entry.key);
      if (problem === "unknown") {
        this.fail(
          "CONFIG_UNKNOWN_LAYER",
          `the configuration names layer "${entry.key}", which the model lacks`,
          entry.keyPlace,
          entry.key,
        );
      }
      if (problem !== undefined) this.fail("CONFIG_BAD_VALUE", problem, entry.keyPlace, entry.key);
      const calibration = this.layer(entry, withOffset);
      if (calibration !== undefined) requested.set(entry.key, calibration);
    }
    for (const name of quantizableLayers(this.net)) {
      const calibration = requested.get(name);
      if (calibration !== undefined) layers.set(name, calibration);
    }
    const skipFusion = globals.get("skip_fusion_layers");
    return {
      batchNum: batchNum === undefined ? undefined : this.number(batchNum),
      doFusion: this.boolean(globals.get("do_fusion"), true),
      skipFusionLayers: skipFusion === undefined ? [] : this.layerNames(skipFusion),
      layers,
    };
  }

  /** A layer's object; undefined when `quant_enable` is false. */
  layer(entry: JsonEntry, withOffset: boolean): LayerCalibration | undefined {
    const what = `layer "${entry.key}"`;
    const fields = this.fields(entry.value, what, [
      "quant_enable",
      "activation_quant_params",
      "weight_quant_params",
    ]);
    const enabled = this.boolean(fields.get("quant_enable"), true);
    const activationEntry = fields.get("activation_quant_params");
    const activation = activationEntry === undefined
      ? { ...DEFAULT_ACTIVATION_SETTINGS, withOffset }
      : this.activation(activationEntry, `${what}: activation_quant_params`, withOffset);
    const weightEntry = fields.get("weight_quant_params");
    let channelWise = true;
    if (weightEntry !== undefined) {
      const weights = this.fields(weightEntry.value, `${what}: weight_quant_params`, [
        "num_bits",
        "wts_algo",
        "channel_wise",
      ]);
      const numBits = weights.get("num_bits");
      if (numBits !== undefined) this.number(numBits);
      const algorithm = weights.get("wts_algo");
      if (algorithm !== undefined) this.string(algorithm, ["arq_quantize"]);
      channelWise = this.boolean(weights.get("channel_wise"), true);
    }
    return enabled ? { activation, channelWise } : undefined;
  }

  activation(entry: JsonEntry, what: string, withOffset: boolean): ActivationSettings {
    const common = ["act_algo", "num_bits", "asymmetric"];
    const all = [...common, ...Object.values(ALGORITHM_FIELDS).flat()];
    const fields = this.fields(entry.value, what, all);
    const algoEntry = fields.get("act_algo");
    const algorithm = algoEntry === undefined
      ? "ifmr"
      : this.string(algoEntry, ACTIVATION_ALGORITHMS) as ActivationAlgorithm;
    for (const [name, field] of fields) {
      if (common.includes(name) || ALGORITHM_FIELDS[algorithm].includes(name)) continue;
      this.fail(
        "CONFIG_UNKNOWN_FIELD",
        `${what}: "${name}" is not a parameter of act_algo "${algorithm}"`,
        field.keyPlace,
      );
    }
    const numBits = fields.get("num_bits");
    if (numBits !== undefined) this.number(numBits);
    const settings: ActivationSettings = {
      ...DEFAULT_ACTIVATION_SETTINGS,
      algorithm,
      withOffset: this.boolean(fields.get("asymmetric"), withOffset),
    };
    const range = fields.get("search_range");
    if (range !== undefined) {
      const node = range.value;
      const values = node.kind === "array"
        ? node.items.map((item) => item.kind === "number" ? item.value : NaN)
        : [];
      this.check(range, values);
      settings.searchRange = [values[0], values[1]];
    }
    for (
      const [name, key] of [
        ["max_percentile", "maxPercentile"],
        ["min_percentile", "minPercentile"],
        ["search_step", "searchStep"],
        ["num_of_bins", "numOfBins"],
      ] as const
    ) {
      const field = fields.get(name);
      if (field !== undefined) settings[key] = this.number(field, settings.searchRange);
    }
    if (range !== undefined && fields.get("search_step") === undefined) {
      this.check({ ...range, key: "search_step" }, settings.searchStep, settings.searchRange);
    }
    return settings;
  }
}

/**
 * Reads AMCT's JSON quantization configuration (what `create_quant_config` writes) for `net`.
 * Layers without an object, or with `quant_enable: false`, are not quantized. An unknown field, a
 * layer the model lacks or cannot quantize, a value of the wrong type or out of range is a
 * ConvertError at its line and column (`CONFIG_SYNTAX`, `CONFIG_UNKNOWN_FIELD`,
 * `CONFIG_UNKNOWN_LAYER`, `CONFIG_BAD_VALUE`).
 */
export function readJsonConfig(text: string, net: Net, file?: string): CalibrationConfig {
  return new JsonConfigReader(net, file).read(text);
}

/** Options of {@linkcode writeJsonConfig}. */
export interface WriteConfigOptions extends DefaultConfigOptions {
  /** `batch_num` (default 1, as AMCT). */
  batchNum?: number;
}

/**
 * The JSON configuration `create_quant_config` would write for `net`: every quantizable layer,
 * with `quant_enable: false` for those in `options.skip`, AMCT's defaults (or
 * `options.activation`), `channel_wise: false` for InnerProduct and Pooling.
 *
 * @example
 * ```ts ignore
 * const json = writeJsonConfig(net, { skip: ["conv1"] });
 * const config = readJsonConfig(json, net); // conv1 is not quantized
 * ```
 */
export function writeJsonConfig(net: Net, options: WriteConfigOptions = {}): string {
  const skip = new Set(options.skip ?? []);
  for (const name of skip) {
    if (layerProblem(net, name) === "unknown") {
      throw new ConvertError(
        "CONFIG_UNKNOWN_LAYER",
        `layer "${name}" to skip is not in the model`,
        { layer: name },
      );
    }
  }
  const config = defaultCalibrationConfig(net, { activation: options.activation });
  const withOffset = options.activation?.withOffset ?? true;
  const document: Record<string, unknown> = {
    version: 1,
    batch_num: options.batchNum ?? 1,
    activation_offset: withOffset,
    do_fusion: true,
    skip_fusion_layers: [],
  };
  const types = new Map(net.layers.map((layer) => [layer.name, layer.type]));
  for (const [name, { activation }] of config.layers) {
    const params: Record<string, unknown> = { num_bits: 8, act_algo: activation.algorithm };
    if (activation.algorithm === "ifmr" || activation.algorithm === "search") {
      params.max_percentile = activation.maxPercentile;
      params.min_percentile = activation.minPercentile;
      params.search_range = [...activation.searchRange];
      params.search_step = activation.searchStep;
    } else if (activation.algorithm === "hfmg") {
      params.num_of_bins = activation.numOfBins;
    }
    const type = types.get(name);
    document[name] = {
      quant_enable: !skip.has(name),
      activation_quant_params: params,
      weight_quant_params: {
        num_bits: 8,
        wts_algo: "arq_quantize",
        channel_wise: type !== "InnerProduct" && type !== "Pooling",
      },
    };
  }
  return JSON.stringify(document, null, 4) + "\n";
}
