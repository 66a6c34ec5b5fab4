/**
 * A fuzz worker: loads the corpus once, then makes and runs the cases the main thread names,
 * answering each with its {@linkcode CaseOutcome} (and the inputs, for a finding).
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { type FuzzCase, fuzzCase, loadCorpus, originals, sweepCase } from "./corpus.ts";
import { type CaseOutcome, RUN_SLOWDOWN, runCase, SLOW_MS } from "./run_case.ts";

/** A request from the main thread. */
export interface CaseRequest {
  /** Case index. */
  index: number;
  /** A sweep case rather than a random one. */
  sweep: boolean;
}

/** The answer to a {@linkcode CaseRequest}. */
export interface CaseReply extends CaseOutcome {
  /** Case index. */
  index: number;
  /** Corpus entry, damaged input and mutation. */
  entry: string;
  /** The damaged input. */
  target: string;
  /** The mutation's name. */
  mutation: string;
  /** The inputs, for a finding only. */
  files?: FuzzCase["files"];
  /** Whether the case ran the simulator (see {@linkcode FuzzCase.run}). */
  run?: FuzzCase["run"];
}

/** The worker's set-up: the run's seed and the corpus entries to use. */
export interface WorkerSetup {
  /** The run's seed. */
  seed: number;
  /** Corpus entries to keep (all when absent). */
  only?: string[];
}

/** Findings that a second and third run must show again. */
const CONFIRMED_BY_RERUN = new Set(["slow", "memory"]);

let ready: Promise<Awaited<ReturnType<typeof loadCorpus>>> | undefined;
let seed = 0;
/** Each entry's simulator run on its undamaged files (ms), measured at set-up. */
const runMs = new Map<string, number>();

self.onmessage = async (event: MessageEvent<WorkerSetup | CaseRequest>) => {
  const data = event.data;
  if ("seed" in data) {
    seed = data.seed;
    ready = loadCorpus(undefined, data.only);
    // Warm up (compiled code, WebAssembly) so the first cases' memory is not counted.
    for (const entry of await ready) {
      await runCase(originals(entry));
      runMs.set(entry.name, (await runCase(originals(entry), { run: "only" })).ms);
    }
    self.postMessage({ ready: true });
    return;
  }
  const corpus = await ready!;
  const made = data.sweep ? sweepCase(corpus, data.index) : fuzzCase(corpus, seed, data.index);
  const slowMs = made.run === undefined
    ? SLOW_MS
    : SLOW_MS + RUN_SLOWDOWN * (runMs.get(made.entry) ?? 0);
  let outcome = await runCase(made.files, {
    onDisk: !data.sweep && data.index % 32 === 31,
    measureHeld: data.index % 8 === 0,
    run: made.run,
    slowMs,
  });
  // Time and memory are noisy (the other workers, compiled code): a slow or memory finding
  // stands only if it happens again on the two runs after it.
  for (let again = 0; again < 2 && CONFIRMED_BY_RERUN.has(outcome.finding ?? ""); again++) {
    outcome = await runCase(made.files, { measureHeld: true, run: made.run, slowMs });
  }
  const reply: CaseReply = {
    index: data.index,
    entry: made.entry,
    target: made.target,
    mutation: made.mutation,
    run: made.run,
    ...outcome,
    files: outcome.finding === undefined ? undefined : made.files,
  };
  self.postMessage(reply);
};
