/**
 * `caffe-quant run`: a net run in the simulator, its outputs written as `.npy` files.
 *
 * @module
 */

import { printable } from "../printable.ts";
import { netWarnings } from "../caffe/inspect.ts";
import { runNet } from "../engine/run.ts";
import { ConvertError } from "../errors.ts";
import { writeAllOrNothing } from "../io/files.ts";
import { npyFileName, writeNpy } from "../io/npy.ts";
import { parseArgs } from "./args.ts";
import { type Command, inputTensors, integerOption, loadModelFiles, shownPath } from "./common.ts";

export const runCommand: Command = {
  usage: "run <model_file> <weights_file> [--input <blob>=<file.npy>]... [--seed N] " +
    "--out <dir> [--json]",
  help: "Runs the net (float, fake-quant or deploy) in the simulator on .npy inputs, or on\n" +
    "seeded uniform [-1, 1) inputs of the declared shapes, and writes every net output as\n" +
    "<dir>/output.<blob>.npy (float32, C order; bytes of the blob name outside [A-Za-z0-9._-]\n" +
    "as %XX). Layers it cannot run are listed.",
  async run(argv, io) {
    const args = parseArgs(argv, {
      positionals: ["model_file", "weights_file"],
      flags: ["json"],
      options: ["input", "seed", "out"],
    }, this.usage);
    const out = args.options.get("out")?.at(-1);
    if (out === undefined) {
      throw new ConvertError("USAGE", `--out <dir> is required\nusage: ${this.usage}`);
    }
    const modelFile = args.positionals.model_file!;
    const weightsFile = args.positionals.weights_file!;
    const net = await loadModelFiles(modelFile, weightsFile);
    for (const warning of netWarnings(net)) io.err(`warning: ${printable(warning)}\n`);
    const result = await runNet(net, {
      inputs: await inputTensors(args),
      seed: integerOption(args, "seed", 0),
    });
    const outputs = [...result.outputs].map(([blob, tensor]) => ({ blob, tensor }));
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
