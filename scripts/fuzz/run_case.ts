/**
 * Runs one fuzz case through the whole conversion in this process and judges it. A finding is an
 * exception that is not a {@linkcode ConvertError} (or one without its place), a run longer than
 * {@linkcode SLOW_MS}, memory growth beyond {@linkcode MEMORY_FACTOR} times the input, or a
 * failed conversion that left files behind.
 *
 * Memory is measured from a collected heap (V8's `gc`, exposed by the fuzzer's flags): the
 * growth of external memory (array buffers, where a size read from the input would be
 * allocated) right after the conversion, before any collection; and, when asked, the memory
 * still held after a second collection with the outputs alive (what a conversion keeps). The
 * JavaScript objects a text parse leaves for the collector (about 70 bytes per prototxt byte,
 * proportional to the text) are not counted.
 *
 * @module
 */

import { loadNet } from "../../src/caffe/model.ts";
import { type Net, netInputs } from "../../src/caffe/net.ts";
import { observeActivationRanges } from "../../src/engine/calibrate.ts";
import { uniformGenerator } from "../../src/engine/inputs.ts";
import { runNet } from "../../src/engine/run.ts";
import type { Tensor } from "../../src/engine/tensor.ts";
import { ConvertError } from "../../src/errors.ts";
import { convertInMemory } from "../../src/quant/convert.ts";
import { makeRecord } from "../../src/quant/make_record.ts";
import { convertModel } from "../../src/io/convert_model.ts";
import { readSamples } from "../../src/data/samples.ts";
import type { CaseFiles } from "./corpus.ts";

/** A case slower than this (ms), plus {@linkcode SLOW_MS_PER_BYTE} per input byte, is a finding. */
export const SLOW_MS = 2000;
/**
 * Time allowed per input byte (ms): linear work on a large input (a 4 MiB mutated caffemodel of
 * 100,000 layers takes 4–8 s on a loaded 2-core machine) is not a finding; super-linear work is.
 */
export const SLOW_MS_PER_BYTE = 0.002;
/**
 * A case that runs the simulator may take this many times the net's own run (measured by the
 * worker on the undamaged files) beyond {@linkcode SLOW_MS}: a batch of 3, plus noise.
 */
export const RUN_SLOWDOWN = 10;
/**
 * Time allowed per element the simulator's layers write (ns): a damaged net may legitimately ask
 * for far larger activations than its original (a Deconvolution's `stride: 1000` makes an 8×8 map
 * 7,002×7,002), and work linear in them, bounded by the tensor limit, is not a finding. Most of
 * that time is the kernel zeroing fresh pages (system time): the recipe case took 4 ns per element
 * on an idle machine when this was set to 10, then 12.5 ns (old code) and 20–22 ns (the engine with
 * its output arena and integer deploy kernels) on the same idle machine later, so 30.
 */
export const SLOW_NS_PER_ELEMENT = 30;
/** Memory growth beyond this many times the inputs' size (plus the allowance) is a finding. */
export const MEMORY_FACTOR = 4;
/** Growth always allowed (bytes): compiled code and V8's bookkeeping. */
export const MEMORY_ALLOWANCE = 4 << 20;

/** What became of a case. */
export interface CaseOutcome {
  /** `converted`, the ConvertError code, or `exception`. */
  result: string;
  /** For a finding: its kind (`exception`, `no-place`, `slow`, `memory`, `left-files`). */
  finding?: string;
  /** For a finding: what happened. */
  detail?: string;
  /** Milliseconds the conversion took. */
  ms: number;
  /**
   * The larger memory growth measured (see the module doc; less {@linkcode MEMORY_ALLOWANCE}),
   * as a multiple of the input size.
   */
  memoryRatio: number;
}

const NAMES = {
  model: "fuzz.prototxt",
  weights: "fuzz.caffemodel",
  record: "fuzz_record.txt",
  input: "fuzz_input.npy",
};

/** V8's `gc`, when exposed (`--v8-flags=--expose-gc`: the fuzzer and `npm test`). */
const gc = (globalThis as { gc?: (options?: { type: "minor" | "major" }) => void }).gc;
/** Whether memory can be judged: without `gc` the measure is noise, so it is left out. */
export const MEASURES_MEMORY: boolean = gc !== undefined;
/** A full collection (`major`), or only of the young generation (`minor`: cheaper). */
const collectGarbage = (type: "minor" | "major") => gc?.({ type });

function heldBytes(): number {
  const usage = Deno.memoryUsage();
  return usage.heapUsed + usage.external;
}

/** The place an error of this code must name, checked on every ConvertError. */
function missingPlace(error: ConvertError): string | undefined {
  if (error.file === undefined) return "no file";
  if (error.code.startsWith("TEXT_") && (error.line === undefined || error.column === undefined)) {
    return "no line:column";
  }
  if (error.code.startsWith("BINARY_") && error.offset === undefined) return "no byte offset";
  return undefined;
}

/** How {@linkcode runCase} runs a case. */
export interface RunCaseOptions {
  /** Through `convertModel` into a fresh temporary directory (a failure must leave no file). */
  onDisk?: boolean;
  /**
   * Start from a full collection and also measure the memory held after a second one (costs two
   * full collections; otherwise a young-generation collection starts the case).
   */
  measureHeld?: boolean;
  /**
   * Also run the simulator as `record --input` does (`also`), or only that (`only`): the float
   * net observed on the samples of `files.input` (read and checked by `readSamples`, at most 3)
   * or on a seeded input, then a record made from the ranges.
   */
  run?: "also" | "only";
  /** A case slower than this (ms) is a finding (default {@linkcode SLOW_MS}). */
  slowMs?: number;
}

/** Converts `files` (in memory unless `onDisk`) and judges the outcome. */
export async function runCase(
  files: CaseFiles,
  options: RunCaseOptions = {},
): Promise<CaseOutcome> {
  const { onDisk = false, measureHeld = false, run, slowMs = SLOW_MS } = options;
  const inputBytes = files.model.length + files.weights.length + files.record.length +
    (files.input?.length ?? 0);
  collectGarbage(measureHeld ? "major" : "minor");
  const externalBefore = Deno.memoryUsage().external;
  const heldBefore = heldBytes();
  const started = performance.now();
  let result = "converted";
  let finding: string | undefined;
  let detail: string | undefined;
  /** The conversion's result, held until memory is measured (outputs count as growth). */
  let outputs: unknown;
  const dir = onDisk ? Deno.makeTempDirSync({ prefix: "caffe-quant-fuzz-" }) : "";
  try {
    if (run === "only") {
      // No conversion: the damaged input goes to the simulator below.
    } else if (onDisk) {
      for (const key of ["model", "weights", "record"] as const) {
        Deno.writeFileSync(`${dir}/${NAMES[key]}`, files[key]);
      }
      outputs = await convertModel({
        modelFile: `${dir}/${NAMES.model}`,
        weightsFile: `${dir}/${NAMES.weights}`,
        recordFile: `${dir}/${NAMES.record}`,
        savePath: `${dir}/out/m`,
      });
    } else {
      const decoder = new TextDecoder();
      outputs = await convertInMemory({
        model: decoder.decode(files.model),
        weights: files.weights,
        record: decoder.decode(files.record),
        files: NAMES,
      });
    }
  } catch (error) {
    if (error instanceof ConvertError) {
      result = error.code;
      const missing = missingPlace(error);
      if (missing !== undefined) [finding, detail] = ["no-place", `${missing}: ${error.format()}`];
    } else {
      result = finding = "exception";
      detail = error instanceof Error ? (error.stack ?? String(error)) : String(error);
    }
  }
  let growth = Deno.memoryUsage().external - externalBefore;
  if (measureHeld) {
    // From a fresh task, so no stale stack slot keeps garbage alive through the collection.
    await new Promise((resolve) => setTimeout(resolve, 0));
    collectGarbage("major");
    growth = Math.max(growth, heldBytes() - heldBefore);
  }
  // The conversion's memory only: the simulator's WebAssembly memory grows with the net's
  // activations, not with the input files, and stays grown.
  const memoryRatio = MEASURES_MEMORY && run !== "only"
    ? (growth - MEMORY_ALLOWANCE) / Math.max(1, inputBytes)
    : 0;
  void outputs;
  if (onDisk) {
    if (result !== "converted" && finding === undefined) {
      const left = leftFiles(`${dir}/out`);
      if (left.length > 0) [finding, detail] = ["left-files", `${result} but left ${left}`];
    }
    Deno.removeSync(dir, { recursive: true });
  }
  if (run !== undefined && finding === undefined) {
    const simulated = await simulate(files);
    result = run === "only" ? `run:${simulated.result}` : `${result} run:${simulated.result}`;
    [finding, detail] = [simulated.finding, simulated.detail];
  }
  const ms = performance.now() - started;
  let allowedMs = (slowMs + SLOW_MS_PER_BYTE * inputBytes) * loadFactor();
  if (run !== undefined && finding === undefined && ms > allowedMs) {
    // Only for a slow case: how much the damaged net asked the simulator to write.
    allowedMs += SLOW_NS_PER_ELEMENT * await elementsWritten(files) / 1e6 * loadFactor();
  }
  if (finding === undefined && ms > allowedMs) {
    [finding, detail] = ["slow", `${ms.toFixed(0)} ms (allowed ${allowedMs.toFixed(0)})`];
  }
  if (finding === undefined && memoryRatio > MEMORY_FACTOR) {
    [finding, detail] = ["memory", `grew ${memoryRatio.toFixed(1)}× the input`];
  }
  return { result, finding, detail, ms, memoryRatio };
}

/**
 * `record --input` in memory: loads the net, reads the `.npy` input (if any) for its first
 * declared input, observes the activation ranges on it (or on one seeded input) and makes a
 * record from them. A `ConvertError` is an outcome, anything else a finding.
 */
async function simulate(
  files: CaseFiles,
): Promise<Pick<CaseOutcome, "result" | "finding" | "detail">> {
  try {
    const net = loadNet(new TextDecoder().decode(files.model), files.weights, NAMES);
    const inputs = await simulatorInputs(net, files);
    const activationRanges = await observeActivationRanges(net, { inputs, samples: 1, seed: 1 });
    await makeRecord(net, { activationRanges, files: NAMES });
    return { result: "ran" };
  } catch (error) {
    if (error instanceof ConvertError) return { result: error.code };
    return {
      result: "exception",
      finding: "exception",
      detail: error instanceof Error ? (error.stack ?? String(error)) : String(error),
    };
  }
}

/**
 * How much slower than an idle machine this one runs now: the load average of the last minute
 * per core, at least 1. Time allowances stretch by it, so other jobs on the machine do not make
 * findings (a case slow on an idle machine still is one).
 */
function loadFactor(): number {
  return Math.max(1, Deno.loadavg()[0] / navigator.hardwareConcurrency);
}

/**
 * The inputs `record --input` runs on: the samples of `files.input` (read and checked by
 * `readSamples`, at most 3), or one seeded input, or none (left to the simulator's own seeding).
 */
async function simulatorInputs(
  net: Net,
  files: CaseFiles,
): Promise<Map<string, Tensor>[] | undefined> {
  if (files.input !== undefined) {
    const inputs = [];
    const items = [{ name: NAMES.input, bytes: files.input }];
    for await (const sample of readSamples(net, items, { limit: 3 })) inputs.push(sample.inputs);
    return inputs;
  }
  const declared = netInputs(net)[0];
  const seeded = declared && seededTensor(declared.shape);
  return seeded === undefined ? undefined : [new Map([[declared.name, seeded]])];
}

/**
 * The elements the simulator's layers write when {@linkcode simulate} runs `files` (its first
 * sample), counted up to the error that ends the run, if any.
 */
async function elementsWritten(files: CaseFiles): Promise<number> {
  let elements = 0;
  try {
    const net = loadNet(new TextDecoder().decode(files.model), files.weights, NAMES);
    const inputs = await simulatorInputs(net, files);
    await runNet(net, {
      inputs: inputs?.[0],
      seed: 1,
      written(_layer, tops) {
        for (const top of tops) elements += top.data.length;
      },
    });
  } catch {
    // The run's end, whatever ended it: simulate judged the error already.
  }
  return elements;
}

/** Height and width of the simulator's seeded inputs stop here (keeps big nets' runs short). */
export const RUN_SIZE = 64;

/**
 * A seeded input of `shape` with its last two axes cut to {@linkcode RUN_SIZE} (fully
 * convolutional nets reshape to it; the nets with InnerProduct layers here are smaller), or
 * `undefined` for a shape the simulator would refuse anyway (left to it).
 */
function seededTensor(shape: number[]): Tensor | undefined {
  if (shape.length === 0 || shape.some((size) => !Number.isInteger(size) || size < 1)) {
    return undefined;
  }
  const cut = shape.map((size, i) => i >= 2 ? Math.min(size, RUN_SIZE) : size);
  const count = cut.reduce((a, b) => a * b, 1);
  if (count > 1 << 24) return undefined;
  const next = uniformGenerator(1);
  return { shape: cut, data: Float32Array.from({ length: count }, next) };
}

function leftFiles(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((entry) => entry.name);
  } catch {
    return [];
  }
}
