/**
 * File access for Deno and Node (through `node:fs`, which both provide): reading inputs with
 * typed errors (each noted, see src/io/inputs.ts, so that no output replaces it), and writing a
 * set of outputs all-or-nothing: refused if it would replace an input or something that is not
 * a regular file, under a lock (src/io/output_lock.ts), through short temporary files renamed
 * into place, undone on failure and on SIGINT/SIGTERM (src/io/interrupt.ts). Browsers and edge
 * functions use the in-memory API and never load this module.
 *
 * @module
 */

import {
  type FileHandle,
  lstat,
  mkdir,
  open,
  realpath,
  rename,
  rm,
  rmdir,
  stat,
  writeFile,
} from "node:fs/promises";
import { type BigIntStats, renameSync, rmSync, type Stats } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { ConvertError } from "../errors.ts";
import { noteInput, refuseInputs } from "./inputs.ts";
import { undoOnInterrupt } from "./interrupt.ts";
import {
  lockOutputs,
  type OutputLock,
  outputSet,
  removeStaleTemporaries,
  sideName,
  sideTag,
} from "./output_lock.ts";

export { readingInputs } from "./inputs.ts";

/**
 * Reads a whole input file; a missing or unreadable file is a {@linkcode ConvertError}. Inside
 * {@linkcode readingInputs} the file is noted as an input, which no output may replace.
 */
export async function readInput(path: string): Promise<Uint8Array> {
  const { handle } = await openInput(path);
  try {
    const bytes = await handle.readFile();
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  } catch (error) {
    throw inputError(path, error);
  } finally {
    await handle.close().catch(() => {});
  }
}

/** An input file opened for reading, with what `stat` said of it when it was opened. */
export interface OpenInput {
  /** The open file; the caller closes it. */
  handle: FileHandle;
  /** Its size and times when opened. */
  stat: BigIntStats;
}

/**
 * Opens an input file for reading, as {@linkcode readInput} does (noted as an input; a missing
 * file, a directory or an unreadable file is a {@linkcode ConvertError}).
 */
export async function openInput(path: string): Promise<OpenInput> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, "r");
    const file = await handle.stat({ bigint: true });
    if (file.isDirectory()) throw Object.assign(new Error(), { code: "EISDIR" });
    noteInput(path, file);
    return { handle, stat: file };
  } catch (error) {
    await handle?.close().catch(() => {});
    throw inputError(path, error);
  }
}

/** Reads a text input file as UTF-8 (noted as {@linkcode readInput} notes it). */
export async function readInputText(path: string): Promise<string> {
  return new TextDecoder().decode(await readInput(path));
}

/** The ConvertError for an input file that cannot be opened or read. */
export function inputError(path: string, error: unknown): ConvertError {
  const code = (error as { code?: string }).code;
  if (code === "ENOENT") {
    return new ConvertError("INPUT_NOT_FOUND", "no such file", { file: path });
  }
  const reason = code === "EISDIR" ? "it is a directory" : String((error as Error).message);
  return new ConvertError("INPUT_UNREADABLE", `cannot read: ${reason}`, { file: path });
}

/** One file to write: its name inside the output directory and its content. */
export interface OutputFile {
  /** File name (no directory). */
  name: string;
  /**
   * Content: text is written as UTF-8; pieces (e.g. `caffemodelPieces`) are written in order as
   * they come, each while the next is made, so a piece must stay valid until the piece after
   * the next one is asked for.
   */
  content: Uint8Array | string | Iterable<Uint8Array>;
}

/** What {@linkcode writeAllOrNothing} did. */
export interface WriteResult {
  /** Absolute paths written, in the order given. */
  paths: string[];
  /** The subset of `paths` that existed before and were replaced. */
  overwritten: string[];
}

/** Options of {@linkcode writeAllOrNothing}. */
export interface WriteOptions {
  /**
   * Called once every output is written to its temporary file and before any is moved into
   * place; if it throws (or its promise rejects), nothing is committed and the error passes.
   */
  beforeCommit?: () => void | Promise<void>;
}

/**
 * Where an output's content goes: the output path itself, or for a symbolic link to a regular
 * file, the file it points to (the link stays a link).
 */
interface Destination {
  /** The output path named. */
  target: string;
  /** The file replaced or created. */
  path: string;
  /** Whether `path` exists (and is a regular file). */
  exists: boolean;
}

/**
 * Refuses, before anything is written, outputs at `targets` that would replace an input (one
 * read inside `readingInputs`, or one of `inputs`; by identity, so links count) or something
 * that is not a regular file; resolves to where each output goes.
 */
export async function refuseOutputPaths(
  targets: string[],
  inputs: string[],
): Promise<Destination[]> {
  await refuseInputs(targets, inputs);
  const destinations: Destination[] = [];
  for (const target of targets) destinations.push(await destination(target));
  return destinations;
}

/**
 * Writes every file into `dir` or none: the directory is created if missing, each file goes to
 * a temporary file first, and only when all are written are they moved into place (the files they
 * replace are set aside first). If anything fails, the files set aside are put back and the
 * temporaries and directories made here are removed before the (typed) error is thrown.
 *
 * - An output that would replace an input (read through {@linkcode readInput} or
 *   {@linkcode openInput} inside `readingInputs`; same device and inode, so links count) is refused
 *   before anything is written, as is an existing output that is not a regular file (a
 *   directory, FIFO, device, socket, or a link to one of those or to nothing). A symbolic link
 *   to a regular file is written through: the file it points to is replaced, the link stays.
 * - Two runs writing the same set of file names into `dir` exclude each other by a lock file:
 *   the second one fails with `OUTPUT_LOCKED` (a lock whose process is gone is taken over).
 * - Temporary names are short (under 64 bytes), whatever the final names' length. Temporaries of
 *   this set left by a process of this host that is gone are removed; on SIGINT or SIGTERM this
 *   run's own are removed and the files set aside put back before the process ends.
 */
export async function writeAllOrNothing(
  dir: string,
  files: OutputFile[],
  options: WriteOptions = {},
): Promise<WriteResult> {
  const targets = files.map((file) => resolve(dir, file.name));
  if (new Set(targets).size !== targets.length) {
    throw new Error(`two outputs share one name: ${files.map((file) => file.name).join(", ")}`);
  }
  const planned = await refuseOutputPaths(targets, []);
  let createdDir: string | undefined;
  try {
    createdDir = await mkdir(dir, { recursive: true });
  } catch (error) {
    throw outputError(dir, "cannot create the output directory", error);
  }
  const set = outputSet(resolve(dir), files.map((file) => file.name));
  const tag = sideTag();
  const side = (path: string, i: number, ending: "tmp" | "old") =>
    join(dirname(path), sideName(set, tag, i, ending));
  const temporaries = planned.map(({ path }, i) => side(path, i, "tmp"));
  const commit: Commit = { setAside: new Map(), placed: new Set(), temporaries };
  let lock: OutputLock | undefined;
  const stopUndoing = undoOnInterrupt(() => {
    undoSync(commit);
    lock?.releaseSync();
  });
  let staleSetAside: string[] = [];
  try {
    lock = await lockOutputs(set);
    staleSetAside = await removeStaleTemporaries(set);
    for (const [i, file] of files.entries()) {
      await writeContent(temporaries[i], file.content, (error) => {
        throw outputError(dir, `cannot write ${file.name}`, error);
      });
    }
    await options.beforeCommit?.();
    // Looked at again now: the directory may have changed while the files were being written.
    for (const [i, { target, path }] of planned.entries()) {
      const now = await destination(target);
      if (now.path !== path) {
        throw new ConvertError(
          "OUTPUT_DIR",
          `the output ${basename(target)} changed while it was being written`,
          { file: target },
        );
      }
      if (!now.exists) continue;
      const aside = side(path, i, "old");
      await rename(path, aside).catch((error) => {
        throw outputError(dir, `cannot set aside the existing ${basename(target)}`, error);
      });
      commit.setAside.set(path, aside);
    }
    for (const [i, { target, path }] of planned.entries()) {
      // Noted first: if a signal comes while the rename runs, the undo removes it.
      commit.placed.add(path);
      await rename(temporaries[i], path).catch((error) => {
        commit.placed.delete(path);
        throw outputError(dir, `cannot move ${basename(target)} into place`, error);
      });
    }
  } catch (error) {
    const notes = await undo(commit);
    stopUndoing();
    await lock?.release();
    if (createdDir !== undefined) await removeEmptyDirs(dir, createdDir);
    if (!(error instanceof ConvertError) || notes.length === 0) throw error;
    throw new ConvertError(error.code, `${error.message}; ${notes.join("; ")}`, error.place());
  }
  stopUndoing();
  await lock.release();
  // Best effort: the outputs are all in place, an old copy that stays behind changes nothing.
  const old = [...commit.setAside.values(), ...staleSetAside];
  await Promise.all(old.map((aside) => succeeds(rm(aside, { force: true }))));
  return {
    paths: targets,
    overwritten: planned.filter((_, i) => commit.setAside.has(planned[i].path)).map((d) =>
      d.target
    ),
  };
}

/** What a write has done to the directory so far, for undoing it. */
interface Commit {
  /** Existing files moved aside: path to its set-aside name. */
  setAside: Map<string, string>;
  /** Paths a new file was (or is being) moved to. */
  placed: Set<string>;
  /** The temporary files. */
  temporaries: string[];
}

/**
 * Undoes a partial {@linkcode writeAllOrNothing}: puts back the files set aside, removes the
 * outputs placed and the temporaries. Never throws; resolves to notes on what could not be
 * undone.
 */
async function undo({ setAside, placed, temporaries }: Commit): Promise<string[]> {
  const notes: string[] = [];
  const restored = new Set<string>();
  for (const [path, aside] of setAside) {
    // Moving the old file back also replaces the new one if it was placed.
    if (await succeeds(rename(aside, path))) restored.add(path);
    else notes.push(`the previous ${basename(path)} is kept as ${aside}`);
  }
  for (const path of placed) {
    if (!restored.has(path) && !await succeeds(rm(path, { force: true }))) {
      notes.push(`the new ${basename(path)} could not be removed`);
    }
  }
  await Promise.all(temporaries.map((path) => succeeds(rm(path, { force: true }))));
  return notes;
}

/** {@linkcode undo}, synchronously and silently, for a signal handler. */
function undoSync({ setAside, placed, temporaries }: Commit): void {
  const attempt = (action: () => void) => {
    try {
      action();
      return true;
    } catch {
      return false;
    }
  };
  const restored = new Set<string>();
  for (const [path, aside] of setAside) {
    if (attempt(() => renameSync(aside, path))) restored.add(path);
  }
  for (const path of placed) {
    if (!restored.has(path)) attempt(() => rmSync(path, { force: true }));
  }
  for (const path of temporaries) attempt(() => rmSync(path, { force: true }));
}

/** Removes `dir` and its parents up to `createdDir` (the first one made), while empty. */
async function removeEmptyDirs(dir: string, createdDir: string): Promise<void> {
  const last = resolve(createdDir);
  for (let path = resolve(dir); await succeeds(rmdir(path)); path = dirname(path)) {
    if (path === last || path === dirname(path)) return;
  }
}

/** Whether `operation` succeeded (its failure swallowed). */
function succeeds(operation: Promise<unknown>): Promise<boolean> {
  return operation.then(() => true, () => false);
}

/** What kind of thing a `stat` found, for messages. */
function kind(file: Stats): string {
  if (file.isDirectory()) return "a directory";
  if (file.isFIFO()) return "a FIFO (named pipe)";
  if (file.isCharacterDevice()) return "a character device";
  if (file.isBlockDevice()) return "a block device";
  if (file.isSocket()) return "a socket";
  return "not a regular file";
}

/**
 * Where the output `target` goes (see {@linkcode Destination}); an existing directory is
 * `OUTPUT_DIR`, anything else that is not a regular file (or a link to one) is
 * `OUTPUT_NOT_A_FILE`, and a path that cannot be looked at is `OUTPUT_DIR`.
 */
async function destination(target: string): Promise<Destination> {
  const refuse = (what: string, code: "OUTPUT_DIR" | "OUTPUT_NOT_A_FILE" = "OUTPUT_NOT_A_FILE") =>
    new ConvertError(
      code,
      `the output path is ${what}; only a regular file is replaced (remove it or choose another ` +
        `path)`,
      { file: target },
    );
  let file: Stats;
  try {
    file = await lstat(target);
  } catch (error) {
    const code = (error as { code?: string }).code;
    // Missing, or under a path that is not a directory (refused when the directory is made).
    if (code === "ENOENT" || code === "ENOTDIR") return { target, path: target, exists: false };
    throw outputError(dirname(target), `cannot look at ${basename(target)}`, error);
  }
  if (file.isFile()) return { target, path: target, exists: true };
  if (file.isDirectory()) throw refuse("a directory", "OUTPUT_DIR");
  if (!file.isSymbolicLink()) throw refuse(kind(file));
  let linked: Stats;
  try {
    linked = await stat(target);
  } catch {
    throw refuse("a symbolic link to nothing (or a loop)");
  }
  if (linked.isDirectory()) throw refuse("a symbolic link to a directory", "OUTPUT_DIR");
  if (!linked.isFile()) throw refuse(`a symbolic link to ${kind(linked)}`);
  return { target, path: await realpath(target), exists: true };
}

/** OUTPUT_DIR for a file system failure while writing into `dir`. */
function outputError(dir: string, what: string, error: unknown): ConvertError {
  const reason = error instanceof Error ? error.message : String(error);
  return new ConvertError("OUTPUT_DIR", `${what}: ${reason}`, { file: dir });
}

/**
 * Writes one file's content to `path`. Pieces are written in order, each while the producer
 * makes the next one. File system failures (closing included) go to `fail`, which throws; a
 * producer's own errors pass.
 */
async function writeContent(
  path: string,
  content: OutputFile["content"],
  fail: (error: unknown) => never,
): Promise<void> {
  if (typeof content === "string" || content instanceof Uint8Array) {
    await writeFile(path, content, { flag: "wx" }).catch(fail);
    return;
  }
  const file = await openForPieces(path).catch(fail);
  let pending: Promise<void> = Promise.resolve();
  try {
    for (const piece of content) {
      await pending;
      pending = file.write(piece).catch(fail);
    }
    await pending;
  } catch (error) {
    await pending.catch(() => {});
    await file.close().catch(() => {});
    throw error;
  }
  await file.close().catch(fail);
}

/** A file being written piece by piece, in order. */
interface PieceFile {
  /** Writes all of `bytes` after what was written before. */
  write(bytes: Uint8Array): Promise<void>;
  /** Closes the file. */
  close(): Promise<void>;
}

/** The part of Deno's own file API used here (typed locally: this module also runs in Node). */
interface DenoFiles {
  open(
    path: string,
    options: { write: true; createNew: true },
  ): Promise<{ write(bytes: Uint8Array): Promise<number>; close(): void }>;
}

/**
 * Opens `path` for writing pieces. Deno's own file API writes on another thread while the next
 * piece is made (its `node:fs` file handles do not), so Deno uses it; Node uses `node:fs`.
 */
async function openForPieces(path: string): Promise<PieceFile> {
  const deno = (globalThis as { Deno?: DenoFiles }).Deno;
  if (deno !== undefined) {
    const file = await deno.open(path, { write: true, createNew: true });
    return {
      async write(bytes) {
        for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
      },
      // A promise that rejects when the close fails (Deno's close throws).
      close: () => new Promise((done) => done(file.close())),
    };
  }
  const handle = await open(path, "wx");
  return {
    async write(bytes) {
      for (let done = 0; done < bytes.length;) {
        done += (await handle.write(bytes, done, bytes.length - done)).bytesWritten;
      }
    },
    close: () => handle.close(),
  };
}
