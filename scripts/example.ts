/**
 * `npm run example`: writes the built-in example (see `example_model.ts`) to `./out/` and converts
 * it with the command line's `convert --compare`.
 *
 * @module
 */

import { main } from "../src/cli.ts";
import { exampleFiles } from "./example_model.ts";
import { mkdir, writeFile } from "node:fs/promises";

const { model, weights, record } = await exampleFiles();
await mkdir("out", { recursive: true });
await writeFile("out/example.prototxt", model);
await writeFile("out/example.caffemodel", weights);
await writeFile("out/example_record.txt", record);
console.log("wrote out/example.prototxt, out/example.caffemodel, out/example_record.txt");
const argv = [
  "convert",
  "out/example.prototxt",
  "out/example.caffemodel",
  "out/example_record.txt",
  "out/example",
  "--compare",
];
console.log(`\n$ caffe-quant ${argv.join(" ")}`);
Deno.exitCode = await main(argv);
