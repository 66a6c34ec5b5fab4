/**
 * Number literals of protobuf text format: reading integer and float literals the way
 * protobuf's tokenizer does, and printing floats and doubles in their shortest round-trip form.
 *
 * @module
 */

/**
 * The shortest decimal that reads back as the same float32 as `value` (which is rounded to
 * float32 first); `nan`, `inf`, `-inf` and `-0` for the special values.
 *
 * @example
 * ```ts
 * import { formatFloat32 } from "./text_numbers.ts";
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
export function formatDouble(value: number): string {
  return value === 0 || !Number.isFinite(value) ? formatSpecial(value) : String(value);
}

function formatSpecial(value: number): string {
  if (Number.isNaN(value)) return "nan";
  if (value === Infinity) return "inf";
  if (value === -Infinity) return "-inf";
  return Object.is(value, -0) ? "-0" : "0";
}

/** The magnitude of an integer literal (decimal, `0x` hex or `0` octal), or NaN if malformed. */
export function integerMagnitude(text: string): number {
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
export function floatLiteral(
  text: string,
  negative: boolean,
  isNumber: boolean,
): number | undefined {
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
export function isIntegerText(text: string): boolean {
  const second = text.charCodeAt(1);
  if (second === 120 || second === 88) return true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** Parses a raw float text the way the reader does; undefined when it is not a float literal. */
export function rawFloat(raw: string): number | undefined {
  const negative = raw.charCodeAt(0) === 45;
  const body = negative ? raw.slice(1).trimStart() : raw;
  const c = body.charCodeAt(0);
  const isNumber = (c >= 48 && c <= 57) || c === 46;
  const value = floatLiteral(body, negative, isNumber);
  return value === undefined || (isNumber && Number.isNaN(value)) ? undefined : value;
}
