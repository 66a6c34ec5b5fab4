/**
 * The web page calibrates from a folder of images in headless Chromium: lenet + a folder of
 * JPEG and PNG files (gray, scaled as LeNet's training data) gives the record and the five
 * outputs, byte for byte those of `quantize()` in Deno on the same files.
 */

import assert from "node:assert/strict";
import { copyFile, mkdir, readFile } from "node:fs/promises";
import { loadNet, quantize } from "../core.ts";
import { readSamples } from "../src/data/samples.ts";
import { sampleFiles } from "../src/io/sample_files.ts";
import { haveChromium, withPage } from "./_browser.ts";
import { haveLenet, lenetModel, lenetWeights, repoRoot } from "./_runtime_fixture.ts";

const IMAGES = ["gray8.png", "rgb8.png", "ycc420.jpg", "progressive.jpg", "palette.png"];
const fixtures = new URL("./fixtures/data/synthetic/", import.meta.url).pathname;

Deno.test({
  name: "web page calibrates lenet on a folder of images; record and downloads equal Deno's",
  ignore: !haveChromium || !haveLenet,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async ({ page, dir }) => {
      const folder = `${dir}/images`;
      await mkdir(`${folder}/more`, { recursive: true });
      for (const [i, name] of IMAGES.entries()) {
        await copyFile(`${fixtures}${name}`, `${folder}/${i < 3 ? "" : "more/"}${name}`);
      }
      await copyFile(`${fixtures}mean.binaryproto`, `${folder}/notes.binaryproto`); // not an image

      const model = await readFile(lenetModel, "utf8");
      const weights = await readFile(lenetWeights);
      const net = loadNet(model, weights);
      const transform = { gray: true, scale: 0.00390625 };
      const samples = [];
      for await (const sample of readSamples(net, sampleFiles([folder]), { transform })) {
        samples.push(sample.inputs);
      }
      assert.equal(samples.length, IMAGES.length);
      const expected = await quantize({ model, weights, calibration: samples });

      await page.setInputFiles("#model-file", lenetModel);
      await page.setInputFiles("#weights-file", lenetWeights);
      await page.setInputFiles("#image-folder", folder);
      assert.match((await page.textContent("#image-folder-name"))!, /^5 images \(/);
      assert.equal(await page.textContent("#convert"), "Calibrate and convert");
      await page.check("#gray");
      await page.fill("#scale", "0.00390625");
      await page.fill("#prefix", "lenet");
      await page.click("#convert");
      await page.waitForSelector("#result:not([hidden])");
      assert.match(
        (await page.textContent("#calibration-summary"))!,
        /^Calibrated 4 layers on 5 images \(conv1: /,
      );

      const files: Record<string, string | Uint8Array> = {
        record: expected.record,
        ...expected.files,
      };
      const names: Record<string, string> = {
        record: "lenet_record.txt",
        fakeQuantModel: "lenet_fake_quant_model.prototxt",
        fakeQuantWeights: "lenet_fake_quant_weights.caffemodel",
        deployModel: "lenet_deploy_model.prototxt",
        deployWeights: "lenet_deploy_weights.caffemodel",
        quantInfo: "lenet_quant.json",
      };
      for (const [key, content] of Object.entries(files)) {
        const [download] = await Promise.all([
          page.waitForEvent("download"),
          page.click(`a[data-output="${key}"]`),
        ]);
        assert.equal(download.suggestedFilename(), names[key]);
        const path = `${dir}/download-${names[key]}`;
        await download.saveAs(path);
        const bytes = await Deno.readFile(path);
        const want = typeof content === "string" ? new TextEncoder().encode(content) : content;
        assert.ok(bytes.length === want.length && bytes.every((b, i) => b === want[i]), key);
      }
      await Deno.mkdir(`${repoRoot}screenshots`, { recursive: true });
      await page.screenshot({ path: `${repoRoot}screenshots/web_calibrate.png`, fullPage: true });
    });
  },
});
