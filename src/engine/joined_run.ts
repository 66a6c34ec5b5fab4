/**
 * Several samples of a net run as one batch: their inputs joined along axis 0, one `runNet`, its
 * outputs split back per sample. A small net's run costs mostly per layer (the kernel calls and
 * the JavaScript between them), so the engine pool (src/engine/engine_pool.ts: its workers, or
 * in-process without them) runs a job's samples this way when the net allows: every layer then
 * computes each sample's rows on their own, in the same order as a run of that sample alone, so
 * each sample's outputs are the same bits.
 *
 * A net allows it when each layer is of a type that works on every image of a batch on its own,
 * with parameters that keep axis 0 the batch's: no Concat, Slice, Softmax, InnerProduct or
 * Flatten on axis 0, no Reshape that rewrites it, no Permute that moves it, no BatchNorm with
 * batch statistics, and no layer the simulator does not run (its outputs would be left unsplit).
 *
 * @module
 */

import { boolParam, numberParam } from "../caffe/layers.ts";
import { type Layer, type Net, netInputs } from "../caffe/net.ts";
import { type NetStamp, netStamp, sameStamp } from "../caffe/net_stamp.ts";
import { runNet, type RunResult } from "./run.ts";
import { concatRows, type Tensor } from "./tensor.ts";
import { SpareBuffers } from "./spare_buffers.ts";

/** Layer types that work on each image of a batch on their own, whatever their parameters. */
const PER_IMAGE = new Set([
  "Convolution",
  "Deconvolution",
  "Pooling",
  "ReLU",
  "PReLU",
  "TanH",
  "Sigmoid",
  "AbsVal",
  "Power",
  "Dropout",
  "Eltwise",
  "Scale",
  "Bias",
  "LRN",
  "Normalize",
  "Quant",
  "DeQuant",
  "Split",
  "Input",
]);

/**
 * The parameter message and default of the `axis` field of the types that have one, and the
 * legacy field that takes its place when set (Caffe's concat_dim, slice_dim).
 */
const AXIS_FIELDS: Record<string, [message: string, fallback: number, legacy?: string]> = {
  Concat: ["concat_param", 1, "concat_dim"],
  Slice: ["slice_param", 1, "slice_dim"],
  Softmax: ["softmax_param", 1],
  InnerProduct: ["inner_product_param", 1],
  Flatten: ["flatten_param", 1],
  Crop: ["crop_param", 2],
};

/** Whether `layer` keeps the images of a batch apart (see the module doc). */
function keepsImagesApart(layer: Layer): boolean {
  const { type } = layer;
  if (PER_IMAGE.has(type)) return true;
  if (type === "BatchNorm") return boolParam(layer, "batch_norm_param", "use_global_stats", true);
  const axisField = AXIS_FIELDS[type];
  if (axisField !== undefined) {
    const [message, fallback, legacy] = axisField;
    const legacyAxis = legacy === undefined ? undefined : layer.param(message, legacy);
    const axis = typeof legacyAxis === "number"
      ? legacyAxis
      : numberParam(layer, message, "axis", fallback);
    return axis >= 1;
  }
  if (type === "Permute") {
    const order = layer.paramAll("permute_param", "order").map(Number);
    return order.length === 0 || order[0] === 0;
  }
  if (type === "Reshape") {
    if (numberParam(layer, "reshape_param", "axis", 0) >= 1) return true;
    const dims = layer.params.message("reshape_param")?.message("shape")?.getAll("dim") ?? [];
    return dims.length > 0 && Number(dims[0]) === 0;
  }
  return false;
}

/**
 * Whether each net allows a joined run, kept while the net's stamp says its trees did not change
 * (a pool without workers runs the caller's nets, which may be edited between runs).
 */
const ALLOWS = new WeakMap<Net, { stamp: NetStamp; allows: boolean }>();

/** Whether `net`'s samples may run as one batch (see the module doc). */
export function allowsJoinedRuns(net: Net): boolean {
  const kept = ALLOWS.get(net);
  if (kept !== undefined && sameStamp(net, kept.stamp)) return kept.allows;
  const allows = net.layers.every(keepsImagesApart);
  ALLOWS.set(net, { stamp: netStamp(net), allows });
  return allows;
}

/**
 * Runs `samples` (each one's tensor for every declared input of `net`) through `net` as one batch
 * and gives each sample's result as its own run would (`blobs` and `checkpoints` empty); undefined
 * when the net does not allow it, a sample lacks an input, its inputs differ in rows (axis 0),
 * the samples' shapes beyond axis 0 differ, or an output does not hold the samples' rows along
 * axis 0. A failing run throws, as `runNet` does.
 */
export async function joinedRun(
  net: Net,
  samples: readonly Map<string, Tensor>[],
): Promise<RunResult[] | undefined> {
  if (samples.length < 2 || !allowsJoinedRuns(net)) return undefined;
  const inputs = new Map<string, Tensor>();
  const taken: ArrayBuffer[] = [];
  let runs: RunResult[] | undefined;
  try {
    for (const { name } of netInputs(net)) {
      const tensors = samples.map((sample) => sample.get(name));
      if (tensors.some((tensor) => tensor === undefined || tensor.shape.length === 0)) {
        return undefined;
      }
      const joined = concatRows(tensors as Tensor[], (length) => {
        const buffer = spareInputs.take(length * 4) ?? new ArrayBuffer(length * 4);
        taken.push(buffer);
        return new Float32Array(buffer, 0, length);
      });
      if (joined === undefined) return undefined;
      inputs.set(name, joined);
    }
    if (inputs.size === 0) return undefined;
    runs = await joinedRunOf(net, samples, inputs);
    return runs;
  } finally {
    giveBack(taken, runs);
  }
}

/** {@linkcode joinedRun} with `inputs`, the samples' inputs joined. */
async function joinedRunOf(
  net: Net,
  samples: readonly Map<string, Tensor>[],
  inputs: Map<string, Tensor>,
): Promise<RunResult[] | undefined> {
  // Each sample's rows: the first axis of every one of its inputs.
  const names = [...inputs.keys()];
  const rows = samples.map((sample) => sample.get(names[0])!.shape[0]);
  const sameRows = samples.every((sample, i) =>
    names.every((name) => sample.get(name)!.shape[0] === rows[i])
  );
  if (!sameRows) return undefined;
  const total = rows.reduce((sum, count) => sum + count, 0);
  const result = await runNet(net, { inputs });
  const outputs = [...result.outputs];
  if (!outputs.every(([, tensor]) => tensor.shape[0] === total)) return undefined;
  let start = 0;
  return rows.map((count) => {
    const parts = outputs.map(([name, tensor]): [string, Tensor] => {
      const perRow = tensor.data.length / total;
      const data = tensor.data.subarray(start * perRow, (start + count) * perRow);
      return [name, { shape: [count, ...tensor.shape.slice(1)], data }];
    });
    start += count;
    return {
      outputs: new Map(parts),
      blobs: new Map(),
      skipped: result.skipped,
      deployBlobs: result.deployBlobs,
      checkpoints: [],
    };
  });
}

/**
 * Buffers that joined inputs were written into, which no run reads any more: the next joined runs
 * write theirs there (mtcnn_onet's inputs, 8 samples of 27 KiB, are 54 fresh pages a run).
 */
const spareInputs = new SpareBuffers(4);

/**
 * Keeps `buffers` as spare, except those whose memory an output of `runs` shares (an input that
 * is also an output of the net, as it came).
 */
function giveBack(buffers: readonly ArrayBuffer[], runs: readonly RunResult[] | undefined): void {
  const held = new Set<ArrayBufferLike>();
  for (const run of runs ?? []) for (const { data } of run.outputs.values()) held.add(data.buffer);
  for (const buffer of buffers) if (!held.has(buffer)) spareInputs.give(buffer);
}

/** What {@linkcode runSamples} gives: each sample's results up to the first failing one. */
export interface SampleRuns {
  /** Per sample, the nets' results in order. */
  results: RunResult[][];
  /** What the first failing sample's run threw (the samples after it were not run). */
  error?: unknown;
}

/**
 * The most samples one joined run carries. Joining more gains nothing once warm (lenet 114 µs per
 * sample alone, 102 at 8, 99 at 64; mtcnn_onet 494, 466, 1,163) and costs a fresh process dearly:
 * each larger batch first prepares every layer's call and touches new memory (~1,000 page faults
 * for lenet's first 32), so 511 samples in-process took 190 µs each joined up to 64, 131 up to 8.
 */
const MAX_JOINED_SAMPLES = 8;

/**
 * Runs every sample of `samples` through every net of `nets` (declared inputs a sample lacks are
 * seeded with `seed`): consecutive samples, {@linkcode MAX_JOINED_SAMPLES} at a time, as one
 * joined run per net when each allows it, else sample by sample; up to the first sample that
 * fails. Each sample's results are the same bits either way. A group of fewer samples (a short
 * job, the last samples) runs sample by sample: a batch size a net has not run yet costs it a
 * run or two that prepare every layer's call and take fresh memory (lenet: ~5 ms each against
 * ~0.1 ms a sample), which a few samples never pay back.
 */
export async function runSamples(
  nets: readonly Net[],
  samples: readonly (Map<string, Tensor> | undefined)[],
  seed: number,
): Promise<SampleRuns> {
  const results: RunResult[][] = [];
  for (let start = 0; start < samples.length; start += MAX_JOINED_SAMPLES) {
    const group = samples.slice(start, start + MAX_JOINED_SAMPLES);
    const joined = group.length === MAX_JOINED_SAMPLES ? await joinedRuns(nets, group) : undefined;
    if (joined !== undefined) {
      results.push(...joined);
      continue;
    }
    for (const inputs of group) {
      const runs: RunResult[] = [];
      try {
        for (const net of nets) runs.push(await runNet(net, { inputs, seed }));
      } catch (error) {
        return { results, error };
      }
      results.push(runs);
    }
  }
  return { results };
}

/**
 * Each sample's results through every net of `nets` (per sample, the nets' results in order) from
 * one joined run per net, or undefined when a sample has no inputs (seeded), a net does not allow
 * it for these samples, or a joined run fails (the samples then run one by one, which also finds
 * the first failing sample).
 */
async function joinedRuns(
  nets: readonly Net[],
  samples: readonly (Map<string, Tensor> | undefined)[],
): Promise<RunResult[][] | undefined> {
  if (samples.length < 2 || samples.some((sample) => sample === undefined)) return undefined;
  const inputs = samples as Map<string, Tensor>[];
  const perNet: RunResult[][] = [];
  for (const net of nets) {
    const runs = await joinedRun(net, inputs).catch(() => undefined);
    if (runs === undefined) return undefined;
    perNet.push(runs);
  }
  return inputs.map((_, sample) => perNet.map((runs) => runs[sample]));
}
