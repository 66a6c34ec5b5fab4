/**
 * The engine pool in headless Chromium: bundled with esbuild as a page would bundle it (the
 * worker script beside the bundle), samples run on two module Web Workers — no cross-origin
 * isolation, the page's strict CSP — and give, bit for bit and in order, what `runNet` gives in
 * Deno with the engine build the page chose (the workers take the page's build).
 */

import assert from "node:assert/strict";
import * as esbuild from "esbuild";
import { loadNet } from "../src/caffe/model.ts";
import { runNet } from "../src/engine/run.ts";
import { npmSpecifiers } from "../scripts/npm_specifiers.ts";
import { randomValues } from "./_builders.ts";
import { haveChromium, withPage } from "./_browser.ts";
import { withEngineBuild } from "./_engine_builds.ts";
import { haveLenet, lenetModel, lenetWeights } from "./_runtime_fixture.ts";

const root = new URL("../", import.meta.url).pathname;

Deno.test({
  name: "Chromium runs lenet samples on 2 Web Workers, equal to runNet in Deno, in order",
  ignore: !haveChromium || !haveLenet,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async ({ page, dir }) => {
      try {
        await esbuild.build({
          absWorkingDir: root,
          entryPoints: {
            pool_check: "tests/_browser_pool_entry.ts",
            engine_worker_web: "src/engine/engine_worker_web.ts",
          },
          outdir: `${dir}/site`,
          bundle: true,
          format: "esm",
          platform: "browser",
          target: "es2022",
          logLevel: "warning",
          define: { CAFFE_QUANT_WEB_WORKER: JSON.stringify("./engine_worker_web.js") },
          plugins: [npmSpecifiers(root)],
        });
      } finally {
        await esbuild.stop();
      }
      const model = await Deno.readTextFile(lenetModel);
      const weights = await Deno.readFile(lenetWeights);
      const samples = [0, 1, 2, 3, 4].map((i) => [...randomValues(784, 60 + i)]);
      const { threads, prob, build } = await page.evaluate(async ([model, weights, samples]) => {
        const check = await import("/pool_check.js");
        return await check.runPool(model, weights, samples, 2);
      }, [model, [...weights], samples] as const);
      assert.equal(threads, 2, "two workers started in the page");
      console.log(`the page's engine build: ${build}`);
      const net = loadNet(model, weights);
      await withEngineBuild(build, async () => {
        for (const [i, values] of samples.entries()) {
          const { outputs } = await runNet(net, {
            inputs: new Map([["data", { shape: [1, 1, 28, 28], data: Float32Array.from(values) }]]),
          });
          assert.deepEqual(prob[i], [...outputs.get("prob")!.data], `sample ${i}`);
        }
      });
    });
  },
});
