/**
 * The page's conversion worker: runs `convert` off the main thread (or, given calibration
 * images instead of a record, `quantize`: read the images, calibrate, convert), reports
 * progress, and sends back the five outputs, the record made, and a per-layer summary of what
 * was fused and quantized.
 *
 * @module
 */

/// <reference lib="webworker" />

import {
  type ConvertedBlobs,
  ConvertError,
  type ConvertReport,
  convertToBlobs,
  defaultCalibrationConfig,
  loadNet,
  quantize,
  rangeWarnings,
  type Sample,
} from "../core.ts";
import { readSamples } from "../src/data/samples.ts";
import { formatFloat32 } from "../src/proto/text_numbers.ts";
import { readRecord } from "../src/quant/record.ts";
import { readPrototxt } from "../src/caffe/prototxt.ts";
import type {
  Calibration,
  CalibrationSummary,
  ConvertRequest,
  LayerRow,
  WorkerMessage,
} from "./messages.ts";

const scope = self as unknown as DedicatedWorkerGlobalScope;

function post(message: WorkerMessage, transfer: Transferable[] = []): void {
  scope.postMessage(message, transfer);
}

scope.onmessage = async ({ data }: MessageEvent<ConvertRequest>) => {
  try {
    const model = data.model;
    let result: { files: ConvertedBlobs; report: ConvertReport };
    let calibration: CalibrationSummary | undefined;
    if (typeof data.record === "string") {
      result = await convertToBlobs({
        model,
        weights: data.weights,
        record: data.record,
        files: data.names,
        onProgress: (stage, done, total) => post({ type: "progress", stage, done, total }),
      });
    } else {
      const weights = new Uint8Array(await data.weights.arrayBuffer());
      ({ result, calibration } = await calibrateAndConvert(model, weights, data.record, data));
    }
    const { files, report } = result;
    const record = typeof data.record === "string" ? data.record : calibration!.record;
    const layers = layerRows(model, record, data.names.model, report);
    const buffers = new Set<Transferable>();
    for (const row of layers) {
      if (row.factors) buffers.add(row.factors.scaleW.buffer as ArrayBuffer);
    }
    post({ type: "done", files, report, layers, calibration }, [...buffers]);
  } catch (error) {
    post({
      type: "error",
      error: error instanceof ConvertError
        ? { ...error.toJSON(), code: error.code, message: error.message, formatted: error.format() }
        : { code: "INTERNAL", message: String((error as Error)?.stack ?? error) },
    });
  }
};

/** Reads the images, calibrates the model on them, and converts it with the record made. */
async function calibrateAndConvert(
  model: string,
  weights: Uint8Array,
  { images, transform, algorithm }: Calibration,
  { names }: ConvertRequest,
): Promise<{
  result: { files: ConvertedBlobs; report: ConvertReport };
  calibration: CalibrationSummary;
}> {
  const net = loadNet(model, weights, names);
  const samples: Sample[] = [];
  for await (const sample of readSamples(net, images, { transform })) {
    samples.push(sample.inputs);
    post({ type: "progress", stage: "read", done: samples.length, total: images.length });
  }
  const output = await quantize({
    model,
    weights,
    calibration: samples,
    config: defaultCalibrationConfig(net, { activation: { algorithm } }),
    files: names,
    onProgress: (progress) => {
      if (progress.step === "calibrate") {
        const { samples: done, totalSamples } = progress.calibration;
        post({ type: "progress", stage: "calibrate", done, total: totalSamples ?? done });
      } else if (progress.step === "convert") {
        post({
          type: "progress",
          stage: progress.stage,
          done: progress.done,
          total: progress.total,
        });
      }
    },
  });
  const { calibration, files, report } = output;
  const text = (content: string) => new Blob([content], { type: "text/plain" });
  const bytes = (content: Uint8Array) =>
    new Blob([content as BlobPart], { type: "application/octet-stream" });
  return {
    result: {
      files: {
        fakeQuantModel: text(files.fakeQuantModel),
        fakeQuantWeights: bytes(files.fakeQuantWeights),
        deployModel: text(files.deployModel),
        deployWeights: bytes(files.deployWeights),
        quantInfo: text(files.quantInfo),
      },
      report,
    },
    calibration: {
      record: output.record,
      samples: calibration.samples,
      layers: calibration.layers,
      warnings: [
        ...calibration.warnings,
        ...rangeWarnings(net, calibration.layers).map((w) => `layer ${w.layer}: ${w.message}`),
      ],
    },
  };
}

/**
 * The layers the conversion fused or quantized, in net order, with the record's factors. The
 * record is read again against the float net's structure (its prototxt, no weights) only to show
 * its values; the conversion itself already checked it.
 */
function layerRows(
  model: string,
  recordText: string,
  modelFile: string,
  report: ConvertReport,
): LayerRow[] {
  const net = readPrototxt(model, modelFile);
  const record = readRecord(recordText, net);
  const quantized = new Set(report.quantizedLayers);
  const fused = new Map(report.fusedComposites.map((c) => [c.layer, [c.batchNorm, c.scale]]));
  const sharedQuant = new Map(
    report.sharedQuantLayers.flatMap(({ name, consumers }) => consumers.map((c) => [c, name])),
  );
  return net.layers
    .filter((layer) => quantized.has(layer.name) || fused.has(layer.name))
    .map((layer): LayerRow => {
      const factors = quantized.has(layer.name) ? record.get(layer.name)?.factors : undefined;
      return {
        name: layer.name,
        type: layer.type,
        fusedWith: fused.get(layer.name) ?? [],
        sharedQuant: sharedQuant.get(layer.name),
        factors: factors && {
          scaleD: formatFloat32(factors.scaleD),
          offsetD: factors.offsetD,
          scaleW: factors.scaleW.slice(),
        },
      };
    });
}
