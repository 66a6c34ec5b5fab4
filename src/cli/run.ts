/**
 * `caffe-quant run`: a net run in the simulator, its outputs written as `.npy` files.
 *
 * @module
 */

import { printable } from "../printable.ts";
import { netWarnings } from "../caffe/inspect.ts";
import { EnginePool } from "../engine/engine_pool.ts";
import { defaultThreads } from "../engine/worker_starter.ts";
import type { RunResult, Tensor } from "../engine/run.ts";
import type { DataSample } from "../data/samples.ts";
import { ConvertError } from "../errors.ts";
import { writeAllOrNothing } from "../io/files.ts";
import { npyFileName, npyPieces } from "../io/npy.ts";
import { parseArgs } from "./args.ts";
import { type Command, integerOption, loadModelFiles, shownPath } from "./common.ts";
import { DATA_FLAGS, DATA_HELP, DATA_OPTIONS, DATA_USAGE, dataSamples } from "./data_options.ts";
import { statusLine } from "./progress.ts";
import { THREADS_HELP, THREADS_USAGE, threadsOption } from "./threads.ts";

export const runCommand: Command = {
  usage:
    `run <model_file> <weights_file> ${DATA_USAGE} [--seed N] ${THREADS_USAGE} --out <dir> [--json]`,
  help: "Runs the net (float, fake-quant or deploy) in the simulator on your data, or on\n" +
    "seeded uniform [-1, 1) inputs of the declared shapes, and writes every net output as\n" +
    "<dir>/output.<blob>.npy (float32, C order; bytes of the blob name outside [A-Za-z0-9._-]\n" +
    "as %XX; several samples are run one at a time and their outputs stacked on axis 0, in\n" +
    "sample order). Layers it cannot run are listed.\n" + THREADS_HELP + DATA_HELP,
  async run(argv, io) {
    const args = parseArgs(argv, {
      positionals: ["model_file", "weights_file"],
      flags: ["json", ...DATA_FLAGS],
      options: ["seed", "out", "threads", ...DATA_OPTIONS],
    }, this.usage);
    const out = args.options.get("out")?.at(-1);
    if (out === undefined) {
      throw new ConvertError("USAGE", `--out <dir> is required\nusage: ${this.usage}`);
    }
    const threads = threadsOption(args) ?? defaultThreads();
    const modelFile = args.positionals.model_file!;
    const weightsFile = args.positionals.weights_file!;
    const net = await loadModelFiles(modelFile, weightsFile);
    for (const warning of netWarnings(net)) io.err(`warning: ${printable(warning)}\n`);
    const data = await dataSamples(args, net);
    const seed = integerOption(args, "seed", 0);
    // Samples are read as the pool asks for them (the first few first, to size it), and each is
    // released once its outputs are its own, so later ones are read into its memory.
    const source = data?.open()[Symbol.asyncIterator]();
    const first: DataSample[] = [];
    while (source !== undefined && first.length < threads) {
      const next = await source.next();
      if (next.done) break;
      first.push(next.value);
    }
    if (source !== undefined && first.length === 0) {
      throw new ConvertError("USAGE", "--data gives no samples");
    }
    const running: DataSample[] = [];
    async function* inputs(): AsyncIterable<Map<string, Tensor>> {
      for (;;) {
        const sample: DataSample | undefined = first.shift() ?? (await source!.next()).value;
        if (sample === undefined) return;
        running.push(sample);
        yield sample.inputs;
      }
    }
    const stacked = new OutputRows();
    const pool = await EnginePool.open([net], { threads: Math.max(1, first.length) });
    const status = statusLine(io.err, io.isTerminal);
    const started = performance.now();
    let done = 0;
    try {
      for await (
        const [result] of pool.runAll(source === undefined ? [undefined] : inputs(), seed)
      ) {
        const sample = running.shift();
        stacked.add(result, sample);
        sample?.release?.();
        const each = (performance.now() - started) / ++done;
        status.show(`running: ${done} samples, ${each.toFixed(1)} ms each`);
      }
    } finally {
      status.done();
      pool.close();
    }
    const outputs = stacked.outputs();
    const { paths } = await writeAllOrNothing(
      out,
      outputs.map(({ blob, shape, parts }) => ({
        name: npyFileName(blob),
        content: npyPieces(shape, parts),
      })),
    );
    const skipped = stacked.skipped;
    const summary = {
      outputs: outputs.map(({ blob, shape }, i) => ({
        blob,
        shape,
        file: paths[i],
      })),
      skipped,
    };
    if (args.flags.has("json")) {
      io.out(JSON.stringify(summary, null, 2) + "\n");
      return;
    }
    for (const { blob, shape, file } of summary.outputs) {
      io.out(`${printable(`${blob} [${shape.join("x")}] -> ${shownPath(file)}`)}\n`);
    }
    for (const { layer, type, reason } of skipped) {
      io.out(`${printable(`skipped ${layer} (${type}): ${reason}`)}\n`);
    }
  },
};

/**
 * Each sample's outputs, blob by blob, to be written stacked on axis 0 (as one batch would give
 * them), in the order the first sample's run gave its outputs.
 */
class OutputRows {
  /** The layers the first run skipped. */
  skipped: RunResult["skipped"] = [];
  /** Each output blob's stacked shape so far and its values, sample by sample. */
  readonly #stacks = new Map<string, { shape: number[]; parts: Float32Array[] }>();
  #samples = 0;

  /**
   * Adds one sample's outputs. An output whose values are in the sample's input arrays (an input
   * no layer reads is an output as it is) is copied, as the sample's memory may be reused.
   */
  add(result: RunResult, sample: DataSample | undefined): void {
    if (this.#samples++ === 0) this.skipped = result.skipped;
    const inputBuffers = new Set(
      [...sample?.inputs.values() ?? []].map((input) => input.data.buffer),
    );
    for (const [blob, { shape, data }] of result.outputs) {
      let stack = this.#stacks.get(blob);
      if (stack === undefined && this.#samples === 1) {
        stack = { shape: [...shape], parts: [] };
        this.#stacks.set(blob, stack);
      } else if (
        stack === undefined || shape.length === 0 || shape.length !== stack.shape.length ||
        shape.some((size, axis) => axis > 0 && size !== stack!.shape[axis])
      ) {
        throw new ConvertError("BAD_INPUT", "the samples give outputs of different shapes");
      } else {
        stack.shape[0] += shape[0];
      }
      stack.parts.push(inputBuffers.has(data.buffer) ? data.slice() : data);
    }
  }

  /** Every output blob's stacked shape and values, part by part. */
  outputs(): { blob: string; shape: number[]; parts: Float32Array[] }[] {
    return [...this.#stacks].map(([blob, { shape, parts }]) => ({ blob, shape, parts }));
  }
}
