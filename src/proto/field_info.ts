/**
 * The facts about each field of a protobufjs message type that the text reader, the printer and
 * the object conversion need (kind, repetition, enum names, message type), cached per type.
 *
 * @module
 */

import protobuf from "npm:protobufjs@8.0.0";

/** Field kind: int32, sint32 and sfixed32. */
export const INT32 = 0;
/** Field kind: uint32 and fixed32. */
export const UINT32 = 1;
/** Field kind: int64, sint64 and sfixed64. */
export const INT64 = 2;
/** Field kind: uint64 and fixed64. */
export const UINT64 = 3;
/** Field kind: float. */
export const FLOAT = 4;
/** Field kind: double. */
export const DOUBLE = 5;
/** Field kind: bool. */
export const BOOL = 6;
/** Field kind: string. */
export const STRING = 7;
/** Field kind: bytes. */
export const BYTES = 8;
/** Field kind: an enum. */
export const ENUM = 9;
/** Field kind: a message. */
export const MESSAGE = 10;

const KIND_OF_TYPE: Record<string, number> = {
  int32: INT32,
  sint32: INT32,
  sfixed32: INT32,
  uint32: UINT32,
  fixed32: UINT32,
  int64: INT64,
  sint64: INT64,
  sfixed64: INT64,
  uint64: UINT64,
  fixed64: UINT64,
  float: FLOAT,
  double: DOUBLE,
  bool: BOOL,
  string: STRING,
  bytes: BYTES,
};

/** The facts about one field of a message type. */
export interface FieldInfo {
  /** The field name. */
  name: string;
  /** The field number. */
  id: number;
  /** One of the field kinds (`INT32` … `MESSAGE`). */
  kind: number;
  /** True for a repeated field. */
  repeated: boolean;
  /** True for a repeated scalar field written packed (`[packed = true]`). */
  packed: boolean;
  /** The type as the schema names it (`float`, `PoolMethod`, …), for messages. */
  typeName: string;
  /** Enum fields: the value of each name. */
  enumByName?: Map<string, number>;
  /** Enum fields: the first name of each value. */
  enumById?: Map<number, string>;
  /** Message fields: the message type. */
  messageType?: protobuf.Type;
}

/** The fields of one message type, by name and by number. */
export interface TypeInfo {
  /** The fields by name. */
  byName: Map<string, FieldInfo>;
  /** The fields in field-number order. */
  byId: FieldInfo[];
  /** The fields by number. */
  byNumber: Map<number, FieldInfo>;
}

const typeInfos = new WeakMap<protobuf.Type, TypeInfo>();

/** The field facts of `type`, worked out once per type. */
export function typeInfo(type: protobuf.Type): TypeInfo {
  let info = typeInfos.get(type);
  if (info !== undefined) return info;
  const byName = new Map<string, FieldInfo>();
  for (const field of type.fieldsArray) {
    field.resolve();
    const resolved = field.resolvedType;
    const fieldInfo: FieldInfo = {
      name: field.name,
      id: field.id,
      kind: KIND_OF_TYPE[field.type] ?? (resolved instanceof protobuf.Enum ? ENUM : MESSAGE),
      repeated: field.repeated,
      packed: field.repeated && field.packed,
      typeName: field.type,
    };
    if (resolved instanceof protobuf.Enum) {
      fieldInfo.enumByName = new Map(Object.entries(resolved.values));
      fieldInfo.enumById = new Map();
      for (const [name, id] of Object.entries(resolved.values)) {
        if (!fieldInfo.enumById.has(id)) fieldInfo.enumById.set(id, name);
      }
    } else if (resolved instanceof protobuf.Type) {
      fieldInfo.messageType = resolved;
    }
    byName.set(field.name, fieldInfo);
  }
  const byId = [...byName.values()].sort((a, b) => a.id - b.id);
  info = { byName, byId, byNumber: new Map(byId.map((field) => [field.id, field])) };
  typeInfos.set(type, info);
  return info;
}
