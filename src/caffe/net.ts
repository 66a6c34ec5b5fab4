/**
 * The one in-memory form of a Caffe net: its header fields, its layers in order (each a lossless
 * `LayerParameter` text tree with typed accessors) and each layer's blobs.
 *
 * @module
 */

import { type FieldValue, type TextField, TextMessage } from "../proto/tree.ts";

/** The element arrays a blob can hold: float data, or the deploy model's integer data. */
export type BlobData = Float32Array | Int8Array | Int32Array | BigUint64Array;

/** A parameter blob: its shape and its data as a typed array (a view into the file when read). */
export interface Blob {
  /** Dimensions, outermost first. */
  shape: number[];
  /** The elements: `data`/`double_data` as float32, or `int8_data`/`int32_data`/`uint64_data`. */
  data: BlobData;
  /** True when the file gave legacy `num/channels/height/width` instead of `shape`. */
  legacyShape?: boolean;
}

/** A layer's name, type, bottoms and tops as read from the `fields` array they came from. */
interface Wiring {
  fields: TextField[];
  length: number;
  name: string;
  type: string;
  bottoms: string[];
  tops: string[];
}

/** A layer: its `LayerParameter` text tree (the only source of truth) and its blobs. */
export class Layer {
  /** The layer's `LayerParameter` fields, in input order, unknown fields included. */
  params: TextMessage;
  /** Parameter blobs, attached from the caffemodel. */
  blobs: Blob[];
  /**
   * Raw bytes of caffemodel fields our schema does not know, carried by the caffemodel layer of
   * the same name (V2 inputs); written back after the layer's parameters.
   */
  unknownBytes: Uint8Array;
  /**
   * The wiring last read from `params`; read again when `params.fields` is another array or has
   * another length (as every `TextMessage` method that changes fields leaves it).
   */
  #wiring: Wiring | undefined;

  /** Wraps a `LayerParameter` tree. */
  constructor(
    params: TextMessage,
    blobs: Blob[] = [],
    unknownBytes: Uint8Array = new Uint8Array(0),
  ) {
    this.params = params;
    this.blobs = blobs;
    this.unknownBytes = unknownBytes;
  }

  /** The name, type, bottoms and tops of `params` as it is now. */
  #read(): Wiring {
    const { fields } = this.params;
    const kept = this.#wiring;
    if (kept !== undefined && kept.fields === fields && kept.length === fields.length) return kept;
    const wiring = {
      fields,
      length: fields.length,
      name: String(this.params.get("name") ?? ""),
      type: String(this.params.get("type") ?? ""),
      bottoms: this.params.getAll("bottom").map(String),
      tops: this.params.getAll("top").map(String),
    };
    this.#wiring = wiring;
    return wiring;
  }

  /** The layer name (`""` when absent). */
  get name(): string {
    return this.#read().name;
  }
  set name(value: string) {
    this.params.set("name", value);
  }

  /** The layer type, e.g. `"Convolution"` (`""` when absent). */
  get type(): string {
    return this.#read().type;
  }
  set type(value: string) {
    this.params.set("type", value);
  }

  /** Input blob names in order (a new array). */
  get bottoms(): string[] {
    return this.#read().bottoms.slice();
  }
  set bottoms(values: string[]) {
    this.params.setAll("bottom", values);
  }

  /** Output blob names in order (a new array). */
  get tops(): string[] {
    return this.#read().tops.slice();
  }
  set tops(values: string[]) {
    this.params.setAll("top", values);
  }

  /**
   * A field of a nested parameter message, e.g. `param("convolution_param", "num_output")`;
   * `undefined` when absent (schema defaults are applied by the callers that know them).
   */
  param(message: string, field: string): FieldValue | undefined {
    return this.params.message(message)?.get(field);
  }

  /** Every value of a repeated field of a nested parameter message. */
  paramAll(message: string, field: string): FieldValue[] {
    return this.params.message(message)?.getAll(field) ?? [];
  }

  /** 1-based line of the layer in its prototxt, when read from text. */
  get line(): number | undefined {
    return this.params.fields[0]?.line;
  }
}

/** A declared net input: blob name and shape. */
export interface NetInput {
  /** Blob name. */
  name: string;
  /** Shape, outermost first. */
  shape: number[];
}

/** A whole net. */
export interface Net {
  /**
   * Net-level fields other than layers (`name`, `input`, `input_dim`, `input_shape`,
   * `force_backward`, `state`, unknown fields…), in input order.
   */
  header: TextMessage;
  /** Layers in file order (V1 nets already upgraded to V2 form). */
  layers: Layer[];
}

/** The inputs a net declares, from `input` + `input_dim`/`input_shape` and from `Input` layers. */
export function netInputs(net: Net): NetInput[] {
  const names = net.header.getAll("input").map(String);
  const dims = net.header.getAll("input_dim").map(Number);
  const shapes = net.header.getAll("input_shape").map((s) =>
    s instanceof TextMessage ? s.getAll("dim").map(Number) : []
  );
  const inputs: NetInput[] = names.map((name, i) => ({
    name,
    shape: shapes.length > 0 ? shapes[i] ?? shapes[0] : dims.slice(4 * i, 4 * i + 4),
  }));
  for (const layer of net.layers) {
    if (layer.type !== "Input") continue;
    const shapeMessages = layer.params.message("input_param")?.getAll("shape") ?? [];
    layer.tops.forEach((name, i) => {
      const shape = shapeMessages[i] ?? shapeMessages[0];
      inputs.push({
        name,
        shape: shape instanceof TextMessage ? shape.getAll("dim").map(Number) : [],
      });
    });
  }
  return inputs;
}

/**
 * The blobs a net outputs: written by a layer (or declared as inputs) and read by no later layer
 * (an in-place layer reads its blob and writes it anew), in the order they were last written.
 */
export function netOutputs(net: Net): string[] {
  const open = new Set(netInputs(net).map((input) => input.name));
  for (const layer of net.layers) {
    for (const name of layer.bottoms) open.delete(name);
    for (const name of layer.tops) {
      open.delete(name);
      open.add(name);
    }
  }
  return [...open];
}
