/**
 * The error of an image that does not decode.
 *
 * @module
 */

import { ConvertError } from "../errors.ts";

/** An `IMAGE_FORMAT` error about `file`. */
export function imageError(message: string, file: string): ConvertError {
  return new ConvertError("IMAGE_FORMAT", message, { file });
}
