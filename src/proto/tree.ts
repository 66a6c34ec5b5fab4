/**
 * The in-memory form of a protobuf text-format message that loses nothing: fields in their input
 * order, repeated fields as repeated entries, and fields the schema does not know kept with their
 * source text so they print back as they were.
 *
 * @module
 */

/** A scalar value, typed by the schema. */
export type Scalar = number | boolean | string | Uint8Array;

/** A field's value: a scalar, or a nested message. */
export type FieldValue = Scalar | TextMessage;

/** One `name: value` or `name { ... }` entry of a message. */
export interface TextField {
  /** The field name as written. */
  name: string;
  /**
   * The value. Known fields: numbers for all numeric types (int64 included), enum value names
   * as strings, booleans, decoded strings, `Uint8Array` for `bytes`. Unknown scalar fields hold
   * their source token text (see `raw`).
   */
  value: FieldValue;
  /**
   * The source text of a scalar as written (for strings, the quoted literal(s)), when it came
   * from a file. The printer prints `raw` for unknown fields and for unchanged known numbers.
   */
  raw?: string;
  /** True when the schema has no such field; the value is then printed from `raw`. */
  unknown?: boolean;
  /** 1-based line of the field name in its source, when read from text. */
  line?: number;
  /** 1-based column of the field name in its source, when read from text. */
  column?: number;
}

/** A message: an ordered list of fields. */
export class TextMessage {
  /** The fields in order. Prefer the methods below to editing this array. */
  fields: TextField[];

  /** Makes a message from fields, in order. */
  constructor(fields: TextField[] = []) {
    this.fields = fields;
  }

  /** The last value of field `name` (protobuf's rule for a repeated singular field), if any. */
  get(name: string): FieldValue | undefined {
    for (let i = this.fields.length - 1; i >= 0; i--) {
      if (this.fields[i].name === name) return this.fields[i].value;
    }
    return undefined;
  }

  /** The entry of field `name` (the last one), if any, with its source place. */
  entry(name: string): TextField | undefined {
    for (let i = this.fields.length - 1; i >= 0; i--) {
      if (this.fields[i].name === name) return this.fields[i];
    }
    return undefined;
  }

  /** Every value of field `name`, in order. */
  getAll(name: string): FieldValue[] {
    return this.fields.filter((f) => f.name === name).map((f) => f.value);
  }

  /** The nested message `name`, if present. */
  message(name: string): TextMessage | undefined {
    const value = this.get(name);
    return value instanceof TextMessage ? value : undefined;
  }

  /** True when field `name` appears. */
  has(name: string): boolean {
    return this.fields.some((f) => f.name === name);
  }

  /**
   * Sets singular field `name` to `value`: replaces the existing entry in place (keeping its
   * position, dropping its source text), or appends a new entry.
   */
  set(name: string, value: FieldValue): void {
    const index = this.fields.findIndex((f) => f.name === name);
    const field: TextField = { name, value };
    if (index < 0) {
      this.fields.push(field);
      return;
    }
    this.fields[index] = field;
    this.fields = this.fields.filter((f, i) => i <= index || f.name !== name);
  }

  /**
   * Replaces every entry of repeated field `name` with `values`, at the position of the first
   * old entry (or at the end when there was none).
   */
  setAll(name: string, values: FieldValue[]): void {
    const first = this.fields.findIndex((f) => f.name === name);
    const kept = this.fields.filter((f) => f.name !== name);
    const at = first < 0
      ? kept.length
      : this.fields.slice(0, first).filter((f) => f.name !== name).length;
    kept.splice(at, 0, ...values.map((value) => ({ name, value })));
    this.fields = kept;
  }

  /** Appends an entry. */
  add(name: string, value: FieldValue): void {
    this.fields.push({ name, value });
  }

  /** Removes every entry of field `name`. */
  delete(name: string): void {
    this.fields = this.fields.filter((f) => f.name !== name);
  }

  /** A deep copy (scalars are immutable or copied). */
  clone(): TextMessage {
    return new TextMessage(this.fields.map((f) => ({
      ...f,
      value: f.value instanceof TextMessage
        ? f.value.clone()
        : f.value instanceof Uint8Array
        ? f.value.slice()
        : f.value,
    })));
  }
}
