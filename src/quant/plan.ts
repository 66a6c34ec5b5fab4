/**
 * The quantization plan (docs/layers.md): which layers of the fused net are quantized, which of them
 * share one Quant layer, and the names of every new layer and blob. No blob data is touched.
 *
 * @module
 */

import type { Net } from "../caffe/net.ts";
import { blobValues } from "./blobs.ts";
import type { QuantFactors, QuantRecord } from "./record.ts";

/** One Quant layer, possibly shared by several quantized layers reading the same input. */
export interface QuantGroup {
  /** The Quant layer's name, also the name of its top blob. */
  name: string;
  /** The blob it quantizes (`bottom[0]` of its consumers). */
  input: string;
  /** `scale_d`, float32. */
  scaleD: number;
  /** `offset_d`. */
  offsetD: number;
  /** The quantized layers it feeds, in layer order; the first is its `object_layer`. */
  consumers: string[];
}

/** The plan for one quantized layer `L`. */
export interface LayerPlan {
  /** `L`'s name. */
  layer: string;
  /** `L`'s record factors. */
  factors: QuantFactors;
  /** The Quant layer feeding `L`. */
  quant: QuantGroup;
  /** `L`'s new top, `<Y>_raw` (or a free variant). */
  rawTop: string;
  /** The blob `L` wrote, now written by the DeQuant layer. */
  output: string;
  /** The DeQuant layer's name, `<L>_dequant_layer` (or a free variant). */
  dequantName: string;
}

/** The whole plan, in layer order. */
export interface QuantPlan {
  /** Quantized layers by name, in layer order. */
  layers: Map<string, LayerPlan>;
  /** Quant layers in layer order. */
  groups: QuantGroup[];
}

/**
 * A function giving names not in `taken` (then taken): `base` itself when free, else the first
 * free `base_1`, `base_2`… It remembers where each base's search stopped, so that n names from one
 * base take O(n) lookups, not O(n²).
 */
export function nameAllocator(taken: Set<string>): (base: string) => string {
  const nextSuffix = new Map<string, number>();
  return (base) => {
    let name = base;
    let suffix = nextSuffix.get(base) ?? 1;
    while (taken.has(name)) name = `${base}_${suffix++}`;
    nextSuffix.set(base, suffix);
    taken.add(name);
    return name;
  };
}

/**
 * Plans the quantization of `net` (already fused) for the layers `record` gives factors for.
 * Quant layers are shared by layers reading the same blob value with equal float32 `scale_d`
 * and `offset_d`. New names that clash with a layer or blob name get the first free `_1`, `_2`…
 */
export function planQuantization(net: Net, record: QuantRecord): QuantPlan {
  const values = blobValues(net.layers);
  const taken = new Set<string>(net.header.getAll("input").map(String));
  for (const layer of net.layers) {
    taken.add(layer.name);
    for (const name of [...layer.bottoms, ...layer.tops]) taken.add(name);
  }
  const freeName = nameAllocator(taken);
  const groupsByKey = new Map<string, QuantGroup>();
  const plan: QuantPlan = { layers: new Map(), groups: [] };
  net.layers.forEach((layer, index) => {
    const factors = record.get(layer.name)?.factors;
    if (factors === undefined) return;
    const key = `${values.bottoms[index][0]}/${factors.scaleD}/${factors.offsetD}`;
    let quant = groupsByKey.get(key);
    if (quant === undefined) {
      quant = {
        name: freeName(`${layer.name}_quant_layer`),
        input: layer.bottoms[0],
        scaleD: factors.scaleD,
        offsetD: factors.offsetD,
        consumers: [],
      };
      groupsByKey.set(key, quant);
      plan.groups.push(quant);
    }
    quant.consumers.push(layer.name);
    const output = layer.tops[0];
    plan.layers.set(layer.name, {
      layer: layer.name,
      factors,
      quant,
      rawTop: freeName(`${output}_raw`),
      output,
      dequantName: freeName(`${layer.name}_dequant_layer`),
    });
  });
  return plan;
}
