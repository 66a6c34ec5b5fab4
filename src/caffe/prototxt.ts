/**
 * Caffe net prototxt files: read into a {@linkcode Net} (V1 nets upgraded, structure checked)
 * and printed back as canonical V2 text.
 *
 * @module
 */

import { ConvertError } from "../errors.ts";
import { caffeType } from "../proto/schema.ts";
import { printText } from "../proto/text_print.ts";
import { parseText } from "../proto/text_read.ts";
import { TextMessage } from "../proto/tree.ts";
import { Layer, type Net } from "./net.ts";
import { upgradeV1Layer } from "./upgrade.ts";

/**
 * Reads a net prototxt. The header holds every `NetParameter` field but `layer`/`layers`, in
 * input order; each `layer` becomes a {@linkcode Layer} with no blobs, and each V1 `layers` entry
 * is upgraded to V2 form first. Net-level `input`/`input_dim`/`input_shape` stay in the header.
 *
 * @throws {ConvertError} the text errors of {@linkcode parseText}; `DUPLICATE_LAYER` at the
 * second layer's `name`; `UNDEFINED_BOTTOM` at a `bottom` that no net input or earlier layer
 * produces. Errors carry `file` when given.
 */
export function readPrototxt(source: string, file?: string): Net {
  const tree = parseText(source, caffeType("caffe.NetParameter"), file);
  const header = new TextMessage();
  const layers: Layer[] = [];
  for (const field of tree.fields) {
    const value = field.value;
    if (!field.unknown && field.name === "layer" && value instanceof TextMessage) {
      layers.push(new Layer(value));
    } else if (!field.unknown && field.name === "layers" && value instanceof TextMessage) {
      try {
        layers.push(new Layer(upgradeV1Layer(value)));
      } catch (error) {
        throw error instanceof ConvertError && file !== undefined ? error.inFile(file) : error;
      }
    } else {
      header.fields.push(field);
    }
  }
  const net = { header, layers };
  checkNet(net, file);
  return net;
}

/** Checks layer names are unique and every bottom is produced before it is read. */
function checkNet(net: Net, file?: string): void {
  const names = new Set<string>();
  const blobs = new Set(net.header.getAll("input").map(String));
  for (const layer of net.layers) {
    const fields = layer.params.fields;
    const name = layer.name;
    for (const field of fields) {
      if (field.unknown || field.name !== "bottom") continue;
      const bottom = String(field.value);
      if (!blobs.has(bottom)) {
        throw new ConvertError(
          "UNDEFINED_BOTTOM",
          `bottom "${bottom}" is not a net input nor a top of an earlier layer`,
          { file, line: field.line, column: field.column, layer: name },
        );
      }
    }
    for (const field of fields) {
      if (!field.unknown && field.name === "top") blobs.add(String(field.value));
    }
    if (name === "") continue;
    if (names.has(name)) {
      const at = layer.params.entry("name");
      throw new ConvertError(
        "DUPLICATE_LAYER",
        `a layer named "${name}" comes earlier in the net`,
        {
          file,
          line: at?.line,
          column: at?.column,
          layer: name,
        },
      );
    }
    names.add(name);
  }
}

/**
 * Prints a net as canonical V2 prototxt: the header fields in order, then one `layer { … }` per
 * layer (blobs are not printed; they live in the caffemodel).
 */
export function printPrototxt(net: Net): string {
  const tree = new TextMessage([
    ...net.header.fields,
    ...net.layers.map((layer) => ({ name: "layer", value: layer.params })),
  ]);
  return printText(tree, caffeType("caffe.NetParameter"));
}
