/**
 * The page's conversion worker: runs `convert` off the main thread, reports progress, and
 * sends back the five outputs and a per-layer summary of what was fused and quantized.
 *
 * @module
 */

/// <reference lib="webworker" />

import { convert, ConvertError, loadNet } from "../core.ts";
import { formatFloat32 } from "../src/proto/text_numbers.ts";
import { readRecord } from "../src/quant/record.ts";
import type { ConvertReport } from "../src/quant/convert.ts";
import type { ConvertRequest, LayerRow, WorkerMessage } from "./messages.ts";

const scope = self as unknown as DedicatedWorkerGlobalScope;

function post(message: WorkerMessage, transfer: Transferable[] = []): void {
  scope.postMessage(message, transfer);
}

scope.onmessage = async ({ data }: MessageEvent<ConvertRequest>) => {
  try {
    const input = { model: data.model, weights: new Uint8Array(data.weights), record: data.record };
    const { files, report } = await convert({
      ...input,
      files: data.names,
      onProgress: (stage, done, total) => post({ type: "progress", stage, done, total }),
    });
    const layers = layerRows(input, report);
    const buffers = new Set<Transferable>([files.fakeQuantWeights.buffer as ArrayBuffer]);
    buffers.add(files.deployWeights.buffer as ArrayBuffer);
    for (const row of layers) {
      if (row.factors) buffers.add(row.factors.scaleW.buffer as ArrayBuffer);
    }
    post({ type: "done", files, report, layers }, [...buffers]);
  } catch (error) {
    post({
      type: "error",
      error: error instanceof ConvertError
        ? { ...error.toJSON(), code: error.code, message: error.message, formatted: error.format() }
        : { code: "INTERNAL", message: String((error as Error)?.stack ?? error) },
    });
  }
};

/**
 * The layers the conversion fused or quantized, in net order, with the record's factors. The
 * record is read again against the float net only to show its values; the conversion itself
 * already checked it.
 */
function layerRows(
  input: { model: string; weights: Uint8Array; record: string },
  report: ConvertReport,
): LayerRow[] {
  const net = loadNet(input.model, input.weights);
  const record = readRecord(input.record, net);
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
