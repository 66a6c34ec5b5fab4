/**
 * `caffe-quant inspect`: every layer of a net, its wiring, shapes and quantizability.
 *
 * @module
 */

import { formatNetSummary, inspectNet } from "../caffe/inspect.ts";
import { readPrototxt } from "../caffe/prototxt.ts";
import { readInputText } from "../io/files.ts";
import { parseArgs } from "./args.ts";
import { type Command, loadModelFiles } from "./common.ts";

export const inspectCommand: Command = {
  usage: "inspect <model_file> [weights_file] [--json]",
  help: "Lists every layer with its type, wiring, blob shapes, parameter count and whether it\n" +
    "can be quantized (and if not, why). Without weights, blob shapes are not shown.",
  async run(argv, io) {
    const args = parseArgs(argv, {
      positionals: ["model_file"],
      optional: ["weights_file"],
      flags: ["json"],
    }, this.usage);
    const modelFile = args.positionals.model_file!;
    const weightsFile = args.positionals.weights_file;
    const net = weightsFile === undefined
      ? readPrototxt(await readInputText(modelFile), modelFile)
      : await loadModelFiles(modelFile, weightsFile);
    const summary = inspectNet(net);
    io.out(
      args.flags.has("json") ? JSON.stringify(summary, null, 2) + "\n" : formatNetSummary(summary),
    );
  },
};
