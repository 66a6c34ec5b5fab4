/**
 * A summary of a net for people and scripts: every layer with its wiring, output shapes,
 * parameter blob shapes and count, and whether it can be quantized (docs/layers.md), is folded into a
 * layer before it by fusion, or why not.
 *
 * @module
 */

import { printable } from "../printable.ts";
import { boolParam, quantizeBlocker } from "./layers.ts";
import { type Net, type NetInput, netInputs } from "./net.ts";

/** One layer of an {@linkcode NetSummary}. */
export interface LayerSummary {
  /** Layer name. */
  name: string;
  /** Layer type (V2 spelling). */
  type: string;
  /** Input blob names. */
  bottoms: string[];
  /** Output blob names. */
  tops: string[];
  /** The shape of each top as the simulator computed it, when known. */
  topShapes?: number[][];
  /** Shape of each parameter blob. */
  blobShapes: number[][];
  /** Number of parameter values over all blobs. */
  parameterCount: number;
  /** Whether a record entry may quantize this layer. */
  quantizable: boolean;
  /** Why it may not, when `quantizable` is false. */
  reason?: string;
  /** For a BatchNorm or Scale that fusion folds into a layer before it: that layer's name. */
  fusedInto?: string;
}

/** What {@linkcode inspectNet} cannot find out from the net alone (see `describeNet`). */
export interface InspectFacts {
  /** Each layer's top shapes, by layer name. */
  topShapes?: ReadonlyMap<string, number[][]>;
  /** The layer each BatchNorm and Scale that fusion absorbs is folded into, by layer name. */
  fusedInto?: ReadonlyMap<string, string>;
  /** Why top shapes are missing (the simulator stopped with this error). */
  shapeProblem?: string;
}

/** The summary `inspect` prints. */
export interface NetSummary {
  /** The net's `name` field, or `""`. */
  name: string;
  /** Declared inputs. */
  inputs: NetInput[];
  /** Layers in order. */
  layers: LayerSummary[];
  /** Parameter values over all layers. */
  parameterCount: number;
  /**
   * What the user should know before running or converting the net ({@linkcode netWarnings}),
   * and why top shapes are missing if they are.
   */
  warnings: string[];
}

/**
 * Warnings about a net that loads but does not do what an inference net should: a BatchNorm with
 * `use_global_stats: false` normalizes each batch by that batch's own statistics (Caffe's
 * training mode), and `convert` refuses to fuse it.
 */
export function netWarnings(net: Net): string[] {
  return net.layers
    .filter((layer) =>
      layer.type === "BatchNorm" &&
      boolParam(layer, "batch_norm_param", "use_global_stats", true) === false
    )
    .map((layer) =>
      `BatchNorm "${layer.name}"${layer.line === undefined ? "" : ` (line ${layer.line})`} has ` +
      `use_global_stats: false: it normalizes each batch with that batch's own mean and ` +
      `variance, not the stored ones (a training setting), and convert refuses to fuse it ` +
      `(BN_NOT_GLOBAL_STATS)`
    );
}

/** Summarises `net` (weights attached or not), with what `facts` adds. */
export function inspectNet(net: Net, facts: InspectFacts = {}): NetSummary {
  const layers = net.layers.map((layer): LayerSummary => {
    const reason = quantizeBlocker(layer);
    const blobShapes = layer.blobs.map((blob) => blob.shape);
    const topShapes = facts.topShapes?.get(layer.name);
    const fusedInto = facts.fusedInto?.get(layer.name);
    return {
      name: layer.name,
      type: layer.type,
      bottoms: layer.bottoms,
      tops: layer.tops,
      ...(topShapes === undefined ? {} : { topShapes }),
      blobShapes,
      parameterCount: blobShapes.reduce((sum, shape) => sum + shape.reduce((a, b) => a * b, 1), 0),
      quantizable: reason === undefined,
      ...(reason === undefined ? {} : { reason }),
      ...(fusedInto === undefined ? {} : { fusedInto }),
    };
  });
  const shapeProblem = facts.shapeProblem === undefined
    ? []
    : [`output shapes are not shown: ${facts.shapeProblem}`];
  return {
    name: String(net.header.get("name") ?? ""),
    inputs: netInputs(net),
    layers,
    parameterCount: layers.reduce((sum, layer) => sum + layer.parameterCount, 0),
    warnings: [...netWarnings(net), ...shapeProblem],
  };
}

/**
 * The human form of a summary: a header line, then one aligned row per layer (names with control
 * characters escaped), then the warnings.
 */
export function formatNetSummary(summary: NetSummary): string {
  const shapes = (list: number[][]) => list.map((shape) => `[${shape.join("x")}]`).join(" ");
  const showTops = summary.layers.some((layer) => layer.topShapes !== undefined);
  const rows = summary.layers.map((layer, index) =>
    [
      String(index),
      layer.name,
      layer.type,
      `${layer.bottoms.join(",")} -> ${layer.tops.join(",")}`,
      ...(showTops ? [shapes(layer.topShapes ?? [])] : []),
      shapes(layer.blobShapes),
      layer.parameterCount ? String(layer.parameterCount) : "",
      layer.quantizable
        ? "yes"
        : layer.fusedInto !== undefined
        ? `fused into ${layer.fusedInto}`
        : `no: ${layer.reason}`,
    ].map((cell) => printable(cell))
  );
  const header = [
    "#",
    "name",
    "type",
    "bottoms -> tops",
    ...(showTops ? ["top shapes"] : []),
    "blobs",
    "params",
    "quantizable",
  ];
  const last = header.length - 1;
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => column === last ? 0 : row[column].length))
  );
  const line = (cells: string[]) =>
    cells.map((cell, column) => column === last ? cell : cell.padEnd(widths[column])).join("  ")
      .trimEnd();
  const inputs = summary.inputs.map((input) => `${input.name} [${input.shape.join("x")}]`);
  return [
    printable(
      `net ${summary.name || "(unnamed)"}: ${summary.layers.length} layers, ` +
        `${summary.parameterCount} parameters, inputs ${inputs.join(", ") || "(none)"}`,
    ),
    line(header),
    ...rows.map(line),
    ...summary.warnings.map((warning) => `warning: ${printable(warning)}`),
  ].join("\n") + "\n";
}
