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

/**
 * Reads a `.npy` file: `<f4` or `<f8` (converted to float32), C order, any rank. Other dtypes,
 * Fortran order, bad headers and short data are `NPY_FORMAT` errors naming `file`. `<f4` values
 * in an array that holds its whole buffer (as a file read gives) are a view into `bytes`, not a
 * copy: don't change `bytes` afterwards.
 */
export function readNpy(bytes: Uint8Array, file?: string): Tensor {
  if (bytes.length < 10 || MAGIC.some((byte, i) => bytes[i] !== byte)) {
    throw formatError("not a .npy file (no \\x93NUMPY magic)", file, 0);
  }
  const major = bytes[6];
  if (major < 1 || major > 3) {
    throw formatError(`unsupported .npy version ${major}.${bytes[7]}`, file, 6);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lengthBytes) {
    throw formatError("the file ends inside the header length", file, 8);
  }
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = 8 + lengthBytes;
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.length) {
    throw formatError("the file ends inside the header", file, headerStart);
  }
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(
    bytes.subarray(headerStart, dataStart),
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
  const dims = shape.map(String);
  const count = shape.reduce((total, size) => total * size, 1);
  const itemSize = descr === "<f4" ? 4 : 8;
  if (bytes.length - dataStart < count * itemSize) {
    throw formatError(
      `the data has ${bytes.length - dataStart} bytes, shape (${dims.join(", ")}) needs ${
        count * itemSize
      }`,
      file,
      dataStart,
    );
  }
  const start = bytes.byteOffset + dataStart;
  const owned = bytes.buffer instanceof ArrayBuffer && bytes.byteOffset === 0 &&
    bytes.byteLength === bytes.buffer.byteLength;
  if (LITTLE_ENDIAN && itemSize === 4 && owned && start % 4 === 0) {
    // Read in place: on a VM, the fresh pages of a copy cost far more than the copy itself.
    return { shape, data: new Float32Array(bytes.buffer as ArrayBuffer, start, count) };
  }
  const data = new Float32Array(count);
  if (LITTLE_ENDIAN && itemSize === 4) {
    // A copy into the values' own array (Node's Buffer.slice would be a view into a shared pool).
    new Uint8Array(data.buffer).set(bytes.subarray(dataStart, dataStart + count * 4));
    return { shape, data };
  }
  const raw = new Uint8Array(bytes.subarray(dataStart, dataStart + count * itemSize));
  if (LITTLE_ENDIAN) {
    data.set(new Float64Array(raw.buffer));
  } else {
    const rawView = new DataView(raw.buffer);
    for (let i = 0; i < count; i++) {
      data[i] = itemSize === 4 ? rawView.getFloat32(i * 4, true) : rawView.getFloat64(i * 8, true);
    }
  }
  return { shape, data };
}

/** A `.npy` file (v1 header, `<f4`, C order) holding `tensor`. */
export function writeNpy(tensor: Tensor): Uint8Array {
  const count = tensor.shape.reduce((total, size) => total * size, 1);
  if (count !== tensor.data.length) {
    throw new RangeError(
      `a tensor of shape (${tensor.shape.join(", ")}) has ${tensor.data.length} values`,
    );
  }
  const dims = tensor.shape.length === 1 ? `${tensor.shape[0]},` : tensor.shape.join(", ");
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  const padding = ALIGN - ((10 + header.length + 1) % ALIGN);
  header += " ".repeat(padding % ALIGN) + "\n";
  const bytes = new Uint8Array(10 + header.length + count * 4);
  bytes.set(MAGIC);
  bytes[6] = 1;
  bytes[7] = 0;
  new DataView(bytes.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) bytes[10 + i] = header.charCodeAt(i);
  const dataStart = 10 + header.length;
  if (LITTLE_ENDIAN) {
    bytes.set(new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, count * 4), dataStart);
  } else {
    const view = new DataView(bytes.buffer, dataStart);
    for (let i = 0; i < count; i++) view.setFloat32(i * 4, tensor.data[i], true);
  }
  return bytes;
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
