/**
 * Calibration and run inputs (`.npy` files for `record --input`, `run --input`) made from a net's
 * declared input shape and damaged: NaN and ±∞ values, no elements, the wrong rank or shape,
 * other batch sizes, other dtypes and orders, broken headers, short data, absurd shapes.
 *
 * @module
 */

import type { Rng } from "./rng.ts";

/** The input a corpus entry's net declares: blob name and shape. */
export interface DeclaredInput {
  /** Blob name. */
  name: string;
  /** Declared shape. */
  shape: number[];
}

const encoder = new TextEncoder();

/**
 * A `.npy` file (v1 header) of `dataBytes` under a header with `descr`, `fortran_order` and
 * `shape`, padded as NumPy pads it; `extra` is written into the dict as it is.
 */
export function npyBytes(
  shape: readonly number[],
  dataBytes: Uint8Array,
  { descr = "<f4", fortran = false, extra = "" } = {},
): Uint8Array {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(", ");
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? "True" : "False"}, ` +
    `'shape': (${dims}), ${extra}}`;
  header += " ".repeat((64 - ((10 + header.length + 1) % 64)) % 64) + "\n";
  const head = encoder.encode(header);
  const out = new Uint8Array(10 + head.length + dataBytes.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, head.length, true);
  out.set(head, 10);
  out.set(dataBytes, 10 + head.length);
  return out;
}

/** `count` float32 values uniform in [-1, 1) from `rng`, as little-endian bytes. */
function floats(count: number, rng: Rng): Float32Array {
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = (rng.uint32() >>> 8) / 0x800000 - 1;
  return values;
}

const bytesOf = (values: Float32Array | Float64Array) => new Uint8Array(values.buffer);
const countOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** One `.npy` mutation: a name and the function making the file for a declared input. */
export interface NpyMutation {
  /** Stable name, recorded with findings. */
  name: string;
  /** How often it is chosen relative to the others (default 1). */
  weight?: number;
  /** The `.npy` file's bytes. */
  apply(input: DeclaredInput, rng: Rng): Uint8Array;
}

/**
 * The input shape with batch 1 (a declared batch may be larger) and height and width cut to 64
 * (fully convolutional nets reshape to it; the nets with InnerProduct layers here are smaller).
 */
const oneSample = (shape: readonly number[]) =>
  shape.length > 0
    ? [1, ...shape.slice(1).map((size, i) => i >= 1 ? Math.min(size, 64) : size)]
    : [1];

/** The `.npy` mutations, in a fixed order (their index is part of a case's recipe). */
export const NPY_MUTATIONS: readonly NpyMutation[] = [
  {
    name: "npy-valid",
    apply(input, rng) {
      const shape = oneSample(input.shape);
      return npyBytes(shape, bytesOf(floats(countOf(shape), rng)));
    },
  },
  {
    name: "npy-special-values",
    weight: 2,
    apply(input, rng) {
      const shape = oneSample(input.shape);
      const values = floats(countOf(shape), rng);
      const special = [NaN, Infinity, -Infinity, 3.4e38, -3.4e38, 1e-45];
      for (let n = rng.between(1, 8); n > 0 && values.length > 0; n--) {
        values[rng.below(values.length)] = rng.pick(special);
      }
      if (rng.chance(0.2)) values.fill(rng.pick(special));
      return npyBytes(shape, bytesOf(values));
    },
  },
  {
    name: "npy-empty",
    apply(input, rng) {
      const shape = oneSample(input.shape);
      shape[rng.below(shape.length)] = 0;
      return npyBytes(rng.chance(0.2) ? [0] : shape, new Uint8Array(0));
    },
  },
  {
    name: "npy-rank",
    weight: 2,
    apply(input, rng) {
      const shape = oneSample(input.shape);
      const changed = rng.chance(0.5)
        ? shape.slice(1) // no batch axis
        : rng.chance(0.5)
        ? [...shape, 1]
        : [countOf(shape)];
      return npyBytes(changed, bytesOf(floats(countOf(changed), rng)));
    },
  },
  {
    name: "npy-shape",
    weight: 2,
    apply(input, rng) {
      const shape = oneSample(input.shape);
      // Channels last, H and W swapped, or one dimension off by a few.
      const changed = rng.chance(0.3)
        ? [shape[0], ...shape.slice(2), shape[1] ?? 1]
        : rng.chance(0.3)
        ? [...shape.slice(0, -2), ...shape.slice(-2).reverse()]
        : shape.map((dim, i) =>
          i === rng.below(shape.length) ? Math.max(1, dim + rng.pick([-1, 1, 5])) : dim
        );
      return npyBytes(changed, bytesOf(floats(countOf(changed), rng)));
    },
  },
  {
    name: "npy-batch",
    apply(input, rng) {
      const shape = [rng.pick([2, 3]), ...oneSample(input.shape).slice(1)];
      return npyBytes(shape, bytesOf(floats(countOf(shape), rng)));
    },
  },
  {
    name: "npy-dtype-order",
    apply(input, rng) {
      const shape = oneSample(input.shape);
      const values = floats(countOf(shape), rng);
      const descr = rng.pick(["<f8", ">f4", "<i4", "|u1", "<f2", "O", "<c8", "<U3"]);
      const data = descr === "<f8" ? bytesOf(Float64Array.from(values)) : bytesOf(values);
      return npyBytes(shape, data, { descr, fortran: rng.chance(0.3) });
    },
  },
  {
    name: "npy-header",
    apply(input, rng) {
      const shape = oneSample(input.shape);
      const data = bytesOf(floats(countOf(shape), rng));
      const extra = rng.pick([
        "'descr': '<f8', ",
        "'shape': (3,), ",
        "'x': ('descr': '<i4'), ",
        "'fortran_order': True, ",
        "",
      ]);
      const bytes = npyBytes(shape, data, { extra });
      for (let n = rng.below(3); n > 0; n--) {
        bytes[rng.below(Math.min(bytes.length, 74))] ^= 1 << rng.below(8);
      }
      return bytes;
    },
  },
  {
    name: "npy-truncated",
    apply(input, rng) {
      const shape = oneSample(input.shape);
      const whole = npyBytes(shape, bytesOf(floats(countOf(shape), rng)));
      return whole.subarray(0, rng.below(whole.length));
    },
  },
  {
    name: "npy-huge-shape",
    apply(input, rng) {
      const shape = oneSample(input.shape);
      const huge = rng.pick([
        [100000, 100000, 3],
        [1, shape[1] ?? 3, 46341, 46341],
        [2 ** 31],
        [2 ** 53],
        [1, 1e20],
      ]);
      return npyBytes(huge, bytesOf(floats(countOf(shape), rng)));
    },
  },
];
