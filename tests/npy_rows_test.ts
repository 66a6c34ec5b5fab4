// openNpyRows (src/io/npy_rows.ts): a .npy batch read a few rows at a time into reused memory,
// checked against readNpy of the whole file; and npyPieces (src/io/npy.ts), the stacked
// outputs written piece by piece, against writeNpy of the joined values.

import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ConvertError } from "../src/errors.ts";
import { npyPieces, readNpy, writeNpy } from "../src/io/npy.ts";
import { openNpyRows } from "../src/io/npy_rows.ts";

/** Seeded values in [-1, 1), not a simple function of their index. */
function values(count: number, seed: number): Float32Array {
  let state = seed >>> 0;
  return new Float32Array(count).map(() => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  });
}

/** A v1 `<f8` .npy file of `shape` holding `data`, built by hand. */
function float64Npy(shape: number[], data: Float64Array): Uint8Array {
  let header = `{'descr': '<f8', 'fortran_order': False, 'shape': (${shape.join(", ")}), }`;
  header += " ".repeat(63 - ((10 + header.length) % 64)) + "\n";
  const bytes = new Uint8Array(10 + header.length + data.length * 8);
  bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(bytes.buffer).setUint16(8, header.length, true);
  bytes.set(new TextEncoder().encode(header), 10);
  const view = new DataView(bytes.buffer, 10 + header.length);
  data.forEach((value, i) => view.setFloat64(i * 8, value, true));
  return bytes;
}

/** Whether two byte arrays are equal (without a diff of megabytes when they are not). */
function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return a !== undefined && b !== undefined && a.length === b.length &&
    a.every((byte, i) => byte === b[i]);
}

async function tempFile(name: string, bytes: Uint8Array): Promise<string> {
  const path = join(await mkdtemp("/tmp/caffe-quant-rows-"), name);
  await writeFile(path, bytes);
  return path;
}

Deno.test("openNpyRows: every row once, in order, as readNpy reads the whole file", async () => {
  // Rows of 3 KB (many per read), of 1.2 MB (one per read), and `<f8` rows rounded to float32.
  const float32 = (name: string, shape: number[], seed: number) => {
    const data = values(shape.reduce((total, n) => total * n, 1), seed);
    return [name, shape, writeNpy({ shape, data }), data] as const;
  };
  const cases: (readonly [string, number[], Uint8Array, Float32Array])[] = [
    float32("small.npy", [37, 1, 28, 28], 1),
    float32("large.npy", [3, 3, 100, 1000], 2),
  ];
  const wide = Float64Array.from(values(5 * 70_000, 3), (v) => v + 1e-9);
  cases.push(["f8.npy", [5, 70_000], float64Npy([5, 70_000], wide), Float32Array.from(wide)]);
  for (const [name, shape, bytes, expected] of cases) {
    const path = await tempFile(name, bytes);
    assert.deepEqual(readNpy(bytes, name).data, expected, name);
    const file = await openNpyRows(path);
    assert.deepEqual(file.shape, shape, name);
    const rowValues = expected.length / shape[0];
    let next = 0;
    let reads = 0;
    for await (const { first, tensor } of file.rows()) {
      assert.equal(first, next, name);
      assert.deepEqual(tensor.shape.slice(1), shape.slice(1), name);
      assert.deepEqual(
        tensor.data,
        expected.subarray(first * rowValues, (first + tensor.shape[0]) * rowValues),
        name,
      );
      assert.ok(tensor.data.byteLength <= Math.max(1 << 20, rowValues * 4), name);
      next += tensor.shape[0];
      reads++;
    }
    assert.equal(next, shape[0], name);
    assert.equal(
      reads,
      Math.ceil(
        shape[0] / Math.max(1, Math.floor((1 << 20) / (rowValues * (name === "f8.npy" ? 8 : 4)))),
      ),
      name,
    );
  }
});

Deno.test("openNpyRows: released memory holds later rows; rows not released keep their values", async () => {
  const data = values(6 * 300_000, 4);
  const path = await tempFile("b.npy", writeNpy({ shape: [6, 300_000], data }));
  const released = await openNpyRows(path);
  const buffers: ArrayBufferLike[] = [];
  for await (const { tensor, release } of released.rows()) {
    buffers.push(tensor.data.buffer);
    release();
    release(); // twice changes nothing
  }
  assert.equal(new Set(buffers).size, 1, "every row read into the memory of the first");
  const kept = await openNpyRows(path);
  const rows: Float32Array[] = [];
  for await (const { tensor } of kept.rows()) rows.push(tensor.data);
  assert.equal(new Set(rows.map((row) => row.buffer)).size, 6);
  rows.forEach((row, i) => assert.deepEqual(row, data.subarray(i * 300_000, (i + 1) * 300_000)));
});

Deno.test("openNpyRows: a bad file is refused as readNpy refuses it, naming it", async () => {
  const good = writeNpy({ shape: [4, 10], data: values(40, 5) });
  const cases: [string, Uint8Array, string, RegExp][] = [
    ["text.npy", new TextEncoder().encode("not numpy"), "NPY_FORMAT", /magic/],
    ["short.npy", good.subarray(0, good.length - 4), "NPY_FORMAT", /needs 160/],
    ["header.npy", good.subarray(0, 40), "NPY_FORMAT", /ends inside the header/],
  ];
  for (const [name, bytes, code, message] of cases) {
    const path = await tempFile(name, bytes);
    await assert.rejects(
      openNpyRows(path),
      (error: unknown) =>
        error instanceof ConvertError && error.code === code && error.file === path &&
        message.test(error.message),
      name,
    );
    assert.throws(
      () => readNpy(bytes, path),
      (error: unknown) =>
        error instanceof ConvertError && error.code === code && message.test(error.message),
      name,
    );
  }
  await assert.rejects(
    openNpyRows("/tmp/caffe-quant-no-such.npy"),
    (error: unknown) => error instanceof ConvertError && error.code === "INPUT_NOT_FOUND",
  );
});

Deno.test("npyPieces: the bytes of writeNpy of the joined parts; a piece outlives the making of the next", () => {
  // Parts of 40 bytes, ones that cross the 1 MiB pieces' ends, and ones of 1 MiB and more.
  const sizes = [10, 10, 200_000, 150_000, 262_144, 7, 300_001, 10, 100_000, 100_000, 100_000];
  const parts = sizes.map((size, i) => values(size, 10 + i));
  const total = sizes.reduce((sum, size) => sum + size, 0);
  const joined = new Float32Array(total);
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  const expected = writeNpy({ shape: [total], data: joined });
  const copies: Uint8Array[] = [];
  const pieces: Uint8Array[] = [];
  for (const piece of npyPieces([total], parts)) {
    // The piece before is still as it was given (it is written while this one is made).
    if (pieces.length >= 1) {
      assert.ok(sameBytes(pieces.at(-1), copies.at(-1)), `piece ${pieces.length - 1} changed`);
    }
    pieces.push(piece);
    copies.push(piece.slice());
  }
  const written = new Uint8Array(expected.length);
  let offset = 0;
  for (const copy of copies) {
    written.set(copy, offset);
    offset += copy.length;
  }
  assert.equal(offset, expected.length);
  assert.ok(sameBytes(written, expected), "the pieces differ from writeNpy's bytes");
  assert.ok(pieces.every((piece) => piece.length <= Math.max(1 << 20, 300_001 * 4)));
  assert.throws(() => [...npyPieces([total + 1], parts)], RangeError);
});
