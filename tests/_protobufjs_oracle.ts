// protobufjs's view of a message as a text tree, and back: the oracle the binary codec
// (src/proto/binary_message.ts) is checked against. These are the conversions the caffemodel
// reader and writer ran around protobufjs's own decode and encode before that codec.

// deno-lint-ignore no-import-prefix -- the team's one allowed specifier for protobufjs
import type protobuf from "npm:protobufjs@8.0.0";
import type { FieldInfo } from "../src/proto/field_info.ts";
import {
  BOOL,
  BYTES,
  ENUM,
  INT64,
  MESSAGE,
  STRING,
  typeInfo,
  UINT64,
} from "../src/proto/field_info.ts";
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

function scalarFromObject(info: FieldInfo, value: unknown): Scalar {
  switch (info.kind) {
    case ENUM:
      return typeof value === "number" ? info.enumById!.get(value) ?? value : String(value);
    case INT64:
    case UINT64:
      return longToNumber(value);
    case BOOL:
      return Boolean(value);
    case STRING:
      return String(value);
    case BYTES:
      if (value instanceof Uint8Array) {
        return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
      }
      if (typeof value === "string") return Uint8Array.from(atob(value), (c) => c.charCodeAt(0));
      return Uint8Array.from(value as ArrayLike<number>);
    default:
      return Number(value);
  }
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
  for (const info of typeInfo(type).byId) {
    if (!hasOwn(object, info.name)) continue;
    const value = record[info.name];
    if (value === undefined || value === null) continue;
    const items = info.repeated ? (Array.isArray(value) ? value : [value]) : [value];
    for (const item of items) {
      fields.push({
        name: info.name,
        value: info.kind === MESSAGE
          ? messageFromObject(info.messageType!, item as object)
          : scalarFromObject(info, item),
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
  const infos = typeInfo(type).byName;
  const object: Record<string, unknown> = {};
  for (const field of message.fields) {
    if (field.unknown) continue;
    const info = infos.get(field.name);
    if (info === undefined) continue;
    const value = field.value instanceof TextMessage
      ? info.kind === MESSAGE ? objectFromMessage(info.messageType!, field.value) : undefined
      : field.value;
    if (value === undefined) continue;
    if (info.repeated) ((object[info.name] ??= []) as unknown[]).push(value);
    else object[info.name] = value;
  }
  return object;
}
