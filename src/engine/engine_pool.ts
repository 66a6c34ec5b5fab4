/**
 * Every core for the simulator: the calling thread and a pool of workers, each worker holding some
 * nets (their blobs in one buffer every worker and the calling thread read, where the runtime
 * shares memory; else a copy each) and its own WebAssembly instances, running samples in parallel;
 * results come back in sample order and equal, bit for bit, those of `runNet` on one thread. The
 * calling thread runs jobs too (between them it hands out the next ones), from the first one on,
 * while the workers start: a worker costs a fresh isolate, its modules and a cold first run
 * (~0.1-0.2 s before it runs at full speed on lenet; ResNet-50's first sample takes ~1 s), which a
 * short stream of samples does not pay back. Web Workers (module workers) in Deno and browsers;
 * `node:worker_threads` in Node once `mod.ts` (or the CLI) is loaded (src/io/node_workers.ts
 * registers it). Where there is no worker (edge functions, `core` in Node), with one thread, or
 * when the workers cannot start, the pool runs on the calling thread alone.
 *
 * @module
 */

import type { Net } from "../caffe/net.ts";
import { ConvertError } from "../errors.ts";
import { bundleTensors, errorFromWire, type FromWorker, unbundleTensors } from "./engine_worker.ts";
import { packNet, unpackNet } from "./net_transfer.ts";
import { defaultThreads, type WorkerPort, workerStarter } from "./worker_starter.ts";
import { runSamples } from "./joined_run.ts";
import { SpareBuffers } from "./spare_buffers.ts";
import type { RunResult, Tensor } from "./run.ts";
import { engineBuild } from "../wasm/engine_build.ts";

/** Options of {@linkcode EnginePool.open}. */
export interface EnginePoolOptions {
  /**
   * Threads to run on, the calling one and `threads` − 1 workers: a whole number ≥ 1; default
   * every core (`navigator.hardwareConcurrency`). 1 runs on the calling thread alone.
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

/** A job (consecutive samples): in the pool's queue, on a worker, or running on this thread. */
interface Job {
  id: number;
  samples: (Map<string, Tensor> | undefined)[];
  seed: number;
  /** Settles with the job's results (a rejection is handled: it is awaited in turn). */
  result: Promise<JobResult>;
  /** Whether `result` has settled. */
  settled: boolean;
  resolve: (result: JobResult) => void;
  reject: (error: Error) => void;
  /** The worker it was posted to, until it answers or this thread takes the job back. */
  worker?: PoolWorker;
  /** Its slot in the pool's claims, while its worker may still read it. */
  claim?: number;
}

/**
 * A job's running time to aim at: consecutive samples of a small net go to a worker together, so
 * that a message's cost (and a thread's wake-up on a busy machine) is paid once for several, and
 * run as one batch where the net allows it (src/engine/joined_run.ts; on this thread too).
 */
const JOB_MILLISECONDS = 8;

/**
 * The most samples one job carries (run as joined runs of 8: src/engine/joined_run.ts).
 * A job's messages cost the pool's thread and the worker ~0.5 ms of CPU time in Deno (structured
 * clone, the channel, waking the other thread), which jobs of 8 paid every ~1 ms for lenet.
 */
const MAX_SAMPLES_PER_JOB = 64;

/**
 * Jobs a worker is given at once: the next ones wait in its message queue while it runs one, so
 * that it never idles for a round trip, nor while this thread runs a job of its own (a worker's
 * answers are read between this thread's jobs, and a cold first run of ResNet-50 takes ~1 s). At
 * the end of a stream this thread takes back those a worker has not started. Against 2 at a
 * time: `caffe-quant run --threads 2` of 13 ResNet-50 samples in Node 4,232 -> 3,820 ms, the rest
 * the same.
 */
const JOBS_PER_WORKER = 4;

/** Sample buffers kept for reuse (handed back by workers with their results). */
const SPARE_BUFFERS = 4;

/**
 * Slots of the claims a pool shares with its workers (more than it ever has posted at once): a
 * job's slot says whether a thread took it. A worker claims a job before it runs it; this
 * thread, waiting with nothing queued, claims one a worker has not started and runs it itself.
 */
const CLAIM_SLOTS = 256;

/** One started worker and the jobs it was given. */
interface PoolWorker {
  port: WorkerPort;
  /** Whether it said it holds its nets (it is given jobs before, which wait in its queue). */
  ready: boolean;
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
 * (e.g. a float, a fake-quant and a deploy net) on one thread: this one (the caller's) or a
 * worker; see the module doc for where workers come from. Close it when done (workers keep a
 * process alive).
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
  /** Threads the pool was opened on: this one and its workers. */
  readonly threads: number;
  readonly #nets: Net[];
  readonly #workers: PoolWorker[];
  /** Jobs no thread has taken yet, oldest first. */
  readonly #queue: Job[] = [];
  /** Sample buffers workers handed back. */
  readonly #spare = new SpareBuffers(SPARE_BUFFERS);
  /** Lets this thread's event loop take one turn (see {@linkcode EnginePool.#turn}). */
  readonly #turns: MessageChannel | undefined;
  /** Who took each posted job (0: no one yet), where memory is shared ({@linkcode CLAIM_SLOTS}). */
  readonly #claims: Int32Array | undefined;
  /** Claim slots no worker may read. */
  readonly #freeClaims: number[] = [];
  #nextId = 0;
  /**
   * Samples the next job of `runAll` carries (see {@linkcode JOB_MILLISECONDS}): a power of two
   * that only grows, so that a joined run sees few batch sizes (each new one prepares every
   * layer's call again) and never goes back and forth between two.
   */
  #jobSamples = 1;

  private constructor(nets: Net[], workers: PoolWorker[], claims: Int32Array | undefined) {
    this.#nets = nets;
    this.#workers = workers;
    this.threads = workers.length + 1;
    this.#turns = workers.length > 0 ? new MessageChannel() : undefined;
    this.#claims = claims;
    for (let slot = 0; claims !== undefined && slot < claims.length; slot++) {
      this.#freeClaims.push(slot);
    }
  }

  /**
   * A pool of this thread and `options.threads` − 1 workers, each worker given `nets` (their
   * blobs shared, or copied where the runtime has no `SharedArrayBuffer`); this thread alone when
   * that is 1 or the runtime has no workers. It does not wait for the workers: jobs wait in their
   * queues while they start, this thread takes back those it needs first (where memory is
   * shared), and the jobs of a worker that fails to start go to the others.
   */
  static open(nets: Net[], options: EnginePoolOptions = {}): Promise<EnginePool> {
    let threads: number;
    try {
      threads = threadCount(options);
    } catch (error) {
      return Promise.reject(error);
    }
    const start = workerStarter();
    const workers: PoolWorker[] = [];
    let claims: Int32Array | undefined;
    let ownNets = nets;
    if (threads > 1 && start !== undefined) {
      // The workers first: each starts (a fresh isolate, its modules, its engine) while this
      // thread packs the nets for them.
      for (let i = 1; i < threads; i++) {
        try {
          workers.push({ port: start(), ready: false, jobs: [] });
        } catch {
          break;
        }
      }
    }
    if (workers.length > 0) {
      // One buffer of blobs that every worker reads in place, where the runtime shares memory.
      const shared = typeof SharedArrayBuffer === "function";
      if (shared) claims = new Int32Array(new SharedArrayBuffer(4 * CLAIM_SLOTS));
      const packed = nets.map((net) => packNet(net, shared));
      // This thread runs the same nets on that buffer: their blobs' pages are touched already
      // (packing them), where the caller's may still be deferred (unaligned caffemodel data, whose
      // arrays a first run would make in fresh memory: 77 MB of ResNet-50's 102).
      if (shared) ownNets = packed.map(unpackNet);
      const build = engineBuild();
      for (const { port } of workers) {
        if (shared) {
          port.post({ kind: "nets", nets: packed, build, claims }, []);
        } else {
          // Each worker gets its own copy of the blob buffers (transferred, so copied once).
          const copies = packed.map((net) => ({ ...net, data: net.data.slice(0) as ArrayBuffer }));
          port.post({ kind: "nets", nets: copies, build }, copies.map((net) => net.data));
        }
      }
    }
    const pool = new EnginePool(ownNets, workers, claims);
    // Answers come in a later turn of the event loop, after these are set.
    for (const worker of workers) {
      worker.port.listen(
        (message) => pool.#answered(worker, message),
        (text) => pool.#failed(worker, new Error(`engine worker: ${text}`)),
      );
    }
    return Promise.resolve(pool);
  }

  /**
   * Runs one sample (`inputs`; declared inputs not given are seeded with `seed`) through every
   * net of the pool: one `RunResult` per net, in order (`blobs` and `checkpoints` empty). Errors
   * are those of `runNet`.
   */
  async run(inputs?: Map<string, Tensor>, seed = 0): Promise<RunResult[]> {
    const { results, error } = await this.#finish(this.#submit([inputs], seed));
    if (error !== undefined) throw error;
    return results[0];
  }

  /** Queues consecutive samples as one job, and gives it to a worker with room. */
  #submit(samples: (Map<string, Tensor> | undefined)[], seed: number): Job {
    let settle!: (result: JobResult) => void;
    let fail!: (error: Error) => void;
    const result = new Promise<JobResult>((resolve, reject) => {
      settle = resolve;
      fail = reject;
    });
    // Awaited in turn; until then a failure must not count as unhandled.
    result.catch(() => {});
    const job: Job = {
      id: this.#nextId++,
      samples,
      seed,
      result,
      settled: false,
      resolve(value) {
        job.settled = true;
        settle(value);
      },
      reject(error) {
        job.settled = true;
        fail(error);
      },
    };
    this.#queue.push(job);
    this.#dispatch();
    return job;
  }

  /**
   * `job`'s results. Until it is done this thread runs queued jobs itself, oldest first, then
   * jobs it takes back from workers that have not started them (`job` first), letting its event
   * loop take a turn before each so that the workers' answers come in and they are given the next
   * jobs.
   */
  async #finish(job: Job): Promise<JobResult> {
    while (!job.settled) {
      if (this.#workers.length > 0) await this.#turn();
      if (job.settled) break;
      const next = this.#queue.shift() ?? this.#takenBack(job);
      if (next === undefined) break;
      await this.#runHere(next);
    }
    return job.result;
  }

  /**
   * A job posted to a worker that has not started it, claimed for this thread (`wanted` if it is
   * one, else the last one posted); undefined when there is none (or memory is not shared).
   * The worker answers that it was taken.
   */
  #takenBack(wanted: Job): Job | undefined {
    const claims = this.#claims;
    if (claims === undefined) return undefined;
    const candidates = [wanted, ...this.#workers.flatMap((worker) => worker.jobs).reverse()];
    for (const job of candidates) {
      const { worker, claim } = job;
      if (worker === undefined || claim === undefined) continue;
      if (Atomics.compareExchange(claims, claim, 0, 2) !== 0) continue;
      worker.jobs.splice(worker.jobs.indexOf(job), 1);
      job.worker = undefined;
      return job;
    }
    return undefined;
  }

  /**
   * One turn of this thread's event loop (messages from workers among it): a message to itself
   * takes ~10 µs where a zero timeout takes 1–2 ms.
   */
  #turn(): Promise<void> {
    const turns = this.#turns!;
    return new Promise((resolve) => {
      turns.port1.onmessage = () => resolve();
      turns.port2.postMessage(null);
    });
  }

  /**
   * Runs every sample of `samples` as {@linkcode run} does, yielding each one's results in
   * sample order. Samples are read ahead (with workers, {@linkcode JOBS_PER_WORKER} + 1 jobs per
   * thread, so that this thread rarely finds none queued and takes one back from a worker; one job
   * without; a job carries consecutive samples, more of them for a fast net). The first error is
   * thrown when its sample's turn comes, after the samples before it.
   */
  async *runAll(
    samples: SampleInputs,
    seed = 0,
  ): AsyncGenerator<RunResult[]> {
    const workers = this.#workers.length;
    const ahead = workers === 0 ? 1 : (JOBS_PER_WORKER + 1) * (workers + 1);
    const pending: Job[] = [];
    let batch: (Map<string, Tensor> | undefined)[] = [];
    const submit = () => {
      pending.push(this.#submit(batch, seed));
      batch = [];
    };
    try {
      for await (const inputs of samples) {
        batch.push(inputs);
        if (batch.length >= this.#jobSamples) submit();
        while (pending.length >= ahead) {
          yield* EnginePool.#unpacked(await this.#finish(pending.shift()!));
        }
      }
      if (batch.length > 0) submit();
      while (pending.length > 0) yield* EnginePool.#unpacked(await this.#finish(pending.shift()!));
    } finally {
      // Stopped early: what no thread took yet is not run.
      for (const job of pending) {
        const at = this.#queue.indexOf(job);
        if (at >= 0) this.#queue.splice(at, 1);
      }
    }
  }

  /** A job's results one sample at a time, then its error. */
  static *#unpacked({ results, error }: JobResult): Generator<RunResult[]> {
    yield* results;
    if (error !== undefined) throw error;
  }

  /** Stops the workers; runs not finished fail. */
  close(): void {
    const closed = new Error("the engine pool was closed");
    for (const worker of this.#workers) {
      worker.port.terminate();
      for (const job of worker.jobs.splice(0)) job.reject(closed);
    }
    for (const job of this.#queue.splice(0)) job.reject(closed);
    this.#workers.length = 0;
    this.#turns?.port1.close();
  }

  /**
   * Runs a job on this thread: as joined runs when the nets allow it (src/engine/joined_run.ts).
   */
  async #runHere(job: Job): Promise<void> {
    const started = performance.now();
    try {
      const { results, error } = await runSamples(this.#nets, job.samples, job.seed);
      if (error === undefined) {
        this.#noteJob(performance.now() - started, job.samples.length);
        job.resolve({ results });
      } else if (error instanceof Error) job.resolve({ results, error });
      else job.reject(error as Error);
    } catch (error) {
      job.reject(error as Error);
    }
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

  /** Gives queued jobs to the workers ready with room, least busy first. */
  #dispatch(): void {
    for (let depth = 1; depth <= JOBS_PER_WORKER; depth++) {
      for (const worker of this.#workers) {
        if (worker.jobs.length >= depth) continue;
        const job = this.#queue.shift();
        if (job === undefined) return;
        worker.jobs.push(job);
        job.worker = worker;
        job.claim = this.#freeClaims.pop();
        if (job.claim !== undefined) Atomics.store(this.#claims!, job.claim, 0);
        // A copy of the inputs' elements is transferred: the caller's arrays stay usable. It goes
        // into a buffer a worker handed back when one is large enough (touched pages, no faults).
        const groups = job.samples.map((inputs) => inputs && { tensors: inputs });
        const bundle = bundleTensors(groups, (bytes) => this.#spare.take(bytes));
        const nets = this.#nets.map((_, i) => i);
        worker.port.post(
          { kind: "run", id: job.id, nets, samples: bundle, seed: job.seed, claim: job.claim },
          [bundle.data.buffer as ArrayBuffer],
        );
      }
    }
  }

  #answered(worker: PoolWorker, message: FromWorker): void {
    if (message.kind === "ready") {
      worker.ready = true;
      this.#dispatch();
      return;
    }
    if (message.kind === "failed") {
      this.#failed(worker, errorFromWire(message.error));
      return;
    }
    // The worker reads the job's claim no more.
    if (message.claim !== undefined) this.#freeClaims.push(message.claim);
    this.#spare.give(message.spent);
    const index = worker.jobs.findIndex((job) => job.id === message.id);
    if (message.kind === "taken" || index < 0) {
      this.#dispatch();
      return;
    }
    const [job] = worker.jobs.splice(index, 1);
    job.worker = undefined;
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

  /**
   * A worker that failed: one still starting is left out (this thread and the others carry on);
   * the jobs of one that was running fail with `error`.
   */
  #failed(worker: PoolWorker, error: Error): void {
    for (const job of worker.jobs) {
      job.worker = undefined;
      if (job.claim !== undefined) this.#freeClaims.push(job.claim);
      job.claim = undefined;
    }
    if (!worker.ready) this.#queue.unshift(...worker.jobs.splice(0));
    for (const job of worker.jobs.splice(0)) job.reject(error);
    worker.port.terminate();
    const index = this.#workers.indexOf(worker);
    if (index >= 0) this.#workers.splice(index, 1);
  }
}
