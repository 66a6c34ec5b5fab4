/**
 * Strict JSON (RFC 8259) read into a tree that keeps each value's line and column, so that a
 * configuration's errors can name their place. A syntax error, or a key given twice in one
 * object, is a CONFIG_SYNTAX error at its place.
 *
 * @module
 */

import { ConvertError } from "../errors.ts";

/** Where a JSON value starts: 1-based line and column. */
export interface JsonPlace {
  /** 1-based line. */
  line: number;
  /** 1-based column (UTF-16 units). */
  column: number;
}

/** One `"key": value` of a JSON object. */
export interface JsonEntry {
  /** The key. */
  key: string;
  /** Where the key starts. */
  keyPlace: JsonPlace;
  /** The value. */
  value: JsonNode;
}

/** A JSON value with its place. */
export type JsonNode =
  & { place: JsonPlace }
  & (
    | { kind: "object"; entries: JsonEntry[] }
    | { kind: "array"; items: JsonNode[] }
    | { kind: "string"; value: string }
    | { kind: "number"; value: number }
    | { kind: "boolean"; value: boolean }
    | { kind: "null" }
  );

/** Most nested arrays and objects (as the protobuf readers' nesting limit). */
const MAX_DEPTH = 100;

/** Reads `text` as one JSON value (whitespace around it allowed). */
export function parseJsonWithPlaces(text: string, file?: string): JsonNode {
  let at = 0;
  let line = 1;
  let lineStart = 0;
  const place = (): JsonPlace => ({ line, column: at - lineStart + 1 });
  const fail = (message: string, where: JsonPlace = place()): never => {
    throw new ConvertError("CONFIG_SYNTAX", message, { file, ...where });
  };
  const skipSpace = () => {
    for (; at < text.length; at++) {
      const char = text[at];
      if (char === "\n") {
        line++;
        lineStart = at + 1;
      } else if (char !== " " && char !== "\t" && char !== "\r") {
        break;
      }
    }
  };
  const describe = () => at >= text.length ? "the end of the file" : JSON.stringify(text[at]);

  const readString = (): string => {
    const start = place();
    at++; // opening quote
    let value = "";
    for (;;) {
      if (at >= text.length) fail("a string is not closed", start);
      const char = text[at];
      if (char === '"') {
        at++;
        return value;
      }
      if (char < " ") fail("a control character inside a string (write it as an escape)");
      if (char !== "\\") {
        value += char;
        at++;
        continue;
      }
      const escape = text[at + 1];
      const simple: Record<string, string> = {
        '"': '"',
        "\\": "\\",
        "/": "/",
        b: "\b",
        f: "\f",
        n: "\n",
        r: "\r",
        t: "\t",
      };
      if (escape in simple) {
        value += simple[escape];
        at += 2;
      } else if (escape === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(at + 2, at + 6))) {
        value += String.fromCharCode(parseInt(text.slice(at + 2, at + 6), 16));
        at += 6;
      } else {
        fail(`a bad escape "\\${escape ?? ""}" in a string`);
      }
    }
  };

  const readValue = (depth: number): JsonNode => {
    skipSpace();
    const start = place();
    const char = text[at];
    if (char === "{" || char === "[") {
      if (depth >= MAX_DEPTH) fail(`more than ${MAX_DEPTH} nested arrays and objects`);
      at++;
      return char === "{" ? readObject(start, depth + 1) : readArray(start, depth + 1);
    }
    if (char === '"') return { kind: "string", value: readString(), place: start };
    const literal = /^(?:true|false|null)/.exec(text.slice(at, at + 5));
    if (literal !== null) {
      at += literal[0].length;
      if (literal[0] === "null") return { kind: "null", place: start };
      return { kind: "boolean", value: literal[0] === "true", place: start };
    }
    const number = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(
      text.slice(at, at + 400),
    );
    if (number !== null && number[0] !== "-") {
      at += number[0].length;
      return { kind: "number", value: Number(number[0]), place: start };
    }
    return fail(`expected a JSON value, found ${describe()}`);
  };

  const readObject = (start: JsonPlace, depth: number): JsonNode => {
    const entries: JsonEntry[] = [];
    const seen = new Map<string, JsonPlace>();
    skipSpace();
    if (text[at] === "}") {
      at++;
      return { kind: "object", entries, place: start };
    }
    for (;;) {
      skipSpace();
      if (text[at] !== '"') fail(`expected a key in quotes, found ${describe()}`);
      const keyPlace = place();
      const key = readString();
      const earlier = seen.get(key);
      if (earlier !== undefined) {
        fail(`the key "${key}" is given twice (first on line ${earlier.line})`, keyPlace);
      }
      seen.set(key, keyPlace);
      skipSpace();
      if (text[at] !== ":") fail(`expected ":" after the key "${key}", found ${describe()}`);
      at++;
      entries.push({ key, keyPlace, value: readValue(depth) });
      skipSpace();
      if (text[at] === ",") {
        at++;
        continue;
      }
      if (text[at] === "}") {
        at++;
        return { kind: "object", entries, place: start };
      }
      fail(`expected "," or "}" in an object, found ${describe()}`);
    }
  };

  const readArray = (start: JsonPlace, depth: number): JsonNode => {
    const items: JsonNode[] = [];
    skipSpace();
    if (text[at] === "]") {
      at++;
      return { kind: "array", items, place: start };
    }
    for (;;) {
      items.push(readValue(depth));
      skipSpace();
      if (text[at] === ",") {
        at++;
        continue;
      }
      if (text[at] === "]") {
        at++;
        return { kind: "array", items, place: start };
      }
      fail(`expected "," or "]" in an array, found ${describe()}`);
    }
  };

  if (text.charCodeAt(0) === 0xfeff) at = lineStart = 1; // a byte order mark
  const root = readValue(0);
  skipSpace();
  if (at < text.length) fail(`unexpected ${describe()} after the JSON value`);
  return root;
}
