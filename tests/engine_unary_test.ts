// The engine's TanH and Sigmoid kernels (assembly/engine/elementwise.ts `unary`) against float64
// Math.tanh / 1 / (1 + exp(-x)) over values spread across the whole float32 range: seeded random
// bit patterns, dense runs around the kernel's switch points (0.625, where tanh rounds to 1) and
// around 0.5, 1, 5, 9 and 10, subnormals, huge values, ±0, ±Inf and NaN. The bounds are ones the
// earlier scalar kernel (musl's tanhf in AssemblyScript's Mathf.tanh) met too: its largest errors
// over every third float32 below 10 in magnitude were 2.18 ulps (tanh) and 0.98 × 2^-24 (Sigmoid);
// the SIMD kernel's were 1.33 ulps and 0.90 × 2^-24.

import assert from "node:assert/strict";
import { engineKernels } from "../src/wasm/engine.ts";
import { ENGINE_BUILDS, withEngineBuild } from "./_engine_builds.ts";

/** Max error of TanH in float32 ulps of the exact value. */
const TANH_ULPS = 2.5;
/** Max absolute error of Sigmoid in units of 2^-24 (its values lie in [0, 1]). */
const SIGMOID_UNITS = 1.25;

/** The spacing of float32 values at `value` (the subnormal spacing below 2^-126). */
function ulp(value: number): number {
  const magnitude = Math.abs(value);
  if (magnitude < 2 ** -126) return 2 ** -149;
  return 2 ** (Math.floor(Math.log2(magnitude)) - 23);
}

/** The test values, each also negated. */
function testValues(): Float32Array {
  const values: number[] = [0, 2 ** -149, 2 ** -130, 2 ** -126, 1e-30, 1e-10, 1e-7, 1e-4, Infinity];
  const bits = new Uint32Array(1);
  const asFloat = new Float32Array(bits.buffer);
  // Seeded bit patterns over every exponent (NaN patterns included).
  let state = 12345;
  for (let i = 0; i < 20000; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    bits[0] = state & 0x7fffffff;
    values.push(asFloat[0]);
  }
  // 2000 consecutive float32s after each point, and 4000 evenly spread values in [0, 12].
  for (const point of [0.5, 0.625, 1, 5, 9, 9.01, 10]) {
    asFloat[0] = point;
    const first = bits[0] - 1000;
    for (let i = 0; i < 2000; i++) {
      bits[0] = first + i;
      values.push(asFloat[0]);
    }
  }
  for (let i = 0; i < 4000; i++) values.push(i * 0.003);
  values.push(3.4e38, 1e20, NaN);
  return Float32Array.from([...values, ...values.map((v) => -v)]);
}

const VALUES = testValues();

/** The largest error of `actual` against `reference(x)` in units of `unit(reference)`. */
function worstError(
  actual: Float32Array,
  reference: (x: number) => number,
  unit: (exact: number) => number,
): { error: number; at: number } {
  let worst = { error: 0, at: 0 };
  for (let i = 0; i < VALUES.length; i++) {
    if (Number.isNaN(VALUES[i])) continue;
    const exact = reference(VALUES[i]);
    const error = Math.abs(actual[i] - exact) / unit(exact);
    if (!(error <= worst.error)) worst = { error, at: VALUES[i] };
  }
  return worst;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

for (const build of ENGINE_BUILDS) {
  Deno.test(`TanH kernel (${build} build): within ${TANH_ULPS} ulps of float64 tanh, ±0/±Inf/NaN kept`, async () => {
    await withEngineBuild(build, async () => {
      const y = (await engineKernels()).unary("tanh", VALUES);
      const worst = worstError(y, Math.tanh, ulp);
      console.log(`max error ${worst.error.toFixed(3)} ulps at x = ${worst.at}`);
      assert.ok(worst.error <= TANH_ULPS, `${worst.error} ulps at x = ${worst.at}`);
      for (let i = 0; i < VALUES.length; i++) {
        const x = VALUES[i];
        if (Number.isNaN(x)) assert.ok(Number.isNaN(y[i]), "NaN stays NaN");
        else if (Math.abs(x) >= 9.02) assert.equal(y[i], Math.sign(x), `tanh(${x})`);
        else if (x === 0) assert.ok(Object.is(y[i], x), `tanh(${Object.is(x, -0) ? "-0" : "0"})`);
      }
    });
  });

  Deno.test(`Sigmoid kernel (${build} build): within ${SIGMOID_UNITS} × 2^-24 of float64 1 / (1 + exp(-x))`, async () => {
    await withEngineBuild(build, async () => {
      const y = (await engineKernels()).unary("sigmoid", VALUES);
      const worst = worstError(y, sigmoid, () => 2 ** -24);
      console.log(`max error ${worst.error.toFixed(3)} × 2^-24 at x = ${worst.at}`);
      assert.ok(worst.error <= SIGMOID_UNITS, `${worst.error} × 2^-24 at x = ${worst.at}`);
      assert.ok(Number.isNaN(y[VALUES.findIndex(Number.isNaN)]));
      assert.equal(y[VALUES.indexOf(Infinity)], 1);
      assert.equal(y[VALUES.indexOf(-Infinity)], 0);
    });
  });
}

Deno.test("TanH / Sigmoid kernels: the same bits in both builds and at any position (tails of 1-3)", async () => {
  const results = [];
  for (const build of ENGINE_BUILDS) {
    results.push(
      await withEngineBuild(build, async () => {
        const kernels = await engineKernels();
        const whole = ["tanh", "sigmoid"].map((fn) =>
          kernels.unary(fn as "tanh" | "sigmoid", VALUES)
        );
        for (const [index, fn] of (["tanh", "sigmoid"] as const).entries()) {
          for (let count = 1; count <= 7; count++) {
            const start = 4001 + count;
            const part = kernels.unary(fn, VALUES.subarray(start, start + count));
            assert.deepEqual(part, whole[index].subarray(start, start + count), `${fn} ${count}`);
          }
        }
        return whole;
      }),
    );
  }
  assert.deepEqual(results[0], results[1]);
});
