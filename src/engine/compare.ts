/**
 * Layer-by-layer agreement of two nets (e.g. float vs fake-quant, fake-quant vs deploy) on the
 * same inputs: cosine similarity, max absolute error, relative L2 error and SQNR of every layer
 * output they share, task metrics and a verdict for each net output, and for the layers quantized
 * in net B only, their sensitivity (the error each adds when it alone is quantized).
 *
 * A row is one value a layer writes, taken right after that layer ran (so a layer followed by
 * in-place layers is measured before them). A quantized layer of net B is measured at its
 * DeQuant's output and named by the quantized layer; its counterpart in net A is the blob's value
 * just before the next layer of both nets that uses it (after a fused BatchNorm and Scale).
 *
 * @module
 */

import { numberParam } from "../caffe/layers.ts";
import type { Layer, Net } from "../caffe/net.ts";
import { ConvertError } from "../errors.ts";
import { engineKernels } from "../wasm/engine.ts";
import { runInputs, seededInputs } from "./inputs.ts";
import {
  addAgreement,
  type AgreementTotals,
  type ClassLayout,
  confidentAgreement,
  cosineOf,
  DEFAULT_THRESHOLDS,
  emptyTotals,
  failedChecks,
  psnrDb,
  relativeL2Of,
  sqnrDb,
  type Thresholds,
  topKAgreement,
  topKCorrect,
} from "./metrics.ts";
import { netInputs } from "../caffe/net.ts";
import { runNet, type SkippedLayer, type ValueKind } from "./run.ts";
import { product, shapeText, type Tensor } from "./tensor.ts";

/** Options of {@linkcode compareNets}. */
export interface CompareOptions {
  /**
   * Inputs for both nets: one map (one run), or one map per sample, each run by itself;
   * declared inputs not given are seeded.
   */
  inputs?: Map<string, Tensor> | Map<string, Tensor>[];
  /** Samples when inputs are generated (default 1); sample i uses seed + i. */
  samples?: number;
  /** Seed of the first sample (default 0). */
  seed?: number;
  /** Flagging and verdict thresholds (defaults: {@linkcode DEFAULT_THRESHOLDS}). */
  thresholds?: Partial<Thresholds>;
  /**
   * Lockstep: every layer of B reads the values the layer of A with the same name read from the
   * same blob (a Quant layer reads what its object layer read in A), so each row shows the error
   * a layer adds itself, not the error it inherits. Without it, both nets run freely.
   */
  lockstep?: boolean;
  /**
   * True classes for classifier outputs: `labels[i][r]` is the class of row r (batch item) of
   * sample i. With them each classifier output reports both nets' top-1 and top-5 accuracy.
   */
  labels?: readonly ArrayLike<number>[];
  /**
   * Measure {@linkcode CompareReport.sensitivity} (default true): for free-running comparisons
   * this runs net B once more per sample, in lockstep.
   */
  sensitivity?: boolean;
  /**
   * Also measure how each layer quantized alone moves the float net's outputs
   * ({@linkcode LayerSensitivity.outputs}): one more run of net A per such layer and sample.
   */
  sensitivityOutputs?: boolean;
}

/** The agreement of one value the two nets write, aggregated over the samples. */
export interface BlobComparison {
  /** Blob name. */
  blob: string;
  /**
   * The layer that wrote the value: for a quantized layer's output (measured at its DeQuant),
   * the quantized layer.
   */
  layer: string;
  /** Its type. */
  type: string;
  /** Whether this is a quantized layer's output, measured at its DeQuant layer. */
  quantized: boolean;
  /** The blob's shape in net A (last sample). */
  shape: number[];
  /** Cosine similarity of A and B over all samples (1 when both are all zeros). */
  cosine: number;
  /** Max |A - B|. */
  maxAbsError: number;
  /** ||A - B|| / ||A|| (0 when both are zero, Infinity when only A is). */
  relativeL2: number;
  /** Signal-to-quantization-noise ratio, -20·log10(relativeL2) dB. */
  sqnr: number;
  /** For classifier outputs: the fraction of rows (over samples) whose arg-max agrees. */
  top1Agreement?: number;
  /** Whether a threshold check failed (see `failed`). */
  flagged: boolean;
  /** The failed threshold checks, e.g. `rel L2 0.53 > 0.1`. */
  failed: string[];
  /** Why the value was not compared (shapes differ, or it holds deploy integers in one net). */
  note?: string;
}

/**
 * The error one quantized layer adds by itself: its output (at its DeQuant) when it reads the
 * float net's exact input, against the float net's output of the same layer (after a fused
 * BatchNorm and Scale). Lower cosine, higher relative L2: more sensitive.
 */
export interface LayerSensitivity {
  /** The quantized layer. */
  layer: string;
  /** Its type. */
  type: string;
  /** The blob it writes (its DeQuant's top). */
  blob: string;
  /** Cosine similarity to the float output. */
  cosine: number;
  /** Relative L2 error against the float output. */
  relativeL2: number;
  /** SQNR in dB. */
  sqnr: number;
  /** Max absolute error. */
  maxAbsError: number;
  /**
   * With `sensitivityOutputs`: each output of the float net when this layer alone is quantized
   * (the rest of the net float), against the float net's.
   */
  outputs?: { blob: string; cosine: number; relativeL2: number }[];
}

/** What a net output is, judging by the layer writing it and its shape. */
export type OutputTask = "classifier" | "detector" | "image" | "tensor";

/** Task metrics and the verdict of one output of net A. */
export interface OutputMetrics {
  /** The output blob. */
  blob: string;
  /**
   * `classifier`: a Softmax with one position per sample (top-1/top-5 agreement);
   * `detector`: a Softmax with many positions per sample (confident-position agreement);
   * `image`: a 4-D output of 1 or 3 channels (PSNR); `tensor`: anything else.
   */
  task: OutputTask;
  /** Cosine similarity. */
  cosine: number;
  /** Relative L2 error. */
  relativeL2: number;
  /** SQNR in dB. */
  sqnr: number;
  /** Max absolute error. */
  maxAbsError: number;
  /** Classifiers: fraction of positions whose arg-max agrees. */
  top1?: number;
  /** Classifiers of more than 5 classes: fraction of positions whose B arg-max is among A's top 5. */
  top5?: number;
  /** Classifiers with labels: top-1 and top-5 accuracy of each net (fractions). */
  accuracy?: { a: { top1: number; top5: number }; b: { top1: number; top5: number } };
  /** Images: PSNR in dB, with A's value range as the peak. */
  psnr?: number;
  /**
   * Detectors: positions with a non-background score > 0.5 in both nets, over those with one in
   * either (1 when neither has one).
   */
  confident?: number;
  /** The failed threshold checks; empty when the output passes. */
  failed: string[];
}

/** What {@linkcode compareNets} found. */
export interface CompareReport {
  /** Samples run. */
  samples: number;
  /** Seed of the first sample (undefined when inputs were given). */
  seed?: number;
  /** The thresholds rows and outputs were judged by. */
  thresholds: Thresholds;
  /** Whether B ran in lockstep with A (see {@linkcode CompareOptions.lockstep}). */
  lockstep: boolean;
  /** One row per value both nets write, in net B's layer order. */
  rows: BlobComparison[];
  /** The flagged rows' layers, worst (highest relative L2) first. */
  worst: string[];
  /** The first flagged row's layer in net order: where the error crosses a threshold. */
  firstFlagged?: string;
  /** Each layer quantized in B but not in A, measured alone (empty otherwise). */
  sensitivity: LayerSensitivity[];
  /** Each output of net A that B also writes, with task metrics and the failed checks. */
  outputs: OutputMetrics[];
  /** Layers net A skipped. */
  skippedA: SkippedLayer[];
  /** Layers net B skipped. */
  skippedB: SkippedLayer[];
}

/** Where a row's value of net A is found. */
type SourceA =
  | { kind: "input"; blob: string }
  | { kind: "written"; layer: number; top: number }
  | { kind: "before"; blob: string; layer: number }
  | { kind: "final"; blob: string };

/** One row to measure: a value net B writes and its counterpart in net A. */
interface Point {
  blob: string;
  layer: string;
  type: string;
  quantized: boolean;
  /** Whether the layer is quantized in B only (a sensitivity point). */
  quantizedInBOnly: boolean;
  a: SourceA;
  /** Net B's layer index and top index (-1: a net input). */
  b: { layer: number; top: number };
}

/** The layer writing `blob` last before index `before` in `net`, if any. */
function writerBefore(net: Net, blob: string, before: number): number | undefined {
  for (let index = before - 1; index >= 0; index--) {
    if (net.layers[index].tops.includes(blob)) return index;
  }
  return undefined;
}

/**
 * Net A's counterpart of blob `blob` written by a layer B quantized: its value just before the
 * first layer after `from` (A's index of the quantized layer) that both nets have and that uses
 * the blob, or its final value; undefined when A writes it nowhere from `from` on.
 */
function counterpartInA(
  a: Net,
  shared: Set<string>,
  blob: string,
  from: number,
): SourceA | undefined {
  for (let index = from + 1; index < a.layers.length; index++) {
    const layer = a.layers[index];
    if (!shared.has(layer.name)) continue;
    if (!layer.bottoms.includes(blob) && !layer.tops.includes(blob)) continue;
    const writer = writerBefore(a, blob, index);
    return writer !== undefined && writer >= from
      ? { kind: "before", blob, layer: index }
      : undefined;
  }
  const writer = writerBefore(a, blob, a.layers.length);
  return writer !== undefined && writer >= from ? { kind: "final", blob } : undefined;
}

/** The rows to measure, in net B's layer order. */
function comparisonPoints(a: Net, b: Net): Point[] {
  const indexA = new Map(a.layers.map((layer, index) => [layer.name, index]));
  const shared = new Set(b.layers.map((layer) => layer.name).filter((name) => indexA.has(name)));
  const inputsA = new Set(a.header.getAll("input").map(String));
  const inputsB = b.header.getAll("input").map(String);
  const points: Point[] = inputsB.filter((name) => inputsA.has(name)).map((name) => ({
    blob: name,
    layer: name,
    type: "Input",
    quantized: false,
    quantizedInBOnly: false,
    a: { kind: "input", blob: name },
    b: { layer: -1, top: 0 },
  }));
  b.layers.forEach((layer, index) => {
    const quantizedIndex = layer.type === "DeQuant"
      ? writerBefore(b, layer.bottoms[0], index)
      : undefined;
    const quantized = quantizedIndex === undefined ? undefined : b.layers[quantizedIndex];
    const named = { layer: quantized?.name ?? layer.name, type: quantized?.type ?? layer.type };
    const atA = indexA.get(layer.name);
    if (atA !== undefined) {
      layer.tops.forEach((blob, top) => {
        if (a.layers[atA].tops[top] !== blob) return;
        points.push({
          blob,
          ...named,
          quantized: quantized !== undefined,
          quantizedInBOnly: false,
          a: { kind: "written", layer: atA, top },
          b: { layer: index, top },
        });
      });
      return;
    }
    const quantizedAtA = quantized && indexA.get(quantized.name);
    if (quantizedAtA === undefined) return;
    const source = counterpartInA(a, shared, layer.tops[0], quantizedAtA);
    if (source === undefined) return;
    points.push({
      blob: layer.tops[0],
      ...named,
      quantized: true,
      quantizedInBOnly: true,
      a: source,
      b: { layer: index, top: 0 },
    });
  });
  return points;
}

/** A value and what it holds. */
interface Held {
  tensor: Tensor;
  kind: ValueKind;
}

/** Every value one run wrote: by layer index, and each blob's history (layer index, value). */
interface Trace {
  written: Map<number, Held[]>;
  history: Map<string, { layer: number; value: Held }[]>;
  reads: Map<string, readonly Tensor[]>;
  outputs: Map<string, Tensor>;
  skipped: SkippedLayer[];
}

/** Runs `net` on `inputs` and records every value it reads and writes. */
async function traceRun(
  net: Net,
  inputs: Map<string, Tensor>,
  substitute?: (layer: Layer) => readonly (Tensor | undefined)[] | undefined,
): Promise<Trace> {
  const indexOf = new Map(net.layers.map((layer, index) => [layer.name, index]));
  const trace: Trace = {
    written: new Map(),
    history: new Map(),
    reads: new Map(),
    outputs: new Map(),
    skipped: [],
  };
  for (const [blob, tensor] of inputs) {
    trace.history.set(blob, [{ layer: -1, value: { tensor, kind: "float" } }]);
  }
  const result = await runNet(net, {
    inputs,
    observe: (layer, bottoms) => trace.reads.set(layer.name, bottoms),
    substitute,
    written: (layer, tops, kinds) => {
      const index = indexOf.get(layer.name)!;
      const values = tops.map((tensor, i) => ({ tensor, kind: kinds[i] }));
      trace.written.set(index, values);
      layer.tops.forEach((blob, i) => {
        const entries = trace.history.get(blob) ?? [];
        entries.push({ layer: index, value: values[i] });
        trace.history.set(blob, entries);
      });
    },
  });
  trace.outputs = result.outputs;
  trace.skipped = result.skipped;
  return trace;
}

/** Net A's value of a row. */
function valueInA(trace: Trace, source: SourceA): Held | undefined {
  if (source.kind === "written") return trace.written.get(source.layer)?.[source.top];
  const history = trace.history.get(source.blob) ?? [];
  if (source.kind === "input") return history[0]?.layer === -1 ? history[0].value : undefined;
  if (source.kind === "final") return history.at(-1)?.value;
  let found: Held | undefined;
  for (const entry of history) if (entry.layer < source.layer) found = entry.value;
  return found;
}

/** Net B's value of a row. */
function valueInB(trace: Trace, point: Point): Held | undefined {
  if (point.b.layer === -1) return trace.history.get(point.blob)?.[0]?.value;
  return trace.written.get(point.b.layer)?.[point.b.top];
}

/**
 * What `layer` of net B reads in lockstep: for each bottom, the value the layer of A with its
 * name read from the same blob; for a Quant layer B alone has, what its object layer read in A
 * from the same blob.
 */
function lockstepReads(
  a: Net,
  readsA: Map<string, readonly Tensor[]>,
): (layer: Layer) => readonly (Tensor | undefined)[] | undefined {
  const byName = new Map(a.layers.map((layer) => [layer.name, layer]));
  return (layer) => {
    const same = byName.get(layer.name);
    let counterpart = same;
    if (same === undefined && layer.type === "Quant") {
      const objectLayer = layer.param("quant_param", "object_layer");
      counterpart = typeof objectLayer === "string" ? byName.get(objectLayer) : undefined;
    }
    const reads = counterpart && readsA.get(counterpart.name);
    if (counterpart === undefined || reads === undefined) return undefined;
    return layer.bottoms.map((blob, i) => counterpart.bottoms[i] === blob ? reads[i] : undefined);
  };
}

/** Running sums of one row. */
interface RowTotals {
  sums: AgreementTotals;
  shape: number[];
  note?: string;
  /** Set when one net holds a deploy model's integers there (such values are not listed). */
  integers?: boolean;
}

/** The class layout of a Softmax output, if `layer` is one. */
function softmaxLayout(layer: Layer | undefined, shape: number[]): ClassLayout | undefined {
  if (layer?.type !== "Softmax" || shape.length === 0) return undefined;
  let axis = numberParam(layer, "softmax_param", "axis", 1);
  if (axis < 0) axis += shape.length;
  if (axis < 0 || axis >= shape.length) return undefined;
  return { classes: shape[axis], inner: product(shape.slice(axis + 1)) };
}

/** What a net output is, and how its classes are laid out. */
export interface OutputKind {
  task: OutputTask;
  layout?: ClassLayout;
}

/**
 * The kind of output `blob` (shape `shape`) of `net`: the top of a Softmax is a classifier (one
 * position per sample) or a detector (many); scores flattened or reshaped after a Softmax over
 * their last axis (SSD's `mbox_conf_flatten`) keep that Softmax's classes (`shapeOf` gives the
 * shape a blob held in the run); other 4-D outputs of 1 or 3 channels are images, the rest
 * tensors.
 */
export function outputKind(
  net: Net,
  blob: string,
  shape: number[],
  shapeOf: (blob: string) => number[] | undefined,
): OutputKind {
  const writer = lastWriter(net, blob);
  if (writer?.type === "Flatten" || writer?.type === "Reshape") {
    const source = writer.bottoms[0];
    const scores = shapeOf(source);
    const layout = scores && softmaxLayout(lastWriter(net, source), scores);
    if (layout !== undefined && layout.inner === 1) {
      const positions = product(shape.slice(1)) / layout.classes;
      return {
        task: positions === 1 ? "classifier" : "detector",
        layout: { classes: layout.classes, inner: 1 },
      };
    }
  }
  const layout = softmaxLayout(writer, shape);
  if (layout !== undefined) {
    const perSample = product(shape.slice(1)) / layout.classes;
    return { task: perSample === 1 ? "classifier" : "detector", layout };
  }
  return { task: shape.length === 4 && (shape[1] === 1 || shape[1] === 3) ? "image" : "tensor" };
}

/** The last layer of `net` writing `blob`, if any. */
function lastWriter(net: Net, blob: string): Layer | undefined {
  return net.layers[writerBefore(net, blob, net.layers.length) ?? -1];
}

/** Running sums of one net output. */
interface OutputTotals {
  task: OutputTask;
  layout?: ClassLayout;
  sums: AgreementTotals;
  top1: number;
  top5: number;
  rows: number;
  /** Correct top-1 / top-5 of A and B, over `labelled` rows. */
  correct: [number, number, number, number];
  labelled: number;
  both: number;
  either: number;
  low: number;
  high: number;
}

/** The inputs of sample `sample` for both nets. */
function sampleInputs(
  a: Net,
  b: Net,
  options: CompareOptions,
  sample: number,
): [Map<string, Tensor>, Map<string, Tensor>] {
  const seed = (options.seed ?? 0) + sample;
  const given = options.inputs;
  const inputsA = given === undefined
    ? seededInputs(a, seed)
    : runInputs(a, Array.isArray(given) ? given[sample] : given, seed);
  const namesB = new Set(netInputs(b).map((input) => input.name));
  const inputsB = runInputs(
    b,
    new Map([...inputsA].filter(([name]) => namesB.has(name))),
    seed,
  );
  return [inputsA, inputsB];
}

/** Adds one sample's pair of values to a row's sums, or notes why they cannot be compared. */
function addValues(
  kernels: Awaited<ReturnType<typeof engineKernels>>,
  entry: RowTotals,
  valueA: Held,
  valueB: Held,
): boolean {
  entry.shape = valueA.tensor.shape;
  if (valueA.kind !== valueB.kind) {
    entry.integers = true;
    return false;
  }
  if (shapeText(valueA.tensor.shape) !== shapeText(valueB.tensor.shape)) {
    entry.note = `shape ${shapeText(valueA.tensor.shape)} in A, ${
      shapeText(valueB.tensor.shape)
    } in B`;
    return false;
  }
  addAgreement(
    entry.sums,
    kernels.agreement(valueA.tensor.data, valueB.tensor.data),
    valueA.tensor.data.length,
  );
  return true;
}

/**
 * Runs nets `a` and `b` on the same inputs (given, or `samples` seeded samples, sample i with
 * seed + i) and compares every value both write, in net B's layer order: each layer both nets
 * have, right after it ran, and each layer quantized in B only at its DeQuant output (see the
 * module doc). Values that hold a deploy model's integers in one net and floats in the other
 * (Quant outputs, accumulators) are left out; a value whose shapes differ is listed with a note
 * and not compared. Nets with no output in common
 * are a `NOTHING_TO_COMPARE` error.
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
  const samples = options.inputs === undefined
    ? Math.max(1, options.samples ?? 1)
    : Array.isArray(options.inputs)
    ? options.inputs.length
    : 1;
  const thresholds = { ...DEFAULT_THRESHOLDS, ...options.thresholds };
  const lockstep = options.lockstep ?? false;
  const points = comparisonPoints(a, b);
  if (points.length === 0) {
    throw new ConvertError(
      "NOTHING_TO_COMPARE",
      "the two nets share no layer output or input: nothing to compare " +
        "(rows pair layers of the same name, and quantized layers at their DeQuant)",
    );
  }
  const sensitivityPoints = options.sensitivity === false
    ? []
    : points.filter((point) => point.quantizedInBOnly);
  const totals = points.map((): RowTotals => ({ sums: emptyTotals(), shape: [] }));
  const sensitivityTotals = sensitivityPoints.map(() => emptyTotals());
  const effectTotals = sensitivityPoints.map(() => new Map<string, AgreementTotals>());
  const outputTotals = new Map<string, OutputTotals>();
  let skippedA: SkippedLayer[] = [];
  let skippedB: SkippedLayer[] = [];
  for (let sample = 0; sample < samples; sample++) {
    const [inputsA, inputsB] = sampleInputs(a, b, options, sample);
    const traceA = await traceRun(a, inputsA);
    const followA = lockstepReads(a, traceA.reads);
    const traceB = await traceRun(b, inputsB, lockstep ? followA : undefined);
    skippedA = traceA.skipped;
    skippedB = traceB.skipped;
    points.forEach((point, i) => {
      const valueA = valueInA(traceA, point.a);
      const valueB = valueInB(traceB, point);
      if (valueA !== undefined && valueB !== undefined) {
        addValues(kernels, totals[i], valueA, valueB);
      }
    });
    if (sensitivityPoints.length > 0) {
      const alone = lockstep ? traceB : await traceRun(b, inputsB, followA);
      for (const [i, point] of sensitivityPoints.entries()) {
        const valueA = valueInA(traceA, point.a);
        const valueB = valueInB(alone, point);
        if (valueA === undefined || valueB === undefined) continue;
        const entry: RowTotals = { sums: sensitivityTotals[i], shape: [] };
        if (!addValues(kernels, entry, valueA, valueB) || !options.sensitivityOutputs) continue;
        await outputEffect(kernels, a, traceA, inputsA, point.a, valueB.tensor, effectTotals[i]);
      }
    }
    addOutputs(kernels, a, traceA, traceB, outputTotals, options.labels?.[sample]);
  }
  const outputs = [...outputTotals].map(([blob, entry]) => finishOutput(blob, entry, thresholds));
  const rows = points.flatMap((point, i) =>
    totals[i].integers ? [] : [finishRow(point, totals[i], thresholds)]
  );
  for (const output of outputs) {
    const last = rows.filter((row) => row.blob === output.blob).at(-1);
    if (last === undefined || output.top1 === undefined || last.note !== undefined) continue;
    last.top1Agreement = output.top1;
    last.failed.push(...failedChecks({ top1: output.top1 }, thresholds));
    last.flagged = last.failed.length > 0;
  }
  const flagged = rows.filter((row) => row.flagged);
  const worst = [
    ...new Set(
      [...flagged].sort((x, y) => errorRank(y.relativeL2) - errorRank(x.relativeL2))
        .map((row) => row.layer),
    ),
  ];
  return {
    samples,
    seed: options.inputs === undefined ? options.seed ?? 0 : undefined,
    thresholds,
    lockstep,
    rows,
    worst,
    ...(flagged.length > 0 ? { firstFlagged: flagged[0].layer } : {}),
    sensitivity: sensitivityPoints.map((point, i) => {
      const sums = sensitivityTotals[i];
      const relativeL2 = relativeL2Of(sums);
      return {
        layer: point.layer,
        type: point.type,
        blob: point.blob,
        cosine: cosineOf(sums),
        relativeL2,
        sqnr: sqnrDb(relativeL2),
        maxAbsError: sums.maxAbs,
        ...(options.sensitivityOutputs
          ? {
            outputs: [...effectTotals[i]].map(([blob, effect]) => ({
              blob,
              cosine: cosineOf(effect),
              relativeL2: relativeL2Of(effect),
            })),
          }
          : {}),
      };
    }),
    outputs,
    skippedA,
    skippedB,
  };
}

/**
 * Adds to `totals` (by output blob) how net A's outputs move when the value at `source` (a
 * quantized layer's output) is `replacement`: net A runs again, every layer from the source's
 * reader on reading the replacement where it read that value of the blob.
 */
async function outputEffect(
  kernels: Awaited<ReturnType<typeof engineKernels>>,
  a: Net,
  traceA: Trace,
  inputsA: Map<string, Tensor>,
  source: SourceA,
  replacement: Tensor,
  totals: Map<string, AgreementTotals>,
): Promise<void> {
  if (source.kind !== "before" && source.kind !== "final") return;
  const blob = source.blob;
  let outputs = new Map(traceA.outputs);
  if (source.kind === "final") {
    outputs.set(blob, replacement);
  } else {
    const indexOf = new Map(a.layers.map((layer, index) => [layer.name, index]));
    const writer = writerBefore(a, blob, source.layer);
    outputs = (await runNet(a, {
      inputs: inputsA,
      substitute: (layer) => {
        const index = indexOf.get(layer.name)!;
        if (index < source.layer) return undefined;
        return layer.bottoms.map((name) =>
          name === blob && writerBefore(a, blob, index) === writer ? replacement : undefined
        );
      },
    })).outputs;
  }
  for (const [name, reference] of traceA.outputs) {
    const moved = outputs.get(name);
    if (moved === undefined || shapeText(moved.shape) !== shapeText(reference.shape)) continue;
    const entry = totals.get(name) ?? emptyTotals();
    totals.set(name, entry);
    addAgreement(entry, kernels.agreement(reference.data, moved.data), reference.data.length);
  }
}

/** A relative L2 error for sorting: NaN ranks worst. */
function errorRank(value: number): number {
  return Number.isNaN(value) ? Infinity : value;
}

/** A row from its sums. */
function finishRow(point: Point, entry: RowTotals, thresholds: Thresholds): BlobComparison {
  const row: BlobComparison = {
    blob: point.blob,
    layer: point.layer,
    type: point.type,
    quantized: point.quantized,
    shape: entry.shape,
    cosine: NaN,
    maxAbsError: NaN,
    relativeL2: NaN,
    sqnr: NaN,
    flagged: false,
    failed: [],
  };
  if (entry.note !== undefined || entry.sums.count === 0) {
    row.note = entry.note ?? "not computed in one of the nets";
    return row;
  }
  row.cosine = cosineOf(entry.sums);
  row.maxAbsError = entry.sums.maxAbs;
  row.relativeL2 = relativeL2Of(entry.sums);
  row.sqnr = sqnrDb(row.relativeL2);
  row.failed = failedChecks({ cosine: row.cosine, relativeL2: row.relativeL2 }, thresholds);
  row.flagged = row.failed.length > 0;
  return row;
}

/** Adds one sample's net outputs of A (and B's values of the same blobs) to `outputTotals`. */
function addOutputs(
  kernels: Awaited<ReturnType<typeof engineKernels>>,
  a: Net,
  traceA: Trace,
  traceB: Trace,
  outputTotals: Map<string, OutputTotals>,
  labels: ArrayLike<number> | undefined,
): void {
  for (const [blob, tensorA] of traceA.outputs) {
    const historyA = traceA.history.get(blob);
    const held = historyA?.at(-1);
    const heldB = traceB.history.get(blob)?.at(-1)?.value;
    if (held === undefined || heldB === undefined || held.value.kind !== "float") continue;
    if (heldB.kind !== "float" || !traceB.outputs.has(blob)) continue;
    if (shapeText(tensorA.shape) !== shapeText(heldB.tensor.shape)) continue;
    let entry = outputTotals.get(blob);
    if (entry === undefined) {
      entry = {
        ...outputKind(
          a,
          blob,
          tensorA.shape,
          (name) => traceA.history.get(name)?.at(-1)?.value.tensor.shape,
        ),
        sums: emptyTotals(),
        top1: 0,
        top5: 0,
        rows: 0,
        correct: [0, 0, 0, 0],
        labelled: 0,
        both: 0,
        either: 0,
        low: Infinity,
        high: -Infinity,
      };
      outputTotals.set(blob, entry);
    }
    const dataB = heldB.tensor.data;
    addAgreement(entry.sums, kernels.agreement(tensorA.data, dataB), tensorA.data.length);
    if (entry.task === "classifier" && entry.layout !== undefined) {
      const top1 = topKAgreement(tensorA.data, dataB, entry.layout, 1);
      entry.top1 += top1.agreeing;
      entry.top5 += topKAgreement(tensorA.data, dataB, entry.layout, 5).agreeing;
      entry.rows += top1.rows;
      if (labels !== undefined) {
        const [a1, a5, b1, b5] = [[tensorA.data, 1], [tensorA.data, 5], [dataB, 1], [dataB, 5]]
          .map(([data, k]) =>
            topKCorrect(data as Float32Array, labels, entry!.layout!, k as number)
          );
        entry.correct = [
          entry.correct[0] + a1.correct,
          entry.correct[1] + a5.correct,
          entry.correct[2] + b1.correct,
          entry.correct[3] + b5.correct,
        ];
        entry.labelled += a1.rows;
      }
    } else if (entry.task === "detector" && entry.layout !== undefined) {
      const { both, either } = confidentAgreement(tensorA.data, dataB, entry.layout);
      entry.both += both;
      entry.either += either;
    } else if (entry.task === "image") {
      const [low, high] = kernels.range(tensorA.data);
      entry.low = Math.min(entry.low, low);
      entry.high = Math.max(entry.high, high);
    }
  }
}

/** An output's metrics and failed checks from its sums. */
function finishOutput(blob: string, entry: OutputTotals, thresholds: Thresholds): OutputMetrics {
  const relativeL2 = relativeL2Of(entry.sums);
  const metrics: OutputMetrics = {
    blob,
    task: entry.task,
    cosine: cosineOf(entry.sums),
    relativeL2,
    sqnr: sqnrDb(relativeL2),
    maxAbsError: entry.sums.maxAbs,
    failed: [],
  };
  if (entry.task === "classifier" && entry.rows > 0) {
    metrics.top1 = entry.top1 / entry.rows;
    if (entry.layout!.classes > 5) metrics.top5 = entry.top5 / entry.rows;
  }
  if (entry.task === "classifier" && entry.labelled > 0) {
    const [a1, a5, b1, b5] = entry.correct.map((correct) => correct / entry.labelled);
    metrics.accuracy = { a: { top1: a1, top5: a5 }, b: { top1: b1, top5: b5 } };
  }
  if (entry.task === "detector") {
    metrics.confident = entry.either === 0 ? 1 : entry.both / entry.either;
  }
  if (entry.task === "image" && entry.high > entry.low) {
    metrics.psnr = psnrDb(entry.sums, entry.high - entry.low);
  }
  metrics.failed = failedChecks(metrics, thresholds);
  return metrics;
}

/**
 * The sensitivity of every layer quantized in `fakeQuant` (a fake-quant or deploy net made from
 * `float`): for each, the cosine, relative L2 and SQNR of its output when it alone is quantized
 * and reads the float net's exact input, against the float net's output of that layer, over the
 * samples. In net order; sort by `relativeL2` (or `cosine`) for the most sensitive. With
 * `outputs: true`, each entry also says how the float net's outputs move when that layer alone is
 * quantized (one more float run per layer and sample).
 *
 * @example
 * ```ts ignore
 * const ranked = (await layerSensitivity(floatNet, fakeQuantNet, { samples: 8 }))
 *   .sort((x, y) => x.cosine - y.cosine); // most sensitive first
 * ```
 */
export async function layerSensitivity(
  float: Net,
  fakeQuant: Net,
  options: Pick<CompareOptions, "inputs" | "samples" | "seed"> & {
    /** Also measure each layer's effect on the float net's outputs (see `outputs`). */
    outputs?: boolean;
  } = {},
): Promise<LayerSensitivity[]> {
  const report = await compareNets(float, fakeQuant, {
    ...options,
    lockstep: true,
    sensitivityOutputs: options.outputs,
  });
  return report.sensitivity;
}
