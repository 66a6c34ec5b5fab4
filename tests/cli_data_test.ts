/**
 * The data options of the commands (src/cli/data_options.ts) on the shared LeNet: inputs are
 * checked, every argument is used, and `convert --compare` says what it measured on.
 */

import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Tensor } from "../src/engine/tensor.ts";
import { readNpy, writeNpy } from "../src/io/npy.ts";
import { modelFile, modelNames } from "./_models.ts";
import { runCli as run } from "./_cli.ts";

const ignore = !modelNames.includes("lenet");
const model = modelFile("lenet", "deploy.prototxt");
const weights = modelFile("lenet", "weights.caffemodel");
const SYNTHETIC = "tests/fixtures/data/synthetic";

/** A digit-like 1x1x28x28 tensor: value v everywhere except a bar. */
function digit(v: number): Float32Array {
  return new Float32Array(28 * 28).map((_, i) => (i % 28 === 14 ? 1 : v));
}

/** `run` on the `.npy` batch `batch` of input "data" with `threads`: its output `blob`. */
async function runBatch(
  prototxt: string,
  caffemodel: string,
  batch: string,
  threads: string,
  out: string,
  blob: string,
): Promise<Tensor> {
  const args = ["--input", `data=${batch}`, "--threads", threads, "--out", out];
  const result = await run("run", prototxt, caffemodel, ...args);
  assert.equal(result.code, 0, result.err);
  return readNpy(await readFile(join(out, `output.${blob}.npy`)));
}

Deno.test(
  "record --input: NaN, empty and wrong-shape .npy inputs exit 2 naming the file, writing nothing",
  {
    ignore,
  },
  async () => {
    const dir = await mkdtemp("/tmp/caffe-quant-data-");
    const nan = digit(0);
    nan[100] = NaN;
    const files: [string, Uint8Array][] = [
      ["nan.npy", writeNpy({ shape: [1, 1, 28, 28], data: nan })],
      ["empty.npy", writeNpy({ shape: [0, 1, 28, 28], data: new Float32Array(0) })],
      ["shape.npy", writeNpy({ shape: [1, 3, 28, 28], data: new Float32Array(3 * 784) })],
    ];
    for (const [name, bytes] of files) {
      const path = join(dir, name);
      await writeFile(path, bytes);
      const out = join(dir, `${name}.record.txt`);
      const result = await run("record", model, weights, "--input", `data=${path}`, "--out", out);
      assert.equal(result.code, 2, `${name}: ${result.err}`);
      assert.match(result.err, new RegExp(`error\\[BAD_INPUT\\] ${path}`), name);
      assert.ok(!(await readdir(dir)).includes(`${name}.record.txt`), name);
    }
  },
);

Deno.test("run --input: repeated files and a folder of .npy are several samples, none dropped", {
  ignore,
}, async () => {
  const dir = await mkdtemp("/tmp/caffe-quant-data-");
  const folder = join(dir, "npys");
  await mkdir(folder);
  const a = join(folder, "a.npy");
  const b = join(folder, "b.npy");
  await writeFile(a, writeNpy({ shape: [1, 1, 28, 28], data: digit(0) }));
  await writeFile(
    b,
    writeNpy({ shape: [2, 1, 28, 28], data: Float32Array.of(...digit(0.5), ...digit(0.2)) }),
  );
  const outputs = async (...inputs: string[]) => {
    const out = join(dir, `out${Math.random()}`);
    const args = inputs.flatMap((input) => ["--input", `data=${input}`]);
    const result = await run("run", model, weights, ...args, "--out", out);
    assert.equal(result.code, 0, result.err);
    return readNpy(await readFile(join(out, "output.prob.npy")));
  };
  const alone = [await outputs(a), await outputs(b)];
  assert.deepEqual(alone[0].shape, [1, 10]);
  assert.deepEqual(alone[1].shape, [2, 10]);
  const both = await outputs(a, b);
  assert.deepEqual(both.shape, [3, 10]);
  assert.deepEqual([...both.data], [...alone[0].data, ...alone[1].data]);
  const folderRun = await outputs(folder);
  assert.deepEqual([...folderRun.data], [...both.data]);
});

Deno.test("convert --compare says when it measured on generated inputs, and takes --data", {
  ignore,
}, async () => {
  const dir = await mkdtemp("/tmp/caffe-quant-data-");
  const record = join(dir, "record.txt");
  assert.equal((await run("record", model, weights, "--calibrate", "2", "--out", record)).code, 0);
  const generated = await run("convert", model, weights, record, join(dir, "g"), "--compare");
  assert.equal(generated.code, 0, generated.err);
  assert.match(
    generated.out,
    /accuracy on 4 generated input\(s\) \(uniform in \[-1, 1\), seed 0; not your data: pass --data\)/,
  );
  const withData = await run(
    "convert",
    model,
    weights,
    record,
    join(dir, "d"),
    "--compare",
    "--data",
    `${SYNTHETIC}/gray8.png`,
    "--data",
    `${SYNTHETIC}/gray.jpg`,
    "--gray",
    "--resize",
    "28x28",
    "--scale",
    "0.00390625",
  );
  assert.equal(withData.code, 0, withData.err);
  assert.match(withData.out, /accuracy on 2 sample\(s\) of gray8\.png, gray\.jpg/);
  assert.match(withData.err, /data: 2 samples/);
});

Deno.test(
  "data options: bad values are USAGE errors naming the option; --data and --input exclude each other",
  {
    ignore,
  },
  async () => {
    const image = `${SYNTHETIC}/gray8.png`;
    const dataCases: [string[], RegExp][] = [
      [["--resize", "28"], /--resize needs HEIGHTxWIDTH/],
      [["--resize", "0x28"], /--resize needs HEIGHTxWIDTH/],
      [["--crop", "0"], /--crop needs a whole number >= 1/],
      [["--mean", "1,x"], /--mean needs a number, not "x"/],
      [["--mean", "1,2"], /--mean needs one value or three/],
      [["--scale", "big"], /--scale needs a number/],
      [["--samples", "0"], /--samples needs a whole number >= 1/],
      [["--resize", "28x28", "--resize", "32x32"], /--resize is given twice/],
    ];
    const cases = dataCases.map(([options, message]): [string[], RegExp] => [
      ["--data", image, "--gray", ...options],
      message,
    ]);
    cases.push([["--input", "data"], /--input needs <blob>=<file.npy>/]);
    cases.push([["--input", "nope=x.npy"], /--input names "nope", not an input of the net/]);
    for (const [options, message] of cases) {
      const result = await run("run", model, weights, ...options, "--out", "/tmp/x");
      assert.equal(result.code, 2, options.join(" "));
      assert.match(result.err, /error\[USAGE\]/, options.join(" "));
      assert.match(result.err, message, options.join(" "));
    }
    const both = await run(
      "run",
      model,
      weights,
      "--data",
      image,
      "--input",
      `data=${image}`,
      "--out",
      "/tmp/x",
    );
    assert.match(both.err, /--data and --input cannot both be given/);
  },
);

Deno.test("record --transform-from reads a TEST data layer's list, root folder and transform", {
  ignore,
}, async () => {
  const dir = await mkdtemp("/tmp/caffe-quant-data-");
  const prototxt = join(dir, "train_val.prototxt");
  await writeFile(join(dir, "list.txt"), "gray8.png 3\nycc420.jpg 1\n");
  await writeFile(
    prototxt,
    `layer { name: "d" type: "ImageData" top: "data" top: "label" include { phase: TEST }
  transform_param { crop_size: 28 scale: 0.00390625 }
  image_data_param { source: "${dir}/list.txt" root_folder: "${Deno.cwd()}/${SYNTHETIC}/"
    new_height: 32 new_width: 36 is_color: false } }\n`,
  );
  const result = await run("record", model, weights, "--transform-from", prototxt);
  assert.equal(result.code, 0, result.err);
  assert.match(result.err, /calibrated 4 layers on 2 samples of list\.txt/);
  assert.equal(result.out.match(/key: /g)?.length, 4);
});

Deno.test(
  "run --input: a .npy batch read row by row gives each sample's outputs, a NaN named at its index in the file",
  {
    ignore,
  },
  async () => {
    const dir = await mkdtemp("/tmp/caffe-quant-data-");
    // 400 digits: two reads of rows (334 rows of 3,136 bytes fit 1 MiB).
    const rows = 400;
    const data = new Float32Array(rows * 784);
    for (let i = 0; i < rows; i++) data.set(digit((i % 17) / 17), i * 784);
    const batch = join(dir, "batch.npy");
    await writeFile(batch, writeNpy({ shape: [rows, 1, 28, 28], data }));
    for (const threads of ["1", "2"]) {
      const prob = await runBatch(model, weights, batch, threads, join(dir, "out"), "prob");
      assert.deepEqual(prob.shape, [rows, 10]);
      // Each sample's outputs are those of its own file, run alone.
      for (const i of [0, 16, 17, 333, 334, 399]) {
        const one = join(dir, `one${i}.npy`);
        await writeFile(
          one,
          writeNpy({ shape: [1, 1, 28, 28], data: data.subarray(i * 784, (i + 1) * 784) }),
        );
        const alone = join(dir, `alone${i}`);
        assert.equal(
          (await run("run", model, weights, "--input", `data=${one}`, "--out", alone)).code,
          0,
        );
        const expected = readNpy(await readFile(join(alone, "output.prob.npy")));
        assert.deepEqual(
          prob.data.subarray(i * 10, (i + 1) * 10),
          expected.data,
          `sample ${i}, ${threads} threads`,
        );
      }
    }
    const bad = data.slice();
    bad[350 * 784 + 100] = NaN;
    const nan = join(dir, "nan.npy");
    await writeFile(nan, writeNpy({ shape: [rows, 1, 28, 28], data: bad }));
    const failed = await run(
      "run",
      model,
      weights,
      "--input",
      `data=${nan}`,
      "--out",
      join(dir, "nan"),
    );
    assert.equal(failed.code, 2, failed.err);
    assert.match(
      failed.err,
      new RegExp(`error\\[BAD_INPUT\\] ${nan}: input "data": value 274500 is NaN`),
    );
    assert.ok(!(await readdir(dir)).includes("nan"));
  },
);

Deno.test("run --input: an input no layer reads is an output of the batch's own values, memory reused or not", async () => {
  const dir = await mkdtemp("/tmp/caffe-quant-data-");
  // Rows of 1.1 MB: one read each, into memory the rows before were released from.
  const prototxt = join(dir, "net.prototxt");
  await writeFile(
    prototxt,
    'name: "echo"\nlayer { name: "in" type: "Input" top: "data" top: "x"\n' +
      "  input_param { shape { dim: 1 dim: 1 dim: 520 dim: 520 } shape { dim: 1 dim: 2 } } }\n" +
      'layer { name: "relu" type: "ReLU" bottom: "x" top: "y" }\n',
  );
  const caffemodel = join(dir, "net.caffemodel");
  await writeFile(caffemodel, new Uint8Array(0));
  const rows = 5;
  const data = new Float32Array(rows * 520 * 520).map((_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const batch = join(dir, "batch.npy");
  await writeFile(batch, writeNpy({ shape: [rows, 1, 520, 520], data }));
  for (const threads of ["1", "2"]) {
    const echoed = await runBatch(prototxt, caffemodel, batch, threads, join(dir, "out"), "data");
    assert.deepEqual(echoed.shape, [rows, 1, 520, 520]);
    assert.ok(
      echoed.data.every((value, i) => value === data[i]),
      `${threads} threads: the rows changed`,
    );
  }
});
