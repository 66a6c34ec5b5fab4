// Data safety of every writer (`convert`, `record --out`, `run --out`, `compare --html`, and
// convertModel): special files and links at output paths, inputs named as outputs (by
// identity), `run`'s file names, two processes writing one save path, signals in Deno and Node,
// long names and onProgress errors. Each case checks the directory byte for byte afterwards.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { printPrototxt } from "../src/caffe/prototxt.ts";
import { convert } from "../core.ts";
import { ConvertError } from "../src/errors.ts";
import { convertModel } from "../src/io/convert_model.ts";
import { writeAllOrNothing } from "../src/io/files.ts";
import { writeNpy } from "../src/io/npy.ts";
import { lockOutputs, outputSet } from "../src/io/output_lock.ts";
import { outputNames } from "../src/output_names.ts";
import { conv, net, random, relu, writeConv1ModelFiles } from "./_builders.ts";
import { runCli as cli } from "./_cli.ts";

const isRoot = Deno.uid() === 0;

/** The workspaces made, removed when the tests end. */
const made: string[] = [];
globalThis.addEventListener("unload", () => {
  for (const dir of made) Deno.removeSync(dir, { recursive: true });
});

/** A temp dir with a small model (conv1 then three ReLUs), its weights, a record and an input. */
async function workspace() {
  const dir = await Deno.makeTempDir({ prefix: "caffe-quant-safety-" });
  made.push(dir);
  const next = random(11);
  const model = net("data", [1, 4, 6, 6], [
    conv("conv1", "data", "conv1", { numOutput: 8, channelsIn: 4, next }),
    relu("relu_a", "conv1", "p/q"),
    relu("relu_b", "conv1", "p_q"),
    relu("relu_c", "conv1", "p q"),
  ]);
  const files = await writeConv1ModelFiles(dir, model);
  const npy = join(dir, "input.npy");
  const data = Float32Array.from({ length: 4 * 36 }, (_, i) => Math.sin(i));
  await Deno.writeFile(npy, writeNpy({ shape: [1, 4, 6, 6], data }));
  return { dir, files, npy };
}

/**
 * Every entry under `dir`, sorted: a file's size and SHA-256, a link's target, or the kind of a
 * special file (never opened: a FIFO would block).
 */
async function snapshot(dir: string, prefix = ""): Promise<string[]> {
  const entries: string[] = [];
  for (const name of [...Deno.readDirSync(dir)].map((entry) => entry.name).sort()) {
    const path = join(dir, name);
    const info = Deno.lstatSync(path);
    if (info.isSymlink) entries.push(`${prefix}${name} -> ${Deno.readLinkSync(path)}`);
    else if (info.isDirectory) entries.push(...await snapshot(path, `${prefix}${name}/`));
    else if (info.isFile) entries.push(`${prefix}${name} ${await digest(path)}`);
    else entries.push(`${prefix}${name} special ${info.mode! & 0o170000}`);
  }
  return entries;
}

async function digest(path: string): Promise<string> {
  const bytes = await Deno.readFile(path);
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `${bytes.length} ${[...hash].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The command failed as a user mistake with `code` naming `file`. */
function assertFailed(result: { code: number; err: string }, code: string, file: string) {
  assert.equal(result.code, 2, result.err);
  // The last line (warnings may come before it).
  const last = result.err.trimEnd().split("\n").at(-1)!;
  assert.ok(last.startsWith(`error[${code}] ${file}: `), result.err);
}

Deno.test("special files at output paths are refused by every writer; nothing changes", async () => {
  const { dir, files, npy } = await workspace();
  const { modelFile, weightsFile, recordFile } = files;
  const fifo = join(dir, "fifo");
  await new Deno.Command("mkfifo", { args: [fifo] }).output();
  const specials = [fifo, join(dir, "to_null"), join(dir, "dangling"), join(dir, "to_dir")];
  Deno.symlinkSync("/dev/null", specials[1]);
  Deno.symlinkSync(join(dir, "missing"), specials[2]);
  Deno.mkdirSync(join(dir, "sub"));
  Deno.symlinkSync(join(dir, "sub"), specials[3]);
  if (isRoot) {
    specials.push(join(dir, "null"));
    const made = await new Deno.Command("mknod", { args: [specials[4], "c", "1", "3"] }).output();
    assert.ok(made.success, "mknod");
  }
  const before = await snapshot(dir);
  for (const special of specials) {
    const name = special.slice(dir.length + 1);
    const code = name === "to_dir" ? "OUTPUT_DIR" : "OUTPUT_NOT_A_FILE";
    assertFailed(await cli("record", modelFile, weightsFile, "--out", special), code, special);
    assertFailed(
      await cli("compare", modelFile, weightsFile, modelFile, weightsFile, "--html", special),
      code,
      special,
    );
    // convert: the special file in place of the quant.json of the save path <dir>/x.
    const quantJson = join(dir, outputNames(join(dir, "x")).names.quantInfo);
    Deno.renameSync(special, quantJson);
    const converted = await cli("convert", modelFile, weightsFile, recordFile, join(dir, "x"));
    Deno.renameSync(quantJson, special);
    assertFailed(converted, code, quantJson);
    // run: the special file in place of one of the outputs.
    const out = join(dir, "runs");
    Deno.mkdirSync(out);
    const output = join(out, "output.conv1.npy");
    Deno.renameSync(special, output);
    Deno.writeTextFileSync(
      join(dir, "single.prototxt"),
      printPrototxt(net("data", [1, 4, 6, 6], [
        conv("conv1", "data", "conv1", { numOutput: 8, channelsIn: 4, next: random(11) }),
      ])),
    );
    const ran = await cli(
      "run",
      join(dir, "single.prototxt"),
      weightsFile,
      "--input",
      `data=${npy}`,
      "--out",
      out,
    );
    Deno.renameSync(output, special);
    Deno.removeSync(out);
    Deno.removeSync(join(dir, "single.prototxt"));
    assertFailed(ran, code, output);
    assert.deepEqual(await snapshot(dir), before, name);
  }
});

Deno.test("a symbolic link to a regular file is written through: the link stays", async () => {
  const { dir, files } = await workspace();
  const real = join(dir, "elsewhere", "record-real.txt");
  Deno.mkdirSync(join(dir, "elsewhere"));
  Deno.writeTextFileSync(real, "old");
  const link = join(dir, "record-link.txt");
  Deno.symlinkSync(real, link);
  const result = await cli("record", files.modelFile, files.weightsFile, "--out", link);
  assert.equal(result.code, 0, result.err);
  assert.ok(Deno.lstatSync(link).isSymlink);
  assert.equal(Deno.readLinkSync(link), real);
  assert.match(Deno.readTextFileSync(real), /key: "conv1"/);
  // Nothing else beside the outputs: no temporary, no lock, no set-aside copy.
  assert.deepEqual([...Deno.readDirSync(join(dir, "elsewhere"))].map((e) => e.name), [
    "record-real.txt",
  ]);
  // A failing write leaves link and file as they were.
  const before = await snapshot(dir);
  function* failing(): Generator<Uint8Array> {
    yield new Uint8Array(1);
    throw new ConvertError("WEIGHTS_NOT_FINITE", "from the producer");
  }
  await assert.rejects(
    writeAllOrNothing(dir, [{ name: "record-link.txt", content: "new" }, {
      name: "b.txt",
      content: failing(),
    }]),
    (error) => error instanceof ConvertError && error.code === "WEIGHTS_NOT_FINITE",
  );
  assert.deepEqual(await snapshot(dir), before);
});

Deno.test("no writer replaces an input, by identity: .npy inputs, hard and symbolic links", async () => {
  const { dir, files, npy } = await workspace();
  const { modelFile, weightsFile, recordFile } = files;
  Deno.linkSync(weightsFile, join(dir, "hard.caffemodel"));
  Deno.symlinkSync(modelFile, join(dir, "soft.prototxt"));
  Deno.linkSync(npy, join(dir, "hard.npy"));
  Deno.linkSync(recordFile, join(dir, "y_quant.json"));
  const before = await snapshot(dir);
  const npyIn = `data=${npy}`;
  const cases: [string[], string][] = [
    [["record", modelFile, weightsFile, "--input", npyIn, "--out", npy], npy],
    [
      ["record", modelFile, weightsFile, "--input", npyIn, "--out", join(dir, "hard.npy")],
      join(dir, "hard.npy"),
    ],
    [
      ["record", modelFile, weightsFile, "--out", join(dir, "hard.caffemodel")],
      join(dir, "hard.caffemodel"),
    ],
    [
      ["compare", modelFile, weightsFile, modelFile, weightsFile, "--input", npyIn, "--html", npy],
      npy,
    ],
    [[
      "compare",
      modelFile,
      weightsFile,
      modelFile,
      weightsFile,
      "--html",
      join(dir, "soft.prototxt"),
    ], join(dir, "soft.prototxt")],
    [["convert", modelFile, weightsFile, recordFile, join(dir, "y")], join(dir, "y_quant.json")],
  ];
  for (const [argv, file] of cases) {
    assertFailed(await cli(...argv), "OUTPUT_OVERWRITES_INPUT", file);
    assert.deepEqual(await snapshot(dir), before, argv.join(" "));
  }
  // run: an output that is a hard link of the .npy input.
  const out = join(dir, "runs");
  Deno.mkdirSync(out);
  Deno.linkSync(npy, join(out, "output.p_q.npy"));
  const beforeRun = await snapshot(dir);
  const ran = await cli("run", modelFile, weightsFile, "--input", npyIn, "--out", out);
  assertFailed(ran, "OUTPUT_OVERWRITES_INPUT", join(out, "output.p_q.npy"));
  assert.deepEqual(await snapshot(dir), beforeRun);
});

Deno.test("run writes one file per output blob, even for p/q, p_q and p q", async () => {
  const { dir, files, npy } = await workspace();
  const out = join(dir, "runs");
  const ran = await cli(
    "run",
    files.modelFile,
    files.weightsFile,
    "--input",
    `data=${npy}`,
    "--out",
    out,
    "--json",
  );
  assert.equal(ran.code, 0, ran.err);
  const written: { blob: string; file: string }[] = JSON.parse(ran.out).outputs;
  assert.deepEqual(written.map((o) => o.blob).sort(), ["p q", "p/q", "p_q"]);
  assert.equal(new Set(written.map((o) => o.file)).size, 3);
  assert.deepEqual(
    [...Deno.readDirSync(out)].map((e) => e.name).sort(),
    written.map((o) => o.file.slice(out.length + 1)).sort(),
  );
});

Deno.test("a 255-byte output name is written (temporary names are short)", async () => {
  const { dir, files } = await workspace();
  // The longest suffix, _fake_quant_weights.caffemodel, is 30 bytes.
  const prefix = "a".repeat(255 - 30);
  const report = await convertModel({ ...files, savePath: join(dir, "out", prefix) });
  const longest = report.outputs.fakeQuantWeights.slice(join(dir, "out").length + 1);
  assert.equal(new TextEncoder().encode(longest).length, 255);
  assert.equal([...Deno.readDirSync(join(dir, "out"))].length, 5);
  const name = "é".repeat(127) + "x"; // 255 bytes of UTF-8
  const result = await cli("record", files.modelFile, files.weightsFile, "--out", join(dir, name));
  assert.equal(result.code, 0, result.err);
  assert.match(Deno.readTextFileSync(join(dir, name)), /key: "conv1"/);
});

Deno.test("onProgress errors abort before the commit: nothing written, no unhandled rejection", async () => {
  const { dir, files } = await workspace();
  const savePath = join(dir, "out", "m");
  await convertModel({ ...files, savePath });
  const before = await snapshot(dir);
  const failure = new Error("from onProgress");
  const callbacks: [string, (stage: string) => void | Promise<void>][] = [
    ["throws at write", (stage) => {
      if (stage === "write") throw failure;
    }],
    ["rejects at write", (stage) => stage === "write" ? Promise.reject(failure) : undefined],
    ["rejects later at quantize", async (stage) => {
      if (stage !== "quantize") return;
      await new Promise((done) => setTimeout(done, 50));
      throw failure;
    }],
  ];
  for (const [what, onProgress] of callbacks) {
    await assert.rejects(convertModel({ ...files, savePath, onProgress }), (error) => {
      assert.equal(error, failure, what);
      return true;
    });
    assert.deepEqual(await snapshot(dir), before, what);
  }
  // An async callback that resolves is waited for, and the outputs are written.
  let waited = false;
  await convertModel({
    ...files,
    savePath,
    onProgress: async (stage) => {
      if (stage !== "write") return;
      await new Promise((done) => setTimeout(done, 20));
      waited = true;
    },
  });
  assert.ok(waited);
});

Deno.test("core convert(): an async onProgress that rejects fails the conversion, unhandled never", async () => {
  const { files } = await workspace();
  const failure = new Error("from onProgress");
  const input = {
    model: await Deno.readTextFile(files.modelFile),
    weights: await Deno.readFile(files.weightsFile),
    record: await Deno.readTextFile(files.recordFile),
  };
  for (const stage of ["load", "quantize", "serialize"]) {
    await assert.rejects(
      convert({ ...input, onProgress: (at) => at === stage ? Promise.reject(failure) : undefined }),
      (error) => error === failure,
    );
  }
});

Deno.test("a lock of a process that is gone is taken over; one of another host never", async () => {
  const { dir } = await workspace();
  const set = outputSet(dir, ["a.txt"]);
  const first = await lockOutputs(set);
  const lock = first.path;
  await first.release();
  // A process of this host that has ended: its pid is free (until reused).
  const ended = new Deno.Command("true").spawn();
  await ended.status;
  const holder = (host: string, pid: number) =>
    JSON.stringify({ pid, host, since: "2026-01-01T00:00:00.000Z", nonce: "x" });
  Deno.writeTextFileSync(lock, holder(hostname(), ended.pid));
  const taken = await lockOutputs(set);
  assert.match(Deno.readTextFileSync(lock), new RegExp(`"pid":${Deno.pid}\\b`));
  await taken.release();
  assert.ok(!existsSync(lock), "released");
  Deno.writeTextFileSync(lock, holder("another-host", ended.pid));
  await assert.rejects(lockOutputs(set), (error) => {
    assert.ok(error instanceof ConvertError && error.code === "OUTPUT_LOCKED", String(error));
    assert.equal(error.file, lock);
    assert.match(error.message, /pid \d+ on another-host/);
    return true;
  });
  assert.equal(Deno.readTextFileSync(lock), holder("another-host", ended.pid));
});
