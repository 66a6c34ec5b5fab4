/**
 * The built-in example: a small deterministic float net (two Conv+BatchNorm+Scale composites, an
 * AVE Pooling, a Deconvolution, an InnerProduct) and a matching record file made from its
 * weights and the simulator's observed activation ranges. `npm run example` converts it; the
 * fuzzer mutates it.
 *
 * @module
 */

import { readPrototxt } from "../src/caffe/prototxt.ts";
import { writeCaffemodel } from "../src/caffe/caffemodel_write.ts";
import type { Blob, Net } from "../src/caffe/net.ts";
import { observeActivationRanges } from "../src/engine/calibrate.ts";
import { uniformGenerator } from "../src/engine/inputs.ts";
import { makeRecord } from "../src/quant/make_record.ts";

/** The example's prototxt. */
export const EXAMPLE_MODEL = `name: "caffe_quant_example"
input: "data"
input_shape { dim: 1 dim: 3 dim: 32 dim: 32 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 16 kernel_size: 3 pad: 1 bias_term: false } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1"
  batch_norm_param { use_global_stats: true } }
layer { name: "scale1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
  convolution_param { num_output: 32 kernel_size: 3 pad: 1 stride: 2 } }
layer { name: "bn2" type: "BatchNorm" bottom: "conv2" top: "conv2" }
layer { name: "scale2" type: "Scale" bottom: "conv2" top: "conv2" scale_param { bias_term: true } }
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer { name: "pool1" type: "Pooling" bottom: "conv2" top: "pool1"
  pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "deconv1" type: "Deconvolution" bottom: "pool1" top: "deconv1"
  convolution_param { num_output: 8 kernel_size: 2 stride: 2 } }
layer { name: "relu3" type: "ReLU" bottom: "deconv1" top: "deconv1" }
layer { name: "fc1" type: "InnerProduct" bottom: "deconv1" top: "fc1"
  inner_product_param { num_output: 10 } }
layer { name: "prob" type: "Softmax" bottom: "fc1" top: "prob" }
`;

/** Blob shapes of each layer with weights, in blob order. */
const SHAPES: Record<string, number[][]> = {
  conv1: [[16, 3, 3, 3]],
  bn1: [[16], [16], [1]],
  scale1: [[16], [16]],
  conv2: [[32, 16, 3, 3], [32]],
  bn2: [[32], [32], [1]],
  scale2: [[32], [32]],
  deconv1: [[32, 8, 2, 2], [8]],
  fc1: [[10, 8 * 16 * 16], [10]],
};

/** Deterministic weights with plausible statistics for each blob role. */
export function exampleNet(): Net {
  const next = uniformGenerator(2026);
  const net = readPrototxt(EXAMPLE_MODEL, "example.prototxt");
  for (const layer of net.layers) {
    const shapes = SHAPES[layer.name];
    if (shapes === undefined) continue;
    layer.blobs = shapes.map((shape, index): Blob => {
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
      for (let i = 0; i < data.length; i++) {
        const u = next();
        if (layer.type === "BatchNorm") {
          // Caffe stores mean and variance (> 0) times the moving-average factor (999.982).
          const factor = 999.982;
          data[i] = index === 0
            ? u * 0.5 * factor
            : index === 1
            ? (0.5 + 0.4 * u) * factor
            : factor;
        } else if (layer.type === "Scale") {
          data[i] = index === 0 ? 1 + 0.2 * u : 0.1 * u;
        } else {
          // He-like weights; the classifier gets a larger gain so its softmax is not flat.
          const gain = layer.type === "InnerProduct" ? 2 : 1;
          data[i] = index === 0 ? gain * u * Math.sqrt(6 / fanIn) : 0.05 * u;
        }
      }
      return { shape, data };
    });
  }
  return net;
}

/** The example's three input files: prototxt text, caffemodel bytes and record text. */
export async function exampleFiles(): Promise<
  { model: string; weights: Uint8Array; record: string }
> {
  const net = exampleNet();
  const activationRanges = await observeActivationRanges(net, { samples: 8, seed: 1 });
  return {
    model: EXAMPLE_MODEL,
    weights: writeCaffemodel(net),
    record: await makeRecord(net, { activationRanges }),
  };
}
