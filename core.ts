/**
 * caffe-quant's in-memory API: no file system, so it runs in browsers, Web Workers and edge
 * functions as well as in Deno and Node. `mod.ts` re-exports all of it and adds file access.
 *
 * Documentation (formats, arithmetic, layer wiring, error codes, calibration): docs/README.md.
 *
 * @example
 * ```ts ignore
 * import { convert } from "./core.ts";
 * const { files, report } = await convert({ model: prototxtText, weights: caffemodelBytes, record: recordText });
 * console.log(report.quantizedLayers, files.deployModel);
 * ```
 *
 * @module
 */

export { ConvertError, ERROR_CODES, type ErrorCode, type ErrorPlace } from "./src/errors.ts";
export type { BinaryInput } from "./src/arguments.ts";
export {
  type ConvertBlobsInput,
  type ConvertBlobsOutput,
  type ConvertedBlobs,
  type ConvertedFiles,
  convertInMemory as convert,
  type ConvertInput,
  type ConvertOutput,
  type ConvertReport,
  convertToBlobs,
  type InputFiles,
  type ProgressCallback,
} from "./src/quant/convert.ts";
export type { FusedComposite } from "./src/quant/fuse.ts";
export {
  type ActivationRange,
  makeRecord,
  type MakeRecordOptions,
} from "./src/quant/make_record.ts";
export { type FieldValue, type Scalar, type TextField, TextMessage } from "./src/proto/tree.ts";
export {
  type InspectFacts,
  inspectNet,
  type LayerSummary,
  type NetSummary,
} from "./src/caffe/inspect.ts";
export { describeNet } from "./src/engine/describe.ts";
export { loadNet, type ModelFiles } from "./src/caffe/model.ts";
export { printPrototxt, readPrototxt } from "./src/caffe/prototxt.ts";
export {
  type CaffemodelReadOptions,
  readBlobProto,
  readCaffemodel,
} from "./src/caffe/caffemodel_read.ts";
export { writeCaffemodel } from "./src/caffe/caffemodel_write.ts";
export {
  type Blob,
  type BlobData,
  Layer,
  type Net,
  type NetInput,
  netInputs,
  netOutputs,
} from "./src/caffe/net.ts";
export { outputNames, type OutputPaths, recordName } from "./src/output_names.ts";
export { crc32, type ZipEntry, zipStore } from "./src/zip.ts";
export {
  canResume,
  type RunCheckpoint,
  runNet,
  type RunOptions,
  type RunResult,
  type SkippedLayer,
  type Tensor,
  type ValueKind,
} from "./src/engine/run.ts";
export {
  type BlobComparison,
  compareNets,
  type CompareOptions,
  type CompareReport,
  type LayerSensitivity,
  layerSensitivity,
  type OutputMetrics,
  type OutputTask,
} from "./src/engine/compare.ts";
export {
  type CompareLabels,
  compareReportHtml,
  formatCompareTable,
  outputVerdict,
} from "./src/engine/report.ts";
export {
  addAgreement,
  type AgreementTotals,
  type ClassLayout,
  confidentAgreement,
  cosineOf,
  DEFAULT_THRESHOLDS,
  emptyTotals,
  failedChecks,
  formatMetric,
  type JudgedMetrics,
  psnrDb,
  relativeL2Of,
  sqnrDb,
  type Thresholds,
  topKAgreement,
  topKCorrect,
} from "./src/engine/metrics.ts";
export type { Agreement } from "./src/wasm/engine.ts";
export { type CalibrationOptions, observeActivationRanges } from "./src/engine/calibrate.ts";
export {
  calibrate,
  type CalibrateOptions,
  type CalibrationProgress,
  type CalibrationResult,
  DEFAULT_MEMORY_BUDGET,
  type LayerCalibrationStats,
  type Sample,
  type SampleSource,
} from "./src/calibrate/calibrate.ts";
export {
  type CalibrationConfig,
  defaultCalibrationConfig,
  type DefaultConfigOptions,
  type LayerCalibration,
  quantizableLayers,
} from "./src/calibrate/config.ts";
export { readQuantConfig } from "./src/calibrate/config_read.ts";
export {
  readJsonConfig,
  type WriteConfigOptions,
  writeJsonConfig,
} from "./src/calibrate/config_json.ts";
export { readTextConfig } from "./src/calibrate/config_text.ts";
export {
  type ActivationAlgorithm,
  type ActivationSettings,
  DEFAULT_ACTIVATION_SETTINGS,
} from "./src/calibrate/activation.ts";
export { npyFileName, readNpy, writeNpy } from "./src/io/npy.ts";
export {
  type DataSample,
  type EncodedItem,
  readSamples,
  type ReadSamplesOptions,
  type SampleItem,
  splitSamples,
} from "./src/data/samples.ts";
export { decodeImage, isImage } from "./src/data/decode.ts";
export { imageTensor, type Transform } from "./src/data/transform.ts";
export { type ListEntry, parseImageList } from "./src/data/list.ts";
export { type DataLayerSettings, dataLayerSettings } from "./src/data/transform_param.ts";
export {
  type Image8,
  type ImageKernels,
  imageKernels,
  type NormalizeArgs,
} from "./src/wasm/image.ts";
export {
  quantize,
  type QuantizeInput,
  type QuantizeOutput,
  type QuantizeProgress,
} from "./src/pipeline/quantize.ts";
export {
  agreementEvaluator,
  autoCalibrate,
  type AutoCalibrateInput,
  type AutoCalibrateProgress,
  type AutoCalibrateResult,
  cosineEvaluator,
  type Evaluator,
  type EvaluatorOptions,
  type SearchStep,
  top1Evaluator,
} from "./src/pipeline/auto_calibrate.ts";
export {
  type ReuseCounts,
  type ReuseOptions,
  ReusingRunner,
  sharedLayers,
} from "./src/engine/reuse.ts";
export {
  type AccuracyReport,
  evaluateAccuracy,
  type EvaluatedNet,
  type EvaluatedNets,
  type EvaluatedOutput,
  type EvaluateOptions,
  type EvaluationSample,
  type NetAccuracy,
} from "./src/engine/evaluate.ts";
export { formatAccuracyTable } from "./src/engine/accuracy_table.ts";
export { EnginePool, type EnginePoolOptions, type SampleInputs } from "./src/engine/engine_pool.ts";
export { defaultThreads } from "./src/engine/worker_starter.ts";
export {
  type EngineBuild,
  engineBuild,
  relaxedSimdSupported,
  useEngineBuild,
} from "./src/wasm/engine_build.ts";
export { type RangeWarning, rangeWarnings } from "./src/calibrate/range_checks.ts";
