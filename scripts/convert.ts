/**
 * AMCT's `convert_model` as a Deno script that needs nothing but file access:
 *
 * ```sh
 * npx deno run --allow-read --allow-write scripts/convert.ts \
 *   deploy.prototxt weights.caffemodel record.txt out/lenet
 * ```
 *
 * Writes the five outputs (`out/lenet_deploy_model.prototxt` …) and prints their paths. A user
 * mistake prints `error[CODE] file:line:col: message` and exits 2.
 *
 * @module
 */

import { convert_model, ConvertError } from "../mod.ts";

const USAGE = "usage: npx deno run --allow-read --allow-write scripts/convert.ts " +
  "<model_file> <weights_file> <record_file> <save_path>";

/** Converts the files named in `args`; resolves to the exit code. */
export async function run(args: string[]): Promise<number> {
  if (args.length !== 4) {
    console.error(USAGE);
    return 2;
  }
  const [modelFile, weightsFile, recordFile, savePath] = args;
  try {
    const report = await convert_model(modelFile, weightsFile, recordFile, savePath);
    for (const warning of report.warnings) console.error(`warning: ${warning}`);
    console.log(`quantized ${report.quantizedLayers.join(", ")}`);
    for (const path of Object.values(report.outputs)) console.log(`wrote ${path}`);
    return 0;
  } catch (error) {
    if (!(error instanceof ConvertError)) throw error;
    console.error(error.format());
    return 2;
  }
}

if (import.meta.main) Deno.exit(await run(Deno.args));
