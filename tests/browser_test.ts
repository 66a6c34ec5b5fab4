/**
 * The web page in headless Chromium: lenet + record converts in the worker, the page shows the
 * quantized layers with their factors and a plot, the five downloads equal Deno's outputs, and
 * the page requests nothing but its own files. A screenshot goes to screenshots/ (git-ignored).
 */

import assert from "node:assert/strict";
import { convertInPage, dropFiles, haveChromium, withPage } from "./_browser.ts";
import {
  hashOutputs,
  haveLenet,
  lenetModel,
  lenetWeights,
  referenceOutputs,
  repoRoot,
  writeLenetRecord,
} from "./_runtime_fixture.ts";

const screenshots = `${repoRoot}screenshots`;

/** A record whose scale_d (line 3) is negative. */
const BAD_RECORD =
  'record {\n  key: "conv1"\n  value { scale_d: -1 offset_d: 0 scale_w: 0.01 offset_w: 0 }\n}\n';

Deno.test({
  name: "web page converts lenet in a worker; downloads equal Deno's outputs",
  ignore: !haveChromium || !haveLenet,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const expected = await hashOutputs(await referenceOutputs());
    await withPage(async (session) => {
      const { page, url, requests, dir } = session;
      const record = await writeLenetRecord(dir);
      const inputs = { model: lenetModel, weights: lenetWeights, record };
      const outputs = await convertInPage(session, inputs, "lenet");
      assert.deepEqual(await hashOutputs(outputs), expected);

      // The table: one row per quantized layer, with the record's factors as written in it.
      const rows = await page.$$eval(
        "#layers tbody tr",
        (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)),
      );
      assert.deepEqual(rows.map((row) => row[0]), ["conv1", "conv2", "ip1", "ip2"]);
      assert.deepEqual(rows.map((row) => row[3]), ["0.00392157", "0.05", "0.1", "0.05"]);
      assert.deepEqual(rows.map((row) => row[4]), ["-128", "0", "0", "-128"]);
      assert.match(rows[0][5]!, /^20 channels, 0\.002500 … 0\.004400$/);
      assert.match(rows[2][5]!, /^0\.000400000 \(per tensor\)$/);

      // The plot shows the layer with the most channels (conv2: 50) until another is chosen.
      assert.equal(await page.inputValue("#plot-layer"), "conv2");
      assert.equal(await page.locator("#plot svg rect.bar").count(), 50);
      await page.selectOption("#plot-layer", "conv1");
      assert.equal(await page.locator("#plot svg rect.bar").count(), 20);

      await Deno.mkdir(screenshots, { recursive: true });
      await page.screenshot({ path: `${screenshots}/web_lenet.png`, fullPage: true });

      const origin = new URL(url).origin;
      const foreign = requests.filter((r) => !r.startsWith(origin) && !/^(blob|data):/.test(r));
      assert.deepEqual(foreign, [], "the page requested something from elsewhere");
    });
  },
});

Deno.test({
  name: "web page shows a bad record's error with its code, line and column",
  ignore: !haveChromium || !haveLenet,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async ({ page }) => {
      // The prototxt and the record are dropped on the page (each finds its input by its
      // name), the weights are picked.
      await dropFiles(page, "header", [
        { name: "bad_record.txt", text: BAD_RECORD },
        { name: "deploy.prototxt", text: await Deno.readTextFile(lenetModel) },
      ]);
      await page.setInputFiles("#weights-file", lenetWeights);
      assert.equal(await page.textContent("#model-file-name"), "deploy.prototxt (1.7 KiB)");
      assert.equal(await page.textContent("#record-file-name"), "bad_record.txt (88 B)");
      await page.click("#convert");
      await page.waitForSelector("#error:not([hidden])");
      const message = await page.textContent("#error");
      assert.match(message!, /^error\[RECORD_BAD_SCALE\] bad_record\.txt:3:\d+/);
      assert.equal(await page.isHidden("#result"), true);
      await page.screenshot({ path: `${screenshots}/web_error.png` });
    });
  },
});
