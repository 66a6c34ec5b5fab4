/**
 * The simulator: runs a float, fake-quant or deploy Caffe net forward (test phase) with Caffe's
 * layer semantics, NCHW float32, kernels in WebAssembly.
 *
 * @module
 */

import { type Layer, type Net, type NetInput, netInputs } from "../caffe/net.ts";
import { type NetStamp, netStamp, sameStamp } from "../caffe/net_stamp.ts";
import { ConvertError } from "../errors.ts";
import { type EngineKernels, engineKernels } from "../wasm/engine.ts";
import { type EngineBuild, engineBuild } from "../wasm/engine_build.ts";
import { type QuantKernels, quantKernels } from "../wasm/quant.ts";
import { BlobValues } from "./blob_values.ts";
import { channelRunners } from "./channel.ts";
import type { LayerRunner, RunContext, RunnerTable } from "./context.ts";
import { convolutionRunners, POST_OP_TYPES } from "./conv.ts";
import { elementwiseRunners } from "./elementwise.ts";
import { runInputs } from "./inputs.ts";
import { forgetMemos } from "./layer_memo.ts";
import { poolingRunners } from "./pool.ts";
import { quantRunners } from "./quant.ts";
import { shapeRunners } from "./shape.ts";
import { ssdRunners } from "./ssd.ts";
import { badInput, FLOAT, shapeText, type Tensor, type Value } from "./tensor.ts";

export type { Tensor } from "./tensor.ts";

/** Options of {@linkcode runNet}. */
export interface RunOptions {
  /**
   * Input tensors by blob name. A tensor may have another shape than declared (another batch
   * size, H or W): the net is reshaped to it. Declared inputs not given are seeded.
   */
  inputs?: Map<string, Tensor>;
  /** Seed of the generated inputs (default 0); see `seededInputs` in src/engine/inputs.ts. */
  seed?: number;
  /** Keep the final value of every blob in {@linkcode RunResult.blobs}. */
  keepAll?: boolean;
  /**
   * Called before each layer runs, with the values it reads (e.g. to observe activation
   * ranges). The tensors must not be changed.
   */
  observe?: (layer: Layer, bottoms: readonly Tensor[]) => void;
  /**
   * With `observe`: the names of the only layers it is called for. The run then applies layers
   * in the layer before them and keeps values in a reused buffer as a run without callbacks does
   * (except for an observed layer, which runs on its own, and a deploy Quant layer, which
   * quantizes its values itself), so the tensors `observe` gets hold their values during the call
   * only: copy what you keep. Calibration observes its quantized layers this way.
   */
  observeOnly?: ReadonlySet<string>;
  /**
   * Called before each layer runs with the values it would read; a tensor returned at index i
   * (of the same shape) is read instead of float bottom i. Lockstep comparison uses it to feed
   * one net's layers the other net's values.
   */
  substitute?: (
    layer: Layer,
    bottoms: readonly Tensor[],
  ) => readonly (Tensor | undefined)[] | undefined;
  /**
   * Called after each layer ran, with the values it wrote (one per top, in order) and what each
   * holds: `float`, or a deploy model's `int8` / `accumulator` integers (see
   * {@linkcode RunResult.deployBlobs}). Unlike `blobs`, this sees every value an in-place chain
   * writes. The tensors must not be changed.
   */
  written?: (layer: Layer, tops: readonly Tensor[], kinds: readonly ValueKind[]) => void;
  /**
   * Layer indices before which to keep the run's state in {@linkcode RunResult.checkpoints}. An
   * index right after a Convolution that applies the next in-place ReLU itself is taken before
   * that Convolution instead.
   */
  checkpoints?: readonly number[];
  /**
   * Start from this state of an earlier run (see {@linkcode canResume}) instead of from the first
   * layer: the caller guarantees that the first `resume.index` layers of `net` equal those of the
   * earlier run's net and that `inputs` are the same. The result is then that of a whole run.
   * Not with `keepAll`.
   */
  resume?: RunCheckpoint;
}

/**
 * The state of a run before layer `index` (the blob values held then, and what the run noted so
 * far): a run of another net whose first `index` layers are the same, on the same inputs, may
 * start from it (see {@linkcode RunOptions.resume}).
 */
export interface RunCheckpoint {
  /** The first layer not run yet. */
  readonly index: number;
  /** The bytes of the tensors it holds (each data array once). */
  readonly bytes: number;
}

/** What a {@linkcode RunCheckpoint} holds. */
interface RunState {
  /** The values held, by blob name. */
  values: ReadonlyMap<string, Value>;
  /** Blobs written or given and not read since, in the order they became so. */
  open: readonly string[];
  /** The layers skipped so far. */
  skipped: readonly SkippedLayer[];
  /** The skipped layer that would have written each blob not held. */
  skippedProducer: ReadonlyMap<string, string>;
}

/** The state of each checkpoint made. */
const STATES = new WeakMap<RunCheckpoint, RunState>();

/** The state of `checkpoint`; one not made by {@linkcode runNet} is a `BAD_ARGUMENT`. */
function stateOf(checkpoint: RunCheckpoint): RunState {
  const state = STATES.get(checkpoint);
  if (state === undefined) {
    throw new ConvertError("BAD_ARGUMENT", "a run can only resume from a checkpoint runNet made");
  }
  return state;
}

/** What a blob value holds: floats, or a deploy model's int8 Quant output or accumulators. */
export type ValueKind = "float" | "int8" | "accumulator";

/** A layer the simulator did not run, and why. */
export interface SkippedLayer {
  /** Layer name. */
  layer: string;
  /** Layer type. */
  type: string;
  /** Why: the type is not simulated, or an input comes from a skipped layer. */
  reason: string;
}

/** What {@linkcode runNet} computed. */
export interface RunResult {
  /**
   * The net's outputs: blobs produced (or given as inputs) and read by no later layer that ran.
   * Inputs of a skipped layer therefore count as outputs (e.g. the blobs feeding SSD's
   * DetectionOutput).
   */
  outputs: Map<string, Tensor>;
  /**
   * With `keepAll`, the final value of every blob name; otherwise empty. Tensors here and in
   * `outputs` may share data with the inputs and with each other (reshaping layers do not copy),
   * and their arrays may be views into one buffer (`byteOffset` need not be 0): treat them as
   * read-only.
   */
  blobs: Map<string, Tensor>;
  /** Layers not run, in net order. */
  skipped: SkippedLayer[];
  /**
   * Blobs of `outputs`/`blobs` that hold a deploy model's integers instead of float values:
   * `int8` for Quant outputs (q), `accumulator` for quantized layers' outputs before DeQuant.
   */
  deployBlobs: Map<string, "int8" | "accumulator">;
  /** The states kept for {@linkcode RunOptions.checkpoints}, by index. */
  checkpoints: RunCheckpoint[];
}

/** Every simulated layer type. */
const RUNNERS: RunnerTable = {
  ...shapeRunners,
  ...convolutionRunners,
  ...poolingRunners,
  ...elementwiseRunners,
  ...channelRunners,
  ...quantRunners,
  ...ssdRunners,
};

/** Why known layer types are not simulated. */
const NOT_SIMULATED: Record<string, string> = {
  DetectionOutput: "DetectionOutput (box decoding and NMS) is not simulated",
};

/** Whether bottom values of these domains may be read by `runner`; the reason if not. */
function domainProblem(
  runner: LayerRunner,
  bottoms: Value[],
  names: string[],
): string | undefined {
  for (let i = 0; i < bottoms.length; i++) {
    const { kind } = bottoms[i].domain;
    if (kind === "int8" && !runner.readsInt8) {
      return `it reads "${
        names[i]
      }", a Quant layer's int8 output, which only quantized layers read`;
    }
    if (kind === "accumulator" && !runner.readsAccumulators) {
      return `it reads "${names[i]}", a quantized layer's output that only a DeQuant reads`;
    }
  }
  return undefined;
}

/** `bottoms` with the float values that `options.substitute` replaces (same shape only). */
function substituted(layer: Layer, bottoms: Value[], options: RunOptions): Value[] {
  const replacements = options.substitute?.(layer, bottoms.map((value) => value.tensor));
  if (replacements === undefined) return bottoms;
  return bottoms.map((value, i) => {
    const replacement = replacements[i];
    const fits = replacement !== undefined && value.domain.kind === "float" &&
      shapeText(replacement.shape) === shapeText(value.tensor.shape);
    return fits ? { tensor: replacement, domain: FLOAT } : value;
  });
}

/** For each blob name, the index of the last layer that reads it. */
function lastReaders(net: Net): Map<string, number> {
  const last = new Map<string, number>();
  net.layers.forEach((layer, index) => {
    for (const name of layer.bottoms) last.set(name, index);
  });
  return last;
}

/** For each blob name, the first DeQuant layer reading it as its first bottom. */
function firstDequants(net: Net): Map<string, Layer> {
  const dequants = new Map<string, Layer>();
  for (const layer of net.layers) {
    const [bottom] = layer.bottoms;
    if (layer.type === "DeQuant" && bottom !== undefined && !dequants.has(bottom)) {
      dequants.set(bottom, layer);
    }
  }
  return dequants;
}

/** One layer as a run sees it: its tree's type, bottoms and tops read once. */
interface PlannedLayer {
  layer: Layer;
  type: string;
  bottoms: string[];
  tops: string[];
  /** The type's runner, if simulated. */
  runner: LayerRunner | undefined;
  /** The slots of `bottoms` and `tops` (see {@linkcode RunPlan.slots}). */
  bottomSlots: number[];
  topSlots: number[];
  /** For each bottom, whether this layer is the last to read it. */
  lastReads: boolean[];
}

/**
 * What a run derives from the net's trees alone, made once per net and kept while
 * {@linkcode stamp} says the trees did not change.
 */
interface RunPlan {
  stamp: NetStamp;
  layers: PlannedLayer[];
  /**
   * A slot for each blob name (the inputs', the layers' bottoms and tops): where a run holds its
   * value (src/engine/blob_values.ts). A resumed run adds the names of its state it lacks.
   */
  slots: Map<string, number>;
  /** The blob name of each slot. */
  names: string[];
  byName: Map<string, Layer>;
  /** For each blob name, the first DeQuant layer whose first bottom it is. */
  dequants: Map<string, Layer>;
  lastRead: Map<string, number>;
  /** The header's `input` names. */
  inputNames: string[];
  /** The declared inputs (`netInputs`). */
  inputs: NetInput[];
  /** See {@linkcode fusionChains}. */
  chains: Map<Layer, Layer[]>;
  /** See {@linkcode deferredQuants}. */
  deferred: Set<Layer>;
}

/** No arrays (a layer that let go of none). */
const NO_ARRAYS: readonly Float32Array[] = [];

/** No layers (the fusable layers of a layer that has none). */
const NO_LAYERS: readonly Layer[] = [];

/** The kernels of each engine build with the quantization kernels, once loaded. */
const KERNELS = new Map<EngineBuild, Promise<[EngineKernels, QuantKernels]>>();

/** The current engine build's kernels and the quantization kernels (one promise per build). */
function runKernels(): Promise<[EngineKernels, QuantKernels]> {
  const build = engineBuild();
  let kernels = KERNELS.get(build);
  if (kernels === undefined) {
    kernels = Promise.all([engineKernels(), quantKernels()]);
    KERNELS.set(build, kernels);
    // A failed load is tried again on the next run, as the loaders do.
    kernels.catch(() => KERNELS.delete(build));
  }
  return kernels;
}

/** The plan of each net run so far. */
const PLANS = new WeakMap<Net, RunPlan>();

/** `net`'s plan: the one kept, or a new one (its layers' kept parameters forgotten). */
function runPlan(net: Net): RunPlan {
  const kept = PLANS.get(net);
  if (kept !== undefined && sameStamp(net, kept.stamp)) return kept;
  forgetMemos(net.layers);
  const inputNames = net.header.getAll("input").map(String);
  const slots = new Map<string, number>();
  const names: string[] = [];
  const slotOf = (name: string) => slotFor(slots, names, name);
  for (const name of inputNames) slotOf(name);
  const lastRead = lastReaders(net);
  const layers = net.layers.map((layer, index): PlannedLayer => {
    const { bottoms, tops } = layer;
    return {
      layer,
      type: layer.type,
      bottoms,
      tops,
      runner: Object.hasOwn(RUNNERS, layer.type) ? RUNNERS[layer.type] : undefined,
      bottomSlots: bottoms.map(slotOf),
      topSlots: tops.map(slotOf),
      lastReads: bottoms.map((name) => lastRead.get(name) === index),
    };
  });
  const plan: RunPlan = {
    stamp: netStamp(net),
    layers,
    slots,
    names,
    byName: new Map(net.layers.map((layer) => [layer.name, layer])),
    dequants: firstDequants(net),
    lastRead,
    inputNames,
    inputs: netInputs(net),
    chains: fusionChains(net),
    deferred: deferredQuants(net),
  };
  PLANS.set(net, plan);
  return plan;
}

/** The slot of blob `name` in `slots` and `names`, added when new. */
function slotFor(slots: Map<string, number>, names: string[], name: string): number {
  let slot = slots.get(name);
  if (slot === undefined) {
    slot = names.push(name) - 1;
    slots.set(name, slot);
  }
  return slot;
}

/**
 * Runs `net` forward once on `options.inputs` (declared inputs not given are seeded uniform in
 * [-1, 1)). Layer types the simulator lacks (e.g. DetectionOutput, custom layers), and layers
 * that need their outputs, are skipped and listed; everything else runs. A fake-quant net runs
 * its Quant layers as quantize-dequantize and its DeQuant layers as identity; a deploy net runs
 * its quantized layers in integers (see src/engine/quant.ts).
 *
 * @example
 * ```ts ignore
 * const result = await runNet(loadNet(prototxt, caffemodel), { seed: 1 });
 * console.log(result.outputs.get("prob")?.data);
 * ```
 */
export async function runNet(net: Net, options: RunOptions = {}): Promise<RunResult> {
  const [kernels, quant] = await runKernels();
  const plan = runPlan(net);
  const inputs = runInputs(net, options.inputs, options.seed ?? 0, plan.inputs);
  const keepAll = options.keepAll ?? false;
  const { byName, lastRead } = plan;
  const { observeOnly } = options;
  const hooked = keepAll || (options.observe !== undefined && observeOnly === undefined) ||
    options.written !== undefined || options.substitute !== undefined;
  const observing = options.observe !== undefined && observeOnly !== undefined;
  const chains = hooked
    ? new Map<Layer, Layer[]>()
    : observing
    ? chainsBefore(plan.chains, observeOnly)
    : plan.chains;
  const deferred = hooked || observing ? new Set<Layer>() : plan.deferred;
  // The layer running, the last of the layers after it that it applied itself (a chain of
  // fusionChains is the layers right after its layer), and the slots its value then goes to.
  let running = -1;
  let appliedThrough = -1;
  let fusedTops: readonly number[] | undefined;
  const context: RunContext = {
    kernels,
    quantKernels: quant,
    net,
    layerNamed: (name) => byName.get(name),
    dequantReading: (name) => plan.dequants.get(name),
    inputs,
    fusable: (layer) => chains.get(layer) ?? NO_LAYERS,
    fused(layer, count) {
      if (count === 0) return;
      if (plan.layers[running]?.layer !== layer) throw new Error("fused() of a layer not running");
      appliedThrough = running + count;
      fusedTops = plan.layers[appliedThrough].topSlots;
    },
    defersQuant: (layer) => deferred.has(layer),
  };
  const { resume } = options;
  if (resume !== undefined && keepAll) {
    throw new ConvertError("BAD_ARGUMENT", "runNet cannot resume a run and keep every blob");
  }
  const start = resume?.index ?? 0;
  const state = resume && stateOf(resume);
  const { slots, names } = plan;
  if (state !== undefined) {
    for (const name of [...state.values.keys(), ...state.open]) slotFor(slots, names, name);
  }
  const values = new BlobValues(names.length);
  const skippedProducer = new Map<string, string>(state?.skippedProducer);
  const skipped: SkippedLayer[] = [...state?.skipped ?? []];
  if (state === undefined) {
    for (const name of plan.inputNames) {
      const slot = slots.get(name)!;
      values.set(slot, { tensor: inputs.get(name)!, domain: FLOAT });
      values.open(slot);
    }
  } else {
    for (const name of state.open) values.open(slots.get(name)!);
    // What a whole run of this net holds here: what later layers read, and what none read yet.
    for (const [name, value] of state.values) {
      const slot = slots.get(name)!;
      if (values.isOpen(slot) || (lastRead.get(name) ?? -1) >= start) values.set(slot, value);
    }
  }
  const keepAt = checkpointIndices(net, options.checkpoints ?? [], chains, deferred);
  // Values no callback sees are kept in the kernels' output arena (copied out if they are
  // outputs), and a value's memory there goes to later values once no blob holds it.
  const arena = !hooked && keepAt.size === 0;
  const checkpoints: RunCheckpoint[] = [];
  const skip = ({ layer, type, tops, topSlots }: PlannedLayer, reason: string) => {
    skipped.push({ layer: layer.name, type, reason });
    for (let i = 0; i < tops.length; i++) {
      values.delete(topSlots[i]);
      values.close(topSlots[i]);
      skippedProducer.set(tops[i], layer.name);
    }
  };
  /** Runs the layer at `index` (or skips it, or leaves it to the layer that applied it). */
  const runLayer = (planned: PlannedLayer, index: number) => {
    if (keepAt.has(index)) {
      checkpoints.push(checkpointOf(index, values, names, skipped, skippedProducer));
    }
    // A layer the one before it applied already (fusionChains).
    if (index <= appliedThrough) return;
    const { layer, type, runner, bottomSlots } = planned;
    running = index;
    fusedTops = undefined;
    const bottoms: Value[] = [];
    for (let i = 0; i < bottomSlots.length; i++) {
      const value = values.get(bottomSlots[i]);
      if (value !== undefined) {
        bottoms.push(value);
        continue;
      }
      const name = planned.bottoms[i];
      const producer = skippedProducer.get(name);
      if (producer === undefined) {
        throw new ConvertError(
          "UNDEFINED_BOTTOM",
          `layer "${layer.name}" reads blob "${name}", which no earlier layer produces`,
          { layer: layer.name },
        );
      }
      return skip(planned, `it needs "${name}" from skipped layer "${producer}"`);
    }
    if (runner === undefined) {
      return skip(planned, NOT_SIMULATED[type] ?? `layer type "${type}" is not simulated`);
    }
    if (bottoms.length === 0 && type !== "Input") {
      // Caffe's CheckBlobCounts: every simulated type but Input reads at least one blob.
      throw badInput(layer, "it has no bottom; a layer of this type reads at least one");
    }
    const read = options.substitute === undefined ? bottoms : substituted(layer, bottoms, options);
    const problem = domainProblem(runner, read, planned.bottoms);
    if (problem !== undefined) return skip(planned, problem);
    if (observeOnly === undefined || observeOnly.has(layer.name)) {
      options.observe?.(layer, read.map((value) => value.tensor));
    }
    let tops: Value[];
    try {
      tops = runner.run(layer, read, context);
    } catch (error) {
      if (error instanceof ConvertError && error.code === "UNSUPPORTED_LAYER") {
        return skip(planned, error.message);
      }
      throw error instanceof ConvertError ? error : outOfMemory(layer, error);
    }
    if (tops.length !== planned.tops.length) {
      throw badInput(layer, `it has ${planned.tops.length} tops, the layer gives ${tops.length}`);
    }
    let dead: Float32Array[] | undefined;
    for (let i = 0; i < bottomSlots.length; i++) {
      const slot = bottomSlots[i];
      values.close(slot);
      if (keepAll || !planned.lastReads[i]) continue;
      const value = values.get(slot);
      if (arena && value !== undefined) (dead ??= []).push(value.tensor.data);
      values.delete(slot);
    }
    options.written?.(layer, tops.map((top) => top.tensor), tops.map((top) => top.domain.kind));
    // The last fused layer's blob holds the convolution's output with those layers applied.
    // (Its tops, one name: the chain's layers have one top.)
    const topSlots = fusedTops ?? planned.topSlots;
    for (let i = 0; i < topSlots.length; i++) {
      values.set(topSlots[i], tops[i]);
      values.open(topSlots[i]);
      if (skippedProducer.size > 0) skippedProducer.delete(names[topSlots[i]]);
    }
    for (const data of dead ?? NO_ARRAYS) {
      if (!values.holds(data)) kernels.releaseOutput(data);
    }
  };
  const runLayers = () => {
    for (let index = start; index < plan.layers.length; index++) {
      runLayer(plan.layers[index], index);
    }
  };
  if (arena) {
    let inputFloats = 0;
    for (const { data } of inputs.values()) inputFloats += data.length;
    kernels.withOutputArena(runLayers, inputFloats);
  } else runLayers();
  const tensors = (held: readonly number[]) => {
    const named = held.map((slot) =>
      [names[slot], settled(values.get(slot)!, kernels, quant)] as const
    );
    const copies = arena ? ownedCopies(named.map(([, tensor]) => tensor.data), kernels) : undefined;
    return new Map(named.map(([name, tensor]) => {
      const copy = copies?.get(tensor.data);
      return [name, copy === undefined ? tensor : { ...tensor, data: copy }];
    }));
  };
  const held = values.heldSlots();
  const deployBlobs = new Map<string, "int8" | "accumulator">();
  for (const slot of held) {
    const { kind } = values.get(slot)!.domain;
    if (kind !== "float") deployBlobs.set(names[slot], kind);
  }
  return {
    outputs: tensors(values.openSlots()),
    blobs: keepAll ? tensors(held) : new Map(),
    skipped,
    deployBlobs,
    checkpoints,
  };
}

/**
 * `value`'s tensor with the quantization a deferred Quant layer left to its reader done: a value
 * whose reader was skipped (e.g. a Convolution of a 3-D input) is an output, as its Quant layer
 * would have written it.
 */
function settled(value: Value, kernels: EngineKernels, quant: QuantKernels): Tensor {
  const { tensor, domain } = value;
  if (domain.kind === "int8" && domain.quantScale !== undefined) {
    return { ...tensor, data: kernels.quantize(tensor.data, domain.quantScale, domain.offsetD) };
  }
  if (domain.kind === "float" && domain.fakeQuant !== undefined) {
    const { scaleD, offsetD } = domain.fakeQuant;
    return { ...tensor, data: quant.fakeQuantActivations(tensor.data, scaleD, offsetD) };
  }
  return tensor;
}

/**
 * Copies of the arrays of `arrays` that are views into the kernels' output arena, each once (an
 * array shared by several tensors stays shared), all in one new buffer (one allocation).
 */
function ownedCopies(
  arrays: readonly Float32Array[],
  kernels: EngineKernels,
): Map<Float32Array, Float32Array> {
  // Each array to copy, mapped to itself until its copy is made.
  const copies = new Map<Float32Array, Float32Array>();
  let total = 0;
  for (let i = 0; i < arrays.length; i++) {
    const data = arrays[i];
    if (copies.has(data) || !kernels.inOutputArena(data)) continue;
    copies.set(data, data);
    total += data.length;
  }
  if (copies.size === 0) return copies;
  if (copies.size === 1) {
    for (const data of copies.keys()) copies.set(data, data.slice());
    return copies;
  }
  const buffer = new Float32Array(total);
  let at = 0;
  for (const data of copies.keys()) {
    const copy = buffer.subarray(at, at += data.length);
    copy.set(data);
    copies.set(data, copy);
  }
  return copies;
}

/**
 * The layer indices at which to keep a checkpoint for `wanted`: an index inside a Convolution's
 * fusion chain (a layer it may apply itself) moves before that Convolution, and before the Quant
 * layer whose quantization it does (the values between them never exist).
 */
function checkpointIndices(
  net: Net,
  wanted: readonly number[],
  chains: Map<Layer, Layer[]>,
  deferred: Set<Layer>,
): Set<number> {
  if (wanted.length === 0) return new Set();
  const chainStart = new Map<number, number>();
  net.layers.forEach((layer, index) => {
    const chain = chains.get(layer) ?? [];
    const start = index > 0 && deferred.has(net.layers[index - 1]) ? index - 1 : index;
    if (start === index && chain.length === 0) return;
    for (let i = 0; i <= chain.length; i++) chainStart.set(index + i, start);
  });
  const indices = new Set<number>();
  for (const index of wanted) {
    if (!Number.isInteger(index) || index < 0 || index >= net.layers.length) continue;
    indices.add(chainStart.get(index) ?? index);
  }
  return indices;
}

/** A copy of the run's state before layer `index` (the tensors themselves are shared). */
function checkpointOf(
  index: number,
  values: BlobValues,
  names: readonly string[],
  skipped: SkippedLayer[],
  skippedProducer: Map<string, string>,
): RunCheckpoint {
  const held = values.heldSlots();
  const arrays = new Set(held.map((slot) => values.get(slot)!.tensor.data));
  const checkpoint = {
    index,
    bytes: [...arrays].reduce((total, data) => total + data.byteLength, 0),
  };
  STATES.set(checkpoint, {
    values: new Map(held.map((slot) => [names[slot], values.get(slot)!])),
    open: values.openSlots().map((slot) => names[slot]),
    skipped: [...skipped],
    skippedProducer: new Map(skippedProducer),
  });
  return checkpoint;
}

/**
 * Whether a run of `net` may start from `checkpoint` (given that its first `checkpoint.index`
 * layers are those of the checkpoint's net): it holds every value the later layers read before
 * they write it (a whole run of the other net may have let go of a value this net still reads).
 */
export function canResume(net: Net, checkpoint: RunCheckpoint): boolean {
  const state = stateOf(checkpoint);
  if (checkpoint.index > net.layers.length) return false;
  const written = new Set<string>();
  for (const layer of net.layers.slice(checkpoint.index)) {
    for (const name of layer.bottoms) {
      const held = state.values.has(name) || state.skippedProducer.has(name);
      if (!written.has(name) && !held) return false;
    }
    for (const name of layer.tops) written.add(name);
  }
  return true;
}

/** How many layers read and write each blob name. */
function blobUse(net: Net): { readers: Map<string, number>; writers: Map<string, number> } {
  const readers = new Map<string, number>();
  const writers = new Map<string, number>();
  for (const layer of net.layers) {
    for (const name of layer.bottoms) readers.set(name, (readers.get(name) ?? 0) + 1);
    for (const name of layer.tops) writers.set(name, (writers.get(name) ?? 0) + 1);
  }
  return { readers, writers };
}

/**
 * Quant layers whose top only the next layer reads, a Convolution, Deconvolution or InnerProduct
 * with that single bottom: the deploy form hands on its float input and that layer quantizes it
 * (one copy less).
 */
function deferredQuants(net: Net): Set<Layer> {
  const { readers, writers } = blobUse(net);
  const deferred = new Set<Layer>();
  net.layers.forEach((layer, index) => {
    const next = net.layers[index + 1];
    if (layer.type !== "Quant" || layer.tops.length !== 1 || !WEIGHTED.has(next?.type)) return;
    const top = layer.tops[0];
    const only = readers.get(top) === 1 && writers.get(top) === 1;
    if (only && next.bottoms.length === 1 && next.bottoms[0] === top) deferred.add(layer);
  });
  return deferred;
}

/** Layers that quantize their deploy input themselves. */
const WEIGHTED = new Set(["Convolution", "Deconvolution", "InnerProduct"]);

/**
 * The layer types each type may apply to its output itself: a Convolution's, Deconvolution's or
 * InnerProduct's (src/engine/conv.ts POST_OPS), an Eltwise's ReLU (src/engine/elementwise.ts).
 */
const FUSABLE: Record<string, ReadonlySet<string>> = {
  Convolution: POST_OP_TYPES,
  Deconvolution: POST_OP_TYPES,
  InnerProduct: POST_OP_TYPES,
  Eltwise: new Set(["ReLU"]),
};

/**
 * For each Convolution, Deconvolution, InnerProduct or Eltwise with one top, the layers right
 * after it that it may apply itself: each of a type FUSABLE after it with one bottom, the previous
 * value, and one top, written in place or into its own blob when no layer outside the chain reads
 * or writes the previous value.
 */
function fusionChains(net: Net): Map<Layer, Layer[]> {
  const { readers, writers } = blobUse(net);
  const chains = new Map<Layer, Layer[]>();
  net.layers.forEach((layer, index) => {
    const fusable = FUSABLE[layer.type];
    if (fusable === undefined || layer.tops.length !== 1) return;
    const chain: Layer[] = [];
    let value = layer.tops[0];
    // Layers of the chain so far that read and that write `value`.
    let [valueReaders, valueWriters] = [0, 1];
    for (const next of net.layers.slice(index + 1)) {
      if (!fusable.has(next.type) || next.bottoms.length !== 1 || next.tops.length !== 1) break;
      if (next.bottoms[0] !== value) break;
      valueReaders++;
      if (next.tops[0] === value) valueWriters++;
      else {
        const elsewhere = readers.get(value) !== valueReaders ||
          writers.get(value) !== valueWriters;
        if (elsewhere) break;
        [valueReaders, valueWriters] = [0, 1];
      }
      chain.push(next);
      value = next.tops[0];
    }
    if (chain.length > 0) chains.set(layer, chain);
  });
  return chains;
}

/** The pieces of fusion chains cut before a layer (a chain array, then where it was cut). */
const CUT_CHAINS = new WeakMap<Layer[], Map<number, Layer[]>>();

/**
 * `chains` with each cut before its first layer named in `observed` (that layer runs on its own,
 * reading its input, which the layer before would otherwise never write): the same arrays where
 * nothing is cut, and the same piece for the same cut on every run, as the layers' kept calls are
 * keyed by their chain.
 */
function chainsBefore(
  chains: Map<Layer, Layer[]>,
  observed: ReadonlySet<string>,
): Map<Layer, Layer[]> {
  const kept = new Map<Layer, Layer[]>();
  for (const [layer, chain] of chains) {
    const cut = chain.findIndex((next) => observed.has(next.name));
    if (cut < 0) {
      kept.set(layer, chain);
    } else if (cut > 0) {
      const pieces = CUT_CHAINS.get(chain) ?? new Map<number, Layer[]>();
      CUT_CHAINS.set(chain, pieces);
      const piece = pieces.get(cut) ?? chain.slice(0, cut);
      pieces.set(cut, piece);
      kept.set(layer, piece);
    }
  }
  return kept;
}

/**
 * A layer whose outputs cannot be allocated (a typed array or the WebAssembly memory would be too
 * large: shapes far beyond real nets) as `LIMIT_EXCEEDED`; any other failure is a bug and passes.
 */
function outOfMemory(layer: Layer, error: unknown): unknown {
  const message = error instanceof Error ? error.message : "";
  if (!(error instanceof RangeError) && !message.includes("memory cannot grow")) return error;
  return new ConvertError(
    "LIMIT_EXCEEDED",
    `layer "${layer.name}" (${layer.type}) needs more memory than can be allocated: ${message}`,
    { layer: layer.name },
  );
}
