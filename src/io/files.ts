/**
 * File access for Deno and Node (through `node:fs`, which both provide): reading inputs with
 * typed errors, and writing a set of outputs all-or-nothing (temporary files, then renames).
 * Browsers and edge functions use the in-memory API and never load this module.
 *
 * @module
 */

import { mkdir, readFile, realpath, rename, rm, stat, writeFile } from "node:fs/promises";
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
  /** Content: text is written as UTF-8. */
  content: Uint8Array | string;
}

/** What {@linkcode writeAllOrNothing} did. */
export interface WriteResult {
  /** Absolute paths written, in the order given. */
  paths: string[];
  /** The subset of `paths` that existed before and were replaced. */
  overwritten: string[];
}

/**
 * Writes every file into `dir` or none: the directory is created if missing, each file goes to
 * a temporary name in `dir` first, and only when all are written are they renamed into place.
 * An output that would replace one of `inputs` is refused before anything is written.
 */
export async function writeAllOrNothing(
  dir: string,
  files: OutputFile[],
  inputs: string[],
): Promise<WriteResult> {
  const targets = files.map((file) => resolve(dir, file.name));
  const inputPaths = new Set(await Promise.all(inputs.map(canonicalPath)));
  for (const target of targets) {
    if (inputPaths.has(await canonicalPath(target))) {
      throw new ConvertError(
        "OUTPUT_OVERWRITES_INPUT",
        `the output ${basename(target)} would overwrite an input file`,
        { file: target },
      );
    }
  }
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
  const temporaries = targets.map((target, i) =>
    join(dirname(target), `.${basename(target)}.${Date.now().toString(36)}-${i}.tmp`)
  );
  try {
    for (let i = 0; i < files.length; i++) await writeFile(temporaries[i], files[i].content);
    for (let i = 0; i < files.length; i++) await rename(temporaries[i], targets[i]);
  } catch (error) {
    await Promise.all(temporaries.map((path) => rm(path, { force: true })));
    throw new ConvertError(
      "OUTPUT_DIR",
      `cannot write the outputs: ${(error as Error).message}`,
      { file: dir },
    );
  }
  return { paths: targets, overwritten };
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
