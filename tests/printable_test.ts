// deno-lint-ignore-file no-control-regex -- the tests look for control characters
// Names with control characters, terminal escapes or invisible formatting are escaped in every
// human-readable output (issue 15.20).

import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ConvertError } from "../src/errors.ts";
import { printable, withArticle } from "../src/printable.ts";
import { statusLine } from "../src/cli/progress.ts";
import { runCli as run } from "./_cli.ts";

/** Control characters (other than line ends) and the invisible formatting characters. */
const UNSAFE =
  /[\u0000-\u0009\u000b\u000c\u000e-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/;

Deno.test("printable: escapes controls and invisible formatting, keeps the rest", () => {
  assert.equal(printable("conv1"), "conv1");
  assert.equal(printable("a\u001b[2Jb"), "a\\u001b[2Jb");
  assert.equal(printable("a\nb\tc\rd"), "a\\nb\\tc\\rd");
  assert.equal(printable("a\nb\rc\u0007", { keepLines: true }), "a\nb\rc\\u0007");
  assert.equal(printable("x\u009b31m\u202eevil\u200b"), "x\\u009b31m\\u202eevil\\u200b");
  assert.equal(printable("é中文 ✓"), "é中文 ✓");
  // The escapes are JSON's: a program can read the exact name back.
  assert.equal(JSON.parse(`"${printable("a\u001b\n\u202e")}"`), "a\u001b\n\u202e");
  assert.equal(withArticle("Input"), "an Input");
  assert.equal(withArticle("Pooling"), "a Pooling");
  assert.equal(withArticle("Upsample"), "an Upsample");
  assert.equal(withArticle("Uint8Array"), "a Uint8Array");
});

Deno.test("ConvertError.format: one line whatever the names hold", () => {
  const error = new ConvertError("UNDEFINED_BOTTOM", 'bottom "x\u001b]0;owned\u0007\nerror[OK]"', {
    file: "m\u001b.prototxt",
    line: 3,
    layer: "l\r1",
  });
  const text = error.format();
  assert.doesNotMatch(text, /[\n\r\u001b\u0007]/);
  assert.equal(
    text,
    'error[UNDEFINED_BOTTOM] m\\u001b.prototxt:3:1: layer "l\\r1": bottom ' +
      '"x\\u001b]0;owned\\u0007\\nerror[OK]"',
  );
});

Deno.test("the command line escapes names in tables, errors, warnings and usage errors", async () => {
  const dir = await mkdtemp("/tmp/caffe-quant-printable-");
  // Text-format escapes: \033 is ESC, \n a newline, \342\200\256 U+202E (right-to-left override).
  const evil = String.raw`c\033[2J\n\342\200\256`;
  const model = join(dir, "m.prototxt");
  await writeFile(
    model,
    `input: "data"\ninput_shape { dim: 1 dim: 2 dim: 4 dim: 4 }\n` +
      `layer { name: "${evil}" type: "ReLU" bottom: "data" top: "${evil}" }\n` +
      `layer { name: "bn${evil}" type: "BatchNorm" bottom: "${evil}" top: "bn" ` +
      `batch_norm_param { use_global_stats: false } }\n`,
  );
  const inspect = await run("inspect", model);
  assert.equal(inspect.code, 0, inspect.err);
  assert.doesNotMatch(inspect.out, UNSAFE);
  assert.match(inspect.out, /c\\u001b\[2J\\n\\u202e\s+ReLU/);
  assert.match(inspect.out, /warning: BatchNorm "bnc\\u001b\[2J\\n\\u202e"/);
  assert.equal(inspect.out.split("\n").length, 6, "header, titles, two layers, a warning, end");

  await writeFile(
    model,
    `layer { name: "r" type: "ReLU" bottom: "${evil}" top: "r" }\n`,
  );
  const undefinedBottom = await run("inspect", model);
  assert.equal(undefinedBottom.code, 2);
  assert.match(undefinedBottom.err, /^error\[UNDEFINED_BOTTOM\] .*c\\u001b\[2J\\n\\u202e/);
  assert.doesNotMatch(undefinedBottom.err, UNSAFE);
  assert.equal(undefinedBottom.err.split("\n").length, 2);

  const usage = await run("inspect", model, "--\u001b[31m");
  assert.equal(usage.code, 2);
  assert.match(usage.err, /unknown option --\\u001b\[31m\nusage: /);
  assert.doesNotMatch(usage.err, UNSAFE);
});

Deno.test("progress status lines show layer names escaped, on one line", async () => {
  const written: string[] = [];
  const line = statusLine((text) => written.push(text), true);
  await new Promise((resolve) => setTimeout(resolve, 350)); // drawn after 300 ms of work
  line.show("calibrating: at conv\u001b[2J\n1");
  assert.deepEqual(written, ["\rcalibrating: at conv\\u001b[2J\\n1"]);
});

Deno.test("compare's table shows names escaped, one line per row", async () => {
  const dir = await mkdtemp("/tmp/caffe-quant-printable-");
  const model = join(dir, "m.prototxt");
  const weights = join(dir, "w.caffemodel");
  await writeFile(
    model,
    `input: "data"\ninput_shape { dim: 1 dim: 2 dim: 4 dim: 4 }\n` +
      String.raw`layer { name: "r\033[2J\n1" type: "ReLU" bottom: "data" top: "t\n\033]0;x\007" }` +
      "\n",
  );
  await writeFile(weights, new Uint8Array());
  const { code, out, err } = await run("compare", model, weights, model, weights);
  assert.equal(code, 0, err);
  assert.doesNotMatch(out, UNSAFE);
  assert.match(out, /t\\n\\u001b\]0;x\\u0007/);
  const row = out.split("\n").find((line) => line.startsWith("2  "));
  assert.match(
    row ?? "",
    /^2 +r\\u001b\[2J\\n1 \(ReLU\) +t\\n\\u001b\]0;x\\u0007 +\[1, 2, 4, 4\] +1\.000000/,
  );
  assert.match(out, /^ +t\\n\\u001b\]0;x\\u0007 \(tensor\): PASS/m);
});
