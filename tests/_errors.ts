// Expected ConvertErrors, for tests: where a needle stands in a text, and what an error must carry.

import assert from "node:assert/strict";
import { ConvertError, type ErrorCode } from "../src/errors.ts";

/** 1-based line and column of the `occurrence`-th `needle` in `text`. */
export function placeOf(
  text: string,
  needle: string,
  occurrence = 1,
): { line: number; column: number } {
  let at = -1;
  for (let i = 0; i < occurrence; i++) {
    at = text.indexOf(needle, at + 1);
    assert.ok(at >= 0, `"${needle}" #${occurrence} not in the text`);
  }
  const before = text.slice(0, at).split("\n");
  return { line: before.length, column: before[before.length - 1].length + 1 };
}

/** What an expected ConvertError must carry. */
export interface Expected {
  code: ErrorCode;
  file?: string;
  line?: number;
  column?: number;
  layer?: string;
  offset?: number;
  /** Parts the message must contain. */
  parts?: string[];
  /** Parts the message must not contain. */
  absent?: string[];
}

/** Checks `error` against `expected` (every listed place field, `layer` even when undefined). */
export function checkError(error: unknown, expected: Expected): true {
  assert.ok(error instanceof ConvertError, `not a ConvertError: ${error}`);
  assert.equal(error.code, expected.code, error.format());
  for (const key of ["file", "line", "column", "layer", "offset"] as const) {
    if (key in expected) assert.equal(error[key], expected[key], `${key} of ${error.format()}`);
  }
  for (const part of expected.parts ?? []) {
    assert.ok(error.message.includes(part), `"${part}" not in: ${error.message}`);
  }
  for (const part of expected.absent ?? []) {
    assert.ok(!error.message.includes(part), `"${part}" in: ${error.message}`);
  }
  return true;
}
