/**
 * What `caffe-quant convert --compare` measures and prints: the float, fake-quant and deploy
 * nets run on the same samples. Loaded only with `--compare`.
 *
 * @module
 */

import { printable } from "../printable.ts";
import { compareNets, type LayerSensitivity, type OutputMetrics } from "../engine/compare.ts";
import { failedChecks, formatMetric, type Thresholds } from "../engine/metrics.ts";
import { outputVerdict } from "../engine/report.ts";
import type { Net } from "../caffe/net.ts";
import type { Tensor } from "../engine/tensor.ts";
import type { ConvertModelReport } from "../io/convert_model.ts";
import { loadModelFiles } from "./common.ts";

/** What `convert --compare` measured. */
export interface ConversionAccuracy {
  /** Samples run. */
  samples: number;
  /** The data: `generated` (seeded uniform [-1, 1) inputs) or what the data options named. */
  data: string;
  /** Seed of the first generated sample. */
  seed: number;
  /** The thresholds of the verdicts and flags. */
  thresholds: Thresholds;
  /** Each float net output against the fake-quant net's (free-running), with its verdict. */
  fakeQuant: OutputMetrics[];
  /** Each float net output against the deploy net's (free-running), with its verdict. */
  deploy: OutputMetrics[];
  /** Each quantized layer alone (see `layerSensitivity`), in net order. */
  sensitivity: LayerSensitivity[];
  /** The quantized layers that fail a threshold alone, with the failed checks. */
  flaggedLayers: { layer: string; failed: string[] }[];
  /**
   * Fake-quant against deploy layer by layer, in lockstep (each deploy layer reads what the
   * fake-quant layer read): the layer where they differ most and its relative L2 error. The two
   * models should say the same thing, up to float rounding.
   */
  deployVsFake: { layer: string; relativeL2: number };
}

/**
 * Runs the float, fake-quant and deploy nets on the given samples (one at a time) or on
 * `generated` seeded inputs, and compares them.
 */
export async function conversionAccuracy(
  float: Net,
  report: ConvertModelReport,
  data: { inputs: Map<string, Tensor>[]; description: string } | { generated: number },
  thresholds: Thresholds,
): Promise<ConversionAccuracy> {
  const [fake, deploy] = await Promise.all([
    loadModelFiles(report.outputs.fakeQuantModel, report.outputs.fakeQuantWeights),
    loadModelFiles(report.outputs.deployModel, report.outputs.deployWeights),
  ]);
  const options = "inputs" in data
    ? { inputs: data.inputs, samples: data.inputs.length, seed: 0, thresholds }
    : { samples: data.generated, seed: 0, thresholds };
  const floatVsFake = await compareNets(float, fake, options);
  const floatVsDeploy = await compareNets(float, deploy, { ...options, sensitivity: false });
  const fakeVsDeploy = await compareNets(fake, deploy, { ...options, lockstep: true });
  const worst = fakeVsDeploy.rows
    .filter((row) => row.note === undefined)
    .reduce((a, b) => (b.relativeL2 > a.relativeL2 ? b : a), { layer: "", relativeL2: 0 });
  const flaggedLayers = floatVsFake.sensitivity.flatMap((entry) => {
    const failed = failedChecks(entry, thresholds);
    return failed.length === 0 ? [] : [{ layer: entry.layer, failed }];
  });
  return {
    samples: options.samples,
    data: "inputs" in data ? data.description : "generated",
    seed: options.seed,
    thresholds,
    fakeQuant: floatVsFake.outputs,
    deploy: floatVsDeploy.outputs,
    sensitivity: floatVsFake.sensitivity,
    flaggedLayers,
    deployVsFake: { layer: worst.layer, relativeL2: worst.relativeL2 },
  };
}

/** The most sensitive layers named in the summary. */
const SENSITIVE_SHOWN = 3;

/** The accuracy figures as a few lines: a verdict per output and net, the layers that hurt. */
export function formatAccuracy(accuracy: ConversionAccuracy): string {
  const lines = [
    accuracy.data === "generated"
      ? `accuracy on ${accuracy.samples} generated input(s) (uniform in [-1, 1), seed ` +
        `${accuracy.seed}; not your data: pass --data), against the float net:`
      : `accuracy on ${accuracy.samples} sample(s) of ${accuracy.data}, against the float net:`,
    ...accuracy.fakeQuant.map((output) => `  fake-quant  ${outputVerdict(output)}`),
    ...accuracy.deploy.map((output) => `  deploy      ${outputVerdict(output)}`),
  ];
  const ranked = [...accuracy.sensitivity]
    .sort((x, y) => errorRank(y.relativeL2) - errorRank(x.relativeL2))
    .slice(0, SENSITIVE_SHOWN)
    .map((entry) =>
      `${entry.layer} rel L2 ${formatMetric(entry.relativeL2, "error")} (${
        formatMetric(entry.sqnr, "db")
      })`
    );
  if (ranked.length > 0) {
    lines.push(`most sensitive layers alone: ${ranked.join(", ")}`);
  }
  lines.push(
    accuracy.flaggedLayers.length === 0
      ? "flagged layers: none"
      : `flagged layers (alone): ${
        accuracy.flaggedLayers.map(({ layer, failed }) => `${layer} (${failed.join(", ")})`)
          .join("; ")
      }`,
  );
  const { layer, relativeL2 } = accuracy.deployVsFake;
  lines.push(
    `fake-quant vs deploy, layer by layer (lockstep): worst relative L2 ` +
      `${relativeL2.toExponential(1)}${layer ? ` at ${layer}` : ""}`,
  );
  return lines.map((line) => printable(line)).join("\n") + "\n";
}

/** A relative L2 error for sorting: NaN ranks worst. */
function errorRank(value: number): number {
  return Number.isNaN(value) ? Infinity : value;
}
