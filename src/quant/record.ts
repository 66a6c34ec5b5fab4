/**
 * The record file (SPEC §1, §2, §8): AMCT's `ScaleOffsetRecord` in protobuf text format, read and
 * checked against the net it quantizes. Every problem is a {@linkcode ConvertError} with the
 * record file, the line and column of the entry or field at fault, and the layer name.
 *
 * @module
 */

import type protobuf from "npm:protobufjs@8.0.0";
import { ConvertError, type ErrorCode } from "../errors.ts";
import { numOutput, quantizeBlocker } from "../caffe/layers.ts";
import type { Layer, Net } from "../caffe/net.ts";
import { typeInfo } from "../proto/field_info.ts";
import { caffeType } from "../proto/schema.ts";
import { parseText } from "../proto/text_read.ts";
import { type TextField, TextMessage } from "../proto/tree.ts";

/** The quantization factors of one layer, as float32 values. */
export interface QuantFactors {
  /** Activation scale `scale_d` (finite, > 0). */
  scaleD: number;
  /** Activation offset `offset_d` (-128..127). */
  offsetD: number;
  /**
   * Weight scales `scale_w`: one value, or one per output channel. `[1]` for AVE pooling, whose
   * dequant scale is `scale_d · 1.0`.
   */
  scaleW: Float32Array;
}

/** One checked record entry. */
export interface LayerRecord {
  /** The layer the entry names. */
  layer: string;
  /** The factors; `undefined` when the entry only carries `skip_fusion` (no quantization). */
  factors?: QuantFactors;
  /** `skip_fusion`: keep this layer's BatchNorm and Scale unfused. */
  skipFusion: boolean;
}

/** The checked record: one entry per layer name, in record order. */
export type QuantRecord = Map<string, LayerRecord>;

/** Fields that carry quantization factors; an entry with none of them only sets skip_fusion. */
const FACTOR_FIELDS = ["scale_d", "offset_d", "scale_w", "offset_w"];

/**
 * Reads `recordText` and checks every entry against `net` (the float net, before fusion). The
 * record schema is AMCT's and fixed: a field it does not define is a TEXT_UNKNOWN_FIELD error.
 *
 * @example
 * ```ts ignore
 * const record = readRecord('record { key: "conv1" value { scale_d: 0.5 offset_d: 0 ' +
 *   'scale_w: 0.01 offset_w: 0 } }', net, "record.txt");
 * record.get("conv1")?.factors?.scaleD; // 0.5
 * ```
 */
export function readRecord(recordText: string, net: Net, file?: string): QuantRecord {
  const recordType = caffeType("ScaleOffsetRecord");
  const root = parseText(recordText, recordType, file);
  rejectUnknownFields(root, recordType, file);
  const entries = root.fields.filter((field) => field.name === "record");
  if (entries.length === 0) {
    throw new ConvertError("RECORD_EMPTY", "the record file has no record entries", { file });
  }
  const layers = new Map(net.layers.map((layer) => [layer.name, layer]));
  const records: QuantRecord = new Map();
  const firstLines = new Map<string, number | undefined>();
  for (const entry of entries) {
    const { key, value } = entryParts(entry, file);
    if (records.has(key)) {
      const first = firstLines.get(key);
      throw new ConvertError(
        "RECORD_DUPLICATE_KEY",
        `a second record for layer "${key}"` + (first ? ` (the first is on line ${first})` : ""),
        { file, line: entry.line, column: entry.column, layer: key },
      );
    }
    records.set(key, checkEntry(entry, key, value, layers, file));
    firstLines.set(key, entry.line);
  }
  return records;
}

/**
 * Throws TEXT_UNKNOWN_FIELD at the first field, in file order and at any depth, that the record
 * schema does not define: AMCT fixes that schema, so an unknown name is a mistake (a misspelt
 * `skip_fusion` would otherwise be ignored without a word).
 */
function rejectUnknownFields(message: TextMessage, type: protobuf.Type, file?: string): void {
  const known = typeInfo(type).byName;
  for (const field of message.fields) {
    const messageType = known.get(field.name)?.messageType;
    if (field.unknown) {
      throw new ConvertError(
        "TEXT_UNKNOWN_FIELD",
        `${type.name} has no field "${field.name}" (its fields: ${[...known.keys()].join(", ")})`,
        { file, line: field.line, column: field.column },
      );
    }
    if (field.value instanceof TextMessage && messageType !== undefined) {
      rejectUnknownFields(field.value, messageType, file);
    }
  }
}

/** The key and value of a `record { key value }` entry; both must be present. */
function entryParts(entry: TextField, file?: string): { key: string; value: TextMessage } {
  const message = entry.value instanceof TextMessage ? entry.value : new TextMessage();
  const key = message.get("key");
  const value = message.message("value");
  if (typeof key === "string" && value !== undefined) return { key, value };
  throw new ConvertError(
    "RECORD_KEY_WITHOUT_VALUE",
    typeof key === "string"
      ? `the record for "${key}" has no value`
      : "a record entry has no key (layer name)",
    {
      file,
      line: entry.line,
      column: entry.column,
      layer: typeof key === "string" ? key : undefined,
    },
  );
}

/** Checks one entry's value against the layer its key names. */
function checkEntry(
  entry: TextField,
  key: string,
  value: TextMessage,
  layers: Map<string, Layer>,
  file?: string,
): LayerRecord {
  const fail = (code: ErrorCode, text: string, field: TextField = entry): never => {
    throw new ConvertError(code, `record "${key}": ${text}`, {
      file,
      line: field.line,
      column: field.column,
      layer: key,
    });
  };
  const layer = layers.get(key);
  if (layer === undefined) {
    fail("RECORD_UNKNOWN_LAYER", `the model has no layer "${key}"`, keyField(entry));
  }
  const fields = fieldsByName(value);
  const shiftBit = fields.get("shift_bit")?.at(-1);
  if (shiftBit !== undefined) {
    fail("RECORD_SHIFT_BIT", "shift_bit is not supported by convert_model", shiftBit);
  }
  const skipFusion = fields.get("skip_fusion")?.at(-1)?.value === true;
  if (!FACTOR_FIELDS.some((name) => fields.has(name))) return { layer: key, skipFusion };
  const blocker = quantizeBlocker(layer!);
  if (blocker !== undefined) {
    fail(
      "RECORD_NOT_QUANTIZABLE",
      `layer "${key}" (${layer!.type}) cannot be quantized: ${blocker}`,
    );
  }
  const valueField = (entry.value as TextMessage).entry("value")!;
  return { layer: key, skipFusion, factors: checkFactors(layer!, fields, valueField, fail) };
}

/** The fields of a message by name, each name's entries in order (one pass over long lists). */
function fieldsByName(message: TextMessage): Map<string, TextField[]> {
  const byName = new Map<string, TextField[]>();
  for (const field of message.fields) {
    const entries = byName.get(field.name);
    if (entries === undefined) byName.set(field.name, [field]);
    else entries.push(field);
  }
  return byName;
}

/** The `key` field of an entry (for its place), or the entry itself. */
function keyField(entry: TextField): TextField {
  return (entry.value as TextMessage).entry("key") ?? entry;
}

/**
 * Checks the factor fields of a quantizable layer's record (`fields`, by name) and returns them
 * as float32.
 */
function checkFactors(
  layer: Layer,
  fields: Map<string, TextField[]>,
  valueField: TextField,
  fail: (code: ErrorCode, text: string, field?: TextField) => never,
): QuantFactors {
  const scaleDField = fields.get("scale_d")?.at(-1);
  if (scaleDField === undefined) fail("RECORD_BAD_SCALE", "scale_d is missing", valueField);
  const scaleD = Math.fround(Number(scaleDField!.value));
  if (!(Number.isFinite(scaleD) && scaleD > 0)) {
    fail(
      "RECORD_BAD_SCALE",
      `scale_d ${scaleDField!.value} is not a finite number > 0`,
      scaleDField,
    );
  }
  if (!Number.isFinite(Math.fround(1 / scaleD))) {
    fail(
      "RECORD_BAD_SCALE",
      `scale_d ${
        scaleDField!.value
      } is too small: the quant scale 1/scale_d does not fit a float32`,
      scaleDField,
    );
  }
  const offsetDField = fields.get("offset_d")?.at(-1);
  const offsetD = offsetDField === undefined ? 0 : Number(offsetDField.value);
  if (!(offsetD >= -128 && offsetD <= 127)) {
    fail("RECORD_BAD_OFFSET_D", `offset_d ${offsetD} is outside -128..127`, offsetDField);
  }
  const scaleWFields = fields.get("scale_w") ?? [];
  const scaleW = new Float32Array(scaleWFields.map((field) => Number(field.value)));
  scaleW.forEach((scale, index) => {
    if (!(Number.isFinite(scale) && scale > 0)) {
      fail(
        "RECORD_BAD_SCALE",
        `scale_w[${index}] ${scaleWFields[index].value} is not a finite number > 0`,
        scaleWFields[index],
      );
    }
    const deqScale = Math.fround(scaleD * scale);
    if (!(Number.isFinite(deqScale) && deqScale > 0)) {
      fail(
        "RECORD_BAD_SCALE",
        `scale_d · scale_w[${index}] = ${scaleD * scale} does not fit a float32 > 0`,
        scaleWFields[index],
      );
    }
  });
  const offsetWFields = fields.get("offset_w") ?? [];
  for (const [index, field] of offsetWFields.entries()) {
    if (field.value !== 0) {
      fail("RECORD_BAD_OFFSET_W", `offset_w[${index}] is ${field.value}, not 0`, field);
    }
  }
  const lengthProblem = scaleWLengthProblem(layer, scaleW, offsetWFields.length);
  if (lengthProblem !== undefined) {
    fail("RECORD_BAD_LENGTH", lengthProblem, scaleWFields[0] ?? offsetWFields[0] ?? valueField);
  }
  return { scaleD, offsetD, scaleW: scaleW.length === 0 ? new Float32Array([1]) : scaleW };
}

/** Why `scale_w`/`offset_w` have the wrong lengths for `layer`, or `undefined` when they fit. */
function scaleWLengthProblem(
  layer: Layer,
  scaleW: Float32Array,
  offsetWCount: number,
): string | undefined {
  const scaleWCount = scaleW.length;
  if (scaleWCount !== offsetWCount) {
    return `scale_w has ${scaleWCount} values but offset_w has ${offsetWCount}`;
  }
  if (layer.type === "Pooling") {
    if (scaleWCount === 0 || (scaleWCount === 1 && scaleW[0] === 1)) return undefined;
    return "an AVE Pooling record takes no scale_w, or scale_w: 1 with offset_w: 0";
  }
  if (layer.type === "InnerProduct") {
    return scaleWCount === 1
      ? undefined
      : `an InnerProduct takes exactly 1 scale_w (per-tensor), not ${scaleWCount}`;
  }
  const channels = numOutput(layer);
  if (scaleWCount === 1 || scaleWCount === channels) return undefined;
  return `scale_w has ${scaleWCount} values; ${layer.type} "${layer.name}" takes 1 or ` +
    `num_output (${channels})`;
}
