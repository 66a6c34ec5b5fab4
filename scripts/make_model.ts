/**
 * Writes full-size benchmark models with realistic weight statistics, deterministically from a
 * seed, plus a record file made from their weights (SPEC §9, `makeRecord`):
 *
 * ```sh
 * npx deno run -A scripts/make_model.ts <resnet50|vgg16|all> [out_dir] [--seed N] [--bn-factor F] \
 *   [--check]
 * ```
 *
 * - `resnet50`: the topology of KaimingHe's `ResNet-50-deploy.prototxt` (Convolution + BatchNorm
 *   + Scale, in-place ReLU, Eltwise, AVE pool5, fc1000; 25.6 M parameters, ~98 MB caffemodel).
 * - `vgg16`: VGG_ILSVRC_16_layers (13 convolutions, fc6 25088x4096, fc7, fc8; 138 M parameters,
 *   ~553 MB caffemodel).
 *
 * Each goes to `<out_dir>/<name>/` (default `bench-out/`, which git ignores) as
 * `deploy.prototxt`, `weights.caffemodel` and `record.txt`. Weights are He-initialised
 * (normal, std sqrt(2 / fan_in)), biases small, BatchNorm statistics spread like a trained net's
 * and stored multiplied by the moving-average factor blob (`--bn-factor`, default 1; Caffe-trained
 * nets often hold 999.98). `--check` decodes the written caffemodel again with protobufjs against
 * `proto/caffe.proto`, an independent reader, and compares every layer name, shape and value.
 *
 * @module
 */

import protobuf from "npm:protobufjs@8.0.0";
import { writeCaffemodel } from "../src/caffe/caffemodel_write.ts";
import { loadNet } from "../src/caffe/model.ts";
import type { Blob, Layer } from "../src/caffe/net.ts";
import { readPrototxt } from "../src/caffe/prototxt.ts";
import { makeRecord } from "../src/quant/make_record.ts";
import { mulberry32 } from "../src/random.ts";

const USAGE = "npx deno run -A scripts/make_model.ts <resnet50|vgg16|all> [out_dir] " +
  "[--seed N] [--bn-factor F] [--check]";

/** Seeded normal deviates: mulberry32 uniforms through the Box-Muller transform. */
class NormalSource {
  readonly #next: () => number;
  #spare = NaN;

  /** A source whose sequence depends on `seed` only. */
  constructor(seed: number) {
    this.#next = mulberry32(seed);
  }

  /** A uniform number in (0, 1). */
  uniform(): number {
    return (this.#next() + 0.5) / 4294967296;
  }

  /** A standard normal deviate. */
  normal(): number {
    if (!Number.isNaN(this.#spare)) {
      const spare = this.#spare;
      this.#spare = NaN;
      return spare;
    }
    const radius = Math.sqrt(-2 * Math.log(this.uniform()));
    const angle = 2 * Math.PI * this.uniform();
    this.#spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }

  /** `count` float32 values `mean + std * normal()`. */
  normals(count: number, mean: number, std: number): Float32Array {
    const values = new Float32Array(count);
    for (let index = 0; index < count; index++) values[index] = mean + std * this.normal();
    return values;
  }
}

/** One layer of a generated net: its prototxt text and how to make its blobs. */
interface LayerSpec {
  /** The `layer { … }` block. */
  text: string;
  /** The layer's name. */
  name: string;
  /** Makes the layer's blobs (none for layers without parameters). */
  blobs?: (random: NormalSource) => Blob[];
}

/** A generated net: its name, input shape and layers. */
interface NetSpec {
  name: string;
  input: number[];
  layers: LayerSpec[];
}

/** The `layer { … }` text of a layer, with an optional parameter message body. */
function layerText(
  name: string,
  type: string,
  bottoms: string[],
  tops: string[],
  param?: [message: string, body: string[]],
): string {
  const lines = [`layer {`, `  name: "${name}"`, `  type: "${type}"`];
  for (const bottom of bottoms) lines.push(`  bottom: "${bottom}"`);
  for (const top of tops) lines.push(`  top: "${top}"`);
  if (param !== undefined) {
    lines.push(`  ${param[0]} {`, ...param[1].map((line) => `    ${line}`), `  }`);
  }
  lines.push(`}`);
  return lines.join("\n");
}

/** He-initialised weights of shape `shape` (fan-in: every axis but the first). */
function heWeights(random: NormalSource, shape: number[]): Blob {
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  const count = shape[0] * fanIn;
  return { shape, data: random.normals(count, 0, Math.sqrt(2 / fanIn)) };
}

/** A small bias of `channels` values. */
function smallBias(random: NormalSource, channels: number): Blob {
  return { shape: [channels], data: random.normals(channels, 0, 0.02) };
}

/** A Convolution layer: He weights, and a small bias when `bias` is set. */
function convolution(
  name: string,
  bottom: string,
  top: string,
  shape: { inputs: number; outputs: number; kernel: number; stride: number; pad: number },
  bias: boolean,
): LayerSpec {
  const body = [
    `num_output: ${shape.outputs}`,
    `kernel_size: ${shape.kernel}`,
    `pad: ${shape.pad}`,
    `stride: ${shape.stride}`,
  ];
  if (!bias) body.push("bias_term: false");
  return {
    name,
    text: layerText(name, "Convolution", [bottom], [top], ["convolution_param", body]),
    blobs: (random) => {
      const weights = heWeights(random, [shape.outputs, shape.inputs, shape.kernel, shape.kernel]);
      return bias ? [weights, smallBias(random, shape.outputs)] : [weights];
    },
  };
}

/** An InnerProduct layer with He weights `[outputs, inputs]` and a small bias. */
function innerProduct(
  name: string,
  bottom: string,
  top: string,
  inputs: number,
  outputs: number,
): LayerSpec {
  return {
    name,
    text: layerText(name, "InnerProduct", [bottom], [top], [
      "inner_product_param",
      [`num_output: ${outputs}`],
    ]),
    blobs: (random) => [heWeights(random, [outputs, inputs]), smallBias(random, outputs)],
  };
}

/**
 * In-place BatchNorm + Scale on `blob`, as trained: running means spread around 0, variances
 * log-normal, both stored times `factor`; gammas around 1 with one channel in 64 nearly dead,
 * betas around 0.
 */
function batchNormScale(
  bnName: string,
  scaleName: string,
  blob: string,
  channels: number,
  factor: number,
): LayerSpec[] {
  const batchNorm: LayerSpec = {
    name: bnName,
    text: layerText(bnName, "BatchNorm", [blob], [blob], [
      "batch_norm_param",
      ["use_global_stats: true"],
    ]),
    blobs: (random) => {
      const mean = random.normals(channels, 0, 0.4);
      const variance = new Float32Array(channels);
      for (let c = 0; c < channels; c++) {
        mean[c] *= factor;
        variance[c] = Math.exp(-1 + 0.8 * random.normal()) * factor;
      }
      return [
        { shape: [channels], data: mean },
        { shape: [channels], data: variance },
        { shape: [1], data: Float32Array.of(factor) },
      ];
    },
  };
  const scale: LayerSpec = {
    name: scaleName,
    text: layerText(scaleName, "Scale", [blob], [blob], ["scale_param", ["bias_term: true"]]),
    blobs: (random) => {
      const gamma = random.normals(channels, 0.9, 0.3);
      for (let c = 0; c < channels; c += 64) gamma[c] = 1e-4 * random.normal();
      return [{ shape: [channels], data: gamma }, {
        shape: [channels],
        data: random.normals(channels, 0, 0.2),
      }];
    },
  };
  return [batchNorm, scale];
}

/** An in-place ReLU. */
function relu(name: string, blob: string): LayerSpec {
  return { name, text: layerText(name, "ReLU", [blob], [blob]) };
}

/** A Pooling layer. */
function pooling(
  name: string,
  bottom: string,
  top: string,
  method: "MAX" | "AVE",
  kernel: number,
  stride: number,
): LayerSpec {
  return {
    name,
    text: layerText(name, "Pooling", [bottom], [top], [
      "pooling_param",
      [`kernel_size: ${kernel}`, `stride: ${stride}`, `pool: ${method}`],
    ]),
  };
}

/** ResNet-50 as in KaimingHe's ResNet-50-deploy.prototxt. */
function resnet50(factor: number): NetSpec {
  const layers: LayerSpec[] = [];
  /** Convolution (no bias) + BatchNorm + Scale named after `suffix`, ReLU when asked. */
  const convBn = (
    suffix: string,
    bottom: string,
    shape: { inputs: number; outputs: number; kernel: number; stride: number; pad: number },
    withRelu: boolean,
  ): string => {
    const top = `res${suffix}`;
    layers.push(convolution(top, bottom, top, shape, false));
    layers.push(...batchNormScale(`bn${suffix}`, `scale${suffix}`, top, shape.outputs, factor));
    if (withRelu) layers.push(relu(`${top}_relu`, top));
    return top;
  };
  layers.push(
    convolution("conv1", "data", "conv1", {
      inputs: 3,
      outputs: 64,
      kernel: 7,
      stride: 2,
      pad: 3,
    }, true),
    ...batchNormScale("bn_conv1", "scale_conv1", "conv1", 64, factor),
    relu("conv1_relu", "conv1"),
    pooling("pool1", "conv1", "pool1", "MAX", 3, 2),
  );
  const stages: [stage: number, blocks: number, width: number][] = [
    [2, 3, 64],
    [3, 4, 128],
    [4, 6, 256],
    [5, 3, 512],
  ];
  let input = "pool1";
  let channels = 64;
  for (const [stage, blocks, width] of stages) {
    for (let block = 0; block < blocks; block++) {
      const id = `${stage}${String.fromCharCode(97 + block)}`;
      const stride = block === 0 && stage > 2 ? 2 : 1;
      const outputs = width * 4;
      const shortcut = block === 0
        ? convBn(
          `${id}_branch1`,
          input,
          { inputs: channels, outputs, kernel: 1, stride, pad: 0 },
          false,
        )
        : input;
      let branch = convBn(`${id}_branch2a`, input, {
        inputs: channels,
        outputs: width,
        kernel: 1,
        stride,
        pad: 0,
      }, true);
      branch = convBn(`${id}_branch2b`, branch, {
        inputs: width,
        outputs: width,
        kernel: 3,
        stride: 1,
        pad: 1,
      }, true);
      branch = convBn(`${id}_branch2c`, branch, {
        inputs: width,
        outputs,
        kernel: 1,
        stride: 1,
        pad: 0,
      }, false);
      const sum = `res${id}`;
      layers.push({ name: sum, text: layerText(sum, "Eltwise", [shortcut, branch], [sum]) });
      layers.push(relu(`${sum}_relu`, sum));
      input = sum;
      channels = outputs;
    }
  }
  layers.push(
    pooling("pool5", input, "pool5", "AVE", 7, 1),
    innerProduct("fc1000", "pool5", "fc1000", 2048, 1000),
    { name: "prob", text: layerText("prob", "Softmax", ["fc1000"], ["prob"]) },
  );
  return { name: "ResNet-50", input: [1, 3, 224, 224], layers };
}

/** VGG_ILSVRC_16_layers (deploy). */
function vgg16(): NetSpec {
  const layers: LayerSpec[] = [];
  const blocks: [block: number, convs: number, width: number][] = [
    [1, 2, 64],
    [2, 2, 128],
    [3, 3, 256],
    [4, 3, 512],
    [5, 3, 512],
  ];
  let input = "data";
  let channels = 3;
  for (const [block, convs, width] of blocks) {
    for (let conv = 1; conv <= convs; conv++) {
      const name = `conv${block}_${conv}`;
      layers.push(
        convolution(name, input, name, {
          inputs: channels,
          outputs: width,
          kernel: 3,
          stride: 1,
          pad: 1,
        }, true),
        relu(`relu${block}_${conv}`, name),
      );
      input = name;
      channels = width;
    }
    layers.push(pooling(`pool${block}`, input, `pool${block}`, "MAX", 2, 2));
    input = `pool${block}`;
  }
  const dropout = (name: string, blob: string): LayerSpec => ({
    name,
    text: layerText(name, "Dropout", [blob], [blob], ["dropout_param", ["dropout_ratio: 0.5"]]),
  });
  layers.push(
    innerProduct("fc6", "pool5", "fc6", 512 * 7 * 7, 4096),
    relu("relu6", "fc6"),
    dropout("drop6", "fc6"),
    innerProduct("fc7", "fc6", "fc7", 4096, 4096),
    relu("relu7", "fc7"),
    dropout("drop7", "fc7"),
    innerProduct("fc8", "fc7", "fc8", 4096, 1000),
    { name: "prob", text: layerText("prob", "Softmax", ["fc8"], ["prob"]) },
  );
  return { name: "VGG_ILSVRC_16_layers", input: [1, 3, 224, 224], layers };
}

/** The prototxt text of a net spec, with `input` + `input_dim` as the original files have. */
function prototxtText(spec: NetSpec): string {
  const header = [`name: "${spec.name}"`, `input: "data"`];
  for (const dim of spec.input) header.push(`input_dim: ${dim}`);
  return [...header, ...spec.layers.map((layer) => layer.text)].join("\n") + "\n";
}

/** The three files of a generated model. */
interface ModelFiles {
  prototxt: string;
  caffemodel: Uint8Array;
  record: string;
  /** The blobs written, by layer name (for `--check`). */
  blobs: Map<string, Blob[]>;
}

/** Builds the files of a net spec: blobs from `seed`, the caffemodel, the record. */
async function buildModel(spec: NetSpec, seed: number): Promise<ModelFiles> {
  const prototxt = prototxtText(spec);
  const net = readPrototxt(prototxt);
  const random = new NormalSource(seed);
  const byName = new Map<string, Layer>(net.layers.map((layer) => [layer.name, layer]));
  const blobs = new Map<string, Blob[]>();
  for (const layerSpec of spec.layers) {
    if (layerSpec.blobs === undefined) continue;
    const layerBlobs = layerSpec.blobs(random);
    byName.get(layerSpec.name)!.blobs = layerBlobs;
    blobs.set(layerSpec.name, layerBlobs);
  }
  const caffemodel = writeCaffemodel(net);
  const record = await makeRecord(loadNet(prototxt, caffemodel));
  return { prototxt, caffemodel, record, blobs };
}

/**
 * Decodes `files.caffemodel` with protobufjs and `proto/caffe.proto` and compares it with what
 * was written; returns the problems found (none when the file reads back exactly).
 */
async function checkWithProtobufjs(files: ModelFiles): Promise<string[]> {
  const protoText = await Deno.readTextFile(new URL("../proto/caffe.proto", import.meta.url));
  const netType = protobuf.parse(protoText, { keepCase: true }).root.lookupType(
    "caffe.NetParameter",
  );
  const decoded = netType.toObject(netType.decode(files.caffemodel)) as {
    layer?: { name: string; blobs?: { shape?: { dim: unknown[] }; data?: number[] }[] }[];
  };
  const problems: string[] = [];
  const layers = decoded.layer ?? [];
  const expectedLayers = readPrototxt(files.prototxt).layers.map((layer) => layer.name);
  if (layers.map((layer) => layer.name).join() !== expectedLayers.join()) {
    problems.push("the layer names differ from the prototxt's");
  }
  for (const layer of layers) {
    const expected = files.blobs.get(layer.name) ?? [];
    const blobs = layer.blobs ?? [];
    if (blobs.length !== expected.length) {
      problems.push(`${layer.name}: ${blobs.length} blobs, expected ${expected.length}`);
      continue;
    }
    blobs.forEach((blob, index) => {
      const { shape, data } = expected[index];
      const dims = (blob.shape?.dim ?? []).map(Number);
      if (dims.join() !== shape.join()) {
        problems.push(`${layer.name} blob ${index}: shape [${dims}], expected [${shape}]`);
      }
      const values = blob.data ?? [];
      let same = values.length === data.length;
      for (let i = 0; same && i < values.length; i++) same = Math.fround(values[i]) === data[i];
      if (!same) problems.push(`${layer.name} blob ${index}: values differ`);
    });
  }
  return problems;
}

/** Parses the command line and writes the models; resolves to the exit code. */
async function main(args: string[]): Promise<number> {
  const positionals: string[] = [];
  let seed = 1;
  let factor = 1;
  let check = false;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--seed") seed = Number(args[++i]);
    else if (args[i] === "--bn-factor") factor = Number(args[++i]);
    else if (args[i] === "--check") check = true;
    else positionals.push(args[i]);
  }
  const [which, outDir = "bench-out"] = positionals;
  const makers: Record<string, () => NetSpec> = {
    resnet50: () => resnet50(factor),
    vgg16: vgg16,
  };
  const names = which === "all" ? Object.keys(makers) : [which];
  if (
    names.some((name) => makers[name] === undefined) || !Number.isInteger(seed) ||
    !(factor > 0)
  ) {
    console.error(`usage: ${USAGE}`);
    return 2;
  }
  for (const name of names) {
    const started = performance.now();
    const files = await buildModel(makers[name](), seed);
    const dir = `${outDir.replace(/\/+$/, "")}/${name}`;
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(`${dir}/deploy.prototxt`, files.prototxt);
    await Deno.writeFile(`${dir}/weights.caffemodel`, files.caffemodel);
    await Deno.writeTextFile(`${dir}/record.txt`, files.record);
    const parameters = [...files.blobs.values()].flat()
      .reduce((total, blob) => total + blob.data.length, 0);
    console.log(
      `${dir}: ${(parameters / 1e6).toFixed(2)} M parameters, caffemodel ` +
        `${(files.caffemodel.length / 1e6).toFixed(1)} MB, ` +
        `${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    if (check) {
      const problems = await checkWithProtobufjs(files);
      for (const problem of problems) console.error(`${name}: ${problem}`);
      if (problems.length > 0) return 1;
      console.log(`${dir}: protobufjs reads the caffemodel back exactly`);
    }
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
