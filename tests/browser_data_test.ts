/**
 * The data path in headless Chromium: the library's JPEG (libjpeg-turbo in WebAssembly) and PNG
 * decoders and the resize kernel, bundled by esbuild as the web page is, give OpenCV's bytes.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as esbuild from "esbuild";
import { npmSpecifiers } from "../scripts/npm_specifiers.ts";
import { haveChromium, withPage } from "./_browser.ts";

const root = new URL("../", import.meta.url).pathname;
const FIXTURES = `${root}tests/fixtures/data`;
const expected = JSON.parse(await Deno.readTextFile(`${FIXTURES}/expected.json`));

function sha(values: number[]): string {
  return createHash("sha256").update(Uint8Array.from(values)).digest("hex");
}

Deno.test({
  name: "Chromium decodes JPEG and PNG and resizes as OpenCV does (bundled with esbuild)",
  ignore: !haveChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPage(async ({ page, dir }) => {
      try {
        await esbuild.build({
          absWorkingDir: root,
          entryPoints: ["tests/_browser_data_entry.ts"],
          outfile: `${dir}/site/data_check.js`,
          bundle: true,
          format: "esm",
          platform: "browser",
          target: "es2022",
          logLevel: "warning",
          plugins: [npmSpecifiers(root)],
        });
      } finally {
        await esbuild.stop();
      }
      const decode = async (name: string, color: boolean, size?: [number, number]) => {
        const bytes = [...await Deno.readFile(`${FIXTURES}/synthetic/${name}`)];
        return await page.evaluate(async ([bytes, color, name, size]) => {
          const check = await import("/data_check.js");
          return await check.decodeAndResize(bytes, color, name, size);
        }, [bytes, color, name, size] as const);
      };
      for (
        const name of ["ycc420.jpg", "progressive.jpg", "rgb8.png", "rgb16.png", "palette.png"]
      ) {
        assert.equal(sha(await decode(name, true)), expected.synthetic[name].color, name);
      }
      const resize = expected.resize.find((entry: { image: string; size: number[] }) =>
        entry.image.endsWith("rgb8.png") && entry.size.join("x") === "227x227"
      );
      assert.equal(sha(await decode("rgb8.png", true, [227, 227])), resize.sha);
    });
  },
});
