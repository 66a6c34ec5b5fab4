/**
 * AMCT's post-training flow on files: read the float model, calibrate, convert, evaluate (see
 * src/pipeline/quantize.ts), then write the record beside the five outputs, all six or none.
 *
 * @module
 */

import { join } from "node:path";
import { outputNames, type OutputPaths, recordName } from "../output_names.ts";
import { quantize, type QuantizeInput, type QuantizeOutput } from "../pipeline/quantize.ts";
import {
  readingInputs,
  readInput,
  readInputText,
  refuseOutputPaths,
  writeAllOrNothing,
} from "./files.ts";

/** Options of {@linkcode quantizeModel}. */
export interface QuantizeModelOptions extends Omit<QuantizeInput, "model" | "weights" | "files"> {
  /** The float model, a `.prototxt` path. */
  modelFile: string;
  /** The float weights, a `.caffemodel` path. */
  weightsFile: string;
  /** `<dir>/<prefix>`, as `convertModel`'s; the record goes to `<dir>/<prefix>_record.txt`. */
  savePath: string;
}

/** What {@linkcode quantizeModel} did: the in-memory result plus the files written. */
export interface QuantizeModelResult extends QuantizeOutput {
  /** Where each of the five outputs was written. */
  outputs: OutputPaths;
  /** Where the record was written. */
  recordFile: string;
  /** Existing files that were replaced. */
  overwritten: string[];
}

/**
 * Calibrates the model of `modelFile` + `weightsFile` on `options.calibration`, converts it,
 * measures it on `options.evaluation` (when given), and writes the record and the five outputs
 * at `savePath` (all or none; no input is ever overwritten, and nothing is written on error).
 *
 * @example
 * ```ts ignore
 * const result = await quantizeModel({
 *   modelFile: "deploy.prototxt",
 *   weightsFile: "weights.caffemodel",
 *   savePath: "out/lenet",
 *   calibration: calibrationSamples, // Map<input blob, tensor> each
 *   evaluation: testSamples, // { inputs, label? } each
 * });
 * console.log(result.recordFile, result.accuracy?.outputs);
 * ```
 */
export function quantizeModel(options: QuantizeModelOptions): Promise<QuantizeModelResult> {
  return readingInputs(() => quantizeFiles(options));
}

/** {@linkcode quantizeModel} inside its input notes. */
async function quantizeFiles(options: QuantizeModelOptions): Promise<QuantizeModelResult> {
  const { modelFile, weightsFile, savePath, ...rest } = options;
  const { dir, names } = outputNames(savePath);
  const files = [
    { key: "record", name: recordName(savePath) },
    ...(Object.keys(names) as (keyof OutputPaths)[]).map((key) => ({ key, name: names[key] })),
  ];
  await refuseOutputPaths(files.map((file) => join(dir, file.name)), [modelFile, weightsFile]);
  const model = await readInputText(modelFile);
  const weights = await readInput(weightsFile);
  const result = await quantize({
    ...rest,
    model,
    weights,
    files: { model: modelFile, weights: weightsFile },
  });
  const contents: Record<string, string | Uint8Array> = { record: result.record, ...result.files };
  const written = await writeAllOrNothing(
    dir,
    files.map(({ key, name }) => ({ name, content: contents[key] })),
  );
  const [recordFile, fakeQuantModel, fakeQuantWeights, deployModel, deployWeights, quantInfo] =
    written.paths;
  return {
    ...result,
    outputs: { fakeQuantModel, fakeQuantWeights, deployModel, deployWeights, quantInfo },
    recordFile,
    overwritten: written.overwritten,
  };
}
