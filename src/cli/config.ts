/**
 * `caffe-quant config`: AMCT's JSON quantization configuration for a model, as
 * `create_quant_config` writes it, for users to edit and pass to calibration.
 *
 * @module
 */

import { writeJsonConfig } from "../calibrate/config_json.ts";
import { parseArgs } from "./args.ts";
import { algorithmOption } from "./calibration.ts";
import { type Command, integerOption, loadModelFiles, printOrWrite } from "./common.ts";

export const configCommand: Command = {
  usage:
    "config <model_file> <weights_file> [--skip <layer>]... [--algo ifmr|hfmg|minmax|search] " +
    "[--no-offset] [--batch-num N] [--out <file>]",
  help:
    "Writes AMCT's JSON quantization configuration for the model, as create_quant_config does:\n" +
    "one entry per quantizable layer with AMCT's defaults (IFMR, activation offset, per-channel\n" +
    "ARQ weights), quant_enable: false for the --skip layers. Edit it and give it to calibration\n" +
    "(--config). Prints the configuration without --out.",
  async run(argv, io) {
    const args = parseArgs(argv, {
      positionals: ["model_file", "weights_file"],
      flags: ["no-offset"],
      options: ["skip", "algo", "batch-num", "out"],
    }, this.usage);
    const net = await loadModelFiles(args.positionals.model_file!, args.positionals.weights_file!);
    const batchNum = integerOption(args, "batch-num", 1, 1);
    const text = writeJsonConfig(net, {
      skip: args.options.get("skip") ?? [],
      activation: {
        algorithm: algorithmOption(args),
        withOffset: !args.flags.has("no-offset"),
      },
      batchNum,
    });
    const out = args.options.get("out")?.at(-1);
    await printOrWrite(io, text, out);
  },
};
