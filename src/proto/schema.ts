/**
 * The protobuf schema of Caffe nets (with SSD and AMCT additions) and of AMCT record files,
 * parsed once with protobufjs. Field names keep the schema's snake_case (`keepCase`).
 *
 * @module
 */

import protobuf from "npm:protobufjs@8.0.0";
import {
  CAFFE_PROTO,
  CALIBRATION_CONFIG_PROTO,
  SCALE_OFFSET_RECORD_PROTO,
} from "./schema.generated.ts";

let root: protobuf.Root | undefined;

/**
 * The root holding `caffe.*` (from `proto/caffe.proto`) and the record types `ScaleOffsetRecord`
 * and `SingleLayerRecord` (from `proto/scale_offset_record.proto`, no package), and AMCT's
 * simplified calibration config `amct.AMCTConfig` (from `proto/calibration_config_caffe.proto`),
 * parsed on first use and resolved.
 */
export function caffeRoot(): protobuf.Root {
  if (root === undefined) {
    const parsed = new protobuf.Root();
    protobuf.parse(CAFFE_PROTO, parsed, { keepCase: true });
    protobuf.parse(SCALE_OFFSET_RECORD_PROTO, parsed, { keepCase: true });
    protobuf.parse(CALIBRATION_CONFIG_PROTO, parsed, { keepCase: true });
    parsed.resolveAll();
    root = parsed;
  }
  return root;
}

/**
 * The message type with the given full name, e.g. `"caffe.NetParameter"`,
 * `"caffe.LayerParameter"`, `"caffe.V1LayerParameter"`, `"caffe.BlobProto"`,
 * `"ScaleOffsetRecord"` or `"amct.AMCTConfig"`. Throws when the schema has no such type (a
 * programming error).
 */
export function caffeType(name: string): protobuf.Type {
  let type = typesByName.get(name);
  if (type === undefined) {
    type = caffeRoot().lookupType(name);
    typesByName.set(name, type);
  }
  return type;
}

/** The types {@linkcode caffeType} has looked up (a lookup walks the namespace each time). */
const typesByName = new Map<string, protobuf.Type>();
