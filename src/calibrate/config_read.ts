/**
 * AMCT's configuration in either of its forms, told apart by its first character: the JSON file
 * `create_quant_config` writes (`{`), or the simplified protobuf-text config.
 *
 * @module
 */

import type { Net } from "../caffe/net.ts";
import type { CalibrationConfig } from "./config.ts";
import { readJsonConfig } from "./config_json.ts";
import { readTextConfig } from "./config_text.ts";

/**
 * Reads an AMCT quantization configuration for `net`: JSON (as `create_quant_config` writes) when
 * its first non-blank character is `{`, else the simplified protobuf-text config. Every problem
 * is a ConvertError at its line and column.
 *
 * @example
 * ```ts ignore
 * const config = readQuantConfig(await Deno.readTextFile("quant.cfg"), net, "quant.cfg");
 * const { record } = await calibrate(net, samples, { config });
 * ```
 */
export function readQuantConfig(text: string, net: Net, file?: string): CalibrationConfig {
  const first = text.replace(/^\uFEFF/, "").trimStart()[0];
  return first === "{" ? readJsonConfig(text, net, file) : readTextConfig(text, net, file);
}
