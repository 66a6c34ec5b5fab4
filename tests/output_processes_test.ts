// Real processes writing one save path: a second conversion while the first one writes fails
// with OUTPUT_LOCKED and never mixes its files in; SIGINT and SIGTERM in Deno and in Node (the
// library bundled for Node by esbuild, as the npm package is) leave the earlier outputs byte for
// byte and no temporary or lock behind, exiting 130/143; a process killed outright (SIGKILL)
// leaves temporaries and its lock, which the next run at the same save path removes.
//
// The holder script converts with an onProgress that, at the write stage (every output written
// to its temporary, nothing moved into place yet), prints "holding" and waits for a go file.

import assert from "node:assert/strict";
import { join } from "node:path";
import * as esbuild from "esbuild";
import { npmSpecifiers } from "../scripts/npm_specifiers.ts";
import { convert } from "../core.ts";
import { writeCaffemodel } from "../src/caffe/caffemodel_write.ts";
import { printPrototxt } from "../src/caffe/prototxt.ts";
import { outputNames } from "../src/output_names.ts";
import { conv, net, random, recordText } from "./_builders.ts";
import { repoRoot } from "./_runtime_fixture.ts";

const HOLDER = `import { existsSync } from "node:fs";
import process from "node:process";
import { convertModel } from ${JSON.stringify(`${repoRoot}mod.ts`)};
const [modelFile, weightsFile, recordFile, savePath, go] = process.argv.slice(2);
await convertModel({
  modelFile, weightsFile, recordFile, savePath,
  onProgress: async (stage) => {
    if (stage !== "write") return;
    process.stdout.write("holding\\n");
    while (!existsSync(go)) await new Promise((done) => setTimeout(done, 20));
  },
});
process.stdout.write("done\\n");
`;

/** The workspaces made, removed when the tests end. */
const made: string[] = [];
globalThis.addEventListener("unload", () => {
  for (const dir of made) Deno.removeSync(dir, { recursive: true });
});

/** A temp dir with a small model, its weights, two records and the holder script. */
async function workspace() {
  const dir = await Deno.makeTempDir({ prefix: "caffe-quant-processes-" });
  made.push(dir);
  const next = random(5);
  const model = net("data", [1, 8, 6, 6], [
    conv("conv1", "data", "conv1", { numOutput: 16, channelsIn: 8, next }),
  ]);
  const inputs = join(dir, "inputs");
  await Deno.mkdir(inputs);
  const files = {
    modelFile: join(inputs, "model.prototxt"),
    weightsFile: join(inputs, "weights.caffemodel"),
    recordA: join(inputs, "a.txt"),
    recordB: join(inputs, "b.txt"),
  };
  await Deno.writeTextFile(files.modelFile, printPrototxt(model));
  await Deno.writeFile(files.weightsFile, writeCaffemodel(model));
  await Deno.writeTextFile(
    files.recordA,
    recordText({ conv1: "scale_d: 0.02 offset_d: 0 scale_w: 0.004 offset_w: 0" }),
  );
  await Deno.writeTextFile(
    files.recordB,
    recordText({ conv1: "scale_d: 0.03 offset_d: 5 scale_w: 0.005 offset_w: 0" }),
  );
  const holder = join(inputs, "holder.ts");
  await Deno.writeTextFile(holder, HOLDER);
  const out = join(dir, "out");
  return { dir, files, holder, out, savePath: join(out, "m"), go: join(dir, "go") };
}

type Workspace = Awaited<ReturnType<typeof workspace>>;

/** The five outputs of `record` as the in-memory API makes them, by file name. */
async function expectedOutputs(ws: Workspace, record: string): Promise<Map<string, string>> {
  const { files } = await convert({
    model: await Deno.readTextFile(ws.files.modelFile),
    weights: await Deno.readFile(ws.files.weightsFile),
    record: await Deno.readTextFile(record),
  });
  const { names } = outputNames(ws.savePath);
  const result = new Map<string, string>();
  for (const key of Object.keys(names) as (keyof typeof names)[]) {
    const content = files[key];
    const bytes = typeof content === "string" ? new TextEncoder().encode(content) : content;
    result.set(names[key], await digest(bytes));
  }
  return result;
}

async function digest(bytes: Uint8Array): Promise<string> {
  const hash = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(hash)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Every entry of the output directory with its content's SHA-256, by name. */
async function outputDir(ws: Workspace): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  for (const { name } of [...Deno.readDirSync(ws.out)].sort((a, b) => a.name < b.name ? -1 : 1)) {
    result.set(name, await digest(await Deno.readFile(join(ws.out, name))));
  }
  return result;
}

/** The holder running in `runtime`, once it says it holds (outputs written, none in place). */
async function startHolder(ws: Workspace, runtime: "deno" | "node", record: string) {
  const args = [ws.files.modelFile, ws.files.weightsFile, record, ws.savePath, ws.go];
  const command = runtime === "deno"
    ? new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", ws.holder, ...args],
      stdout: "piped",
      stderr: "piped",
    })
    : new Deno.Command("node", {
      args: [await nodeHolder(ws), ...args],
      stdout: "piped",
      stderr: "piped",
    });
  const child = command.spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("holding\n")) {
    const { value, done } = await reader.read();
    if (done) {
      const status = await child.status;
      const stderr = await new Response(child.stderr).text();
      assert.fail(`the holder ended (${status.code}) before holding:\n${seen}\n${stderr}`);
    }
    seen += value;
  }
  return {
    child,
    /** The rest of its standard output, once it ends. */
    async rest() {
      let rest = seen;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return rest;
        rest += value;
      }
    },
  };
}

/** The holder bundled for Node, as scripts/bundle.ts bundles the package (npm code inside). */
async function nodeHolder(ws: Workspace): Promise<string> {
  const outfile = join(ws.dir, "holder.mjs");
  try {
    await esbuild.build({
      entryPoints: [ws.holder],
      outfile,
      bundle: true,
      format: "esm",
      platform: "node",
      target: "node20",
      logLevel: "warning",
      plugins: [npmSpecifiers(repoRoot)],
    });
  } finally {
    await esbuild.stop();
  }
  return outfile;
}

/** Runs the command line in a subprocess. */
async function cli(...args: string[]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(repoRoot, "src/cli.ts"), ...args],
    env: { NO_COLOR: "1" },
  }).output();
  const decoder = new TextDecoder();
  return { code: output.code, stderr: decoder.decode(output.stderr) };
}

/** The caffe-quant side files (temporaries, lock) in the output directory. */
function sideFiles(ws: Workspace): string[] {
  return [...Deno.readDirSync(ws.out)].map((e) => e.name).filter((n) => n.startsWith("."));
}

Deno.test("a second conversion to a save path being written fails with OUTPUT_LOCKED, no mix", async () => {
  const ws = await workspace();
  const holder = await startHolder(ws, "deno", ws.files.recordA);
  assert.ok(sideFiles(ws).length > 0, "the holder's temporaries are there");
  const second = await cli(
    "convert",
    ws.files.modelFile,
    ws.files.weightsFile,
    ws.files.recordB,
    ws.savePath,
  );
  assert.equal(second.code, 2, second.stderr);
  assert.match(
    second.stderr,
    new RegExp(`^error\\[OUTPUT_LOCKED\\] ${ws.out}/\\S+\\.lock: .*pid ${holder.child.pid}`, "m"),
  );
  await Deno.writeTextFile(ws.go, "");
  assert.equal((await holder.child.status).code, 0);
  assert.match(await holder.rest(), /done/);
  // The first run's complete set, and nothing else.
  assert.deepEqual(await outputDir(ws), await expectedOutputs(ws, ws.files.recordA));
  // Once it is done, the second run may write: its complete set.
  const again = await cli(
    "convert",
    ws.files.modelFile,
    ws.files.weightsFile,
    ws.files.recordB,
    ws.savePath,
  );
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(await outputDir(ws), await expectedOutputs(ws, ws.files.recordB));
});

for (const runtime of ["deno", "node"] as const) {
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    Deno.test(`${runtime}: ${signal} while writing removes the temporaries and the lock, exits ${code}`, async () => {
      const ws = await workspace();
      const earlier = await cli(
        "convert",
        ws.files.modelFile,
        ws.files.weightsFile,
        ws.files.recordA,
        ws.savePath,
      );
      assert.equal(earlier.code, 0, earlier.stderr);
      const before = await outputDir(ws);
      const holder = await startHolder(ws, runtime, ws.files.recordB);
      assert.ok(sideFiles(ws).length > 0, "the holder's temporaries are there");
      holder.child.kill(signal);
      const status = await holder.child.status;
      assert.equal(status.code, code);
      assert.equal(status.signal, null, "it exited by itself, after cleaning up");
      assert.deepEqual(await outputDir(ws), before);
    });
  }
}

Deno.test("a run killed outright leaves temporaries and its lock; the next run removes them", async () => {
  const ws = await workspace();
  const holder = await startHolder(ws, "deno", ws.files.recordA);
  holder.child.kill("SIGKILL");
  await holder.child.status;
  const left = sideFiles(ws);
  assert.ok(left.some((name) => name.endsWith(".lock")), left.join(" "));
  assert.ok(left.length > 1, left.join(" "));
  const next = await cli(
    "convert",
    ws.files.modelFile,
    ws.files.weightsFile,
    ws.files.recordB,
    ws.savePath,
  );
  assert.equal(next.code, 0, next.stderr);
  assert.deepEqual(await outputDir(ws), await expectedOutputs(ws, ws.files.recordB));
});

Deno.test("SIGTERM to `caffe-quant convert` while it writes a 38 MB model leaves no temporary", async () => {
  const ws = await workspace();
  const next = random(3);
  const big = net("data", [1, 1024, 4, 4], [
    conv("conv1", "data", "conv1", { numOutput: 1024, channelsIn: 1024, next }),
  ]);
  await Deno.writeTextFile(ws.files.modelFile, printPrototxt(big));
  await Deno.writeFile(ws.files.weightsFile, writeCaffemodel(big));
  await Deno.mkdir(ws.out);
  // The signal may land after the outputs were committed (a loaded machine): then the run is
  // complete, not interrupted, and it is tried again; three such runs in a row fail the test.
  for (let attempt = 1;; attempt++) {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        join(repoRoot, "src/cli.ts"),
        "convert",
        ws.files.modelFile,
        ws.files.weightsFile,
        ws.files.recordA,
        ws.savePath,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    // Signalled as soon as a temporary shows up: the write stage has begun.
    let seen = false;
    const deadline = Date.now() + 60_000;
    while (!seen && Date.now() < deadline) {
      seen = [...Deno.readDirSync(ws.out)].some((entry) => entry.name.endsWith(".tmp"));
      if (!seen) await new Promise((done) => setTimeout(done, 2));
    }
    if (seen) child.kill("SIGTERM");
    const status = await child.status;
    assert.ok(seen, `no temporary seen (exit ${status.code}): the write was too quick to catch`);
    const left = [...Deno.readDirSync(ws.out)].map((entry) => entry.name).sort();
    const committed = left.length === 5 && left.every((name) => !name.startsWith("."));
    if (committed && attempt < 3) {
      for (const name of left) await Deno.remove(join(ws.out, name));
      continue;
    }
    assert.equal(status.code, 143);
    assert.deepEqual(left, []);
    break;
  }
});
