// inspect: output shapes, "fused into" for BatchNorm/Scale that fusion absorbs, articles
// (issue 16.9).

import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { EXAMPLE_MODEL, exampleNet } from "../scripts/example_model.ts";
import { writeCaffemodel } from "../src/caffe/caffemodel_write.ts";
import { describeNet } from "../src/engine/describe.ts";
import { runCli as run } from "./_cli.ts";

// The example net's top shapes worked by hand from its prototxt: conv1 3x3 pad 1 keeps 32x32;
// conv2 3x3 pad 1 stride 2 gives (32 + 2 - 3) / 2 + 1 = 16; pool1 2x2 stride 2 gives 8;
// deconv1 2x2 stride 2 gives (8 - 1) * 2 + 2 = 16; fc1 10 outputs.
const EXPECTED_TOPS: Record<string, number[]> = {
  conv1: [1, 16, 32, 32],
  bn1: [1, 16, 32, 32],
  scale1: [1, 16, 32, 32],
  relu1: [1, 16, 32, 32],
  conv2: [1, 32, 16, 16],
  bn2: [1, 32, 16, 16],
  scale2: [1, 32, 16, 16],
  relu2: [1, 32, 16, 16],
  pool1: [1, 32, 8, 8],
  deconv1: [1, 8, 16, 16],
  relu3: [1, 8, 16, 16],
  fc1: [1, 10],
  prob: [1, 10],
};

Deno.test("describeNet: every layer's top shapes, and the BatchNorm/Scale layers fusion folds", async () => {
  const summary = await describeNet(exampleNet(), { shapes: true });
  for (const layer of summary.layers) {
    assert.deepEqual(layer.topShapes, [EXPECTED_TOPS[layer.name]], layer.name);
  }
  const fused = Object.fromEntries(
    summary.layers.flatMap((layer) => layer.fusedInto ? [[layer.name, layer.fusedInto]] : []),
  );
  assert.deepEqual(fused, { bn1: "conv1", scale1: "conv1", bn2: "conv2", scale2: "conv2" });
  const withoutShapes = await describeNet(exampleNet(), { shapes: false });
  assert.ok(withoutShapes.layers.every((layer) => layer.topShapes === undefined));
});

Deno.test("inspect prints top shapes, 'fused into', and an/a before layer types", async () => {
  const dir = await mkdtemp("/tmp/caffe-quant-inspect-");
  // An Input layer and an ELU after the example's last layer: neither can be quantized.
  const model = EXAMPLE_MODEL.replace(
    'input: "data"\ninput_shape { dim: 1 dim: 3 dim: 32 dim: 32 }',
    'layer { name: "input" type: "Input" top: "data" ' +
      "input_param { shape { dim: 1 dim: 3 dim: 32 dim: 32 } } }",
  ) + 'layer { name: "elu" type: "ELU" bottom: "prob" top: "elu" }\n';
  await writeFile(join(dir, "m.prototxt"), model);
  await writeFile(join(dir, "w.caffemodel"), writeCaffemodel(exampleNet()));
  const { code, out, err } = await run(
    "inspect",
    join(dir, "m.prototxt"),
    join(dir, "w.caffemodel"),
  );
  assert.equal(code, 0, err);
  const row = (name: string) => out.split("\n").find((line) => line.split(/\s+/)[1] === name)!;
  assert.match(out.split("\n")[1], /top shapes/);
  assert.match(row("conv2"), /\[1x32x16x16\]\s+\[32x16x3x3\] \[32\]\s+4640\s+yes$/);
  assert.match(row("bn2"), /fused into conv2$/);
  assert.match(row("scale1"), /fused into conv1$/);
  assert.match(row("relu1"), /no: a ReLU layer cannot be quantized$/);
  assert.match(row("input"), /no: an Input layer cannot be quantized$/);
  assert.match(row("elu"), /no: an ELU layer cannot be quantized$/);
  const bare = await run("inspect", join(dir, "m.prototxt"));
  assert.doesNotMatch(bare.out, /top shapes/);
  // Without weights fusion cannot tell a composite (src/quant/fuse.ts needs the blobs).
  assert.match(bare.out, /bn1 .*no: a BatchNorm layer cannot be quantized/);
});
