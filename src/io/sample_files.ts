/**
 * Sample files on disk as the sample items src/data/samples.ts reads: a folder (its JPEG, PNG and
 * `.npy` files, subfolders included, in name order), a Caffe `ImageData` list file, or one
 * image or `.npy` file. Files are read one at a time, when the consumer asks for the next item; a
 * `.npy` batch given by its own path can be read a few rows at a time into reused memory.
 *
 * @module
 */

import { readdir, stat } from "node:fs/promises";
import { dirname, extname, join, resolve } from "node:path";
import { parseImageList } from "../data/list.ts";
import type { EncodedItem } from "../data/samples.ts";
import type { Tensor } from "../engine/tensor.ts";
import { ConvertError } from "../errors.ts";
import { readInput, readInputText } from "./files.ts";
import { openNpyRows } from "./npy_rows.ts";

/** File extensions a folder's samples have (lower case). */
const SAMPLE_EXTENSIONS = new Set([".jpg", ".jpeg", ".png", ".npy"]);

/** What a path given as data is. */
async function pathKind(path: string): Promise<"dir" | "file"> {
  try {
    return (await stat(path)).isDirectory() ? "dir" : "file";
  } catch {
    throw new ConvertError("INPUT_NOT_FOUND", "no such file or folder", { file: path });
  }
}

/** Every sample file below `dir`, sorted by path. */
async function folderFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && SAMPLE_EXTENSIONS.has(extname(entry.name).toLowerCase()))
    .map((entry) => join(entry.parentPath ?? dir, entry.name))
    .sort();
}

/** Options of {@linkcode sampleFiles}. */
export interface SampleFilesOptions {
  /** The folder list-file paths are relative to (default: the list file's own folder). */
  rootFolder?: string;
  /**
   * Whether the rows (axis 0) of a `.npy` file of `shape` are its samples. When it says so of a
   * `.npy` file given by its own path, the file is read a few rows at a time into memory used
   * again once released (src/io/npy_rows.ts), as items `{ name, tensor, first, release }`;
   * otherwise, and by default, every file is read whole.
   */
  rowSamples?: (shape: number[], file: string) => boolean;
}

/** Rows of a `.npy` batch as an item: the first one's index, and memory to release. */
export type RowsItem = { name: string; tensor: Tensor; first: number; release: () => void };

/**
 * The items of data paths, lazily: a folder gives its sample files; a `.npy`, `.jpg`, `.jpeg`
 * or `.png` file itself; any other file is read as an `ImageData` list (`path label` lines,
 * paths relative to `rootFolder` or the list's folder). A folder without samples or an empty
 * list is a `BAD_INPUT` naming it; nothing is silently dropped.
 */
export function sampleFiles(
  paths: string[],
  options?: { rootFolder?: string },
): AsyncIterable<EncodedItem>;
/** As above, with `.npy` batches read row by row where `options.rowSamples` says so. */
export function sampleFiles(
  paths: string[],
  options: SampleFilesOptions,
): AsyncIterable<EncodedItem | RowsItem>;
export async function* sampleFiles(
  paths: string[],
  options: SampleFilesOptions = {},
): AsyncIterable<EncodedItem | RowsItem> {
  for (const path of paths) {
    if ((await pathKind(path)) === "dir") {
      const files = await folderFiles(path);
      if (files.length === 0) {
        throw new ConvertError("BAD_INPUT", "the folder holds no .jpg, .jpeg, .png or .npy file", {
          file: path,
        });
      }
      for (const file of files) yield { name: file, bytes: await readInput(file) };
    } else if (SAMPLE_EXTENSIONS.has(extname(path).toLowerCase())) {
      if (options.rowSamples !== undefined && extname(path).toLowerCase() === ".npy") {
        const file = await openNpyRows(path);
        if (options.rowSamples(file.shape, path)) {
          for await (const rows of file.rows()) yield { name: path, ...rows };
          continue;
        }
        await file.close();
      }
      yield { name: path, bytes: await readInput(path) };
    } else {
      const entries = parseImageList(await readInputText(path), path);
      if (entries.length === 0) {
        throw new ConvertError("BAD_INPUT", "the list file names no image", { file: path });
      }
      const root = options.rootFolder ?? dirname(path);
      for (const entry of entries) {
        const file = resolve(root, entry.path);
        yield { name: file, bytes: await readInput(file), label: entry.label };
      }
    }
  }
}
