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
import { type TextField, TextMessage } from "../proto/tree.ts";
import { checkLayerParams } from "./layer_checks.ts";
import { Layer, type Net } from "./net.ts";
import { mixedFormats, upgradeV1Layer } from "./upgrade.ts";

/**
 * Reads a net prototxt. The header holds every `NetParameter` field but `layer`/`layers`, in
 * input order; each `layer` becomes a {@linkcode Layer} with no blobs, and each V1 `layers` entry
 * is upgraded to V2 form first. Net-level `input`/`input_dim`/`input_shape` stay in the header.
 *
 * @throws {ConvertError} the text errors of {@linkcode parseText}; `DUPLICATE_LAYER` at the
 * second layer's `name`; `UNDEFINED_BOTTOM` at a `bottom` that no net input or earlier layer
 * produces; `DUPLICATE_TOP` at a `top` (or net `input`) that a net input or an earlier top
 * already produces, unless it is in place (top `i` = bottom `i`, as Caffe requires; this also
 * rules out cycles). Errors carry `file` when given.
 */
export function readPrototxt(source: string, file?: string): Net {
  const tree = parseText(source, caffeType("caffe.NetParameter"), file);
  const header = new TextMessage();
  const layers: Layer[] = [];
  const formats = new Set<string>();
  for (const field of tree.fields) {
    const value = field.value;
    if (!field.unknown && (field.name === "layer" || field.name === "layers")) {
      formats.add(field.name);
      if (formats.size > 1) throw mixedFormats(field, file);
    }
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
  checkInputShapes(header, file);
  checkNet(net, file);
  for (const layer of layers) checkLayerParams(layer, file);
  return net;
}

/**
 * Checks the net-level input shapes as Caffe does: `input_dim` holds 4 values per `input`,
 * `input_shape` one shape per `input`, and where both are given they must agree (Caffe uses one
 * and ignores the other, so a disagreement means the net is not what one of them says).
 */
function checkInputShapes(header: TextMessage, file?: string): void {
  const fields = header.fields.filter((field) => !field.unknown);
  const inputs = fields.filter((field) => field.name === "input");
  const dims = fields.filter((field) => field.name === "input_dim");
  const shapes = fields.filter((field) => field.name === "input_shape");
  const fail = (message: string, at: TextField | undefined) =>
    new ConvertError("INPUT_SHAPE_CONFLICT", message, {
      file,
      line: at?.line,
      column: at?.column,
    });
  if (dims.length > 0 && dims.length !== 4 * inputs.length) {
    throw fail(
      `${dims.length} input_dim values for ${inputs.length} input(s): input_dim gives 4 per input`,
      dims[0],
    );
  }
  if (shapes.length > 0 && shapes.length !== inputs.length) {
    throw fail(
      `${shapes.length} input_shape(s) for ${inputs.length} input(s): give one per input`,
      shapes[Math.min(shapes.length, inputs.length)] ?? shapes[0],
    );
  }
  if (dims.length === 0 || shapes.length === 0) return;
  shapes.forEach((shape, i) => {
    const fromShape = shape.value instanceof TextMessage
      ? shape.value.getAll("dim").map(Number)
      : [];
    const fromDims = dims.slice(4 * i, 4 * i + 4).map((field) => Number(field.value));
    if (fromShape.join() !== fromDims.join()) {
      throw fail(
        `input "${inputs[i].value}" has input_shape [${fromShape.join(", ")}] but input_dim ` +
          `[${fromDims.join(", ")}]; give one of them, or make them agree`,
        shape,
      );
    }
  });
}

/**
 * Checks the net as Caffe's `Net::Init` does: every bottom is a net input or a top of an earlier
 * layer, no blob is produced twice except in place (top `i` of a layer that is also its bottom
 * `i`), and layer names are unique. In file order, a cycle can only come from a layer that writes
 * again a blob it is computed from, so the duplicate-top check also rejects cycles.
 */
function checkNet(net: Net, file?: string): void {
  const names = new Set<string>();
  /** The index of the layer that first produced each blob, -1 for a net input. */
  const producers = new Map<string, number>();
  for (const field of net.header.fields) {
    if (field.unknown || field.name !== "input") continue;
    const input = String(field.value);
    if (producers.has(input)) {
      throw new ConvertError("DUPLICATE_TOP", `net input "${input}" is declared twice`, {
        file,
        line: field.line,
        column: field.column,
      });
    }
    producers.set(input, -1);
  }
  net.layers.forEach((layer, index) => {
    const fields = layer.params.fields.filter((field) => !field.unknown);
    const name = layer.name;
    const bottoms: string[] = [];
    for (const field of fields) {
      if (field.name !== "bottom") continue;
      const bottom = String(field.value);
      if (!producers.has(bottom)) throw undefinedBottom(net, index, field, file);
      bottoms.push(bottom);
    }
    let topIndex = 0;
    for (const field of fields) {
      if (field.name !== "top") continue;
      const top = String(field.value);
      const producer = producers.get(top);
      if (producer === undefined) producers.set(top, index);
      else if (bottoms[topIndex] !== top) {
        throw duplicateTop(net, index, topIndex, producer, field, file);
      }
      topIndex++;
    }
    if (name === "") return;
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
  });
}

/** The UNDEFINED_BOTTOM error of `field`, a bottom of layer `index`, naming a later producer. */
function undefinedBottom(net: Net, index: number, field: TextField, file?: string): ConvertError {
  const bottom = String(field.value);
  const layer = net.layers[index];
  const later = net.layers.slice(index + 1).find((other) => other.tops.includes(bottom));
  const reason = later !== undefined
    ? `: layer "${later.name}" produces it later, and Caffe runs the layers in file order`
    : layer.tops.includes(bottom)
    ? ": only this layer writes it"
    : "";
  return new ConvertError(
    "UNDEFINED_BOTTOM",
    `bottom "${bottom}" is not a net input nor a top of an earlier layer${reason}`,
    { file, line: field.line, column: field.column, layer: layer.name },
  );
}

/**
 * The DUPLICATE_TOP error of `field`, top `topIndex` of layer `index`, whose blob layer `producer`
 * (-1: a net input) wrote first.
 */
function duplicateTop(
  net: Net,
  index: number,
  topIndex: number,
  producer: number,
  field: TextField,
  file?: string,
): ConvertError {
  const top = String(field.value);
  const layer = net.layers[index];
  const first = producer < 0
    ? `"${top}" is a net input`
    : producer === index
    ? `"${top}" is an earlier top of this layer`
    : `layer "${net.layers[producer].name}" already produces "${top}"`;
  const bottomIndex = layer.bottoms.indexOf(top);
  const position = bottomIndex < 0
    ? ""
    : ` ("${top}" is bottom ${bottomIndex} here, top ${topIndex})`;
  const cycle = bottomIndex < 0 && computedFrom(net.layers, index, top)
    ? `; "${layer.name}" is computed from "${top}", so the net would have a cycle`
    : "";
  return new ConvertError(
    "DUPLICATE_TOP",
    `${first}; Caffe lets a layer write a blob again only in place, as its top i = bottom i` +
      `${position}${cycle}`,
    { file, line: field.line, column: field.column, layer: layer.name },
  );
}

/**
 * True when layer `index` reads `blob` directly or through earlier layers (in a net whose blobs
 * before `index` are each produced once, in-place rewrites aside).
 */
function computedFrom(layers: readonly Layer[], index: number, blob: string): boolean {
  const needed = new Set(layers[index].bottoms);
  for (let earlier = index - 1; earlier >= 0 && !needed.has(blob); earlier--) {
    if (!layers[earlier].tops.some((top) => needed.has(top))) continue;
    for (const bottom of layers[earlier].bottoms) needed.add(bottom);
  }
  return needed.has(blob);
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
