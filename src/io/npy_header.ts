/**
 * The header of a NumPy `.npy` file: a Python dict literal with exactly the keys `descr` (a
 * string), `fortran_order` (`True` or `False`) and `shape` (a tuple of whole numbers), then
 * spaces and a newline. This parses that literal (strings, tuples, `True`/`False`, whole numbers,
 * a trailing comma where Python allows one) and refuses anything else — a duplicate or unknown
 * key, another kind of value, text after the closing brace — with an `NPY_FORMAT` error at the
 * byte where it starts.
 *
 * @module
 */

import { ConvertError } from "../errors.ts";

/** What a `.npy` header says about its array. */
export interface NpyHeader {
  /** The dtype descriptor, e.g. `<f4`. */
  descr: string;
  /** Whether the data are in Fortran (column-major) order. */
  fortranOrder: boolean;
  /** The array's shape; `[]` for a 0-d array. */
  shape: number[];
}

type Value =
  | { kind: "string"; value: string; at: number }
  | { kind: "bool"; value: boolean; at: number }
  | { kind: "int"; value: number; at: number }
  | { kind: "tuple"; items: Value[]; at: number };

const KEYS = ["descr", "fortran_order", "shape"];

/**
 * Parses `text`, the header decoded one character per byte (latin-1, or UTF-8 for version 3),
 * starting at byte `start` of `file`; errors give the byte offset of the offending token (exact
 * for ASCII headers, which NumPy always writes).
 */
export function parseNpyHeader(text: string, start: number, file: string | undefined): NpyHeader {
  let pos = 0;
  const fail = (message: string, at = pos): ConvertError =>
    new ConvertError("NPY_FORMAT", `header: ${message}`, { file, offset: start + at });
  const skipSpaces = () => {
    while (pos < text.length && " \t\r\n".includes(text[pos])) pos++;
  };
  const describe = (at: number) =>
    at >= text.length ? "the end of the header" : JSON.stringify(text.slice(at, at + 12));
  const expect = (char: string) => {
    skipSpaces();
    if (text[pos] !== char) throw fail(`expected '${char}', found ${describe(pos)}`);
    pos++;
  };

  function stringLiteral(): Value {
    const at = pos;
    const quote = text[pos++];
    let value = "";
    while (pos < text.length && text[pos] !== quote) {
      const char = text[pos++];
      if (char === "\n") throw fail("a string runs past the end of its line", at);
      if (char !== "\\") {
        value += char;
        continue;
      }
      const escaped = text[pos++];
      if (escaped !== "\\" && escaped !== "'" && escaped !== '"') {
        throw fail(`escape sequence \\${escaped ?? ""} in a string is not supported`, pos - 2);
      }
      value += escaped;
    }
    if (pos >= text.length) throw fail("a string is not closed", at);
    pos++;
    return { kind: "string", value, at };
  }

  function value(): Value {
    skipSpaces();
    const at = pos;
    const char = text[pos];
    if (char === "'" || char === '"') return stringLiteral();
    if (char === "(") {
      pos++;
      const items: Value[] = [];
      let trailingComma = false;
      skipSpaces();
      while (text[pos] !== ")") {
        items.push(value());
        skipSpaces();
        trailingComma = text[pos] === ",";
        if (trailingComma) {
          pos++;
          skipSpaces();
        } else if (text[pos] !== ")") {
          throw fail(`expected ',' or ')' in a tuple, found ${describe(pos)}`);
        }
      }
      // Python reads `(2)` as the number 2, not a tuple: a one-item tuple needs its comma.
      if (items.length === 1 && !trailingComma) {
        throw fail("a one-item tuple needs a trailing comma, as (2,)", at);
      }
      pos++;
      return { kind: "tuple", items, at };
    }
    const word = /^[A-Za-z_][A-Za-z0-9_]*|^[+-]?[0-9]+L?/.exec(text.slice(pos))?.[0];
    if (word === "True" || word === "False") {
      pos += word.length;
      return { kind: "bool", value: word === "True", at };
    }
    if (word !== undefined && /^[+-]?[0-9]+L?$/.test(word)) {
      pos += word.length;
      const number = Number(word.replace(/L$/, ""));
      if (!Number.isSafeInteger(number)) throw fail(`the number ${word} is too large`, at);
      return { kind: "int", value: number, at };
    }
    throw fail(`expected a string, a tuple, True, False or a number, found ${describe(at)}`);
  }

  const entries = new Map<string, Value>();
  expect("{");
  skipSpaces();
  while (text[pos] !== "}") {
    skipSpaces();
    const keyAt = pos;
    if (text[pos] !== "'" && text[pos] !== '"') {
      throw fail(`expected a quoted key or '}', found ${describe(pos)}`);
    }
    const key = stringLiteral() as { value: string };
    if (!KEYS.includes(key.value)) {
      throw fail(`unknown key '${key.value}' (a .npy header has only ${KEYS.join(", ")})`, keyAt);
    }
    if (entries.has(key.value)) throw fail(`the key '${key.value}' is given twice`, keyAt);
    expect(":");
    entries.set(key.value, value());
    skipSpaces();
    if (text[pos] === ",") {
      pos++;
      skipSpaces();
    } else if (text[pos] !== "}") {
      throw fail(`expected ',' or '}', found ${describe(pos)}`);
    }
  }
  pos++;
  skipSpaces();
  if (pos < text.length) throw fail(`text after the closing '}': ${describe(pos)}`);
  for (const key of KEYS) {
    if (!entries.has(key)) throw fail(`the header has no '${key}'`, 0);
  }

  const descr = entries.get("descr")!;
  if (descr.kind !== "string") {
    throw fail("'descr' is not a string (structured dtypes are not supported)", descr.at);
  }
  const order = entries.get("fortran_order")!;
  if (order.kind !== "bool") throw fail("'fortran_order' is not True or False", order.at);
  const shape = entries.get("shape")!;
  if (shape.kind !== "tuple") throw fail("'shape' is not a tuple", shape.at);
  const dims = shape.items.map((item) => {
    if (item.kind !== "int" || item.value < 0) {
      throw fail("'shape' holds something other than a whole number >= 0", item.at);
    }
    return item.value;
  });
  return { descr: descr.value, fortranOrder: order.value, shape: dims };
}
