/**
 * Every core for the simulator: a pool of workers, each holding some nets (their blobs in one
 * buffer every worker reads, where the runtime shares memory; else a copy each) and its own
 * WebAssembly instances, running samples in parallel; results come back in sample order
 * and equal, bit for bit, those of `runNet` on one thread. Web Workers (module workers) in Deno
 * and browsers; `node:worker_threads` in Node once `mod.ts` (or the CLI) is loaded
 * (src/io/node_workers.ts registers it). Where there is no worker (edge functions, `core` in Node),
 * with one thread, or when a worker cannot start, the pool runs in-process on one thread.
 *
 * @module
 */

import type { Net } from "../caffe/net.ts";
import { ConvertError } from "../errors.ts";
import {
  bundleTensors,
  errorFromWire,
  type FromWorker,
  type ToWorker,
  unbundleTensors,
} from "./engine_worker.ts";
import { packNet } from "./net_transfer.ts";
import { defaultThreads, type WorkerPort, workerStarter } from "./worker_starter.ts";
import { runSamples } from "./joined_run.ts";
import type { RunResult, Tensor } from "./run.ts";
import { engineBuild } from "../wasm/engine_build.ts";

/** Options of {@linkcode EnginePool.open}. */
export interface EnginePoolOptions {
  /**
   * Threads (workers) to run on: a whole number ≥ 1; default every core
   * (`navigator.hardwareConcurrency`). 1 runs in-process.
   */
  threads?: number;
}

/** Samples for {@linkcode EnginePool.runAll}: each one's inputs (undefined: all seeded). */
export type SampleInputs =
  | Iterable<Map<string, Tensor> | undefined>
  | AsyncIterable<Map<string, Tensor> | undefined>;

/** What a job gives: each sample's results up to the first failing one, and its error. */
interface JobResult {
  results: RunResult[][];
  error?: Error;
}

/** A job (consecutive samples) waiting for, or running on, a worker. */
interface Job {
  message: ToWorker & { kind: "run" };
  transfer: ArrayBuffer[];
  resolve: (result: JobResult) => void;
  reject: (error: Error) => void;
}

/**
 * A job's running time to aim at: consecutive samples of a small net go to a worker together, so
 * that a message's cost (and a thread's wake-up on a busy machine) is paid once for several, and
 * run as one batch where the net allows it (src/engine/joined_run.ts; in-process too).
 */
const JOB_MILLISECONDS = 8;

/**
 * The most samples one job carries (run as joined runs of up to 8: src/engine/joined_run.ts).
 * A job's messages cost the pool's thread and the worker ~0.5 ms of CPU time in Deno (structured
 * clone, the channel, waking the other thread), which jobs of 8 paid every ~1 ms for lenet.
 */
const MAX_SAMPLES_PER_JOB = 64;

/**
 * Jobs a worker is given at once: the next one waits in its message queue while it runs one, so
 * it never idles for a round trip.
 */
const JOBS_PER_WORKER = 2;

/** Sample buffers kept for reuse (handed back by workers with their results). */
const SPARE_BUFFERS = 4;

/** One started worker and the jobs it was given. */
interface PoolWorker {
  port: WorkerPort;
  jobs: Job[];
}

/** The whole-number thread count of `options`, checked. */
function threadCount(options: EnginePoolOptions): number {
  const threads = options.threads ?? defaultThreads();
  if (!Number.isInteger(threads) || threads < 1) {
    throw new ConvertError("BAD_ARGUMENT", `threads must be a whole number ≥ 1, not ${threads}`);
  }
  return threads;
}

/**
 * Runs nets over many samples on every core. Each sample runs through every net of the pool
 * (e.g. a float, a fake-quant and a deploy net) on one worker; see the module doc for where
 * workers come from. Close it when done (workers keep a process alive).
 *
 * @example
 * ```ts ignore
 * const pool = await EnginePool.open([net], { threads: 2 });
 * try {
 *   for await (const [result] of pool.runAll(samples)) console.log(result.outputs);
 * } finally {
 *   pool.close();
 * }
 * ```
 */
export class EnginePool {
  /** Threads the pool was opened on: its workers, or 1 (in-process). */
  readonly threads: number;
  readonly #nets: Net[];
  readonly #workers: PoolWorker[];
  readonly #queue: Job[] = [];
  /** Sample buffers workers handed back, largest last. */
  readonly #spare: ArrayBuffer[] = [];
  #nextId = 0;
  /**
   * Samples the next job of `runAll` carries (see {@linkcode JOB_MILLISECONDS}): a power of two
   * that only grows, so that a joined run sees few batch sizes (each new one prepares every
   * layer's call again) and never goes back and forth between two.
   */
  #jobSamples = 1;

  private constructor(nets: Net[], workers: PoolWorker[]) {
    this.#nets = nets;
    this.#workers = workers;
    this.threads = Math.max(1, workers.length);
  }

  /**
   * A pool of `options.threads` workers, each given `nets` (their blobs shared, or copied where
   * the runtime has no `SharedArrayBuffer`); in-process (one thread)
   * when that is 1, when the runtime has no workers, or when a worker fails to start.
   */
  static async open(nets: Net[], options: EnginePoolOptions = {}): Promise<EnginePool> {
    const threads = threadCount(options);
    const start = workerStarter();
    if (threads === 1 || start === undefined) return new EnginePool(nets, []);
    const workers: PoolWorker[] = [];
    // One buffer of blobs that every worker reads in place, where the runtime shares memory.
    const shared = typeof SharedArrayBuffer === "function";
    const packed = nets.map((net) => packNet(net, shared));
    const build = engineBuild();
    try {
      const ready: Promise<void>[] = [];
      for (let i = 0; i < threads; i++) {
        const port = start();
        const worker: PoolWorker = { port, jobs: [] };
        workers.push(worker);
        ready.push(
          new Promise<void>((resolve, reject) => {
            port.listen((message) => {
              if (message.kind === "ready") resolve();
              else if (message.kind === "failed") {
                reject(errorFromWire(message.error));
              }
            }, (text) => reject(new Error(text)));
          }),
        );
        if (shared) {
          port.post({ kind: "nets", nets: packed, build }, []);
        } else {
          // Each worker gets its own copy of the blob buffers (transferred, so copied once).
          const copies = packed.map((net) => ({ ...net, data: net.data.slice(0) as ArrayBuffer }));
          port.post({ kind: "nets", nets: copies, build }, copies.map((net) => net.data));
        }
      }
      await Promise.all(ready);
    } catch {
      for (const { port } of workers) port.terminate();
      return new EnginePool(nets, []);
    }
    const pool = new EnginePool(nets, workers);
    for (const worker of workers) {
      worker.port.listen(
        (message) => pool.#answered(worker, message),
        (text) => pool.#failed(worker, new Error(`engine worker: ${text}`)),
      );
    }
    return pool;
  }

  /**
   * Runs one sample (`inputs`; declared inputs not given are seeded with `seed`) through every
   * net of the pool: one `RunResult` per net, in order (`blobs` and `checkpoints` empty). Errors
   * are those of `runNet`.
   */
  async run(inputs?: Map<string, Tensor>, seed = 0): Promise<RunResult[]> {
    const { results, error } = await this.#submit([inputs], seed);
    if (error !== undefined) throw error;
    return results[0];
  }

  /** Runs consecutive samples as one job (in-process without workers). */
  #submit(samples: (Map<string, Tensor> | undefined)[], seed: number): Promise<JobResult> {
    if (this.#workers.length === 0) return this.#runHere(samples, seed);
    // A copy of the inputs' elements is transferred: the caller's arrays stay usable. It goes
    // into a buffer a worker handed back when one is large enough (touched pages, no faults).
    const groups = samples.map((inputs) => inputs && { tensors: inputs });
    const bundle = bundleTensors(groups, this.#spare.pop());
    return new Promise((resolve, reject) => {
      this.#queue.push({
        message: {
          kind: "run",
          id: this.#nextId++,
          nets: this.#nets.map((_, i) => i),
          samples: bundle,
          seed,
        },
        transfer: [bundle.data.buffer as ArrayBuffer],
        resolve,
        reject,
      });
      this.#dispatch();
    });
  }

  /**
   * Runs every sample of `samples` as {@linkcode run} does, yielding each one's results in
   * sample order. Samples are read ahead (up to three jobs per thread; a job carries consecutive
   * samples, more of them for a fast net). The first error is thrown when its sample's turn
   * comes, after the samples before it.
   */
  async *runAll(
    samples: SampleInputs,
    seed = 0,
  ): AsyncGenerator<RunResult[]> {
    const ahead = this.#workers.length === 0 ? 1 : (JOBS_PER_WORKER + 1) * this.#workers.length;
    const pending: Promise<JobResult>[] = [];
    let batch: (Map<string, Tensor> | undefined)[] = [];
    const submit = () => {
      const running = this.#submit(batch, seed);
      // Awaited in turn below; until then a failure must not count as unhandled.
      running.catch(() => {});
      pending.push(running);
      batch = [];
    };
    for await (const inputs of samples) {
      batch.push(inputs);
      if (batch.length >= this.#jobSamples) submit();
      while (pending.length >= ahead) yield* EnginePool.#unpacked(await pending.shift()!);
    }
    if (batch.length > 0) submit();
    while (pending.length > 0) yield* EnginePool.#unpacked(await pending.shift()!);
  }

  /** A job's results one sample at a time, then its error. */
  static *#unpacked({ results, error }: JobResult): Generator<RunResult[]> {
    yield* results;
    if (error !== undefined) throw error;
  }

  /** Stops the workers; runs not finished fail. */
  close(): void {
    for (const worker of this.#workers) {
      worker.port.terminate();
      for (const job of worker.jobs.splice(0)) job.reject(new Error("the engine pool was closed"));
    }
    for (const job of this.#queue.splice(0)) job.reject(new Error("the engine pool was closed"));
    this.#workers.length = 0;
  }

  /** Runs a job in-process: as joined runs when the nets allow it (src/engine/joined_run.ts). */
  async #runHere(samples: (Map<string, Tensor> | undefined)[], seed: number): Promise<JobResult> {
    const started = performance.now();
    const { results, error } = await runSamples(this.#nets, samples, seed);
    if (error === undefined) {
      this.#noteJob(performance.now() - started, samples.length);
      return { results };
    }
    if (!(error instanceof Error)) throw error;
    return { results, error };
  }

  /**
   * Notes a job's time for sizing the next ones: as many samples as that job's time per sample
   * fits in {@linkcode JOB_MILLISECONDS}. Sizes only grow, so the first, cold jobs stop counting as
   * soon as a faster one comes, and a fast net's jobs reach their size within a few round trips.
   */
  #noteJob(milliseconds: number, samples: number): void {
    if (samples === 0) return;
    const fitting = Math.max(1, Math.floor(JOB_MILLISECONDS * samples / milliseconds));
    const size = Math.min(MAX_SAMPLES_PER_JOB, 2 ** Math.floor(Math.log2(fitting)));
    this.#jobSamples = Math.max(this.#jobSamples, size);
  }

  /** Gives queued jobs to workers with room, least busy first. */
  #dispatch(): void {
    for (let depth = 1; depth <= JOBS_PER_WORKER; depth++) {
      for (const worker of this.#workers) {
        if (worker.jobs.length >= depth) continue;
        const job = this.#queue.shift();
        if (job === undefined) return;
        worker.jobs.push(job);
        worker.port.post(job.message, job.transfer);
      }
    }
  }

  #answered(worker: PoolWorker, message: FromWorker): void {
    if (message.kind !== "done") return;
    const index = worker.jobs.findIndex((job) => job.message.id === message.id);
    if (index < 0) return;
    const [job] = worker.jobs.splice(index, 1);
    this.#spare.push(message.spent);
    this.#spare.sort((a, b) => a.byteLength - b.byteLength);
    if (this.#spare.length > SPARE_BUFFERS) this.#spare.shift();
    // Views: the bundle crossed transferred, so its buffer is the results' own.
    const runs = unbundleTensors(message.results, true);
    const nets = this.#nets.length;
    const done = runs.length / nets;
    this.#noteJob(message.milliseconds, done);
    const results: RunResult[][] = [];
    for (let sample = 0; sample < done; sample++) {
      results.push(
        runs.slice(sample * nets, (sample + 1) * nets).map((run) => ({
          outputs: run!.tensors,
          blobs: new Map(),
          skipped: run!.skipped,
          deployBlobs: run!.deployBlobs,
          checkpoints: [],
        })),
      );
    }
    job.resolve({ results, error: message.error && errorFromWire(message.error) });
    this.#dispatch();
  }

  #failed(worker: PoolWorker, error: Error): void {
    for (const job of worker.jobs.splice(0)) job.reject(error);
    worker.port.terminate();
    const index = this.#workers.indexOf(worker);
    if (index >= 0) this.#workers.splice(index, 1);
    if (this.#workers.length === 0) {
      for (const job of this.#queue.splice(0)) job.reject(error);
    }
  }
}
