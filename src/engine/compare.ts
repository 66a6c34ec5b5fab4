/**
 * Layer-by-layer agreement of two nets (e.g. float vs fake-quant, fake-quant vs deploy) on the
 * same inputs: cosine similarity, max absolute error and relative L2 error of every blob they
 * share, top-1 agreement of classifier outputs.
 *
 * @module
 */

import { type Layer, type Net, netInputs } from "../caffe/net.ts";
import { numberParam } from "../caffe/layers.ts";
import { engineKernels } from "../wasm/engine.ts";
import { seededInputs } from "./inputs.ts";
import { runNet, type RunResult, type SkippedLayer } from "./run.ts";
import { shapeText, type Tensor } from "./tensor.ts";

export { compareReportHtml, formatCompareTable } from "./report.ts";

/** Options of {@linkcode compareNets}. */
export interface CompareOptions {
  /** Inputs for both nets (then one sample is run). */
  inputs?: Map<string, Tensor>;
  /** Samples when inputs are generated (default 1); sample i uses seed + i. */
  samples?: number;
  /** Seed of the first sample (default 0). */
  seed?: number;
  /** Rows with a cosine similarity below this are flagged (default 0.99). */
  flagBelow?: number;
  /**
   * Lockstep: every layer of B reads the values the layer of A with the same name read (a
   * Quant layer reads what its object layer read in A), so each row shows the error a layer
   * adds itself, not the error it inherits. Without it, both nets run freely.
   */
  lockstep?: boolean;
}

/** The agreement of one blob the two nets share, aggregated over the samples. */
export interface BlobComparison {
  /** Blob name. */
  blob: string;
  /** The layer of net A that writes the blob's final value. */
  layer: string;
  /** Its type. */
  type: string;
  /** The blob's shape in net A (last sample). */
  shape: number[];
  /** Cosine similarity of A and B over all samples (1 when both are all zeros). */
  cosine: number;
  /** Max |A - B|. */
  maxAbsError: number;
  /** ||A - B|| / ||A|| (0 when both are zero, Infinity when only A is). */
  relativeL2: number;
  /** For classifier outputs: the fraction of rows (over samples) whose arg-max agrees. */
  top1Agreement?: number;
  /** Whether the cosine is below the threshold (or not a number). */
  flagged: boolean;
  /** Why the blob was not compared (shapes differ, or it holds deploy integers in one net). */
  note?: string;
}

/** What {@linkcode compareNets} found. */
export interface CompareReport {
  /** Samples run. */
  samples: number;
  /** Seed of the first sample (undefined when inputs were given). */
  seed?: number;
  /** The flagging threshold on cosine similarity. */
  flagBelow: number;
  /** Whether B ran in lockstep with A (see {@linkcode CompareOptions.lockstep}). */
  lockstep: boolean;
  /** One row per shared blob, in net A's layer order. */
  rows: BlobComparison[];
  /** The flagged rows' blob names, worst cosine first. */
  worst: string[];
  /** Layers net A skipped. */
  skippedA: SkippedLayer[];
  /** Layers net B skipped. */
  skippedB: SkippedLayer[];
}

/**
 * What `layer` of net B reads in lockstep: the values the layer of A with its name read, or for
 * a Quant layer, the data input of its object layer in A.
 */
function readsInA(
  layer: Layer,
  readsA: Map<string, readonly Tensor[]>,
): readonly Tensor[] | undefined {
  if (layer.type !== "Quant") return readsA.get(layer.name);
  const objectLayer = layer.param("quant_param", "object_layer");
  const reads = typeof objectLayer === "string" ? readsA.get(objectLayer) : undefined;
  return reads && reads.slice(0, 1);
}

/** Running sums of one blob over the samples. */
interface Totals {
  dot: number;
  squaresA: number;
  squaresB: number;
  squaresDiff: number;
  maxAbs: number;
  rows: number;
  agreeing: number;
  note?: string;
  shape: number[];
}

/** The blob names net A writes, by the index of the layer writing each final value. */
function finalWriters(net: Net): Map<string, number> {
  const writers = new Map<string, number>();
  for (const name of net.header.getAll("input").map(String)) writers.set(name, -1);
  net.layers.forEach((layer, index) => {
    for (const top of layer.tops) {
      writers.delete(top);
      writers.set(top, index);
    }
  });
  return new Map([...writers].sort((x, y) => x[1] - y[1]));
}

/** Whether net output `name` of net A is a classifier output: Softmax on its last axis, or 2-D. */
function isClassifier(net: Net, name: string, writer: number, result: RunResult): boolean {
  const tensor = result.outputs.get(name);
  if (tensor === undefined) return false;
  const layer = net.layers[writer];
  if (layer?.type === "Softmax") {
    const axis = numberParam(layer, "softmax_param", "axis", 1);
    return axis === tensor.shape.length - 1 || axis === -1;
  }
  return tensor.shape.length === 2;
}

/** Rows (of the last axis) of a and b whose arg-max agree. */
function agreeingRows(a: Float32Array, b: Float32Array, classes: number): number {
  let agreeing = 0;
  for (let start = 0; start < a.length; start += classes) {
    let bestA = start;
    let bestB = start;
    for (let i = start + 1; i < start + classes; i++) {
      if (a[i] > a[bestA]) bestA = i;
      if (b[i] > b[bestB]) bestB = i;
    }
    if (bestA === bestB) agreeing++;
  }
  return agreeing;
}

/** The inputs of sample `sample` for both nets. */
function sampleInputs(
  a: Net,
  b: Net,
  options: CompareOptions,
  sample: number,
): [Map<string, Tensor>, Map<string, Tensor>] {
  const inputsA = options.inputs ?? seededInputs(a, (options.seed ?? 0) + sample);
  const namesB = new Set(netInputs(b).map((input) => input.name));
  return [inputsA, new Map([...inputsA].filter(([name]) => namesB.has(name)))];
}

/**
 * Runs nets `a` and `b` on the same inputs (given, or `samples` seeded samples, sample i with
 * seed + i) and compares every blob name both nets produce, in net A's layer order (by the
 * layer writing the blob's final value). A blob that holds a deploy model's integers in one net
 * and floats in the other, or whose shapes differ, is listed with a note and not compared.
 *
 * @example
 * ```ts ignore
 * const report = await compareNets(floatNet, fakeQuantNet, { samples: 4 });
 * console.log(formatCompareTable(report));
 * ```
 */
export async function compareNets(
  a: Net,
  b: Net,
  options: CompareOptions = {},
): Promise<CompareReport> {
  const kernels = await engineKernels();
  const samples = options.inputs === undefined ? Math.max(1, options.samples ?? 1) : 1;
  const flagBelow = options.flagBelow ?? 0.99;
  const writers = finalWriters(a);
  const totals = new Map<string, Totals>();
  let skippedA: SkippedLayer[] = [];
  let skippedB: SkippedLayer[] = [];
  for (let sample = 0; sample < samples; sample++) {
    const [inputsA, inputsB] = sampleInputs(a, b, options, sample);
    const readsA = new Map<string, readonly Tensor[]>();
    const resultA = await runNet(a, {
      inputs: inputsA,
      keepAll: true,
      observe: options.lockstep ? (layer, bottoms) => readsA.set(layer.name, bottoms) : undefined,
    });
    const resultB = await runNet(b, {
      inputs: inputsB,
      keepAll: true,
      seed: (options.seed ?? 0) + sample,
      substitute: options.lockstep ? (layer) => readsInA(layer, readsA) : undefined,
    });
    ({ skipped: skippedA } = resultA);
    ({ skipped: skippedB } = resultB);
    for (const [name, writer] of writers) {
      const tensorA = resultA.blobs.get(name);
      const tensorB = resultB.blobs.get(name);
      if (tensorA === undefined || tensorB === undefined) continue;
      const entry = totals.get(name) ??
        {
          dot: 0,
          squaresA: 0,
          squaresB: 0,
          squaresDiff: 0,
          maxAbs: 0,
          rows: 0,
          agreeing: 0,
          shape: tensorA.shape,
        };
      totals.set(name, entry);
      entry.shape = tensorA.shape;
      const kindA = resultA.deployBlobs.get(name) ?? "float";
      const kindB = resultB.deployBlobs.get(name) ?? "float";
      if (kindA !== kindB) {
        entry.note = `holds ${kindA} values in A and ${kindB} values in B`;
        continue;
      }
      if (shapeText(tensorA.shape) !== shapeText(tensorB.shape)) {
        entry.note = `shape ${shapeText(tensorA.shape)} in A, ${shapeText(tensorB.shape)} in B`;
        continue;
      }
      const sums = kernels.agreement(tensorA.data, tensorB.data);
      entry.dot += sums.dot;
      entry.squaresA += sums.squaresA;
      entry.squaresB += sums.squaresB;
      entry.squaresDiff += sums.squaresDiff;
      entry.maxAbs = Number.isNaN(sums.maxAbs) || Number.isNaN(entry.maxAbs)
        ? NaN
        : Math.max(entry.maxAbs, sums.maxAbs);
      if (isClassifier(a, name, writer, resultA) && tensorA.shape.length > 0) {
        const classes = tensorA.shape[tensorA.shape.length - 1];
        entry.rows += tensorA.data.length / classes;
        entry.agreeing += agreeingRows(tensorA.data, tensorB.data, classes);
      }
    }
  }
  const rows: BlobComparison[] = [];
  for (const [name, writer] of writers) {
    const entry = totals.get(name);
    if (entry === undefined) continue;
    const layer = a.layers[writer];
    const row: BlobComparison = {
      blob: name,
      layer: layer?.name ?? name,
      type: layer?.type ?? "Input",
      shape: entry.shape,
      cosine: NaN,
      maxAbsError: NaN,
      relativeL2: NaN,
      flagged: false,
    };
    if (entry.note !== undefined) {
      row.note = entry.note;
    } else {
      const normProduct = Math.sqrt(entry.squaresA) * Math.sqrt(entry.squaresB);
      row.cosine = normProduct === 0
        ? (entry.squaresA === entry.squaresB ? 1 : 0)
        : entry.dot / normProduct;
      row.maxAbsError = entry.maxAbs;
      row.relativeL2 = entry.squaresA === 0
        ? (entry.squaresDiff === 0 ? 0 : Infinity)
        : Math.sqrt(entry.squaresDiff / entry.squaresA);
      if (entry.rows > 0) row.top1Agreement = entry.agreeing / entry.rows;
      row.flagged = !(row.cosine >= flagBelow);
    }
    rows.push(row);
  }
  const worst = rows.filter((row) => row.flagged).sort((x, y) =>
    (Number.isNaN(x.cosine) ? -Infinity : x.cosine) -
    (Number.isNaN(y.cosine) ? -Infinity : y.cosine)
  ).map((row) => row.blob);
  return {
    samples,
    seed: options.inputs === undefined ? options.seed ?? 0 : undefined,
    flagBelow,
    lockstep: options.lockstep ?? false,
    rows,
    worst,
    skippedA,
    skippedB,
  };
}
