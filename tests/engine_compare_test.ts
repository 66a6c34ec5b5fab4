// compareNets and its text / HTML forms, on small nets whose agreement is known in closed form.

import assert from "node:assert/strict";
import type { Net } from "../src/caffe/net.ts";
import { readPrototxt } from "../src/caffe/prototxt.ts";
import { compareNets, compareReportHtml, formatCompareTable } from "../src/engine/compare.ts";
import { runNet, type Tensor } from "../src/engine/run.ts";

/** data [2, 5] -> y = scale * data (Power) -> prob (Softmax). */
function scalingNet(scale: number, topName = "y"): Net {
  return readPrototxt(`
    input: "data" input_shape { dim: 2 dim: 5 }
    layer { name: "lin" type: "Power" bottom: "data" top: "${topName}" power_param { scale: ${scale} } }
    layer { name: "prob" type: "Softmax" bottom: "${topName}" top: "prob" }
  `);
}

function row(report: Awaited<ReturnType<typeof compareNets>>, blob: string) {
  const found = report.rows.find((entry) => entry.blob === blob);
  assert.ok(found, `no row for ${blob}`);
  return found;
}

Deno.test("compareNets: a net against itself agrees perfectly, rows in layer order", async () => {
  const net = scalingNet(3);
  const report = await compareNets(net, net, { samples: 3, seed: 11 });
  assert.equal(report.samples, 3);
  assert.deepEqual(report.rows.map((entry) => entry.blob), ["data", "y", "prob"]);
  assert.deepEqual(report.rows.map((entry) => entry.layer), ["data", "lin", "prob"]);
  for (const entry of report.rows) {
    assert.ok(Math.abs(entry.cosine - 1) < 1e-12, `${entry.blob} cosine ${entry.cosine}`);
    assert.equal(entry.maxAbsError, 0);
    assert.equal(entry.relativeL2, 0);
    assert.equal(entry.flagged, false);
  }
  assert.equal(row(report, "prob").top1Agreement, 1);
  assert.equal(row(report, "y").top1Agreement, undefined);
  assert.deepEqual(report.worst, []);
});

Deno.test("compareNets: y against -y has cosine -1, relative L2 2, no top-1 agreement", async () => {
  const data: Tensor = {
    shape: [2, 5],
    data: new Float32Array([0.5, -1, 0.25, 2, 0, -0.75, 1.5, 0.1, -2.5, 0.3]),
  };
  const report = await compareNets(scalingNet(1), scalingNet(-1), {
    inputs: new Map([["data", data]]),
  });
  assert.equal(report.samples, 1);
  assert.equal(report.seed, undefined);
  const y = row(report, "y");
  assert.ok(Math.abs(y.cosine + 1) < 1e-12);
  assert.equal(y.maxAbsError, 5); // 2 * max |x| = 2 * 2.5
  assert.ok(Math.abs(y.relativeL2 - 2) < 1e-12);
  assert.equal(y.flagged, true);
  // Rows' arg-max of x is the arg-min of -x: [3] vs [1], [6] vs [8].
  assert.equal(row(report, "prob").top1Agreement, 0);
  assert.equal(row(report, "data").flagged, false);
  assert.deepEqual(report.worst[0], "y");
});

Deno.test("compareNets: samples use seed + i and aggregate the max error over samples", async () => {
  const report = await compareNets(scalingNet(1), scalingNet(-1), { samples: 2, seed: 5 });
  let largest = 0;
  for (const seed of [5, 6]) {
    const inputs = (await runNet(scalingNet(1), { seed, keepAll: true })).blobs.get("data")!;
    for (const value of inputs.data) largest = Math.max(largest, 2 * Math.abs(value));
  }
  assert.equal(row(report, "y").maxAbsError, largest);
  const single = await compareNets(scalingNet(1), scalingNet(-1), { samples: 1, seed: 6 });
  assert.ok(row(single, "y").maxAbsError <= largest);
});

Deno.test("compareNets: different shapes and deploy integers are listed with a note, not compared", async () => {
  const reshaped = readPrototxt(`
    input: "data" input_shape { dim: 2 dim: 5 }
    layer { name: "lin" type: "Reshape" bottom: "data" top: "y" reshape_param { shape { dim: 10 } } }
  `);
  const report = await compareNets(scalingNet(1), reshaped, { samples: 1 });
  assert.match(row(report, "y").note ?? "", /shape \[2, 5\] in A, \[10\] in B/);
  assert.equal(row(report, "y").flagged, false);
  assert.equal(report.rows.some((entry) => entry.blob === "prob"), false);

  const quantized = (deploy: boolean) => {
    const net = readPrototxt(`
      input: "data" input_shape { dim: 1 dim: 2 dim: 3 dim: 3 }
      layer { name: "c_quant_layer" type: "Quant" bottom: "data" top: "c_quant_layer"
        quant_param { scale: 100 offset: "\\000" with_offset: true object_layer: "c" } }
      layer { name: "c" type: "Convolution" bottom: "c_quant_layer" top: "y_raw"
        convolution_param { num_output: 1 kernel_size: 1 bias_term: false } }
      layer { name: "c_dequant_layer" type: "DeQuant" bottom: "y_raw" top: "y" }
    `);
    const deq = Math.fround(0.01 * 0.5);
    net.layers[1].blobs = [{
      shape: [1, 2, 1, 1],
      data: deploy ? new Int8Array([2, -1]) : new Float32Array([1, -0.5]),
    }];
    net.layers[2].blobs = deploy
      ? [{
        shape: [1],
        data: new BigUint64Array([BigInt(new Uint32Array(new Float32Array([deq]).buffer)[0])]),
      }]
      : [{ shape: [1], data: new Float32Array([deq]) }];
    return net;
  };
  const mixed = await compareNets(quantized(false), quantized(true), { samples: 2 });
  assert.match(row(mixed, "c_quant_layer").note ?? "", /float values in A and int8 values in B/);
  assert.match(row(mixed, "y_raw").note ?? "", /accumulator/);
  const y = row(mixed, "y");
  assert.equal(y.note, undefined);
  assert.ok(y.cosine > 0.99999 && y.maxAbsError < 1e-6, JSON.stringify(y));
});

Deno.test("formatCompareTable and compareReportHtml: the rows, flags and an inline SVG, no external assets", async () => {
  const report = await compareNets(scalingNet(1, "a<b&c"), scalingNet(-1, "a<b&c"), { samples: 1 });
  const table = formatCompareTable(report);
  const lines = table.trimEnd().split("\n");
  assert.match(lines[0], /1 sample\(s\), seed 0, free-running; flagged: cosine < 0\.99/);
  assert.match(lines[1], /^#\s+blob\s+layer\s+shape\s+cosine\s+max\|err\|\s+rel L2\s+top-1/);
  const flaggedLine = lines.find((line) => line.includes("a<b&c"))!;
  assert.match(flaggedLine, /lin \(Power\)\s+\[2, 5\]\s+-1\.000000/);
  assert.match(flaggedLine, /<<$/);
  assert.match(table, /worst: a<b&c/);

  const html = compareReportHtml(report);
  assert.match(html, /^<!DOCTYPE html>/);
  assert.match(html, /<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.equal((html.match(/<circle /g) ?? []).length, report.rows.length);
  assert.match(html, /<td>a&#60;b&#38;c<\/td>/);
  assert.doesNotMatch(html, /a<b/);
  assert.doesNotMatch(html, /\b(src|href)=/);
  assert.equal((html.match(/https?:\/\//g) ?? []).length, 1); // only the SVG namespace
  assert.equal((html.match(/<tr class="flagged">/g) ?? []).length, report.worst.length);
});
