/**
 * A summary of a net for people and scripts: every layer with its wiring, blob shapes,
 * parameter count, and whether SPEC §2 allows quantizing it (and if not, why).
 *
 * @module
 */

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
  /** Shape of each parameter blob. */
  blobShapes: number[][];
  /** Number of parameter values over all blobs. */
  parameterCount: number;
  /** Whether a record entry may quantize this layer. */
  quantizable: boolean;
  /** Why it may not, when `quantizable` is false. */
  reason?: string;
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
  /** What the user should know before running or converting the net ({@linkcode netWarnings}). */
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

/** Summarises `net` (weights attached or not). */
export function inspectNet(net: Net): NetSummary {
  const layers = net.layers.map((layer): LayerSummary => {
    const reason = quantizeBlocker(layer);
    const blobShapes = layer.blobs.map((blob) => blob.shape);
    return {
      name: layer.name,
      type: layer.type,
      bottoms: layer.bottoms,
      tops: layer.tops,
      blobShapes,
      parameterCount: blobShapes.reduce((sum, shape) => sum + shape.reduce((a, b) => a * b, 1), 0),
      quantizable: reason === undefined,
      ...(reason === undefined ? {} : { reason }),
    };
  });
  return {
    name: String(net.header.get("name") ?? ""),
    inputs: netInputs(net),
    layers,
    parameterCount: layers.reduce((sum, layer) => sum + layer.parameterCount, 0),
    warnings: netWarnings(net),
  };
}

/** The human form of a summary: a header line, then one aligned row per layer. */
export function formatNetSummary(summary: NetSummary): string {
  const rows = summary.layers.map((layer, index) => [
    String(index),
    layer.name,
    layer.type,
    `${layer.bottoms.join(",")} -> ${layer.tops.join(",")}`,
    layer.blobShapes.map((shape) => `[${shape.join("x")}]`).join(" "),
    layer.parameterCount ? String(layer.parameterCount) : "",
    layer.quantizable ? "yes" : `no: ${layer.reason}`,
  ]);
  const header = ["#", "name", "type", "bottoms -> tops", "blobs", "params", "quantizable"];
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => column === 6 ? 0 : row[column].length))
  );
  const line = (cells: string[]) =>
    cells.map((cell, column) => column === 6 ? cell : cell.padEnd(widths[column])).join("  ")
      .trimEnd();
  const inputs = summary.inputs.map((input) => `${input.name} [${input.shape.join("x")}]`);
  return [
    `net ${summary.name || "(unnamed)"}: ${summary.layers.length} layers, ` +
    `${summary.parameterCount} parameters, inputs ${inputs.join(", ") || "(none)"}`,
    line(header),
    ...rows.map(line),
    ...summary.warnings.map((warning) => `warning: ${warning}`),
  ].join("\n") + "\n";
}
