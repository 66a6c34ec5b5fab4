/**
 * Human forms of a {@linkcode CompareReport}: a text table and a self-contained HTML page (inline
 * SVG plots of cosine similarity along the net and of each quantized layer's sensitivity, and the
 * tables; no external assets).
 *
 * @module
 */

import { printable } from "../printable.ts";
import type { BlobComparison, CompareReport, LayerSensitivity, OutputMetrics } from "./compare.ts";
import { formatMetric, type Thresholds } from "./metrics.ts";
import { shapeText } from "./tensor.ts";

/** What the two compared nets are, for headings (e.g. their model files). */
export interface CompareLabels {
  /** Net A (the reference). */
  a: string;
  /** Net B. */
  b: string;
  /** Preformatted text sections shown before the comparison (e.g. a search's report). */
  sections?: { heading: string; text: string }[];
}

/** Flagged layers named in the text's "worst:" line before "(+N more)". */
const WORST_SHOWN = 5;

/** The layer cell: name and type, and whether it is a quantized layer's output. */
function layerCell(row: BlobComparison): string {
  return `${row.layer} (${row.type}${row.quantized ? ", int8" : ""})`;
}

/** The cells of one row, in column order. */
function rowCells(row: BlobComparison, index: number): string[] {
  return [
    String(index + 1),
    layerCell(row),
    row.blob,
    shapeText(row.shape),
    formatMetric(row.cosine, "cosine"),
    formatMetric(row.maxAbsError, "error"),
    formatMetric(row.relativeL2, "error"),
    formatMetric(row.sqnr, "db"),
    row.flagged ? "<< " + row.failed.join(", ") : row.note ?? "",
  ];
}

const HEADERS = ["#", "layer", "blob", "shape", "cosine", "max|err|", "rel L2", "SQNR", "flag"];

/** Columns holding numbers (right-aligned). */
const NUMERIC = new Set([4, 5, 6, 7]);

/** The sensitivity rows, most sensitive (highest relative L2) first. */
function rankedSensitivity(report: CompareReport): LayerSensitivity[] {
  return [...report.sensitivity].sort((x, y) =>
    (Number.isNaN(y.relativeL2) ? Infinity : y.relativeL2) -
    (Number.isNaN(x.relativeL2) ? Infinity : x.relativeL2)
  );
}

/** The sensitivity table's headers; the last column only when output effects were measured. */
function sensitivityHeaders(report: CompareReport): string[] {
  const headers = ["rank", "layer", "blob", "cosine", "rel L2", "SQNR"];
  return report.sensitivity.some((entry) => entry.outputs !== undefined)
    ? [...headers, "net outputs' rel L2 (this layer alone)"]
    : headers;
}

/** The cells of one sensitivity row. */
function sensitivityCells(entry: LayerSensitivity, rank: number): string[] {
  const cells = [
    String(rank + 1),
    `${entry.layer} (${entry.type})`,
    entry.blob,
    formatMetric(entry.cosine, "cosine"),
    formatMetric(entry.relativeL2, "error"),
    formatMetric(entry.sqnr, "db"),
  ];
  if (entry.outputs !== undefined) {
    cells.push(
      entry.outputs.map((output) => `${output.blob} ${formatMetric(output.relativeL2, "error")}`)
        .join(", "),
    );
  }
  return cells;
}

/** One output's task metrics as `name value` pairs. */
function outputFigures(output: OutputMetrics): string[] {
  const figures = [
    `cosine ${formatMetric(output.cosine, "cosine")}`,
    `rel L2 ${formatMetric(output.relativeL2, "error")}`,
  ];
  if (output.top1 !== undefined) figures.push(`top-1 ${formatMetric(output.top1, "fraction")}`);
  if (output.top5 !== undefined) figures.push(`top-5 ${formatMetric(output.top5, "fraction")}`);
  if (output.accuracy !== undefined) {
    const { a, b } = output.accuracy;
    figures.push(
      `accuracy top-1 ${formatMetric(a.top1, "fraction")} -> ${formatMetric(b.top1, "fraction")}`,
    );
    if (output.top5 !== undefined) {
      figures.push(
        `top-5 ${formatMetric(a.top5, "fraction")} -> ${formatMetric(b.top5, "fraction")}`,
      );
    }
  }
  if (output.psnr !== undefined) figures.push(`PSNR ${formatMetric(output.psnr, "db")}`);
  if (output.confident !== undefined) {
    figures.push(`confident outputs kept ${formatMetric(output.confident, "fraction")}`);
  }
  return figures;
}

/** The one-line verdict of an output: `PASS`, or `FAIL` with the failed checks. */
export function outputVerdict(output: OutputMetrics): string {
  const verdict = output.failed.length === 0 ? "PASS" : `FAIL (${output.failed.join("; ")})`;
  return `${output.blob} (${output.task}): ${verdict}: ${outputFigures(output).join(", ")}`;
}

/** The thresholds as a phrase. */
function thresholdText(thresholds: Thresholds): string {
  return `cosine < ${thresholds.minCosine} or rel L2 > ${thresholds.maxRelativeL2}`;
}

/** The run conditions: samples, inputs, mode. */
function conditions(report: CompareReport): string {
  const inputs = report.seed === undefined
    ? "given inputs"
    : `generated inputs (uniform in [-1, 1), seed ${report.seed})`;
  const mode = report.lockstep
    ? "lockstep (each layer of B reads what A's layer read: the error each layer adds itself)"
    : "free-running (errors accumulate along the net)";
  return `${report.samples} sample(s) of ${inputs}, ${mode}`;
}

/** The worst-rows line: the few worst layers and the first flagged one. */
function worstText(report: CompareReport): string {
  if (report.worst.length === 0) return "no flagged layers";
  const shown = report.worst.slice(0, WORST_SHOWN).join(", ");
  const more = report.worst.length > WORST_SHOWN
    ? ` (+${report.worst.length - WORST_SHOWN} more)`
    : "";
  const first = report.rows.findIndex((row) => row.flagged);
  const before = Math.max(
    0,
    ...report.rows.slice(0, first).map((row) => row.relativeL2).filter(Number.isFinite),
  );
  const jump = report.lockstep ? "" : `; error jumps first at ${report.rows[first].layer} ` +
    `(rel L2 ${formatMetric(report.rows[first].relativeL2, "error")}, at most ` +
    `${formatMetric(before, "error")} before it)`;
  return `worst: ${shown}${more}${jump}`;
}

/** Lines listing skipped layers of one net. */
function skippedLines(label: string, report: CompareReport["skippedA"]): string[] {
  return report.map((entry) => `${label} skipped ${entry.layer} (${entry.type}): ${entry.reason}`);
}

/** `table` (header first) as aligned text lines, numeric columns right-aligned. */
function alignedLines(table: string[][], numeric: Set<number>): string[] {
  const widths = table[0].map((_, column) =>
    Math.max(...table.map((cells) => cells[column].length))
  );
  return table.map((cells) =>
    cells.map((cell, column) =>
      numeric.has(column) ? cell.padStart(widths[column]) : cell.padEnd(widths[column])
    ).join("  ").trimEnd()
  );
}

/**
 * The report as text: the conditions, one aligned row per compared value (flagged rows end with
 * `<<` and the failed checks), the worst layers, a verdict per net output, each quantized layer's
 * sensitivity (most sensitive first) and the skipped layers. `labels` name the two nets.
 */
export function formatCompareTable(report: CompareReport, labels?: CompareLabels): string {
  const lines: string[] = [];
  if (labels !== undefined) lines.push(`A: ${labels.a}`, `B: ${labels.b}`);
  lines.push(`${conditions(report)}; flagged: ${thresholdText(report.thresholds)}`);
  lines.push(...alignedLines([HEADERS, ...report.rows.map(rowCells)], NUMERIC));
  lines.push(worstText(report));
  if (report.outputs.length > 0) {
    lines.push("outputs:", ...report.outputs.map((output) => `  ${outputVerdict(output)}`));
  }
  if (report.sensitivity.length > 0) {
    lines.push("sensitivity of each quantized layer alone (most sensitive first):");
    const table = [sensitivityHeaders(report), ...rankedSensitivity(report).map(sensitivityCells)];
    lines.push(...alignedLines(table, new Set([0, 3, 4, 5])).map((line) => `  ${line}`));
  }
  lines.push(...skippedLines("A", report.skippedA), ...skippedLines("B", report.skippedB));
  // Names from the models are shown escaped: every line stays one line of visible characters.
  return lines.map((line) => printable(line)).join("\n") + "\n";
}

/** `text` with HTML's special characters escaped. */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Plot geometry shared by the two plots: a wide plot area with room for rotated x labels. */
const PLOT = { width: 900, height: 340, left: 64, right: 16, top: 16, bottom: 120 };

/** Tick labels along x: every k-th of `names` so that labels 13 px apart never overlap. */
function xLabels(names: string[], xAt: (index: number) => number): string[] {
  const span = PLOT.width - PLOT.left - PLOT.right;
  const step = Math.max(1, Math.ceil((13 * names.length) / span));
  const y = PLOT.height - PLOT.bottom + 12;
  return names.flatMap((name, index) => {
    if (index % step !== 0) return [];
    const shown = name.length > 18 ? name.slice(0, 17) + "…" : name;
    const x = xAt(index).toFixed(1);
    return [
      `<text class="x-label" x="${x}" y="${y}" font-size="10" text-anchor="end" ` +
      `transform="rotate(-60 ${x} ${y})">${escapeHtml(shown)}</text>`,
    ];
  });
}

/**
 * Y tick labels at `ticks` (value, text), dropping any closer than 14 px to one already placed
 * (earlier ticks win), so labels never overlap.
 */
function yLabels(ticks: [number, string][], yOf: (value: number) => number): string[] {
  const placed: number[] = [];
  return ticks.flatMap(([value, text]) => {
    const y = yOf(value);
    if (placed.some((other) => Math.abs(other - y) < 14)) return [];
    placed.push(y);
    return [
      `<line x1="${PLOT.left - 4}" y1="${y.toFixed(1)}" x2="${PLOT.left}" y2="${
        y.toFixed(1)
      }" stroke="#444"/>`,
      `<text class="y-label" x="${PLOT.left - 6}" y="${(y + 4).toFixed(1)}" font-size="11" ` +
      `text-anchor="end">${escapeHtml(text)}</text>`,
    ];
  });
}

/** The frame of a plot: the SVG element, axes and titles. */
function plotFrame(label: string, xTitle: string, yTitle: string, body: string[]): string {
  const { width, height, left, top, bottom } = PLOT;
  const axisY = height - bottom;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" ` +
    `width="100%" role="img" aria-label="${escapeHtml(label)}">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#fff"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${axisY}" stroke="#444"/>`,
    `<line x1="${left}" y1="${axisY}" x2="${width - PLOT.right}" y2="${axisY}" stroke="#444"/>`,
    `<text class="axis-title" x="14" y="${(top + axisY) / 2}" font-size="12" ` +
    `text-anchor="middle" transform="rotate(-90 14 ${(top + axisY) / 2})">` +
    `${escapeHtml(yTitle)}</text>`,
    ...body,
    `<text class="axis-title" x="${(left + width) / 2}" y="${height - 4}" font-size="12" ` +
    `text-anchor="middle">${escapeHtml(xTitle)}</text>`,
    `</svg>`,
  ].join("\n");
}

/** An x position for item `index` of `count`, across the plot area. */
function xScale(count: number): (index: number) => number {
  const span = PLOT.width - PLOT.left - PLOT.right - 20;
  return (index) => PLOT.left + 10 + (count <= 1 ? span / 2 : (index / (count - 1)) * span);
}

/** An SVG plot of cosine similarity by row: the threshold dashed, flagged points red. */
function similaritySvg(report: CompareReport): string {
  const { top, height, bottom: margin } = PLOT;
  const points = report.rows.map((row, index) => ({ row, index }))
    .filter(({ row }) => Number.isFinite(row.cosine));
  const minCosine = report.thresholds.minCosine;
  const low = Math.min(minCosine, ...points.map(({ row }) => row.cosine));
  const bottom = Math.max(-1, Math.floor(low * 100) / 100 - 0.01);
  const xAt = xScale(report.rows.length);
  const yOf = (value: number) => top + ((1 - value) / (1 - bottom)) * (height - margin - top);
  const line = points.map(({ row, index }) => `${xAt(index).toFixed(1)},${yOf(row.cosine)}`);
  const dots = points.map(({ row, index }) => {
    const color = row.flagged ? "#c00" : "#06c";
    const title = escapeHtml(`${row.layer} → ${row.blob}: cosine ${row.cosine.toFixed(6)}`);
    return `<circle cx="${xAt(index).toFixed(1)}" cy="${yOf(row.cosine).toFixed(1)}" r="3" ` +
      `fill="${color}"><title>${title}</title></circle>`;
  });
  const threshold = yOf(minCosine).toFixed(1);
  const middle = Math.round(((1 + bottom) / 2) * 1000) / 1000;
  return plotFrame(
    "cosine similarity along the net",
    "layers in net order",
    "cosine similarity",
    [
      ...thresholdLine(threshold, `min cosine ${minCosine}`),
      ...yLabels(
        [[1, "1"], [bottom, bottom.toFixed(2)], [minCosine, String(minCosine)], [
          middle,
          String(middle),
        ]],
        yOf,
      ),
      `<polyline points="${line.join(" ")}" fill="none" stroke="#06c" stroke-width="1.5"/>`,
      ...dots,
      ...xLabels(report.rows.map((row) => row.layer), xAt),
    ],
  );
}

/** A dashed red line across the plot at height `y`, labelled `label` at its right end. */
function thresholdLine(y: string, label: string): string[] {
  return [
    `<line x1="${PLOT.left}" y1="${y}" x2="${PLOT.width - PLOT.right}" y2="${y}" ` +
    `stroke="#c00" stroke-dasharray="4 4"/>`,
    `<text x="${PLOT.width - PLOT.right}" y="${Number(y) - 4}" font-size="11" fill="#c00" ` +
    `text-anchor="end">${label}</text>`,
  ];
}

/** A bar plot of each quantized layer's relative L2 error alone, in net order. */
function sensitivitySvg(report: CompareReport): string {
  const { top, height, bottom: margin } = PLOT;
  const entries = report.sensitivity;
  const limit = report.thresholds.maxRelativeL2;
  const finite = entries.map((entry) => entry.relativeL2).filter(Number.isFinite);
  const high = Math.max(limit * 1.2, ...finite);
  const yOf = (value: number) =>
    height - margin - (Math.min(value, high) / high) * (height - margin - top);
  const xAt = xScale(entries.length);
  const barWidth = Math.max(2, Math.min(24, (PLOT.width - PLOT.left - 40) / entries.length - 2));
  const bars = entries.map((entry, index) => {
    const value = Number.isFinite(entry.relativeL2) ? entry.relativeL2 : high;
    const y = yOf(value);
    const color = value > limit || Number.isNaN(entry.relativeL2) ? "#c00" : "#06c";
    const title = escapeHtml(
      `${entry.layer}: rel L2 ${formatMetric(entry.relativeL2, "error")}, cosine ${
        formatMetric(entry.cosine, "cosine")
      }`,
    );
    return `<rect x="${(xAt(index) - barWidth / 2).toFixed(1)}" y="${y.toFixed(1)}" ` +
      `width="${barWidth.toFixed(1)}" height="${(height - margin - y).toFixed(1)}" ` +
      `fill="${color}"><title>${title}</title></rect>`;
  });
  const threshold = yOf(limit).toFixed(1);
  return plotFrame(
    "relative L2 error of each quantized layer alone",
    "quantized layers in net order",
    "rel L2 (alone)",
    [
      ...thresholdLine(threshold, `max rel L2 ${limit}`),
      ...yLabels(
        [[0, "0"], [high, tickText(high)], [limit, String(limit)], [high / 2, tickText(high / 2)]],
        yOf,
      ),
      ...bars,
      ...xLabels(entries.map((entry) => entry.layer), xAt),
    ],
  );
}

/** A tick value with two significant digits. */
function tickText(value: number): string {
  return String(Number(value.toPrecision(2)));
}

/** An HTML table; `numeric` columns right-aligned, rows with `flagged` highlighted. */
function htmlTable(headers: string[], rows: { cells: string[]; flagged?: boolean }[]): string {
  const header = headers.map((cell) => `<th>${escapeHtml(cell)}</th>`).join("");
  const body = rows.map(({ cells, flagged }) =>
    `<tr${flagged ? ' class="flagged"' : ""}>${
      cells.map((cell) => `<td>${escapeHtml(cell)}</td>`).join("")
    }</tr>`
  ).join("\n");
  return `<table>\n<thead><tr>${header}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

/**
 * The report as a self-contained HTML page: which nets are compared (`labels`), a verdict per
 * net output, the similarity plot along the net, each quantized layer's sensitivity (plot and
 * table) and the full table.
 */
export function compareReportHtml(report: CompareReport, labels?: CompareLabels): string {
  const names = labels === undefined
    ? ""
    : `<dl>\n<dt>A (reference)</dt><dd>${escapeHtml(labels.a)}</dd>\n` +
      `<dt>B</dt><dd>${escapeHtml(labels.b)}</dd>\n</dl>`;
  const outputs = report.outputs.length === 0
    ? ""
    : `<h2>Outputs</h2>\n<ul class="verdicts">\n${
      report.outputs.map((output) =>
        `<li class="${output.failed.length === 0 ? "pass" : "fail"}">${
          escapeHtml(outputVerdict(output))
        }</li>`
      ).join("\n")
    }\n</ul>`;
  const sensitivity = report.sensitivity.length === 0 ? "" : [
    `<h2>Sensitivity of each quantized layer</h2>`,
    `<p>Each quantized layer alone: its output when it reads the float net's exact input, ` +
    `against the float net's. Most sensitive first in the table.</p>`,
    `<div class="scroll">\n${sensitivitySvg(report)}\n</div>`,
    htmlTable(
      sensitivityHeaders(report),
      rankedSensitivity(report).map((entry, rank) => ({
        cells: sensitivityCells(entry, rank),
        flagged: !(entry.relativeL2 <= report.thresholds.maxRelativeL2),
      })),
    ),
  ].join("\n");
  const skipped = [...skippedLines("A", report.skippedA), ...skippedLines("B", report.skippedB)]
    .map((line) => `<li>${escapeHtml(line)}</li>`).join("\n");
  const title = labels === undefined ? "Net comparison" : `${labels.a} vs ${labels.b}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>caffe-quant: ${escapeHtml(title)}</title>
<style>
body { font-family: sans-serif; margin: 1.5em; max-width: 1100px; }
h1 { font-size: 1.4em; overflow-wrap: anywhere; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; }
dt { font-weight: bold; }
dd { margin: 0; font-family: monospace; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: left; white-space: nowrap; }
th { background: #f4f4f4; }
tr.flagged td { background: #fdd; }
li.fail { color: #a00; }
svg { max-width: 900px; min-width: 640px; display: block; margin: 0.5em 0; }
</style>
</head>
<body>
<h1>Net comparison</h1>
${names}
${
    (labels?.sections ?? []).map(({ heading, text }) =>
      `<h2>${escapeHtml(heading)}</h2>\n<pre>${escapeHtml(text)}</pre>\n`
    ).join("")
  }<p>${escapeHtml(conditions(report))}; flagged: ${
    escapeHtml(thresholdText(report.thresholds))
  }.</p>
<p>${escapeHtml(worstText(report))}.</p>
${outputs}
<h2>Cosine similarity along the net</h2>
<div class="scroll">
${similaritySvg(report)}
</div>
${sensitivity}
<h2>Every layer</h2>
<div class="scroll">
${
    htmlTable(
      HEADERS,
      report.rows.map((row, index) => ({ cells: rowCells(row, index), flagged: row.flagged })),
    )
  }
</div>
${skipped === "" ? "" : `<h2>Skipped layers</h2>\n<ul>\n${skipped}\n</ul>`}
</body>
</html>
`;
}
