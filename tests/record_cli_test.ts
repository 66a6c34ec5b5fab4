import assert from "node:assert/strict";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { writeNpy } from "../core.ts";
import { lenetInput, mnistAvailable, mnistDigits } from "./_mnist.ts";
import { modelFile, modelNames } from "./_models.ts";
import { runCli as run } from "./_cli.ts";

const ignore = !modelNames.includes("lenet") || !mnistAvailable;
const model = modelFile("lenet", "deploy.prototxt");
const weights = modelFile("lenet", "weights.caffemodel");

/** A digit as LeNet reads it (scaled by 1/256) and as raw bytes, written as .npy files. */
async function digitFiles(
  dir: string,
): Promise<{ scaled: string; raw: string; pixels: Uint8Array }> {
  const digit = (await mnistDigits(4))[0];
  const scaled = join(dir, "scaled.npy");
  const raw = join(dir, "raw.npy");
  await writeFile(scaled, writeNpy(lenetInput(digit)));
  await writeFile(raw, writeNpy({ shape: [1, 1, 28, 28], data: Float32Array.from(digit.pixels) }));
  return { scaled, raw, pixels: digit.pixels };
}

Deno.test(
  "record without real data says its activation factors are guesses",
  { ignore },
  async () => {
    const dir = await mkdtemp("/tmp/caffe-quant-record-");
    const none = await run("record", model, weights, "--out", join(dir, "a.txt"));
    assert.equal(none.code, 0, none.err);
    assert.match(
      none.err,
      /warning: the activation factors were not measured on any data .* guesses/,
    );
    const seeded = await run(
      "record",
      model,
      weights,
      "--calibrate",
      "2",
      "--out",
      join(dir, "b.txt"),
    );
    assert.equal(seeded.code, 0, seeded.err);
    assert.match(seeded.err, /come from 2 seeded random inputs .*: they are guesses/);
    assert.match(seeded.out, /calibrated 4 layers on 2 samples of seeded random inputs/);
  },
);

Deno.test(
  "record --input: what calibration observed, per layer, and no guess warning",
  { ignore },
  async () => {
    const dir = await mkdtemp("/tmp/caffe-quant-record-");
    const { scaled, pixels } = await digitFiles(dir);
    const made = await run(
      "record",
      model,
      weights,
      "--input",
      `data=${scaled}`,
      "--out",
      join(dir, "r.txt"),
    );
    assert.equal(made.code, 0, made.err);
    assert.doesNotMatch(made.err, /guesses/);
    assert.match(made.out, /calibrated 4 layers on 1 samples of --input \(1 pass\)/);
    const rows = made.out.split("\n").filter((line) => /^ {2}(conv|ip)/.test(line));
    assert.deepEqual(rows.map((row) => row.trim().split(/\s+/).slice(0, 3)), [
      ["conv1", "data", "ifmr"],
      ["conv2", "pool1", "ifmr"],
      ["ip1", "pool2", "ifmr"],
      ["ip2", "ip1", "ifmr"],
    ]);
    // conv1 reads the digit itself: its range is the pixels' extremes / 256.
    const high = Math.max(...pixels) / 256;
    assert.match(rows[0], new RegExp(`\\[0, ${high.toPrecision(4).replace(".", "\\.")}\\]`));
    assert.doesNotMatch(made.out, /warning/);
    const record = await readFile(join(dir, "r.txt"), "utf8");
    assert.equal(record.match(/key: /g)?.length, 4);

    const hfmg = await run("record", model, weights, "--input", `data=${scaled}`, "--algo", "hfmg");
    assert.equal(hfmg.code, 0, hfmg.err);
    assert.match(hfmg.err, /conv1\s+data\s+hfmg/);
    assert.match(hfmg.out, /^record \{/m, "the record on stdout, the summary on stderr");
  },
);

Deno.test("record flags 0-255 pixels given to a net trained on 0-1", { ignore }, async () => {
  const dir = await mkdtemp("/tmp/caffe-quant-record-");
  const { raw } = await digitFiles(dir);
  const made = await run(
    "record",
    model,
    weights,
    "--input",
    `data=${raw}`,
    "--out",
    join(dir, "r.txt"),
  );
  assert.equal(made.code, 0, made.err);
  assert.match(
    made.out,
    /warning: layer conv1: net input "data" held values in \[0, 255\], like raw 8-bit pixels.*scale: 0\.00390625/,
  );
  // LeNet's deeper inputs grow 256 times as well: flagged beyond ±1000.
  assert.match(made.out, /warning: layer ip1: "pool2" held values in .* beyond ±1000/);
});

Deno.test("record: bad calibration options are usage errors", { ignore }, async () => {
  const algo = await run("record", model, weights, "--calibrate", "1", "--algo", "kl");
  assert.equal(algo.code, 2);
  assert.match(algo.err, /--algo needs one of ifmr, hfmg, minmax, search, not "kl"/);
  const both = await run(
    "record",
    model,
    weights,
    "--calibrate",
    "1",
    "--config",
    "x.json",
    "--algo",
    "hfmg",
  );
  assert.equal(both.code, 2);
  assert.match(both.err, /--algo does not go with --config/);
  const guessed = await run("record", model, weights, "--calibrate", "1", "--scale-d", "0.1");
  assert.equal(guessed.code, 2);
  assert.match(guessed.err, /--scale-d and --offset-d set guessed factors/);
});

Deno.test(
  "record --config: AMCT's JSON config chooses the layers and the algorithm",
  { ignore },
  async () => {
    const dir = await mkdtemp("/tmp/caffe-quant-record-");
    const { scaled } = await digitFiles(dir);
    const config = join(dir, "quant.json");
    const written = await run(
      "config",
      model,
      weights,
      "--skip",
      "ip2",
      "--algo",
      "hfmg",
      "--out",
      config,
    );
    assert.equal(written.code, 0, written.err);
    const made = await run(
      "record",
      model,
      weights,
      "--input",
      `data=${scaled}`,
      "--config",
      config,
      "--out",
      join(dir, "r.txt"),
    );
    assert.equal(made.code, 0, made.err);
    const rows = made.out.split("\n").filter((line) => /^ {2}(conv|ip)/.test(line));
    assert.deepEqual(rows.map((row) => row.trim().split(/\s+/).slice(0, 3)), [
      ["conv1", "data", "hfmg"],
      ["conv2", "pool1", "hfmg"],
      ["ip1", "pool2", "hfmg"],
    ]);
    const record = await readFile(join(dir, "r.txt"), "utf8");
    assert.deepEqual([...record.matchAll(/key: "(\w+)"/g)].map((m) => m[1]), [
      "conv1",
      "conv2",
      "ip1",
    ]);
  },
);
