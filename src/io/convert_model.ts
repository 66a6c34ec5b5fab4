/**
 * `convert_model` on files: read the three inputs, convert in memory, write the five outputs
 * all-or-nothing (docs/formats.md). The input caffemodel's large weight blobs stay in its file
 * and are read as the kernels and writers stream them (src/io/caffemodel_file.ts); the output
 * caffemodels are streamed to their files in bounded pieces, their quantized weights computed as
 * they go, so neither the input weights nor any output is ever held whole.
 *
 * @module
 */

import { caffemodelPieces } from "../caffe/caffemodel_write.ts";
import { type ConvertReport, convertToNets } from "../quant/convert.ts";
import { guardProgress, type ProgressCallback } from "../quant/progress.ts";
import { outputNames, type OutputPaths } from "../output_names.ts";
import { join } from "node:path";
import { type CaffemodelFile, openCaffemodel } from "./caffemodel_file.ts";
import {
  type OutputFile,
  readingInputs,
  readInputText,
  refuseOutputPaths,
  writeAllOrNothing,
} from "./files.ts";

/** Options of {@linkcode convertModel}. */
export interface ConvertModelOptions {
  /** The float model, a `.prototxt` path. */
  modelFile: string;
  /** The float weights, a `.caffemodel` path. */
  weightsFile: string;
  /** The quantization record file (`ScaleOffsetRecord` text format). */
  recordFile: string;
  /** `<dir>/<prefix>`; a path ending in `/` means no prefix. `<dir>` is created if missing. */
  savePath: string;
  /**
   * Called as each stage progresses (`stage`, work done, total work); the last call is
   * `("write", 1, 1)`, once every output is written and before they are moved into place. If
   * it throws, or a promise it returns rejects, the conversion stops before anything is moved
   * into place (nothing changes on disk) and rejects with that error; its promises are waited
   * for before the outputs are moved into place.
   */
  onProgress?: ProgressCallback;
}

/** What {@linkcode convertModel} did: the conversion report plus the files written. */
export interface ConvertModelReport extends ConvertReport {
  /** Where each output was written. */
  outputs: OutputPaths;
}

/** Converts the files named in `options` and writes the five outputs (all or none). */
export function convertModel(options: ConvertModelOptions): Promise<ConvertModelReport> {
  return readingInputs(() => convertFiles(options));
}

async function convertFiles(options: ConvertModelOptions): Promise<ConvertModelReport> {
  const { modelFile, weightsFile, recordFile, savePath } = options;
  const { dir, names } = outputNames(savePath);
  await refuseOutputPaths(
    Object.values(names).map((name) => join(dir, name)),
    [modelFile, weightsFile, recordFile],
  );
  const started = performance.now();
  // One after the other, so that of several missing inputs the first is reported.
  const model = await readInputText(modelFile);
  const weights = await openCaffemodel(weightsFile);
  try {
    const record = await readInputText(recordFile);
    return await convertOpened(options, model, weights, record, started);
  } finally {
    await weights.close();
  }
}

/** The conversion once the inputs are read (the caffemodel's large data left in its file). */
async function convertOpened(
  options: ConvertModelOptions,
  model: string,
  weights: CaffemodelFile,
  record: string,
  started: number,
): Promise<ConvertModelReport> {
  const { modelFile, weightsFile, recordFile } = options;
  const { dir, names } = outputNames(options.savePath);
  const progress = guardProgress(options.onProgress);
  const onProgress = progress.report;
  const readMs = performance.now() - started;
  const { fakeQuant, deploy, texts, report } = await convertToNets({
    model,
    weights: weights.bytes,
    record,
    files: { model: modelFile, weights: weightsFile, record: recordFile },
    onProgress,
  }, { loaded: weights.deferBlobs });
  const contents: Record<keyof OutputPaths, OutputFile["content"]> = {
    fakeQuantModel: texts.fakeQuantModel,
    fakeQuantWeights: caffemodelPieces(fakeQuant),
    deployModel: texts.deployModel,
    deployWeights: caffemodelPieces(deploy),
    quantInfo: texts.quantInfo,
  };
  const writeStarted = performance.now();
  const written = await writeAllOrNothing(
    dir,
    (Object.keys(names) as (keyof OutputPaths)[]).map((key) => ({
      name: names[key],
      content: contents[key],
    })),
    {
      beforeCommit: async () => {
        await weights.checkUnchanged();
        onProgress("write", 1, 1);
        await progress.settled();
      },
    },
  );
  const [fakeQuantModel, fakeQuantWeights, deployModel, deployWeights, quantInfo] = written.paths;
  return {
    ...report,
    warnings: [
      ...report.warnings,
      ...written.overwritten.map((path) => `overwrote the existing file ${path}`),
    ],
    timings: { read: readMs, ...report.timings, write: performance.now() - writeStarted },
    outputs: { fakeQuantModel, fakeQuantWeights, deployModel, deployWeights, quantInfo },
  };
}
