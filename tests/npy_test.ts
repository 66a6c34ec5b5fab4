// readNpy / writeNpy / npyFileName against NumPy-written files (../shared/models/*/ref) and
// hand-built headers.

import assert from "node:assert/strict";
import { ConvertError } from "../src/errors.ts";
import { npyFileName, readNpy, writeNpy } from "../src/io/npy.ts";
import { modelFile, modelNames } from "./_models.ts";

/** A .npy file with the given version, header dict text and data bytes. */
function npyBytes(major: number, header: string, data: Uint8Array): Uint8Array {
  const headerBytes = new TextEncoder().encode(header);
  const lengthBytes = major === 1 ? 2 : 4;
  const bytes = new Uint8Array(8 + lengthBytes + headerBytes.length + data.length);
  bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const view = new DataView(bytes.buffer);
  if (major === 1) view.setUint16(8, headerBytes.length, true);
  else view.setUint32(8, headerBytes.length, true);
  bytes.set(headerBytes, 8 + lengthBytes);
  bytes.set(data, 8 + lengthBytes + headerBytes.length);
  return bytes;
}

function littleEndianFloats(values: number[], bytesPer: 4 | 8): Uint8Array {
  const bytes = new Uint8Array(values.length * bytesPer);
  const view = new DataView(bytes.buffer);
  values.forEach((value, i) => {
    if (bytesPer === 4) view.setFloat32(i * 4, value, true);
    else view.setFloat64(i * 8, value, true);
  });
  return bytes;
}

function assertNpyError(bytes: Uint8Array, pattern: RegExp) {
  assert.throws(
    () => readNpy(bytes, "x.npy"),
    (error: unknown) =>
      error instanceof ConvertError && error.code === "NPY_FORMAT" && error.file === "x.npy" &&
      pattern.test(error.message),
  );
}

for (const name of modelNames) {
  Deno.test(`readNpy reads NumPy's files and writeNpy writes them back byte for byte: ${name}`, () => {
    const manifest = JSON.parse(Deno.readTextFileSync(modelFile(name, "ref/manifest.json")));
    for (const entry of [...manifest.inputs, ...manifest.outputs]) {
      const bytes = Deno.readFileSync(modelFile(name, `ref/${entry.file}`));
      const tensor = readNpy(bytes, entry.file);
      assert.deepEqual(tensor.shape, entry.shape);
      if (entry.min !== undefined) {
        assert.equal(tensor.data.reduce((a, b) => Math.min(a, b)), Math.fround(entry.min));
        assert.equal(tensor.data.reduce((a, b) => Math.max(a, b)), Math.fround(entry.max));
        const meanAbs = tensor.data.reduce((sum, v) => sum + Math.abs(v), 0) / tensor.data.length;
        assert.ok(Math.abs(meanAbs - entry.mean_abs) <= 1e-6 * Math.max(1, entry.mean_abs));
      }
      assert.deepEqual(writeNpy(tensor), bytes, `${entry.file} differs after a round trip`);
    }
  });
}

Deno.test("readNpy: v2 and v3 headers, '<f8' converted to float32, 0-D and 1-D shapes", () => {
  const values = [1.5, -2.25, 1 / 3];
  const v2 = readNpy(
    npyBytes(
      2,
      "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n",
      littleEndianFloats(values, 4),
    ),
  );
  assert.deepEqual(v2.shape, [3]);
  assert.deepEqual(Array.from(v2.data), values.map(Math.fround));
  const v3 = readNpy(
    npyBytes(
      3,
      `{"descr": "<f8", "fortran_order": False, "shape": (1, 3)}`,
      littleEndianFloats(values, 8),
    ),
  );
  assert.deepEqual(v3.shape, [1, 3]);
  assert.deepEqual(Array.from(v3.data), values.map(Math.fround));
  const scalar = readNpy(
    npyBytes(
      1,
      "{'descr': '<f4', 'fortran_order': False, 'shape': (), }\n",
      littleEndianFloats([7], 4),
    ),
  );
  assert.deepEqual(scalar.shape, []);
  assert.deepEqual(Array.from(scalar.data), [7]);
});

Deno.test("readNpy: errors are NPY_FORMAT with the file name", () => {
  const data = littleEndianFloats([1, 2], 4);
  assertNpyError(new TextEncoder().encode("PK\x03\x04 not npy"), /magic/);
  assertNpyError(npyBytes(4, "{}", data), /version 4/);
  assertNpyError(
    npyBytes(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", data),
    /'>f4'/,
  );
  assertNpyError(
    npyBytes(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", data),
    /'<i4'/,
  );
  assertNpyError(
    npyBytes(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", data),
    /Fortran/,
  );
  assertNpyError(
    npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", data),
    /needs 12/,
  );
  assertNpyError(npyBytes(1, "{'descr': '<f4', 'fortran_order': False}", data), /'shape'/);
  assertNpyError(
    npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", data).subarray(0, 20),
    /ends inside the header/,
  );
});

Deno.test("writeNpy: v1 header padded to 64 bytes, ending in a newline; readNpy reads it back", () => {
  for (const shape of [[2, 3], [5], [1, 2, 3, 4, 5, 6, 7, 8, 9]]) {
    const count = shape.reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: count }, (_, i) => i * 0.5 - 3);
    const bytes = writeNpy({ shape, data });
    const headerLength = bytes[8] | (bytes[9] << 8);
    assert.equal((10 + headerLength) % 64, 0);
    assert.equal(bytes[9 + headerLength], 0x0a);
    const header = new TextDecoder().decode(bytes.subarray(10, 10 + headerLength)).trimEnd();
    const dims = shape.length === 1 ? `${shape[0]},` : shape.join(", ");
    assert.equal(header, `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`);
    assert.deepEqual(readNpy(bytes), { shape, data });
  }
  assert.throws(() => writeNpy({ shape: [2, 2], data: new Float32Array(3) }), RangeError);
});

Deno.test("npyFileName: output.<blob>.npy, other bytes as %XX, one file per blob", () => {
  assert.equal(npyFileName("prob"), "output.prob.npy");
  assert.equal(npyFileName("conv4-2"), "output.conv4-2.npy");
  assert.equal(npyFileName("a.b_c"), "output.a.b_c.npy");
  // By hand: "/" 0x2F, ":" 0x3A, " " 0x20, "%" 0x25, "é" UTF-8 C3 A9.
  assert.equal(npyFileName("conv1/relu:0 x"), "output.conv1%2Frelu%3A0%20x.npy");
  assert.equal(npyFileName("é"), "output.%C3%A9.npy");
  assert.equal(npyFileName("100%"), "output.100%25.npy");
  // Names that "_" for every unsafe character made one file: now all different.
  const blobs = ["p/q", "p_q", "p q", "p%2Fq", "p%5Fq", "p\\q", "p:q"];
  const names = blobs.map(npyFileName);
  assert.equal(new Set(names).size, blobs.length, names.join(" "));
});

Deno.test("readNpy: the header is read as a Python dict literal, anything else refused at its byte", () => {
  const data = littleEndianFloats([1, 2], 4);
  /** The NPY_FORMAT error of a v1 file with `header`, checked for `pattern` and its offset. */
  const headerError = (header: string, pattern: RegExp, offsetInHeader: number) =>
    assert.throws(
      () => readNpy(npyBytes(1, header, data), "x.npy"),
      (error: unknown) =>
        error instanceof ConvertError && error.code === "NPY_FORMAT" && error.file === "x.npy" &&
        pattern.test(error.message) && error.offset === 10 + offsetInHeader,
      header,
    );
  // A 'descr' inside another entry's text is not the dtype (the regex reader took '<f4' here).
  const hidden = `{'x': "'descr': '<f4'", 'descr': '<i4', 'fortran_order': False, 'shape': (2,)}`;
  headerError(hidden, /unknown key 'x'/, 1);
  // A key given twice is refused at the second one (the regex reader used the first).
  const twice = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'descr': '<i4'}";
  headerError(twice, /'descr' is given twice/, twice.lastIndexOf("'descr'"));
  // (2) is the number 2 in Python, not a tuple.
  const notTuple = "{'descr': '<f4', 'fortran_order': False, 'shape': (2)}";
  headerError(notTuple, /one-item tuple/, notTuple.indexOf("(2)"));
  const trailing = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk";
  headerError(trailing, /after the closing/, trailing.indexOf("junk"));
  const badOrder = "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}";
  headerError(badOrder, /'fortran_order' is not True or False/, badOrder.indexOf("0,"));
  const structured = "{'descr': ('a', '<f4'), 'fortran_order': False, 'shape': (2,)}";
  headerError(structured, /'descr' is not a string/, structured.indexOf("("));
  const negative = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1)}";
  headerError(negative, /whole number >= 0/, negative.indexOf("-1"));
  const unclosed = "{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}";
  headerError(unclosed, /expected ',' or '}'/, unclosed.indexOf("fortran"));
  headerError("{'descr': '<f4', 'shape': (2,)}", /no 'fortran_order'/, 0);
  // What Python's literal syntax allows is read: double quotes, spaces, trailing commas or none.
  const loose = readNpy(
    npyBytes(1, '{ "shape" : ( 1 , 2 , ) ,"fortran_order":False,"descr":"<f4" }  \n', data),
  );
  assert.deepEqual(loose.shape, [1, 2]);
});

Deno.test("readNpy: '<f4' values in a file's own buffer are read in place; a slice of a larger buffer is copied", () => {
  const values = [1.5, -2.25, 3, 1e-45];
  const file = writeNpy({ shape: [2, 2], data: Float32Array.from(values) });
  const inPlace = readNpy(file);
  assert.deepEqual(Array.from(inPlace.data), values.map(Math.fround));
  assert.equal(inPlace.data.buffer, file.buffer, "a view into the file's bytes");
  // The same bytes inside a larger buffer (as a pool slice), at an odd offset and at an aligned one.
  for (const offset of [3, 64]) {
    const pool = new Uint8Array(offset + file.length + 5);
    pool.set(file, offset);
    const copied = readNpy(pool.subarray(offset, offset + file.length));
    assert.deepEqual(Array.from(copied.data), values.map(Math.fround));
    assert.notEqual(copied.data.buffer, pool.buffer, `offset ${offset}: a copy`);
    pool.fill(0);
    assert.deepEqual(Array.from(copied.data), values.map(Math.fround));
  }
});
