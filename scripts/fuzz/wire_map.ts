/**
 * A map of the fields of a well-formed protobuf binary message, made with the Caffe schema so
 * nested messages are walked too. The fuzzer uses it to find structural places to damage; it is
 * written apart from `src/proto/wire.ts` so that a bug there cannot hide places here.
 *
 * @module
 */

import protobuf from "npm:protobufjs@8.0.0";

/** One field of the message tree, by byte positions in the whole file. */
export interface MappedField {
  /** Where the tag starts. */
  tagAt: number;
  /** Where the length varint starts (length-delimited fields), else where the value starts. */
  lengthAt: number;
  /** Where the value (payload) starts. */
  valueAt: number;
  /** Just past the value. */
  end: number;
  /** Field number. */
  field: number;
  /** Wire type. */
  wire: number;
  /** The enclosing message type's full name. */
  parentType: string;
  /** The schema field's type name (`float`, `string`, `caffe.BlobShape`, ...), if the schema has it. */
  fieldType?: string;
  /** Index of the enclosing field in the map (-1 at the top level). */
  parent: number;
  /** Nesting depth (0 at the top level). */
  depth: number;
}

/** Reads a varint at `pos`: its value (exact below 2^53) and the position after it. */
export function readVarint(bytes: Uint8Array, pos: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    const byte = bytes[pos++];
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, pos];
    scale *= 128;
  }
  throw new Error(`varint longer than 10 bytes at ${pos}`);
}

/** The varint encoding of a non-negative integer (up to 2^64 − 1, given as a bigint if large). */
export function encodeVarint(value: number | bigint): Uint8Array {
  let rest = BigInt(value);
  const out: number[] = [];
  do {
    const low = Number(rest & 0x7fn);
    rest >>= 7n;
    out.push(rest > 0n ? low | 0x80 : low);
  } while (rest > 0n);
  return Uint8Array.from(out);
}

/** Every field of `bytes` (a message of type `typeName`), parents before children. */
export function mapFields(bytes: Uint8Array, typeName: string, root: protobuf.Root): MappedField[] {
  const fields: MappedField[] = [];
  walk(bytes, 0, bytes.length, root.lookupType(typeName), -1, 0, fields);
  return fields;
}

function walk(
  bytes: Uint8Array,
  start: number,
  end: number,
  type: protobuf.Type,
  parent: number,
  depth: number,
  fields: MappedField[],
): void {
  let pos = start;
  while (pos < end) {
    const tagAt = pos;
    const [tag, afterTag] = readVarint(bytes, pos);
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    const schemaField = type.fieldsById[field];
    let valueAt = afterTag;
    let fieldEnd: number;
    if (wire === 0) fieldEnd = readVarint(bytes, afterTag)[1];
    else if (wire === 1) fieldEnd = afterTag + 8;
    else if (wire === 5) fieldEnd = afterTag + 4;
    else if (wire === 2) {
      const [length, payloadAt] = readVarint(bytes, afterTag);
      valueAt = payloadAt;
      fieldEnd = payloadAt + length;
    } else throw new Error(`unexpected wire type ${wire} at ${tagAt}`);
    const index = fields.length;
    fields.push({
      tagAt,
      lengthAt: afterTag,
      valueAt,
      end: fieldEnd,
      field,
      wire,
      parentType: type.fullName.replace(/^\./, ""),
      fieldType: schemaField?.type,
      parent,
      depth,
    });
    const child = schemaField?.resolvedType;
    if (wire === 2 && child instanceof protobuf.Type) {
      walk(bytes, valueAt, fieldEnd, child, index, depth + 1, fields);
    }
    pos = fieldEnd;
  }
}

/**
 * `bytes` with the payload of length-delimited field `index` replaced by `payload`, every
 * enclosing length fixed so the file stays well-formed around it.
 */
export function replacePayload(
  bytes: Uint8Array,
  fields: readonly MappedField[],
  index: number,
  payload: Uint8Array,
): Uint8Array {
  const chain: MappedField[] = [];
  for (let i = index; i >= 0; i = fields[i].parent) chain.unshift(fields[i]);
  // New lengths, innermost first: each ancestor grows by its child's change in total size.
  const newLengths = new Array<number>(chain.length);
  let delta = 0;
  for (let i = chain.length - 1; i >= 0; i--) {
    const f = chain[i];
    const oldLength = f.end - f.valueAt;
    const newLength = i === chain.length - 1 ? payload.length : oldLength + delta;
    newLengths[i] = newLength;
    delta = encodeVarint(newLength).length + newLength - (f.end - f.lengthAt);
  }
  const pieces: Uint8Array[] = [];
  let pos = 0;
  for (const [i, f] of chain.entries()) {
    pieces.push(bytes.subarray(pos, f.lengthAt), encodeVarint(newLengths[i]));
    pos = f.valueAt;
  }
  pieces.push(payload);
  for (let i = chain.length - 1; i >= 0; i--) {
    const next = i > 0 ? chain[i - 1].end : bytes.length;
    pieces.push(bytes.subarray(chain[i].end, next));
  }
  return concat(pieces);
}

/** The bytes of `pieces` one after the other. */
export function concat(pieces: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(pieces.reduce((n, piece) => n + piece.length, 0));
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}
