/**
 * Human forms of a {@linkcode CompareReport}: a text table and a self-contained HTML page (the
 * table and an inline SVG plot of cosine similarity along the net; no external assets).
 *
 * @module
 */

import type { BlobComparison, CompareReport } from "./compare.ts";
import { shapeText } from "./tensor.ts";

/** A number for the table: fixed decimals for cosine, 3 significant digits for errors. */
function formatNumber(value: number | undefined, kind: "cosine" | "error" | "fraction"): string {
  if (value === undefined) return "";
  if (Number.isNaN(value)) return "-";
  if (kind === "cosine") return value.toFixed(6);
  if (kind === "fraction") return `${(value * 100).toFixed(1)}%`;
  if (value === 0 || !Number.isFinite(value)) return String(value);
  const size = Math.abs(value);
  return size < 1e-3 || size >= 1e4 ? value.toExponential(2) : value.toPrecision(3);
}

/** The cells of one row, in column order. */
function rowCells(row: BlobComparison, index: number): string[] {
  return [
    String(index + 1),
    row.blob,
    `${row.layer} (${row.type})`,
    shapeText(row.shape),
    formatNumber(row.cosine, "cosine"),
    formatNumber(row.maxAbsError, "error"),
    formatNumber(row.relativeL2, "error"),
    formatNumber(row.top1Agreement, "fraction"),
    row.flagged ? "<<" : row.note ?? "",
  ];
}

const HEADERS = ["#", "blob", "layer", "shape", "cosine", "max|err|", "rel L2", "top-1", ""];

/** Lines listing skipped layers of one net. */
function skippedLines(label: string, report: CompareReport["skippedA"]): string[] {
  return report.map((entry) => `${label} skipped ${entry.layer} (${entry.type}): ${entry.reason}`);
}

/**
 * The report as an aligned text table, one row per blob; flagged rows end with `<<`, followed by
 * the worst blobs and the skipped layers.
 */
export function formatCompareTable(report: CompareReport): string {
  const table = [HEADERS, ...report.rows.map(rowCells)];
  const widths = HEADERS.map((_, column) =>
    Math.max(...table.map((cells) => cells[column].length))
  );
  const lines = table.map((cells) =>
    cells.map((cell, column) =>
      column >= 4 && column <= 7 ? cell.padStart(widths[column]) : cell.padEnd(widths[column])
    )
      .join("  ").trimEnd()
  );
  const seed = report.seed === undefined ? "given inputs" : `seed ${report.seed}`;
  const mode = report.lockstep ? "lockstep" : "free-running";
  lines.unshift(
    `${report.samples} sample(s), ${seed}, ${mode}; flagged: cosine < ${report.flagBelow}`,
  );
  lines.push(report.worst.length === 0 ? "no flagged blobs" : `worst: ${report.worst.join(", ")}`);
  lines.push(...skippedLines("A", report.skippedA), ...skippedLines("B", report.skippedB));
  return lines.join("\n") + "\n";
}

/** `text` with HTML's special characters escaped. */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** An SVG plot of cosine similarity by row: the threshold dashed, flagged points red. */
function similaritySvg(report: CompareReport): string {
  const width = 800;
  const height = 260;
  const margin = 40;
  const right = width - margin;
  const points = report.rows.map((row, index) => ({ row, index }))
    .filter(({ row }) => Number.isFinite(row.cosine));
  const low = Math.min(report.flagBelow, ...points.map(({ row }) => row.cosine));
  const bottom = Math.max(-1, Math.floor(low * 100) / 100 - 0.01);
  const xAt = (index: number) =>
    (margin + (index / Math.max(1, report.rows.length - 1)) * (right - margin)).toFixed(1);
  const yOf = (value: number) =>
    (margin + ((1 - value) / (1 - bottom)) * (height - 2 * margin)).toFixed(1);
  const line = points.map(({ row, index }) => `${xAt(index)},${yOf(row.cosine)}`).join(" ");
  const dots = points.map(({ row, index }) => {
    const color = row.flagged ? "#c00" : "#06c";
    const title = escapeHtml(`${row.blob}: ${row.cosine.toFixed(6)}`);
    return `<circle cx="${xAt(index)}" cy="${yOf(row.cosine)}" r="3" fill="${color}">` +
      `<title>${title}</title></circle>`;
  });
  const label = (value: number, text: string) =>
    `<text x="4" y="${(Number(yOf(value)) + 4).toFixed(1)}" font-size="11">${text}</text>`;
  const top = yOf(1);
  const threshold = yOf(report.flagBelow);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" role="img" aria-label="cosine similarity along the net">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#fff"/>`,
    `<line x1="${margin}" y1="${top}" x2="${right}" y2="${top}" stroke="#ccc"/>`,
    `<line x1="${margin}" y1="${threshold}" x2="${right}" y2="${threshold}" stroke="#c00" ` +
    `stroke-dasharray="4 4"/>`,
    label(1, "1"),
    label(report.flagBelow, String(report.flagBelow)),
    label(bottom, bottom.toFixed(2)),
    `<polyline points="${line}" fill="none" stroke="#06c" stroke-width="1.5"/>`,
    ...dots,
    `<text x="${width / 2}" y="${height - 8}" font-size="12" text-anchor="middle">` +
    `blobs in net A's layer order</text>`,
    `</svg>`,
  ].join("\n");
}

/** The report as a self-contained HTML page: the similarity plot and the table. */
export function compareReportHtml(report: CompareReport): string {
  const header = HEADERS.map((cell) => `<th>${escapeHtml(cell)}</th>`).join("");
  const body = report.rows.map((row, index) =>
    `<tr${row.flagged ? ' class="flagged"' : ""}>${
      rowCells(row, index).map((cell) => `<td>${escapeHtml(cell)}</td>`).join("")
    }</tr>`
  ).join("\n");
  const skipped = [...skippedLines("A", report.skippedA), ...skippedLines("B", report.skippedB)]
    .map((line) => `<li>${escapeHtml(line)}</li>`).join("\n");
  const seed = report.seed === undefined ? "given inputs" : `seed ${report.seed}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>caffe-quant: net comparison</title>
<style>
body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: left; }
td:nth-child(n+5):nth-child(-n+8) { text-align: right; font-family: monospace; }
tr.flagged td { background: #fdd; }
</style>
</head>
<body>
<h1>Net comparison</h1>
<p>${report.samples} sample(s), ${escapeHtml(seed)}, ${
    report.lockstep ? "lockstep" : "free-running"
  }; flagged: cosine &lt; ${report.flagBelow}.
${
    report.worst.length === 0
      ? "No flagged blobs."
      : `Worst: ${escapeHtml(report.worst.join(", "))}.`
  }</p>
${similaritySvg(report)}
<table>
<thead><tr>${header}</tr></thead>
<tbody>
${body}
</tbody>
</table>
${skipped === "" ? "" : `<h2>Skipped layers</h2>\n<ul>\n${skipped}\n</ul>`}
</body>
</html>
`;
}
