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
import { concatRows } from "../engine/tensor.ts";
import { ConvertError } from "../errors.ts";
import { writeAllOrNothing } from "../io/files.ts";
import { npyFileName, writeNpy } from "../io/npy.ts";
import { parseArgs } from "./args.ts";
import { type Command, integerOption, loadModelFiles, shownPath } from "./common.ts";
import { collectSamples, DATA_FLAGS, DATA_HELP, DATA_OPTIONS, DATA_USAGE } from "./data_options.ts";
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
    const data = await collectSamples(args, net);
    const seed = integerOption(args, "seed", 0);
    const runs = data?.samples.map((sample) => sample.inputs) ?? [undefined];
    const results: RunResult[] = [];
    const pool = await EnginePool.open([net], { threads: Math.min(threads, runs.length) });
    try {
      for await (const [result] of pool.runAll(runs, seed)) results.push(result);
    } finally {
      pool.close();
    }
    const result = results[0];
    const outputs = [...result.outputs].map(([blob]) => ({
      blob,
      tensor: sampleRows(results.map((run) => run.outputs.get(blob)!)),
    }));
    const { paths } = await writeAllOrNothing(
      out,
      outputs.map(({ blob, tensor }) => ({ name: npyFileName(blob), content: writeNpy(tensor) })),
    );
    const summary = {
      outputs: outputs.map(({ blob, tensor }, i) => ({
        blob,
        shape: tensor.shape,
        file: paths[i],
      })),
      skipped: result.skipped,
    };
    if (args.flags.has("json")) {
      io.out(JSON.stringify(summary, null, 2) + "\n");
      return;
    }
    for (const { blob, shape, file } of summary.outputs) {
      io.out(`${printable(`${blob} [${shape.join("x")}] -> ${shownPath(file)}`)}\n`);
    }
    for (const { layer, type, reason } of result.skipped) {
      io.out(`${printable(`skipped ${layer} (${type}): ${reason}`)}\n`);
    }
  },
};

/** Each sample's output of one blob as the rows of one tensor. */
function sampleRows(tensors: Tensor[]): Tensor {
  const joined = concatRows(tensors);
  if (joined === undefined) {
    throw new ConvertError("BAD_INPUT", "the samples give outputs of different shapes");
  }
  return joined;
}
