/**
 * The caffe-quant page: pick or drop the prototxt, caffemodel and record file; the conversion
 * runs in a Web Worker on this machine; the page shows what was fused and quantized, plots the
 * per-channel weight scales of a layer, and offers the five outputs as downloads.
 *
 * @module
 */

/// <reference lib="dom" />

import type { ConvertedFiles, ConvertReport } from "../src/quant/convert.ts";
import { outputNames } from "../src/output_names.ts";
import type { ConvertRequest, LayerRow, WorkerMessage } from "./messages.ts";

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

function choose(name: InputName, file: File): void {
  chosen[name] = file;
  $(`${INPUTS[name].input}-name`).textContent = `${file.name} (${formatBytes(file.size)})`;
  $(`${INPUTS[name].input}`).closest(".drop")?.classList.add("chosen");
  $<HTMLButtonElement>("#convert").disabled = !(chosen.model && chosen.weights && chosen.record);
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
  for (const file of event.dataTransfer?.files ?? []) {
    const name = target as InputName | null ??
      (Object.keys(INPUTS) as InputName[]).find((key) => INPUTS[key].matches.test(file.name))!;
    choose(name, file);
  }
});

let worker: Worker | undefined;
const downloadUrls: string[] = [];

$("#inputs").addEventListener("submit", async (event) => {
  event.preventDefault();
  const { model, weights, record } = chosen;
  if (!model || !weights || !record) return;
  setBusy(true);
  showError(undefined);
  $("#result").hidden = true;
  const request: ConvertRequest = {
    model: await model.text(),
    weights: await weights.arrayBuffer(),
    record: await record.text(),
    names: { model: model.name, weights: weights.name, record: record.name },
  };
  worker ??= new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  worker.onmessage = ({ data }: MessageEvent<WorkerMessage>) => {
    if (data.type === "progress") {
      showProgress(data.stage, data.done, data.total);
    } else if (data.type === "done") {
      setBusy(false);
      showResult(data.files, data.report, data.layers);
    } else {
      setBusy(false);
      showError(String(data.error.formatted ?? `error[${data.error.code}] ${data.error.message}`));
    }
  };
  worker.onerror = (event) => {
    setBusy(false);
    showError(`the conversion worker failed: ${event.message}`);
  };
  worker.postMessage(request, [request.weights]);
});

/** The stages of a conversion in order, for the progress bar. */
const STAGES = ["load", "record", "fuse", "quantize", "info", "serialize"];

function showProgress(stage: string, done: number, total: number): void {
  const index = Math.max(0, STAGES.indexOf(stage));
  const fraction = total > 0 ? done / total : 1;
  const progress = $<HTMLProgressElement>("#progress");
  progress.value = Math.max(progress.value, (index + fraction) / STAGES.length);
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

function showResult(files: ConvertedFiles, report: ConvertReport, layers: LayerRow[]): void {
  const total = Object.values(report.timings).reduce((a, b) => a + b, 0);
  $("#summary").textContent = `Quantized ${report.quantizedLayers.length} layers, fused ` +
    `${report.fusedComposites.length} BatchNorm + Scale pairs in ${total.toFixed(0)} ms.`;
  $("#warnings").replaceChildren(...report.warnings.map((warning) => h("li", {}, warning)));
  showDownloads(files);
  showLayers(layers);
  $("#result").hidden = false;
}

function showDownloads(files: ConvertedFiles): void {
  for (const url of downloadUrls.splice(0)) URL.revokeObjectURL(url);
  const prefix = $<HTMLInputElement>("#prefix").value.trim();
  const { names } = outputNames(prefix);
  const items = (Object.keys(names) as (keyof ConvertedFiles)[]).map((key) => {
    const content = files[key];
    const blob = new Blob([content as BlobPart], {
      type: typeof content === "string" ? "text/plain" : "application/octet-stream",
    });
    const url = URL.createObjectURL(blob);
    downloadUrls.push(url);
    const name = names[key];
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
