/**
 * A small argument parser for the command line: positionals, boolean flags and valued options
 * (`--name value` or `--name=value`; a few of them repeatable), with usage errors as
 * {@linkcode ConvertError}.
 *
 * @module
 */

import { ConvertError } from "../errors.ts";
import { printable } from "../printable.ts";

/**
 * The options that name several things and may be repeated (`--input a=x.npy --input b=y.npy`);
 * any other option given twice is a usage error, so that no value is dropped silently.
 */
const REPEATABLE = new Set(["input", "data", "eval-data", "skip"]);

/** What a command accepts. */
export interface ArgSpec {
  /** Names of the required positionals, in order. */
  positionals: string[];
  /** Names of optional positionals after the required ones. */
  optional?: string[];
  /** Boolean flags, without `--`. */
  flags?: string[];
  /** Options that take a value, without `--`. */
  options?: string[];
}

/** Parsed arguments. */
export interface ParsedArgs {
  /** Positionals by name. */
  positionals: Record<string, string | undefined>;
  /** Flags present. */
  flags: Set<string>;
  /** Every value of each option, in order. */
  options: Map<string, string[]>;
}

/**
 * Parses `argv` (the words after the command name) against `spec`. Every word after `--` is a
 * positional (so a path may start with `-`); before it, a word starting with `-` is an option.
 * An option's value is the next word, which must not start with `--` (write `--name=--x` for
 * that). Empty values, empty positionals, flags given a value, unknown options and a
 * non-repeatable option given twice are `USAGE` errors naming the option or argument.
 */
export function parseArgs(argv: string[], spec: ArgSpec, usage: string): ParsedArgs {
  const words: string[] = [];
  const flags = new Set<string>();
  const options = new Map<string, string[]>();
  // The message may quote the user's words: escaped here, as USAGE messages keep their lines.
  const fail = (message: string) =>
    new ConvertError("USAGE", `${printable(message)}\nusage: ${usage}`);
  let optionsEnded = false;
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i];
    if (optionsEnded || !word.startsWith("-") || word === "-") {
      words.push(word);
      continue;
    }
    if (word === "--") {
      optionsEnded = true;
      continue;
    }
    if (!word.startsWith("--")) {
      throw fail(`unknown option ${word} (write -- before an argument that starts with -)`);
    }
    const equals = word.indexOf("=");
    const name = word.slice(2, equals < 0 ? undefined : equals);
    if (spec.flags?.includes(name)) {
      if (equals >= 0) throw fail(`--${name} takes no value`);
      flags.add(name);
    } else if (spec.options?.includes(name)) {
      const value = equals < 0 ? argv[++i] : word.slice(equals + 1);
      if (value === undefined || (equals < 0 && value.startsWith("--"))) {
        throw fail(`--${name} needs a value`);
      }
      if (value === "") throw fail(`--${name} needs a value, not an empty one`);
      const earlier = options.get(name) ?? [];
      if (earlier.length > 0 && !REPEATABLE.has(name)) {
        throw fail(`--${name} is given twice (${earlier[0]}, ${value}): give it once`);
      }
      options.set(name, [...earlier, value]);
    } else {
      throw fail(`unknown option --${name}`);
    }
  }
  const optional = spec.optional ?? [];
  if (words.length < spec.positionals.length) {
    throw fail(`missing <${spec.positionals[words.length]}>`);
  }
  if (words.length > spec.positionals.length + optional.length) {
    throw fail(`unexpected argument ${words[spec.positionals.length + optional.length]}`);
  }
  const positionals: Record<string, string | undefined> = {};
  [...spec.positionals, ...optional].forEach((name, i) => {
    if (words[i] === "") throw fail(`<${name}> is empty`);
    positionals[name] = words[i];
  });
  return { positionals, flags, options };
}

/**
 * `text`, the value of `--option`, as a whole number of at least `min`: decimal digits only
 * (no sign, exponent, hex or spaces), else a `USAGE` error naming the option.
 */
export function wholeNumberValue(option: string, text: string, min = 0): number {
  const value = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < min) {
    throw new ConvertError(
      "USAGE",
      `--${option} needs a whole number >= ${min}, not "${printable(text)}"`,
    );
  }
  return value;
}

/**
 * `text`, the value of `--option`, as a finite number in decimal notation (`-0.5`, `.5`,
 * `1e-3`; no hex, `Infinity` or spaces), else a `USAGE` error naming the option.
 */
export function numberValue(option: string, text: string): number {
  const decimal = /^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(text);
  const value = decimal ? Number(text) : NaN;
  if (!Number.isFinite(value)) {
    throw new ConvertError("USAGE", `--${option} needs a number, not "${printable(text)}"`);
  }
  return value;
}
