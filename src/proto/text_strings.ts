/**
 * String literals of protobuf text format: the UTF-8 and C-escape helpers the tokenizer decodes
 * literals with, and the quoting the printer writes them with.
 *
 * @module
 */

/** Encodes text as UTF-8. */
export const utf8Encoder: TextEncoder = new TextEncoder();
/** Decodes UTF-8 bytes to text. */
export const utf8Decoder: TextDecoder = new TextDecoder();

/** Appends the UTF-8 bytes of code point `cp` to `out`. */
export function pushUtf8(out: number[], cp: number): void {
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

/** The byte of each one-letter escape, by the letter's character code (`n` -> 10, …). */
export const SIMPLE_ESCAPES: Record<number, number> = {
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

/** The value of hex digit character code `c`, or -1 when it is not a hex digit. */
export function hexValue(c: number): number {
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
export function quote(value: string | Uint8Array): string {
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
