/**
 * Time and peak memory of calibration (`calibrate()`, SPEC §11) on ResNet-50, side by side with
 * the plain float forward passes of the same data as the reference:
 *
 * ```sh
 * npx deno run -A scripts/make_model.ts resnet50      # once: bench-out/resnet50
 * npx deno run -A scripts/bench_calibrate.ts [--images N] [--batch B] [--model DIR] [--json]
 * ```
 *
 * Each run is a fresh process (peak RSS is the process's high-water mark, VmHWM, read at its
 * end): `forward` (N float forward passes, nothing kept), `minmax`, `hfmg`, `ifmr` (values kept
 * within the default 256 MiB budget, the rest streamed) and `ifmr-streamed` (budget 0: every blob
 * in three passes). The images are seeded synthetic 224×224 BGR pictures (smooth gradients and
 * blobs plus noise, mean-subtracted as Caffe's ImageNet models expect), made on the fly by a
 * function source so that no pass keeps them.
 *
 * @module
 */

import { calibrate } from "../src/calibrate/calibrate.ts";
import { defaultCalibrationConfig } from "../src/calibrate/config.ts";
import type { Sample } from "../src/calibrate/samples.ts";
import { loadNet } from "../src/caffe/model.ts";
import type { Net } from "../src/caffe/net.ts";
import { runNet } from "../src/engine/run.ts";
import { mulberry32 } from "../src/random.ts";

const MODES = ["forward", "minmax", "hfmg", "ifmr", "ifmr-streamed"] as const;
type Mode = typeof MODES[number];

/** What one child run reports. */
interface ChildReport {
  mode: Mode;
  seconds: number;
  peakRssMB: number;
  passes: number;
}

function option(name: string, fallback: string): string {
  const index = Deno.args.indexOf(`--${name}`);
  return index >= 0 ? Deno.args[index + 1] : fallback;
}

/** A seeded synthetic 224×224 BGR image, mean-subtracted (104, 117, 123), as [1, 3, H, W]. */
function syntheticImage(seed: number, size: number): Sample {
  const next = mulberry32(seed * 7919 + 1);
  const uniform = () => (next() + 0.5) / 4294967296;
  const data = new Float32Array(3 * size * size);
  const mean = [104, 117, 123];
  const waves = Array.from({ length: 4 }, () => ({
    fx: uniform() * 0.05,
    fy: uniform() * 0.05,
    phase: uniform() * 6.28,
    weight: uniform(),
  }));
  for (let c = 0; c < 3; c++) {
    const tint = 60 + 140 * uniform();
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        let value = tint;
        for (const wave of waves) {
          value += 50 * wave.weight * Math.sin(wave.fx * x + wave.fy * y + wave.phase + c);
        }
        value += 12 * (uniform() - 0.5);
        data[(c * size + y) * size + x] = Math.min(255, Math.max(0, Math.round(value))) - mean[c];
      }
    }
  }
  return new Map([["data", { shape: [1, 3, size, size], data }]]);
}

/** Peak resident memory of this process in MB (Linux VmHWM), or NaN elsewhere. */
function peakRssMB(): number {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const match = /VmHWM:\s+(\d+) kB/.exec(status);
    return match ? Number(match[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

async function child(mode: Mode, modelDir: string, images: number, batch: number) {
  const net: Net = loadNet(
    Deno.readTextFileSync(`${modelDir}/deploy.prototxt`),
    Deno.readFileSync(`${modelDir}/weights.caffemodel`),
  );
  const source = function* () {
    for (let i = 0; i < images; i++) yield syntheticImage(i, 224);
  };
  const started = performance.now();
  let passes = 1;
  if (mode === "forward") {
    for (const sample of source()) await runNet(net, { inputs: sample });
  } else {
    const algorithm = mode === "ifmr-streamed" ? "ifmr" : mode;
    const result = await calibrate(net, source, {
      config: defaultCalibrationConfig(net, { activation: { algorithm } }),
      batchSize: batch,
      memoryBudget: mode === "ifmr-streamed" ? 0 : undefined,
      onProgress: ({ pass, samples, layer }) => {
        if (layer === undefined) {
          Deno.stderr.writeSync(new TextEncoder().encode(`\r${mode} pass ${pass}: ${samples}   `));
        }
      },
    });
    passes = result.passes;
  }
  const report: ChildReport = {
    mode,
    seconds: (performance.now() - started) / 1000,
    peakRssMB: peakRssMB(),
    passes,
  };
  console.log(JSON.stringify(report));
}

async function parent() {
  const modelDir = option("model", "bench-out/resnet50");
  const images = Number(option("images", "64"));
  const batch = Number(option("batch", "1"));
  const reports: ChildReport[] = [];
  for (const mode of MODES) {
    // the executable may have been replaced on disk while this ran (an npm install)
    const command = new Deno.Command(Deno.execPath().replace(/ \(deleted\)$/, ""), {
      args: [
        "run",
        "-A",
        new URL(import.meta.url).pathname,
        "--child",
        mode,
        "--model",
        modelDir,
        "--images",
        String(images),
        "--batch",
        String(batch),
      ],
      stdout: "piped",
      stderr: "inherit",
    });
    const { code, stdout } = await command.output();
    if (code !== 0) throw new Error(`${mode} failed with exit code ${code}`);
    const text = new TextDecoder().decode(stdout).trim().split("\n").at(-1)!;
    reports.push(JSON.parse(text));
    Deno.stderr.writeSync(new TextEncoder().encode(`\n${text}\n`));
  }
  if (Deno.args.includes("--json")) {
    console.log(JSON.stringify({ model: modelDir, images, batch, reports }, null, 2));
    return;
  }
  const forward = reports[0];
  console.log(`${modelDir}: ${images} images 224×224 (seeded synthetic), batch ${batch}`);
  console.log("run            passes     time   × forward   peak RSS");
  for (const report of reports) {
    console.log(
      `${report.mode.padEnd(14)} ${String(report.passes).padStart(6)} ${
        report.seconds.toFixed(1).padStart(7)
      } s ${(report.seconds / forward.seconds).toFixed(2).padStart(9)} ${
        report.peakRssMB.toFixed(0).padStart(7)
      } MB`,
    );
  }
}

const childMode = option("child", "");
if (childMode !== "") {
  await child(
    childMode as Mode,
    option("model", "bench-out/resnet50"),
    Number(option("images", "64")),
    Number(option("batch", "1")),
  );
} else {
  await parent();
}
