/**
 * `caffe-quant config`: AMCT's JSON quantization configuration for a model, as
 * `create_quant_config` writes it, for users to edit and pass to calibration.
 *
 * @module
 */

import { printable } from "../printable.ts";
import { basename, dirname } from "node:path";
import type { ActivationAlgorithm } from "../calibrate/activation.ts";
import { writeJsonConfig } from "../calibrate/config_json.ts";
import { ConvertError } from "../errors.ts";
import { writeAllOrNothing } from "../io/files.ts";
import { parseArgs } from "./args.ts";
import { type Command, integerOption, loadModelFiles, shownPath } from "./common.ts";

/** The values `--algo` takes. */
const ALGORITHMS: readonly ActivationAlgorithm[] = ["ifmr", "hfmg", "minmax"];

export const configCommand: Command = {
  usage: "config <model_file> <weights_file> [--skip <layer>]... [--algo ifmr|hfmg|minmax] " +
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
    const algorithm = args.options.get("algo")?.at(-1) ?? "ifmr";
    if (!ALGORITHMS.includes(algorithm as ActivationAlgorithm)) {
      throw new ConvertError(
        "USAGE",
        `--algo takes ${ALGORITHMS.join(", ")}, not "${printable(algorithm)}"`,
      );
    }
    const batchNum = integerOption(args, "batch-num", 1, 1);
    const text = writeJsonConfig(net, {
      skip: args.options.get("skip") ?? [],
      activation: {
        algorithm: algorithm as ActivationAlgorithm,
        withOffset: !args.flags.has("no-offset"),
      },
      batchNum,
    });
    const out = args.options.get("out")?.at(-1);
    if (out === undefined) {
      io.out(text);
      return;
    }
    const { paths } = await writeAllOrNothing(
      dirname(out),
      [{ name: basename(out), content: text }],
      [args.positionals.model_file!, args.positionals.weights_file!],
    );
    io.out(`wrote ${shownPath(paths[0])}\n`);
  },
};
