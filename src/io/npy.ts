/**
 * NumPy `.npy` files for tensors: read float32 (`<f4`) or float64 (`<f8`, rounded to float32)
 * arrays in C order with v1, v2 or v3 headers; write float32 C-order arrays with a v1 header
 * padded as NumPy pads it (to a multiple of 64 bytes).
 *
 * @module
 */

import { ConvertError } from "../errors.ts";
import type { Tensor } from "../engine/tensor.ts";
import { parseNpyHeader } from "./npy_header.ts";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
const ALIGN = 64;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function formatError(message: string, file: string | undefined, offset?: number): ConvertError {
  return new ConvertError("NPY_FORMAT", message, { file, offset });
}

/** Where a `.npy` file's values are: their shape, first byte and bytes per value. */
export interface NpyLayout {
  /** The array's shape (C order). */
  shape: number[];
  /** The byte offset of the first value (the header's end). */
  dataStart: number;
  /** 4 (`<f4`) or 8 (`<f8`). */
  itemSize: 4 | 8;
}

/**
 * The byte offset where a `.npy` file's values start, read from its first 12 bytes (fewer if the
 * file is shorter): the magic, the version and the header length are checked (`NPY_FORMAT`).
 */
export function npyDataStart(head: Uint8Array, file?: string): number {
  if (head.length < 10 || MAGIC.some((byte, i) => head[i] !== byte)) {
    throw formatError("not a .npy file (no \\x93NUMPY magic)", file, 0);
  }
  const major = head[6];
  if (major < 1 || major > 3) {
    throw formatError(`unsupported .npy version ${major}.${head[7]}`, file, 6);
  }
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const lengthBytes = major === 1 ? 2 : 4;
  if (head.length < 8 + lengthBytes) {
    throw formatError("the file ends inside the header length", file, 8);
  }
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  return 8 + lengthBytes + headerLength;
}

/**
 * The layout of the `.npy` file of `fileBytes` bytes that `head` starts (at least its header,
 * {@linkcode npyDataStart} bytes): `<f4` or `<f8`, C order, values enough for the shape. Anything
 * else is an `NPY_FORMAT` error naming `file` and the offset.
 */
export function npyLayout(head: Uint8Array, fileBytes: number, file?: string): NpyLayout {
  const dataStart = npyDataStart(head, file);
  const headerStart = head[6] === 1 ? 10 : 12;
  if (dataStart > head.length) {
    throw formatError("the file ends inside the header", file, headerStart);
  }
  const header = new TextDecoder(head[6] === 3 ? "utf-8" : "latin1").decode(
    head.subarray(headerStart, dataStart),
  );
  const { descr, fortranOrder, shape } = parseNpyHeader(header, headerStart, file);
  if (descr !== "<f4" && descr !== "<f8") {
    throw formatError(
      `dtype '${descr}' is not supported (only '<f4' and '<f8')`,
      file,
      headerStart,
    );
  }
  if (fortranOrder) {
    throw formatError("Fortran-order arrays are not supported (C order only)", file, headerStart);
  }
  const itemSize = descr === "<f4" ? 4 : 8;
  const count = shape.reduce((total, size) => total * size, 1);
  if (fileBytes - dataStart < count * itemSize) {
    throw formatError(
      `the data has ${fileBytes - dataStart} bytes, shape (${shape.join(", ")}) needs ${
        count * itemSize
      }`,
      file,
      dataStart,
    );
  }
  return { shape, dataStart, itemSize };
}

/**
 * Little-endian `<f4` or `<f8` values (`raw`, `itemSize` bytes each) as float32 in `into`
 * (float64 rounded to the nearest float32).
 */
export function npyValuesInto(raw: Uint8Array, itemSize: 4 | 8, into: Float32Array): void {
  const count = into.length;
  if (LITTLE_ENDIAN && itemSize === 4) {
    new Uint8Array(into.buffer, into.byteOffset, count * 4).set(raw.subarray(0, count * 4));
  } else if (LITTLE_ENDIAN && raw.byteOffset % 8 === 0) {
    into.set(new Float64Array(raw.buffer, raw.byteOffset, count));
  } else {
    const view = new DataView(raw.buffer, raw.byteOffset, count * itemSize);
    for (let i = 0; i < count; i++) {
      into[i] = itemSize === 4 ? view.getFloat32(i * 4, true) : view.getFloat64(i * 8, true);
    }
  }
}

/**
 * Reads a `.npy` file: `<f4` or `<f8` (converted to float32), C order, any rank. Other dtypes,
 * Fortran order, bad headers and short data are `NPY_FORMAT` errors naming `file`. `<f4` values
 * in an array that holds its whole buffer (as a file read gives) are a view into `bytes`, not a
 * copy: don't change `bytes` afterwards.
 */
export function readNpy(bytes: Uint8Array, file?: string): Tensor {
  const { shape, dataStart, itemSize } = npyLayout(bytes, bytes.length, file);
  const count = shape.reduce((total, size) => total * size, 1);
  const start = bytes.byteOffset + dataStart;
  const owned = bytes.buffer instanceof ArrayBuffer && bytes.byteOffset === 0 &&
    bytes.byteLength === bytes.buffer.byteLength;
  if (LITTLE_ENDIAN && itemSize === 4 && owned && start % 4 === 0) {
    // Read in place: on a VM, the fresh pages of a copy cost far more than the copy itself.
    return { shape, data: new Float32Array(bytes.buffer as ArrayBuffer, start, count) };
  }
  // A copy into the values' own array (Node's Buffer.slice would be a view into a shared pool).
  const data = new Float32Array(count);
  npyValuesInto(bytes.subarray(dataStart, dataStart + count * itemSize), itemSize, data);
  return { shape, data };
}

/** The header of a `.npy` file (v1, `<f4`, C order) of `shape`, padded as NumPy pads it. */
function npyHeader(shape: readonly number[]): Uint8Array {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(", ");
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  const padding = ALIGN - ((10 + header.length + 1) % ALIGN);
  header += " ".repeat(padding % ALIGN) + "\n";
  const bytes = new Uint8Array(10 + header.length);
  bytes.set(MAGIC);
  bytes[6] = 1;
  bytes[7] = 0;
  new DataView(bytes.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) bytes[10 + i] = header.charCodeAt(i);
  return bytes;
}

/** `values` as little-endian float32 bytes into `into` from byte `at`. */
function putFloats(values: Float32Array, into: Uint8Array, at: number): void {
  if (LITTLE_ENDIAN) {
    into.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), at);
    return;
  }
  const view = new DataView(into.buffer, into.byteOffset + at, values.length * 4);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true);
}

/** A `.npy` file (v1 header, `<f4`, C order) holding `tensor`. */
export function writeNpy(tensor: Tensor): Uint8Array {
  const count = tensor.shape.reduce((total, size) => total * size, 1);
  if (count !== tensor.data.length) {
    throw new RangeError(
      `a tensor of shape (${tensor.shape.join(", ")}) has ${tensor.data.length} values`,
    );
  }
  const header = npyHeader(tensor.shape);
  const bytes = new Uint8Array(header.length + count * 4);
  bytes.set(header);
  putFloats(tensor.data, bytes, header.length);
  return bytes;
}

/** Bytes of the pieces {@linkcode npyPieces} gathers small rows into. */
const PIECE_BYTES = 1 << 20;

/**
 * The `.npy` file (v1 header, `<f4`, C order) of `shape` whose values are those of `parts` one
 * after another, as pieces to write in order (`OutputFile` content, src/io/files.ts): small parts
 * are gathered into two 1 MiB buffers used in turn, so no array of the whole file is made; a part
 * of 1 MiB or more is its own piece, a view of its values (on little-endian hosts). A piece stays
 * valid until the piece after the next one is asked for.
 */
export function* npyPieces(
  shape: readonly number[],
  parts: readonly Float32Array[],
): Generator<Uint8Array> {
  const count = shape.reduce((total, size) => total * size, 1);
  const given = parts.reduce((total, part) => total + part.length, 0);
  if (given !== count) {
    throw new RangeError(`a tensor of shape (${shape.join(", ")}) has ${given} values`);
  }
  const header = npyHeader(shape);
  const buffers = [new Uint8Array(PIECE_BYTES), new Uint8Array(PIECE_BYTES)];
  let piece = buffers[0];
  piece.set(header);
  let used = header.length;
  let turn = 0;
  const flush = function* () {
    if (used > 0) yield piece.subarray(0, used);
    turn ^= 1;
    piece = buffers[turn];
    used = 0;
  };
  for (const part of parts) {
    if (part.byteLength >= PIECE_BYTES && LITTLE_ENDIAN) {
      yield* flush();
      yield new Uint8Array(part.buffer, part.byteOffset, part.byteLength);
      continue;
    }
    let at = 0;
    while (at < part.length) {
      if (used === PIECE_BYTES) yield* flush();
      const take = Math.min(part.length - at, (PIECE_BYTES - used) >> 2);
      putFloats(part.subarray(at, at + take), piece, used);
      used += take * 4;
      at += take;
    }
  }
  yield* flush();
}

/**
 * `output.<blob>.npy`, with every UTF-8 byte of the blob name outside `[A-Za-z0-9._-]` written
 * as `%XX` (so `%` itself is `%25`): a different blob always gets a different file name (`p/q`,
 * `p_q` and `p q` give `output.p%2Fq.npy`, `output.p_q.npy` and `output.p%20q.npy`).
 */
export function npyFileName(blob: string): string {
  const escaped = [...new TextEncoder().encode(blob)].map((byte) => {
    const char = String.fromCharCode(byte);
    return /[A-Za-z0-9._-]/.test(char)
      ? char
      : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  });
  return `output.${escaped.join("")}.npy`;
}
