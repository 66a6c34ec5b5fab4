/**
 * Protobuf text format (prototxt, record files), read and printed through the schema by
 * protobufjs reflection, without losing anything: field order is kept, and fields the schema does
 * not know (whole unknown messages included) are kept with their source text and printed back as
 * they were.
 *
 * @module
 */

import protobuf from "npm:protobufjs@8.0.0";
import { ConvertError, type ErrorCode } from "../errors.ts";
import { type Scalar, type TextField, TextMessage } from "./tree.ts";

// ---------------------------------------------------------------------------------------------
// Schema view: the facts about each field the reader and printer need, cached per type.
// ---------------------------------------------------------------------------------------------

const INT32 = 0;
const UINT32 = 1;
const INT64 = 2;
const UINT64 = 3;
const FLOAT = 4;
const DOUBLE = 5;
const BOOL = 6;
const STRING = 7;
const BYTES = 8;
const ENUM = 9;
const MESSAGE = 10;

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

/** Smallest and largest value of each integer kind (64-bit kinds: safe integers only). */
const INT_RANGE: Record<number, [number, number]> = {
  [INT32]: [-0x80000000, 0x7fffffff],
  [UINT32]: [0, 0xffffffff],
  [INT64]: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  [UINT64]: [0, Number.MAX_SAFE_INTEGER],
};

interface FieldInfo {
  name: string;
  id: number;
  kind: number;
  repeated: boolean;
  /** The type as the schema names it (`float`, `PoolMethod`, …), for messages. */
  typeName: string;
  enumByName?: Map<string, number>;
  enumById?: Map<number, string>;
  messageType?: protobuf.Type;
}

interface TypeInfo {
  byName: Map<string, FieldInfo>;
  byId: FieldInfo[];
}

const typeInfos = new WeakMap<protobuf.Type, TypeInfo>();

function typeInfo(type: protobuf.Type): TypeInfo {
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
  info = { byName, byId: [...byName.values()].sort((a, b) => a.id - b.id) };
  typeInfos.set(type, info);
  return info;
}

// ---------------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------------

/**
 * The shortest decimal that reads back as the same float32 as `value` (which is rounded to
 * float32 first); `nan`, `inf`, `-inf` and `-0` for the special values.
 *
 * @example
 * ```ts
 * import { formatFloat32 } from "./text.ts";
 * formatFloat32(Math.fround(0.1)); // "0.1"
 * formatFloat32(1 / 3); // "0.33333334"
 * ```
 */
export function formatFloat32(value: number): string {
  const f = Math.fround(value);
  if (f === 0 || !Number.isFinite(f)) return formatSpecial(f);
  for (let digits = 1; digits < 9; digits++) {
    const candidate = Number(f.toPrecision(digits));
    if (Math.fround(candidate) === f) return String(candidate);
  }
  return String(Number(f.toPrecision(9)));
}

/** The shortest decimal that reads back as the same float64. */
function formatDouble(value: number): string {
  return value === 0 || !Number.isFinite(value) ? formatSpecial(value) : String(value);
}

function formatSpecial(value: number): string {
  if (Number.isNaN(value)) return "nan";
  if (value === Infinity) return "inf";
  if (value === -Infinity) return "-inf";
  return Object.is(value, -0) ? "-0" : "0";
}

/** The magnitude of an integer literal (decimal, `0x` hex or `0` octal), or NaN if malformed. */
function integerMagnitude(text: string): number {
  const second = text.charCodeAt(1);
  if (text.charCodeAt(0) !== 48 || text.length === 1 || second === 120 || second === 88) {
    return Number(text); // decimal or 0x hex
  }
  let value = 0;
  for (let i = 1; i < text.length; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 7) return NaN;
    value = value * 8 + digit;
  }
  return value;
}

/** The value of a float literal: a number token or `inf`/`infinity`/`nan`, with its sign. */
function floatLiteral(text: string, negative: boolean, isNumber: boolean): number | undefined {
  let value: number;
  if (isNumber) {
    value = isIntegerText(text) ? integerMagnitude(text) : Number(stripFloatSuffix(text));
  } else {
    const lower = text.toLowerCase();
    if (lower === "inf" || lower === "infinity") value = Infinity;
    else if (lower === "nan") value = NaN;
    else return undefined;
  }
  return negative ? -value : value;
}

function stripFloatSuffix(text: string): string {
  const last = text.charCodeAt(text.length - 1);
  return last === 102 || last === 70 ? text.slice(0, -1) : text;
}

/** True for `123`, `0x1F`, `017`; false for `1.5`, `1e3`, `2f`. */
function isIntegerText(text: string): boolean {
  const second = text.charCodeAt(1);
  if (second === 120 || second === 88) return true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** Parses a raw float text the way the reader does; undefined when it is not a float literal. */
function rawFloat(raw: string): number | undefined {
  const negative = raw.charCodeAt(0) === 45;
  const body = negative ? raw.slice(1).trimStart() : raw;
  const c = body.charCodeAt(0);
  const isNumber = (c >= 48 && c <= 57) || c === 46;
  const value = floatLiteral(body, negative, isNumber);
  return value === undefined || (isNumber && Number.isNaN(value)) ? undefined : value;
}

// ---------------------------------------------------------------------------------------------
// Strings
// ---------------------------------------------------------------------------------------------

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** Appends the UTF-8 bytes of code point `cp` to `out`. */
function pushUtf8(out: number[], cp: number): void {
  if (cp < 0x80) out.push(cp);
  else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
  else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
  else {
    out.push(
      0xf0 | (cp >> 18),
      0x80 | ((cp >> 12) & 63),
      0x80 | ((cp >> 6) & 63),
      0x80 | (cp & 63),
    );
  }
}

const SIMPLE_ESCAPES: Record<number, number> = {
  97: 7, // \a
  98: 8, // \b
  102: 12, // \f
  110: 10, // \n
  114: 13, // \r
  116: 9, // \t
  118: 11, // \v
  92: 92, // \\
  63: 63, // \?
  39: 39, // \'
  34: 34, // \"
};

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** C-escapes bytes as protobuf's CEscape does: named escapes, octal for other non-printables. */
function cEscapeBytes(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) {
    if (b === 10) out += "\\n";
    else if (b === 13) out += "\\r";
    else if (b === 9) out += "\\t";
    else if (b === 34) out += '\\"';
    else if (b === 39) out += "\\'";
    else if (b === 92) out += "\\\\";
    else if (b < 0x20 || b >= 0x7f) out += "\\" + b.toString(8).padStart(3, "0");
    else out += String.fromCharCode(b);
  }
  return out;
}

/** A double-quoted, C-escaped literal for a string (as UTF-8) or bytes. */
function quote(value: string | Uint8Array): string {
  if (typeof value === "string") {
    let plain = true;
    for (let i = 0; i < value.length && plain; i++) {
      const c = value.charCodeAt(i);
      plain = c >= 0x20 && c < 0x7f && c !== 34 && c !== 39 && c !== 92;
    }
    if (plain) return '"' + value + '"';
    value = utf8Encoder.encode(value);
  }
  return '"' + cEscapeBytes(value) + '"';
}

// ---------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------

/** Deepest message nesting accepted (protobuf's own default recursion limit). */
const MAX_DEPTH = 100;

const T_STRING = 0;
const T_NUMBER = 1;
const T_IDENT = 2;

function isIdentStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
}

function isIdentPart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || (c >= 48 && c <= 57);
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function kindName(info: FieldInfo): string {
  return info.kind === ENUM
    ? `enum ${info.typeName}`
    : info.kind === MESSAGE
    ? `message ${info.typeName}`
    : info.typeName;
}

class TextReader {
  private readonly src: string;
  private readonly file?: string;
  private pos = 0;
  private line = 1;
  private lineStart = 0;
  private depth = 0;
  // The last scalar token read by readToken().
  private tokKind = T_IDENT;
  private tokStart = 0;
  private tokText = "";
  private tokNegative = false;
  /** The body of the last string literal: a plain slice, or its decoded bytes. */
  private tokPiece: string | number[] = "";
  /** Every literal body of the last string token when adjacent literals were concatenated. */
  private tokPieces: (string | number[])[] | null = null;

  constructor(src: string, file?: string) {
    this.src = src;
    this.file = file;
    if (src.charCodeAt(0) === 0xfeff) this.pos = this.lineStart = 1;
  }

  parse(type: protobuf.Type): TextMessage {
    return this.messageBody(type, -1);
  }

  private fail(code: ErrorCode, message: string, at = this.pos): never {
    let line = this.line;
    let column = at - this.lineStart + 1;
    if (at < this.lineStart) {
      line = 1;
      let start = 0;
      for (let i = this.src.indexOf("\n"); i >= 0 && i < at; i = this.src.indexOf("\n", i + 1)) {
        line++;
        start = i + 1;
      }
      column = at - start + 1;
    }
    throw new ConvertError(code, message, { file: this.file, line, column });
  }

  private describe(at: number): string {
    if (at >= this.src.length) return "end of file";
    const c = this.src.codePointAt(at)!;
    return `'${String.fromCodePoint(c)}'`;
  }

  /** Skips whitespace and `#` comments. */
  private skip(): void {
    const s = this.src;
    const n = s.length;
    let p = this.pos;
    while (p < n) {
      const c = s.charCodeAt(p);
      if (c === 10) {
        p++;
        this.line++;
        this.lineStart = p;
      } else if (c === 32 || c === 9 || c === 13 || c === 11 || c === 12) {
        p++;
      } else if (c === 35) {
        p++;
        while (p < n && s.charCodeAt(p) !== 10) p++;
      } else {
        break;
      }
    }
    this.pos = p;
  }

  private messageBody(type: protobuf.Type | null, close: number): TextMessage {
    const s = this.src;
    const fields: TextField[] = [];
    const infos = type === null ? undefined : typeInfo(type).byName;
    for (;;) {
      this.skip();
      if (this.pos >= s.length) {
        if (close < 0) break;
        this.fail(
          "TEXT_SYNTAX",
          `unexpected end of file: expected '${String.fromCharCode(close)}'`,
        );
      }
      const c = s.charCodeAt(this.pos);
      if (c === close) {
        this.pos++;
        break;
      }
      const start = this.pos;
      const line = this.line;
      const column = start - this.lineStart + 1;
      let name: string;
      if (isIdentStart(c)) {
        let p = start + 1;
        while (p < s.length && isIdentPart(s.charCodeAt(p))) p++;
        name = s.slice(start, p);
        this.pos = p;
      } else if (c === 91) {
        name = this.extensionName();
      } else {
        this.fail("TEXT_SYNTAX", `expected a field name, found ${this.describe(start)}`);
      }
      this.skip();
      let colon = false;
      if (s.charCodeAt(this.pos) === 58) {
        this.pos++;
        colon = true;
        this.skip();
      }
      const info = infos?.get(name);
      this.fieldValue(fields, name, info, colon, line, column);
      this.skip();
      const sep = s.charCodeAt(this.pos);
      if (sep === 59 || sep === 44) this.pos++;
    }
    return new TextMessage(fields);
  }

  /** `[pkg.ext]` or `[type.googleapis.com/pkg.Type]`: always an unknown field. */
  private extensionName(): string {
    const s = this.src;
    const start = this.pos;
    let p = start + 1;
    while (p < s.length) {
      const c = s.charCodeAt(p);
      if (c === 93) break;
      if (!isIdentPart(c) && c !== 46 && c !== 47 && c !== 32) {
        this.fail("TEXT_SYNTAX", `unexpected ${this.describe(p)} in an extension name`, p);
      }
      p++;
    }
    if (p >= s.length) this.fail("TEXT_SYNTAX", "unexpected end of file in an extension name", p);
    this.pos = p + 1;
    return s.slice(start, p + 1);
  }

  private fieldValue(
    fields: TextField[],
    name: string,
    info: FieldInfo | undefined,
    colon: boolean,
    line: number,
    column: number,
  ): void {
    const c = this.src.charCodeAt(this.pos);
    if (c === 91) {
      if (info !== undefined && !info.repeated) {
        this.fail("TEXT_WRONG_TYPE", `field "${name}" is not repeated and cannot take a list`);
      }
      this.pos++;
      this.skip();
      if (this.src.charCodeAt(this.pos) === 93) {
        this.pos++;
        return;
      }
      for (;;) {
        this.skip();
        const itemLine = this.line;
        const itemColumn = this.pos - this.lineStart + 1;
        const d = this.src.charCodeAt(this.pos);
        if (d === 123 || d === 60) fields.push(this.messageField(name, info, itemLine, itemColumn));
        else if (!colon) this.fail("TEXT_SYNTAX", `expected ':' after field name "${name}"`);
        else fields.push(this.scalarField(name, info, itemLine, itemColumn));
        this.skip();
        const sep = this.src.charCodeAt(this.pos);
        this.pos++;
        if (sep === 93) break;
        if (sep !== 44) {
          this.fail(
            "TEXT_SYNTAX",
            `expected ',' or ']', found ${this.describe(this.pos - 1)}`,
            this.pos - 1,
          );
        }
      }
      return;
    }
    if (c === 123 || c === 60) {
      fields.push(this.messageField(name, info, line, column));
      return;
    }
    if (!colon) {
      this.fail(
        "TEXT_SYNTAX",
        `expected ':' or '{' after field name "${name}", found ${this.describe(this.pos)}`,
      );
    }
    fields.push(this.scalarField(name, info, line, column));
  }

  private messageField(
    name: string,
    info: FieldInfo | undefined,
    line: number,
    column: number,
  ): TextField {
    if (info !== undefined && info.kind !== MESSAGE) {
      this.fail("TEXT_WRONG_TYPE", `field "${name}" is ${kindName(info)}, not a message`);
    }
    const open = this.src.charCodeAt(this.pos);
    this.pos++;
    if (++this.depth > MAX_DEPTH) {
      this.fail("TEXT_SYNTAX", `messages nested more than ${MAX_DEPTH} deep`, this.pos - 1);
    }
    const value = this.messageBody(info?.messageType ?? null, open === 123 ? 125 : 62);
    this.depth--;
    return info === undefined
      ? { name, value, unknown: true, line, column }
      : { name, value, line, column };
  }

  private scalarField(
    name: string,
    info: FieldInfo | undefined,
    line: number,
    column: number,
  ): TextField {
    this.readToken();
    const raw = this.tokRaw();
    if (info === undefined) {
      if (this.tokKind === T_STRING) this.tokBytes(); // validates the escapes
      return { name, value: raw, raw, unknown: true, line, column };
    }
    return { name, value: this.convert(info, name, raw), raw, line, column };
  }

  /** Reads one scalar value token: string literal(s), an optionally negative number or identifier. */
  private readToken(): void {
    const s = this.src;
    let c = s.charCodeAt(this.pos);
    this.tokStart = this.pos;
    this.tokNegative = false;
    if (c === 34 || c === 39) {
      this.readStrings();
      return;
    }
    if (c === 45) {
      this.tokNegative = true;
      this.pos++;
      this.skip();
      c = s.charCodeAt(this.pos);
    }
    const start = this.pos;
    if (isIdentStart(c)) {
      let p = start + 1;
      while (p < s.length && isIdentPart(s.charCodeAt(p))) p++;
      this.tokKind = T_IDENT;
      this.tokText = s.slice(start, p);
      this.pos = p;
      return;
    }
    if (isDigit(c) || (c === 46 && isDigit(s.charCodeAt(start + 1)))) {
      this.readNumber();
      return;
    }
    this.fail("TEXT_SYNTAX", `expected a value, found ${this.describe(start)}`, start);
  }

  /** A number token as protobuf's tokenizer reads it (hex, octal, decimal, float, `f` suffix). */
  private readNumber(): void {
    const s = this.src;
    const start = this.pos;
    let p = start;
    const c0 = s.charCodeAt(p);
    const c1 = s.charCodeAt(p + 1);
    if (c0 === 48 && (c1 === 120 || c1 === 88)) {
      p += 2;
      while (hexValue(s.charCodeAt(p)) >= 0) p++;
      if (p === start + 2) this.fail("TEXT_SYNTAX", "'0x' must be followed by hex digits", start);
    } else if (c0 === 48 && isDigit(c1)) {
      p++;
      while (isDigit(s.charCodeAt(p))) {
        if (s.charCodeAt(p) > 55) {
          this.fail("TEXT_SYNTAX", "a number starting with 0 must be octal", start);
        }
        p++;
      }
    } else {
      while (isDigit(s.charCodeAt(p))) p++;
      if (s.charCodeAt(p) === 46) {
        p++;
        while (isDigit(s.charCodeAt(p))) p++;
      }
      const e = s.charCodeAt(p);
      if (e === 101 || e === 69) {
        p++;
        const sign = s.charCodeAt(p);
        if (sign === 43 || sign === 45) p++;
        if (!isDigit(s.charCodeAt(p))) this.fail("TEXT_SYNTAX", "an exponent needs digits", start);
        while (isDigit(s.charCodeAt(p))) p++;
      }
      const f = s.charCodeAt(p);
      if ((f === 102 || f === 70) && p > start) p++;
    }
    const next = s.charCodeAt(p);
    if (isIdentPart(next) || next === 46) {
      this.fail("TEXT_SYNTAX", `malformed number '${s.slice(start, p + 1)}'`, start);
    }
    this.tokKind = T_NUMBER;
    this.tokText = s.slice(start, p);
    this.pos = p;
  }

  /**
   * One or more adjacent string literals. A single literal (the common case) is kept as
   * `tokPiece`; concatenations also fill `tokPieces`. Escaped literals are decoded to bytes.
   */
  private readStrings(): void {
    const s = this.src;
    let pieces: (string | number[])[] | null = null;
    let literals: string[] | null = null;
    for (;;) {
      const quoteChar = s.charCodeAt(this.pos);
      const open = this.pos;
      let p = open + 1;
      let escaped = false;
      for (;;) {
        if (p >= s.length) {
          this.fail("TEXT_UNTERMINATED_STRING", "string literal is not closed", open);
        }
        const c = s.charCodeAt(p);
        if (c === quoteChar) break;
        if (c === 10) {
          this.fail("TEXT_UNTERMINATED_STRING", "string literal is not closed on its line", open);
        }
        if (c === 92) {
          escaped = true;
          p++;
          if (s.charCodeAt(p) === 10 || p >= s.length) {
            this.fail("TEXT_UNTERMINATED_STRING", "string literal is not closed on its line", open);
          }
        }
        p++;
      }
      const piece = escaped ? this.unescape(open + 1, p) : s.slice(open + 1, p);
      const literal = s.slice(open, p + 1);
      if (pieces === null) {
        this.tokPiece = piece;
        this.tokText = literal;
      } else {
        pieces.push(piece);
        literals!.push(literal);
      }
      this.pos = p + 1;
      // Whitespace after the literal is skipped for good: the caller skips it next anyway.
      this.skip();
      const next = s.charCodeAt(this.pos);
      if (next !== 34 && next !== 39) break;
      if (pieces === null) {
        pieces = [this.tokPiece];
        literals = [this.tokText];
      }
    }
    this.tokKind = T_STRING;
    this.tokPieces = pieces;
    if (literals !== null) this.tokText = literals.join(" ");
  }

  /** The bytes of the literal body `src[from, to)`, escapes decoded, other text as UTF-8. */
  private unescape(from: number, to: number): number[] {
    const s = this.src;
    const out: number[] = [];
    let p = from;
    while (p < to) {
      const c = s.codePointAt(p)!;
      if (c !== 92) {
        pushUtf8(out, c);
        p += c > 0xffff ? 2 : 1;
        continue;
      }
      const at = p;
      const e = s.charCodeAt(p + 1);
      p += 2;
      const simple = SIMPLE_ESCAPES[e];
      if (simple !== undefined) {
        out.push(simple);
      } else if (e >= 48 && e <= 55) {
        let value = e - 48;
        for (let k = 0; k < 2 && s.charCodeAt(p) >= 48 && s.charCodeAt(p) <= 55; k++) {
          value = value * 8 + s.charCodeAt(p++) - 48;
        }
        out.push(value & 0xff);
      } else if (e === 120 || e === 88) {
        let value = hexValue(s.charCodeAt(p));
        if (value < 0) this.fail("TEXT_SYNTAX", "'\\x' must be followed by hex digits", at);
        p++;
        const h = hexValue(s.charCodeAt(p));
        if (h >= 0 && p < to) {
          value = value * 16 + h;
          p++;
        }
        out.push(value);
      } else if (e === 117 || e === 85) {
        const digits = e === 117 ? 4 : 8;
        let cp = 0;
        for (let k = 0; k < digits; k++) {
          const h = p < to ? hexValue(s.charCodeAt(p++)) : -1;
          if (h < 0) {
            this.fail(
              "TEXT_SYNTAX",
              `'\\${String.fromCharCode(e)}' needs ${digits} hex digits`,
              at,
            );
          }
          cp = cp * 16 + h;
        }
        if (cp > 0x10ffff) this.fail("TEXT_SYNTAX", "unicode escape beyond U+10FFFF", at);
        pushUtf8(out, cp);
      } else {
        this.fail("TEXT_SYNTAX", `invalid escape sequence '\\${String.fromCharCode(e)}'`, at);
      }
    }
    return out;
  }

  /** The source text of the last token (negative numbers as `-` + number). */
  private tokRaw(): string {
    return this.tokNegative ? "-" + this.tokText : this.tokText;
  }

  /** The bytes of the last string token. */
  private tokBytes(): Uint8Array {
    const bytes: number[] = [];
    for (const piece of this.tokPieces ?? [this.tokPiece]) {
      if (typeof piece === "string") {
        for (const b of utf8Encoder.encode(piece)) bytes.push(b);
      } else {
        for (const b of piece) bytes.push(b);
      }
    }
    return Uint8Array.from(bytes);
  }

  /** The text of the last string token (escaped bytes read as UTF-8). */
  private tokString(): string {
    const piece = this.tokPiece;
    if (this.tokPieces === null) {
      return typeof piece === "string" ? piece : utf8Decoder.decode(Uint8Array.from(piece));
    }
    if (this.tokPieces.every((p) => typeof p === "string")) return this.tokPieces.join("");
    return utf8Decoder.decode(this.tokBytes());
  }

  private wrongType(info: FieldInfo, name: string, raw: string): never {
    const shown = raw.length > 40 ? raw.slice(0, 37) + "..." : raw;
    return this.fail(
      "TEXT_WRONG_TYPE",
      `field "${name}" is ${kindName(info)}; cannot take ${shown}`,
      this.tokStart,
    );
  }

  /** The typed value of the last token for a known field. */
  private convert(info: FieldInfo, name: string, raw: string): Scalar {
    const kind = info.kind;
    const at = this.tokStart;
    const tokKind = this.tokKind;
    if (kind === MESSAGE) this.wrongType(info, name, raw);
    if (kind === STRING || kind === BYTES) {
      if (tokKind !== T_STRING) this.wrongType(info, name, raw);
      return kind === STRING ? this.tokString() : this.tokBytes();
    }
    if (tokKind === T_STRING) this.wrongType(info, name, raw);
    const text = this.tokText;
    const negative = this.tokNegative;
    if (kind === FLOAT || kind === DOUBLE) {
      const value = floatLiteral(text, negative, tokKind === T_NUMBER);
      if (value === undefined) this.wrongType(info, name, raw);
      const stored = kind === FLOAT ? Math.fround(value!) : value!;
      if (tokKind === T_NUMBER && !Number.isFinite(stored)) {
        this.fail(
          "TEXT_OUT_OF_RANGE",
          `${raw} is out of range for ${info.typeName} field "${name}"`,
          at,
        );
      }
      return stored;
    }
    if (kind === ENUM) {
      if (tokKind === T_IDENT && !negative) {
        if (info.enumByName!.has(text)) return text;
      } else if (tokKind === T_NUMBER && isIntegerText(text)) {
        const id = integerMagnitude(text) * (negative ? -1 : 1);
        const enumName = info.enumById!.get(id);
        if (enumName !== undefined) return enumName;
      } else {
        this.wrongType(info, name, raw);
      }
      return this.fail(
        "TEXT_UNKNOWN_ENUM",
        `${info.typeName} has no value ${raw} (field "${name}")`,
        at,
      );
    }
    if (kind === BOOL) {
      if (tokKind === T_IDENT && !negative) {
        if (text === "true" || text === "True" || text === "t") return true;
        if (text === "false" || text === "False" || text === "f") return false;
        this.wrongType(info, name, raw);
      }
      if (tokKind !== T_NUMBER || !isIntegerText(text)) this.wrongType(info, name, raw);
      const value = integerMagnitude(text);
      if (negative || value > 1 || Number.isNaN(value)) {
        this.fail("TEXT_OUT_OF_RANGE", `${raw} is out of range for bool field "${name}"`, at);
      }
      return value === 1;
    }
    // Integers.
    if (tokKind !== T_NUMBER || !isIntegerText(text)) this.wrongType(info, name, raw);
    const magnitude = integerMagnitude(text);
    if (Number.isNaN(magnitude)) this.fail("TEXT_SYNTAX", `malformed integer ${raw}`, at);
    const value = negative ? 0 - magnitude : magnitude;
    const range = INT_RANGE[kind];
    if (value < range[0] || value > range[1]) {
      this.fail(
        "TEXT_OUT_OF_RANGE",
        `${raw} is out of range for ${info.typeName} field "${name}"`,
        at,
      );
    }
    return value;
  }
}

/**
 * Parses protobuf text format into a lossless tree typed by `type`. Known scalar fields get typed
 * values (float fields rounded to float32) and keep their source text in `raw`; unknown fields and
 * messages are kept with `unknown: true`. Every field has its 1-based line and column.
 *
 * @throws {ConvertError} `TEXT_SYNTAX`, `TEXT_UNTERMINATED_STRING`, `TEXT_UNKNOWN_ENUM`,
 * `TEXT_WRONG_TYPE` or `TEXT_OUT_OF_RANGE`, with `file`, `line` and `column`.
 *
 * @example
 * ```ts
 * import { parseText } from "./text.ts";
 * import { caffeType } from "./schema.ts";
 * const net = parseText('name: "n" layer { name: "a" type: "ReLU" }', caffeType("caffe.NetParameter"));
 * net.message("layer")?.get("type"); // "ReLU"
 * ```
 */
export function parseText(source: string, type: protobuf.Type, file?: string): TextMessage {
  return new TextReader(source, file).parse(type);
}

// ---------------------------------------------------------------------------------------------
// Printer
// ---------------------------------------------------------------------------------------------

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

function printFields(message: TextMessage, type: protobuf.Type | null, indent: string): string {
  const infos = type === null ? undefined : typeInfo(type).byName;
  let out = "";
  for (const field of message.fields) {
    const info = field.unknown ? undefined : infos?.get(field.name);
    const value = field.value;
    if (value instanceof TextMessage) {
      out += indent + field.name + " {\n" +
        printFields(value, info?.messageType ?? null, indent + "  ") +
        indent + "}\n";
    } else if (field.unknown) {
      out += indent + field.name + ": " + (field.raw ?? formatLoose(value)) + "\n";
    } else {
      out += indent + field.name + ": " + formatScalar(field, info) + "\n";
    }
  }
  return out;
}

/**
 * Prints a tree in canonical text format, as Caffe's own files look: two-space indent, one
 * `name: value` per line, `name {` … `}` for messages, strings double-quoted with C escapes, enums
 * bare, floats as their source text when they have one, else the shortest round-trip form.
 * Unknown fields print from their source text. The output re-parses to an equal tree and ends
 * with a newline (empty for an empty message).
 */
export function printText(message: TextMessage, type: protobuf.Type): string {
  return printFields(message, type, "");
}

// ---------------------------------------------------------------------------------------------
// protobufjs plain objects
// ---------------------------------------------------------------------------------------------

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
