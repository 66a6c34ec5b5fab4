// The engine module's two builds (src/wasm/engine_build.ts): the relaxed-SIMD build is chosen
// exactly where the runtime validates it, "portable" forces the other one, and both compute the
// float matrix product as documented: every output sums its products in order in one float32
// accumulator, the portable build rounding each product (a multiply then an add), the relaxed
// build fusing them where the CPU has FMA. Expected values are computed here, in float64 with
// explicit float32 rounding.

import assert from "node:assert/strict";
import { engineKernels } from "../src/wasm/engine.ts";
import {
  engineBuild,
  engineModuleBase64,
  relaxedSimdSupported,
  useEngineBuild,
} from "../src/wasm/engine_build.ts";
import { decodeBase64 } from "../src/wasm/load.ts";
import { blobOf, layer, net, randomValues } from "./_builders.ts";
import { runNet } from "../src/engine/run.ts";
import { withEngineBuild } from "./_engine_builds.ts";

Deno.test("engine builds: relaxed where the runtime validates the relaxed module, portable forced", async () => {
  const relaxedModule = decodeBase64(await engineModuleBase64("relaxed"));
  const portableModule = decodeBase64(await engineModuleBase64("portable"));
  assert.equal(WebAssembly.validate(portableModule), true);
  assert.equal(relaxedSimdSupported(), WebAssembly.validate(relaxedModule));
  console.log(`relaxed SIMD in this runtime: ${relaxedSimdSupported()}`);
  try {
    useEngineBuild("portable");
    assert.equal(engineBuild(), "portable");
    const portable = await engineKernels();
    useEngineBuild("auto");
    assert.equal(engineBuild(), relaxedSimdSupported() ? "relaxed" : "portable");
    const automatic = await engineKernels();
    assert.equal(automatic === portable, !relaxedSimdSupported());
    useEngineBuild("relaxed");
    assert.equal(engineBuild(), relaxedSimdSupported() ? "relaxed" : "portable");
  } finally {
    useEngineBuild("auto");
  }
});

// y[rows, outputs] = x[rows, depth] W[depth, outputs]: a transposed InnerProduct runs the packed
// panel GEMM (assembly/engine/panels.ts); depth > 256 crosses its k blocks, and 5 x 11 outputs
// leave short edge tiles (a row of one, three columns through narrowEdge).
const [ROWS, DEPTH, OUTPUTS] = [5, 300, 11];
const x = randomValues(ROWS * DEPTH, 11);
const w = randomValues(DEPTH * OUTPUTS, 12);

/** The products summed in order of k in float32; `fused`: each multiply-add rounded once. */
function expected(fused: boolean): Float32Array {
  const y = new Float32Array(ROWS * OUTPUTS);
  for (let r = 0; r < ROWS; r++) {
    for (let o = 0; o < OUTPUTS; o++) {
      let sum = 0;
      for (let p = 0; p < DEPTH; p++) {
        // The float32 x float32 product is exact in float64.
        const product = x[r * DEPTH + p] * w[p * OUTPUTS + o];
        sum = Math.fround(sum + (fused ? product : Math.fround(product)));
      }
      y[r * OUTPUTS + o] = sum;
    }
  }
  return y;
}

async function product(): Promise<Float32Array> {
  const kernels = await engineKernels();
  return kernels.innerProduct({
    x,
    rows: ROWS,
    depth: DEPTH,
    weights: w,
    transposed: true,
    bias: null,
    outputs: OUTPUTS,
  });
}

Deno.test("engine builds: the portable GEMM rounds each product, then adds in order", async () => {
  const y = await withEngineBuild("portable", product);
  assert.deepEqual(y, expected(false));
});

Deno.test("engine builds: the relaxed GEMM's every output is the fused or the unfused sum", async () => {
  const y = await withEngineBuild("relaxed", product);
  const [fused, unfused] = [expected(true), expected(false)];
  const differing = fused.filter((value, i) => value !== unfused[i]).length;
  console.log(`fused and unfused sums differ in ${differing} of ${fused.length} outputs`);
  assert.ok(differing > 0, "the data tells the two apart");
  let matchedFused = 0;
  for (let i = 0; i < y.length; i++) {
    assert.ok(y[i] === fused[i] || y[i] === unfused[i], `output ${i}: ${y[i]}`);
    if (y[i] === fused[i]) matchedFused++;
  }
  console.log(`relaxed build: ${matchedFused} of ${y.length} outputs equal the fused sums`);
});

Deno.test("engine builds: a net run in one build and then the other runs the other's kernels", async () => {
  // A layer keeps the kernel made for it between runs (src/engine/conv.ts): the one made in
  // the other build's module must not be taken.
  const model = net("data", [ROWS, DEPTH], [
    layer("ip", "InnerProduct", ["data"], ["y"], {
      inner_product_param: { num_output: OUTPUTS, bias_term: false, transpose: true },
    }, [blobOf([DEPTH, OUTPUTS], [...w])]),
  ]);
  const inputs = new Map([["data", { shape: [ROWS, DEPTH], data: x }]]);
  const run = async () => (await runNet(model, { inputs })).outputs.get("y")!.data;
  const relaxed = await withEngineBuild("relaxed", run);
  assert.deepEqual(await withEngineBuild("portable", run), expected(false));
  assert.deepEqual(await withEngineBuild("relaxed", run), relaxed);
  assert.deepEqual(relaxed, await withEngineBuild("relaxed", product));
});
