// The comparison page in headless Chromium: ultraface_rfb320 (float vs its fake-quant model) and
// a net whose cosine falls to -1 (the widest y range). The page names both models, every column
// header has text, both plots have axis labels that do not overlap, and the sensitivity plot and
// table are there. Screenshots at two widths go to screenshots/ (git-ignored).

import assert from "node:assert/strict";
import { type Browser, chromium } from "playwright-core";
import { CHROMIUM_ARGS, chromiumPath } from "../scripts/chromium.ts";
import { loadNet } from "../src/caffe/model.ts";
import { readPrototxt } from "../src/caffe/prototxt.ts";
import { observeActivationRanges } from "../src/engine/calibrate.ts";
import { compareNets } from "../src/engine/compare.ts";
import { compareReportHtml } from "../src/engine/report.ts";
import { convertInMemory } from "../src/quant/convert.ts";
import { makeRecord } from "../src/quant/make_record.ts";
import { haveChromium } from "./_browser.ts";
import { modelFile, modelNames } from "./_models.ts";

const screenshots = new URL("../screenshots/", import.meta.url).pathname;
const MODEL = "ultraface_rfb320";

/** The float-vs-fake-quant page of MODEL. */
async function modelPage(): Promise<string> {
  const model = Deno.readTextFileSync(modelFile(MODEL, "deploy.prototxt"));
  const weights = Deno.readFileSync(modelFile(MODEL, "weights.caffemodel"));
  const float = loadNet(model, weights);
  const record = await makeRecord(float, {
    activationRanges: await observeActivationRanges(float, { samples: 1, seed: 1 }),
  });
  const { files } = await convertInMemory({ model, weights, record });
  const fake = loadNet(files.fakeQuantModel, files.fakeQuantWeights);
  const report = await compareNets(float, fake, { seed: 2 });
  assert.ok(report.sensitivity.length > 30);
  return compareReportHtml(report, {
    a: `${MODEL}/deploy.prototxt + weights.caffemodel`,
    b: `out/${MODEL}_fake_quant_model.prototxt + _fake_quant_weights.caffemodel`,
  });
}

/** y = -x then Softmax: cosine -1, so the plot spans [-1, 1] and 1 and 0.99 are 1 px apart. */
async function widePage(): Promise<string> {
  const net = (scale: number) =>
    readPrototxt(`
      input: "data" input_shape { dim: 2 dim: 5 }
      layer { name: "lin" type: "Power" bottom: "data" top: "y" power_param { scale: ${scale} } }
      layer { name: "prob" type: "Softmax" bottom: "y" top: "prob" }
    `);
  return compareReportHtml(await compareNets(net(1), net(-1)), { a: "one", b: "minus one" });
}

/** Boxes of the elements matching `selector` in the page. */
type Box = { x: number; y: number; width: number; height: number };

/** Whether two boxes overlap. */
function overlap(p: Box, q: Box): boolean {
  return p.x < q.x + q.width && q.x < p.x + p.width && p.y < q.y + q.height &&
    q.y < p.y + p.height;
}

Deno.test({
  name: "compare --html page in Chromium: models named, headers, axis labels, sensitivity",
  ignore: !haveChromium || !modelNames.includes(MODEL),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const pages = { model: await modelPage(), wide: await widePage() };
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({
        executablePath: chromiumPath,
        headless: true,
        args: [...CHROMIUM_ARGS],
        timeout: 30_000,
      });
      await Deno.mkdir(screenshots, { recursive: true });
      for (const [name, html] of Object.entries(pages)) {
        for (const width of [1280, 560]) {
          const page = await browser.newPage({ viewport: { width, height: 900 } });
          const requests: string[] = [];
          page.on("request", (request) => requests.push(request.url()));
          await page.setContent(html);
          const text = await page.locator("dl").innerText();
          assert.match(text, name === "model" ? /deploy\.prototxt/ : /one/);
          assert.match(text, name === "model" ? /fake_quant_model\.prototxt/ : /minus one/);
          const headers = await page.locator("th").allInnerTexts();
          assert.ok(headers.length > 0);
          for (const header of headers) assert.notEqual(header.trim(), "", "empty header");
          for (const svg of await page.locator("svg").all()) {
            const xLabels = await svg.locator("text.x-label").all();
            const yLabels = await svg.locator("text.y-label").all();
            assert.ok(xLabels.length >= 2, "x axis labels");
            assert.ok(yLabels.length >= 2, "y axis labels");
            const boxes = await Promise.all(yLabels.map((label) => label.boundingBox()));
            boxes.forEach((box, i) => {
              for (const other of boxes.slice(i + 1)) {
                assert.ok(!overlap(box!, other!), "y labels overlap");
              }
            });
            const xBoxes = await Promise.all(xLabels.map((label) => label.boundingBox()));
            // Rotated labels: their left edges step right without running into each other.
            xBoxes.slice(1).forEach((box, i) => assert.ok(box!.x > xBoxes[i]!.x));
          }
          if (name === "model") {
            assert.equal(await page.locator("svg").count(), 2);
            assert.match(await page.locator("h2").allInnerTexts().then(String), /Sensitivity/);
            assert.match(await page.locator("ul.verdicts").innerText(), /scores \(detector\)/);
          }
          assert.deepEqual(requests.filter((url) => !url.startsWith("about:")), []);
          const shot = `${screenshots}compare-${name}-${width}`;
          await page.screenshot({ path: `${shot}.png` });
          if (name === "model") {
            await page.locator("svg").nth(1).screenshot({ path: `${shot}-sensitivity.png` });
          }
          await page.close();
        }
      }
    } finally {
      await browser?.close();
    }
  },
});
