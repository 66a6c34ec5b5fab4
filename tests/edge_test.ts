/**
 * examples/edge.ts under Deno.serve: a multipart POST of lenet gives a ZIP of the five outputs,
 * byte-identical to the in-process conversion; bad requests answer 4xx with a JSON error.
 */

import assert from "node:assert/strict";
import { handler } from "../examples/edge.ts";
import {
  haveLenet,
  LENET_RECORD,
  lenetModel,
  lenetWeights,
  OUTPUT_SUFFIXES,
  outputFileName,
  type OutputKey,
  referenceOutputs,
} from "./_runtime_fixture.ts";
import { readStoredZip } from "./_zip_reader.ts";

/** Serves the handler on 127.0.0.1 (a free port) while `use` runs, then shuts it down. */
async function withServer(use: (url: string) => Promise<void>): Promise<void> {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  try {
    await use(`http://127.0.0.1:${server.addr.port}/`);
  } finally {
    await server.shutdown();
  }
}

async function lenetForm(model?: string): Promise<FormData> {
  const form = new FormData();
  form.set("model", new Blob([model ?? await Deno.readTextFile(lenetModel)]), "deploy.prototxt");
  form.set("weights", new Blob([await Deno.readFile(lenetWeights)]), "weights.caffemodel");
  form.set("record", new Blob([LENET_RECORD]), "record.txt");
  return form;
}

Deno.test({
  name: "edge handler answers a lenet upload with a ZIP of the five outputs",
  ignore: !haveLenet,
  async fn() {
    const expected = await referenceOutputs();
    await withServer(async (url) => {
      const form = await lenetForm();
      form.set("prefix", "lenet");
      const response = await fetch(url, { method: "POST", body: form, signal: timeout() });
      assert.equal(response.status, 200, await response.clone().text());
      assert.equal(response.headers.get("content-type"), "application/zip");
      assert.match(response.headers.get("content-disposition")!, /filename="lenet\.zip"/);
      const entries = readStoredZip(new Uint8Array(await response.arrayBuffer()));
      const keys = Object.keys(OUTPUT_SUFFIXES) as OutputKey[];
      assert.deepEqual(entries.map((e) => e.name), keys.map((key) => outputFileName("lenet", key)));
      for (const [i, key] of keys.entries()) {
        assert.ok(entries[i].content.length > 0, key);
        assert.deepEqual(entries[i].content, expected[key], `${key} differs from convert()`);
      }
    });
  },
});

Deno.test({
  name: "edge handler without a prefix names the outputs without a leading _",
  ignore: !haveLenet,
  async fn() {
    await withServer(async (url) => {
      const response = await fetch(url, {
        method: "POST",
        body: await lenetForm(),
        signal: timeout(),
      });
      assert.equal(response.status, 200);
      const names = readStoredZip(new Uint8Array(await response.arrayBuffer())).map((e) => e.name);
      assert.deepEqual(names, Object.values(OUTPUT_SUFFIXES));
    });
  },
});

Deno.test({
  name: "edge handler answers a broken prototxt with 400 and the error's code and place",
  ignore: !haveLenet,
  async fn() {
    await withServer(async (url) => {
      const broken = (await Deno.readTextFile(lenetModel)).replace(
        'name: "conv2"',
        'name: "conv2" }}',
      );
      const response = await fetch(url, {
        method: "POST",
        body: await lenetForm(broken),
        signal: timeout(),
      });
      assert.equal(response.status, 400);
      assert.match(response.headers.get("content-type")!, /^application\/json/);
      const { error } = await response.json();
      const line = broken.split("\n").findIndex((text) => text.includes('"conv2" }}')) + 1;
      assert.equal(error.code, "TEXT_SYNTAX");
      assert.equal(error.file, "deploy.prototxt");
      assert.equal(error.line, line);
      assert.equal(typeof error.message, "string");
    });
  },
});

Deno.test("edge handler answers a missing field with 400 USAGE and a GET with 405", async () => {
  await withServer(async (url) => {
    const form = new FormData();
    form.set("model", 'name: "x"');
    const missing = await fetch(url, { method: "POST", body: form, signal: timeout() });
    assert.equal(missing.status, 400);
    const { error } = await missing.json();
    assert.equal(error.code, "USAGE");
    assert.match(error.message, /"weights"/);

    const get = await fetch(url, { signal: timeout() });
    assert.equal(get.status, 405);
    assert.equal((await get.json()).error.code, "USAGE");
  });
});

Deno.test("edge handler refuses a prefix with a path separator", async () => {
  await withServer(async (url) => {
    const form = new FormData();
    form.set("model", 'name: "x"');
    form.set("weights", new Blob([new Uint8Array(0)]), "w.caffemodel");
    form.set("record", "");
    form.set("prefix", "../evil");
    const response = await fetch(url, { method: "POST", body: form, signal: timeout() });
    assert.equal(response.status, 400);
    assert.equal((await response.json()).error.code, "USAGE");
  });
});

function timeout(): AbortSignal {
  return AbortSignal.timeout(60_000);
}

Deno.test({
  name: "edge handler names a non-ASCII prefix's ZIP with an ASCII fallback and RFC 8187 filename*",
  ignore: !haveLenet,
  async fn() {
    await withServer(async (url) => {
      const form = await lenetForm();
      form.set("prefix", "café-ü");
      const response = await fetch(url, { method: "POST", body: form, signal: timeout() });
      assert.equal(response.status, 200, await response.clone().text());
      // By hand: é is UTF-8 C3 A9, ü is C3 BC; each non-ASCII character is one "_" in the fallback.
      assert.equal(
        response.headers.get("content-disposition"),
        `attachment; filename="caf_-_.zip"; filename*=UTF-8''caf%C3%A9-%C3%BC.zip`,
      );
      const names = readStoredZip(new Uint8Array(await response.arrayBuffer())).map((e) => e.name);
      assert.equal(names[4], "café-ü_quant.json");
    });
  },
});
