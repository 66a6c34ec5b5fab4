/**
 * Caffe's `ImageData` list file: one sample per line, `path label`, the label an integer after
 * the line's last space (so paths may hold spaces), paths relative to a root folder.
 *
 * @module
 */

import { ConvertError } from "../errors.ts";

/** One line of a list file. */
export interface ListEntry {
  /** The image path as written. */
  path: string;
  /** The integer label. */
  label: number;
  /** 1-based line number, for messages. */
  line: number;
}

/**
 * The entries of a list file's text. Blank lines are skipped; a line without a space before
 * its label, or whose label is not an integer, is a `LIST_FORMAT` error at `file:line:column`.
 */
export function parseImageList(text: string, file: string): ListEntry[] {
  const entries: ListEntry[] = [];
  const lines = text.split("\n");
  lines.forEach((raw, index) => {
    const content = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (content.trim() === "") return;
    const line = index + 1;
    const space = content.lastIndexOf(" ");
    if (space <= 0) {
      throw new ConvertError(
        "LIST_FORMAT",
        `expected "<path> <label>", found "${content}"`,
        { file, line, column: 1 },
      );
    }
    const labelText = content.slice(space + 1);
    if (!/^[+-]?\d+$/.test(labelText) || !Number.isSafeInteger(Number(labelText))) {
      throw new ConvertError(
        "LIST_FORMAT",
        `the label "${labelText}" is not an integer`,
        { file, line, column: space + 2 },
      );
    }
    entries.push({ path: content.slice(0, space), label: Number(labelText), line });
  });
  return entries;
}
