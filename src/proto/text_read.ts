/**
 * The reader of protobuf text format: parses prototxt and record files into lossless trees
 * typed through the schema's field facts (src/proto/field_info.ts). Field order is kept, and
 * fields the schema
 * does not know (whole unknown messages included) are kept with their source text.
 *
 * @module
 */

import type { MessageType } from "./field_info.ts";
import type { FieldInfo } from "./field_info.ts";
import {
  BOOL,
  BYTES,
  DOUBLE,
  ENUM,
  FLOAT,
  INT32,
  INT64,
  MESSAGE,
  STRING,
  UINT32,
  UINT64,
} from "./field_info.ts";
import { floatLiteral, integerMagnitude, isIntegerText } from "./text_numbers.ts";
import {
  isIdentPart,
  isIdentStart,
  T_IDENT,
  T_NUMBER,
  T_STRING,
  TextTokenizer,
} from "./text_tokens.ts";
import { type Scalar, type TextField, TextMessage } from "./tree.ts";
import { LIMITS } from "../limits.ts";

/** Smallest and largest value of each integer kind (64-bit kinds: safe integers only). */
const INT_RANGE: Record<number, [number, number]> = {
  [INT32]: [-0x80000000, 0x7fffffff],
  [UINT32]: [0, 0xffffffff],
  [INT64]: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  [UINT64]: [0, Number.MAX_SAFE_INTEGER],
};

function kindName(info: FieldInfo): string {
  return info.kind === ENUM
    ? `enum ${info.typeName}`
    : info.kind === MESSAGE
    ? `message ${info.typeName}`
    : info.typeName;
}

/**
 * Reads one message through the schema: the fields, their values and their types. Readers of
 * one schema's text without a tree (src/quant/record_scan.ts) build on its tokens and values.
 */
export class TextReader extends TextTokenizer {
  private depth = 0;

  /** Reads the whole source as a message of `type`. */
  parse(type: MessageType): TextMessage {
    return this.messageBody(type, -1);
  }

  private messageBody(type: MessageType | null, close: number): TextMessage {
    const s = this.src;
    const fields: TextField[] = [];
    const infos = type === null ? undefined : type.info.byName;
    /** Line of each singular known field given so far: Caffe's parser refuses a second. */
    const singularLines = new Map<string, number>();
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
      this.checkFieldCount(fields, start);
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
      if (info !== undefined && !info.repeated) {
        const first = singularLines.get(name);
        if (first !== undefined) {
          this.fail(
            "TEXT_DUPLICATE_FIELD",
            `field "${name}" is not repeated but is given again (first on line ${first})`,
            start,
          );
        }
        singularLines.set(name, line);
      }
      this.fieldValue(fields, name, info, colon, line, column);
      this.skip();
      const sep = s.charCodeAt(this.pos);
      if (sep === 59 || sep === 44) this.pos++;
    }
    return new TextMessage(fields);
  }

  /** `LIMIT_EXCEEDED` at `at` when `fields` is already full. */
  private checkFieldCount(fields: TextField[], at: number): void {
    if (fields.length >= LIMITS.fieldsPerMessage) {
      this.fail(
        "LIMIT_EXCEEDED",
        `a message with more than ${LIMITS.fieldsPerMessage} fields (layers, entries, values)`,
        at,
      );
    }
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
        this.checkFieldCount(fields, this.pos);
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
    if (++this.depth > LIMITS.nesting) {
      this.fail("TEXT_TOO_DEEP", `messages nested more than ${LIMITS.nesting} deep`, this.pos - 1);
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
      // The raw text is printed back as it is: escapes (any bytes) must be valid, and the text
      // must not hold bytes the file's decoding replaced (it would no longer hold them).
      if (this.tokKind === T_STRING) {
        this.tokBytes();
        this.rejectReplacedBytes(raw);
      }
      return { name, value: raw, raw, unknown: true, line, column };
    }
    return { name, value: this.convert(info, name, raw), raw, line, column };
  }

  private wrongType(info: FieldInfo, name: string, raw: string): never {
    const shown = raw.length > 40 ? raw.slice(0, 37) + "..." : raw;
    return this.fail(
      "TEXT_WRONG_TYPE",
      `field "${name}" is ${kindName(info)}; cannot take ${shown}`,
      this.tokStart,
    );
  }

  /** The typed value of the last token for a known field (the token's source text `raw`). */
  protected convert(info: FieldInfo, name: string, raw: string): Scalar {
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
 * `TEXT_WRONG_TYPE`, `TEXT_OUT_OF_RANGE`, `TEXT_DUPLICATE_FIELD` (a singular field given twice,
 * which Caffe's parser refuses too), `TEXT_TOO_DEEP`, `INVALID_UTF8` or `LIMIT_EXCEEDED` (see
 * `LIMITS`), with `file`, `line` and `column`.
 *
 * @example
 * ```ts
 * import { parseText } from "./text_read.ts";
 * import { caffeType } from "./schema.ts";
 * const net = parseText('name: "n" layer { name: "a" type: "ReLU" }', caffeType("caffe.NetParameter"));
 * net.message("layer")?.get("type"); // "ReLU"
 * ```
 */
export function parseText(source: string, type: MessageType, file?: string): TextMessage {
  return new TextReader(source, file).parse(type);
}
