// Command-line option values: each bad value is a USAGE error naming the option (issue 15.23).

import assert from "node:assert/strict";
import { mkdtemp, readdir } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "../src/cli/args.ts";
import { integerOption, numberOption } from "../src/cli/common.ts";
import { DATA_FLAGS, DATA_OPTIONS, transformFromArgs } from "../src/cli/data_options.ts";
import { ConvertError } from "../src/errors.ts";
import { modelFile, modelNames } from "./_models.ts";
import { runCli as run } from "./_cli.ts";

const SPEC = {
  positionals: ["model_file", "save_path"],
  flags: ["json"],
  options: ["samples", "out", "offset-d", "input"],
};

/** Asserts that `action` throws a USAGE error whose message matches `pattern`. */
function assertUsage(action: () => unknown, pattern: RegExp) {
  assert.throws(
    action,
    (error: unknown) =>
      error instanceof ConvertError && error.code === "USAGE" && pattern.test(error.message),
  );
}

Deno.test("parseArgs: -- ends the options and is never itself an argument", () => {
  assertUsage(() => parseArgs(["m", "--"], SPEC, "u"), /missing <save_path>/);
  const args = parseArgs(["m", "--json", "--", "--out"], SPEC, "u");
  assert.equal(args.positionals.save_path, "--out");
  assert.ok(args.flags.has("json"));
  assertUsage(() => parseArgs(["m", "-x"], SPEC, "u"), /unknown option -x.*write --/);
  assert.equal(parseArgs(["m", "-"], SPEC, "u").positionals.save_path, "-");
});

Deno.test("parseArgs: empty values and arguments are refused, naming them", () => {
  assertUsage(() => parseArgs(["m", ""], SPEC, "u"), /<save_path> is empty/);
  assertUsage(() => parseArgs(["", "s"], SPEC, "u"), /<model_file> is empty/);
  assertUsage(() => parseArgs(["m", "s", "--samples="], SPEC, "u"), /--samples needs a value/);
  assertUsage(() => parseArgs(["m", "s", "--out", ""], SPEC, "u"), /--out needs a value/);
  // An option's value is never the next option.
  assertUsage(() => parseArgs(["m", "s", "--out", "--json"], SPEC, "u"), /--out needs a value/);
  assert.deepEqual(parseArgs(["m", "s", "--out=--json"], SPEC, "u").options.get("out"), ["--json"]);
  assertUsage(() => parseArgs(["m", "s", "--json=1"], SPEC, "u"), /--json takes no value/);
  assert.deepEqual(parseArgs(["m", "s", "--offset-d", "-3"], SPEC, "u").options.get("offset-d"), [
    "-3",
  ]);
});

Deno.test("integerOption / numberOption: decimal text only, at least the minimum", () => {
  const args = (value: string) => parseArgs(["m", "s", `--samples=${value}`], SPEC, "u");
  assert.equal(integerOption(args("12"), "samples", 4, 1), 12);
  assert.equal(integerOption(parseArgs(["m", "s"], SPEC, "u"), "samples", 4, 1), 4);
  assertUsage(
    () => integerOption(args("0"), "samples", 4, 1),
    /--samples needs a whole number >= 1, not "0"/,
  );
  for (const bad of [" ", "0x10", "1e3", "2.5", "-1", "+3", "1_000"]) {
    assertUsage(
      () => integerOption(args(bad), "samples", 4),
      /--samples needs a whole number >= 0/,
    );
  }
  const number = (value: string) => numberOption(args(value), "samples");
  assert.equal(number("-2.5e-1"), -0.25);
  assert.equal(number(".5"), 0.5);
  for (const bad of [" ", "0x10", "Infinity", "NaN", "1e999", "--"]) {
    assertUsage(() => number(bad), /--samples needs a number/);
  }
});

Deno.test("convert: an empty save path, a -- save path and --samples 0 are refused before anything is read", async () => {
  const dir = await mkdtemp("/tmp/caffe-quant-args-");
  for (
    const [argv, pattern] of [
      [["a.prototxt", "b.caffemodel", "r.txt", ""], /<save_path> is empty/],
      [["a.prototxt", "b.caffemodel", "r.txt", "--"], /missing <save_path>/],
      [["a.prototxt", "b.caffemodel", "r.txt", join(dir, "m"), "--samples", "0"], /--samples/],
      [["a.prototxt", "b.caffemodel", "r.txt", join(dir, "m"), "--compare="], /--compare takes no/],
    ] as const
  ) {
    const { code, err } = await run("convert", ...argv);
    assert.equal(code, 2, argv.join(" "));
    assert.match(err, /^error\[USAGE\]/);
    assert.match(err, pattern);
  }
  assert.deepEqual(await readdir(dir), []);
});

Deno.test("record --calibrate= and compare --samples 0 are USAGE errors naming the option", {
  ignore: !modelNames.includes("lenet"),
}, async () => {
  const model = modelFile("lenet", "deploy.prototxt");
  const weights = modelFile("lenet", "weights.caffemodel");
  const record = await run("record", model, weights, "--calibrate=");
  assert.equal(record.code, 2);
  assert.match(record.err, /error\[USAGE\] --calibrate needs a value/);
  const compare = await run("compare", model, weights, model, weights, "--samples", "0");
  assert.equal(compare.code, 2);
  assert.match(compare.err, /error\[USAGE\] --samples needs a whole number >= 1, not "0"/);
});

Deno.test("parseArgs: an option given twice is refused unless it names several things", () => {
  assertUsage(
    () => parseArgs(["m", "s", "--out", "a", "--out=b"], SPEC, "u"),
    /--out is given twice \(a, b\): give it once/,
  );
  assertUsage(() => parseArgs(["m", "s", "--samples=1", "--samples=2"], SPEC, "u"), /--samples/);
  const inputs = parseArgs(["m", "s", "--input", "x=a.npy", "--input", "x=b.npy"], SPEC, "u");
  assert.deepEqual(inputs.options.get("input"), ["x=a.npy", "x=b.npy"]);
});

Deno.test("data options read their numbers as the other options do: decimal only", async () => {
  const spec = { positionals: [], flags: DATA_FLAGS, options: DATA_OPTIONS };
  const transform = (...argv: string[]) => transformFromArgs(parseArgs(argv, spec, "u"));
  for (
    const [argv, pattern] of [
      [["--scale", "0x10"], /--scale needs a number, not "0x10"/],
      [["--scale", "Infinity"], /--scale needs a number/],
      [["--crop", "1e2"], /--crop needs a whole number >= 1, not "1e2"/],
      [["--crop", "0"], /--crop needs a whole number >= 1/],
      [["--mean", "104,0x75,123"], /--mean needs a number, not "0x75"/],
    ] as const
  ) {
    await assert.rejects(
      transform(...argv),
      (error: unknown) =>
        error instanceof ConvertError && error.code === "USAGE" && pattern.test(error.message),
      argv.join(" "),
    );
  }
  const { transform: read } = await transform("--mean", "104, 117.5, 123", "--scale", ".5");
  assert.deepEqual(read.mean, [104, 117.5, 123]);
  assert.equal(read.scale, 0.5);
});
