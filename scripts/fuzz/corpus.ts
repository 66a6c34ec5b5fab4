/**
 * The fuzzer's seed files: the prototxt, caffemodel and a record of every model in
 * `../shared/models` (records made from the weights as SPEC §9 says) and of the built-in example,
 * each tokenized or field-mapped once. Fuzz cases are made from these by
 * {@linkcode fuzzCase}, reproducibly from a seed and an index.
 *
 * @module
 */

import { loadNet } from "../../src/caffe/model.ts";
import { netInputs } from "../../src/caffe/net.ts";
import { makeRecord } from "../../src/quant/make_record.ts";
import { exampleFiles } from "../example_model.ts";
import { BINARY_MUTATIONS, mapBinary, type MappedBinary } from "./binary_mutations.ts";
import { type DeclaredInput, NPY_MUTATIONS } from "./npy_mutations.ts";
import { Rng } from "./rng.ts";
import { STRUCTURE_BINARY_MUTATIONS, STRUCTURE_TEXT_MUTATIONS } from "./structure_mutations.ts";
import { TEXT_MUTATIONS, type TokenizedText, tokenizeText } from "./text_mutations.ts";

/** `../shared/models/` beside the repository. */
export const MODELS_DIR: URL = new URL("../../../shared/models/", import.meta.url);

/** One model's three input files, ready for mutation. */
export interface CorpusEntry {
  /** Model folder name, or `example`. */
  name: string;
  /** The prototxt. */
  model: TokenizedText;
  /** The caffemodel. */
  weights: MappedBinary;
  /** The record file. */
  record: TokenizedText;
  /** The net's first declared input, for `.npy` inputs. */
  input: DeclaredInput;
}

/** Which input a case damages (`input`: the `.npy` input of a simulator run). */
export type Target = "model" | "weights" | "record" | "input";

const TARGETS = ["model", "weights", "record"] as const;

/**
 * Case indices of these residues mod 8 are structure and `.npy` cases (see
 * `structure_mutations.ts`, `npy_mutations.ts`), a third each on the prototxt, the caffemodel
 * and a run's input; the others are made exactly as before these existed, so the recipes of
 * earlier findings (tests/fuzz_regressions_test.ts) still make their inputs.
 */
const STRUCTURE_RESIDUES: ReadonlySet<number> = new Set([2, 3, 6]);

/**
 * The corpus: the example, then the models of `dir` in name order (`only` keeps those named).
 * A missing `dir` is an error when `CI=true`, else the example alone is used with a warning.
 */
export async function loadCorpus(dir = MODELS_DIR, only?: string[]): Promise<CorpusEntry[]> {
  const example = await exampleFiles();
  const entries = [entry("example", example.model, example.weights, example.record)];
  let names: string[];
  try {
    names = [...Deno.readDirSync(dir)].filter((e) => e.isDirectory).map((e) => e.name).sort();
  } catch (error) {
    if (Deno.env.get("CI") === "true") {
      throw new Error(`CI=true but the shared models are missing at ${dir.pathname}: ${error}`);
    }
    console.warn(`fuzzing the built-in example only: ${dir.pathname} is missing`);
    names = [];
  }
  for (const name of names) {
    const model = Deno.readTextFileSync(new URL(`${name}/deploy.prototxt`, dir));
    const weights = Deno.readFileSync(new URL(`${name}/weights.caffemodel`, dir));
    const record = await makeRecord(loadNet(model, weights), { scaleD: 0.05, offsetD: 3 });
    entries.push(entry(name, model, weights, record));
  }
  const kept = only === undefined ? entries : entries.filter((e) => only.includes(e.name));
  if (kept.length === 0) throw new Error(`no corpus entry is named ${only?.join(", ")}`);
  return kept;
}

function entry(name: string, model: string, weights: Uint8Array, record: string): CorpusEntry {
  const [input] = netInputs(loadNet(model, weights));
  return {
    name,
    model: tokenizeText(model),
    weights: mapBinary(weights),
    record: tokenizeText(record),
    input: input ?? { name: "data", shape: [1, 3, 8, 8] },
  };
}

/** The three inputs of a case as bytes (text files as UTF-8, possibly broken on purpose). */
export interface CaseFiles {
  /** The prototxt bytes. */
  model: Uint8Array;
  /** The caffemodel bytes. */
  weights: Uint8Array;
  /** The record bytes. */
  record: Uint8Array;
  /** A `.npy` input for the simulator run, if the case has one. */
  input?: Uint8Array;
}

/** A case: what was damaged and how, and the resulting inputs. */
export interface FuzzCase {
  /** Corpus entry name. */
  entry: string;
  /** The damaged input. */
  target: Target;
  /** The mutation's name. */
  mutation: string;
  /** The inputs. */
  files: CaseFiles;
  /**
   * Whether the case also runs the simulator (`also`: after the conversion; `only`: instead of
   * it, for a damaged `.npy` input), as `record --input` does.
   */
  run?: "also" | "only";
}

const encoder = new TextEncoder();

/** The unchanged inputs of `entry`. */
export function originals(entry: CorpusEntry): CaseFiles {
  return {
    model: entry.model.bytes,
    weights: entry.weights.bytes,
    record: entry.record.bytes,
  };
}

/** Case `index` of a run seeded with `seed`: a random mutation of a random input. */
export function fuzzCase(corpus: readonly CorpusEntry[], seed: number, index: number): FuzzCase {
  const rng = new Rng(seed, index);
  const entry = corpus[index % corpus.length];
  const files = originals(entry);
  const made = (target: Target, mutation: string, run?: "also" | "only"): FuzzCase => ({
    entry: entry.name,
    target,
    mutation,
    files,
    run,
  });
  if (STRUCTURE_RESIDUES.has(index % 8)) {
    const target = rng.pick(["model", "weights", "input"] as const);
    if (target === "input") {
      const mutation = rng.pickWeighted(NPY_MUTATIONS);
      files.input = mutation.apply(entry.input, rng);
      return made(target, mutation.name, "only");
    }
    if (target === "weights") {
      const mutation = rng.pick(STRUCTURE_BINARY_MUTATIONS);
      files.weights = mutation.apply(entry.weights, rng);
      return made(target, mutation.name, "also");
    }
    const mutation = rng.pickWeighted(STRUCTURE_TEXT_MUTATIONS);
    files.model = mutation.apply(entry.model, rng);
    return made(target, mutation.name, "also");
  }
  const target = rng.pick(TARGETS);
  if (target === "weights") {
    const mutation = rng.pickWeighted(BINARY_MUTATIONS);
    files.weights = mutation.apply(entry.weights, rng);
    return made(target, mutation.name);
  }
  const mutation = rng.pickWeighted(TEXT_MUTATIONS);
  files[target] = mutation.apply(entry[target], rng);
  return made(target, mutation.name);
}

/** How many truncation cases {@linkcode sweepCase} has: one per boundary of every input. */
export function sweepSize(corpus: readonly CorpusEntry[]): number {
  return corpus.reduce(
    (n, e) =>
      n + e.weights.boundaries.length + 2 * (e.model.tokens.length + e.record.tokens.length),
    0,
  );
}

/**
 * Sweep case `index`: every input of every entry cut at each of its structural boundaries in
 * turn (caffemodel field boundaries; before and after every text token).
 */
export function sweepCase(corpus: readonly CorpusEntry[], index: number): FuzzCase {
  let rest = index;
  for (const entry of corpus) {
    const files = originals(entry);
    const cut = (target: Target, bytes: Uint8Array): FuzzCase => {
      files[target] = bytes;
      return { entry: entry.name, target, mutation: "sweep-truncate", files };
    };
    if (rest < entry.weights.boundaries.length) {
      return cut("weights", entry.weights.bytes.slice(0, entry.weights.boundaries[rest]));
    }
    rest -= entry.weights.boundaries.length;
    for (const target of ["model", "record"] as const) {
      const { text, tokens } = entry[target];
      if (rest < 2 * tokens.length) {
        return cut(target, encoder.encode(text.slice(0, tokens[rest >> 1][rest & 1])));
      }
      rest -= 2 * tokens.length;
    }
  }
  throw new RangeError(`sweep case ${index} is past the end (${sweepSize(corpus)})`);
}
