/**
 * `caffe-quant quantize`: AMCT's post-training flow in one command: calibrate on `--data` →
 * record (written beside the outputs) → the five outputs → accuracy of the float, fake-quant and
 * deploy nets on evaluation data kept apart from the calibration data.
 *
 * @module
 */

import type { Net } from "../caffe/net.ts";
import type { DataSample } from "../data/samples.ts";
import { formatAccuracyTable } from "../engine/accuracy_table.ts";
import { compareNets } from "../engine/compare.ts";
import type { EvaluationSample } from "../engine/evaluate.ts";
import type { Tensor } from "../engine/run.ts";
import { compareReportHtml } from "../engine/report.ts";
import { ConvertError } from "../errors.ts";
import { refuseOutputPaths, writeAllOrNothing } from "../io/files.ts";
import { outputNames, recordName } from "../output_names.ts";
import { quantizeModel, type QuantizeModelResult } from "../io/quantize_model.ts";
import { loadNet } from "../caffe/model.ts";
import type { QuantizeProgress } from "../pipeline/quantize.ts";
import { parseArgs, type ParsedArgs } from "./args.ts";
import {
  CALIBRATION_FLAGS,
  CALIBRATION_OPTIONS,
  calibrationConfig,
  calibrationStatus,
  calibrationSummary,
} from "./calibration.ts";
import { type Command, integerOption, loadModelFiles, type Output, shownPath } from "./common.ts";
import { formatConvertReport } from "./convert.ts";
import { DATA_FLAGS, DATA_HELP, DATA_OPTIONS, DATA_USAGE, dataSamples } from "./data_options.ts";
import { durationText, statusLine } from "./progress.ts";
import { THREADS_HELP, THREADS_USAGE, threadsOption } from "./threads.ts";
import {
  AUTO_HELP,
  AUTO_OPTIONS,
  AUTO_USAGE,
  autoChoice,
  formatSearch,
  wantsAuto,
} from "./auto_calibration.ts";
import { basename, dirname, join, resolve } from "node:path";

/** `args` with options replaced (`undefined` removes one). */
function withOptions(args: ParsedArgs, changes: Record<string, string[] | undefined>): ParsedArgs {
  const options = new Map(args.options);
  for (const [name, values] of Object.entries(changes)) {
    if (values === undefined) options.delete(name);
    else options.set(name, values);
  }
  return { ...args, options };
}

/** The calibration samples and the evaluation samples of the options, and what was done. */
interface DataSplit {
  calibration: Map<string, Tensor>[];
  evaluation: AsyncIterable<EvaluationSample> | EvaluationSample[];
  evaluationCount?: number;
  /** Where the calibration samples come from. */
  calibrationSource: string;
  /** Both sets in words. */
  description: string;
}

/** The samples of a stream as evaluation samples, each also shown to `onEvaluated`. */
async function* evaluationSamples(
  samples: AsyncIterator<DataSample> | Iterator<DataSample>,
  onEvaluated: (sample: DataSample) => void,
): AsyncIterable<EvaluationSample> {
  for (let next = await samples.next(); !next.done; next = await samples.next()) {
    onEvaluated(next.value);
    yield { inputs: next.value.inputs, label: next.value.label };
  }
}

/**
 * The calibration samples (`--data`, first `--samples N`) and the evaluation samples: those of
 * `--eval-data`, or without it the samples of `--data` after the calibration ones (the first
 * half when `--samples` is not given), said on stderr.
 */
async function splitData(
  args: ParsedArgs,
  net: Net,
  io: Output,
  onEvaluated: (sample: DataSample) => void,
): Promise<DataSplit> {
  const evalData = args.options.get("eval-data");
  const limit = args.options.has("samples") ? integerOption(args, "samples", 0, 1) : undefined;
  const given = await dataSamples(withOptions(args, { samples: undefined }), net);
  if (given === undefined) {
    throw new ConvertError(
      "USAGE",
      "quantize needs calibration data: --data <dir|list.txt|file.npy> (or --input)",
    );
  }
  const stream = given.open()[Symbol.asyncIterator]();
  const calibration: Map<string, Tensor>[] = [];
  const reading = statusLine(io.err, io.isTerminal);
  if (evalData !== undefined) {
    const count = limit ?? Infinity;
    for (let next = await stream.next(); !next.done; next = await stream.next()) {
      calibration.push(next.value.inputs);
      reading.show(`reading calibration data: ${calibration.length} samples`);
      if (calibration.length >= count) break;
    }
    reading.done();
    const evaluation = await dataSamples(
      withOptions(args, { data: evalData, input: undefined, samples: undefined }),
      net,
    );
    return {
      calibration,
      calibrationSource: given.description,
      evaluation: evaluationSamples(evaluation!.open()[Symbol.asyncIterator](), onEvaluated),
      description: `calibration: ${calibration.length} samples of ${given.description}; ` +
        `evaluation: ${evaluation!.description}`,
    };
  }
  const all: DataSample[] = [];
  for (let next = await stream.next(); !next.done; next = await stream.next()) {
    all.push(next.value);
    reading.show(`reading data: ${all.length} samples`);
  }
  reading.done();
  const count = limit ?? Math.ceil(all.length / 2);
  if (all.length - count < 1) {
    throw new ConvertError(
      "USAGE",
      `--data gives ${all.length} samples: too few to keep evaluation samples apart from the ` +
        `${count} calibration samples: give --eval-data, or a smaller --samples`,
    );
  }
  io.err(
    `no --eval-data: calibrating on the first ${count} of the ${all.length} samples of ` +
      `${given.description} and evaluating on the other ${all.length - count}\n`,
  );
  const rest = all.slice(count);
  return {
    calibration: all.slice(0, count).map((sample) => sample.inputs),
    calibrationSource: given.description,
    evaluation: evaluationSamples(rest.values(), onEvaluated),
    evaluationCount: rest.length,
    description: `calibration: first ${count} samples of ${given.description}; ` +
      `evaluation: the other ${rest.length}`,
  };
}

/** A progress display of the three steps on standard error. */
function stepProgress(io: Output): { onProgress: (p: QuantizeProgress) => void; done: () => void } {
  const line = statusLine(io.err, io.isTerminal);
  let started = performance.now();
  let step = "";
  return {
    onProgress(progress) {
      if (progress.step !== step) {
        step = progress.step;
        started = performance.now();
      }
      if (progress.step === "calibrate") {
        line.show(calibrationStatus(progress.calibration));
      } else if (progress.step === "convert") {
        line.show(`converting: ${progress.stage}`);
      } else if (progress.step === "search") {
        const { search } = progress;
        line.show(
          search.step === "evaluate"
            ? `automatic calibration: evaluating with ${search.keptFloat} layer(s) in float`
            : `automatic calibration: ${
              search.step === "sensitivity" ? "layer sensitivity" : "converting"
            }`,
        );
      } else {
        const { samples, totalSamples } = progress;
        const seconds = (performance.now() - started) / 1000;
        const eta = totalSamples === undefined || samples === 0
          ? ""
          : `, about ${durationText(seconds / samples * (totalSamples - samples))} left`;
        line.show(
          `evaluating: ${samples}${totalSamples === undefined ? "" : `/${totalSamples}`} ` +
            `samples on the float, fake-quant and deploy nets${eta}`,
        );
      }
    },
    done: line.done,
  };
}

/** Evaluation samples the per-layer HTML page is measured on. */
const HTML_SAMPLES = 8;

/** The per-layer HTML page: float vs fake-quant on the first evaluation samples. */
async function writeHtml(
  path: string,
  args: ParsedArgs,
  float: Net,
  result: QuantizeModelResult,
  first: DataSample[],
  search?: string,
): Promise<string> {
  const fakeQuant = loadNet(result.files.fakeQuantModel, result.files.fakeQuantWeights);
  const report = await compareNets(float, fakeQuant, {
    inputs: first.map((sample) => sample.inputs),
  });
  const page = compareReportHtml(report, {
    a: `${args.positionals.model_file} (float), on the first ${first.length} evaluation samples`,
    b: shownPath(result.outputs.fakeQuantModel),
    sections: search === undefined ? [] : [{ heading: "Automatic calibration", text: search }],
  });
  const { paths } = await writeAllOrNothing(dirname(path), [
    { name: basename(path), content: page },
  ]);
  return paths[0];
}

/** Files the options name as inputs (data, lists, labels, mean files, configs). */
const INPUT_OPTIONS = [
  "data",
  "input",
  "eval-data",
  "labels",
  "mean-file",
  "transform-from",
  "config",
];

/**
 * Refuses, before anything is read or written, an `--html` page that would replace an input (the
 * model, the weights, a file an option names) or one of the six files quantize writes itself.
 */
async function refuseHtmlTarget(html: string, args: ParsedArgs): Promise<void> {
  const savePath = args.positionals.save_path!;
  const { dir, names } = outputNames(savePath);
  const own = [recordName(savePath), ...Object.values(names)].map((name) => join(dir, name));
  if (own.some((path) => resolve(path) === resolve(html))) {
    throw new ConvertError(
      "USAGE",
      `--html ${shownPath(html)} is one of the files quantize writes at ${shownPath(savePath)}`,
    );
  }
  const inputs = INPUT_OPTIONS.flatMap((option) =>
    (args.options.get(option) ?? []).map((value) =>
      option === "input" ? value.slice(value.indexOf("=") + 1) : value
    )
  );
  await refuseOutputPaths(
    [html],
    [args.positionals.model_file!, args.positionals.weights_file!, ...inputs],
  );
}

export const quantizeCommand: Command = {
  usage: `quantize <model_file> <weights_file> <save_path> ${DATA_USAGE} ` +
    "[--eval-data <dir|list.txt|file.npy>]... [--config F | --algo ifmr|hfmg|minmax|search] " +
    `[--no-offset] [--per-tensor] ${AUTO_USAGE} ${THREADS_USAGE} [--json] [--html <file>]`,
  help: "AMCT's post-training quantization in one command: calibrates the float net on --data\n" +
    "(the first --samples N; IFMR by default, as AMCT), writes <save_path>_record.txt and the\n" +
    "five outputs of convert (all or none), then runs the float, fake-quant and deploy nets on\n" +
    "the evaluation data (--eval-data; without it, the --data samples not used to calibrate,\n" +
    "the second half by default) and prints their accuracy: top-1 against labels (list files,\n" +
    "--labels), top-1 agreement with the float net, detectors' confident outputs kept, cosine\n" +
    "and relative L2 per output. --json prints all of it as JSON; --html writes the per-layer\n" +
    "comparison of the float and fake-quant nets on the first 8 evaluation samples.\n" +
    "More: docs/calibration.md.\n" + AUTO_HELP + THREADS_HELP + DATA_HELP,
  async run(argv, io) {
    const args = parseArgs(argv, {
      positionals: ["model_file", "weights_file", "save_path"],
      flags: ["json", ...DATA_FLAGS, ...CALIBRATION_FLAGS],
      options: [
        ...DATA_OPTIONS,
        "eval-data",
        "html",
        "threads",
        ...CALIBRATION_OPTIONS,
        ...AUTO_OPTIONS,
      ],
    }, this.usage);
    const threads = threadsOption(args);
    const modelFile = args.positionals.model_file!;
    const weightsFile = args.positionals.weights_file!;
    const html = args.options.get("html")?.at(-1);
    if (html !== undefined) await refuseHtmlTarget(html, args);
    const net = await loadModelFiles(modelFile, weightsFile);
    const config = await calibrationConfig(args, net);
    const first: DataSample[] = [];
    const data = await splitData(args, net, io, (sample) => {
      if (first.length < HTML_SAMPLES) first.push(sample);
    });
    const auto = wantsAuto(args)
      ? await (async () => {
        const samples: EvaluationSample[] = [];
        for await (const sample of data.evaluation) samples.push(sample);
        data.evaluation = samples;
        return await autoChoice(args, net, samples);
      })()
      : undefined;
    const progress = stepProgress(io);
    let result: QuantizeModelResult;
    try {
      result = await quantizeModel({
        modelFile,
        weightsFile,
        savePath: args.positionals.save_path!,
        calibration: data.calibration,
        evaluation: data.evaluation,
        evaluationCount: data.evaluationCount,
        config,
        auto,
        threads,
        onProgress: progress.onProgress,
      });
    } finally {
      progress.done();
    }
    const htmlPath = html !== undefined && first.length > 0
      ? await writeHtml(
        html,
        args,
        net,
        result,
        first,
        result.auto && formatSearch(result.auto, auto!.metric),
      )
      : undefined;
    for (const warning of result.report.warnings) io.err(`warning: ${warning}\n`);
    if (args.flags.has("json")) {
      const { calibration, report, accuracy, outputs, recordFile } = result;
      const search = result.auto &&
        {
          ...result.auto,
          metric: auto!.metric,
          files: undefined,
          calibration: undefined,
          report: undefined,
          record: undefined,
        };
      io.out(
        JSON.stringify(
          {
            data: data.description,
            calibration: { ...calibration, record: undefined },
            conversion: report,
            accuracy,
            automaticCalibration: search,
            recordFile,
            outputs,
            html: htmlPath,
          },
          null,
          2,
        ) + "\n",
      );
      return;
    }
    io.out(calibrationSummary(net, result.calibration, data.calibrationSource));
    io.out(`wrote      ${shownPath(result.recordFile)}\n`);
    io.out(formatConvertReport({ ...result.report, outputs: result.outputs }));
    if (result.auto !== undefined) io.out(formatSearch(result.auto, auto!.metric));
    if (result.accuracy !== undefined) io.out(formatAccuracyTable(result.accuracy));
    if (htmlPath !== undefined) io.err(`wrote ${shownPath(htmlPath)}\n`);
  },
};
