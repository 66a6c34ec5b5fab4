/**
 * The rule that no output may replace an input (docs/formats.md), for every input of every command:
 * files read through `readInput` while a task runs inside {@linkcode readingInputs} are noted by
 * identity (device and inode, so hard links and symbolic links to them count), and
 * {@linkcode refuseInputs} refuses an output that is one of them before anything is written.
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import { stat } from "node:fs/promises";
import { basename, resolve } from "node:path";
import { ConvertError } from "../errors.ts";

/** A file's device and inode, as `dev:ino`. */
type Identity = string;

/** The device and inode numbers of a file's `stat` (bigint, so that no inode is rounded). */
export interface FileIdentity {
  /** Device. */
  dev: bigint;
  /** Inode. */
  ino: bigint;
}

/** A task's notes: the inputs read (identity to the path it was read by), while it runs. */
interface Notes {
  files: Map<Identity, string>;
  running: boolean;
}

/** The notes of the running task. */
const inputsRead = new AsyncLocalStorage<Notes>();

/**
 * The inputs read by the task running now. A store whose task has ended is not taken: Deno
 * (2.9) can leave a task's store in place after an `import()` made inside it (the WebAssembly
 * modules' texts are imported on first use), where code started later, outside any task, would
 * see it.
 */
function filesRead(): Map<Identity, string> | undefined {
  const notes = inputsRead.getStore();
  return notes?.running ? notes.files : undefined;
}

/**
 * Runs `task` noting every input it reads (through `readInput`, `readInputText`), so that
 * {@linkcode refuseInputs} knows them. Inside a task that already notes its inputs, the reads go
 * into that one's notes.
 */
export function readingInputs<T>(task: () => Promise<T>): Promise<T> {
  const notes: Notes = { files: filesRead() ?? new Map(), running: true };
  return inputsRead.run(notes, async () => {
    try {
      return await task();
    } finally {
      notes.running = false;
    }
  });
}

/** Notes `path`, just read, with its identity (nothing outside {@linkcode readingInputs}). */
export function noteInput(path: string, file: FileIdentity): void {
  filesRead()?.set(identity(file), path);
}

/**
 * Refuses outputs at `targets` that are (by identity, links followed) an input read in this task
 * or one of `inputs` (paths named but maybe not read yet): `OUTPUT_OVERWRITES_INPUT` naming the
 * output and the input. A path that does not exist (yet) is no input.
 */
export async function refuseInputs(targets: string[], inputs: string[]): Promise<void> {
  const known = new Map(filesRead());
  for (const path of inputs) {
    const file = await identityOf(path);
    if (file !== undefined) known.set(file, path);
  }
  for (const target of targets) {
    const file = await identityOf(target);
    const input = file === undefined ? undefined : known.get(file);
    if (input === undefined) continue;
    const same = resolve(input) === resolve(target);
    throw new ConvertError(
      "OUTPUT_OVERWRITES_INPUT",
      `the output ${basename(target)} would overwrite ${
        same ? "an input file" : `the input ${input} (the same file)`
      }`,
      { file: resolve(target) },
    );
  }
}

function identity(file: FileIdentity): Identity {
  return `${file.dev}:${file.ino}`;
}

/** The identity of the file at `path` (links followed), or undefined if there is none. */
async function identityOf(path: string): Promise<Identity | undefined> {
  try {
    return identity(await stat(path, { bigint: true }));
  } catch {
    // Missing or not reachable: not an input (reading it reports the problem).
    return undefined;
  }
}
