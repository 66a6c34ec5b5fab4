/**
 * Damage to a protobuf text file (prototxt, record): raw byte damage, truncation at every token
 * boundary, token swaps, deletions, duplications and replacements (special numbers included),
 * deep nesting, huge repeated blocks and fields, and invalid UTF-8.
 *
 * @module
 */

import { concat } from "./wire_map.ts";
import type { Rng } from "./rng.ts";
import { MAX_MUTATED_BYTES } from "./binary_mutations.ts";

/** A text file split into tokens (made once per corpus file). */
export interface TokenizedText {
  /** The original text. */
  text: string;
  /** The original text as UTF-8 (shared: mutations copy it before changing it). */
  bytes: Uint8Array;
  /** Tokens (whitespace and comments excluded) as [start, end) offsets, in order. */
  tokens: [number, number][];
  /** Spans [start, end) of every `{ … }` block with the field name before it. */
  blocks: [number, number][];
}

const TOKEN = /"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|[A-Za-z0-9_.+-]+|[{}:<>[\],;]|\S/g;

/** Tokenizes `text` for the mutations below (comments and whitespace skipped). */
export function tokenizeText(text: string): TokenizedText {
  const tokens: [number, number][] = [];
  for (const line of text.matchAll(/[^\n]*\n?/g)) {
    const body = line[0].replace(/#.*/, "");
    for (const match of body.matchAll(TOKEN)) {
      const start = line.index + match.index;
      tokens.push([start, start + match[0].length]);
    }
  }
  const blocks: [number, number][] = [];
  const open: number[] = [];
  for (const [i, [start, end]] of tokens.entries()) {
    const token = text.slice(start, end);
    if (token === "{") open.push(i);
    else if (token === "}" && open.length > 0) {
      const first = open.pop()!;
      blocks.push([tokens[Math.max(0, first - 1)][0], end]);
    }
  }
  return { text, bytes: encoder.encode(text), tokens, blocks };
}

/** One text mutation: a name and the function making the damaged bytes. */
export interface TextMutation {
  /** Stable name, recorded with findings. */
  name: string;
  /** How often it is chosen relative to the others (default 1); slow ones are chosen less. */
  weight?: number;
  /** The damaged file as bytes (some mutations break the UTF-8). */
  apply(file: TokenizedText, rng: Rng): Uint8Array;
}

const encoder = new TextEncoder();
const NOISE = ['"', "'", "{", "}", ":", "#", "\\", "\n", "-", "e", "0x", "<", "[", ",", " ", "\0"];
const SPECIAL_TOKENS = [
  "nan",
  "inf",
  "-inf",
  "infinity",
  "1e39",
  "-1e39",
  "1e-45",
  "1e-50",
  "0",
  "-0",
  "1e30",
  "1e-30",
  "3.4028235e38",
  "99999999999999999999",
  "0x7fffffff",
  "0xffffffffffffffff",
  "-2147483649",
  "4294967296",
  "-1",
  "true",
  "AVE",
  "MAX",
  '""',
  '"\\377\\000"',
  '"\\xZZ"',
  "layer",
  "record",
  "{",
  "}",
  ":",
];
const INVALID_UTF8 = [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2]];

function utf8(pieces: string[]): Uint8Array {
  return encoder.encode(pieces.join(""));
}

function tokenText(file: TokenizedText, i: number): string {
  const [start, end] = file.tokens[i];
  return file.text.slice(start, end);
}

function repeatedText(piece: string, count: number): string {
  return piece.repeat(Math.max(1, Math.min(count, Math.floor(MAX_MUTATED_BYTES / piece.length))));
}

/** The text mutations, in a fixed order (their index is part of a case's recipe). */
export const TEXT_MUTATIONS: readonly TextMutation[] = [
  {
    name: "bit-flips",
    apply(file, rng) {
      const out = file.bytes.slice();
      for (let n = rng.between(1, 4); n > 0; n--) out[rng.below(out.length)] ^= 1 << rng.below(8);
      return out;
    },
  },
  {
    name: "insert-delete-chars",
    apply(file, rng) {
      const at = rng.below(file.text.length + 1);
      return rng.chance(0.5)
        ? utf8([file.text.slice(0, at), rng.pick(NOISE), file.text.slice(at)])
        : utf8([file.text.slice(0, at), file.text.slice(at + rng.between(1, 40))]);
    },
  },
  {
    name: "truncate-at-token",
    apply(file, rng) {
      const [start, end] = rng.pick(file.tokens);
      return utf8([file.text.slice(0, rng.chance(0.5) ? start : end)]);
    },
  },
  {
    name: "swap-tokens",
    apply(file, rng) {
      const i = rng.below(file.tokens.length);
      const j = rng.chance(0.5)
        ? Math.min(file.tokens.length - 1, i + 1)
        : rng.below(file.tokens.length);
      const [a, b] = i < j ? [i, j] : [j, i];
      if (a === b) return file.bytes;
      const [aStart, aEnd] = file.tokens[a];
      const [bStart, bEnd] = file.tokens[b];
      return utf8([
        file.text.slice(0, aStart),
        file.text.slice(bStart, bEnd),
        file.text.slice(aEnd, bStart),
        file.text.slice(aStart, aEnd),
        file.text.slice(bEnd),
      ]);
    },
  },
  {
    name: "delete-token",
    apply(file, rng) {
      const [start, end] = rng.pick(file.tokens);
      return utf8([file.text.slice(0, start), file.text.slice(end)]);
    },
  },
  {
    name: "duplicate-token",
    apply(file, rng) {
      const [start, end] = rng.pick(file.tokens);
      return utf8([file.text.slice(0, end), " ", file.text.slice(start)]);
    },
  },
  {
    name: "replace-token",
    apply(file, rng) {
      // Numbers are the favourite target: special values in scales, dims and counts.
      const numbers = file.tokens.map((_, i) => i).filter((i) =>
        /^[-+.\d]/.test(tokenText(file, i))
      );
      const i = numbers.length > 0 && rng.chance(0.7)
        ? rng.pick(numbers)
        : rng.below(file.tokens.length);
      const [start, end] = file.tokens[i];
      return utf8([file.text.slice(0, start), rng.pick(SPECIAL_TOKENS), file.text.slice(end)]);
    },
  },
  {
    name: "deep-nesting",
    apply(file, rng) {
      const depth = rng.pick([99, 100, 101, 1000, 100000]);
      const name = rng.pick(["layer", "x", "convolution_param", "value"]);
      const closing = rng.chance(0.8) ? depth : rng.below(depth);
      const [, at] = rng.pick(file.tokens);
      return utf8([
        file.text.slice(0, at),
        " ",
        repeatedText(`${name} { `, depth),
        "}".repeat(closing),
        file.text.slice(at),
      ]);
    },
  },
  {
    name: "huge-repeated",
    weight: 0.25,
    apply(file, rng) {
      // A whole block (layer, record, param) or one field repeated many times.
      const count = rng.pick([2, 1000, 100000, 1e7]);
      if (file.blocks.length > 0 && rng.chance(0.5)) {
        const [start, end] = rng.pick(file.blocks);
        const block = file.text.slice(start, end) + "\n";
        return utf8([
          file.text.slice(0, end),
          "\n",
          repeatedText(block, count),
          file.text.slice(end),
        ]);
      }
      const i = rng.below(Math.max(1, file.tokens.length - 2));
      if (tokenText(file, i + 1) !== ":") return file.bytes;
      const field = file.text.slice(file.tokens[i][0], file.tokens[i + 2][1]) + " ";
      const at = file.tokens[i + 2][1];
      return utf8([file.text.slice(0, at), " ", repeatedText(field, count), file.text.slice(at)]);
    },
  },
  {
    name: "invalid-utf8",
    apply(file, rng) {
      const bytes = file.bytes;
      // Into a string literal when there is one, else anywhere.
      const strings = file.tokens.filter(([s]) => file.text[s] === '"');
      const at = strings.length > 0 && rng.chance(0.7)
        ? encoder.encode(file.text.slice(0, rng.pick(strings)[0] + 1)).length
        : rng.below(bytes.length + 1);
      return concat([
        bytes.subarray(0, at),
        Uint8Array.from(rng.pick(INVALID_UTF8)),
        bytes.subarray(at),
      ]);
    },
  },
];
