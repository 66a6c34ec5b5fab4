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

import { ConvertError } from "../../src/errors.ts";
import { convertInMemory } from "../../src/quant/convert.ts";
import { convertModel } from "../../src/io/convert_model.ts";
import type { CaseFiles } from "./corpus.ts";

/** A case slower than this (ms) is a finding. */
export const SLOW_MS = 2000;
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

const NAMES = { model: "fuzz.prototxt", weights: "fuzz.caffemodel", record: "fuzz_record.txt" };

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
}

/** Converts `files` (in memory unless `onDisk`) and judges the outcome. */
export async function runCase(
  files: CaseFiles,
  options: RunCaseOptions = {},
): Promise<CaseOutcome> {
  const { onDisk = false, measureHeld = false } = options;
  const inputBytes = files.model.length + files.weights.length + files.record.length;
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
    if (onDisk) {
      for (const [key, name] of Object.entries(NAMES)) {
        Deno.writeFileSync(`${dir}/${name}`, files[key as keyof CaseFiles]);
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
  const ms = performance.now() - started;
  let growth = Deno.memoryUsage().external - externalBefore;
  if (measureHeld) {
    // From a fresh task, so no stale stack slot keeps garbage alive through the collection.
    await new Promise((resolve) => setTimeout(resolve, 0));
    collectGarbage("major");
    growth = Math.max(growth, heldBytes() - heldBefore);
  }
  const memoryRatio = MEASURES_MEMORY ? (growth - MEMORY_ALLOWANCE) / Math.max(1, inputBytes) : 0;
  void outputs;
  if (onDisk) {
    if (result !== "converted" && finding === undefined) {
      const left = leftFiles(`${dir}/out`);
      if (left.length > 0) [finding, detail] = ["left-files", `${result} but left ${left}`];
    }
    Deno.removeSync(dir, { recursive: true });
  }
  if (finding === undefined && ms > SLOW_MS) [finding, detail] = ["slow", `${ms.toFixed(0)} ms`];
  if (finding === undefined && memoryRatio > MEMORY_FACTOR) {
    [finding, detail] = ["memory", `grew ${memoryRatio.toFixed(1)}× the input`];
  }
  return { result, finding, detail, ms, memoryRatio };
}

function leftFiles(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((entry) => entry.name);
  } catch {
    return [];
  }
}
