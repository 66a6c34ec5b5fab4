/**
 * The schema of Caffe nets (with SSD and AMCT additions) and of AMCT record and calibration
 * config files, from the descriptor scripts/build_schema.ts generates from `proto/`. Field names
 * keep the schema's snake_case.
 *
 * @module
 */

import { type MessageType, messageTypes } from "./field_info.ts";
import { SCHEMA } from "./schema.generated.ts";

/** The schema's message types by full name. */
const lookup = messageTypes(SCHEMA);

/**
 * The message type with the given full name, e.g. `"caffe.NetParameter"`,
 * `"caffe.LayerParameter"`, `"caffe.V1LayerParameter"`, `"caffe.BlobProto"`,
 * `"ScaleOffsetRecord"` or `"amct.AMCTConfig"`. Throws when the schema has no such type (a
 * programming error).
 */
export function caffeType(name: string): MessageType {
  return lookup(name);
}
