/**
 * An independent, naive protobuf encoder for tests (number arrays, bigint varints), and the
 * check that a reader fails with a given code at a given byte offset.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ConvertError, type ErrorCode } from "../src/errors.ts";

/** Base-128 groups of a (64-bit two's complement) value, low group first. */
export function varint(value: number | bigint): number[] {
  let rest = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (rest >= 128n) {
    out.push(Number(rest % 128n) + 128);
    rest /= 128n;
  }
  out.push(Number(rest));
  return out;
}

/** A field's tag. */
export const tag = (field: number, wireType: number): number[] => varint(field * 8 + wireType);

/** A varint field. */
export const varintField = (field: number, value: number | bigint): number[] => [
  ...tag(field, 0),
  ...varint(value),
];

/** A length-delimited field. */
export const lengthField = (field: number, payload: number[]): number[] => [
  ...tag(field, 2),
  ...varint(payload.length),
  ...payload,
];

/** A UTF-8 string field. */
export const stringField = (field: number, text: string): number[] =>
  lengthField(field, [...new TextEncoder().encode(text)]);

/** Little-endian float32 bytes. */
export function float32Bytes(values: number[]): number[] {
  const view = new DataView(new ArrayBuffer(4 * values.length));
  values.forEach((value, i) => view.setFloat32(4 * i, value, true));
  return [...new Uint8Array(view.buffer)];
}

/** Little-endian float64 bytes. */
export function float64Bytes(values: number[]): number[] {
  const view = new DataView(new ArrayBuffer(8 * values.length));
  values.forEach((value, i) => view.setFloat64(8 * i, value, true));
  return [...new Uint8Array(view.buffer)];
}

/** Asserts that `run` throws a ConvertError with `code` at byte `offset` (and `layer`). */
export function assertConvertErrorAt(
  run: () => unknown,
  code: ErrorCode,
  offset: number,
  layer?: string,
): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ConvertError, `not a ConvertError: ${error}`);
    assert.equal(error.code, code, error.message);
    assert.equal(error.offset, offset, error.message);
    if (layer !== undefined) assert.equal(error.layer, layer);
    return true;
  });
}
