/**
 * Drives the web page (web/, built by scripts/serve_web.ts) in headless Chromium with
 * playwright-core, for tests/browser_test.ts and tests/same_bytes_test.ts. Chromium is Debian's
 * `/usr/bin/chromium` (or `$CHROMIUM`); nothing is downloaded. With CI=true a missing browser
 * fails loudly; elsewhere the browser tests are skipped with a printed reason.
 *
 * @module
 */

import { type Browser, chromium, type Page } from "playwright-core";
import { buildWeb, serveStatic } from "../scripts/serve_web.ts";
import {
  OUTPUT_SUFFIXES,
  type OutputBytes,
  outputFileName,
  type OutputKey,
} from "./_runtime_fixture.ts";
import { CHROMIUM_ARGS, chromiumPath } from "../scripts/chromium.ts";

/** The Chromium binary the tests drive. */

function findChromium(): boolean {
  try {
    if (Deno.statSync(chromiumPath).isFile) return true;
  } catch {
    // Missing: reported below.
  }
  const reason = `Chromium is not installed at ${chromiumPath} (apt-get install -y chromium)`;
  if (Deno.env.get("CI") === "true") throw new Error(`CI=true but ${reason}`);
  console.warn(`skipping the browser tests: ${reason}`);
  return false;
}

/** Whether the browser tests can run here. */
export const haveChromium: boolean = findChromium();

/** What {@linkcode withPage} hands its callback. */
export interface PageSession {
  /** A fresh page of a context that accepts downloads. */
  page: Page;
  /** The served page's URL. */
  url: string;
  /** Every URL the page requested so far. */
  requests: string[];
  /** A temporary folder, removed afterwards. */
  dir: string;
}

/**
 * Builds the page into a temporary folder, serves it on 127.0.0.1 (free port), opens it in
 * headless Chromium, runs `use`, and tears everything down (within `timeoutMs`).
 */
export async function withPage(
  use: (session: PageSession) => Promise<void>,
  timeoutMs = 120_000,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "caffe-quant-web-" });
  let server: Deno.HttpServer | undefined;
  let browser: Browser | undefined;
  try {
    await buildWeb(`${dir}/site`);
    const listening = Promise.withResolvers<string>();
    server = serveStatic({ root: `${dir}/site`, port: 0, onListen: listening.resolve });
    const url = await listening.promise;
    browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      args: [...CHROMIUM_ARGS],
      timeout: 30_000,
    });
    const context = await browser.newContext({
      acceptDownloads: true,
      viewport: { width: 1100, height: 900 },
    });
    context.setDefaultTimeout(timeoutMs / 2);
    const page = await context.newPage();
    const requests: string[] = [];
    page.on("request", (request) => requests.push(request.url()));
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(String(error)));
    await page.goto(url);
    await use({ page, url, requests, dir });
    if (errors.length > 0) throw new Error(`errors in the page:\n${errors.join("\n")}`);
  } finally {
    await browser?.close();
    await server?.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The three input files of a conversion, as paths. */
export interface InputPaths {
  /** The prototxt. */
  model: string;
  /** The caffemodel. */
  weights: string;
  /** The record file. */
  record: string;
}

/** Chooses the three files in the page and sets the prefix; then presses Convert. */
async function startConversion(
  page: Page,
  inputs: InputPaths,
  prefix: string,
): Promise<void> {
  await page.setInputFiles("#model-file", inputs.model);
  await page.setInputFiles("#weights-file", inputs.weights);
  await page.setInputFiles("#record-file", inputs.record);
  await page.fill("#prefix", prefix);
  await page.click("#convert");
}

/**
 * Converts in the page and downloads the five outputs through their links, checking each link's
 * file name (SPEC §7, with `prefix`); returns their bytes.
 */
export async function convertInPage(
  session: PageSession,
  inputs: InputPaths,
  prefix: string,
): Promise<OutputBytes> {
  const { page, dir } = session;
  await startConversion(page, inputs, prefix);
  await page.waitForSelector("#result:not([hidden])");
  const outputs: Partial<OutputBytes> = {};
  for (const key of Object.keys(OUTPUT_SUFFIXES) as OutputKey[]) {
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.click(`a[data-output="${key}"]`),
    ]);
    const expectedName = outputFileName(prefix, key);
    if (download.suggestedFilename() !== expectedName) {
      throw new Error(
        `download ${key} is named ${download.suggestedFilename()}, not ${expectedName}`,
      );
    }
    const path = `${dir}/download-${expectedName}`;
    await download.saveAs(path);
    outputs[key] = await Deno.readFile(path);
  }
  return outputs as OutputBytes;
}

/** Drops text files on `selector` as a user dragging them from a file manager would. */
export async function dropFiles(
  page: Page,
  selector: string,
  files: { name: string; text: string }[],
): Promise<void> {
  const dataTransfer = await page.evaluateHandle((files) => {
    const transfer = new DataTransfer();
    for (const { name, text } of files) transfer.items.add(new File([text], name));
    return transfer;
  }, files);
  await page.dispatchEvent(selector, "dragover", { dataTransfer });
  await page.dispatchEvent(selector, "drop", { dataTransfer });
}
