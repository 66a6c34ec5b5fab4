/**
 * Seeded, reproducible fuzzing of the whole conversion: every prototxt, caffemodel and record of
 * `../shared/models` and of the built-in example is damaged in many ways (see
 * `fuzz/binary_mutations.ts`, `fuzz/text_mutations.ts`) and converted in-process by worker
 * threads. A finding — an exception that is not a ConvertError, a run over its time allowance, a hang, memory
 * growth beyond 4× the input, files left by a failed conversion — is saved with its inputs under
 * `--findings` and makes the exit code 1.
 *
 * ```sh
 * npx deno run -A scripts/fuzz.ts --cases 20000 --seed 7        # 20,000 random cases
 * npx deno run -A scripts/fuzz.ts --seconds 120 --sweep          # truncation sweep, then random
 * npx deno run -A scripts/fuzz.ts --replay fuzz-findings/<dir>   # one saved finding again
 * ```
 *
 * Case `i` of seed `s` is always the same input: `--seed s --from i --cases 1` makes it again.
 *
 * @module
 */

import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { type CorpusEntry, fuzzCase, loadCorpus, sweepCase, sweepSize } from "./fuzz/corpus.ts";
import { MEMORY_ALLOWANCE, runCase } from "./fuzz/run_case.ts";
import type { CaseReply, CaseRequest } from "./fuzz/worker.ts";

// Memory is judged from a collected heap: re-run with V8's `gc` exposed.
const V8_FLAGS = "--v8-flags=--expose-gc";
if (typeof (globalThis as { gc?: unknown }).gc !== "function") {
  const command = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", V8_FLAGS, new URL(import.meta.url).pathname, ...Deno.args],
  });
  Deno.exit((await command.spawn().status).code);
}

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    seed: { type: "string", default: "1" },
    from: { type: "string", default: "0" },
    cases: { type: "string", default: "5000" },
    seconds: { type: "string" },
    workers: { type: "string", default: String(navigator.hardwareConcurrency) },
    sweep: { type: "boolean", default: false },
    only: { type: "string" },
    findings: { type: "string", default: "fuzz-findings" },
    "hang-ms": { type: "string", default: "30000" },
    replay: { type: "string" },
  },
});

if (args.replay !== undefined) {
  const dir = args.replay;
  const files = {
    model: Deno.readFileSync(`${dir}/model.prototxt`),
    weights: Deno.readFileSync(`${dir}/weights.caffemodel`),
    record: Deno.readFileSync(`${dir}/record.txt`),
    input: existsSync(`${dir}/input.npy`) ? Deno.readFileSync(`${dir}/input.npy`) : undefined,
  };
  const { run } = JSON.parse(Deno.readTextFileSync(`${dir}/finding.json`));
  await runCase(files, { run }); // warm-up: compiled code and WebAssembly are not counted
  console.log(await runCase(files, { measureHeld: true, run }));
  Deno.exit(0);
}

const seed = Number(args.seed);
const from = Number(args.from);
const only = args.only?.split(",");
const deadline = args.seconds === undefined
  ? Infinity
  : performance.now() + 1000 * Number(args.seconds);
const hangMs = Number(args["hang-ms"]);

const corpus = await loadCorpus(undefined, only);
/** The queue: the sweep's cases first (when asked), then random cases from `--from`. */
const sweepTotal = args.sweep ? sweepSize(corpus) : 0;
const total = sweepTotal + Number(args.cases);
let next = 0;
let done = 0;
const results = new Map<string, number>();
const findings: CaseReply[] = [];
let slowest = 0;
/** The case of `slowest` and of `largestMemory`, as `recipe (entry target mutation)`. */
let slowestCase = "";
let largestMemoryCase = "";
let largestMemory = -Infinity;
/** Cases that went unanswered once but answered on a fresh worker (the machine stalled). */
let stalls = 0;
const started = performance.now();

function request(position: number): CaseRequest {
  return position < sweepTotal
    ? { index: position, sweep: true }
    : { index: from + position - sweepTotal, sweep: false };
}

function recipe(request: CaseRequest): string {
  return request.sweep ? `sweep case ${request.index}` : `seed ${seed} case ${request.index}`;
}

function saveFinding(reply: CaseReply, sweep: boolean) {
  findings.push(reply);
  const name = `${reply.finding}-${sweep ? "sweep" : `s${seed}`}-${reply.index}`;
  const dir = `${args.findings}/${name}`;
  Deno.mkdirSync(dir, { recursive: true });
  Deno.writeFileSync(`${dir}/model.prototxt`, reply.files!.model);
  Deno.writeFileSync(`${dir}/weights.caffemodel`, reply.files!.weights);
  Deno.writeFileSync(`${dir}/record.txt`, reply.files!.record);
  if (reply.files!.input !== undefined) Deno.writeFileSync(`${dir}/input.npy`, reply.files!.input);
  const { files: _, ...about } = reply;
  Deno.writeTextFileSync(`${dir}/finding.json`, JSON.stringify({ seed, sweep, ...about }, null, 2));
  console.log(
    `FINDING ${reply.finding} (${recipe({ index: reply.index, sweep })}, ${reply.entry}` +
      ` ${reply.target} ${reply.mutation}): ${reply.detail?.split("\n").slice(0, 4).join(" | ")}`,
  );
  console.log(`  saved to ${dir}`);
}

function regenerate(request: CaseRequest, entries: readonly CorpusEntry[]) {
  return request.sweep ? sweepCase(entries, request.index) : fuzzCase(entries, seed, request.index);
}

/**
 * Runs cases on one worker until the queue or the time is used up. A case with no answer in
 * `--hang-ms` is run again on a fresh worker: a second silence is a hang finding, an answer means
 * the machine stalled (counted, not a finding).
 */
async function drive(): Promise<void> {
  let retry: CaseRequest | undefined;
  while ((retry !== undefined || next < total) && performance.now() < deadline) {
    const worker = new Worker(new URL("./fuzz/worker.ts", import.meta.url), { type: "module" });
    const replies: ((reply: CaseReply) => void)[] = [];
    worker.onmessage = (event) => replies.shift()?.(event.data);
    const answer = () => new Promise<CaseReply>((resolve) => replies.push(resolve));
    const readyReply = answer();
    worker.postMessage({ seed, only });
    await readyReply;
    let silent = false;
    while (!silent && (retry !== undefined || next < total) && performance.now() < deadline) {
      const second = retry !== undefined;
      const asked = retry ?? request(next++);
      retry = undefined;
      const reply = answer();
      worker.postMessage(asked);
      let timer = 0;
      const outcome = await Promise.race([
        reply,
        new Promise<undefined>((resolve) => timer = setTimeout(resolve, hangMs)),
      ]);
      clearTimeout(timer);
      if (outcome === undefined) {
        silent = true;
        if (!second) {
          retry = asked;
          continue;
        }
        done++;
        const made = regenerate(asked, corpus);
        saveFinding({
          index: asked.index,
          entry: made.entry,
          target: made.target,
          mutation: made.mutation,
          result: "hang",
          finding: "hang",
          detail: `no answer in ${hangMs} ms, twice`,
          ms: hangMs,
          memoryRatio: 0,
          files: made.files,
          run: made.run,
        }, asked.sweep);
        continue;
      }
      done++;
      if (second) stalls++;
      const key = outcome.finding ?? outcome.result;
      results.set(key, (results.get(key) ?? 0) + 1);
      const which = () =>
        `${
          recipe(asked)
        } (${outcome.entry} ${outcome.target} ${outcome.mutation}, ${outcome.result})`;
      if (outcome.ms > slowest) [slowest, slowestCase] = [outcome.ms, which()];
      if (outcome.memoryRatio > largestMemory) {
        [largestMemory, largestMemoryCase] = [outcome.memoryRatio, which()];
      }
      if (outcome.finding !== undefined) saveFinding(outcome, asked.sweep);
    }
    worker.terminate();
  }
}

const progress = setInterval(() => {
  const seconds = (performance.now() - started) / 1000;
  console.error(
    `fuzz: ${done}/${total} inputs, ${(done / seconds).toFixed(0)}/s, ` +
      `findings so far: ${findings.length || "none"}`,
  );
}, 15000);
const workers = Math.max(1, Number(args.workers));
console.log(
  `fuzzing ${corpus.length} corpus entries (${corpus.map((e) => e.name).join(", ")}) with ` +
    `${workers} workers: ${sweepTotal ? `${sweepTotal} sweep inputs, then ` : ""}` +
    `seed ${seed} inputs ${from}..` +
    `${from + total - sweepTotal - 1}${args.seconds ? `, at most ${args.seconds} s` : ""}`,
);
await Promise.all(Array.from({ length: workers }, drive));
clearInterval(progress);

const seconds = (performance.now() - started) / 1000;
const byCount = [...results].sort((a, b) => b[1] - a[1]);
console.log(`fuzz: ${done} inputs in ${seconds.toFixed(1)} s (${(done / seconds).toFixed(0)}/s)`);
console.log(`outcomes: ${byCount.map(([code, n]) => `${code} ${n}`).join(", ")}`);
console.log(`slowest case ${slowest.toFixed(0)} ms: ${slowestCase}`);
console.log(
  `largest memory growth beyond the ${MEMORY_ALLOWANCE >> 20} MiB allowance: ` +
    `${largestMemory.toFixed(2)}× the input: ${largestMemoryCase}`,
);
if (stalls > 0) console.log(`${stalls} inputs answered only on a second try (machine stalls)`);
console.log(
  `findings: ${findings.length ? `${findings.length} (saved under ${args.findings}/)` : "none"}`,
);
if (findings.length > 0) Deno.exitCode = 1;
