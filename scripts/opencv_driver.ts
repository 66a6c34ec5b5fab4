/**
 * OpenCV's Caffe importer (Debian's `python3-opencv` through `/usr/bin/python3`,
 * `cv2.dnn.readNetFromCaffe`) driven from the benchmark scripts, in one Python process over
 * stdin/stdout (one JSON line each way), and the small helpers those scripts share (medians, the
 * load average, where each benchmark model is).
 *
 * Commands: `{ op: "load", key, model, weights }`; `{ op: "time", key, threads, inputs:
 * [blob, shape][], seconds }` → `{ perSecond }` (forward passes per second on seeded inputs);
 * `{ op: "images", key, threads, inputs: [blob, npyPath][] }` → `{ perSecond }` (images per second
 * of one pass over the `.npy` files' samples, one forward pass per sample, after one warm-up pass
 * on the first sample). A failure replies `{ error }`.
 *
 * @module
 */

import process from "node:process";

const root = new URL("../", import.meta.url).pathname;
const sharedModels = new URL("../../shared/models/", import.meta.url).pathname;

/** Where a benchmark model's deploy.prototxt and weights.caffemodel are. */
export function modelFolder(name: string): string {
  return name === "resnet50" ? `${root}bench-out/resnet50` : `${sharedModels}${name}`;
}

/** Whether `path` exists. */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The real models of ../shared/models, and ResNet-50 when `scripts/make_model.ts` made it. */
export function listModels(): string[] {
  const shared = [...Deno.readDirSync(sharedModels)]
    .filter((entry) => entry.isDirectory)
    .map((entry) => entry.name)
    .sort();
  if (exists(`${modelFolder("resnet50")}/weights.caffemodel`)) return [...shared, "resnet50"];
  console.error(
    "no bench-out/resnet50: run npx deno run -A scripts/make_model.ts resnet50 to include it",
  );
  return shared;
}

/** The median of `values` (NaN for none). */
export function median(values: number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** A measured figure for a table: three significant places or so, "-" when none was measured. */
export function figure(value: number): string {
  if (!Number.isFinite(value) || value <= 0) return "-";
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

/** Rows of cells under a header as a Markdown table. */
export function markdownTable(header: string[], rows: string[][]): string {
  return [header, header.map(() => "---"), ...rows].map((cells) => `| ${cells.join(" | ")} |`)
    .join("\n");
}

/** Microseconds of CPU time this process has used (user + system). */
export function cpuMicroseconds(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** The 1-minute load average from /proc/loadavg (what `uptime` shows). */
export function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

const OPENCV_DRIVER = `
import json, os, sys, time
import cv2, numpy as np
nets = {}
print(json.dumps({"version": cv2.__version__, "cores": os.cpu_count()}), flush=True)
for line in sys.stdin:
    command = json.loads(line)
    try:
        if command["op"] == "load":
            net = cv2.dnn.readNetFromCaffe(command["model"], command["weights"])
            nets[command["key"]] = (net, net.getUnconnectedOutLayersNames())
            print(json.dumps({"ok": True}), flush=True)
            continue
        net, outputs = nets[command["key"]]
        cv2.setNumThreads(command["threads"])
        if command["op"] == "images":
            arrays = [(name, np.load(path).astype(np.float32)) for name, path in command["inputs"]]
            def forward(i):
                for name, array in arrays:
                    net.setInput(array[i:i + 1], name)
                net.forward(outputs)
            forward(0)
            count, started = len(arrays[0][1]), time.perf_counter()
            for i in range(count):
                forward(i)
            print(json.dumps({"perSecond": count / (time.perf_counter() - started)}), flush=True)
            continue
        rng = np.random.default_rng(1)
        for name, shape in command["inputs"]:
            net.setInput(rng.uniform(-1, 1, shape).astype(np.float32), name)
        net.forward(outputs)
        runs, started = 0, time.perf_counter()
        while runs < 2 or time.perf_counter() - started < command["seconds"]:
            net.forward(outputs)
            runs += 1
        print(json.dumps({"perSecond": runs / (time.perf_counter() - started)}), flush=True)
    except Exception as error:
        print(json.dumps({"error": str(error).splitlines()[0] if str(error) else "failed"}), flush=True)
`;

/** A running OpenCV driver: the first `reply()` is `{ version, cores }`. */
export class OpenCv {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: AsyncIterator<string>;
  readonly #encoder = new TextEncoder();

  constructor() {
    this.#child = new Deno.Command("/usr/bin/python3", {
      args: ["-c", OPENCV_DRIVER],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#lines = this.#child.stdout
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(splitLines())[Symbol.asyncIterator]();
  }

  /** The next reply line, parsed. */
  async reply(): Promise<Record<string, unknown>> {
    const next = await this.#lines.next();
    if (next.done) throw new Error("the OpenCV driver ended (is python3-opencv installed?)");
    return JSON.parse(next.value);
  }

  /** Sends one command and waits for its reply. */
  async send(command: Record<string, unknown>): Promise<Record<string, unknown>> {
    await this.#writer.write(this.#encoder.encode(JSON.stringify(command) + "\n"));
    return await this.reply();
  }

  /** Ends the driver. */
  async close(): Promise<void> {
    await this.#writer.close();
    await this.#child.status;
  }
}

/** Lines of a text stream, blank ones left out. */
function splitLines(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, controller) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const part of parts) if (part.trim() !== "") controller.enqueue(part);
    },
    flush(controller) {
      if (rest.trim() !== "") controller.enqueue(rest);
    },
  });
}
