/**
 * The data options every command that runs samples shares (`record`, `run`, `compare`,
 * `convert --compare`): where samples come from (`--data`, `--input`), how images become
 * tensors (Caffe's TEST-phase transform: `--resize`, `--crop`, `--mean`, `--mean-file`,
 * `--scale`, `--rgb`, `--gray`, `--transform-from`), how many (`--samples`) and their labels
 * (`--labels`). Every value is checked with a message naming its option.
 *
 * @module
 */

import { basename, dirname, resolve } from "node:path";
import { readBlobProto } from "../caffe/caffemodel_read.ts";
import { type Net, netInputs } from "../caffe/net.ts";
import {
  type DataSample,
  readSamples,
  type SampleItem,
  samplesShape,
  splitSamples,
} from "../data/samples.ts";
import type { Transform } from "../data/transform.ts";
import { dataLayerSettings } from "../data/transform_param.ts";
import { product, type Tensor } from "../engine/tensor.ts";
import { ConvertError } from "../errors.ts";
import { readInput, readInputText } from "../io/files.ts";
import { readNpy } from "../io/npy.ts";
import { sampleFiles } from "../io/sample_files.ts";
import { numberValue, type ParsedArgs, wholeNumberValue } from "./args.ts";

export { DATA_FLAGS, DATA_HELP, DATA_OPTIONS, DATA_USAGE } from "./data_option_names.ts";

function usage(option: string, message: string): ConvertError {
  return new ConvertError("USAGE", `--${option} ${message}`);
}

/** The value of a single-valued option (parseArgs refuses one given twice). */
function last(args: ParsedArgs, name: string): string | undefined {
  return args.options.get(name)?.[0];
}

/**
 * The transform the options describe (`--resize`, `--crop`, `--mean`, `--mean-file`, `--scale`,
 * `--rgb`, `--gray`, on top of `--transform-from`'s), with the list `source` and `rootFolder`
 * of the `--transform-from` data layer.
 */
export async function transformFromArgs(
  args: ParsedArgs,
): Promise<{ transform: Transform; source?: string; rootFolder?: string }> {
  let transform: Transform = {};
  let meanFile: string | undefined;
  let source: string | undefined;
  let rootFolder: string | undefined;
  const from = last(args, "transform-from");
  if (from !== undefined) {
    const settings = dataLayerSettings(await readInputText(from), from);
    transform = settings.transform;
    // Paths in a prototxt are as Caffe reads them: relative to where it runs.
    meanFile = settings.meanFile;
    source = settings.source;
    rootFolder = settings.rootFolder;
  }
  const resize = last(args, "resize");
  if (resize !== undefined) {
    const match = /^(\d+)[xX](\d+)$/.exec(resize.trim());
    const [height, width] = match ? [Number(match[1]), Number(match[2])] : [0, 0];
    if (!(height > 0 && width > 0)) {
      throw usage("resize", `needs HEIGHTxWIDTH (e.g. 224x224), not "${resize}"`);
    }
    transform.resize = { height, width };
  }
  const crop = last(args, "crop");
  if (crop !== undefined) transform.crop = wholeNumberValue("crop", crop, 1);
  const mean = last(args, "mean");
  if (mean !== undefined) {
    transform.mean = mean.split(",").map((part) => numberValue("mean", part.trim()));
    if (transform.mean.length !== 1 && transform.mean.length !== 3) {
      throw usage("mean", `needs one value or three (B,G,R), not "${mean}"`);
    }
  }
  const meanFileOption = last(args, "mean-file");
  if (meanFileOption !== undefined) meanFile = meanFileOption;
  if (meanFile !== undefined && mean !== undefined) {
    throw usage("mean", "and a mean file cannot both be given");
  }
  if (meanFile !== undefined) {
    delete transform.mean;
    transform.meanImage = readBlobProto(await readInput(meanFile), meanFile);
  }
  const scale = last(args, "scale");
  if (scale !== undefined) transform.scale = numberValue("scale", scale);
  if (args.flags.has("rgb")) transform.rgb = true;
  if (args.flags.has("gray")) transform.gray = true;
  return { transform, source, rootFolder };
}

/** The integers of a labels file (one a line, blank lines skipped). */
async function labelsFile(file: string): Promise<number[]> {
  const labels: number[] = [];
  (await readInputText(file)).split("\n").forEach((raw, index) => {
    const text = raw.trim();
    if (text === "") return;
    if (!/^[+-]?\d+$/.test(text)) {
      throw new ConvertError("LIST_FORMAT", `the label "${text}" is not an integer`, {
        file,
        line: index + 1,
        column: 1,
      });
    }
    labels.push(Number(text));
  });
  return labels;
}

/** `--input <blob>=<path>` options grouped by blob, in order; a bad spec is a USAGE error. */
function inputSpecs(args: ParsedArgs): Map<string, string[]> {
  const byBlob = new Map<string, string[]>();
  for (const spec of args.options.get("input") ?? []) {
    const equals = spec.indexOf("=");
    if (equals < 1 || equals === spec.length - 1) {
      throw usage("input", `needs <blob>=<file.npy>, not "${spec}"`);
    }
    const blob = spec.slice(0, equals);
    byBlob.set(blob, [...(byBlob.get(blob) ?? []), spec.slice(equals + 1)]);
  }
  return byBlob;
}

/**
 * The samples of `--input` options: sample i takes the i-th `.npy` sample of every blob. One blob's
 * files are items for `readSamples` to check and split: a `.npy` batch given by its path a row
 * (sample) at a time, read into memory reused once each sample is released (a whole 61 MB batch
 * took 240 ms to read, row by row 8 ms), other files a tensor each.
 */
async function* inputSamples(net: Net, byBlob: Map<string, string[]>): AsyncIterable<SampleItem> {
  const declared = new Map(netInputs(net).map((input) => [input.name, input]));
  for (const blob of byBlob.keys()) {
    if (!declared.has(blob)) {
      throw usage(
        "input",
        `names "${blob}", not an input of the net (inputs: ${[...declared.keys()].join(", ")})`,
      );
    }
  }
  if (byBlob.size === 1) {
    const [[blob, paths]] = byBlob;
    const input = declared.get(blob)!;
    // Rows are samples when the shape is a valid batch of them; a shape that is not stays whole,
    // so that its error names the file's whole shape.
    const rowSamples = (shape: number[], file: string) => {
      try {
        return shape.length > 0 && shape[0] > 1 && product(shape) > 0 &&
          samplesShape(shape, input, file).length === shape.length;
      } catch {
        return false;
      }
    };
    for await (const item of sampleFiles(paths, { rowSamples })) {
      yield "bytes" in item ? { name: item.name, tensor: readNpy(item.bytes, item.name) } : item;
    }
    return;
  }
  const perBlob = new Map<string, { name: string; tensor: Tensor }[]>();
  for (const [blob, paths] of byBlob) {
    const input = declared.get(blob)!;
    const tensors: { name: string; tensor: Tensor }[] = [];
    for await (const item of sampleFiles(paths)) {
      const parts = await splitSamples(readNpy(item.bytes, item.name), input, item.name);
      parts.forEach((tensor, i) =>
        tensors.push({ name: parts.length > 1 ? `${item.name}[${i}]` : item.name, tensor })
      );
    }
    perBlob.set(blob, tensors);
  }
  const counts = [...perBlob].map(([blob, tensors]) => `${blob}: ${tensors.length}`);
  const count = Math.max(...[...perBlob.values()].map((tensors) => tensors.length));
  if ([...perBlob.values()].some((tensors) => tensors.length !== count)) {
    throw usage("input", `gives different sample counts per blob (${counts.join(", ")})`);
  }
  for (let i = 0; i < count; i++) {
    const inputs = new Map([...perBlob].map(([blob, tensors]) => [blob, tensors[i].tensor]));
    const name = [...perBlob.values()].map((tensors) => tensors[i].name).join(" + ");
    yield { name, inputs };
  }
}

/** A command's samples: readable again and again, and what they are in words. */
export interface DataSamples {
  /** The samples, one at a time, read afresh on each call (one call per pass over the data). */
  open(): AsyncIterable<DataSample>;
  /** What was given, for headings ("data: 8 samples from faces/"). */
  description: string;
}

/**
 * The samples the data options give for `net`, or undefined when neither `--data` nor `--input`
 * (nor a list `source` in `--transform-from`) is given. `--data` and `--input` exclude each
 * other. `dataOption` names the option holding the paths (`data`; e.g. `eval-data` for a
 * second data set with the same transform).
 */
export async function dataSamples(
  args: ParsedArgs,
  net: Net,
  dataOption = "data",
): Promise<DataSamples | undefined> {
  const data = args.options.get(dataOption) ?? [];
  const inputs = inputSpecs(args);
  const samplesText = last(args, "samples");
  const limit = samplesText === undefined ? undefined : wholeNumberValue("samples", samplesText, 1);
  const labelsPath = last(args, "labels");
  const labels = labelsPath === undefined ? undefined : await labelsFile(labelsPath);
  const { transform, source, rootFolder } = await transformFromArgs(args);
  if (data.length > 0 && inputs.size > 0) {
    throw usage(dataOption, "and --input cannot both be given (it feeds the net's image input)");
  }
  if (inputs.size > 0) {
    return {
      open: () =>
        readSamples(net, inputSamples(net, inputs), {
          limit,
          labels,
          // The blob that inputSamples' tensor items feed (several blobs give whole samples).
          input: inputs.size === 1 ? [...inputs.keys()][0] : undefined,
        }),
      description: "--input",
    };
  }
  const paths = data.length > 0 ? data : source === undefined ? [] : [source];
  if (paths.length === 0) return undefined;
  const root = rootFolder === undefined ? undefined : resolve(rootFolder);
  return {
    open: () =>
      readSamples(net, sampleFiles(paths, { rootFolder: root }), { transform, limit, labels }),
    description: paths.map((path) => (path.endsWith("/") ? path : basename(path) || dirname(path)))
      .join(", "),
  };
}

/** The net inputs of each sample, read afresh on each call (calibrate()'s sample source). */
export function sampleInputs(data: DataSamples): () => AsyncIterable<Map<string, Tensor>> {
  return async function* () {
    for await (const sample of data.open()) yield sample.inputs;
  };
}

/**
 * Every sample of the data options as a list (for engine calls that take a list), or undefined
 * without data. `onSample` is told each sample's name as it is read. No samples is an error.
 */
export async function collectSamples(
  args: ParsedArgs,
  net: Net,
  onSample?: (name: string, count: number) => void,
): Promise<{ samples: DataSample[]; description: string } | undefined> {
  const given = await dataSamples(args, net);
  if (given === undefined) return undefined;
  const samples: DataSample[] = [];
  for await (const sample of given.open()) {
    samples.push(sample);
    onSample?.(sample.name, samples.length);
  }
  if (samples.length === 0) throw usage("data", "gives no samples");
  return { samples, description: given.description };
}
