/**
 * The commands of the command line: each parses its arguments, calls the library, and prints a
 * human summary or, with `--json`, the machine form.
 *
 * @module
 */

import { basename, dirname, isAbsolute, relative } from "node:path";
import { formatNetSummary, inspectNet } from "../caffe/inspect.ts";
import { loadNet } from "../caffe/model.ts";
import { type Net, netOutputs } from "../caffe/net.ts";
import { readPrototxt } from "../caffe/prototxt.ts";
import { observeActivationRanges } from "../engine/calibrate.ts";
import { compareNets, compareReportHtml, formatCompareTable } from "../engine/compare.ts";
import { runNet, type Tensor } from "../engine/run.ts";
import { ConvertError } from "../errors.ts";
import { convertModel, type ConvertModelReport } from "../io/convert_model.ts";
import { readInput, readInputText, writeAllOrNothing } from "../io/files.ts";
import { npyFileName, readNpy, writeNpy } from "../io/npy.ts";
import { makeRecord } from "../quant/make_record.ts";
import { parseArgs, type ParsedArgs } from "./args.ts";
import { progressBar } from "./progress.ts";

/** Where a command writes. */
export interface Output {
  /** Standard output. */
  out(text: string): void;
  /** Standard error. */
  err(text: string): void;
  /** True when standard error is a terminal (progress bars are drawn there). */
  isTerminal: boolean;
}

/** A command: its usage line, its help text and what it does. */
export interface Command {
  /** `name <args> [options]`. */
  usage: string;
  /** What the command does, for `--help`. */
  help: string;
  /** Runs with the words after the command name. */
  run(argv: string[], io: Output): Promise<void>;
}

/** `path` relative to the working directory when it lies below it, else as it is. */
function shownPath(path: string): string {
  const below = relative(".", path);
  return below.startsWith("..") || isAbsolute(below) ? path : below;
}

/** Reads a prototxt, then a caffemodel (so a missing model is reported first), and loads both. */
async function loadModelFiles(modelFile: string, weightsFile: string): Promise<Net> {
  const modelText = await readInputText(modelFile);
  const weights = await readInput(weightsFile);
  return loadNet(modelText, weights, { model: modelFile, weights: weightsFile });
}

/** The tensors of `--input <blob>=<file.npy>` options. */
async function inputTensors(args: ParsedArgs): Promise<Map<string, Tensor> | undefined> {
  const specs = args.options.get("input");
  if (specs === undefined) return undefined;
  const inputs = new Map<string, Tensor>();
  for (const spec of specs) {
    const equals = spec.indexOf("=");
    if (equals < 1) {
      throw new ConvertError("USAGE", `--input needs <blob>=<file.npy>, not "${spec}"`);
    }
    const file = spec.slice(equals + 1);
    inputs.set(spec.slice(0, equals), readNpy(await readInput(file), file));
  }
  return inputs;
}

/** A whole-number option (the last one given), or `fallback`. */
function integerOption(args: ParsedArgs, name: string, fallback: number): number {
  const text = args.options.get(name)?.at(-1);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ConvertError("USAGE", `--${name} needs a whole number >= 0, not "${text}"`);
  }
  return value;
}

/** A number option (the last one given), or undefined. */
function numberOption(args: ParsedArgs, name: string): number | undefined {
  const text = args.options.get(name)?.at(-1);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value)) {
    throw new ConvertError("USAGE", `--${name} needs a number, not "${text}"`);
  }
  return value;
}

const inspect: Command = {
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

const convert: Command = {
  usage: "convert <model_file> <weights_file> <record_file> <save_path> [--compare] " +
    "[--samples N] [--json]",
  help: "Fuses Conv+BatchNorm+Scale, quantizes the layers the record file names, and writes\n" +
    "<save_path>_fake_quant_model.prototxt, _fake_quant_weights.caffemodel,\n" +
    "_deploy_model.prototxt, _deploy_weights.caffemodel and _quant.json (all or none).\n" +
    "--compare then runs the float, fake-quant and deploy nets on N seeded inputs (default 4)\n" +
    "and prints how far each output moved.",
  async run(argv, io) {
    const args = parseArgs(argv, {
      positionals: ["model_file", "weights_file", "record_file", "save_path"],
      flags: ["json", "compare"],
      options: ["samples"],
    }, this.usage);
    const progress = io.isTerminal && !args.flags.has("json") ? progressBar(io.err) : undefined;
    let report: ConvertModelReport;
    try {
      report = await convertModel({
        modelFile: args.positionals.model_file!,
        weightsFile: args.positionals.weights_file!,
        recordFile: args.positionals.record_file!,
        savePath: args.positionals.save_path!,
        onProgress: progress?.update,
      });
    } finally {
      progress?.done();
    }
    for (const warning of report.warnings) io.err(`warning: ${warning}\n`);
    const accuracy = args.flags.has("compare")
      ? await conversionAccuracy(
        args.positionals.model_file!,
        args.positionals.weights_file!,
        report,
        integerOption(args, "samples", 4),
      )
      : undefined;
    if (args.flags.has("json")) {
      io.out(JSON.stringify(accuracy ? { ...report, accuracy } : report, null, 2) + "\n");
      return;
    }
    io.out(formatConvertReport(report));
    if (accuracy) io.out(formatAccuracy(accuracy));
  },
};

/** How far one net output moved through quantization. */
export interface OutputAccuracy {
  /** The output blob. */
  blob: string;
  /** Cosine similarity of the float and fake-quant outputs. */
  cosineFake: number;
  /** Cosine similarity of the float and deploy outputs. */
  cosineDeploy: number;
  /** For classifier outputs, the float and fake-quant top-1 agreement. */
  top1Agreement?: number;
}

/** What `convert --compare` measured. */
export interface ConversionAccuracy {
  /** Seeded inputs run. */
  samples: number;
  /** Each net output, float against fake-quant and deploy (free-running). */
  outputs: OutputAccuracy[];
  /**
   * Fake-quant against deploy layer by layer, in lockstep (each deploy layer reads what the
   * fake-quant layer read): the blob where they differ most and its relative L2 error. The two
   * models should say the same thing, up to float rounding.
   */
  deployVsFake: { blob: string; relativeL2: number };
}

/** Runs the float, fake-quant and deploy nets on seeded inputs and compares them. */
async function conversionAccuracy(
  modelFile: string,
  weightsFile: string,
  report: ConvertModelReport,
  samples: number,
): Promise<ConversionAccuracy> {
  const [float, fake, deploy] = await Promise.all([
    loadModelFiles(modelFile, weightsFile),
    loadModelFiles(report.outputs.fakeQuantModel, report.outputs.fakeQuantWeights),
    loadModelFiles(report.outputs.deployModel, report.outputs.deployWeights),
  ]);
  const options = { samples: Math.max(1, samples), seed: 0 };
  const floatVsFake = await compareNets(float, fake, options);
  const floatVsDeploy = await compareNets(float, deploy, options);
  const fakeVsDeploy = await compareNets(fake, deploy, { ...options, lockstep: true });
  const outputs = netOutputs(float).flatMap((blob) => {
    const fakeRow = floatVsFake.rows.find((entry) => entry.blob === blob);
    if (fakeRow === undefined) return [];
    const deployRow = floatVsDeploy.rows.find((entry) => entry.blob === blob);
    return [{
      blob,
      cosineFake: fakeRow.cosine,
      cosineDeploy: deployRow?.cosine ?? NaN,
      ...(fakeRow.top1Agreement === undefined ? {} : { top1Agreement: fakeRow.top1Agreement }),
    }];
  });
  const worst = fakeVsDeploy.rows
    .filter((row) => row.note === undefined)
    .reduce((a, b) => (b.relativeL2 > a.relativeL2 ? b : a), { blob: "", relativeL2: 0 });
  return {
    samples: options.samples,
    outputs,
    deployVsFake: { blob: worst.blob, relativeL2: worst.relativeL2 },
  };
}

/** The accuracy figures as a few lines. */
function formatAccuracy(accuracy: ConversionAccuracy): string {
  const width = Math.max(6, ...accuracy.outputs.map((row) => row.blob.length));
  const lines = [
    `accuracy on ${accuracy.samples} seeded input(s), cosine similarity to the float net:`,
    `  ${"output".padEnd(width)}  fake-quant  deploy    top-1`,
  ];
  for (const row of accuracy.outputs) {
    const top1 = row.top1Agreement === undefined ? "" : `${(100 * row.top1Agreement).toFixed(1)}%`;
    lines.push(
      `  ${row.blob.padEnd(width)}  ${row.cosineFake.toFixed(6)}    ${
        row.cosineDeploy.toFixed(6)
      }  ${top1}`.trimEnd(),
    );
  }
  const { blob, relativeL2 } = accuracy.deployVsFake;
  lines.push(
    `fake-quant vs deploy, layer by layer (lockstep): worst relative L2 ` +
      `${relativeL2.toExponential(1)}${blob ? ` at ${blob}` : ""}`,
  );
  return lines.join("\n") + "\n";
}

const record: Command = {
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
    const net = await loadModelFiles(args.positionals.model_file!, args.positionals.weights_file!);
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

const run: Command = {
  usage: "run <model_file> <weights_file> [--input <blob>=<file.npy>]... [--seed N] " +
    "--out <dir> [--json]",
  help: "Runs the net (float, fake-quant or deploy) in the simulator on .npy inputs, or on\n" +
    "seeded uniform [-1, 1) inputs of the declared shapes, and writes every net output as\n" +
    "<dir>/output.<blob>.npy (float32, C order). Layers it cannot run are listed.",
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
    const result = await runNet(net, {
      inputs: await inputTensors(args),
      seed: integerOption(args, "seed", 0),
    });
    const outputs = [...result.outputs].map(([blob, tensor]) => ({ blob, tensor }));
    const { paths } = await writeAllOrNothing(
      out,
      outputs.map(({ blob, tensor }) => ({ name: npyFileName(blob), content: writeNpy(tensor) })),
      [modelFile, weightsFile],
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
      io.out(`${blob} [${shape.join("x")}] -> ${shownPath(file)}\n`);
    }
    for (const { layer, type, reason } of result.skipped) {
      io.out(`skipped ${layer} (${type}): ${reason}\n`);
    }
  },
};

const compare: Command = {
  usage: "compare <model_a> <weights_a> <model_b> <weights_b> [--input <blob>=<file.npy>]... " +
    "[--samples N] [--seed N] [--lockstep] [--json] [--html <file>]",
  help: "Runs both nets on the same inputs and reports, for every blob they share, cosine\n" +
    "similarity, max absolute error, relative L2 error and, for classifiers, top-1 agreement,\n" +
    "in layer order with the worst blobs flagged. A float net and its fake-quant or deploy net\n" +
    "line up, since DeQuant layers restore the original blob names. --lockstep feeds each layer\n" +
    "of B what the same layer of A read, so each row shows the error the layer adds itself.\n" +
    "--html writes a self-contained report page.",
  async run(argv, io) {
    const args = parseArgs(argv, {
      positionals: ["model_a", "weights_a", "model_b", "weights_b"],
      flags: ["json", "lockstep"],
      options: ["input", "samples", "seed", "html"],
    }, this.usage);
    const { model_a, weights_a, model_b, weights_b } = args.positionals;
    const [netA, netB] = await Promise.all([
      loadModelFiles(model_a!, weights_a!),
      loadModelFiles(model_b!, weights_b!),
    ]);
    const report = await compareNets(netA, netB, {
      inputs: await inputTensors(args),
      samples: integerOption(args, "samples", 1),
      seed: integerOption(args, "seed", 0),
      lockstep: args.flags.has("lockstep"),
    });
    const html = args.options.get("html")?.at(-1);
    if (html !== undefined) {
      await writeAllOrNothing(
        dirname(html),
        [{ name: basename(html), content: compareReportHtml(report) }],
        [model_a!, weights_a!, model_b!, weights_b!],
      );
    }
    io.out(
      args.flags.has("json") ? JSON.stringify(report, null, 2) + "\n" : formatCompareTable(report),
    );
  },
};

/** The human summary of a conversion. */
function formatConvertReport(report: ConvertModelReport): string {
  const lines: string[] = [];
  for (const { layer, batchNorm, scale } of report.fusedComposites) {
    lines.push(`fused      ${layer} + ${batchNorm} + ${scale}`);
  }
  lines.push(
    `quantized  ${report.quantizedLayers.length} layers: ${report.quantizedLayers.join(", ")}`,
  );
  for (const { name, consumers } of report.sharedQuantLayers) {
    lines.push(`shared     ${name} feeds ${consumers.join(", ")}`);
  }
  for (const path of Object.values(report.outputs)) lines.push(`wrote      ${shownPath(path)}`);
  const total = Object.values(report.timings).reduce((a, b) => a + b, 0);
  lines.push(`done in ${total.toFixed(0)} ms`);
  return lines.join("\n") + "\n";
}

/** Every command by name. */
export const COMMANDS: Record<string, Command> = { inspect, convert, record, run, compare };
