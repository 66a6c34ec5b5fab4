// Fuzz findings, fixed: each recipe (seed and case index of `scripts/fuzz.ts`) makes the same
// damaged input again from ../shared/models and must now end as the typed error written here —
// the behaviour a Caffe user expects for that damage — with no finding (no stray exception, no
// hang, no memory growth, no files left).

import assert from "node:assert/strict";
import { fuzzCase, loadCorpus } from "../scripts/fuzz/corpus.ts";
import { runCase } from "../scripts/fuzz/run_case.ts";
import { modelNames } from "./_models.ts";

interface Recipe {
  seed: number;
  index: number;
  /** What the mutation damaged, to notice a changed mutator. */
  made: string;
  /** The outcome now. */
  expect: string;
  /** What the finding was, and why `expect` is right. */
  why: string;
}

const RECIPES: Recipe[] = [
  {
    seed: 2,
    index: 1172,
    made: "cifar10_quick_v1format record huge-repeated",
    expect: "TEXT_DUPLICATE_FIELD",
    why: "a record entry repeating its singular `value` 47,000 times took over 15 s under " +
      "load; Caffe's text parser refuses a singular field given twice, and so do we now",
  },
  {
    seed: 2,
    index: 1181,
    made: "waifu2x_upconv7 record huge-repeated",
    expect: "LIMIT_EXCEEDED",
    why: "a record value with 4 MB of repeated fields hung a worker; a message holds at most " +
      "LIMITS.fieldsPerMessage fields",
  },
  {
    seed: 1,
    index: 287,
    made: "cifar10_full_v1format weights invalid-utf8",
    expect: "INVALID_UTF8",
    why: "a layer string with bytes that are not UTF-8 was read with U+FFFD in their place",
  },
  {
    seed: 3,
    index: 32,
    made: "mtcnn_onet model huge-repeated",
    expect: "DUPLICATE_TOP",
    why: "53,000 copies of a layer: reported as 9× memory growth, which was garbage a stale " +
      "stack slot kept through the collection (the harness now measures from a fresh task)",
  },
  {
    seed: 20261126,
    index: 20144,
    made: "mtcnn_pnet model huge-repeated",
    expect: "converted",
    why: "93,000 `param` blocks in one layer are a valid net; its printed prototxts were ropes " +
      "(a string grown by +=) that held 20× the input: printed text is now joined once",
  },
  {
    seed: 20261204,
    index: 25750,
    made: "vanilla_cnn model layer-param",
    expect: "converted run:BAD_INPUT",
    why: "a convolution with stride 2^31 - 1 (valid: its output is 1×1, as in Caffe) made the " +
      "simulator's kernel read out of its memory (32-bit offsets); the kernel now gets the " +
      "smallest stride with the same output, and the InnerProduct after it, given 1×1 maps " +
      "instead of the 12×12 its weights take, is BAD_INPUT as Caffe's Reshape refuses it",
  },
  {
    seed: 20261204,
    index: 68926,
    made: "example model layer-param",
    expect: "converted run:BAD_INPUT",
    why:
      "a Deconvolution with `stride: 1000` turns an 8×8 map into 8×7,002×7,002 (1.6 GB), which " +
      "the simulator computes before the InnerProduct after it refuses its size: linear " +
      "work the damaged net asks for, bounded by the tensor limit, so the harness allows " +
      "SLOW_NS_PER_ELEMENT per element written (a case slower than that is still a finding). " +
      "Fresh pages cost ~12 us each on CI's machine: with the ReLU run on its own (one more " +
      "1.6 GB array and 1.6 GB more WebAssembly memory) the case took 27-29 s of 25.7 allowed; " +
      "the Deconvolution now applies it itself, 10.5 s",
  },
];

const corpus = modelNames.length > 0 ? await loadCorpus() : [];

for (const recipe of RECIPES) {
  Deno.test({
    name: `fuzz seed ${recipe.seed} case ${recipe.index} (${recipe.made}): ${recipe.expect}`,
    ignore: corpus.length === 0,
    async fn() {
      const made = fuzzCase(corpus, recipe.seed, recipe.index);
      assert.equal(
        `${made.entry} ${made.target} ${made.mutation}`,
        recipe.made,
        "mutators changed",
      );
      const outcome = await runCase(made.files, { measureHeld: true, run: made.run });
      assert.equal(outcome.finding, undefined, outcome.detail);
      assert.equal(outcome.result, recipe.expect, recipe.why);
    },
  });
}
