/**
 * Legacy V1 layers (`layers { type: CONVOLUTION blobs_lr: 1 }`) to V2 layers
 * (`layer { type: "Convolution" param { lr_mult: 1 } }`), the way Caffe's own
 * `UpgradeV1LayerParameter` does it.
 *
 * @module
 */

import { ConvertError } from "../errors.ts";
import { caffeType } from "../proto/schema.ts";
import { type FieldValue, type TextField, TextMessage } from "../proto/tree.ts";

/** V1 `LayerType` enum names and the V2 type strings Caffe gives them (plus AMCT's two). */
const V1_TYPES: Record<string, string> = {
  NONE: "",
  ABSVAL: "AbsVal",
  ACCURACY: "Accuracy",
  ARGMAX: "ArgMax",
  BNLL: "BNLL",
  CONCAT: "Concat",
  CONTRASTIVE_LOSS: "ContrastiveLoss",
  CONVOLUTION: "Convolution",
  DECONVOLUTION: "Deconvolution",
  DATA: "Data",
  DROPOUT: "Dropout",
  DUMMY_DATA: "DummyData",
  EUCLIDEAN_LOSS: "EuclideanLoss",
  ELTWISE: "Eltwise",
  EXP: "Exp",
  FLATTEN: "Flatten",
  HDF5_DATA: "HDF5Data",
  HDF5_OUTPUT: "HDF5Output",
  HINGE_LOSS: "HingeLoss",
  IM2COL: "Im2col",
  IMAGE_DATA: "ImageData",
  INFOGAIN_LOSS: "InfogainLoss",
  INNER_PRODUCT: "InnerProduct",
  LRN: "LRN",
  MEMORY_DATA: "MemoryData",
  MULTINOMIAL_LOGISTIC_LOSS: "MultinomialLogisticLoss",
  MVN: "MVN",
  POOLING: "Pooling",
  POWER: "Power",
  RELU: "ReLU",
  SIGMOID: "Sigmoid",
  SIGMOID_CROSS_ENTROPY_LOSS: "SigmoidCrossEntropyLoss",
  SILENCE: "Silence",
  SOFTMAX: "Softmax",
  SOFTMAX_LOSS: "SoftmaxWithLoss",
  SPLIT: "Split",
  SLICE: "Slice",
  TANH: "TanH",
  WINDOW_DATA: "WindowData",
  THRESHOLD: "Threshold",
  QUANT: "Quant",
  DEQUANT: "DeQuant",
};

/**
 * The V2 type string of a V1 `LayerType` enum name, e.g. `"CONVOLUTION"` → `"Convolution"`,
 * `"SOFTMAX_LOSS"` → `"SoftmaxWithLoss"`, `"NONE"` → `""`.
 *
 * @throws {ConvertError} `TEXT_UNKNOWN_ENUM` for a name that is not a V1 layer type.
 */
export function v1TypeName(enumName: string): string {
  if (!Object.hasOwn(V1_TYPES, enumName)) {
    throw new ConvertError("TEXT_UNKNOWN_ENUM", `"${enumName}" is not a V1 layer type`);
  }
  return V1_TYPES[enumName];
}

/** The V1 enum name of a type given as a number (binary input with an enum the schema lacks). */
function v1EnumName(value: FieldValue): string {
  if (typeof value !== "number") return String(value);
  const values = caffeType("caffe.V1LayerParameter").info.byName.get("type")!.enumById!;
  return values.get(value) ?? String(value);
}

/** ParamSpec fields built from V1 per-blob lists, in ParamSpec's field order. */
const PARAM_SOURCES: [v1: string, v2: string][] = [
  ["param", "name"],
  ["blob_share_mode", "share_mode"],
  ["blobs_lr", "lr_mult"],
  ["weight_decay", "decay_mult"],
];

/** The trees {@linkcode upgradeV1Layer} made, so that a net's V1 origin can be reported. */
const upgradedTrees = new WeakSet<TextMessage>();

/**
 * True when `params` is a tree that {@linkcode upgradeV1Layer} made: the layer was written in the
 * legacy V1 form. A clone of such a tree is not marked.
 */
export function isUpgradedV1Layer(params: TextMessage): boolean {
  return upgradedTrees.has(params);
}

/**
 * Upgrades a `V1LayerParameter` tree to a `LayerParameter` tree: the enum `type` becomes its V2
 * string, `param` names, `blob_share_mode`, `blobs_lr` and `weight_decay` become `param { name
 * share_mode lr_mult decay_mult }` entries, and every other field (`bottom`, `top`, `include`,
 * `*_param`, `blobs`, …) is copied. Known fields come out in LayerParameter field-number order
 * (as Caffe prints an upgraded net), unknown fields after them in input order. Source places
 * (`line`, `column`, `raw`) are kept. The input is not modified.
 *
 * @throws {ConvertError} `TEXT_UNKNOWN_ENUM` (with line and column when known) for a type that
 * is not a V1 layer type.
 */
export function upgradeV1Layer(v1: TextMessage): TextMessage {
  const v2Fields = caffeType("caffe.LayerParameter").info.byName;
  const known: { id: number; field: TextField }[] = [];
  const unknown: TextField[] = [];
  const params: TextMessage[] = [];
  let paramsAt: TextField | undefined;
  const counters = new Map<string, number>();
  for (const field of v1.fields) {
    const source = field.unknown ? undefined : PARAM_SOURCES.find(([name]) => name === field.name);
    if (source !== undefined) {
      const index = counters.get(source[0]) ?? 0;
      counters.set(source[0], index + 1);
      while (params.length <= index) params.push(new TextMessage());
      params[index].fields.push({ ...field, name: source[1] });
      paramsAt ??= field;
      continue;
    }
    let upgraded: TextField = field.value instanceof TextMessage
      ? { ...field, value: field.value.clone() }
      : field;
    if (!field.unknown && field.name === "type") {
      try {
        upgraded = {
          name: "type",
          value: v1TypeName(v1EnumName(field.value)),
          line: field.line,
          column: field.column,
        };
      } catch (error) {
        throw error instanceof ConvertError
          ? new ConvertError(error.code, error.message, { line: field.line, column: field.column })
          : error;
      }
    }
    const v2Field = field.unknown ? undefined : v2Fields.get(field.name);
    if (v2Field === undefined) unknown.push({ ...upgraded, unknown: true });
    else known.push({ id: v2Field.id, field: upgraded });
  }
  if (params.length > 0) {
    const order = PARAM_SOURCES.map(([, name]) => name);
    const id = v2Fields.get("param")!.id;
    for (const param of params) {
      param.fields.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
      known.push({
        id,
        field: { name: "param", value: param, line: paramsAt?.line, column: paramsAt?.column },
      });
    }
  }
  // Array.prototype.sort is stable: repeated fields keep their order.
  known.sort((a, b) => a.id - b.id);
  const upgraded = new TextMessage([...known.map((entry) => entry.field), ...unknown]);
  upgradedTrees.add(upgraded);
  return upgraded;
}

/**
 * `MIXED_LAYER_FORMATS` at `field`, the first `layer` (or `layers`) entry after one of the other
 * kind: Caffe refuses to upgrade such a net ("the definition includes both 'layer' and 'layers'
 * fields"), as the two kinds have no defined order between them.
 */
export function mixedFormats(
  field: { name: string; line?: number; column?: number },
  file?: string,
  offset?: number,
): ConvertError {
  const other = field.name === "layer" ? "layers" : "layer";
  return new ConvertError(
    "MIXED_LAYER_FORMATS",
    `this net has both legacy V1 \`layers\` and V2 \`layer\` entries (this \`${field.name}\` ` +
      `follows a \`${other}\`), which Caffe refuses; write every layer in one form`,
    { file, line: field.line, column: field.column, offset },
  );
}
