/**
 * The checks Caffe's layers make on their own parameters when the net is set up
 * (`BaseConvolutionLayer::LayerSetUp`, `PoolingLayer::LayerSetUp`), before any shape is known:
 * a net Caffe refuses to build is refused here too, with the field's place.
 *
 * @module
 */

import { ConvertError } from "../errors.ts";
import type { TextField, TextMessage } from "../proto/tree.ts";
import type { Layer } from "./net.ts";

/** A parameter problem: the message, and the field it concerns (the layer when absent). */
type Problem = [message: string, field?: TextField];

/**
 * Checks `layer`'s convolution or pooling parameters as Caffe's `LayerSetUp` does (plus the
 * divisions by zero Caffe would crash on: `group: 0`, pooling `stride: 0`, and `dilation: 0`,
 * which makes every tap of a kernel read one pixel).
 *
 * @throws {ConvertError} `BAD_LAYER_PARAM` at the offending field (or the layer), naming the layer.
 */
export function checkLayerParams(layer: Layer, file?: string): void {
  const problem = layer.type === "Convolution" || layer.type === "Deconvolution"
    ? convolutionProblem(layer.params.message("convolution_param"))
    : layer.type === "Pooling"
    ? poolingProblem(layer.params.message("pooling_param"))
    : undefined;
  if (problem === undefined) return;
  const [message, field] = problem;
  const at = field ?? layer.params.fields[0];
  throw new ConvertError(
    "BAD_LAYER_PARAM",
    `layer "${layer.name}" (${layer.type}): ${message}`,
    { file, line: at?.line, column: at?.column, layer: layer.name },
  );
}

/** The entries of field `name` of `message`, in order. */
function entries(message: TextMessage | undefined, name: string): TextField[] {
  return message?.fields.filter((field) => field.name === name) ?? [];
}

/** The first entry of `fields` whose value is not a number > 0. */
function firstNotPositive(fields: TextField[]): TextField | undefined {
  return fields.find((field) => !(typeof field.value === "number" && field.value > 0));
}

/**
 * A `<name>` / `<name>_h` + `<name>_w` pair of a parameter message given both ways (Caffe:
 * "Either kernel_size or kernel_h/w should be specified; not both.").
 */
function bothForms(
  message: TextMessage | undefined,
  name: string,
  split: string,
): Problem | undefined {
  const single = entries(message, name);
  const pair = [...entries(message, `${split}_h`), ...entries(message, `${split}_w`)];
  if (single.length === 0 || pair.length === 0) return undefined;
  return [`give either ${name} or ${split}_h/${split}_w, not both`, pair[0]];
}

/** Caffe's checks of a `convolution_param` (absent: every default). */
function convolutionProblem(param: TextMessage | undefined): Problem | undefined {
  const numOutput = param?.entry("num_output");
  const outputs = typeof numOutput?.value === "number" ? numOutput.value : 0;
  if (outputs <= 0) return ["num_output must be > 0", numOutput];
  const groupField = param?.entry("group");
  const group = typeof groupField?.value === "number" ? groupField.value : 1;
  if (group < 1) return [`group is ${group}; it must be at least 1`, groupField];
  if (outputs % group !== 0) {
    return [`num_output ${outputs} is not a multiple of group ${group}`, groupField];
  }
  const window = splitWindow(param) ?? windowProblem(param);
  if (window !== undefined) return window;
  const zeroDilation = firstNotPositive(entries(param, "dilation"));
  if (zeroDilation !== undefined) return ["every dilation must be > 0", zeroDilation];
  return undefined;
}

/**
 * The fields of one window setting in both its forms: `name` (repeated, one per axis) and
 * `<axisPrefix>_h` / `<axisPrefix>_w` (`kernel_size` / `kernel_h`, `stride` / `stride_h`).
 */
function windowFields(
  param: TextMessage | undefined,
  name: string,
  axisPrefix: string,
): TextField[] {
  return [
    ...entries(param, name),
    ...entries(param, `${axisPrefix}_h`),
    ...entries(param, `${axisPrefix}_w`),
  ];
}

/** A kernel, stride or pad given in both its forms, as Caffe refuses for convolution and pooling. */
function splitWindow(param: TextMessage | undefined): Problem | undefined {
  return bothForms(param, "kernel_size", "kernel") ?? bothForms(param, "stride", "stride") ??
    bothForms(param, "pad", "pad");
}

/** Caffe's kernel and stride checks, shared by convolution and (non-global) pooling. */
function windowProblem(param: TextMessage | undefined): Problem | undefined {
  const kernels = windowFields(param, "kernel_size", "kernel");
  if (kernels.length === 0) return ["it has no kernel_size (or kernel_h and kernel_w)"];
  if ((entries(param, "kernel_h").length > 0) !== (entries(param, "kernel_w").length > 0)) {
    return ["kernel_h and kernel_w must be given together", kernels[0]];
  }
  const zeroKernel = firstNotPositive(kernels);
  if (zeroKernel !== undefined) return ["every kernel dimension must be > 0", zeroKernel];
  const zeroStride = firstNotPositive(windowFields(param, "stride", "stride"));
  if (zeroStride !== undefined) return ["every stride must be > 0", zeroStride];
  return undefined;
}

/** A number field of `param`, or `fallback`. */
function numberOf(param: TextMessage | undefined, name: string, fallback: number): number {
  const value = param?.get(name);
  return typeof value === "number" ? value : fallback;
}

/** Caffe's checks of a `pooling_param` (absent: every default). */
function poolingProblem(param: TextMessage | undefined): Problem | undefined {
  const split = splitWindow(param);
  if (split !== undefined) return split;
  if (param?.get("global_pooling") === true) {
    const kernels = windowFields(param, "kernel_size", "kernel");
    if (kernels.length > 0) return ["a global pooling takes no kernel size", kernels[0]];
    const moved = windowFields(param, "pad", "pad").find((field) => field.value !== 0) ??
      windowFields(param, "stride", "stride").find((field) => field.value !== 1);
    return moved === undefined
      ? undefined
      : ["a global pooling must have pad 0 and stride 1", moved];
  }
  const window = windowProblem(param);
  if (window !== undefined) return window;
  const kernelSize = numberOf(param, "kernel_size", 0);
  for (const axis of ["h", "w"]) {
    const kernel = numberOf(param, `kernel_${axis}`, kernelSize);
    const padField = param?.entry(`pad_${axis}`) ?? param?.entry("pad");
    const pad = typeof padField?.value === "number" ? padField.value : 0;
    if (pad >= kernel) {
      return [`pad ${pad} must be smaller than the kernel (${kernel}) along ${axis}`, padField];
    }
  }
  return undefined;
}
