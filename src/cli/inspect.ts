/**
 * `caffe-quant inspect`: every layer of a net, its wiring, shapes and quantizability.
 *
 * @module
 */

import { formatNetSummary } from "../caffe/inspect.ts";
import { readPrototxt } from "../caffe/prototxt.ts";
import { describeNet } from "../engine/describe.ts";
import { readInputText } from "../io/files.ts";
import { parseArgs } from "./args.ts";
import { type Command, loadModelFiles } from "./common.ts";

export const inspectCommand: Command = {
  usage: "inspect <model_file> [weights_file] [--json]",
  help:
    "Lists every layer with its type, wiring, output (top) shapes, parameter blob shapes and\n" +
    "count, and whether it can be quantized, is fused into the layer before it (BatchNorm and\n" +
    "Scale of a Conv+BatchNorm+Scale composite), or why not. Without weights, shapes and\n" +
    "fusion are not shown. Layers and error codes: docs/layers.md, docs/errors.md.",
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
    const summary = await describeNet(net, { shapes: weightsFile !== undefined });
    io.out(
      args.flags.has("json") ? JSON.stringify(summary, null, 2) + "\n" : formatNetSummary(summary),
    );
  },
};
