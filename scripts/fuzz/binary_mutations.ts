/**
 * Damage to a caffemodel (binary `NetParameter`): raw byte damage, and damage at the places the
 * field map finds — truncation at a field boundary, corrupted lengths and tags, wrong wire
 * types, giant lengths, deep nesting, huge repeated counts, invalid UTF-8 in strings, special
 * float values in blob data, absurd blob shapes — the last ones keeping the rest well-formed so
 * they reach the checks behind the wire reader.
 *
 * @module
 */

import { protoFilesSchema } from "../build_schema.ts";
import { concat, encodeVarint, mapFields, type MappedField, replacePayload } from "./wire_map.ts";
import type { Rng } from "./rng.ts";

/** Caffe's schema as protobufjs reads it from `proto/` (apart from the reader under test). */
const CAFFE_SCHEMA = protoFilesSchema();

/** The largest mutated file made (bytes): huge repeated counts stop here. */
export const MAX_MUTATED_BYTES = 4 << 20;

/** A caffemodel and the map of its fields (made once per corpus file). */
export interface MappedBinary {
  /** The original bytes. */
  bytes: Uint8Array;
  /** Its fields, parents first. */
  fields: MappedField[];
  /** Every structural boundary (field starts, value starts, ends), ascending, unique. */
  boundaries: number[];
}

/** Maps a caffemodel for the mutations below. */
export function mapBinary(bytes: Uint8Array): MappedBinary {
  const fields = mapFields(bytes, "caffe.NetParameter", CAFFE_SCHEMA);
  const cuts = new Set<number>();
  for (const f of fields) cuts.add(f.tagAt).add(f.lengthAt).add(f.valueAt).add(f.end);
  cuts.delete(bytes.length);
  return { bytes, fields, boundaries: [...cuts].sort((a, b) => a - b) };
}

/** One binary mutation: a name and the function making the damaged bytes. */
export interface BinaryMutation {
  /** Stable name, recorded with findings. */
  name: string;
  /** How often it is chosen relative to the others (default 1); slow ones are chosen less. */
  weight?: number;
  /** The damaged file. */
  apply(file: MappedBinary, rng: Rng): Uint8Array;
}

const SPECIAL_FLOATS = [NaN, Infinity, -Infinity, 1e-45, 1e-40, 3.4e38, -0, 1e30, -1e-30];
const GIANT_LENGTHS: (number | bigint)[] = [
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 32 + 7,
  2 ** 53,
  2n ** 63n,
  2n ** 64n - 1n,
];
const INVALID_UTF8 = [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80], [0xe2]];

function lengthFields(file: MappedBinary): MappedField[] {
  return file.fields.filter((f) => f.wire === 2);
}

function pickField(file: MappedBinary, rng: Rng, keep: (f: MappedField) => boolean) {
  const candidates = file.fields.map((_, i) => i).filter((i) => keep(file.fields[i]));
  return candidates.length === 0 ? -1 : rng.pick(candidates);
}

function splice(bytes: Uint8Array, from: number, to: number, insert: Uint8Array): Uint8Array {
  return concat([bytes.subarray(0, from), insert, bytes.subarray(to)]);
}

/** A packed run of `count` copies of `piece`, bounded by {@linkcode MAX_MUTATED_BYTES}. */
function repeated(piece: Uint8Array, count: number): Uint8Array {
  const copies = Math.max(1, Math.min(count, Math.floor(MAX_MUTATED_BYTES / piece.length)));
  const out = new Uint8Array(piece.length * copies);
  for (let i = 0; i < copies; i++) out.set(piece, i * piece.length);
  return out;
}

/** The binary mutations, in a fixed order (their index is part of a case's recipe). */
export const BINARY_MUTATIONS: readonly BinaryMutation[] = [
  {
    name: "bit-flips",
    apply(file, rng) {
      const out = file.bytes.slice();
      for (let n = rng.between(1, 8); n > 0; n--) out[rng.below(out.length)] ^= 1 << rng.below(8);
      return out;
    },
  },
  {
    name: "insert-bytes",
    apply(file, rng) {
      const at = rng.below(file.bytes.length + 1);
      return splice(file.bytes, at, at, rng.bytes(rng.between(1, 16)));
    },
  },
  {
    name: "delete-bytes",
    apply(file, rng) {
      const at = rng.below(file.bytes.length);
      return splice(file.bytes, at, at + rng.between(1, 64), new Uint8Array());
    },
  },
  {
    name: "truncate-at-boundary",
    apply(file, rng) {
      return file.bytes.slice(0, rng.pick(file.boundaries));
    },
  },
  {
    name: "corrupt-length",
    apply(file, rng) {
      const f = rng.pick(lengthFields(file));
      const length = f.end - f.valueAt;
      const choices = [length + 1, length - 1, length * 2, 0, rng.below(65536), file.bytes.length];
      const next = Math.max(0, rng.pick(choices));
      return splice(file.bytes, f.lengthAt, f.valueAt, encodeVarint(next));
    },
  },
  {
    name: "giant-length",
    apply(file, rng) {
      const f = rng.pick(lengthFields(file));
      return splice(file.bytes, f.lengthAt, f.valueAt, encodeVarint(rng.pick(GIANT_LENGTHS)));
    },
  },
  {
    name: "overlong-varint",
    apply(file, rng) {
      const f = rng.pick(file.fields);
      const run = new Uint8Array(rng.between(10, 16)).fill(0x80);
      return splice(file.bytes, f.lengthAt, f.lengthAt, run);
    },
  },
  {
    name: "corrupt-tag",
    apply(file, rng) {
      const f = rng.pick(file.fields);
      const field = rng.chance(0.5) ? rng.between(0, 220) : rng.below(2 ** 29);
      const tag = field * 8 + rng.below(8);
      return splice(file.bytes, f.tagAt, f.lengthAt, encodeVarint(tag));
    },
  },
  {
    name: "wrong-wire-type",
    apply(file, rng) {
      const f = rng.pick(file.fields);
      const wire = (f.wire + rng.between(1, 7)) % 8;
      return splice(file.bytes, f.tagAt, f.lengthAt, encodeVarint(f.field * 8 + wire));
    },
  },
  {
    name: "deep-groups",
    apply(file, rng) {
      // Nested groups of an unknown field, inserted between two fields of a message.
      const depth = rng.pick([99, 100, 101, 1000, 100000]);
      const field = rng.between(1000, 2000);
      const open = repeated(encodeVarint(field * 8 + 3), depth);
      const close = repeated(encodeVarint(field * 8 + 4), rng.chance(0.8) ? depth : depth - 1);
      const at = rng.pick(file.fields.filter((f) => f.depth <= 2)).tagAt;
      return splice(file.bytes, at, at, concat([open, close]));
    },
  },
  {
    name: "deep-messages",
    apply(file, rng) {
      // A message field's payload wrapped in itself many times (same field number).
      const index = pickField(file, rng, (f) => f.wire === 2 && f.depth <= 1);
      const f = file.fields[index];
      let payload: Uint8Array = file.bytes.slice(f.valueAt, f.end);
      const tag = file.bytes.subarray(f.tagAt, f.lengthAt);
      for (let n = rng.pick([50, 101, 500]); n > 0 && payload.length < MAX_MUTATED_BYTES; n--) {
        payload = concat([tag, encodeVarint(payload.length), payload]);
      }
      return replacePayload(file.bytes, file.fields, index, payload);
    },
  },
  {
    name: "huge-repeated",
    weight: 0.25,
    apply(file, rng) {
      // One small field (a dim, a bottom, a param) repeated many times inside its message.
      const index = pickField(file, rng, (f) => f.parent >= 0 && f.end - f.tagAt <= 64);
      if (index < 0) return file.bytes;
      const f = file.fields[index];
      const parent = file.fields[f.parent];
      const copies = repeated(file.bytes.subarray(f.tagAt, f.end), rng.pick([1000, 100000, 1e7]));
      const payload = concat([
        file.bytes.subarray(parent.valueAt, f.end),
        copies,
        file.bytes.subarray(f.end, parent.end),
      ]);
      return replacePayload(file.bytes, file.fields, f.parent, payload);
    },
  },
  {
    name: "repeated-layers",
    weight: 0.25,
    apply(file, rng) {
      // Whole layers repeated at the top level (duplicate names, huge layer counts).
      const layers = file.fields.filter((f) => f.depth === 0 && (f.field === 100 || f.field === 2));
      const layer = rng.pick(layers);
      const piece = file.bytes.subarray(layer.tagAt, layer.end);
      const copies = repeated(piece, rng.pick([2, 1000, 200000]));
      return splice(file.bytes, layer.end, layer.end, copies);
    },
  },
  {
    name: "invalid-utf8",
    apply(file, rng) {
      const index = pickField(file, rng, (f) => f.fieldType === "string");
      if (index < 0) return file.bytes;
      const f = file.fields[index];
      const text = file.bytes.subarray(f.valueAt, f.end);
      const at = rng.below(text.length + 1);
      const bad = Uint8Array.from(rng.pick(INVALID_UTF8));
      return replacePayload(file.bytes, file.fields, index, splice(text, at, at, bad));
    },
  },
  {
    name: "special-floats",
    apply(file, rng) {
      const data = file.fields.filter((f) =>
        f.parentType === "caffe.BlobProto" && f.field === 5 && f.wire === 2 && f.end > f.valueAt
      );
      if (data.length === 0) return file.bytes;
      const out = file.bytes.slice();
      const view = new DataView(out.buffer);
      for (let n = rng.pick([1, 3, 1000]); n > 0; n--) {
        const f = rng.pick(data);
        const at = f.valueAt + 4 * rng.below((f.end - f.valueAt) >> 2);
        view.setFloat32(at, rng.pick(SPECIAL_FLOATS), true);
      }
      return out;
    },
  },
  {
    name: "absurd-shape",
    apply(file, rng) {
      // A blob shape's dims replaced: huge, zero, negative (int64 two's complement), many.
      const index = pickField(file, rng, (f) => f.parentType === "caffe.BlobShape" && f.wire === 2);
      if (index < 0) return file.bytes;
      const dims: (number | bigint)[] = [];
      for (let n = rng.pick([1, 2, 4, 40]); n > 0; n--) {
        dims.push(rng.pick([0, 1, 3, 2 ** 31, 2 ** 40, 2n ** 63n - 1n, 2n ** 64n - 1n, 1e15]));
      }
      return replacePayload(file.bytes, file.fields, index, concat(dims.map(encodeVarint)));
    },
  },
  {
    name: "drop-blob-data",
    apply(file, rng) {
      // Data shorter or longer than the shape says, the rest well-formed.
      const index = pickField(
        file,
        rng,
        (f) => f.parentType === "caffe.BlobProto" && f.field === 5,
      );
      if (index < 0) return file.bytes;
      const f = file.fields[index];
      const length = f.end - f.valueAt;
      const keep = rng.pick([0, 4, length - 4, length + 4, length + 3, length - 1]);
      const payload = new Uint8Array(Math.max(0, keep));
      payload.set(file.bytes.subarray(f.valueAt, f.valueAt + Math.min(keep, length)));
      return replacePayload(file.bytes, file.fields, index, payload);
    },
  },
];
