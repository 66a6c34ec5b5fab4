/**
 * The text table of an {@linkcode AccuracyReport}: one row per net output and net (float,
 * fake-quant, deploy), with the task metrics that apply and a verdict for the quantized nets.
 *
 * @module
 */

import { printable } from "../printable.ts";
import type { AccuracyReport, EvaluatedNet, NetAccuracy } from "./evaluate.ts";
import { formatMetric } from "./metrics.ts";

const NET_NAMES: Record<EvaluatedNet, string> = {
  float: "float",
  fakeQuant: "fake-quant",
  deploy: "deploy",
};

/** The detector cell: confident positions (float) or those kept of the float net's. */
function confidentCell(figures: NetAccuracy, float: NetAccuracy, net: EvaluatedNet): string {
  if (figures.confident === undefined) return "";
  if (net === "float") return `${figures.confident}`;
  return `${figures.confidentKept}/${float.confident} kept, ${
    formatMetric(figures.confidentAgreement, "fraction")
  } agree`;
}

/**
 * The report as aligned text: a heading with the sample counts, then per output and net the
 * top-1 accuracy (labelled classifiers), the top-1 agreement with the float net (classifiers),
 * the confident positions (detectors: score > 0.5), cosine and relative L2 error against the
 * float net, and PASS/FAIL with the failed checks.
 */
export function formatAccuracyTable(report: AccuracyReport): string {
  const labelled = report.labelled > 0 ? `, ${report.labelled} labelled` : "";
  const header = [
    "output",
    "net",
    "top-1",
    "top-1 agree",
    "confident (>0.5)",
    "cosine",
    "rel L2",
    "",
  ];
  const rows = [header];
  for (const output of report.outputs) {
    const float = output.nets.float;
    for (const net of ["float", "fakeQuant", "deploy"] as EvaluatedNet[]) {
      const figures = output.nets[net];
      rows.push([
        net === "float" ? `${output.blob} (${output.task})` : "",
        NET_NAMES[net],
        formatMetric(figures.top1Accuracy, "fraction"),
        net === "float" ? "" : formatMetric(figures.top1Agreement, "fraction"),
        confidentCell(figures, float, net),
        net === "float" ? "" : formatMetric(figures.cosine, "cosine"),
        net === "float" ? "" : formatMetric(figures.relativeL2, "error"),
        net === "float"
          ? ""
          : figures.failed.length === 0
          ? "PASS"
          : `FAIL (${figures.failed.join("; ")})`,
      ]);
    }
  }
  const used = header.map((_, column) =>
    column < 2 || rows.slice(1).some((row) => row[column] !== "")
  );
  const kept = rows.map((row) => row.filter((_, column) => used[column]));
  const widths = kept[0].map((_, column) => Math.max(...kept.map((row) => row[column].length)));
  const lines = kept.map((row) =>
    "  " + row.map((cell, column) => cell.padEnd(widths[column])).join("  ").trimEnd()
  );
  return `accuracy on ${report.samples} evaluation samples${labelled} ` +
    `(against the float net; verdict thresholds: cosine >= ${report.thresholds.minCosine}, ` +
    `rel L2 <= ${report.thresholds.maxRelativeL2}, top-1 agreement >= ` +
    `${formatMetric(report.thresholds.minTop1, "fraction")}):\n` +
    `${lines.map((line) => printable(line)).join("\n")}\n`;
}
