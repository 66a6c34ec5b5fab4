/**
 * A schema's message types and the facts about each of their fields that the text reader, the
 * printer and the binary codec need (kind, repetition, packing, enum names, message type), from
 * a descriptor generated at build time (scripts/build_schema.ts, src/proto/schema.generated.ts).
 *
 * @module
 */

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
  messageType?: MessageType;
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

/**
 * A schema as scripts/build_schema.ts describes it: each message type by full name (`caffe.
 * LayerParameter`) with its fields as `[name, number, type as written, flags, full name of the
 * enum or message type or ""]` (flags: 1 repeated, 2 packed), and each enum by full name with
 * its `[name, value]` pairs in declaration order.
 */
export interface SchemaDescriptor {
  /** The message types' fields. */
  messages: Record<string, [string, number, string, number, string][]>;
  /** The enums' values. */
  enums: Record<string, [string, number][]>;
}

/** A message type of a schema; its field facts are worked out on first use. */
export class MessageType {
  /** The full name, e.g. `caffe.LayerParameter`. */
  readonly fullName: string;
  readonly #describe: () => TypeInfo;
  #info: TypeInfo | undefined;

  /** The type `fullName`, whose fields `describe` works out. */
  constructor(fullName: string, describe: () => TypeInfo) {
    this.fullName = fullName;
    this.#describe = describe;
  }

  /** The name without its package and enclosing messages, e.g. `LayerParameter`. */
  get name(): string {
    return this.fullName.slice(this.fullName.lastIndexOf(".") + 1);
  }

  /** The facts about its fields. */
  get info(): TypeInfo {
    return this.#info ??= this.#describe();
  }
}

/**
 * The message types of `schema` by full name (one object per type); a name the schema lacks
 * throws (a programming error).
 */
export function messageTypes(schema: SchemaDescriptor): (fullName: string) => MessageType {
  const types = new Map<string, MessageType>();
  const lookup = (fullName: string): MessageType => {
    let type = types.get(fullName);
    if (type !== undefined) return type;
    const fields = schema.messages[fullName];
    if (fields === undefined) throw new Error(`the schema has no message type ${fullName}`);
    type = new MessageType(fullName, () => describeFields(fields));
    types.set(fullName, type);
    return type;
  };
  const describeFields = (fields: SchemaDescriptor["messages"][string]): TypeInfo => {
    const byName = new Map<string, FieldInfo>();
    for (const [name, id, typeName, flags, resolved] of fields) {
      const values = schema.enums[resolved];
      const info: FieldInfo = {
        name,
        id,
        kind: KIND_OF_TYPE[typeName] ?? (values !== undefined ? ENUM : MESSAGE),
        repeated: (flags & 1) !== 0,
        packed: (flags & 2) !== 0,
        typeName,
      };
      if (values !== undefined) {
        info.enumByName = new Map(values);
        info.enumById = new Map();
        for (const [valueName, value] of values) {
          if (!info.enumById.has(value)) info.enumById.set(value, valueName);
        }
      } else if (info.kind === MESSAGE) {
        info.messageType = lookup(resolved);
      }
      byName.set(name, info);
    }
    const byId = [...byName.values()].sort((a, b) => a.id - b.id);
    return { byName, byId, byNumber: new Map(byId.map((field) => [field.id, field])) };
  };
  return lookup;
}
