/**
 * Layers that move data without arithmetic: Input, Split, Concat, Slice, Flatten, Reshape,
 * Permute and Crop, with Caffe's parameter rules (legacy `concat_dim` / `slice_dim` included).
 *
 * @module
 */

import { numberParam } from "../caffe/layers.ts";
import type { Layer } from "../caffe/net.ts";
import { TextMessage } from "../proto/tree.ts";
import { eachBottom, type RunContext, type RunnerTable } from "./context.ts";
import {
  badInput,
  canonicalAxis,
  checkTensorSize,
  type Domain,
  FLOAT,
  product,
  shapeText,
  type Value,
} from "./tensor.ts";

/** The same numbers under a new shape. */
function reshaped(value: Value, shape: number[]): Value {
  return { tensor: { shape, data: value.tensor.data }, domain: value.domain };
}

/** The common domain of several values; mixing float and deploy integers is an error. */
function commonDomain(layer: Layer, values: Value[]): Domain {
  const domain = values[0].domain;
  if (values.some((value) => JSON.stringify(value.domain) !== JSON.stringify(domain))) {
    throw badInput(layer, "its bottoms mix float blobs with a deploy model's integer blobs");
  }
  return domain;
}

/** Input layer: its tops are the run's inputs. */
function input(layer: Layer, _bottoms: Value[], context: RunContext): Value[] {
  return layer.tops.map((name) => {
    const tensor = context.inputs.get(name);
    if (tensor === undefined) throw badInput(layer, `no input tensor for "${name}"`);
    return { tensor, domain: FLOAT };
  });
}

/**
 * Concat along `axis` (or legacy `concat_dim`), default 1: copies each bottom's contiguous chunk
 * per outer index.
 */
function concat(layer: Layer, bottoms: Value[], context: RunContext): Value[] {
  const first = bottoms[0].tensor.shape;
  const legacy = layer.param("concat_param", "concat_dim");
  const axis = canonicalAxis(
    layer,
    typeof legacy === "number" ? legacy : numberParam(layer, "concat_param", "axis", 1),
    first.length,
  );
  for (const { tensor } of bottoms) {
    const same = tensor.shape.length === first.length &&
      tensor.shape.every((size, i) => i === axis || size === first[i]);
    if (!same) {
      throw badInput(
        layer,
        `bottoms ${shapeText(first)} and ${
          shapeText(tensor.shape)
        } cannot be joined on axis ${axis}`,
      );
    }
  }
  const outer = product(first.slice(0, axis));
  const inner = product(first.slice(axis + 1));
  const total = bottoms.reduce((sum, { tensor }) => sum + tensor.shape[axis], 0);
  const shape = first.slice();
  shape[axis] = total;
  checkTensorSize(layer.tops[0], shape, layer);
  const data = context.kernels.outputArray(outer * total * inner);
  let offset = 0;
  for (const { tensor } of bottoms) {
    const chunk = tensor.shape[axis] * inner;
    for (let o = 0; o < outer; o++) {
      data.set(tensor.data.subarray(o * chunk, (o + 1) * chunk), o * total * inner + offset);
    }
    offset += chunk;
  }
  return [{ tensor: { shape, data }, domain: commonDomain(layer, bottoms) }];
}

/** Slice along `axis` (or legacy `slice_dim`), default 1, at `slice_point`s or in equal parts. */
function slice(layer: Layer, bottoms: Value[], context: RunContext): Value[] {
  const [value] = bottoms;
  const { shape, data } = value.tensor;
  const legacy = layer.param("slice_param", "slice_dim");
  const axis = canonicalAxis(
    layer,
    typeof legacy === "number" ? legacy : numberParam(layer, "slice_param", "axis", 1),
    shape.length,
  );
  const extent = shape[axis];
  const count = layer.tops.length;
  let points = layer.paramAll("slice_param", "slice_point").map(Number);
  if (points.length === 0) {
    if (extent % count !== 0) {
      throw badInput(layer, `axis ${axis} of ${extent} does not split into ${count} equal parts`);
    }
    points = Array.from({ length: count - 1 }, (_, i) => ((i + 1) * extent) / count);
  }
  const bounds = [0, ...points, extent];
  if (points.length !== count - 1 || bounds.some((b, i) => i > 0 && b <= bounds[i - 1])) {
    throw badInput(
      layer,
      `slice points [${
        points.join(", ")
      }] do not cut axis ${axis} of ${extent} into ${count} parts`,
    );
  }
  const outer = product(shape.slice(0, axis));
  const inner = product(shape.slice(axis + 1));
  return layer.tops.map((_, i) => {
    const size = bounds[i + 1] - bounds[i];
    const part = context.kernels.outputArray(outer * size * inner);
    for (let o = 0; o < outer; o++) {
      const start = (o * extent + bounds[i]) * inner;
      part.set(data.subarray(start, start + size * inner), o * size * inner);
    }
    const partShape = shape.slice();
    partShape[axis] = size;
    return { tensor: { shape: partShape, data: part }, domain: value.domain };
  });
}

/** Flatten axes `axis` .. `end_axis` (defaults 1 and -1) into one. */
function flatten(layer: Layer, value: Value): Value {
  const { shape } = value.tensor;
  const start = canonicalAxis(layer, numberParam(layer, "flatten_param", "axis", 1), shape.length);
  const end = canonicalAxis(
    layer,
    numberParam(layer, "flatten_param", "end_axis", -1),
    shape.length,
  );
  if (end < start) {
    throw badInput(
      layer,
      `end_axis ${end} comes before axis ${start} of input ${shapeText(shape)}`,
    );
  }
  return reshaped(value, [
    ...shape.slice(0, start),
    product(shape.slice(start, end + 1)),
    ...shape.slice(end + 1),
  ]);
}

/**
 * Reshape with Caffe's rules: dims 0 copy the input's, one -1 is inferred; `axis`/`num_axes` pick
 * the replaced range (a negative axis counts from after the last axis).
 */
function reshape(layer: Layer, value: Value): Value {
  const { shape } = value.tensor;
  const shapeMessage = layer.params.message("reshape_param")?.message("shape") ?? new TextMessage();
  const dims = shapeMessage.getAll("dim").map(Number);
  const axisParam = numberParam(layer, "reshape_param", "axis", 0);
  const start = axisParam >= 0 ? axisParam : shape.length + axisParam + 1;
  const numAxes = numberParam(layer, "reshape_param", "num_axes", -1);
  const end = numAxes === -1 ? shape.length : start + numAxes;
  if (start < 0 || start > shape.length || end < start || end > shape.length) {
    throw badInput(
      layer,
      `axis ${axisParam} / num_axes ${numAxes} do not fit input ${shapeText(shape)}`,
    );
  }
  const middle = dims.map((dim, i) => {
    if (dim !== 0) return dim;
    if (start + i >= shape.length) {
      throw badInput(layer, `dim ${i} is 0 but the input has no axis ${start + i}`);
    }
    return shape[start + i];
  });
  const result = [...shape.slice(0, start), ...middle, ...shape.slice(end)];
  const inferred = result.indexOf(-1);
  const count = product(shape);
  if (inferred >= 0) {
    const known = product(result.filter((_, i) => i !== inferred));
    result[inferred] = known === 0 ? 0 : count / known;
  }
  if (result.some((dim) => !Number.isInteger(dim) || dim < 0) || product(result) !== count) {
    throw badInput(layer, `cannot reshape ${shapeText(shape)} to [${dims.join(", ")}]`);
  }
  return reshaped(value, result);
}

/** SSD's Permute: output axis i is input axis order[i]; unlisted axes follow in their order. */
function permute(layer: Layer, value: Value, context: RunContext): Value {
  const { shape, data } = value.tensor;
  const order = layer.paramAll("permute_param", "order").map(Number);
  if (
    order.some((axis) => !Number.isInteger(axis) || axis < 0 || axis >= shape.length) ||
    new Set(order).size !== order.length
  ) {
    throw badInput(layer, `order [${order.join(", ")}] does not fit a ${shape.length}-D input`);
  }
  for (let axis = 0; axis < shape.length; axis++) if (!order.includes(axis)) order.push(axis);
  if (order.every((axis, i) => axis === i)) return value;
  const permuted = context.kernels.permute(data, shape, order);
  return {
    tensor: { shape: order.map((axis) => shape[axis]), data: permuted },
    domain: value.domain,
  };
}

/**
 * Crop bottom 0 to bottom 1's shape from `axis` (default 2) on, at `offset`s (none: 0; one: for
 * every cropped axis; else one per cropped axis).
 */
function crop(layer: Layer, bottoms: Value[], context: RunContext): Value[] {
  if (bottoms.length !== 2) throw badInput(layer, `Crop needs 2 bottoms, got ${bottoms.length}`);
  const [source, reference] = bottoms.map((value) => value.tensor);
  const ndim = source.shape.length;
  const axis = canonicalAxis(layer, numberParam(layer, "crop_param", "axis", 2), ndim);
  const offsets = layer.paramAll("crop_param", "offset").map(Number);
  if (offsets.length > 1 && offsets.length !== ndim - axis) {
    throw badInput(layer, `${offsets.length} offsets for ${ndim - axis} cropped axes`);
  }
  const start = source.shape.map((_, i) =>
    i < axis ? 0 : offsets.length === 0 ? 0 : offsets[offsets.length === 1 ? 0 : i - axis]
  );
  const shape = source.shape.map((size, i) => i < axis ? size : reference.shape[i]);
  if (
    reference.shape.length !== ndim || shape.some((size, i) => start[i] + size > source.shape[i])
  ) {
    throw badInput(
      layer,
      `cannot crop ${shapeText(source.shape)} to ${shapeText(reference.shape)} at axis ${axis}`,
    );
  }
  const data = context.kernels.outputArray(product(shape));
  const rowLength = shape[ndim - 1];
  const rows = product(shape.slice(0, -1));
  const strides = source.shape.map((_, i) => product(source.shape.slice(i + 1)));
  for (let row = 0; row < rows; row++) {
    let rest = row;
    let from = start[ndim - 1];
    for (let d = ndim - 2; d >= 0; d--) {
      from += ((rest % shape[d]) + start[d]) * strides[d];
      rest = Math.floor(rest / shape[d]);
    }
    data.set(source.data.subarray(from, from + rowLength), row * rowLength);
  }
  return [{ tensor: { shape, data }, domain: bottoms[0].domain }];
}

/** Input, Split, Concat, Slice, Flatten, Reshape, Permute, Crop. */
export const shapeRunners: RunnerTable = {
  Input: { run: input },
  Split: {
    run: (layer, bottoms) => layer.tops.map(() => bottoms[0]),
    readsInt8: true,
    readsAccumulators: true,
  },
  Concat: { run: concat },
  Slice: { run: slice },
  Flatten: {
    run: (layer, bottoms) => eachBottom(layer, bottoms, (value) => flatten(layer, value)),
  },
  Reshape: {
    run: (layer, bottoms) => eachBottom(layer, bottoms, (value) => reshape(layer, value)),
  },
  Permute: {
    run: (layer, bottoms, context) =>
      eachBottom(layer, bottoms, (value) => permute(layer, value, context)),
  },
  Crop: { run: crop },
};
