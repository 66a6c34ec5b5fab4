/**
 * What the commands share: where they write, what a command is, reading a model and the
 * `--input` tensors, and option values.
 *
 * @module
 */

import { basename, dirname, isAbsolute, relative } from "node:path";
import { loadNet } from "../caffe/model.ts";
import type { Net } from "../caffe/net.ts";
import { readInput, readInputText, writeAllOrNothing } from "../io/files.ts";
import { numberValue, type ParsedArgs, wholeNumberValue } from "./args.ts";

/** Where a command writes. */
export interface Output {
  /** Standard output. */
  out(text: string): void;
  /** Standard error. */
  err(text: string): void;
  /** True when standard error is a terminal (progress bars are drawn there). */
  isTerminal: boolean;
}

/** A command: its usage line, its help text and what it does. */
export interface Command {
  /** `name <args> [options]`. */
  usage: string;
  /** What the command does, for `--help`. */
  help: string;
  /** Runs with the words after the command name. */
  run(argv: string[], io: Output): Promise<void>;
}

/** `path` relative to the working directory when it lies below it, else as it is. */
export function shownPath(path: string): string {
  const below = relative(".", path);
  return below.startsWith("..") || isAbsolute(below) ? path : below;
}

/** Reads a prototxt, then a caffemodel (so a missing model is reported first), and loads both. */
export async function loadModelFiles(modelFile: string, weightsFile: string): Promise<Net> {
  const modelText = await readInputText(modelFile);
  const weights = await readInput(weightsFile);
  // The bytes were read for this net alone: unaligned weights are aligned in them, not copied.
  return loadNet(modelText, weights, {
    model: modelFile,
    weights: weightsFile,
    alignInPlace: true,
  });
}

/**
 * A whole-number option (the last one given), or `fallback`: decimal digits only, at least
 * `min` (0 unless said), else a `USAGE` error naming the option.
 */
export function integerOption(args: ParsedArgs, name: string, fallback: number, min = 0): number {
  const text = args.options.get(name)?.at(-1);
  return text === undefined ? fallback : wholeNumberValue(name, text, min);
}

/** A number option (the last one given, in decimal notation), or undefined. */
export function numberOption(args: ParsedArgs, name: string): number | undefined {
  const text = args.options.get(name)?.at(-1);
  return text === undefined ? undefined : numberValue(name, text);
}

/** Prints `text`, or with `out` writes it to that file (all or nothing) and says where. */
export async function printOrWrite(
  io: Output,
  text: string,
  out: string | undefined,
): Promise<void> {
  if (out === undefined) {
    io.out(text);
    return;
  }
  const { paths } = await writeAllOrNothing(dirname(out), [{ name: basename(out), content: text }]);
  io.out(`wrote ${shownPath(paths[0])}\n`);
}
