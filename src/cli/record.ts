/**
 * `caffe-quant record`: a record file made from the weights and observed activation ranges.
 *
 * @module
 */

import { basename, dirname } from "node:path";
import { observeActivationRanges } from "../engine/calibrate.ts";
import { writeAllOrNothing } from "../io/files.ts";
import { makeRecord } from "../quant/make_record.ts";
import { parseArgs } from "./args.ts";
import {
  type Command,
  inputTensors,
  integerOption,
  loadModelFiles,
  numberOption,
  shownPath,
} from "./common.ts";

export const recordCommand: Command = {
  usage: "record <model_file> <weights_file> [--calibrate N] [--input <blob>=<file.npy>]... " +
    "[--scale-d X] [--offset-d N] [--per-tensor] [--out <file>]",
  help:
    "Writes a record file for every quantizable layer from the weights (SPEC §9): per-channel\n" +
    "scale_w from the fused weights. Activation factors come from the ranges the simulator\n" +
    "observes on N seeded inputs (--calibrate N) or on the given inputs, else from --scale-d\n" +
    "and --offset-d (default: those of the range [-1, 1]). Prints the record without --out.",
  async run(argv, io) {
    const args = parseArgs(argv, {
      positionals: ["model_file", "weights_file"],
      flags: ["per-tensor"],
      options: ["calibrate", "input", "scale-d", "offset-d", "out", "seed"],
    }, this.usage);
    const files = { model: args.positionals.model_file!, weights: args.positionals.weights_file! };
    const net = await loadModelFiles(files.model, files.weights);
    const inputs = await inputTensors(args);
    const samples = integerOption(args, "calibrate", 0);
    const activationRanges = inputs !== undefined || samples > 0
      ? await observeActivationRanges(net, {
        samples,
        seed: integerOption(args, "seed", 0),
        inputs: inputs && [inputs],
      })
      : undefined;
    const text = await makeRecord(net, {
      scaleD: numberOption(args, "scale-d"),
      offsetD: numberOption(args, "offset-d"),
      perTensor: args.flags.has("per-tensor"),
      activationRanges,
      files,
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
