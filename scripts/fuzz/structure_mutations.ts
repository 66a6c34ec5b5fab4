/**
 * Damage that keeps a file well-formed and breaks what it means, to reach the checks behind the
 * parsers: in the prototxt, convolution and pooling parameters (group, stride, kernel, pad,
 * dilation, num_output), mixed V1/V2 layers, conflicting input_dim/input_shape, other input
 * dims, in-place quantizable layers; in the caffemodel, bias shapes, BatchNorm and Scale blob
 * counts, empty and negative statistics. Cases made here also run the simulator (see
 * `run_case.ts`), so shape checks of every layer are reached too.
 *
 * @module
 */

import { readCaffemodel } from "../../src/caffe/caffemodel_read.ts";
import { writeCaffemodel } from "../../src/caffe/caffemodel_write.ts";
import type { Blob } from "../../src/caffe/net.ts";
import type { MappedBinary } from "./binary_mutations.ts";
import type { Rng } from "./rng.ts";
import type { TextMutation, TokenizedText } from "./text_mutations.ts";

/** One top-level `layer { … }` or `layers { … }` block of a prototxt. */
interface LayerBlock {
  /** Offset of the `layer`/`layers` keyword. */
  start: number;
  /** Offset just past its `{`. */
  open: number;
  /** Offset of its closing `}`. */
  close: number;
  /** `layer` or `layers`. */
  keyword: string;
  /** The `type` value as written (quotes removed). */
  type: string;
  /** `bottom` values with their token spans (quotes included). */
  bottoms: { value: string; span: [number, number] }[];
  /** `top` values with their token spans. */
  tops: { value: string; span: [number, number] }[];
}

const unquote = (token: string) => token.replace(/^["']|["']$/g, "");

/** The top-level layer blocks of `file`, with their type, bottoms and tops. */
function layerBlocks(file: TokenizedText): LayerBlock[] {
  const { text, tokens } = file;
  const token = (i: number) => tokens[i] === undefined ? "" : text.slice(...tokens[i]);
  const blocks: LayerBlock[] = [];
  let depth = 0;
  let current: LayerBlock | undefined;
  for (let i = 0; i < tokens.length; i++) {
    const here = token(i);
    if (here === "{") {
      depth++;
      continue;
    }
    if (here === "}") {
      depth--;
      if (depth === 0 && current !== undefined) {
        current.close = tokens[i][0];
        blocks.push(current);
        current = undefined;
      }
      continue;
    }
    if (depth === 0 && (here === "layer" || here === "layers") && token(i + 1) === "{") {
      current = {
        start: tokens[i][0],
        open: tokens[i + 1][1],
        close: -1,
        keyword: here,
        type: "",
        bottoms: [],
        tops: [],
      };
      continue;
    }
    if (depth === 1 && current !== undefined && token(i + 1) === ":") {
      const value = { value: unquote(token(i + 2)), span: tokens[i + 2] ?? [0, 0] };
      if (here === "type") current.type = value.value;
      else if (here === "bottom") current.bottoms.push(value);
      else if (here === "top") current.tops.push(value);
    }
  }
  return blocks;
}

const encoder = new TextEncoder();

/** `text` with `[from, to)` replaced by `insert`, as UTF-8. */
function spliced(text: string, from: number, to: number, insert: string): Uint8Array {
  return encoder.encode(text.slice(0, from) + insert + text.slice(to));
}

const CONVOLUTION_TYPES = ["Convolution", "Deconvolution", "CONVOLUTION", "DECONVOLUTION"];
const POOLING_TYPES = ["Pooling", "POOLING"];
const CONVOLUTION_FIELDS = [
  "group",
  "stride",
  "kernel_size",
  "pad",
  "dilation",
  "num_output",
  "stride_h",
  "kernel_h",
  "kernel_w",
  "pad_w",
];
const POOLING_FIELDS = ["kernel_size", "stride", "pad", "kernel_h", "stride_w", "pad_h"];
const PARAM_VALUES = ["0", "1", "2", "3", "5", "7", "1000", "65536", "2147483647", "-1"];
/**
 * Pads: a pad of 1000 on a small input makes a valid net a thousand times larger (slow, not
 * wrong); 2^31 - 1 makes outputs too large to allocate.
 */
const PAD_VALUES = ["0", "1", "2", "3", "7", "2147483647", "-1"];

/** The prototxt mutations of this module, all marked to run the simulator. */
export const STRUCTURE_TEXT_MUTATIONS: readonly TextMutation[] = [
  {
    name: "layer-param",
    weight: 3,
    apply(file, rng) {
      const layers = layerBlocks(file).filter((block) =>
        [...CONVOLUTION_TYPES, ...POOLING_TYPES].includes(block.type)
      );
      if (layers.length === 0) return file.bytes;
      const layer = rng.pick(layers);
      const pooling = POOLING_TYPES.includes(layer.type);
      const message = pooling ? "pooling_param" : "convolution_param";
      const field = rng.pick(pooling ? POOLING_FIELDS : CONVOLUTION_FIELDS);
      const value = rng.chance(0.1) && pooling
        ? "true"
        : rng.pick(field.startsWith("pad") ? PAD_VALUES : PARAM_VALUES);
      const written = `${value === "true" ? "global_pooling" : field}: ${value} `;
      const body = file.text.slice(layer.open, layer.close);
      const at = body.search(new RegExp(`\\b${message}\\s*\\{`));
      if (at < 0) {
        return spliced(file.text, layer.close, layer.close, ` ${message} { ${written}} `);
      }
      const open = layer.open + body.indexOf("{", at) + 1;
      // Singular fields given twice are a syntax error: drop the old values of the field first.
      const end = file.text.indexOf("}", open);
      const inner = file.text.slice(open, end).replace(
        new RegExp(`\\b${field}\\s*:\\s*[^\\s}]+`, "g"),
        "",
      );
      return spliced(file.text, open, end, ` ${written}${inner}`);
    },
  },
  {
    name: "mixed-v1-v2",
    apply(file, rng) {
      const layers = layerBlocks(file);
      if (layers.length === 0) return file.bytes;
      const after = rng.pick(layers);
      const top = after.tops[0]?.value ?? "data";
      const v1 = after.keyword === "layer";
      const added = v1
        ? `\nlayers { name: "fuzz_relu" type: RELU bottom: "${top}" top: "${top}" }\n`
        : `\nlayer { name: "fuzz_relu" type: "ReLU" bottom: "${top}" top: "${top}" }\n`;
      return spliced(file.text, after.close + 1, after.close + 1, added);
    },
  },
  {
    name: "input-shape-conflict",
    apply(file, rng) {
      const dims = [...file.text.matchAll(/\binput_dim\s*:\s*(\d+)/g)].map((m) => Number(m[1]));
      const declared = dims.length >= 4
        ? dims.slice(0, 4)
        : [...(/input_shape\s*\{([^}]*)\}/.exec(file.text)?.[1] ?? "").matchAll(/\d+/g)]
          .map(Number);
      const shape = declared.map((dim) => rng.chance(0.3) ? rng.pick([0, 1, 2, dim + 1]) : dim);
      if (rng.chance(0.2)) shape.pop();
      const insert = dims.length > 0
        ? `input_shape { ${shape.map((d) => `dim: ${d}`).join(" ")} }\n`
        : shape.map((d) => `input_dim: ${d}\n`).join("");
      const at = file.text.search(/\n\s*(layer|layers)\s*\{/);
      return spliced(file.text, Math.max(0, at), Math.max(0, at), `\n${insert}`);
    },
  },
  {
    name: "input-dims",
    weight: 2,
    apply(file, rng) {
      // One declared input dimension changed (input_dim, input_shape or an Input layer's dim):
      // the simulator then meets shapes its layers' weights and parameters do not fit.
      const dims = [...file.text.matchAll(/\b(input_dim|dim)\s*:\s*(\d+)/g)];
      if (dims.length === 0) return file.bytes;
      const pick = rng.below(Math.min(dims.length, 4));
      const match = dims[pick];
      const old = Number(match[2]);
      const value = pick === 0
        ? rng.pick([0, 1, 2, 3])
        : rng.pick([0, 1, 2, 3, 7, old - 1, old + 1, Math.max(1, old >> 1)]);
      const from = match.index! + match[0].length - match[2].length;
      return spliced(file.text, from, from + match[2].length, String(value));
    },
  },
  {
    name: "in-place-layer",
    weight: 2,
    apply(file, rng) {
      // A quantizable layer made in place: its top becomes its bottom, and every later mention
      // of the old top reads the bottom instead (the net stays well-wired).
      const layers = layerBlocks(file).filter((block) =>
        [...CONVOLUTION_TYPES, ...POOLING_TYPES, "InnerProduct", "INNER_PRODUCT"].includes(
          block.type,
        ) && block.bottoms.length === 1 && block.tops.length === 1
      );
      if (layers.length === 0) return file.bytes;
      const layer = rng.pick(layers);
      const bottom = layer.bottoms[0].value;
      const top = layer.tops[0].value;
      if (bottom === top) return file.bytes;
      const [from, to] = layer.tops[0].span;
      const rest = file.text.slice(to).replace(
        new RegExp(`(["'])${top.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\1`, "g"),
        `"${bottom}"`,
      );
      return encoder.encode(file.text.slice(0, from) + `"${bottom}"` + rest);
    },
  },
];

/** A float blob of `shape` filled with `value`. */
function filled(shape: number[], value: number): Blob {
  return { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(value) };
}

/** One structural change to a caffemodel's layers, made through the reader and the writer. */
interface BlobEdit {
  /** Layer types it applies to. */
  types: string[];
  /** The new blobs of a layer (from its old ones). */
  edit(blobs: Blob[], rng: Rng): Blob[];
}

const BLOB_EDITS: Record<string, BlobEdit> = {
  "bias-shape": {
    types: ["Convolution", "Deconvolution", "InnerProduct"],
    edit(blobs, rng) {
      if (blobs.length < 2) return [...blobs, filled([rng.pick([1, 2, 4])], 0)];
      const count = blobs[1].data.length;
      const shape = rng.pick([[1, count], [count, 1], [2, count / 2], [count + 1], []]);
      return [blobs[0], filled(shape.every(Number.isInteger) ? shape : [2, 2], 0.5)];
    },
  },
  "batchnorm-blobs": {
    types: ["BatchNorm"],
    edit(blobs, rng) {
      const [mean, variance, factor] = blobs;
      switch (rng.below(5)) {
        case 0:
          return [...blobs, filled([1], 1)];
        case 1:
          return [mean, variance, filled([0], 0)];
        case 2:
          return [mean, variance];
        case 3: {
          const negative = new Float32Array(variance?.data.length ?? 1);
          negative.fill(-rng.pick([1e-5, 1, 1e30]));
          return [mean, { shape: variance?.shape ?? [1], data: negative }, factor];
        }
        default:
          return [mean, variance, filled([1], rng.pick([0, -1, 1e-30]))];
      }
    },
  },
  "scale-blobs": {
    types: ["Scale"],
    edit(blobs, rng) {
      if (blobs.length === 0) return blobs;
      return rng.chance(0.5)
        ? [blobs[0], filled(blobs[0].shape, 0.25)]
        : [blobs[0], filled([blobs[0].data.length + 1], 0)];
    },
  },
};

/** A caffemodel mutation made through the model reader and writer. */
export interface StructureBinaryMutation {
  /** Stable name, recorded with findings. */
  name: string;
  /** The damaged file (the original when no layer fits). */
  apply(file: MappedBinary, rng: Rng): Uint8Array;
}

/** The caffemodel mutations of this module, all marked to run the simulator. */
export const STRUCTURE_BINARY_MUTATIONS: readonly StructureBinaryMutation[] = Object.entries(
  BLOB_EDITS,
).map(([name, { types, edit }]) => ({
  name,
  apply(file, rng) {
    const net = readCaffemodel(file.bytes);
    const candidates = net.layers.filter((layer) => types.includes(layer.type));
    if (candidates.length === 0) return file.bytes;
    const layer = rng.pick(candidates);
    layer.blobs = edit(layer.blobs, rng);
    return writeCaffemodel(net);
  },
}));
