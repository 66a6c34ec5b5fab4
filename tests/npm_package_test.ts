/**
 * The npm package: `npm pack` (which bundles first) gives a tarball with dist/ and no runtime
 * dependencies; installed offline into an empty project it works from Node as a library
 * (`import { convertModel } from "caffe-quant"`, and `caffe-quant/core`), as the `caffe-quant`
 * bin, and type-checks for a TypeScript user.
 */

import assert from "node:assert/strict";
import { readNpy, writeNpy } from "../src/io/npy.ts";
import {
  assertSuccess,
  hashOutputs,
  haveLenet,
  lenetModel,
  lenetWeights,
  readOutputs,
  referenceOutputs,
  repoRoot,
  runCommand,
  writeLenetRecord,
} from "./_runtime_fixture.ts";

/** What packAndInstall made: the consumer project and the record it converts with. */
interface Installed {
  /** The consumer project, with caffe-quant in its node_modules. */
  project: string;
  /** The record file for lenet. */
  record: string;
}

async function packAndInstall(dir: string): Promise<{ installed: Installed; files: string[] }> {
  const pack = await runCommand("npm", ["pack", "--json", "--pack-destination", dir], {
    cwd: repoRoot,
    timeoutMs: 300_000,
  });
  assertSuccess(pack, "npm pack");
  const [{ filename, files }] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf("[")));
  const project = `${dir}/project`;
  await Deno.mkdir(project);
  await Deno.writeTextFile(
    `${project}/package.json`,
    JSON.stringify({ name: "consumer", private: true, type: "module" }),
  );
  const install = await runCommand("npm", [
    "install",
    "--offline",
    "--no-audit",
    "--no-fund",
    `${dir}/${filename}`,
  ], { cwd: project });
  assertSuccess(install, "npm install of the tarball");
  return {
    installed: { project, record: await writeLenetRecord(dir) },
    files: files.map((file: { path: string }) => file.path),
  };
}

/** The packed and installed package, made once for all the tests of this file. */
interface Installation extends Installed {
  /** The temporary folder holding the tarball, the project and the outputs. */
  dir: string;
  /** The paths `npm pack` put in the tarball. */
  files: string[];
  /** SHA-256 of the five files a conversion of lenet must write. */
  expected: Awaited<ReturnType<typeof hashOutputs>>;
}

let installation: Promise<Installation> | undefined;

/** Packs and installs the package on first use; the folder is removed when the tests end. */
function installed(): Promise<Installation> {
  installation ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "caffe-quant-npm-" });
    globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
    const { installed, files } = await packAndInstall(dir);
    return { ...installed, dir, files, expected: await hashOutputs(await referenceOutputs()) };
  })();
  return installation;
}

Deno.test({
  name: "npm package: " + "the tarball holds dist/ and the package files, not the sources",
  ignore: !haveLenet,
  async fn() {
    const { project, files } = await installed();
    for (const file of ["dist/mod.js", "dist/core.js", "dist/cli.js", "package.json"]) {
      assert.ok(files.includes(file), `${file} is missing from ${files.join(", ")}`);
    }
    assert.ok(files.includes("dist/types/mod.d.ts") && files.includes("dist/types/core.d.ts"));
    for (const optional of ["README.md", "LICENSE"]) {
      const inRepo = await Deno.stat(`${repoRoot}${optional}`).then(() => true, () => false);
      assert.equal(files.includes(optional), inRepo, `${optional} packed iff it exists`);
    }
    for (const page of ["docs/README.md", "docs/errors.md", "docs/calibration.md"]) {
      assert.ok(files.includes(page), `${page} is missing: the help texts point to it`);
    }
    const stray = files.filter((f) =>
      !f.startsWith("dist/") && !/^docs\/[\w.-]+\.md$/.test(f) && !/^[\w.]+$/.test(f)
    );
    assert.deepEqual(stray, []);
    assert.ok(!files.some((f) => f.endsWith(".ts") && !f.endsWith(".d.ts")), "no sources");
    const manifest = JSON.parse(
      await Deno.readTextFile(`${project}/node_modules/caffe-quant/package.json`),
    );
    assert.deepEqual(manifest.dependencies ?? {}, {}, "the image decoders are bundled in");
  },
});

Deno.test({
  name: "npm package: " +
    "dist/core.js and the chunks it imports (now or on first use) use no Node module",
  ignore: !haveLenet,
  async fn() {
    const { project } = await installed();
    const dist = `${project}/node_modules/caffe-quant/dist/`;
    const seen = new Set<string>();
    const visit = async (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const code = await Deno.readTextFile(new URL(file, `file://${dist}`));
      assert.doesNotMatch(code, /["']node:/, `${file} names a node: module`);
      const imports = [
        ...code.matchAll(/^\s*(?:import|export)\s[^;]*?from\s*["']([^"']+)["']/gm),
        ...code.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
      ];
      for (const [, specifier] of imports) {
        assert.match(specifier, /^\.\.?\//, `${file} imports ${specifier}`);
        await visit(new URL(specifier, `file://${dist}${file}`).pathname.slice(dist.length));
      }
    };
    await visit("core.js");
    assert.ok(seen.size > 1, "core.js imports its chunk");
    // The WebAssembly modules' texts are chunks of their own, imported on first use.
    assert.ok([...seen].some((file) => /engine_relaxed\.generated-\w+\.js$/.test(file)));
  },
});

Deno.test({
  name: "npm package: " + "Node imports the library and converts lenet",
  ignore: !haveLenet,
  async fn() {
    const { dir, project, record, expected } = await installed();
    await Deno.writeTextFile(
      `${project}/convert.mjs`,
      `import { convertModel, ConvertError } from "caffe-quant";
import { convert } from "caffe-quant/core";
import { readFile } from "node:fs/promises";
const [model, weights, record, savePath] = process.argv.slice(2);
const report = await convertModel({ modelFile: model, weightsFile: weights, recordFile: record, savePath });
const inMemory = await convert({
  model: await readFile(model, "utf8"), weights: await readFile(weights), record: await readFile(record, "utf8"),
});
try {
  await convert({ model: "layer {", weights: new Uint8Array(), record: "" });
} catch (error) {
  console.log(JSON.stringify({ errorCode: error instanceof ConvertError ? error.code : String(error) }));
}
console.log(JSON.stringify({ quantized: report.quantizedLayers, core: inMemory.report.quantizedLayers }));
`,
    );
    const result = await runCommand("node", [
      "convert.mjs",
      lenetModel,
      lenetWeights,
      record,
      `${dir}/node-out/lenet`,
    ], { cwd: project });
    assertSuccess(result, "node convert.mjs");
    const [errorLine, reportLine] = result.stdout.trim().split("\n");
    assert.deepEqual(JSON.parse(errorLine), { errorCode: "TEXT_SYNTAX" });
    assert.deepEqual(JSON.parse(reportLine), {
      quantized: ["conv1", "conv2", "ip1", "ip2"],
      core: ["conv1", "conv2", "ip1", "ip2"],
    });
    assert.deepEqual(
      await hashOutputs(await readOutputs(`${dir}/node-out`, "lenet")),
      expected,
    );
  },
});

Deno.test({
  name: "npm package: " + "npx caffe-quant inspect and convert",
  ignore: !haveLenet,
  async fn() {
    const { dir, project, record, expected } = await installed();
    const inspect = await runCommand("npx", ["--no", "caffe-quant", "inspect", lenetModel], {
      cwd: project,
    });
    assertSuccess(inspect, "npx caffe-quant inspect");
    assert.match(inspect.stdout, /conv1\s+Convolution\s+data -> conv1/);

    const convert = await runCommand("npx", [
      "--no",
      "caffe-quant",
      "convert",
      lenetModel,
      lenetWeights,
      record,
      `${dir}/bin-out/lenet`,
    ], { cwd: project });
    assertSuccess(convert, "npx caffe-quant convert");
    assert.deepEqual(await hashOutputs(await readOutputs(`${dir}/bin-out`, "lenet")), expected);
  },
});

Deno.test({
  name: "npm package: " + "Node runs samples on node:worker_threads workers, same bytes",
  ignore: !haveLenet,
  async fn() {
    const { dir, project } = await installed();
    await Deno.writeTextFile(
      `${project}/pool.mjs`,
      `import { EnginePool, loadNet } from "caffe-quant";
import { readFile } from "node:fs/promises";
const [model, weights] = process.argv.slice(2);
const net = loadNet(await readFile(model, "utf8"), await readFile(weights));
const pool = await EnginePool.open([net], { threads: 2 });
const samples = [1, 2, 3].map((seed) => new Map([["data", {
  shape: [1, 1, 28, 28], data: Float32Array.from({ length: 784 }, (_, i) => ((i * seed) % 255) / 255),
}]]));
const threads = pool.threads;
const prob = [];
for await (const [result] of pool.runAll(samples)) prob.push([...result.outputs.get("prob").data]);
pool.close();
console.log(JSON.stringify({ threads, prob }));
`,
    );
    const pool = await runCommand("node", ["pool.mjs", lenetModel, lenetWeights], {
      cwd: project,
    });
    assertSuccess(pool, "node pool.mjs");
    const { threads, prob } = JSON.parse(pool.stdout);
    assert.equal(threads, 2, "two workers started from the installed package");
    const npy = `${dir}/digits.npy`;
    const values = [1, 2, 3].flatMap((seed) =>
      Array.from({ length: 784 }, (_, i) => ((i * seed) % 255) / 255)
    );
    await Deno.writeFile(
      npy,
      writeNpy({ shape: [3, 1, 28, 28], data: Float32Array.from(values) }),
    );
    const outputs: Uint8Array[] = [];
    for (const threads of ["1", "2"]) {
      const run = await runCommand("npx", [
        "--no",
        "caffe-quant",
        "run",
        lenetModel,
        lenetWeights,
        "--data",
        npy,
        "--threads",
        threads,
        "--out",
        `${dir}/run${threads}`,
      ], { cwd: project });
      assertSuccess(run, `npx caffe-quant run --threads ${threads}`);
      outputs.push(await Deno.readFile(`${dir}/run${threads}/output.prob.npy`));
    }
    assert.deepEqual(outputs[1], outputs[0]);
    // The bin's rows are the library's worker results, sample by sample.
    const { data } = readNpy(outputs[1]);
    assert.deepEqual([...data], prob.flat());
  },
});

Deno.test({
  name: "npm package: " + "npx caffe-quant exits 2 with error[CODE] on a bad input",
  ignore: !haveLenet,
  async fn() {
    const { dir, project, record } = await installed();
    const broken = `${dir}/broken.prototxt`;
    await Deno.writeTextFile(broken, 'name: "x"\nlayer {\n  name: "data" type: }\n');
    const result = await runCommand("npx", [
      "--no",
      "caffe-quant",
      "convert",
      broken,
      lenetWeights,
      record,
      `${dir}/bad-out/x`,
    ], { cwd: project });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^error\[TEXT_[A-Z_]+\] .*broken\.prototxt:3:\d+: /m);
    assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace for a user mistake");
    await assert.rejects(Deno.stat(`${dir}/bad-out`), Deno.errors.NotFound);
  },
});

Deno.test({
  name: "npm package: " + "the declarations type-check a TypeScript user's code",
  ignore: !haveLenet,
  async fn() {
    const { project } = await installed();
    await Deno.writeTextFile(
      `${project}/use.ts`,
      `import { ConvertError, convertModel, type ConvertModelReport } from "caffe-quant";
import { convert, type ConvertOutput } from "caffe-quant/core";
export async function run(): Promise<string[]> {
  const report: ConvertModelReport = await convertModel({
modelFile: "a.prototxt", weightsFile: "a.caffemodel", recordFile: "r.txt", savePath: "out/a",
  });
  const output: ConvertOutput = await convert({ model: "", weights: new Uint8Array(), record: "" });
  const bytes: Uint8Array = output.files.deployWeights;
  const code: string = new ConvertError("USAGE", "x").code;
  return [...report.quantizedLayers, String(bytes.length), code];
}
// @ts-expect-error: savePath is required
convertModel({ modelFile: "a", weightsFile: "b", recordFile: "c" });
`,
    );
    await Deno.writeTextFile(
      `${project}/tsconfig.json`,
      JSON.stringify({
        compilerOptions: {
          noEmit: true,
          strict: true,
          target: "es2022",
          module: "nodenext",
          moduleResolution: "nodenext",
          lib: ["es2022", "dom"],
          types: [],
          skipLibCheck: false,
        },
        files: ["use.ts"],
      }),
    );
    const tsc = await runCommand("node", [
      `${repoRoot}node_modules/typescript/bin/tsc`,
      "-p",
      "tsconfig.json",
    ], { cwd: project });
    assertSuccess(tsc, "tsc on a consumer of the package");
  },
});
