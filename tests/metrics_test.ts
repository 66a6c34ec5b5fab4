// The metric functions of src/engine/metrics.ts on values worked by hand.

import assert from "node:assert/strict";
import {
  addAgreement,
  confidentAgreement,
  cosineOf,
  DEFAULT_THRESHOLDS,
  emptyTotals,
  failedChecks,
  psnrDb,
  relativeL2Of,
  sqnrDb,
  topClass,
  topKAgreement,
  topKCorrect,
} from "../src/engine/metrics.ts";

Deno.test("cosine, relative L2, SQNR and PSNR from running sums", () => {
  // A = [3, 4], B = [3, 5]: dot 29, |A|² 25, |B|² 34, |A-B|² 1, max 1.
  const totals = emptyTotals();
  addAgreement(totals, { dot: 29, squaresA: 25, squaresB: 34, squaresDiff: 1, maxAbs: 1 }, 2);
  assert.ok(Math.abs(cosineOf(totals) - 29 / (5 * Math.sqrt(34))) < 1e-15);
  assert.equal(relativeL2Of(totals), 0.2); // 1 / 5
  assert.ok(Math.abs(sqnrDb(0.2) - 13.979400086720377) < 1e-12); // -20 log10 0.2
  // mean (A-B)² = 0.5, peak 2: 10 log10(4 / 0.5) = 9.0309 dB.
  assert.ok(Math.abs(psnrDb(totals, 2) - 9.030899869919435) < 1e-12);
  assert.equal(relativeL2Of(emptyTotals()), 0);
  assert.equal(cosineOf(emptyTotals()), 1);
  addAgreement(totals, { dot: 0, squaresA: 0, squaresB: 0, squaresDiff: 0, maxAbs: NaN }, 1);
  assert.ok(Number.isNaN(totals.maxAbs));
});

Deno.test("top-k agreement and accuracy, class axis last or in the middle", () => {
  // Two rows of 3 classes. A: [0.1, 0.7, 0.2] (order 1, 2, 0), [0.5, 0.3, 0.2] (0, 1, 2).
  const a = new Float32Array([0.1, 0.7, 0.2, 0.5, 0.3, 0.2]);
  const b = new Float32Array([0.1, 0.2, 0.7, 0.5, 0.3, 0.2]); // arg-max 2, 0
  const last = { classes: 3, inner: 1 };
  assert.deepEqual(topKAgreement(a, b, last, 1), { agreeing: 1, rows: 2 });
  assert.deepEqual(topKAgreement(a, b, last, 2), { agreeing: 2, rows: 2 });
  assert.deepEqual(topKCorrect(a, [1, 2], last, 1), { correct: 1, rows: 2 });
  assert.deepEqual(topKCorrect(a, [1, 2], last, 3), { correct: 2, rows: 2 });
  // The same scores laid out [1, 3 classes, 2 positions]: element (c, p) at c * 2 + p.
  const middle = new Float32Array([0.1, 0.5, 0.7, 0.3, 0.2, 0.2]);
  const middleB = new Float32Array([0.1, 0.5, 0.2, 0.3, 0.7, 0.2]);
  assert.deepEqual(topKAgreement(middle, middleB, { classes: 3, inner: 2 }, 1), {
    agreeing: 1,
    rows: 2,
  });
});

Deno.test("confident detector positions: kept by either, kept by both", () => {
  // 4 positions × (background, face). Face scores A: 0.9, 0.6, 0.2, 0.1; B: 0.8, 0.4, 0.7, 0.1.
  const a = new Float32Array([0.1, 0.9, 0.4, 0.6, 0.8, 0.2, 0.9, 0.1]);
  const b = new Float32Array([0.2, 0.8, 0.6, 0.4, 0.3, 0.7, 0.9, 0.1]);
  assert.deepEqual(confidentAgreement(a, b, { classes: 2, inner: 1 }), { both: 1, either: 3 });
});

Deno.test("failedChecks names each failed threshold; NaN fails", () => {
  assert.deepEqual(
    failedChecks({ cosine: 0.995, relativeL2: 0.05, top1: 1 }, DEFAULT_THRESHOLDS),
    [],
  );
  assert.deepEqual(
    failedChecks(
      { cosine: 0.98, relativeL2: 0.5, top1: 0.9, psnr: 20, confident: NaN },
      DEFAULT_THRESHOLDS,
    ),
    [
      "cosine 0.980000 < 0.99",
      "rel L2 0.500 > 0.1",
      "top-1 90.0% < 99.0%",
      "PSNR 20.0 dB < 30 dB",
      "confident - < 90.0%",
    ],
  );
});

Deno.test("topClass: the highest score's index, the first of equal ones, -1 for none", () => {
  assert.equal(topClass(new Float32Array([0.1, 0.7, 0.2])), 1);
  assert.equal(topClass(new Float32Array([0.5, 0.2, 0.5])), 0);
  assert.equal(topClass(new Float32Array([-3, -1, -2])), 1);
  assert.equal(topClass(new Float32Array(0)), -1);
});
