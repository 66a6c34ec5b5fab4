/**
 * The types the in-memory API takes for file contents, and their checks: binary files as any
 * byte container (`Uint8Array`, `ArrayBuffer`, another typed array or `DataView`), text files as
 * strings. Anything else is a `BAD_ARGUMENT` error saying what was expected.
 *
 * @module
 */

import { ConvertError } from "./errors.ts";
import { withArticle } from "./printable.ts";

/** The contents of a binary file: a `Uint8Array`, an `ArrayBuffer` or any other view of bytes. */
export type BinaryInput = Uint8Array | ArrayBuffer | ArrayBufferView;

/** What `value` is, for messages: `a string`, `an ArrayBuffer`, `null`, `a number`... */
function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (typeof value !== "object") return withArticle(typeof value);
  return withArticle((value as object).constructor?.name ?? "Object");
}

/**
 * `value` as a `Uint8Array` over the same memory (no copy): `what` names the argument (e.g.
 * `weights`) and `file` the file it stands for, in the error for any other type.
 */
export function bytesArgument(value: unknown, what: string, file?: string): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  const hint = typeof value === "string"
    ? " (a file read as text loses bytes: read it as binary)"
    : "";
  throw new ConvertError(
    "BAD_ARGUMENT",
    `${what} must be bytes (a Uint8Array, an ArrayBuffer or another ArrayBuffer view), not ` +
      `${kindOf(value)}${hint}`,
    { file },
  );
}

/** `value`, which must be a string (a text file's contents); `what` names the argument. */
export function textArgument(value: unknown, what: string, file?: string): string {
  if (typeof value === "string") return value;
  const hint = value instanceof Uint8Array || value instanceof ArrayBuffer
    ? " (decode the bytes first: new TextDecoder().decode(bytes))"
    : "";
  throw new ConvertError(
    "BAD_ARGUMENT",
    `${what} must be text (a string), not ${kindOf(value)}${hint}`,
    { file },
  );
}
