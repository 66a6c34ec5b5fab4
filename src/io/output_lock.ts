/**
 * What keeps two runs writing the same outputs apart, and what they leave behind findable: a
 * lock file next to the outputs (created with `O_EXCL`), and short temporary names that carry
 * the output set, the host and the process id, so that a later run can tell stale ones (of a
 * process that is gone) from live ones.
 *
 * @module
 */

import { link, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { hostname } from "node:os";
import process from "node:process";
import { join } from "node:path";
import { ConvertError } from "../errors.ts";

/** The marker every file caffe-quant makes beside its outputs starts with. */
const MARKER = ".caffe-quant-";

/** FNV-1a (32 bits) of `text`'s UTF-16 code units, as 8 hex digits: a short name, not a secret. */
function shortHash(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, "0");
}

/**
 * This machine's name. Deno without `--allow-sys` may not ask the system for it: then it is read
 * from Linux's /proc (file access is granted to whoever writes outputs), else unknown.
 */
const HOST = (() => {
  try {
    return hostname();
  } catch {
    try {
      return readFileSync("/proc/sys/kernel/hostname", "utf8").trim();
    } catch {
      return "unknown-host";
    }
  }
})();

/** One set of outputs written together into one directory. */
export interface OutputSet {
  /** The directory. */
  dir: string;
  /** 8 hex digits naming the set (a hash of its sorted file names). */
  id: string;
}

/** The set of the files `names` in `dir`. */
export function outputSet(dir: string, names: string[]): OutputSet {
  return { dir, id: shortHash([...names].sort().join("\0")) };
}

/**
 * A name for the `i`-th temporary (`.tmp`) or set-aside file (`.old`) of this process in `set`:
 * `.caffe-quant-<set>-<host>-<pid>-<random>-<i>.<ending>`, at most 64 bytes whatever the final
 * names (which may be 255).
 */
export function sideName(set: OutputSet, tag: string, i: number, ending: "tmp" | "old"): string {
  return `${MARKER}${set.id}-${shortHash(HOST)}-${process.pid}-${tag}-${i}.${ending}`;
}

/** A random tag for {@linkcode sideName}, one per write. */
export function sideTag(): string {
  return crypto.randomUUID().slice(0, 8);
}

/**
 * Whether process `pid` of this host is still running (a process of another user counts). Where
 * signals may not be sent (Deno without `--allow-run`), Linux's /proc tells; else it is taken
 * as running.
 */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ESRCH") return false;
    if (code === "EPERM" || !existsSync("/proc/self")) return true;
    return existsSync(`/proc/${pid}`);
  }
}

/**
 * Removes the temporaries of `set` left in its directory by processes of this host that are
 * gone (killed before they could clean up), and resolves to their set-aside files: those may
 * hold the only copy of an earlier output, so the caller removes them only once its own outputs
 * are in place.
 */
export async function removeStaleTemporaries(set: OutputSet): Promise<string[]> {
  const pattern = new RegExp(
    `^${MARKER.replaceAll(".", "\\.")}${set.id}-${
      shortHash(HOST)
    }-(\\d+)-[0-9a-f]{8}-\\d+\\.(tmp|old)$`,
  );
  const setAside: string[] = [];
  for (const name of await readdir(set.dir).catch(() => [] as string[])) {
    const match = pattern.exec(name);
    if (match === null) continue;
    const pid = Number(match[1]);
    if (pid === process.pid || running(pid)) continue;
    if (match[2] === "old") setAside.push(join(set.dir, name));
    else await rm(join(set.dir, name), { force: true }).catch(() => {});
  }
  return setAside;
}

/** Who holds a lock, as its file says. */
interface LockHolder {
  /** Process id. */
  pid: number;
  /** Host name. */
  host: string;
  /** When it was taken (ISO time). */
  since: string;
  /** Random, to tell two holders with the same pid apart. */
  nonce: string;
}

/** A lock held on an output set. */
export interface OutputLock {
  /** The lock file. */
  path: string;
  /** Removes the lock file (never throws). */
  release(): Promise<void>;
  /** The same, synchronously (for a signal handler). */
  releaseSync(): void;
}

/**
 * Takes the lock of `set`: the file `.caffe-quant-<set>.lock` in its directory, created only if
 * absent. A lock of a process of this host that is gone is stale and taken over; any other is
 * `OUTPUT_LOCKED`, naming the lock file and its holder.
 */
export async function lockOutputs(set: OutputSet): Promise<OutputLock> {
  const path = join(set.dir, `${MARKER}${set.id}.lock`);
  const me: LockHolder = {
    pid: process.pid,
    host: HOST,
    since: new Date().toISOString(),
    nonce: crypto.randomUUID(),
  };
  for (let attempt = 0;; attempt++) {
    try {
      await writeFile(path, JSON.stringify(me) + "\n", { flag: "wx" });
      const release = () => releaseLock(path, me.nonce);
      return {
        path,
        release: () => release().catch(() => {}),
        releaseSync: () => {
          try {
            rmSync(path, { force: true });
          } catch {
            // Best effort in a signal handler.
          }
        },
      };
    } catch (error) {
      if ((error as { code?: string }).code !== "EEXIST") {
        const reason = error instanceof Error ? error.message : String(error);
        throw new ConvertError("OUTPUT_DIR", `cannot create the lock file: ${reason}`, {
          file: set.dir,
        });
      }
    }
    const holder = await readHolder(path);
    const stale = holder !== undefined && holder.host === HOST && !running(holder.pid);
    if (!stale || attempt > 0 || !await takeOver(path, holder)) {
      const who = holder === undefined
        ? "another run"
        : `another run (pid ${holder.pid} on ${holder.host}, since ${holder.since})`;
      throw new ConvertError(
        "OUTPUT_LOCKED",
        `${who} is writing these outputs; try again when it is done, or remove this lock file ` +
          `if no such run exists`,
        { file: path },
      );
    }
  }
}

/** The holder named in the lock file, or undefined if it is gone or still being written. */
async function readHolder(path: string): Promise<LockHolder | undefined> {
  try {
    const holder = JSON.parse(await readFile(path, "utf8"));
    return typeof holder?.pid === "number" && typeof holder?.host === "string" ? holder : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Removes the stale lock of `holder`: moved aside first, so that a run taking it over at the same
 * moment cannot lose a fresh lock; true if what was moved was that stale lock.
 */
async function takeOver(path: string, holder: LockHolder): Promise<boolean> {
  const moved = `${path}.${crypto.randomUUID().slice(0, 8)}.stale`;
  if (!await rename(path, moved).then(() => true, () => false)) return true; // already gone
  const seen = await readHolder(moved);
  if (seen?.nonce === holder.nonce) {
    await rm(moved, { force: true }).catch(() => {});
    return true;
  }
  // Someone else's fresh lock: put it back unless yet another one was made meanwhile.
  await link(moved, path).then(() => rm(moved, { force: true })).catch(() => {});
  return false;
}

/** Removes the lock file at `path` if it is still ours. */
async function releaseLock(path: string, nonce: string): Promise<void> {
  if ((await readHolder(path))?.nonce === nonce) await rm(path, { force: true });
}
