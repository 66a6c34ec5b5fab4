/**
 * Writes a record file for every quantizable layer of a model, from its weights alone (SPEC §9):
 *
 * ```sh
 * deno run -A scripts/make_record.ts deploy.prototxt weights.caffemodel \
 *   [--scale-d X] [--offset-d N] [--per-tensor] [--out record.txt]
 * ```
 *
 * Weight scales come from the fused weights; every layer gets the activation factors given (by
 * default those of the range [-1, 1]). Without `--out` the record goes to standard output.
 *
 * @module
 */

import { ConvertError } from "../src/errors.ts";
import { parseArgs } from "../src/cli/args.ts";
import { loadNet } from "../src/caffe/model.ts";
import { readInput, readInputText } from "../src/io/files.ts";
import { makeRecord } from "../src/quant/make_record.ts";

const USAGE = "deno run -A scripts/make_record.ts <model_file> <weights_file> " +
  "[--scale-d X] [--offset-d N] [--per-tensor] [--out file]";

/** Parses a numeric option, or undefined when absent. */
function numberOption(values: string[] | undefined, name: string): number | undefined {
  if (values === undefined) return undefined;
  const value = Number(values[values.length - 1]);
  if (!Number.isFinite(value)) {
    throw new ConvertError("USAGE", `--${name} needs a number\nusage: ${USAGE}`);
  }
  return value;
}

/** Makes the record for the files named in `argv`; resolves to the exit code. */
export async function run(argv: string[]): Promise<number> {
  try {
    const args = parseArgs(argv, {
      positionals: ["model_file", "weights_file"],
      flags: ["per-tensor"],
      options: ["scale-d", "offset-d", "out"],
    }, USAGE);
    const options = {
      scaleD: numberOption(args.options.get("scale-d"), "scale-d"),
      offsetD: numberOption(args.options.get("offset-d"), "offset-d"),
      perTensor: args.flags.has("per-tensor"),
    };
    const modelFile = args.positionals.model_file!;
    const weightsFile = args.positionals.weights_file!;
    const net = loadNet(await readInputText(modelFile), await readInput(weightsFile), {
      model: modelFile,
      weights: weightsFile,
    });
    const record = await makeRecord(net, options);
    const out = args.options.get("out")?.at(-1);
    if (out === undefined) console.log(record.trimEnd());
    else await Deno.writeTextFile(out, record);
    return 0;
  } catch (error) {
    if (!(error instanceof ConvertError)) throw error;
    console.error(error.format());
    return 2;
  }
}

if (import.meta.main) Deno.exit(await run(Deno.args));
