/**
 * Accuracy of a quantized model on evaluation data: the float, fake-quant and deploy nets run on
 * the same samples, and each net output is measured against the labels (top-1 accuracy of
 * classifiers) and against the float net (top-1 agreement, agreement of detectors' confident
 * positions, cosine similarity and relative L2 error), with a verdict per net and output. The
 * metrics are those of `metrics.ts`, and outputs are classified as `compareNets` does.
 *
 * @module
 */

import type { Layer, Net } from "../caffe/net.ts";
import { engineKernels } from "../wasm/engine.ts";
import { outputKind, type OutputTask } from "./compare.ts";
import {
  addAgreement,
  type AgreementTotals,
  type ClassLayout,
  confidentAgreement,
  cosineOf,
  DEFAULT_THRESHOLDS,
  emptyTotals,
  failedChecks,
  relativeL2Of,
  type Thresholds,
  topKAgreement,
  topKCorrect,
} from "./metrics.ts";
import { EnginePool } from "./engine_pool.ts";
import { runNet, type RunResult, type Tensor } from "./run.ts";

/** One evaluation sample: a tensor per net input (batch 1) and, when known, its true class. */
export interface EvaluationSample {
  /** Net inputs by blob name. */
  inputs: Map<string, Tensor>;
  /** The true class, for the top-1 accuracy of classifier outputs. */
  label?: number;
}

/** The three nets of a conversion. */
export interface EvaluatedNets {
  /** The float model. */
  float: Net;
  /** The fake-quant model. */
  fakeQuant: Net;
  /** The deploy model. */
  deploy: Net;
}

/** Which of {@linkcode EvaluatedNets} a figure belongs to. */
export type EvaluatedNet = keyof EvaluatedNets;

/** One net's figures on one output. */
export interface NetAccuracy {
  /** Classifiers with labels: the fraction of labelled samples whose arg-max is the label. */
  top1Accuracy?: number;
  /** Classifiers: the fraction of positions whose arg-max agrees with the float net's. */
  top1Agreement?: number;
  /**
   * Detectors: positions with a non-background score above 0.5 in this net (for the float net:
   * its confident positions).
   */
  confident?: number;
  /** Detectors: the float net's confident positions this net also has. */
  confidentKept?: number;
  /** Detectors: confident positions shared with the float net over those of either (1 if none). */
  confidentAgreement?: number;
  /** Cosine similarity to the float net's output. */
  cosine: number;
  /** Relative L2 error against the float net's output. */
  relativeL2: number;
  /** Checks failed against the thresholds (none for the float net). */
  failed: string[];
}

/** The figures of one net output. */
export interface EvaluatedOutput {
  /** The output blob. */
  blob: string;
  /** What the output is, as `compareNets` classifies it. */
  task: OutputTask;
  /** The output's shape for one sample. */
  shape: number[];
  /** Each net's figures. */
  nets: Record<EvaluatedNet, NetAccuracy>;
}

/** What {@linkcode evaluateAccuracy} measured. */
export interface AccuracyReport {
  /** Samples evaluated. */
  samples: number;
  /** Of them, samples with a label. */
  labelled: number;
  /** The thresholds of the verdicts. */
  thresholds: Thresholds;
  /** Each output of the float net that the other two nets also write, in the float net's order. */
  outputs: EvaluatedOutput[];
}

/** Options of {@linkcode evaluateAccuracy}. */
export interface EvaluateOptions {
  /** Verdict thresholds (defaults: {@linkcode DEFAULT_THRESHOLDS}). */
  thresholds?: Partial<Thresholds>;
  /** Called after each sample with the samples done. */
  onProgress?: (samples: number) => void;
  /**
   * Threads to run the samples on (workers each holding the three nets; see `EnginePool`):
   * default every core; 1 runs in-process. The figures do not depend on it.
   */
  threads?: number;
}

/** Running sums of one net on one output. */
interface NetTotals {
  sums: AgreementTotals;
  correct: number;
  agreeing: number;
  confident: number;
  kept: number;
  either: number;
}

/** Running sums of one output. */
interface OutputTotals {
  task: OutputTask;
  layout?: ClassLayout;
  shape: number[];
  labelledRows: number;
  rows: number;
  nets: Record<EvaluatedNet, NetTotals>;
}

const NETS: EvaluatedNet[] = ["float", "fakeQuant", "deploy"];

function emptyNetTotals(): NetTotals {
  return {
    sums: emptyTotals(),
    correct: 0,
    agreeing: 0,
    confident: 0,
    kept: 0,
    either: 0,
  };
}

/**
 * Runs the float, fake-quant and deploy nets on every sample (on `options.threads` workers) and
 * measures each output of the float net that the other nets also write: for classifiers (a Softmax with one
 * position per sample) top-1 accuracy against the labels and top-1 agreement with the float net,
 * for detectors (a Softmax over many positions) the confident positions (score > 0.5) kept, and
 * for every output the cosine similarity and relative L2 error to the float net. Each quantized
 * net gets a verdict per output against `thresholds`.
 *
 * @example
 * ```ts ignore
 * const report = await evaluateAccuracy({ float, fakeQuant, deploy }, [
 *   { inputs: new Map([["data", digit]]), label: 7 },
 * ]);
 * console.log(report.outputs[0].nets.deploy.top1Accuracy);
 * ```
 */
export async function evaluateAccuracy(
  nets: EvaluatedNets,
  samples: Iterable<EvaluationSample> | AsyncIterable<EvaluationSample>,
  options: EvaluateOptions = {},
): Promise<AccuracyReport> {
  const kernels = await engineKernels();
  const thresholds = { ...DEFAULT_THRESHOLDS, ...options.thresholds };
  const totals = new Map<string, OutputTotals>();
  let count = 0;
  let labelled = 0;
  const softmaxShapes = new Map<string, number[]>();
  const noteSoftmax = (layer: Layer, tops: readonly Tensor[]) => {
    if (layer.type === "Softmax") softmaxShapes.set(layer.tops[0], tops[0].shape);
  };
  const add = (sample: EvaluationSample, outputs: Record<EvaluatedNet, Map<string, Tensor>>) => {
    count++;
    if (sample.label !== undefined) labelled++;
    for (const [blob, reference] of outputs.float) {
      const others = NETS.map((name) => outputs[name].get(blob));
      if (others.some((tensor) => tensor?.shape.join() !== reference.shape.join())) continue;
      let entry = totals.get(blob);
      if (entry === undefined) {
        entry = {
          ...outputKind(nets.float, blob, reference.shape, (name) => softmaxShapes.get(name)),
          shape: reference.shape,
          labelledRows: 0,
          rows: 0,
          nets: { float: emptyNetTotals(), fakeQuant: emptyNetTotals(), deploy: emptyNetTotals() },
        };
        totals.set(blob, entry);
      }
      addSample(kernels, entry, reference, others as Tensor[], sample.label);
    }
    options.onProgress?.(count);
  };
  // The workers start while the first sample runs here, its float run noting Softmax shapes.
  const opening = EnginePool.open(NETS.map((name) => nets[name]), { threads: options.threads });
  opening.catch(() => {});
  const iterator = asyncIterator(samples);
  try {
    const first = await iterator.next();
    if (!first.done) {
      const outputs = {} as Record<EvaluatedNet, Map<string, Tensor>>;
      for (const name of NETS) {
        const result = await runNet(nets[name], {
          inputs: first.value.inputs,
          written: name === "float" ? noteSoftmax : undefined,
        });
        outputs[name] = valueOutputs(result);
      }
      add(first.value, outputs);
    }
    const pool = await opening;
    const queued: EvaluationSample[] = [];
    const rest = async function* () {
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
        queued.push(next.value);
        yield next.value.inputs;
      }
    };
    for await (const results of pool.runAll(rest())) {
      const outputs = {} as Record<EvaluatedNet, Map<string, Tensor>>;
      NETS.forEach((name, i) => outputs[name] = valueOutputs(results[i]));
      add(queued.shift()!, outputs);
    }
  } finally {
    await iterator.return?.();
    (await opening.catch(() => undefined))?.close();
  }
  const report: AccuracyReport = { samples: count, labelled, thresholds, outputs: [] };
  for (const [blob, entry] of totals) {
    const figures = {} as Record<EvaluatedNet, NetAccuracy>;
    for (const name of NETS) figures[name] = netFigures(entry, entry.nets[name], name, thresholds);
    report.outputs.push({ blob, task: entry.task, shape: entry.shape, nets: figures });
  }
  return report;
}

/** A run's outputs that hold float values (not a deploy net's integers). */
function valueOutputs(result: RunResult): Map<string, Tensor> {
  return new Map([...result.outputs].filter(([blob]) => !result.deployBlobs.has(blob)));
}

/** An iterator over `samples`, sync or async. */
function asyncIterator<T>(samples: Iterable<T> | AsyncIterable<T>): AsyncIterator<T> {
  if (Symbol.asyncIterator in samples) return samples[Symbol.asyncIterator]();
  const iterator = samples[Symbol.iterator]();
  return {
    next: () => Promise.resolve(iterator.next()),
    return: () => Promise.resolve(iterator.return?.() ?? { done: true, value: undefined }),
  };
}

/** Adds one sample's outputs of the three nets (float first) to `entry`. */
function addSample(
  kernels: Awaited<ReturnType<typeof engineKernels>>,
  entry: OutputTotals,
  reference: Tensor,
  tensors: Tensor[],
  label: number | undefined,
): void {
  const { layout } = entry;
  let rows = 0;
  NETS.forEach((name, i) => {
    const data = tensors[i].data;
    const net = entry.nets[name];
    addAgreement(net.sums, kernels.agreement(reference.data, data), data.length);
    if (layout === undefined) return;
    if (entry.task === "classifier") {
      const agreement = topKAgreement(reference.data, data, layout, 1);
      net.agreeing += agreement.agreeing;
      rows = agreement.rows;
      if (label !== undefined) net.correct += topKCorrect(data, [label], layout, 1).correct;
    } else if (entry.task === "detector") {
      const own = confidentAgreement(data, data, layout);
      const shared = confidentAgreement(reference.data, data, layout);
      net.confident += own.both;
      net.either += shared.either;
      net.kept += shared.both;
    }
  });
  entry.rows += rows;
  if (label !== undefined && entry.task === "classifier") entry.labelledRows++;
}

/** One net's figures from its sums. */
function netFigures(
  entry: OutputTotals,
  totals: NetTotals,
  name: EvaluatedNet,
  thresholds: Thresholds,
): NetAccuracy {
  const figures: NetAccuracy = {
    cosine: cosineOf(totals.sums),
    relativeL2: relativeL2Of(totals.sums),
    failed: [],
  };
  if (entry.task === "classifier" && entry.layout !== undefined) {
    if (entry.labelledRows > 0) figures.top1Accuracy = totals.correct / entry.labelledRows;
    if (entry.rows > 0) figures.top1Agreement = totals.agreeing / entry.rows;
  }
  if (entry.task === "detector" && entry.layout !== undefined) {
    figures.confident = totals.confident;
    figures.confidentKept = totals.kept;
    figures.confidentAgreement = totals.either === 0 ? 1 : totals.kept / totals.either;
  }
  if (name !== "float") {
    figures.failed = failedChecks({
      cosine: figures.cosine,
      relativeL2: figures.relativeL2,
      top1: figures.top1Agreement,
      confident: figures.confidentAgreement,
    }, thresholds);
  }
  return figures;
}
