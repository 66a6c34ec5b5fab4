/**
 * Data in: decoding, Caffe's TEST-phase preprocessing, list files, prototxt settings and sample
 * sources, checked against what OpenCV 4.6 and NumPy computed (scripts/fixtures/data_opencv.py ->
 * tests/fixtures/data/expected.json) on synthetic files and on photos from Debian packages.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { readBlobProto } from "../src/caffe/caffemodel_read.ts";
import { decodeImage } from "../src/data/decode.ts";
import { parseImageList } from "../src/data/list.ts";
import { type DataSample, readSamples, type SampleItem } from "../src/data/samples.ts";
import { imageTensor, type Transform } from "../src/data/transform.ts";
import { dataLayerSettings } from "../src/data/transform_param.ts";
import { ConvertError } from "../src/errors.ts";
import { writeNpy } from "../src/io/npy.ts";
import { sampleFiles } from "../src/io/sample_files.ts";
import { imageKernels } from "../src/wasm/image.ts";
import { conv, net, random } from "./_builders.ts";
import { DLIB_EXAMPLES, photosPresent } from "./_photos.ts";

const FIXTURES = "tests/fixtures/data";

interface Expected {
  synthetic: Record<string, { shape: number[]; color: string; gray: string }>;
  photos: Record<string, { shape: number[]; color: string; gray?: string }>;
  resize: { image: string; gray: boolean; size: [number, number]; sha: string }[];
  pipelines: {
    image: string;
    gray: boolean;
    resize: [number, number] | null;
    crop: number | null;
    mean?: number[] | null;
    meanFile?: string;
    scale: number;
    rgb: boolean;
    shape: number[];
    sha: string;
  }[];
  jpeg_gray: { jpeg: string; png: string }[];
}

const expected: Expected = JSON.parse(await Deno.readTextFile(`${FIXTURES}/expected.json`));

function sha(bytes: Uint8Array | Float32Array): string {
  const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return createHash("sha256").update(view).digest("hex");
}

const isPackagePhoto = (path: string) => path.startsWith("/usr/");
const photoPaths = Object.keys(expected.photos);
const havePhotos = photosPresent(photoPaths, "the OpenCV comparisons on packaged photos");

/** Paths to test: synthetic ones always, package photos when present. */
function available(path: string): boolean {
  return !isPackagePhoto(path) || havePhotos;
}

async function decodeFile(path: string, color: boolean) {
  return await decodeImage(await Deno.readFile(path), color, path);
}

Deno.test("decode: synthetic JPEG and PNG files equal cv2.imread (colour and gray)", async () => {
  for (const [name, want] of Object.entries(expected.synthetic)) {
    const path = `${FIXTURES}/synthetic/${name}`;
    const color = await decodeFile(path, true);
    assert.deepEqual([color.height, color.width, color.channels], want.shape, name);
    assert.equal(sha(color.data), want.color, `${name} colour`);
    if (name.endsWith(".png")) {
      assert.equal(sha((await decodeFile(path, false)).data), want.gray, `${name} gray`);
    }
  }
});

Deno.test("decode: packaged photos equal cv2.imread in colour (JPEG and PNG), PNG gray too", {
  ignore: !havePhotos,
}, async () => {
  let compared = 0;
  for (const [path, want] of Object.entries(expected.photos)) {
    const color = await decodeFile(path, true);
    assert.deepEqual([color.height, color.width, color.channels], want.shape, path);
    assert.equal(sha(color.data), want.color, `${path} colour`);
    if (want.gray !== undefined) {
      assert.equal(sha((await decodeFile(path, false)).data), want.gray, `${path} gray`);
    }
    compared++;
  }
  assert.ok(compared >= 15);
});

Deno.test("decode: gray JPEG is within one level of OpenCV's on >= 99% of a photo's pixels", {
  ignore: !havePhotos,
}, async () => {
  for (const { jpeg, png } of expected.jpeg_gray) {
    if (!isPackagePhoto(jpeg)) continue;
    const ours = await decodeFile(jpeg, false);
    const theirs = await decodeFile(`${FIXTURES}/${png}`, false);
    assert.equal(ours.data.length, theirs.data.length, jpeg);
    let within = 0;
    for (let i = 0; i < ours.data.length; i++) {
      if (Math.abs(ours.data[i] - theirs.data[i]) <= 1) within++;
    }
    assert.ok(within / ours.data.length >= 0.99, `${jpeg}: ${within} of ${ours.data.length}`);
  }
});

Deno.test("decode: gray synthetic JPEGs (noise, 4:2:0 to 4:4:4, progressive) stay close to OpenCV's", async () => {
  // Gray is libjpeg's Y formula on the decoded RGB, not libjpeg's Y plane: on pixels whose RGB
  // was clamped to 0 or 255 (frequent in this noise, rare in photos) it can miss by more.
  for (const { jpeg, png } of expected.jpeg_gray) {
    if (isPackagePhoto(jpeg)) continue;
    const ours = await decodeFile(jpeg, false);
    const theirs = await decodeFile(`${FIXTURES}/${png}`, false);
    let within = 0;
    for (let i = 0; i < ours.data.length; i++) {
      if (Math.abs(ours.data[i] - theirs.data[i]) <= 1) within++;
    }
    assert.ok(within / ours.data.length >= 0.95, `${jpeg}: ${within} of ${ours.data.length}`);
  }
});

Deno.test("decode: a truncated JPEG and a non-image are IMAGE_FORMAT errors naming the file", async () => {
  const truncated = `${FIXTURES}/synthetic/truncated.jpg`;
  await assert.rejects(
    decodeFile(truncated, true),
    (error) =>
      error instanceof ConvertError && error.code === "IMAGE_FORMAT" &&
      error.file === truncated,
  );
  const pngHead = (await Deno.readFile(`${FIXTURES}/synthetic/rgb8.png`)).slice(0, 60);
  await assert.rejects(
    decodeImage(pngHead, true, "cut.png"),
    (error) =>
      error instanceof ConvertError && error.code === "IMAGE_FORMAT" &&
      error.file === "cut.png",
  );
  await assert.rejects(
    decodeImage(new TextEncoder().encode("hello"), true, "notes.txt"),
    (error) => error instanceof ConvertError && error.code === "IMAGE_FORMAT",
  );
});

Deno.test("resize: bit-exact with cv2.resize INTER_LINEAR, up and down, odd ratios, halving", async () => {
  const kernels = await imageKernels();
  let compared = 0;
  for (const { image, gray, size, sha: want } of expected.resize) {
    if (!available(image)) continue;
    const decoded = await decodeFile(image, !gray);
    const out = kernels.resizeLinear(decoded, size[0], size[1]);
    assert.equal(sha(out.data), want, `${image} to ${size.join("x")}`);
    compared++;
  }
  assert.ok(compared >= 22, `${compared} resizes compared`);
});

/** The expected pipelines as transforms. */
async function pipelineTransform(entry: Expected["pipelines"][number]): Promise<Transform> {
  const transform: Transform = { scale: entry.scale, rgb: entry.rgb, gray: entry.gray };
  if (entry.resize) transform.resize = { height: entry.resize[0], width: entry.resize[1] };
  if (entry.crop) transform.crop = entry.crop;
  if (entry.mean) transform.mean = entry.mean;
  if (entry.meanFile) {
    transform.meanImage = readBlobProto(await Deno.readFile(entry.meanFile), entry.meanFile);
  }
  return transform;
}

Deno.test("imageTensor: Caffe's TEST-phase tensors equal NumPy's (resize, crop, mean, mean file, scale, rgb, gray)", async () => {
  let compared = 0;
  for (const entry of expected.pipelines) {
    if (!available(entry.image)) continue;
    const transform = await pipelineTransform(entry);
    const image = await decodeFile(entry.image, !entry.gray);
    const input = { name: "data", shape: [1, ...entry.shape] };
    const tensor = await imageTensor(image, transform, input, entry.image);
    assert.deepEqual(tensor.shape, [1, ...entry.shape]);
    assert.equal(sha(tensor.data), entry.sha, JSON.stringify(entry));
    compared++;
  }
  assert.ok(compared >= 1);
});

Deno.test("imageTensor: a hand-computed 2x2 crop with per-channel mean, scale and rgb", async () => {
  // 3x3 BGR image; pixel (y, x) channel c = 10*y + 3*x + c.
  const data = new Uint8Array(27).map((_, i) =>
    10 * Math.floor(i / 9) + 3 * (Math.floor(i / 3) % 3) + (i % 3)
  );
  const image = { height: 3, width: 3, channels: 3, data };
  const tensor = await imageTensor(
    image,
    { crop: 2, mean: [1, 2, 3], scale: 0.5, rgb: true },
    { name: "data", shape: [1, 3, 2, 2] },
    "x",
  );
  // Crop at (0, 0) ((3 - 2) / 2 = 0). Output channel 0 reads R (c = 2), minus mean[0] = 1.
  const want = [];
  for (const [c, from] of [[0, 2], [1, 1], [2, 0]]) {
    for (const [y, x] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
      want.push((10 * y + 3 * x + from - [1, 2, 3][c]) * 0.5);
    }
  }
  assert.deepEqual([...tensor.data], want);
});

Deno.test("imageTensor: wrong channels, too small for the crop, wrong size and mean counts are BAD_INPUT naming the file", async () => {
  const image = { height: 4, width: 4, channels: 3, data: new Uint8Array(48) };
  const cases: [Transform, number[], RegExp][] = [
    [{}, [1, 1, 4, 4], /1 channels.*--gray/],
    [{ crop: 5 }, [1, 3, 5, 5], /smaller than the crop 5/],
    [{ crop: 2 }, [1, 3, 3, 3], /--resize HxW or --crop N/],
    [{ mean: [1, 2] }, [1, 3, 4, 4], /2 mean values/],
  ];
  for (const [transform, shape, message] of cases) {
    await assert.rejects(
      imageTensor(image, transform, { name: "data", shape }, "pic.jpg"),
      (error) =>
        error instanceof ConvertError && error.code === "BAD_INPUT" &&
        error.file === "pic.jpg" && message.test(error.message),
      JSON.stringify(transform),
    );
  }
});

Deno.test("list file: `path label` lines, spaces in paths, blank lines; errors at line and column", () => {
  assert.deepEqual(parseImageList("a.jpg 1\r\n\nmy dir/b c.png -2\n", "l.txt"), [
    { path: "a.jpg", label: 1, line: 1 },
    { path: "my dir/b c.png", label: -2, line: 3 },
  ]);
  const fails = (text: string, line: number, column: number) =>
    assert.throws(
      () => parseImageList(text, "l.txt"),
      (error) =>
        error instanceof ConvertError && error.code === "LIST_FORMAT" &&
        error.file === "l.txt" && error.line === line && error.column === column,
    );
  fails("a.jpg 1\nb.jpg\n", 2, 1);
  fails("a.jpg 1\n\nb.jpg one\n", 3, 7);
  fails("a.jpg 1.5\n", 1, 7);
});

Deno.test("transform_param: the TEST-phase data layer's settings are read", async () => {
  const text = await Deno.readTextFile(`${FIXTURES}/train_val.prototxt`);
  assert.deepEqual(dataLayerSettings(text, "train_val.prototxt"), {
    layer: "data_test",
    transform: {
      crop: 32,
      mean: [104, 117, 123],
      scale: Math.fround(0.017), // a float field
      resize: { height: 36, width: 50 },
      gray: true,
    },
    source: "list.txt",
    rootFolder: "tests/fixtures/data/synthetic/",
  });
  assert.throws(
    () => dataLayerSettings('layer { name: "c" type: "ReLU" }', "n.prototxt"),
    (error) =>
      error instanceof ConvertError && error.code === "BAD_INPUT" &&
      error.file === "n.prototxt",
  );
});

/** A one-input net of input shape `shape` (a 1x1 convolution after it). */
function netOf(shape: number[]) {
  return net("data", shape, [
    conv("conv", "data", "conv", {
      numOutput: 1,
      channelsIn: shape[1],
      kernel: 1,
      next: random(1),
    }),
  ]);
}

async function collect(samples: AsyncIterable<DataSample>): Promise<DataSample[]> {
  const out: DataSample[] = [];
  for await (const sample of samples) out.push(sample);
  return out;
}

Deno.test("readSamples: File/Blob images, .npy of N samples, tensors and per-input maps", async () => {
  const model = netOf([1, 3, 37, 53]);
  const png = await Deno.readFile(`${FIXTURES}/synthetic/rgb8.png`);
  const batch = new Float32Array(2 * 3 * 37 * 53).map((_, i) => (i % 7) - 3);
  const npy = writeNpy({ shape: [2, 3, 37, 53], data: batch });
  const single = { shape: [3, 37, 53], data: batch.slice(0, 3 * 37 * 53) };
  const items: SampleItem[] = [
    new File([png], "rgb8.png"),
    { name: "two.npy", bytes: npy, label: 4 },
    { name: "t", tensor: single },
    { name: "m", inputs: new Map([["data", { shape: [1, 3, 37, 53], data: single.data }]]) },
  ];
  const samples = await collect(readSamples(model, items, { labels: [7, 8, 9, 10, 11] }));
  assert.deepEqual(samples.map((s) => [s.name, s.label]), [
    ["rgb8.png", 7],
    ["two.npy[0]", 4],
    ["two.npy[1]", 4],
    ["t", 10],
    ["m", 11],
  ]);
  for (const sample of samples) assert.deepEqual(sample.inputs.get("data")!.shape, [1, 3, 37, 53]);
  assert.deepEqual([...samples[2].inputs.get("data")!.data], [...batch.slice(3 * 37 * 53)]);
  // The image sample is the decoded BGR image as float (no resize: same size), channel-first.
  const decoded = await decodeFile(`${FIXTURES}/synthetic/rgb8.png`, true);
  const first = samples[0].inputs.get("data")!.data;
  assert.equal(first[0], decoded.data[0]);
  assert.equal(first[37 * 53], decoded.data[1]);
  assert.equal(first[2 * 37 * 53 + 5], decoded.data[5 * 3 + 2]);
  assert.equal((await collect(readSamples(model, items, { limit: 2 }))).length, 2);
  // Labels must match the samples that need them, one each.
  await assert.rejects(
    collect(readSamples(model, items, { labels: [7, 8] })),
    (error) => error instanceof ConvertError && error.code === "BAD_INPUT" && error.file === "t",
  );
  await assert.rejects(
    collect(readSamples(model, items, { labels: [1, 2, 3, 4, 5, 6] })),
    (error) => error instanceof ConvertError && /6 labels for 5 samples/.test(error.message),
  );
});

Deno.test("readSamples: NaN, empty and wrong-shape tensors are BAD_INPUT naming the file", async () => {
  const model = netOf([1, 3, 4, 4]);
  const nan = new Float32Array(48);
  nan[17] = NaN;
  const cases: [string, Uint8Array, RegExp][] = [
    ["nan.npy", writeNpy({ shape: [1, 3, 4, 4], data: nan }), /value 17 is NaN/],
    [
      "inf.npy",
      writeNpy({ shape: [3, 4, 4], data: new Float32Array(48).fill(Infinity) }),
      /Infinity/,
    ],
    ["empty.npy", writeNpy({ shape: [0, 3, 4, 4], data: new Float32Array(0) }), /no elements/],
    ["shape.npy", writeNpy({ shape: [1, 3, 5, 4], data: new Float32Array(60) }), /neither/],
    ["rank.npy", writeNpy({ shape: [48], data: new Float32Array(48) }), /neither/],
  ];
  for (const [name, bytes, message] of cases) {
    await assert.rejects(
      collect(readSamples(model, [{ name, bytes }])),
      (error) =>
        error instanceof ConvertError && error.code === "BAD_INPUT" &&
        error.file === name && message.test(error.message),
      name,
    );
  }
});

Deno.test("sampleFiles: folders (sorted, recursive), list files with labels and root folder, single files", async () => {
  const dir = await mkdtemp(join(Deno.makeTempDirSync(), "data-"));
  await Deno.mkdir(join(dir, "b"));
  await writeFile(join(dir, "b", "x.PNG"), await Deno.readFile(`${FIXTURES}/synthetic/gray8.png`));
  await writeFile(join(dir, "a.jpg"), await Deno.readFile(`${FIXTURES}/synthetic/gray.jpg`));
  await writeFile(join(dir, "notes.txt"), "not a sample");
  const names = async (paths: string[], options = {}) => {
    const out: [string, number | undefined][] = [];
    for await (const item of sampleFiles(paths, options)) out.push([item.name, item.label]);
    return out;
  };
  assert.deepEqual(await names([dir]), [[join(dir, "a.jpg"), undefined], [
    join(dir, "b", "x.PNG"),
    undefined,
  ]]);
  const synthetic = `${Deno.cwd()}/${FIXTURES}/synthetic`;
  assert.deepEqual(await names([`${FIXTURES}/list.txt`], { rootFolder: synthetic }), [
    [`${synthetic}/rgb8.png`, 3],
    [`${synthetic}/ycc420.jpg`, 1],
    [`${synthetic}/gray8.png`, 0],
  ]);
  assert.deepEqual(await names([`${FIXTURES}/synthetic/gray.jpg`]), [[
    `${FIXTURES}/synthetic/gray.jpg`,
    undefined,
  ]]);
  await Deno.mkdir(join(dir, "empty"));
  await assert.rejects(
    names([join(dir, "empty")]),
    (error) => error instanceof ConvertError && error.code === "BAD_INPUT",
  );
  await assert.rejects(
    names([join(dir, "missing")]),
    (error) => error instanceof ConvertError && error.code === "INPUT_NOT_FOUND",
  );
});

Deno.test(
  "sampleFiles + readSamples on the packaged face photos: every photo becomes a 240x320 RGB tensor",
  {
    ignore: !havePhotos,
  },
  async () => {
    const model = netOf([1, 3, 240, 320]);
    const samples = await collect(
      readSamples(model, sampleFiles([`${DLIB_EXAMPLES}/faces`]), {
        transform: { mean: [127, 127, 127], scale: 1 / 128, rgb: true },
      }),
    );
    assert.equal(samples.length, 12);
    for (const sample of samples) {
      const data = sample.inputs.get("data")!.data;
      assert.equal(data.length, 3 * 240 * 320);
      assert.ok(data.every((v) => v >= -1 && v < 1.01), sample.name);
    }
  },
);
