// The float InnerProduct kernel on batches, in both engine builds (assembly/engine/gemm.ts
// gemmTransB): two rows at a time by four outputs (the weights read once per two rows), then a
// last row by four outputs. Each output is checked against float64 within the bound of
// its recursive float32 sum, and each row against the same row run alone, bit for bit: a row's
// outputs must not depend on the rows beside it.

import assert from "node:assert/strict";
import { engineKernels, type InnerProductArgs } from "../src/wasm/engine.ts";
import { randomValues } from "./_builders.ts";
import { ENGINE_BUILDS, withEngineBuild } from "./_engine_builds.ts";

const EPS = 2 ** -23;

function args(rows: number, depth: number, outputs: number, x: Float32Array): InnerProductArgs {
  return {
    x,
    rows,
    depth,
    weights: randomValues(outputs * depth, 7 * depth + outputs),
    transposed: false,
    bias: randomValues(outputs, 3 * outputs),
    outputs,
  };
}

for (const build of ENGINE_BUILDS) {
  Deno.test(`InnerProduct on 1-9 rows: float64 within the bound, each row the bits of that row alone (${build})`, async () => {
    await withEngineBuild(build, async () => {
      const kernels = await engineKernels();
      const bits = (values: Float32Array) => Array.from(new Uint32Array(values.slice().buffer));
      // Depths with and without a tail past the last whole vector; odd and even outputs (the
      // two-output blocks' last one alone).
      for (const [depth, outputs] of [[23, 7], [32, 6], [129, 5]]) {
        for (let rows = 1; rows <= 9; rows++) {
          const x = randomValues(rows * depth, 100 * rows + depth);
          const call = args(rows, depth, outputs, x);
          const y = kernels.innerProduct(call);
          const weights = call.weights as Float32Array;
          const bias = call.bias as Float32Array;
          for (let r = 0; r < rows; r++) {
            for (let o = 0; o < outputs; o++) {
              let sum = bias[o];
              let magnitude = Math.abs(bias[o]);
              for (let k = 0; k < depth; k++) {
                const product = x[r * depth + k] * weights[o * depth + k];
                sum += product;
                magnitude += Math.abs(product);
              }
              const error = Math.abs(y[r * outputs + o] - sum);
              assert.ok(
                error <= (depth + 2) * EPS * magnitude,
                `rows ${rows}, depth ${depth}: y[${r}, ${o}] = ${
                  y[r * outputs + o]
                }, expected ${sum}`,
              );
            }
            const alone = kernels.innerProduct({
              ...call,
              rows: 1,
              x: x.slice(r * depth, (r + 1) * depth),
            });
            assert.deepEqual(
              bits(y.subarray(r * outputs, (r + 1) * outputs)),
              bits(alone),
              `rows ${rows}, depth ${depth}: row ${r}`,
            );
          }
        }
      }
    });
  });
}
