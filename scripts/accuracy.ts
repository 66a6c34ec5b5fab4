/**
 * Accuracy of quantized models on real data, in one run: for each model of
 * scripts/accuracy_cases.ts, calibrate on real samples with IFMR, HFMG, min/max and the search, and on seeded
 * random inputs (the `record --calibrate` baseline, IFMR), then measure the float, fake-quant and
 * deploy nets on other real samples. Prints one Markdown table per model (the README's tables).
 *
 *   npx deno run -A scripts/accuracy.ts [--json] [--methods=ifmr,minmax,search] [model...]
 *
 * Last comes the comparison of the search (`--algo search`) with IFMR and min/max.
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

/** The deploy net's mean relative L2 over the outputs a record changes. */
function outputError(report: AccuracyReport): number {
  const changed = report.outputs.filter((output) => output.nets.deploy.relativeL2 !== 0);
  return changed.reduce((sum, output) => sum + output.nets.deploy.relativeL2, 0) / changed.length;
}

/** The deploy net's detections kept and top-1 agreement, as text. */
function keptText(report: AccuracyReport): string {
  return report.outputs.flatMap((output) => {
    const { deploy, float } = output.nets;
    if (deploy.confidentKept !== undefined) {
      return [`${deploy.confidentKept}/${float.confident} kept`];
    }
    if (deploy.top1Agreement !== undefined) {
      return [`agree ${formatMetric(deploy.top1Agreement, "fraction")}`];
    }
    return [];
  }).join(", ");
}

/**
 * The search against IFMR and min/max: per model, the deploy net's output error (mean relative L2
 * over its changed outputs), detections kept / top-1 agreement, and the search's change against
 * IFMR; then the mean change.
 */
function comparison(results: Record<string, Record<string, AccuracyReport>>): string {
  const methods: Method[] = ["ifmr", "minmax", "search"];
  const lines = [
    `| model | ${methods.map((m) => `${METHOD_NAMES[m]} error`).join(" | ")} | search vs IFMR | ${
      methods.map((m) => `${METHOD_NAMES[m]} kept / agreement`).join(" | ")
    } |`,
    `| --- | ${methods.map(() => "---").join(" | ")} | --- | ${
      methods.map(() => "---").join(" | ")
    } |`,
  ];
  const changes: number[] = [];
  for (const [model, reports] of Object.entries(results)) {
    if (!methods.every((method) => reports[method] !== undefined)) continue;
    const errors = methods.map((method) => outputError(reports[method]));
    const change = errors[2] / errors[0] - 1;
    changes.push(change);
    lines.push(
      `| ${model} | ${errors.map((error) => formatMetric(error, "error")).join(" | ")} | ${
        (change * 100).toFixed(1)
      } % | ${methods.map((method) => keptText(reports[method])).join(" | ")} |`,
    );
  }
  const mean = changes.reduce((a, b) => a + b, 0) / changes.length;
  lines.push(`\nMean change of the output error, search vs IFMR: ${(mean * 100).toFixed(1)} %.`);
  return lines.join("\n");
}

const json = Deno.args.includes("--json");
const methodsArg = Deno.args.find((arg) => arg.startsWith("--methods="));
const methods = methodsArg === undefined
  ? METHODS
  : methodsArg.slice("--methods=".length).split(",") as Method[];
const chosen = Deno.args.filter((arg) => !arg.startsWith("--"));
const results: Record<string, Record<string, AccuracyReport>> = {};
for (const entry of CASES) {
  if (chosen.length > 0 && !chosen.includes(entry.model)) continue;
  const loaded = await loadCase(entry);
  const data = await entry.samples(loaded.net);
  const reports = new Map<Method, AccuracyReport>();
  for (const method of methods) {
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
else console.log(`### Search against IFMR and min/max\n\n${comparison(results)}`);
