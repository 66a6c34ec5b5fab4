/**
 * Accuracy metrics of a net's output against a reference output (the float net's), and the
 * thresholds that turn them into a verdict. One module for `compare`, `convert --compare` and
 * `quantize`'s accuracy report:
 *
 * - every tensor: cosine similarity, relative L2 error, SQNR, max absolute error (from running
 *   sums over samples, {@linkcode AgreementTotals});
 * - classifier outputs: top-1 and top-5 agreement with the reference, or accuracy with labels;
 * - detector scores (a Softmax with many positions per sample): agreement of the confident
 *   positions (a non-background score above 0.5 in either net);
 * - image outputs (super-resolution): PSNR with the reference's value range as the peak.
 *
 * Sums run in WebAssembly (`EngineKernels.agreement`); the per-row loops here read typed arrays
 * only.
 *
 * @module
 */

import type { Agreement } from "../wasm/engine.ts";

/** Running sums of {@linkcode Agreement} over samples, with the element count. */
export interface AgreementTotals extends Agreement {
  /** Elements summed. */
  count: number;
}

/** Empty totals. */
export function emptyTotals(): AgreementTotals {
  return { dot: 0, squaresA: 0, squaresB: 0, squaresDiff: 0, maxAbs: 0, count: 0 };
}

/** Adds one tensor pair's sums (of `count` elements) to `totals`; a NaN max stays NaN. */
export function addAgreement(totals: AgreementTotals, sums: Agreement, count: number): void {
  totals.dot += sums.dot;
  totals.squaresA += sums.squaresA;
  totals.squaresB += sums.squaresB;
  totals.squaresDiff += sums.squaresDiff;
  totals.maxAbs = Number.isNaN(sums.maxAbs) || Number.isNaN(totals.maxAbs)
    ? NaN
    : Math.max(totals.maxAbs, sums.maxAbs);
  totals.count += count;
}

/** Cosine similarity of A and B (1 when both are all zeros, 0 when only one is). */
export function cosineOf(totals: Agreement): number {
  const normProduct = Math.sqrt(totals.squaresA) * Math.sqrt(totals.squaresB);
  if (normProduct === 0) return totals.squaresA === totals.squaresB ? 1 : 0;
  return totals.dot / normProduct;
}

/** ||A - B|| / ||A|| (0 when both are zero, Infinity when only A is). */
export function relativeL2Of(totals: Agreement): number {
  if (totals.squaresA === 0) return totals.squaresDiff === 0 ? 0 : Infinity;
  return Math.sqrt(totals.squaresDiff / totals.squaresA);
}

/** Signal-to-quantization-noise ratio in dB, -20·log10(relative L2) (Infinity when exact). */
export function sqnrDb(relativeL2: number): number {
  return -20 * Math.log10(relativeL2);
}

/**
 * PSNR in dB of B against reference A: 10·log10(peak² / mean (A - B)²), with `peak` the
 * reference's value range (max - min over all samples); Infinity when B equals A.
 */
export function psnrDb(totals: AgreementTotals, peak: number): number {
  const meanSquare = totals.squaresDiff / Math.max(1, totals.count);
  return 10 * Math.log10((peak * peak) / meanSquare);
}

/** How a tensor of class scores is laid out: `classes` along an axis with `inner` after it. */
export interface ClassLayout {
  /** Number of classes (size of the class axis). */
  classes: number;
  /** Elements after the class axis (1 when it is the last axis). */
  inner: number;
}

/** The class indices of one position (outer o, inner i) of `data`, best score first, first `k`. */
function topK(data: Float32Array, base: number, layout: ClassLayout, k: number): number[] {
  const best: number[] = [];
  for (let c = 0; c < layout.classes; c++) {
    const value = data[base + c * layout.inner];
    let at = best.length;
    while (at > 0 && data[base + best[at - 1] * layout.inner] < value) at--;
    if (at < k) {
      best.splice(at, 0, c);
      if (best.length > k) best.pop();
    }
  }
  return best;
}

/**
 * The class with the highest score in `scores`, all of them one position's classes (the first of
 * equal scores; -1 when there are none): the top-1 of {@linkcode topKCorrect}.
 */
export function topClass(scores: Float32Array): number {
  return topK(scores, 0, { classes: scores.length, inner: 1 }, 1)[0] ?? -1;
}

/** The start offset of every position (row) of a class-score tensor. */
function positions(length: number, layout: ClassLayout): number[] {
  const starts: number[] = [];
  const block = layout.classes * layout.inner;
  for (let outer = 0; outer + block <= length; outer += block) {
    for (let i = 0; i < layout.inner; i++) starts.push(outer + i);
  }
  return starts;
}

/**
 * Positions whose top-1 class in `b` is among the top `k` classes of `a` (k = 1: the arg-max
 * agrees; ties go to the lower class index), and the positions counted.
 */
export function topKAgreement(
  a: Float32Array,
  b: Float32Array,
  layout: ClassLayout,
  k: number,
): { agreeing: number; rows: number } {
  const starts = positions(a.length, layout);
  let agreeing = 0;
  for (const start of starts) {
    if (topK(a, start, layout, k).includes(topK(b, start, layout, 1)[0])) agreeing++;
  }
  return { agreeing, rows: starts.length };
}

/**
 * Positions whose true class `labels[row]` is among the top `k` classes of `scores` (top-k
 * accuracy), and the positions counted (at most `labels.length`).
 */
export function topKCorrect(
  scores: Float32Array,
  labels: ArrayLike<number>,
  layout: ClassLayout,
  k: number,
): { correct: number; rows: number } {
  const starts = positions(scores.length, layout).slice(0, labels.length);
  let correct = 0;
  starts.forEach((start, row) => {
    if (topK(scores, start, layout, k).includes(labels[row])) correct++;
  });
  return { correct, rows: starts.length };
}

/**
 * Detector scores: the positions kept by either net (a score of class 1 or above, class 0 being
 * the background, above `threshold`), and those kept by both: agreement = both / either (1 when
 * neither keeps one).
 */
export function confidentAgreement(
  a: Float32Array,
  b: Float32Array,
  layout: ClassLayout,
  threshold = 0.5,
): { both: number; either: number } {
  let both = 0;
  let either = 0;
  for (const start of positions(a.length, layout)) {
    let keptA = false;
    let keptB = false;
    for (let c = 1; c < layout.classes; c++) {
      const at = start + c * layout.inner;
      if (a[at] > threshold) keptA = true;
      if (b[at] > threshold) keptB = true;
    }
    if (keptA || keptB) either++;
    if (keptA && keptB) both++;
  }
  return { both, either };
}

/** Thresholds of a verdict; a metric fails when it is on the wrong side (or not a number). */
export interface Thresholds {
  /** Lowest passing cosine similarity (default 0.99). */
  minCosine: number;
  /** Highest passing relative L2 error (default 0.1, i.e. SQNR ≥ 20 dB). */
  maxRelativeL2: number;
  /** Lowest passing top-1 agreement or accuracy, a fraction (default 0.99). */
  minTop1: number;
  /** Lowest passing PSNR of image outputs, dB (default 30). */
  minPsnr: number;
  /** Lowest passing agreement of detectors' confident positions, a fraction (default 0.9). */
  minConfident: number;
}

/** The default {@linkcode Thresholds}. */
export const DEFAULT_THRESHOLDS: Readonly<Thresholds> = Object.freeze({
  minCosine: 0.99,
  maxRelativeL2: 0.1,
  minTop1: 0.99,
  minPsnr: 30,
  minConfident: 0.9,
});

/** The metrics a verdict can judge; absent ones are not judged. */
export interface JudgedMetrics {
  /** Cosine similarity. */
  cosine?: number;
  /** Relative L2 error. */
  relativeL2?: number;
  /** Top-1 agreement (or accuracy with labels). */
  top1?: number;
  /** PSNR in dB. */
  psnr?: number;
  /** Agreement of confident detector positions. */
  confident?: number;
}

/** The failed checks of `metrics` against `thresholds`, as short texts (empty: it passes). */
export function failedChecks(metrics: JudgedMetrics, thresholds: Thresholds): string[] {
  const failed: string[] = [];
  const below = (value: number | undefined, limit: number) =>
    value !== undefined && !(value >= limit);
  if (below(metrics.cosine, thresholds.minCosine)) {
    failed.push(`cosine ${formatMetric(metrics.cosine!, "cosine")} < ${thresholds.minCosine}`);
  }
  if (metrics.relativeL2 !== undefined && !(metrics.relativeL2 <= thresholds.maxRelativeL2)) {
    failed.push(
      `rel L2 ${formatMetric(metrics.relativeL2, "error")} > ${thresholds.maxRelativeL2}`,
    );
  }
  if (below(metrics.top1, thresholds.minTop1)) {
    failed.push(
      `top-1 ${formatMetric(metrics.top1!, "fraction")} < ${
        formatMetric(thresholds.minTop1, "fraction")
      }`,
    );
  }
  if (below(metrics.psnr, thresholds.minPsnr)) {
    failed.push(`PSNR ${formatMetric(metrics.psnr!, "db")} < ${thresholds.minPsnr} dB`);
  }
  if (below(metrics.confident, thresholds.minConfident)) {
    failed.push(
      `confident ${formatMetric(metrics.confident!, "fraction")} < ${
        formatMetric(thresholds.minConfident, "fraction")
      }`,
    );
  }
  return failed;
}

/**
 * A number for tables: 6 decimals for cosine, a percentage for fractions, one decimal and "dB"
 * for decibels, 3 significant digits for errors; "-" for NaN.
 */
export function formatMetric(
  value: number | undefined,
  kind: "cosine" | "error" | "fraction" | "db",
): string {
  if (value === undefined) return "";
  if (Number.isNaN(value)) return "-";
  if (kind === "cosine") return value.toFixed(6);
  if (kind === "fraction") return `${(value * 100).toFixed(1)}%`;
  if (kind === "db") {
    return Number.isFinite(value) ? `${value.toFixed(1)} dB` : `${value > 0 ? "" : "-"}inf dB`;
  }
  if (value === 0 || !Number.isFinite(value)) return String(value);
  const size = Math.abs(value);
  return size < 1e-3 || size >= 1e4 ? value.toExponential(2) : value.toPrecision(3);
}
