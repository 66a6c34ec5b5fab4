// Failure injection (SPEC §7-§8): an unwritable output directory, a size-limited output and a
// rename failing midway each end in a typed error naming the directory or file, leave no
// temporary and no half-written output, and keep the earlier outputs of the same save path byte
// for byte.
//
// The failures are real, made by the operating system:
// - permissions: root ignores them, so as root the conversion runs in a `deno` subprocess
//   dropped to the user nobody with `setpriv` (util-linux); otherwise directly. Either way the
//   command line is run and must print one `error[CODE] …` line, exit 2 and show no stack trace.
// - a full target: a subprocess whose file size limit (RLIMIT_FSIZE, `ulimit -f`) is below the
//   size of the outputs, with SIGXFSZ ignored so that writes fail with EFBIG.
// - renames: setting aside an earlier output owned by another user in a sticky directory (root
//   only: it needs a second user), and a temporary removed or a directory made by "another
//   process" while the outputs are written (the content producer of the last output does it).

import assert from "node:assert/strict";
import { join } from "node:path";
import { ConvertError } from "../src/errors.ts";
import { convertModel } from "../src/io/convert_model.ts";
import { type OutputFile, writeAllOrNothing } from "../src/io/files.ts";
import { outputNames } from "../src/output_names.ts";
import { conv, net, random, writeConv1ModelFiles } from "./_builders.ts";
import { type CommandResult, repoRoot, runCommand } from "./_runtime_fixture.ts";

const isRoot = Deno.uid() === 0;
const NOBODY = 65534;
/** The file size limit of the size-limited runs, in KiB (`ulimit -f` units). */
const LIMIT_KIB = 128;

/** A temp dir (readable by nobody) holding a small float model, its weights and a record. */
async function workspace() {
  const dir = await Deno.makeTempDir({ prefix: "caffe-quant-failure-" });
  await Deno.chmod(dir, 0o755);
  const next = random(7);
  // conv1's float weights (128 x 64 x 3 x 3) make a ~296 KB fake-quant caffemodel.
  const model = net("data", [1, 64, 8, 8], [
    conv("conv1", "data", "conv1", { numOutput: 128, channelsIn: 64, next }),
  ]);
  const files = await writeConv1ModelFiles(dir, model);
  return { dir, files, out: join(dir, "out"), savePath: join(dir, "out", "m") };
}

type Workspace = Awaited<ReturnType<typeof workspace>>;

/** Runs `test` in a fresh workspace, removed afterwards (permissions restored first). */
async function inWorkspace(test: (ws: Workspace) => Promise<void>): Promise<void> {
  const ws = await workspace();
  try {
    await test(ws);
  } finally {
    for await (const entry of Deno.readDir(ws.dir)) {
      if (entry.isDirectory) await Deno.chmod(join(ws.dir, entry.name), 0o755);
    }
    await Deno.remove(ws.dir, { recursive: true });
  }
}

/** A successful conversion to `savePath`: the earlier outputs a failing run must keep. */
async function earlierOutputs(ws: Workspace, savePath = ws.savePath): Promise<void> {
  await convertModel({ ...ws.files, savePath });
}

/**
 * Every entry under `dir`, sorted, with the size and SHA-256 of each file's bytes (`"directory"`
 * for a directory), so that listings taken before and after a failure compare byte for byte and
 * a difference shows readably.
 */
async function snapshot(dir: string): Promise<[string, string][]> {
  const entries: [string, string][] = [];
  for (const name of [...Deno.readDirSync(dir)].map((entry) => entry.name).sort()) {
    const path = join(dir, name);
    if (Deno.lstatSync(path).isDirectory) {
      entries.push([name, "directory"]);
      for (const [inner, content] of await snapshot(path)) {
        entries.push([`${name}/${inner}`, content]);
      }
    } else {
      entries.push([name, await digest(await Deno.readFile(path))]);
    }
  }
  return entries;
}

/** `<size> bytes, sha256 <hex>`. */
async function digest(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const hex = [...hash].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${bytes.length} bytes, sha256 ${hex}`;
}

/** The five output names of the workspace's save path. */
function names(ws: Workspace) {
  return outputNames(ws.savePath).names;
}

/**
 * Runs `caffe-quant convert` on the workspace's inputs in a subprocess, as nobody and/or with a
 * file size limit. Its Deno cache is a directory of the workspace that nobody may write.
 */
async function runConvert(
  ws: Workspace,
  savePath: string,
  how: { asNobody?: boolean; fileSizeKiB?: number },
): Promise<CommandResult> {
  const denoDir = join(ws.dir, "deno_dir");
  await Deno.mkdir(denoDir, { recursive: true });
  await Deno.chmod(denoDir, 0o777);
  const { modelFile, weightsFile, recordFile } = ws.files;
  let command = [Deno.execPath(), "run", "-A", join(repoRoot, "src/cli.ts"), "convert"];
  command.push(modelFile, weightsFile, recordFile, savePath);
  if (how.fileSizeKiB !== undefined) {
    const script = `trap "" XFSZ; ulimit -f "$1"; shift; exec "$@"`;
    command = ["bash", "-c", script, "bash", String(how.fileSizeKiB), ...command];
  }
  if (how.asNobody) {
    command = ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", ...command];
  }
  return await runCommand(command[0], command.slice(1), {
    cwd: repoRoot,
    env: { DENO_DIR: denoDir, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    timeoutMs: 60_000,
  });
}

/**
 * The command line failed as a user mistake: exit 2, nothing on stdout, and on stderr the one
 * line `error[code] <file>: …` holding each of `mentions` (case-insensitive), no stack trace.
 */
function assertCliError(result: CommandResult, code: string, file: string, mentions: string[]) {
  const detail = `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
  assert.equal(result.code, 2, detail);
  assert.equal(result.stdout, "", detail);
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, detail);
  assert.ok(lines[0].startsWith(`error[${code}] ${file}: `), detail);
  for (const mention of mentions) {
    assert.ok(lines[0].toLowerCase().includes(mention.toLowerCase()), `${mention}\n${detail}`);
  }
}

/** `promise` rejects with a ConvertError of `code` for `file` whose message holds `mentions`. */
async function rejectsWith(
  promise: Promise<unknown>,
  code: string,
  file: string,
  mentions: string[],
) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ConvertError, String(error));
    assert.equal(error.code, code, error.message);
    assert.equal(error.file, file, error.message);
    for (const mention of mentions) assert.ok(error.message.includes(mention), error.message);
    return true;
  });
}

Deno.test(
  `an unwritable output directory is OUTPUT_DIR; the earlier outputs stay, nothing is added ` +
    `(${isRoot ? "as nobody, via setpriv" : "chmod 0555"})`,
  () =>
    inWorkspace(async (ws) => {
      await earlierOutputs(ws);
      const before = await snapshot(ws.out);
      assert.equal(before.length, 5);
      await Deno.chmod(ws.out, 0o555);
      const result = await runConvert(ws, ws.savePath, { asNobody: isRoot });
      // The first file made there is the lock file.
      assertCliError(result, "OUTPUT_DIR", ws.out, [
        "cannot create the lock file",
        "permission denied",
      ]);
      assert.deepEqual(await snapshot(ws.out), before);
    }),
);

Deno.test(
  `an output directory that cannot be made (parent unwritable) is OUTPUT_DIR, nothing made ` +
    `(${isRoot ? "as nobody, via setpriv" : "chmod 0555"})`,
  () =>
    inWorkspace(async (ws) => {
      const locked = join(ws.dir, "locked");
      await Deno.mkdir(locked);
      await Deno.chmod(locked, 0o555);
      const result = await runConvert(ws, join(locked, "new", "m"), { asNobody: isRoot });
      assertCliError(result, "OUTPUT_DIR", join(locked, "new"), [
        "cannot create the output directory",
        "permission denied",
      ]);
      assert.deepEqual(await snapshot(locked), []);
    }),
);

Deno.test(
  "outputs past the file size limit (RLIMIT_FSIZE): OUTPUT_DIR, earlier outputs intact, " +
    "no temporary left",
  () =>
    inWorkspace(async (ws) => {
      await earlierOutputs(ws);
      const before = await snapshot(ws.out);
      const size = (name: string) => Deno.statSync(join(ws.out, name)).size;
      // The first output fits and the second does not: the failure comes midway, inside a file.
      assert.ok(size(names(ws).fakeQuantModel) < LIMIT_KIB * 1024);
      assert.ok(size(names(ws).fakeQuantWeights) > LIMIT_KIB * 1024);
      const result = await runConvert(ws, ws.savePath, { fileSizeKiB: LIMIT_KIB });
      assertCliError(result, "OUTPUT_DIR", ws.out, [
        `cannot write ${names(ws).fakeQuantWeights}`,
        "file too large",
      ]);
      assert.deepEqual(await snapshot(ws.out), before);
    }),
);

Deno.test(
  "outputs past the file size limit into a new directory: the directories made are removed",
  () =>
    inWorkspace(async (ws) => {
      const fresh = join(ws.dir, "fresh");
      const result = await runConvert(ws, join(fresh, "deeper", "m"), { fileSizeKiB: LIMIT_KIB });
      assertCliError(result, "OUTPUT_DIR", join(fresh, "deeper"), ["file too large"]);
      await assert.rejects(Deno.lstat(fresh), Deno.errors.NotFound);
    }),
);

Deno.test({
  name: "a rename failing midway: setting aside an earlier output another user owns " +
    "(sticky directory, run as nobody) puts the ones set aside back" +
    (isRoot ? "" : " (root only: needs a second user)"),
  ignore: !isRoot,
  fn: () =>
    inWorkspace(async (ws) => {
      await earlierOutputs(ws);
      // nobody may replace its own files in the sticky directory, not root's: the first two
      // earlier outputs are set aside, the third (root's) cannot be.
      await Deno.chmod(ws.out, 0o1777);
      for (const name of [names(ws).fakeQuantModel, names(ws).fakeQuantWeights]) {
        await Deno.chown(join(ws.out, name), NOBODY, NOBODY);
      }
      const before = await snapshot(ws.out);
      const result = await runConvert(ws, ws.savePath, { asNobody: true });
      assertCliError(result, "OUTPUT_DIR", ws.out, [
        `cannot set aside the existing ${names(ws).deployModel}`,
        "operation not permitted",
      ]);
      assert.deepEqual(await snapshot(ws.out), before);
    }),
});

/**
 * The five outputs of the workspace's save path with new contents; the last one's content,
 * made after the other four are written, first calls `meanwhile` (another process at work).
 */
function outputsWithMeanwhile(ws: Workspace, meanwhile: () => void): OutputFile[] {
  const files: OutputFile[] = Object.values(names(ws)).map((name) => ({
    name,
    content: `new ${name}\n`,
  }));
  files[4].content = (function* () {
    meanwhile();
    yield new TextEncoder().encode("new\n");
  })();
  return files;
}

Deno.test(
  "a rename failing midway: a temporary removed while writing; the outputs already moved are " +
    "replaced by the earlier ones again",
  () =>
    inWorkspace(async (ws) => {
      await earlierOutputs(ws);
      const before = await snapshot(ws.out);
      const earlier = new Set(before.map(([name]) => name));
      const third = names(ws).deployModel;
      let removed = "";
      const files = outputsWithMeanwhile(ws, () => {
        // The temporary of the third output: the new entry whose name ends in -2.tmp.
        const entry = [...Deno.readDirSync(ws.out)]
          .find(({ name }) => !earlier.has(name) && name.endsWith("-2.tmp"));
        assert.ok(entry, "the temporary of the third output exists");
        removed = entry.name;
        Deno.removeSync(join(ws.out, removed));
      });
      await rejectsWith(writeAllOrNothing(ws.out, files), "OUTPUT_DIR", ws.out, [
        `cannot move ${third} into place`,
        "no such file",
      ]);
      assert.notEqual(removed, "");
      assert.deepEqual(await snapshot(ws.out), before);
    }),
);

Deno.test(
  "an output path that is an existing directory is refused before anything is written",
  () =>
    inWorkspace(async (ws) => {
      await earlierOutputs(ws);
      const taken = join(ws.out, names(ws).deployWeights);
      await Deno.remove(taken);
      await Deno.mkdir(taken);
      await Deno.writeTextFile(join(taken, "keep.txt"), "keep");
      const before = await snapshot(ws.out);
      await rejectsWith(convertModel({ ...ws.files, savePath: ws.savePath }), "OUTPUT_DIR", taken, [
        "directory",
      ]);
      assert.deepEqual(await snapshot(ws.out), before);
      // The same through writeAllOrNothing, into a directory it would have to make.
      const fresh = join(ws.dir, "fresh");
      await Deno.mkdir(join(fresh, "a.txt"), { recursive: true });
      await rejectsWith(
        writeAllOrNothing(fresh, [{ name: "b.txt", content: "b" }, {
          name: "a.txt",
          content: "a",
        }]),
        "OUTPUT_DIR",
        join(fresh, "a.txt"),
        ["directory"],
      );
      assert.deepEqual(await snapshot(fresh), [["a.txt", "directory"]]);
    }),
);

Deno.test(
  "a directory made at an output while writing is refused midway; the earlier outputs set " +
    "aside are put back",
  () =>
    inWorkspace(async (ws) => {
      await earlierOutputs(ws);
      const fourth = join(ws.out, names(ws).deployWeights);
      const files = outputsWithMeanwhile(ws, () => {
        Deno.removeSync(fourth);
        Deno.mkdirSync(fourth);
        Deno.writeTextFileSync(join(fourth, "keep.txt"), "keep");
      });
      const before = await snapshot(ws.out);
      await rejectsWith(writeAllOrNothing(ws.out, files), "OUTPUT_DIR", fourth, ["directory"]);
      const expected = before.filter(([name]) => name !== names(ws).deployWeights);
      expected.push([names(ws).deployWeights, "directory"]);
      const keep = await digest(new TextEncoder().encode("keep"));
      expected.push([`${names(ws).deployWeights}/keep.txt`, keep]);
      expected.sort(([a], [b]) => a < b ? -1 : 1);
      assert.deepEqual(await snapshot(ws.out), expected);
    }),
);
