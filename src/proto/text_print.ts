/**
 * The printer of protobuf text format: writes lossless trees back in canonical form, as Caffe's
 * own files look, floats as their source text when they have one and unknown fields as they were
 * read.
 *
 * @module
 */

import type { MessageType } from "./field_info.ts";
import type { FieldInfo } from "./field_info.ts";
import { BOOL, BYTES, DOUBLE, ENUM, FLOAT, STRING } from "./field_info.ts";
import { formatDouble, formatFloat32, rawFloat } from "./text_numbers.ts";
import { quote } from "./text_strings.ts";
import { type Scalar, type TextField, TextMessage } from "./tree.ts";

/** A value printed without schema help: unknown fields without `raw`, or fields not in the schema. */
function formatLoose(value: Scalar): string {
  if (typeof value === "number") return formatDouble(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  return quote(value);
}

/** True when `raw` reads back as `value` in a float field of the given kind. */
function rawMatches(raw: string, value: number, kind: number): boolean {
  const parsed = rawFloat(raw);
  if (parsed === undefined) return false;
  return Object.is(kind === FLOAT ? Math.fround(parsed) : parsed, value);
}

function formatScalar(field: TextField, info: FieldInfo | undefined): string {
  const value = field.value as Scalar;
  if (info === undefined) return formatLoose(value);
  switch (info.kind) {
    case FLOAT:
    case DOUBLE: {
      const number = Number(value);
      if (field.raw !== undefined && rawMatches(field.raw, number, info.kind)) return field.raw;
      return info.kind === FLOAT ? formatFloat32(number) : formatDouble(number);
    }
    case ENUM:
      return typeof value === "number" ? info.enumById!.get(value) ?? String(value) : String(value);
    case STRING:
    case BYTES:
      return typeof value === "string" || value instanceof Uint8Array
        ? quote(value)
        : quote(String(value));
    case BOOL:
      return value ? "true" : "false";
    default:
      return String(value);
  }
}

/**
 * Appends the lines of `message` to `out`. Pieces are joined once at the end: a string grown by
 * `+=` is a rope whose nodes outweigh its characters many times over.
 */
function printFields(
  message: TextMessage,
  type: MessageType | null,
  indent: string,
  out: string[],
): void {
  const infos = type === null ? undefined : type.info.byName;
  for (const field of message.fields) {
    const info = field.unknown ? undefined : infos?.get(field.name);
    const value = field.value;
    if (value instanceof TextMessage) {
      out.push(indent, field.name, " {\n");
      printFields(value, info?.messageType ?? null, indent + "  ", out);
      out.push(indent, "}\n");
    } else if (field.unknown) {
      out.push(indent, field.name, ": ", field.raw ?? formatLoose(value), "\n");
    } else {
      out.push(indent, field.name, ": ", formatScalar(field, info), "\n");
    }
  }
}

/**
 * Prints a tree in canonical text format, as Caffe's own files look: two-space indent, one
 * `name: value` per line, `name {` … `}` for messages, strings double-quoted with C escapes, enums
 * bare, floats as their source text when they have one, else the shortest round-trip form.
 * Unknown fields print from their source text. The output re-parses to an equal tree and ends
 * with a newline (empty for an empty message).
 */
export function printText(message: TextMessage, type: MessageType): string {
  const out: string[] = [];
  printFields(message, type, "", out);
  return out.join("");
}
