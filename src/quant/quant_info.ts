/**
 * The `<prefix>_quant.json` document (docs/formats.md): every layer of the fake-quant net as an op with
 * its inputs, and for each quantized or fused group the original layers it came from, the form
 * Ascend's accuracy-comparison tool reads.
 *
 * @module
 */

import type { Net } from "../caffe/net.ts";
import type { FusedComposite } from "./fuse.ts";
import type { QuantPlan } from "./plan.ts";

/** One attribute of an op: a key and a typed value. */
interface OpAttr {
  key: string;
  value: { list: { val_type: number; s: string[] } } | { s: string } | { i: number };
}

/** One op of the graph, keys in output order. */
interface Op {
  name: string;
  type: string;
  input?: string[];
  attr?: OpAttr[];
  output_desc?: { attr: OpAttr[] }[];
}

/**
 * The quant-info JSON of `fakeQuant` (2-space indentation, trailing newline). `plan` gives the
 * Quant and DeQuant layers of each quantized layer, `composites` the layers fused into one.
 */
export function quantInfoJson(
  fakeQuant: Net,
  plan: QuantPlan,
  composites: FusedComposite[],
): string {
  const originalOps = new Map<string, string[]>();
  for (const { layer, batchNorm, scale } of composites) {
    originalOps.set(layer, [layer, batchNorm, scale]);
  }
  const dequantOrigins = new Map<string, string>();
  for (const layerPlan of plan.layers.values()) {
    const group = originalOps.get(layerPlan.layer) ?? [layerPlan.layer];
    originalOps.set(layerPlan.layer, group);
    originalOps.set(layerPlan.dequantName, group);
    dequantOrigins.set(layerPlan.dequantName, group[group.length - 1]);
  }
  for (const quant of plan.groups) {
    originalOps.set(quant.name, originalOps.get(quant.consumers[0])!);
  }

  const producers = new Map<string, string>();
  const ops: Op[] = [];
  for (const input of fakeQuant.header.getAll("input").map(String)) {
    ops.push({ name: input, type: "Input" });
    producers.set(input, `${input}:0`);
  }
  for (const layer of fakeQuant.layers) {
    const op: Op = {
      name: layer.name,
      type: layer.type,
      input: layer.bottoms.map((bottom) => producers.get(bottom) ?? `${bottom}:0`),
    };
    const group = originalOps.get(layer.name);
    if (group !== undefined) {
      op.attr = [{
        key: "_datadump_original_op_names",
        value: { list: { val_type: 1, s: group } },
      }];
    }
    const origin = dequantOrigins.get(layer.name);
    if (origin !== undefined) {
      op.output_desc = [{
        attr: [
          { key: "_datadump_origin_name", value: { s: origin } },
          { key: "_datadump_origin_output_index", value: { i: 0 } },
          { key: "_datadump_origin_format", value: { s: "NCHW" } },
        ],
      }];
    }
    ops.push(op);
    layer.tops.forEach((top, index) => producers.set(top, `${layer.name}:${index}`));
  }
  return JSON.stringify({ graph: [{ op: ops }] }, null, 2) + "\n";
}
