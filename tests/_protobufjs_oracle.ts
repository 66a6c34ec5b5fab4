// protobufjs's view of a message as a text tree, and back: the oracle the binary codec
// (src/proto/binary_message.ts) is checked against. These are the conversions the caffemodel
// reader and writer ran around protobufjs's own decode and encode before that codec.

// deno-lint-ignore no-import-prefix -- the team's one allowed specifier for protobufjs
import protobuf from "npm:protobufjs@8.0.0";
import { type Scalar, type TextField, TextMessage } from "../src/proto/tree.ts";

function hasOwn(object: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(object, key);
}

/** A 64-bit value given as number, bigint, decimal string or protobufjs `Long`, as a number. */
function longToNumber(value: unknown): number {
  if (typeof value === "object" && value !== null && "low" in value && "high" in value) {
    const long = value as { low: number; high: number; unsigned?: boolean };
    const high = long.unsigned ? long.high >>> 0 : long.high;
    return high * 4294967296 + (long.low >>> 0);
  }
  return Number(value);
}

function scalarFromObject(field: protobuf.Field, value: unknown): Scalar {
  if (field.resolvedType instanceof protobuf.Enum) {
    if (typeof value !== "number") return String(value);
    // The first name of the value (protobufjs's `valuesById` keeps the last one).
    const name = Object.entries(field.resolvedType.values).find(([, id]) => id === value)?.[0];
    return name ?? value;
  }
  switch (field.type) {
    case "int64":
    case "uint64":
    case "sint64":
    case "fixed64":
    case "sfixed64":
      return longToNumber(value);
    case "bool":
      return Boolean(value);
    case "string":
      return String(value);
    case "bytes":
      if (value instanceof Uint8Array) {
        return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
      }
      if (typeof value === "string") return Uint8Array.from(atob(value), (c) => c.charCodeAt(0));
      return Uint8Array.from(value as ArrayLike<number>);
    default:
      return Number(value);
  }
}

/** `type`'s fields in field-number order, resolved. */
function fieldsById(type: protobuf.Type): protobuf.Field[] {
  return type.fieldsArray.map((field) => field.resolve()).sort((a, b) => a.id - b.id);
}

/**
 * Converts a protobufjs message or plain object of `type` into a tree: fields in field-number
 * order (Caffe's own print order), enums as names (a number the enum lacks stays a number),
 * 64-bit integers as numbers, bytes as `Uint8Array`. Only own properties count, so the defaults
 * on a decoded message's prototype are not taken for present fields.
 */
export function messageFromObject(type: protobuf.Type, object: object): TextMessage {
  const fields: TextField[] = [];
  const record = object as Record<string, unknown>;
  for (const field of fieldsById(type)) {
    if (!hasOwn(object, field.name)) continue;
    const value = record[field.name];
    if (value === undefined || value === null) continue;
    const items = field.repeated ? (Array.isArray(value) ? value : [value]) : [value];
    for (const item of items) {
      fields.push({
        name: field.name,
        value: field.resolvedType instanceof protobuf.Type
          ? messageFromObject(field.resolvedType, item as object)
          : scalarFromObject(field, item),
      });
    }
  }
  return new TextMessage(fields);
}

/**
 * Converts a tree into a protobufjs plain object of `type`, ready for `type.fromObject`: repeated
 * fields as arrays, enums as names, 64-bit integers as numbers, bytes as `Uint8Array`. Unknown
 * fields are skipped; a singular field given more than once takes its last value.
 */
export function objectFromMessage(
  type: protobuf.Type,
  message: TextMessage,
): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (const field of message.fields) {
    if (field.unknown) continue;
    const known = Object.hasOwn(type.fields, field.name)
      ? type.fields[field.name].resolve()
      : undefined;
    if (known === undefined) continue;
    const value = field.value instanceof TextMessage
      ? known.resolvedType instanceof protobuf.Type
        ? objectFromMessage(known.resolvedType, field.value)
        : undefined
      : field.value;
    if (value === undefined) continue;
    if (known.repeated) ((object[known.name] ??= []) as unknown[]).push(value);
    else object[known.name] = value;
  }
  return object;
}
