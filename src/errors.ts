/**
 * The one error type of caffe-quant: every user mistake (bad file, bad record, bad path) is a
 * {@linkcode ConvertError} with a stable {@linkcode ErrorCode} and the place it concerns.
 *
 * @module
 */

import { printable } from "./printable.ts";

/**
 * Stable error codes with a one-line description each. Scripts may match on them; they never
 * change meaning. docs/errors.md says for each what it means and what to do.
 */
export const ERROR_CODES = {
  // Protobuf text format (prototxt, record file).
  TEXT_SYNTAX: "syntax error in a protobuf text file",
  TEXT_UNTERMINATED_STRING: "a string literal is not closed",
  TEXT_UNKNOWN_ENUM: "an enum value the schema does not define",
  TEXT_WRONG_TYPE: "a value of the wrong type for its field",
  TEXT_OUT_OF_RANGE: "a number outside its field's range",
  TEXT_UNKNOWN_FIELD: "a field the schema does not define",
  TEXT_DUPLICATE_FIELD: "a singular field given twice in one message",
  TEXT_TOO_DEEP: "messages nested too deeply in a text file",
  INVALID_UTF8: "a string field whose bytes are not valid UTF-8",
  LIMIT_EXCEEDED: "an input beyond a resource limit (layers, fields, axes, string length)",
  // Net structure.
  DUPLICATE_LAYER: "two layers share a name",
  UNDEFINED_BOTTOM: "a bottom blob that no earlier layer produces",
  DUPLICATE_TOP: "a top blob that two layers produce, not in place",
  MIXED_LAYER_FORMATS: "a net with both legacy V1 `layers` and V2 `layer` entries",
  INPUT_SHAPE_CONFLICT: "net inputs whose input_dim and input_shape disagree or do not match",
  BAD_LAYER_PARAM: "a layer parameter Caffe refuses (kernel, stride, group, dilation, pad)",
  // Binary caffemodel.
  BINARY_NOT_PROTOBUF: "the bytes are not a protobuf message",
  BINARY_TRUNCATED: "the file ends inside a field",
  BINARY_LENGTH_PAST_END: "a length-delimited field runs past its end",
  BINARY_TOO_DEEP: "messages nested too deeply",
  BLOB_SIZE_MISMATCH: "a blob's data count disagrees with its shape",
  MISSING_WEIGHTS: "a layer that needs weights has none in the caffemodel",
  WEIGHTS_SHAPE_MISMATCH: "weights whose shape disagrees with the prototxt",
  // Record file.
  RECORD_EMPTY: "the record file has no records",
  RECORD_KEY_WITHOUT_VALUE: "a record entry without key or value",
  RECORD_DUPLICATE_KEY: "two records for one layer",
  RECORD_UNKNOWN_LAYER: "a record for a layer the model lacks",
  RECORD_NOT_QUANTIZABLE: "a record for a layer that cannot be quantized",
  RECORD_BAD_SCALE: "scale_d or scale_w not a finite number > 0",
  RECORD_BAD_OFFSET_D: "offset_d outside -128..127",
  RECORD_BAD_OFFSET_W: "an offset_w that is not 0",
  RECORD_BAD_LENGTH: "scale_w/offset_w lengths unequal or not 1 or num_output",
  RECORD_SHIFT_BIT: "shift_bit is not supported by convert_model",
  // Model content.
  ALREADY_QUANTIZED: "the model is already quantized",
  BN_NOT_GLOBAL_STATS: "a BatchNorm to fuse has use_global_stats: false",
  BN_BAD_VARIANCE: "a BatchNorm to fuse whose variance + eps is not > 0",
  WEIGHTS_NOT_FINITE: "NaN or infinity in weights of a layer to quantize",
  BIAS_OVERFLOW: "a quantized bias does not fit in int32",
  // Paths.
  INPUT_NOT_FOUND: "an input file is missing",
  INPUT_UNREADABLE: "an input file cannot be read",
  OUTPUT_DIR: "the output directory cannot be created or written",
  OUTPUT_OVERWRITES_INPUT: "an output file would overwrite an input",
  OUTPUT_NOT_A_FILE: "an existing output path that is not a regular file (FIFO, device, bad link)",
  OUTPUT_LOCKED: "another run is writing the same outputs",
  // Calibration and its configuration.
  CALIBRATION_NO_DATA: "no calibration samples, or a layer to calibrate that never ran",
  CALIBRATION_NOT_FINITE: "NaN or infinity in a blob being calibrated",
  CONFIG_SYNTAX: "a quantization configuration that is not valid JSON",
  CONFIG_UNKNOWN_FIELD: "a configuration field AMCT does not define",
  CONFIG_UNKNOWN_LAYER: "a configuration that names a layer the model lacks",
  CONFIG_BAD_VALUE: "a configuration value of the wrong type or out of range",
  // Simulator and command line.
  UNSUPPORTED_LAYER: "a layer type the simulator cannot run",
  BAD_INPUT: "an input tensor, or a shape a layer computes from it, that does not fit the net",
  BAD_ARGUMENT: "a library call's argument of the wrong type or out of range",
  NPY_FORMAT: "a .npy file this reader does not accept",
  NOTHING_TO_COMPARE: "two nets to compare share no layer output",
  IMAGE_FORMAT: "an image file that does not decode (not JPEG or PNG, truncated, unsupported)",
  LIST_FORMAT: "a line of an image list file that is not `path label`",
  USAGE: "wrong command-line usage (an unknown option, a missing argument, a bad option value)",
} as const;

/** A stable error code, one of the keys of {@linkcode ERROR_CODES}. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Where an error happened; every field is optional and only set when known. */
export interface ErrorPlace {
  /** The file concerned (path, or a label such as `model` for in-memory input). */
  file?: string;
  /** 1-based line in a text file. */
  line?: number;
  /** 1-based column in a text file. */
  column?: number;
  /** Byte offset in a binary file. */
  offset?: number;
  /** Layer name for a model problem. */
  layer?: string;
}

/**
 * A user-facing failure with a stable code and its place.
 *
 * @example
 * ```ts
 * import { ConvertError } from "./errors.ts";
 * const error = new ConvertError("RECORD_EMPTY", "no record entries", { file: "r.txt" });
 * console.log(error.format()); // error[RECORD_EMPTY] r.txt: no record entries
 * ```
 */
export class ConvertError extends Error {
  /** The stable code. */
  readonly code: ErrorCode;
  /** The file concerned, if any. */
  readonly file?: string;
  /** 1-based line, for text files. */
  readonly line?: number;
  /** 1-based column, for text files. */
  readonly column?: number;
  /** Byte offset, for binary files. */
  readonly offset?: number;
  /** The layer concerned, if any. */
  readonly layer?: string;

  /** Makes an error with `code`, a message and where it happened. */
  constructor(code: ErrorCode, message: string, place: ErrorPlace = {}) {
    super(message);
    this.name = "ConvertError";
    this.code = code;
    this.file = place.file;
    this.line = place.line;
    this.column = place.column;
    this.offset = place.offset;
    this.layer = place.layer;
  }

  /** The same error with the file set (the reader of a buffer does not know the path). */
  inFile(file: string): ConvertError {
    if (this.file !== undefined) return this;
    return new ConvertError(this.code, this.message, { ...this.place(), file });
  }

  /** The place fields as a plain object. */
  place(): ErrorPlace {
    const { file, line, column, offset, layer } = this;
    return { file, line, column, offset, layer };
  }

  /**
   * `error[CODE] file:line:col: message`, the form the command line prints (`file@offset` for
   * binary files; the layer is named when the message does not already name it). Control and
   * invisible formatting characters are escaped ({@linkcode printable}), so the line shows what
   * the names hold; only a `USAGE` message keeps its own line breaks (the usage it appends).
   */
  format(): string {
    let where = this.file ?? "";
    if (this.line !== undefined) where += `:${this.line}:${this.column ?? 1}`;
    else if (this.offset !== undefined) where += `@${this.offset}`;
    const layer = this.layer !== undefined && !this.message.includes(`"${this.layer}"`)
      ? `layer "${this.layer}": `
      : "";
    const message = printable(layer + this.message, { keepLines: this.code === "USAGE" });
    return `error[${this.code}] ${where ? printable(where) + ": " : ""}${message}`;
  }

  /** A JSON form: `{ code, message, file, line, column, offset, layer }` (unset fields left out). */
  toJSON(): Record<string, unknown> {
    return JSON.parse(JSON.stringify({ code: this.code, message: this.message, ...this.place() }));
  }
}
