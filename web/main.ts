/**
 * The caffe-quant page: pick or drop the prototxt, caffemodel and record file, or instead of the
 * record a folder of calibration images (with Caffe's preprocessing and the algorithm); the
 * calibration and conversion run in a Web Worker on this machine; the page shows what was fused
 * and quantized, plots the per-channel weight scales of a layer, and offers the five outputs (and
 * the record it made) as downloads.
 *
 * @module
 */

/// <reference lib="dom" />

import type { ConvertedBlobs, ConvertReport } from "../src/quant/convert.ts";
import type { ActivationAlgorithm } from "../src/calibrate/activation.ts";
import type { Transform } from "../src/data/transform.ts";
import { outputNames, recordName } from "../src/output_names.ts";
import type {
  Calibration,
  CalibrationSummary,
  ConvertRequest,
  LayerRow,
  WorkerMessage,
} from "./messages.ts";

/** The three inputs, with the file input that holds each and how to recognise a dropped one. */
const INPUTS = {
  model: { input: "#model-file", matches: /\.prototxt$/i },
  weights: { input: "#weights-file", matches: /\.caffemodel$/i },
  record: { input: "#record-file", matches: /./ },
} as const;

type InputName = keyof typeof INPUTS;

const SVG = "http://www.w3.org/2000/svg";

function $<T extends Element = HTMLElement>(selector: string): T {
  const element = document.querySelector<T>(selector);
  if (element === null) throw new Error(`the page lacks ${selector}`);
  return element;
}

/** Makes an element with attributes and children. */
function h(tag: string, attributes: Record<string, string> = {}, ...children: (Node | string)[]) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  element.append(...children);
  return element;
}

/** Makes an SVG element with attributes and children. */
function s(tag: string, attributes: Record<string, string | number> = {}, ...children: Node[]) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  element.append(...children);
  return element;
}

function formatBytes(size: number): string {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KiB`;
  return `${(size / 1024 / 1024).toFixed(1)} MiB`;
}

/** The chosen file of each input. */
const chosen: Partial<Record<InputName, File>> = {};

/** The chosen calibration images, in path order. */
let images: File[] = [];

/** Images a folder holds (JPEG and PNG), by path. */
const IMAGE_NAME = /\.(jpe?g|png)$/i;

/** Whether the inputs are complete; the button says what it will do. */
function updateButton(): void {
  const button = $<HTMLButtonElement>("#convert");
  button.disabled = !(chosen.model && chosen.weights && (chosen.record || images.length > 0));
  button.textContent = !chosen.record && images.length > 0 ? "Calibrate and convert" : "Convert";
}

function choose(name: InputName, file: File): void {
  chosen[name] = file;
  $(`${INPUTS[name].input}-name`).textContent = `${file.name} (${formatBytes(file.size)})`;
  $(`${INPUTS[name].input}`).closest(".drop")?.classList.add("chosen");
  updateButton();
}

/** The path of a picked file inside its folder, for ordering. */
function pathOf(file: File): string {
  return file.webkitRelativePath || file.name;
}

function chooseImages(files: Iterable<File>): void {
  images = [...files].filter((file) => IMAGE_NAME.test(file.name))
    .sort((a, b) => pathOf(a) < pathOf(b) ? -1 : pathOf(a) > pathOf(b) ? 1 : 0);
  const size = images.reduce((total, file) => total + file.size, 0);
  $("#image-folder-name").textContent = images.length === 0
    ? "no images in it"
    : `${images.length} images (${formatBytes(size)})`;
  $("#image-folder").closest(".drop")?.classList.toggle("chosen", images.length > 0);
  updateButton();
}

$<HTMLInputElement>("#image-folder").addEventListener("change", (event) => {
  chooseImages((event.target as HTMLInputElement).files ?? []);
});

/** The calibration settings of the form; a message for a value that does not parse. */
function calibrationSettings(): Calibration | string {
  const transform: Transform = {};
  const resize = $<HTMLInputElement>("#resize").value.trim();
  if (resize !== "") {
    const match = /^(\d+)\s*[xX×]\s*(\d+)$/.exec(resize);
    if (!match || Number(match[1]) < 1 || Number(match[2]) < 1) {
      return `Resize needs HEIGHTxWIDTH, e.g. 240x320, not "${resize}"`;
    }
    transform.resize = { height: Number(match[1]), width: Number(match[2]) };
  }
  const mean = $<HTMLInputElement>("#mean").value.trim();
  if (mean !== "") {
    const values = mean.split(",").map((part) => part.trim() === "" ? NaN : Number(part));
    if (values.some((value) => !Number.isFinite(value)) || ![1, 3].includes(values.length)) {
      return `Mean needs one number or three (B,G,R), not "${mean}"`;
    }
    transform.mean = values;
  }
  const scale = $<HTMLInputElement>("#scale").value.trim();
  if (scale !== "") {
    if (!Number.isFinite(Number(scale))) return `Scale needs a number, not "${scale}"`;
    transform.scale = Number(scale);
  }
  if ($<HTMLInputElement>("#rgb").checked) transform.rgb = true;
  if ($<HTMLInputElement>("#gray").checked) transform.gray = true;
  const algorithm = $<HTMLSelectElement>("#algo").value as ActivationAlgorithm;
  return { images, transform, algorithm };
}

for (const name of Object.keys(INPUTS) as InputName[]) {
  const input = $<HTMLInputElement>(INPUTS[name].input);
  input.addEventListener("change", () => {
    if (input.files?.[0]) choose(name, input.files[0]);
  });
}

/** Files dropped anywhere on the page go to the input their extension names. */
document.addEventListener("dragover", (event) => {
  event.preventDefault();
  document.body.classList.add("dragging");
});
document.addEventListener("dragleave", (event) => {
  if (event.relatedTarget === null) document.body.classList.remove("dragging");
});
document.addEventListener("drop", (event) => {
  event.preventDefault();
  document.body.classList.remove("dragging");
  const target = (event.target as Element).closest?.("[data-input]")?.getAttribute("data-input");
  const dropped = [...event.dataTransfer?.files ?? []];
  if (target === "images" || (target === null && dropped.every((f) => IMAGE_NAME.test(f.name)))) {
    chooseImages(dropped);
    return;
  }
  for (const file of dropped) {
    const name = target as InputName | null ??
      (Object.keys(INPUTS) as InputName[]).find((key) => INPUTS[key].matches.test(file.name))!;
    choose(name, file);
  }
});

/** The stages of a conversion in order, for the progress bar. */
const CONVERT_STAGES = ["load", "record", "fuse", "quantize", "info", "serialize"];

/** The stages of the running job (with "read" and "calibrate" first when calibrating). */
let stages = CONVERT_STAGES;

let worker: Worker | undefined;
const downloadUrls: string[] = [];

$("#inputs").addEventListener("submit", async (event) => {
  event.preventDefault();
  const { model, weights, record } = chosen;
  if (!model || !weights || (!record && images.length === 0)) return;
  const calibration = record ? undefined : calibrationSettings();
  if (typeof calibration === "string") {
    showError(calibration);
    return;
  }
  setBusy(true);
  showError(undefined);
  $("#result").hidden = true;
  stages = calibration ? ["read", "calibrate", ...CONVERT_STAGES] : CONVERT_STAGES;
  const request: ConvertRequest = {
    model: await model.text(),
    weights,
    record: record ? await record.text() : calibration!,
    names: { model: model.name, weights: weights.name, record: record?.name },
  };
  worker ??= new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  worker.onmessage = ({ data }: MessageEvent<WorkerMessage>) => {
    if (data.type === "progress") {
      showProgress(data.stage, data.done, data.total);
    } else if (data.type === "done") {
      setBusy(false);
      showResult(data.files, data.report, data.layers, data.calibration);
    } else {
      setBusy(false);
      showError(String(data.error.formatted ?? `error[${data.error.code}] ${data.error.message}`));
    }
  };
  worker.onerror = (event) => {
    setBusy(false);
    showError(`the conversion worker failed: ${event.message}`);
  };
  worker.postMessage(request);
});

function showProgress(stage: string, done: number, total: number): void {
  const index = Math.max(0, stages.indexOf(stage));
  const fraction = total > 0 ? done / total : 1;
  const progress = $<HTMLProgressElement>("#progress");
  progress.value = Math.max(progress.value, (index + fraction) / stages.length);
  $("#stage").textContent = `${stage} ${total > 1 ? `${done}/${total}` : ""}`;
}

function setBusy(busy: boolean): void {
  $<HTMLButtonElement>("#convert").disabled = busy;
  $("#progress-box").hidden = !busy;
  if (busy) $<HTMLProgressElement>("#progress").value = 0;
  document.body.classList.toggle("busy", busy);
}

function showError(message: string | undefined): void {
  $("#error").hidden = message === undefined;
  $("#error").textContent = message ?? "";
}

function showResult(
  files: ConvertedBlobs,
  report: ConvertReport,
  layers: LayerRow[],
  calibration: CalibrationSummary | undefined,
): void {
  const total = Object.values(report.timings).reduce((a, b) => a + b, 0);
  $("#summary").textContent = `Quantized ${report.quantizedLayers.length} layers, fused ` +
    `${report.fusedComposites.length} BatchNorm + Scale pairs in ${total.toFixed(0)} ms.`;
  $("#calibration-summary").hidden = calibration === undefined;
  $("#calibration-summary").textContent = calibration === undefined ? "" : `Calibrated ` +
    `${calibration.layers.length} layers on ${calibration.samples} images (` +
    calibration.layers.map((stats) =>
      `${stats.layer}: ${stats.range.map((v) => v.toPrecision(4)).join(" … ")}`
    ).join("; ") + ").";
  const warnings = [...(calibration?.warnings ?? []), ...report.warnings];
  $("#warnings").replaceChildren(...warnings.map((warning) => h("li", {}, warning)));
  showDownloads(files, calibration?.record);
  showLayers(layers);
  $("#result").hidden = false;
}

function showDownloads(files: ConvertedBlobs, record: string | undefined): void {
  for (const url of downloadUrls.splice(0)) URL.revokeObjectURL(url);
  const prefix = $<HTMLInputElement>("#prefix").value.trim();
  const { names } = outputNames(prefix);
  const all: Record<string, Blob> = { ...files };
  const named: Record<string, string> = { ...names };
  if (record !== undefined) {
    all.record = new Blob([record], { type: "text/plain" });
    named.record = recordName(prefix);
  }
  const items = Object.keys(named).map((key) => {
    const blob = all[key];
    const url = URL.createObjectURL(blob);
    downloadUrls.push(url);
    const name = named[key];
    return h(
      "li",
      {},
      h("a", { href: url, download: name, "data-output": key }, name),
      h("span", { class: "size" }, formatBytes(blob.size)),
    );
  });
  $("#downloads").replaceChildren(...items);
}

function showLayers(layers: LayerRow[]): void {
  const rows = layers.map((row) => {
    const scaleW = row.factors?.scaleW;
    let min = Infinity;
    let max = -Infinity;
    for (const value of scaleW ?? []) {
      min = Math.min(min, value);
      max = Math.max(max, value);
    }
    const scaleWText = scaleW === undefined
      ? "—"
      : scaleW.length === 1
      ? `${scaleW[0].toPrecision(6)} (per tensor)`
      : `${scaleW.length} channels, ${min.toPrecision(4)} … ${max.toPrecision(4)}`;
    return h(
      "tr",
      { "data-layer": row.name },
      h("td", { class: "name" }, row.name),
      h("td", {}, row.type),
      h("td", {}, row.fusedWith.length ? `+ ${row.fusedWith.join(" + ")}` : "—"),
      h("td", { class: "number" }, row.factors?.scaleD ?? "—"),
      h("td", { class: "number" }, row.factors ? String(row.factors.offsetD) : "—"),
      h("td", { class: "number" }, scaleWText),
      h("td", {}, row.sharedQuant ?? (row.factors ? "own" : "float (fused only)")),
    );
  });
  $("#layers tbody").replaceChildren(...rows);

  const plotted = layers.filter((row) => row.factors !== undefined);
  const select = $<HTMLSelectElement>("#plot-layer");
  select.replaceChildren(
    ...plotted.map((row) =>
      h("option", { value: row.name }, `${row.name} (${row.factors!.scaleW.length})`)
    ),
  );
  const widest = plotted.reduce<LayerRow | undefined>(
    (best, row) => best && best.factors!.scaleW.length >= row.factors!.scaleW.length ? best : row,
    undefined,
  );
  select.value = widest?.name ?? "";
  select.onchange = () => plot(plotted.find((row) => row.name === select.value));
  plot(widest);
}

/** Draws the weight scales of `row` as a bar per output channel. */
function plot(row: LayerRow | undefined): void {
  const figure = $("#plot");
  if (row?.factors === undefined) {
    figure.replaceChildren();
    return;
  }
  const values = row.factors.scaleW;
  const width = 720, height = 260, left = 64, right = 12, top = 14, bottom = 36;
  const max = Math.max(...values) || 1;
  const plotWidth = width - left - right, plotHeight = height - top - bottom;
  const step = plotWidth / values.length;
  const y = (value: number) => top + plotHeight * (1 - value / max);
  const bars = [...values].map((value, channel) =>
    s(
      "rect",
      {
        class: "bar",
        x: left + channel * step + step * 0.1,
        y: y(value),
        width: Math.max(step * 0.8, 0.5),
        height: plotHeight - (y(value) - top),
      },
      s("title", {}, document.createTextNode(`channel ${channel}: ${value}`)),
    )
  );
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((fraction) => {
    const value = max * fraction;
    return s(
      "g",
      { class: "tick" },
      s("line", { x1: left, x2: width - right, y1: y(value), y2: y(value) }),
      text(left - 6, y(value) + 4, value === 0 ? "0" : value.toPrecision(3), "end"),
    );
  });
  const xLabels = [0, Math.floor((values.length - 1) / 2), values.length - 1]
    .filter((channel, i, all) => all.indexOf(channel) === i)
    .map((channel) => text(left + (channel + 0.5) * step, height - bottom + 16, `${channel}`));
  const svg = s(
    "svg",
    {
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": `scale_w per output channel of ${row.name}`,
    },
    ...ticks,
    ...bars,
    ...xLabels,
    text(left + plotWidth / 2, height - 4, `output channel of ${row.name}`),
  );
  figure.replaceChildren(svg);
}

function text(x: number, y: number, content: string, anchor = "middle"): SVGElement {
  return s("text", { x, y, "text-anchor": anchor }, document.createTextNode(content));
}
