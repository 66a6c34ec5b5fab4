/**
 * Resource limits on inputs. Each is checked before the memory it guards is allocated, and an
 * input beyond one is a {@linkcode ConvertError} (`LIMIT_EXCEEDED`, or the nesting codes) with
 * its place. They sit far above what real Caffe models use and close to Caffe's own limits.
 *
 * @module
 */

/** The resource limits. */
export const LIMITS = {
  /** Deepest nesting of messages (and groups) in a text or binary file: protobuf's default. */
  nesting: 100,
  /** Most fields in one message of a text file (a net's layers, a record's entries, dims). */
  fieldsPerMessage: 100_000,
  /** Most layers in a caffemodel. */
  layers: 100_000,
  /** Most axes of a blob shape: Caffe's `kMaxBlobAxes`. */
  blobAxes: 32,
  /** Longest string (UTF-8 bytes) in a text or binary file. */
  stringBytes: 1 << 20,
  /**
   * Bytes of one simulator tensor (float32) must stay below this: the 4 GiB of WebAssembly
   * memory, which the layer's kernels work in (Caffe's own limit, `INT_MAX` elements, is twice
   * as large).
   */
  tensorBytes: 2 ** 32,
} as const;
