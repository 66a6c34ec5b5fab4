/**
 * Wall time of the automatic calibration (`autoCalibrate`, SPEC §12) beside a reference run of
 * the plain flow (`quantize`: calibrate every layer, convert, evaluate once) on the same data:
 *
 * ```sh
 * npx deno run -A scripts/bench_autocal.ts [ultraface|resnet50|all] [--max-drop P] [--metric cosine|agreement] [--logits] [--reuse-first]
 * ```
 *
 * - `ultraface`: ultraface_rfb320 (../shared/models) on 64 photos (the 12 dlib face photos, then
 *   dlib's video frames), calibrated on the first 32 and evaluated on the other 32, metric cosine.
 * - `resnet50`: scripts/make_model.ts's ResNet-50 (in bench-out/resnet50; made if missing) on 32
 *   photos (skimage's colour photos, dlib's face photos, then video frames) resized to 224×224,
 *   calibrated on the first 16 and evaluated on the other 16, metric agreement.
 *
 * `--reuse-first` runs the reusing search first (to see the order's effect). `--logits` drops a
 * final Softmax layer (so `--metric cosine` compares logits: the seeded
 * ResNet-50's softmax outputs are the same all quantized, and no search would run).
 *
 * Each case runs `autoCalibrate` twice: every net run whole (`ReusingRunner({ memoryBudget: 0 })`,
 * what the evaluators did before they reused shared layers), then with the built-in evaluators'
 * default runner, and says whether both searches gave the same steps and scores.
 *
 * Both need the Debian packages libdlib19.1 and python3-skimage (see README, Data).
 *
 * @module
 */

import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { cpuUsage } from "node:process";
import { loadNet } from "../src/caffe/model.ts";
import { printPrototxt } from "../src/caffe/prototxt.ts";
import type { EvaluationSample } from "../src/engine/evaluate.ts";
import { readSamples } from "../src/data/samples.ts";
import type { Transform } from "../src/data/transform.ts";
import {
  agreementEvaluator,
  autoCalibrate,
  cosineEvaluator,
  type Evaluator,
} from "../src/pipeline/auto_calibrate.ts";
import { ReusingRunner } from "../src/engine/reuse.ts";
import { quantize } from "../src/pipeline/quantize.ts";

const FACES = "/usr/share/doc/libdlib19.1/examples/faces";
const FRAMES = "/usr/share/doc/libdlib19.1/examples/video_frames";
const SKIMAGE = "/usr/lib/python3/dist-packages/skimage/data";

/** The image files of `dir` (sorted), or those named. */
async function images(dir: string, names?: string[]): Promise<string[]> {
  const all = names ?? (await readdir(dir)).filter((name) => /\.(jpe?g|png)$/i.test(name)).sort();
  return all.map((name) => join(dir, name));
}

/** A case: model files, photo paths, transform, split, metric. */
interface Case {
  name: string;
  model: string;
  weights: string;
  photos: string[];
  transform: Transform;
  calibrate: number;
  metric: "cosine" | "agreement";
}

async function cases(which: string): Promise<Case[]> {
  const list: Case[] = [];
  if (which === "ultraface" || which === "all") {
    const dir = "../shared/models/ultraface_rfb320";
    const photos = [...await images(FACES), ...await images(FRAMES)].slice(0, 64);
    list.push({
      name: "ultraface_rfb320, 64 photos (32 calibrate + 32 evaluate)",
      model: join(dir, "deploy.prototxt"),
      weights: join(dir, "weights.caffemodel"),
      photos,
      transform: { resize: { height: 240, width: 320 }, rgb: true, mean: [127], scale: 1 / 128 },
      calibrate: 32,
      metric: "cosine",
    });
  }
  if (which === "resnet50" || which === "all") {
    const dir = "bench-out/resnet50";
    if (!(await stat(join(dir, "weights.caffemodel")).catch(() => undefined))) {
      const made = new Deno.Command("npx", {
        args: ["deno", "run", "-A", "scripts/make_model.ts", "resnet50"],
      }).spawn();
      if (!(await made.status).success) throw new Error("make_model.ts resnet50 failed");
    }
    const colour = ["astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png"];
    const photos = [
      ...await images(SKIMAGE, colour),
      ...await images(FACES),
      ...await images(FRAMES),
    ].slice(0, 32);
    list.push({
      name: "ResNet-50 (make_model.ts), 32 photos (16 calibrate + 16 evaluate)",
      model: join(dir, "deploy.prototxt"),
      weights: join(dir, "weights.caffemodel"),
      photos,
      transform: { resize: { height: 224, width: 224 }, mean: [104, 117, 123] },
      calibrate: 16,
      metric: "agreement",
    });
  }
  return list;
}

/** User + system CPU time of this process since `start` (other processes' load does not count). */
function cpuSeconds(start: ReturnType<typeof cpuUsage>): string {
  const { user, system } = cpuUsage(start);
  return `${((user + system) / 1e6).toFixed(1)} s`;
}

function seconds(started: number): string {
  return `${((performance.now() - started) / 1000).toFixed(1)} s`;
}

async function main(): Promise<void> {
  const which =
    Deno.args.find((arg, i) => !arg.startsWith("--") && !Deno.args[i - 1]?.startsWith("--")) ??
      "all";
  const dropAt = Deno.args.indexOf("--max-drop");
  const maxDrop = dropAt >= 0 ? Number(Deno.args[dropAt + 1]) : 0.001;
  const metricAt = Deno.args.indexOf("--metric");
  for (const entry of await cases(which)) {
    if (metricAt >= 0) entry.metric = Deno.args[metricAt + 1] === "cosine" ? "cosine" : "agreement";
    let model = await readFile(entry.model, "utf8");
    const weights = await readFile(entry.weights);
    if (Deno.args.includes("--logits")) {
      const net = loadNet(model, weights);
      if (net.layers.at(-1)?.type === "Softmax") net.layers.pop();
      model = printPrototxt(net);
    }
    const float = loadNet(model, weights);
    const items = await Promise.all(
      entry.photos.map(async (path) => ({ name: path, bytes: await readFile(path) })),
    );
    const samples: EvaluationSample[] = [];
    for await (const sample of readSamples(float, items, { transform: entry.transform })) {
      samples.push({ inputs: sample.inputs });
    }
    const calibration = samples.slice(0, entry.calibrate).map((sample) => sample.inputs);
    const evaluation = samples.slice(entry.calibrate);
    const logits = Deno.args.includes("--logits") ? " (final Softmax dropped)" : "";
    console.log(`${entry.name}${logits}, max drop ${maxDrop}, metric ${entry.metric}`);

    let started = performance.now();
    await quantize({ model, weights, calibration, evaluation });
    console.log(
      `  reference, quantize (calibrate, convert, evaluate 3 nets once): ${seconds(started)}`,
    );

    const runs: { label: string; steps: string }[] = [];
    const order = Deno.args.includes("--reuse-first") ? [true, false] : [false, true];
    for (const reuse of order) {
      const runner = new ReusingRunner(reuse ? {} : { memoryBudget: 0 });
      started = performance.now();
      const cpuStart = cpuUsage();
      let evaluations = 0;
      const inner: Evaluator = entry.metric === "cosine"
        ? await cosineEvaluator(float, evaluation, { runner })
        : await agreementEvaluator(float, evaluation, { runner });
      const floatOutputs = seconds(started);
      const evaluate: Evaluator = (net) => {
        evaluations++;
        return inner(net);
      };
      const marks: string[] = [];
      const result = await autoCalibrate({
        model,
        weights,
        calibration,
        evaluate,
        maxDrop,
        onProgress: (progress) => {
          if (progress.step === "calibrate") return;
          marks.push(
            `${progress.step}${"keptFloat" in progress ? ` k=${progress.keptFloat}` : ""}` +
              ` from ${seconds(started)}`,
          );
        },
      });
      const { layersRun, layersInNets } = runner.counts;
      const label = reuse ? "reusing shared layers" : "whole runs (memoryBudget 0)";
      console.log(
        `  autoCalibrate, ${label}: ${seconds(started)} in all, CPU ${cpuSeconds(cpuStart)} ` +
          `(float outputs once: ` +
          `${floatOutputs}; ${evaluations} evaluations; layers run ${layersRun} of ` +
          `${layersInNets}; ${result.keptFloat.length} of ${result.calibration.layers.length} ` +
          `layers kept float; met: ${result.met}; float ${result.floatScore.toFixed(6)}, all ` +
          `quantized ${result.quantizedScore.toFixed(6)}, final ${result.finalScore.toFixed(6)})`,
      );
      console.log(`    steps (started at): ${marks.join("; ")}`);
      runs.push({ label, steps: JSON.stringify(result.steps) });
    }
    console.log(
      `  same steps and scores (bit for bit) both ways: ${runs[0].steps === runs[1].steps}`,
    );
  }
}

await main();
