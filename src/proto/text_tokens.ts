/**
 * The tokenizer of protobuf text format: a cursor over the source that tracks line and column,
 * skips whitespace and `#` comments, reads scalar tokens (numbers, identifiers, adjacent string
 * literals with their escapes) and reports errors at their place.
 *
 * @module
 */

import { ConvertError, type ErrorCode } from "../errors.ts";
import { LIMITS } from "../limits.ts";
import { hexValue, pushUtf8, SIMPLE_ESCAPES, utf8Decoder, utf8Encoder } from "./text_strings.ts";

/** Token kind: one or more adjacent string literals. */
export const T_STRING = 0;
/** Token kind: a number. */
export const T_NUMBER = 1;
/** Token kind: an identifier (`inf`, an enum name, `true` …). */
export const T_IDENT = 2;

/** True for a character code that can start an identifier (letter or `_`). */
export function isIdentStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
}

/** True for a character code that can go on an identifier (letter, digit or `_`). */
export function isIdentPart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || (c >= 48 && c <= 57);
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/**
 * The scanning half of the text reader: position, line tracking and errors, and the last scalar
 * token read, for the schema-driven reader built on it.
 */
export class TextTokenizer {
  /** The source text. */
  protected readonly src: string;
  private readonly file?: string;
  /** The offset of the next character to read. */
  protected pos = 0;
  /** The 1-based line of `pos`. */
  protected line = 1;
  /** The offset where the line of `pos` starts. */
  protected lineStart = 0;
  // The last scalar token read by readToken().
  /** Its kind: `T_STRING`, `T_NUMBER` or `T_IDENT`. */
  protected tokKind = T_IDENT;
  /** Its offset (of the `-` sign, when negative). */
  protected tokStart = 0;
  /** Its source text, without a `-` sign; adjacent string literals joined by spaces. */
  protected tokText = "";
  /** True when a `-` sign came before it. */
  protected tokNegative = false;
  /** The body of the last string literal: a plain slice, or its decoded bytes. */
  private tokPiece: string | number[] = "";
  /** Every literal body of the last string token when adjacent literals were concatenated. */
  private tokPieces: (string | number[])[] | null = null;

  /** A tokenizer at the start of `src` (after a byte-order mark, if any). */
  constructor(src: string, file?: string) {
    this.src = src;
    this.file = file;
    if (src.charCodeAt(0) === 0xfeff) this.pos = this.lineStart = 1;
  }

  /** Throws a `ConvertError` for the source offset `at`, with its line and column. */
  protected fail(code: ErrorCode, message: string, at = this.pos): never {
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

  /** How the character at `at` is named in messages (`end of file` past the end). */
  protected describe(at: number): string {
    if (at >= this.src.length) return "end of file";
    const c = this.src.codePointAt(at)!;
    return `'${String.fromCodePoint(c)}'`;
  }

  /** Skips whitespace and `#` comments. */
  protected skip(): void {
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

  /** Reads one scalar value token: string literal(s), an optionally negative number or identifier. */
  protected readToken(): void {
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
    let length = 0;
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
      length += p - open - 1;
      if (length > LIMITS.stringBytes) {
        this.fail(
          "LIMIT_EXCEEDED",
          `a string longer than the limit of ${LIMITS.stringBytes} bytes`,
          open,
        );
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
  protected tokRaw(): string {
    return this.tokNegative ? "-" + this.tokText : this.tokText;
  }

  /** The bytes of the last string token. */
  protected tokBytes(): Uint8Array {
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

  /**
   * The text of the last string token (escaped bytes read as UTF-8). Bytes that are not UTF-8
   * (escaped, or replaced by U+FFFD when the file was decoded) are `INVALID_UTF8`.
   */
  protected tokString(): string {
    const piece = this.tokPiece;
    const text = this.tokPieces === null
      ? typeof piece === "string" ? piece : utf8Decoder.decode(Uint8Array.from(piece))
      : this.tokPieces.every((p) => typeof p === "string")
      ? this.tokPieces.join("")
      : utf8Decoder.decode(this.tokBytes());
    this.rejectReplacedBytes(text);
    return text;
  }

  /**
   * `INVALID_UTF8` at the last string token when `text` (its value, or its source text) holds
   * U+FFFD: bytes that were not UTF-8, replaced when decoded, which the outputs would not keep.
   */
  protected rejectReplacedBytes(text: string): void {
    if (text.includes("\uFFFD")) {
      this.fail(
        "INVALID_UTF8",
        `the string ${this.tokRaw().slice(0, 40)} is not valid UTF-8 (or holds U+FFFD)`,
        this.tokStart,
      );
    }
  }
}
