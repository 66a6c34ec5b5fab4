/**
 * The record file (docs/formats.md, docs/layers.md, docs/errors.md): AMCT's `ScaleOffsetRecord` in protobuf text format, read and
 * checked against the net it quantizes. Every problem is a {@linkcode ConvertError} with the
 * record file, the line and column of the entry or field at fault, and the layer name.
 *
 * @module
 */

import type { MessageType } from "../proto/field_info.ts";
import { ConvertError, type ErrorCode } from "../errors.ts";
import { numOutput, quantizeBlocker } from "../caffe/layers.ts";
import type { Layer, Net } from "../caffe/net.ts";
import { caffeType } from "../proto/schema.ts";
import { parseText } from "../proto/text_read.ts";
import { type TextField, TextMessage } from "../proto/tree.ts";
import { foldedLayers, type FusedComposite } from "./fuse.ts";
import { type Place, type PlacedValues, type RecordEntry, scanRecord } from "./record_scan.ts";

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

/**
 * Reads `recordText` and checks every entry against `net` (the float net, before fusion). The
 * record schema is AMCT's and fixed: a field it does not define is a TEXT_UNKNOWN_FIELD error.
 * Factors for a BatchNorm or Scale that fusion folds into a Convolution/Deconvolution/InnerProduct
 * are a RECORD_NOT_QUANTIZABLE error naming that layer; S = f32(1/scale_d) and every dequant
 * scale f32(scale_d · scale_w) must be normal float32 values (RECORD_BAD_SCALE).
 *
 * @example
 * ```ts ignore
 * const record = readRecord('record { key: "conv1" value { scale_d: 0.5 offset_d: 0 ' +
 *   'scale_w: 0.01 offset_w: 0 } }', net, "record.txt");
 * record.get("conv1")?.factors?.scaleD; // 0.5
 * ```
 */
export function readRecord(recordText: string, net: Net, file?: string): QuantRecord {
  const scanned = scanRecord(recordText);
  const byKey = scanned === undefined ? recordEntriesOfText(recordText, file) : new Map();
  for (const entry of scanned ?? []) addEntry(byKey, entry, file);
  if (byKey.size === 0) {
    throw new ConvertError("RECORD_EMPTY", "the record file has no record entries", { file });
  }
  const layers = new Map(net.layers.map((layer) => [layer.name, layer]));
  const skipFusion = new Set(
    [...byKey.values()].filter((entry) => entry.skipFusion).map((entry) => entry.key),
  );
  const unknownKeys = [...byKey.keys()].filter((key) => !layers.has(key)).length;
  const context: EntryContext = {
    layers,
    file,
    fusedInto: () => foldedLayers(net, skipFusion),
    unknownKeys,
    keys: byKey.size,
  };
  const records: QuantRecord = new Map();
  for (const [key, entry] of byKey) records.set(key, checkEntry(entry, context));
  return records;
}

/** Adds `entry` to the entries by key; a key given before is `RECORD_DUPLICATE_KEY`. */
function addEntry(byKey: Map<string, RecordEntry>, entry: RecordEntry, file?: string): void {
  const earlier = byKey.get(entry.key);
  if (earlier !== undefined) {
    const first = earlier.place.line;
    throw new ConvertError(
      "RECORD_DUPLICATE_KEY",
      `a second record for layer "${entry.key}"` +
        (first ? ` (the first is on line ${first})` : ""),
      { file, line: entry.place.line, column: entry.place.column, layer: entry.key },
    );
  }
  byKey.set(entry.key, entry);
}

/**
 * The entries of the record text by key through the protobuf text reader (every syntax, every
 * error): the tree checked for fields AMCT's schema lacks, then each `record { key value }` entry
 * in order. {@linkcode readRecord} reads them so when `scanRecord` does not take the text.
 */
export function recordEntriesOfText(recordText: string, file?: string): Map<string, RecordEntry> {
  const recordType = caffeType("ScaleOffsetRecord");
  const root = parseText(recordText, recordType, file);
  rejectUnknownFields(root, recordType, file);
  const byKey = new Map<string, RecordEntry>();
  for (const field of root.fields) {
    if (field.name !== "record") continue;
    const { key, value } = entryParts(field, file);
    addEntry(byKey, entryOfTree(field, key, value), file);
  }
  return byKey;
}

/** A `record` entry of the tree (its key and value found) as checking reads it. */
function entryOfTree(entry: TextField, key: string, value: TextMessage): RecordEntry {
  const fields = fieldsByName(value);
  const entryMessage = entry.value as TextMessage;
  const last = (name: string) => fields.get(name)?.at(-1);
  const placed = (field: TextField | undefined) =>
    field === undefined ? undefined : { value: Number(field.value), ...placeOf(field) };
  const list = (name: string): PlacedValues => {
    const items = fields.get(name) ?? [];
    return {
      values: items.map((field) => Number(field.value)),
      lines: items.map((field) => field.line ?? 0),
      columns: items.map((field) => field.column ?? 0),
    };
  };
  const shiftBit = last("shift_bit");
  return {
    key,
    place: placeOf(entry),
    keyPlace: placeOf(entryMessage.entry("key") ?? entry),
    valuePlace: placeOf(entryMessage.entry("value")!),
    scaleD: placed(last("scale_d")),
    offsetD: placed(last("offset_d")),
    scaleW: list("scale_w"),
    offsetW: list("offset_w"),
    shiftBit: shiftBit === undefined ? undefined : placeOf(shiftBit),
    skipFusion: last("skip_fusion")?.value === true,
  };
}

/** The line and column of a field of the tree. */
function placeOf(field: TextField): Place {
  return { line: field.line ?? 0, column: field.column ?? 0 };
}

/** What checking an entry needs besides the entry. */
interface EntryContext {
  /** The net's layers by name. */
  layers: Map<string, Layer>;
  /** The record file's name. */
  file?: string;
  /** The composites that fusion folds BatchNorm and Scale layers into, by their names. */
  fusedInto: () => Map<string, FusedComposite>;
  /** How many of the record's keys name no layer of the model. */
  unknownKeys: number;
  /** How many keys the record has. */
  keys: number;
}

/**
 * The message for a key that names no layer: the nearest layer name when the key looks like a
 * typo of it, and how many keys the model lacks when it is more than this one (a record made
 * for another model lacks most of them).
 */
function unknownLayerMessage(key: string, context: EntryContext): string {
  const nearest = nearestName(key, context.layers.keys());
  let message = `the model has no layer "${key}"` +
    (nearest === undefined ? "" : `; did you mean "${nearest}"?`);
  const { unknownKeys, keys } = context;
  if (unknownKeys > 1) {
    message += ` (${unknownKeys} of the record's ${keys} keys name no layer of the model` +
      (2 * unknownKeys > keys ? ": is the record made for another model?)" : ")");
  }
  return message;
}

/**
 * The name in `names` nearest `key` by edit distance (insertions, deletions, substitutions, swaps
 * of neighbours), when it is near enough to be a typo: at most a third of the key's length, at least 1. Ties go to
 * the first such name.
 */
export function nearestName(key: string, names: Iterable<string>): string | undefined {
  const limit = Math.max(1, Math.floor(key.length / 3));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const name of names) {
    if (Math.abs(name.length - key.length) >= bestDistance) continue;
    const distance = editDistance(key, name, bestDistance);
    if (distance < bestDistance) {
      best = name;
      bestDistance = distance;
    }
  }
  return best;
}

/**
 * Edit distance of `a` and `b` counting insertions, deletions, substitutions and swaps of two
 * neighbours (optimal string alignment), or any value >= `cap` once it must reach `cap`.
 */
function editDistance(a: string, b: string, cap: number): number {
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      let distance = Math.min(
        previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
        previous[j] + 1,
        current[j - 1] + 1,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        distance = Math.min(distance, before[j - 2] + 1);
      }
      current[j] = distance;
      rowMin = Math.min(rowMin, distance);
    }
    if (rowMin >= cap) return cap;
    before = previous;
    previous = current;
  }
  return previous[b.length];
}

/**
 * Throws TEXT_UNKNOWN_FIELD at the first field, in file order and at any depth, that `type` does
 * not define: AMCT fixes the record (and calibration config) schema, so an unknown name is a
 * mistake (a misspelt `skip_fusion` would otherwise be ignored without a word).
 */
export function rejectUnknownFields(
  message: TextMessage,
  type: MessageType,
  file?: string,
): void {
  const known = type.info.byName;
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
function checkEntry(entry: RecordEntry, context: EntryContext): LayerRecord {
  const { file } = context;
  const { key, skipFusion } = entry;
  const fail = (code: ErrorCode, text: string, place: Place = entry.place): never => {
    throw new ConvertError(code, `record "${key}": ${text}`, {
      file,
      line: place.line,
      column: place.column,
      layer: key,
    });
  };
  const layer = context.layers.get(key);
  if (layer === undefined) {
    fail("RECORD_UNKNOWN_LAYER", unknownLayerMessage(key, context), entry.keyPlace);
  }
  if (entry.shiftBit !== undefined) {
    fail("RECORD_SHIFT_BIT", "shift_bit is not supported by convert_model", entry.shiftBit);
  }
  const hasFactors = entry.scaleD !== undefined || entry.offsetD !== undefined ||
    entry.scaleW.values.length > 0 || entry.offsetW.values.length > 0;
  if (!hasFactors) return { layer: key, skipFusion };
  const blocker = quantizeBlocker(layer!);
  if (blocker !== undefined) {
    const composite = context.fusedInto().get(key);
    fail(
      "RECORD_NOT_QUANTIZABLE",
      composite === undefined
        ? `layer "${key}" (${layer!.type}) cannot be quantized: ${blocker}`
        : `${layer!.type} "${key}" is fused into "${composite.layer}" (${composite.layer} + ` +
          `${composite.batchNorm} + ${composite.scale}): its factors belong in the record for ` +
          `"${composite.layer}", and describe the fused weights`,
    );
  }
  return { layer: key, skipFusion, factors: checkFactors(layer!, entry, fail) };
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

/** Checks the factors of a quantizable layer's record entry and returns them as float32. */
function checkFactors(
  layer: Layer,
  entry: RecordEntry,
  fail: (code: ErrorCode, text: string, place?: Place) => never,
): QuantFactors {
  const { scaleD: scaleDField, offsetD: offsetDField, scaleW: scaleWList, offsetW } = entry;
  if (scaleDField === undefined) fail("RECORD_BAD_SCALE", "scale_d is missing", entry.valuePlace);
  const scaleD = Math.fround(scaleDField!.value);
  if (!(Number.isFinite(scaleD) && scaleD > 0)) {
    fail(
      "RECORD_BAD_SCALE",
      `scale_d ${scaleDField!.value} is not a finite number > 0`,
      scaleDField,
    );
  }
  const quantScaleProblem = storedScaleProblem(1 / scaleD);
  if (quantScaleProblem !== undefined) {
    fail(
      "RECORD_BAD_SCALE",
      `scale_d ${scaleDField!.value}: the Quant layer's scale 1/scale_d = ` +
        `${shortNumber(1 / scaleD)} ${quantScaleProblem}`,
      scaleDField,
    );
  }
  const offsetD = offsetDField === undefined ? 0 : offsetDField.value;
  if (!(offsetD >= -128 && offsetD <= 127)) {
    fail("RECORD_BAD_OFFSET_D", `offset_d ${offsetD} is outside -128..127`, offsetDField);
  }
  const scaleW = new Float32Array(scaleWList.values);
  const placeAt = (list: PlacedValues, index: number): Place => ({
    line: list.lines[index],
    column: list.columns[index],
  });
  scaleW.forEach((scale, index) => {
    if (!(Number.isFinite(scale) && scale > 0)) {
      fail(
        "RECORD_BAD_SCALE",
        `scale_w[${index}] ${scaleWList.values[index]} is not a finite number > 0`,
        placeAt(scaleWList, index),
      );
    }
    const deqProblem = storedScaleProblem(scaleD * scale);
    if (deqProblem !== undefined) {
      fail(
        "RECORD_BAD_SCALE",
        `the dequant scale scale_d · scale_w[${index}] = ${shortNumber(scaleD * scale)} ` +
          deqProblem,
        placeAt(scaleWList, index),
      );
    }
  });
  offsetW.values.forEach((value, index) => {
    if (value !== 0) {
      fail("RECORD_BAD_OFFSET_W", `offset_w[${index}] is ${value}, not 0`, placeAt(offsetW, index));
    }
  });
  const lengthProblem = scaleWLengthProblem(layer, scaleW, offsetW.values.length);
  if (lengthProblem !== undefined) {
    const first = scaleW.length > 0
      ? placeAt(scaleWList, 0)
      : offsetW.values.length > 0
      ? placeAt(offsetW, 0)
      : entry.valuePlace;
    fail("RECORD_BAD_LENGTH", lengthProblem, first);
  }
  return { scaleD, offsetD, scaleW: scaleW.length === 0 ? new Float32Array([1]) : scaleW };
}

/** The smallest normal float32, 2^-126. */
export const MIN_NORMAL_FLOAT32 = 2 ** -126;

/**
 * Why a scale the outputs store as float32 (S = 1/scale_d, or a dequant scale scale_d · scale_w),
 * given as its exact value, is unusable, or `undefined` when its float32 rounding is a normal
 * number. Subnormal scales are refused too: they keep fewer than float32's 24 significant bits,
 * so the stored scale can be far from the exact one without a word, and hardware that flushes
 * subnormals to 0 (CPUs in FTZ/DAZ mode, many accelerators) would multiply by 0.
 */
export function storedScaleProblem(exact: number): string | undefined {
  const stored = Math.fround(exact);
  if (stored === Infinity) return "overflows float32";
  if (stored === 0) return "underflows float32";
  if (stored < MIN_NORMAL_FLOAT32) {
    return `is a subnormal float32 (below ${shortNumber(MIN_NORMAL_FLOAT32)}), which loses ` +
      `precision and which hardware may flush to 0`;
  }
  return undefined;
}

/** `value` with 8 significant digits, for messages (e.g. `1e-60`, `1.1754944e-38`). */
function shortNumber(value: number): string {
  return String(Number(value.toPrecision(8)));
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
