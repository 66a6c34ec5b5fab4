/**
 * caffe-quant: quantize Caffe models to INT8 for Huawei Ascend NPUs, exactly as AMCT's
 * `convert_model` does, in TypeScript and WebAssembly. This entry adds file access (Deno, Node)
 * to the in-memory API of `core.ts`.
 *
 * Documentation (formats, arithmetic, layer wiring, error codes, calibration): docs/README.md.
 *
 * @example
 * ```ts ignore
 * import { convertModel } from "./mod.ts";
 * const report = await convertModel({
 *   modelFile: "deploy.prototxt",
 *   weightsFile: "weights.caffemodel",
 *   recordFile: "record.txt",
 *   savePath: "out/resnet50",
 * });
 * console.log(report.outputs.deployModel);
 * ```
 *
 * @module
 */

export * from "./core.ts";
// Node has no Web Workers: this registers `node:worker_threads` for the engine pool.
import "./src/io/node_workers.ts";
export {
  convertModel,
  type ConvertModelOptions,
  type ConvertModelReport,
} from "./src/io/convert_model.ts";
export { type RowsItem, sampleFiles, type SampleFilesOptions } from "./src/io/sample_files.ts";
export {
  quantizeModel,
  type QuantizeModelOptions,
  type QuantizeModelResult,
} from "./src/io/quantize_model.ts";
import { convertModel, type ConvertModelReport } from "./src/io/convert_model.ts";

/**
 * AMCT's `convert_model` with its argument order: converts `model_file` + `weights_file` with
 * the factors of `scale_offset_record_file` and writes the five outputs at `save_path`
 * (`<dir>/<prefix>`).
 */
export function convert_model(
  model_file: string,
  weights_file: string,
  scale_offset_record_file: string,
  save_path: string,
): Promise<ConvertModelReport> {
  return convertModel({
    modelFile: model_file,
    weightsFile: weights_file,
    recordFile: scale_offset_record_file,
    savePath: save_path,
  });
}
