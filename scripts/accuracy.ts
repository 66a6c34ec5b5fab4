/**
 * Accuracy of quantized models on real data, in one run: for each model of
 * scripts/accuracy_cases.ts, calibrate on real samples with IFMR, HFMG and min/max, and on seeded
 * random inputs (the `record --calibrate` baseline, IFMR), then measure the float, fake-quant and
 * deploy nets on other real samples. Prints one Markdown table per model (the README's tables).
 *
 *   npx deno run -A scripts/accuracy.ts [--json] [model...]
 *
 * @module
 */

import type { AccuracyReport, NetAccuracy } from "../src/engine/evaluate.ts";
import { formatMetric } from "../src/engine/metrics.ts";
import { CASES, loadCase, type Method, METHOD_NAMES, METHODS, runCase } from "./accuracy_cases.ts";

/** One output's figures of one net as a table cell. */
function cell(figures: NetAccuracy, float: NetAccuracy, net: "float" | "other"): string {
  const parts: string[] = [];
  if (figures.top1Accuracy !== undefined) {
    parts.push(`top-1 ${(figures.top1Accuracy * 100).toFixed(2)}%`);
  }
  if (net === "other" && figures.top1Agreement !== undefined) {
    parts.push(`agree ${formatMetric(figures.top1Agreement, "fraction")}`);
  }
  if (figures.confident !== undefined) {
    parts.push(
      net === "float"
        ? `${figures.confident} confident`
        : `${figures.confidentKept}/${float.confident} kept (${
          formatMetric(figures.confidentAgreement, "fraction")
        } agree)`,
    );
  }
  if (net === "other") parts.push(`rel L2 ${formatMetric(figures.relativeL2, "error")}`);
  return parts.join(", ") || "—";
}

/** The Markdown table of one model. */
function table(reports: Map<Method, AccuracyReport>): string {
  const first = reports.get("ifmr")!;
  // Outputs no quantization changes (e.g. SSD's prior boxes) are left out.
  const shown = first.outputs.map((_, i) =>
    [...reports.values()].some((report) => report.outputs[i].nets.deploy.relativeL2 !== 0)
  );
  const blobs = first.outputs.filter((_, i) => shown[i]).map((output) => output.blob);
  const lines = [
    `| record | net | ${blobs.map((blob) => `\`${blob}\``).join(" | ")} |`,
    `| --- | --- | ${blobs.map(() => "---").join(" | ")} |`,
    `| — | float | ${
      first.outputs.filter((_, i) => shown[i])
        .map((output) => cell(output.nets.float, output.nets.float, "float")).join(" | ")
    } |`,
  ];
  for (const [method, report] of reports) {
    for (const net of ["fakeQuant", "deploy"] as const) {
      const cells = report.outputs.filter((_, i) => shown[i]).map((output) =>
        cell(output.nets[net], output.nets.float, "other")
      );
      lines.push(
        `| ${METHOD_NAMES[method]} | ${net === "deploy" ? "deploy" : "fake-quant"} | ${
          cells.join(" | ")
        } |`,
      );
    }
  }
  return lines.join("\n");
}

const json = Deno.args.includes("--json");
const chosen = Deno.args.filter((arg) => !arg.startsWith("--"));
const results: Record<string, Record<string, AccuracyReport>> = {};
for (const entry of CASES) {
  if (chosen.length > 0 && !chosen.includes(entry.model)) continue;
  const loaded = await loadCase(entry);
  const data = await entry.samples(loaded.net);
  const reports = new Map<Method, AccuracyReport>();
  for (const method of METHODS) {
    const started = performance.now();
    reports.set(method, await runCase(loaded, data, method));
    console.error(
      `${entry.model} ${method}: ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  }
  results[entry.model] = Object.fromEntries(reports);
  if (!json) {
    console.log(`### ${entry.model}\n`);
    console.log(
      `Preprocessing: ${entry.preprocessing}. Calibration: ${entry.calibrationText}. ` +
        `Evaluation: ${entry.evaluationText}.\n`,
    );
    console.log(table(reports) + "\n");
  }
}
if (json) console.log(JSON.stringify(results, null, 2));
