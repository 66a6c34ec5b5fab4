/**
 * Shared by the runtime tests (Deno, URL import, npm package, browser, edge): the lenet model
 * from ../shared/models, a record file for it written at test time, the reference outputs of
 * the in-process conversion, and a bounded subprocess runner.
 *
 * @module
 */

import { convert } from "../core.ts";
import { modelFile, modelNames } from "./_models.ts";

/** True when ../shared/models/lenet is there (in CI a missing folder already failed loudly). */
export const haveLenet: boolean = modelNames.includes("lenet");

/** The lenet prototxt path. */
export const lenetModel: string = modelFile("lenet", "deploy.prototxt");
/** The lenet caffemodel path. */
export const lenetWeights: string = modelFile("lenet", "weights.caffemodel");

/** The repository root (ends in `/`). */
export const repoRoot: string = new URL("../", import.meta.url).pathname;

/** The five output keys in SPEC §7 order, each with its file name suffix. */
export const OUTPUT_SUFFIXES = {
  fakeQuantModel: "fake_quant_model.prototxt",
  fakeQuantWeights: "fake_quant_weights.caffemodel",
  deployModel: "deploy_model.prototxt",
  deployWeights: "deploy_weights.caffemodel",
  quantInfo: "quant.json",
} as const;

/** One of the five outputs. */
export type OutputKey = keyof typeof OUTPUT_SUFFIXES;

/** The file name of output `key` for `prefix` (SPEC §7: `<prefix>_<suffix>`, no `_` if empty). */
export function outputFileName(prefix: string, key: OutputKey): string {
  return (prefix === "" ? "" : `${prefix}_`) + OUTPUT_SUFFIXES[key];
}

function recordEntry(layer: string, scaleD: number, offsetD: number, scaleW: number[]): string {
  const weights = scaleW.map((value) => `scale_w: ${value} offset_w: 0`).join(" ");
  return `record { key: "${layer}" value { scale_d: ${scaleD} offset_d: ${offsetD} ${weights} } }`;
}

/**
 * A hand-written record for lenet: conv1 and conv2 per channel (scales spread so that a plot of
 * them shows a slope), ip1 and ip2 per tensor.
 */
export const LENET_RECORD: string = [
  recordEntry("conv1", 0.00392157, -128, Array.from({ length: 20 }, (_, c) => 0.0025 + c * 1e-4)),
  recordEntry("conv2", 0.05, 0, Array.from({ length: 50 }, (_, c) => 0.0008 + c * 2e-5)),
  recordEntry("ip1", 0.1, 0, [0.0004]),
  recordEntry("ip2", 0.05, -128, [0.002]),
].join("\n") + "\n";

/** Writes {@linkcode LENET_RECORD} as `record.txt` in `dir`; returns its path. */
export async function writeLenetRecord(dir: string): Promise<string> {
  const path = `${dir}/record.txt`;
  await Deno.writeTextFile(path, LENET_RECORD);
  return path;
}

/** The five outputs as bytes, by key. */
export type OutputBytes = Record<OutputKey, Uint8Array>;

/** Converts lenet with {@linkcode LENET_RECORD} in this process (core.ts, in memory). */
export async function referenceOutputs(): Promise<OutputBytes> {
  const { files } = await convert({
    model: await Deno.readTextFile(lenetModel),
    weights: await Deno.readFile(lenetWeights),
    record: LENET_RECORD,
  });
  const encoder = new TextEncoder();
  const bytes = (content: string | Uint8Array) =>
    typeof content === "string" ? encoder.encode(content) : content;
  return {
    fakeQuantModel: bytes(files.fakeQuantModel),
    fakeQuantWeights: bytes(files.fakeQuantWeights),
    deployModel: bytes(files.deployModel),
    deployWeights: bytes(files.deployWeights),
    quantInfo: bytes(files.quantInfo),
  };
}

/** Reads the five outputs written with `prefix` in `dir`. */
export async function readOutputs(dir: string, prefix: string): Promise<OutputBytes> {
  const entries = await Promise.all(
    (Object.keys(OUTPUT_SUFFIXES) as OutputKey[]).map(async (key) =>
      [key, await Deno.readFile(`${dir}/${outputFileName(prefix, key)}`)] as const
    ),
  );
  return Object.fromEntries(entries) as OutputBytes;
}

/** The SHA-256 of each output, hex, by key. */
export async function hashOutputs(outputs: OutputBytes): Promise<Record<OutputKey, string>> {
  const entries = await Promise.all(
    (Object.keys(OUTPUT_SUFFIXES) as OutputKey[]).map(async (key) => {
      const digest = await crypto.subtle.digest("SHA-256", outputs[key] as Uint8Array<ArrayBuffer>);
      const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
      return [key, hex] as const;
    }),
  );
  return Object.fromEntries(entries) as Record<OutputKey, string>;
}

/** What a finished subprocess did. */
export interface CommandResult {
  /** Exit code. */
  code: number;
  /** Standard output, decoded. */
  stdout: string;
  /** Standard error, decoded. */
  stderr: string;
}

/** Options of {@linkcode runCommand}. */
export interface RunOptions {
  /** Working directory. */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Start from an empty environment (plus `env`) instead of this process's. */
  clearEnv?: boolean;
  /** Killed after this many milliseconds (default 120 s). */
  timeoutMs?: number;
}

/** Runs `command` to its end (killed after the timeout) and collects its output. */
export async function runCommand(
  command: string,
  args: string[],
  options: RunOptions = {},
): Promise<CommandResult> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const output = await new Deno.Command(command, {
    args,
    cwd: options.cwd,
    env: options.env,
    clearEnv: options.clearEnv,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.signal === null ? output.code : -1,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr) +
      (output.signal === null ? "" : `\n(killed by ${output.signal} after ${timeoutMs} ms)`),
  };
}

/** Throws with the command's output when it did not exit 0. */
export function assertSuccess(result: CommandResult, what: string): void {
  if (result.code !== 0) {
    throw new Error(
      `${what} exited ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`,
    );
  }
}
