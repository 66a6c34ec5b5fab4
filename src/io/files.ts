/**
 * File access for Deno and Node (through `node:fs`, which both provide): reading inputs with
 * typed errors, and writing a set of outputs all-or-nothing (temporary files, then renames).
 * Browsers and edge functions use the in-memory API and never load this module.
 *
 * @module
 */

import {
  lstat,
  mkdir,
  open,
  readFile,
  realpath,
  rename,
  rm,
  rmdir,
  writeFile,
} from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { ConvertError } from "../errors.ts";

/** Reads a whole input file; a missing or unreadable file is a {@linkcode ConvertError}. */
export async function readInput(path: string): Promise<Uint8Array> {
  try {
    const bytes = await readFile(path);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  } catch (error) {
    throw inputError(path, error);
  }
}

/** Reads a text input file as UTF-8. */
export async function readInputText(path: string): Promise<string> {
  return new TextDecoder().decode(await readInput(path));
}

function inputError(path: string, error: unknown): ConvertError {
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

/**
 * Refuses, before anything is written, outputs at `targets` that would replace one of `inputs`
 * (paths compared after resolving links) or an existing directory.
 */
export async function refuseOutputPaths(targets: string[], inputs: string[]): Promise<void> {
  const inputPaths = new Set(await Promise.all(inputs.map(canonicalPath)));
  for (const target of targets) {
    if (inputPaths.has(await canonicalPath(target))) {
      throw new ConvertError(
        "OUTPUT_OVERWRITES_INPUT",
        `the output ${basename(target)} would overwrite an input file`,
        { file: resolve(target) },
      );
    }
    await existingFile(target, dirname(target));
  }
}

/**
 * Writes every file into `dir` or none: the directory is created if missing, each file goes to
 * a temporary name in `dir` first, and only when all are written are they moved into place (the
 * files they replace are set aside first). If anything fails, the files set aside are put back
 * and the temporaries and directories made here are removed before the (typed) error is thrown.
 * An output that would replace one of `inputs` or a directory is refused before anything is
 * written.
 */
export async function writeAllOrNothing(
  dir: string,
  files: OutputFile[],
  inputs: string[],
): Promise<WriteResult> {
  const targets = files.map((file) => resolve(dir, file.name));
  await refuseOutputPaths(targets, inputs);
  let createdDir: string | undefined;
  try {
    createdDir = await mkdir(dir, { recursive: true });
  } catch (error) {
    throw outputError(dir, "cannot create the output directory", error);
  }
  // Random, so that runs writing into the same directory at once never share a temporary.
  const tag = crypto.randomUUID().slice(0, 13);
  const sideName = (target: string, i: number, ending: string) =>
    join(dirname(target), `.${basename(target)}.${tag}-${i}.${ending}`);
  const temporaries = targets.map((target, i) => sideName(target, i, "tmp"));
  const setAside = new Map<string, string>();
  const placed: string[] = [];
  try {
    for (const [i, file] of files.entries()) {
      await writeContent(temporaries[i], file.content, (error) => {
        throw outputError(dir, `cannot write ${file.name}`, error);
      });
    }
    // Looked at again now: the directory may have changed while the files were being written.
    for (const [i, target] of targets.entries()) {
      if (!await existingFile(target, dir)) continue;
      const aside = sideName(target, i, "old");
      await rename(target, aside).catch((error) => {
        throw outputError(dir, `cannot set aside the existing ${basename(target)}`, error);
      });
      setAside.set(target, aside);
    }
    for (const [i, target] of targets.entries()) {
      await rename(temporaries[i], target).catch((error) => {
        throw outputError(dir, `cannot move ${basename(target)} into place`, error);
      });
      placed.push(target);
    }
  } catch (error) {
    const notes = await undo(placed, setAside, temporaries);
    if (createdDir !== undefined) await removeEmptyDirs(dir, createdDir);
    if (!(error instanceof ConvertError) || notes.length === 0) throw error;
    throw new ConvertError(error.code, `${error.message}; ${notes.join("; ")}`, error.place());
  }
  // Best effort: the outputs are all in place, an old copy that stays behind changes nothing.
  await Promise.all([...setAside.values()].map((aside) => succeeds(rm(aside, { force: true }))));
  return { paths: targets, overwritten: [...setAside.keys()] };
}

/**
 * Undoes a partial {@linkcode writeAllOrNothing}: puts back the files set aside, removes the
 * outputs placed and the temporaries. Never throws; resolves to notes on what could not be
 * undone.
 */
async function undo(
  placed: string[],
  setAside: Map<string, string>,
  temporaries: string[],
): Promise<string[]> {
  const notes: string[] = [];
  const restored = new Set<string>();
  for (const [target, aside] of setAside) {
    // Moving the old file back also replaces the new one if it was placed.
    if (await succeeds(rename(aside, target))) restored.add(target);
    else notes.push(`the previous ${basename(target)} is kept as ${aside}`);
  }
  for (const target of placed) {
    if (!restored.has(target) && !await succeeds(rm(target, { force: true }))) {
      notes.push(`the new ${basename(target)} could not be removed`);
    }
  }
  await Promise.all(temporaries.map((path) => succeeds(rm(path, { force: true }))));
  return notes;
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

/**
 * Whether something that is not a directory exists at `target` (a file or a link, which would
 * be replaced); an existing directory is refused, as is a path that cannot be looked at.
 */
async function existingFile(target: string, dir: string): Promise<boolean> {
  try {
    if (!(await lstat(target)).isDirectory()) return true;
  } catch (error) {
    const code = (error as { code?: string }).code;
    // Missing, or under a path that is not a directory (refused when the directory is made).
    if (code === "ENOENT" || code === "ENOTDIR") return false;
    throw outputError(dir, `cannot look at ${basename(target)}`, error);
  }
  throw new ConvertError(
    "OUTPUT_DIR",
    `an output would replace this directory (remove it or choose another save path)`,
    { file: resolve(target) },
  );
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
    await writeFile(path, content).catch(fail);
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
    options: { write: true; create: true; truncate: true },
  ): Promise<{ write(bytes: Uint8Array): Promise<number>; close(): void }>;
}

/**
 * Opens `path` for writing pieces. Deno's own file API writes on another thread while the next
 * piece is made (its `node:fs` file handles do not), so Deno uses it; Node uses `node:fs`.
 */
async function openForPieces(path: string): Promise<PieceFile> {
  const deno = (globalThis as { Deno?: DenoFiles }).Deno;
  if (deno !== undefined) {
    const file = await deno.open(path, { write: true, create: true, truncate: true });
    return {
      async write(bytes) {
        for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
      },
      // A promise that rejects when the close fails (Deno's close throws).
      close: () => new Promise((done) => done(file.close())),
    };
  }
  const handle = await open(path, "w");
  return {
    async write(bytes) {
      for (let done = 0; done < bytes.length;) {
        done += (await handle.write(bytes, done, bytes.length - done)).bytesWritten;
      }
    },
    close: () => handle.close(),
  };
}

/**
 * The real path of a file (links resolved); for a file that does not exist yet, the real path of
 * its directory joined with its name; else the plain absolute path.
 */
async function canonicalPath(path: string): Promise<string> {
  const absolute = resolve(path);
  for (const [real, rest] of [[absolute, ""], [dirname(absolute), basename(absolute)]]) {
    try {
      return join(await realpath(real), rest);
    } catch {
      // Not there (yet): try its directory, then fall back to the absolute path.
    }
  }
  return absolute;
}
