/**
 * File access for Deno and Node (through `node:fs`, which both provide): reading inputs with
 * typed errors, and writing a set of outputs all-or-nothing (temporary files, then renames).
 * Browsers and edge functions use the in-memory API and never load this module.
 *
 * @module
 */

import { mkdir, open, readFile, realpath, rename, rm, stat, writeFile } from "node:fs/promises";
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
 * (paths compared after resolving links).
 */
export async function refuseInputOverwrites(targets: string[], inputs: string[]): Promise<void> {
  const inputPaths = new Set(await Promise.all(inputs.map(canonicalPath)));
  for (const target of targets) {
    if (inputPaths.has(await canonicalPath(target))) {
      throw new ConvertError(
        "OUTPUT_OVERWRITES_INPUT",
        `the output ${basename(target)} would overwrite an input file`,
        { file: resolve(target) },
      );
    }
  }
}

/**
 * Writes every file into `dir` or none: the directory is created if missing, each file goes to
 * a temporary name in `dir` first, and only when all are written are they moved into place (the
 * files they replace are set aside first and put back if a move fails). An output that would
 * replace one of `inputs` is refused before anything is written.
 */
export async function writeAllOrNothing(
  dir: string,
  files: OutputFile[],
  inputs: string[],
): Promise<WriteResult> {
  const targets = files.map((file) => resolve(dir, file.name));
  await refuseInputOverwrites(targets, inputs);
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    throw new ConvertError(
      "OUTPUT_DIR",
      `cannot create the output directory: ${(error as Error).message}`,
      { file: dir },
    );
  }
  const overwritten = [];
  for (const target of targets) if (await exists(target)) overwritten.push(target);
  const stamp = Date.now().toString(36);
  const sideName = (target: string, i: number, ending: string) =>
    join(dirname(target), `.${basename(target)}.${stamp}-${i}.${ending}`);
  const temporaries = targets.map((target, i) => sideName(target, i, "tmp"));
  const setAside = new Map<string, string>();
  const placed: string[] = [];
  try {
    for (let i = 0; i < files.length; i++) {
      await writeContent(temporaries[i], files[i].content, dir);
    }
    const move = (from: string, to: string) =>
      rename(from, to).catch((error) => {
        throw outputError(dir, error);
      });
    for (const [i, target] of overwritten.entries()) {
      await move(target, sideName(target, i, "old"));
      setAside.set(target, sideName(target, i, "old"));
    }
    for (let i = 0; i < files.length; i++) {
      await move(temporaries[i], targets[i]);
      placed.push(targets[i]);
    }
  } catch (error) {
    await Promise.all(placed.map((path) => rm(path, { force: true })));
    for (const [target, aside] of setAside) await rename(aside, target).catch(() => {});
    await Promise.all(temporaries.map((path) => rm(path, { force: true })));
    throw error;
  }
  await Promise.all([...setAside.values()].map((path) => rm(path, { force: true })));
  return { paths: targets, overwritten };
}

/** OUTPUT_DIR for a failure to write into `dir`. */
function outputError(dir: string, error: unknown): ConvertError {
  const reason = error instanceof Error ? error.message : String(error);
  return new ConvertError("OUTPUT_DIR", `cannot write the outputs: ${reason}`, { file: dir });
}

/**
 * Writes one file's content to `path`. Pieces are written in order, each while the producer
 * makes the next one; file system failures are OUTPUT_DIR errors, a producer's own errors pass.
 */
async function writeContent(
  path: string,
  content: OutputFile["content"],
  dir: string,
): Promise<void> {
  const fail = (error: unknown): never => {
    throw outputError(dir, error);
  };
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
    throw error;
  } finally {
    await file.close().catch(() => {});
  }
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
      close: () => Promise.resolve(file.close()),
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

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
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
