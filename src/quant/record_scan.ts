/**
 * A record file's entries as the record checks read them ({@linkcode RecordEntry}), and a reader
 * of them that builds no tree ({@linkcode scanRecord}): a record of ResNet-50 holds 53 k fields,
 * which the protobuf text reader makes into a tree of objects and strings (5 MB, ~60 ms in a fresh
 * process); this one reads them straight into arrays, with the text reader's tokens, values and
 * places. It takes `record { key: … value { … } }` entries with the fields AMCT's schema defines,
 * and gives up (undefined) on anything else — list syntax, an unknown field, a singular field
 * given twice, a syntax or value error — so that the text reader reads that text and reports
 * what it finds.
 *
 * @module
 */

import type { MessageType } from "../proto/field_info.ts";
import { ConvertError } from "../errors.ts";
import { LIMITS } from "../limits.ts";
import { type FieldInfo, MESSAGE } from "../proto/field_info.ts";
import { caffeType } from "../proto/schema.ts";
import { TextReader } from "../proto/text_read.ts";
import { isIdentPart, isIdentStart } from "../proto/text_tokens.ts";

/** A 1-based line and column in the record file. */
export interface Place {
  /** The line. */
  line: number;
  /** The column. */
  column: number;
}

/** The values of a repeated field, in order, with the place of each. */
export interface PlacedValues {
  /** The values (float fields rounded to float32). */
  values: number[];
  /** The line of each value's field. */
  lines: number[];
  /** The column of each value's field. */
  columns: number[];
}

/** One `record { key value }` entry: what the checks of src/quant/record.ts read. */
export interface RecordEntry {
  /** The layer name (`key`). */
  key: string;
  /** Where the entry starts (its `record` field). */
  place: Place;
  /** Where its `key` field is. */
  keyPlace: Place;
  /** Where its `value` field is. */
  valuePlace: Place;
  /** `scale_d` and its place. */
  scaleD?: Place & { value: number };
  /** `offset_d` and its place. */
  offsetD?: Place & { value: number };
  /** `scale_w`, every value. */
  scaleW: PlacedValues;
  /** `offset_w`, every value. */
  offsetW: PlacedValues;
  /** The place of the last `shift_bit`, when there is one. */
  shiftBit?: Place;
  /** `skip_fusion: true`. */
  skipFusion: boolean;
}

/** Thrown inside the reader when the text is outside what it takes; never escapes it. */
const GIVE_UP = new Error("left to the text reader");

/**
 * The entries of `text` when it is record text this module takes (see the module
 * documentation), else undefined.
 *
 * @example
 * ```ts
 * import { scanRecord } from "./record_scan.ts";
 * const [entry] = scanRecord('record { key: "conv1" value { scale_d: 0.5 scale_w: 0.01 } }')!;
 * entry.scaleD?.value; // 0.5
 * ```
 */
export function scanRecord(text: string): RecordEntry[] | undefined {
  try {
    return new RecordScanner(text).entries();
  } catch (error) {
    if (error === GIVE_UP || error instanceof ConvertError) return undefined;
    throw error;
  }
}

/** The fields of a message type by name. */
function fieldsOf(type: MessageType): Map<string, FieldInfo> {
  return type.info.byName;
}

/** The text reader's tokens and values, walked through the record schema without a tree. */
class RecordScanner extends TextReader {
  readonly #entryFields: Map<string, FieldInfo>;
  readonly #valueFields: Map<string, FieldInfo>;
  /** The schema's field names by length. */
  readonly #names = new Map<number, string[]>();

  constructor(text: string) {
    super(text);
    const record = fieldsOf(caffeType("ScaleOffsetRecord")).get("record")!;
    this.#entryFields = fieldsOf(record.messageType!);
    this.#valueFields = fieldsOf(this.#entryFields.get("value")!.messageType!);
    for (const name of ["record", ...this.#entryFields.keys(), ...this.#valueFields.keys()]) {
      this.#names.set(name.length, [...this.#names.get(name.length) ?? [], name]);
    }
  }

  /** Every entry of the text, in order. */
  entries(): RecordEntry[] {
    const entries: RecordEntry[] = [];
    for (this.skip(); this.pos < this.src.length; this.skip()) {
      if (entries.length >= LIMITS.fieldsPerMessage) throw GIVE_UP;
      const place = this.#place();
      if (this.#name() !== "record") throw GIVE_UP;
      entries.push(this.#entry(place, this.#open()));
      this.#separator();
    }
    return entries;
  }

  /** The body of a `record` entry after its opening, through `close`. */
  #entry(place: Place, close: number): RecordEntry {
    let key: string | undefined;
    let keyPlace: Place | undefined;
    let value: Omit<RecordEntry, "key" | "place" | "keyPlace"> | undefined;
    for (this.skip(); !this.#closes(close); this.skip()) {
      const fieldPlace = this.#place();
      const name = this.#name();
      if (name === "key" && key === undefined) {
        this.#colon();
        this.readToken();
        key = this.convert(this.#entryFields.get("key")!, name, this.tokRaw()) as string;
        keyPlace = fieldPlace;
      } else if (name === "value" && value === undefined) {
        value = this.#value(fieldPlace, this.#open());
      } else {
        throw GIVE_UP;
      }
      this.#separator();
    }
    if (key === undefined || value === undefined) throw GIVE_UP;
    return { key, place, keyPlace: keyPlace!, ...value };
  }

  /** The body of a `value` message after its opening, through `close`. */
  #value(valuePlace: Place, close: number): Omit<RecordEntry, "key" | "place" | "keyPlace"> {
    const scaleW: PlacedValues = { values: [], lines: [], columns: [] };
    const offsetW: PlacedValues = { values: [], lines: [], columns: [] };
    const singular = new Map<string, Place & { value: number }>();
    let shiftBit: Place | undefined;
    let fields = 0;
    for (this.skip(); !this.#closes(close); this.skip()) {
      if (++fields > LIMITS.fieldsPerMessage) throw GIVE_UP;
      const line = this.line;
      const column = this.pos - this.lineStart + 1;
      const name = this.#name();
      const info = this.#valueFields.get(name);
      if (info === undefined || info.kind === MESSAGE) throw GIVE_UP;
      this.#colon();
      this.readToken();
      const value = Number(this.convert(info, name, this.tokRaw()));
      if (name === "scale_w" || name === "offset_w") {
        const list = name === "scale_w" ? scaleW : offsetW;
        list.values.push(value);
        list.lines.push(line);
        list.columns.push(column);
      } else if (info.repeated) {
        shiftBit = { line, column };
      } else {
        // A singular field given twice is the text reader's error to report.
        if (singular.has(name)) throw GIVE_UP;
        singular.set(name, { line, column, value });
      }
      this.#separator();
    }
    return {
      valuePlace,
      scaleD: singular.get("scale_d"),
      offsetD: singular.get("offset_d"),
      scaleW,
      offsetW,
      shiftBit,
      skipFusion: singular.get("skip_fusion")?.value === 1,
    };
  }

  /** The place of the current position. */
  #place(): Place {
    return { line: this.line, column: this.pos - this.lineStart + 1 };
  }

  /**
   * A field name of the record schema (`record`, `key`, `value` or a field of `value`): the
   * schema's own string, matched in place (no copy of the text).
   */
  #name(): string {
    const s = this.src;
    const start = this.pos;
    if (!isIdentStart(s.charCodeAt(start))) throw GIVE_UP;
    let p = start + 1;
    while (p < s.length && isIdentPart(s.charCodeAt(p))) p++;
    const name = this.#names.get(p - start)?.find((known) => s.startsWith(known, start));
    if (name === undefined) throw GIVE_UP;
    this.pos = p;
    return name;
  }

  /** A message's opening (`{` or `<`, optionally after `:`); the character that closes it. */
  #open(): number {
    this.skip();
    if (this.src.charCodeAt(this.pos) === 58) {
      this.pos++;
      this.skip();
    }
    const open = this.src.charCodeAt(this.pos);
    if (open !== 123 && open !== 60) throw GIVE_UP;
    this.pos++;
    return open === 123 ? 125 : 62;
  }

  /** Whether `close` is here (then taken). */
  #closes(close: number): boolean {
    if (this.pos >= this.src.length) throw GIVE_UP;
    if (this.src.charCodeAt(this.pos) !== close) return false;
    this.pos++;
    return true;
  }

  /** The `:` before a scalar value, and the space after it. */
  #colon(): void {
    this.skip();
    if (this.src.charCodeAt(this.pos) !== 58) throw GIVE_UP;
    this.pos++;
    this.skip();
    // List syntax is left to the text reader.
    if (this.src.charCodeAt(this.pos) === 91) throw GIVE_UP;
  }

  /** An optional `;` or `,` after a field, as the text reader takes it. */
  #separator(): void {
    this.skip();
    const c = this.src.charCodeAt(this.pos);
    if (c === 59 || c === 44) this.pos++;
  }
}
