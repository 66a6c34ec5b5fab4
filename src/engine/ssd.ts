/**
 * SSD's PriorBox: the anchor boxes of a feature map, from its size and the image's (no weights,
 * no input values). DetectionOutput (decoding and NMS) is not simulated.
 *
 * @module
 */

import { boolParam, numberParam } from "../caffe/layers.ts";
import type { Layer } from "../caffe/net.ts";
import type { RunnerTable } from "./context.ts";
import { badInput, checkTensorSize, floatValue, shapeText, type Value } from "./tensor.ts";

/** The aspect ratios SSD uses: 1, then each new ratio (and its inverse when `flip`). */
function aspectRatios(layer: Layer): number[] {
  const ratios = [1];
  const flip = boolParam(layer, "prior_box_param", "flip", true);
  for (const value of layer.paramAll("prior_box_param", "aspect_ratio").map(Number)) {
    const ratio = Math.fround(value);
    if (ratios.some((known) => Math.abs(ratio - known) < 1e-6)) continue;
    ratios.push(ratio);
    if (flip) ratios.push(Math.fround(1 / ratio));
  }
  return ratios;
}

/** A [height, width] of `prior_box_param`: `<field>_h`/`<field>_w`, else `<field>`, else 0. */
function sizePair(layer: Layer, field: string): [number, number] {
  const both = numberParam(layer, "prior_box_param", field, 0);
  return [
    numberParam(layer, "prior_box_param", `${field}_h`, both),
    numberParam(layer, "prior_box_param", `${field}_w`, both),
  ];
}

/**
 * PriorBox: top [1, 2, H*W*priors*4]: row 0 the boxes (xmin, ymin, xmax, ymax) normalized by the
 * image size, row 1 the variances, with SSD's order (per position: per min_size the square box,
 * the sqrt(min*max) box, then the other aspect ratios) and float32 arithmetic.
 */
function priorBox(layer: Layer, bottoms: Value[]): Value[] {
  if (bottoms.length !== 2) {
    throw badInput(layer, `PriorBox needs 2 bottoms, got ${bottoms.length}`);
  }
  const [feature, image] = bottoms.map((value) => value.tensor.shape);
  if (feature.length !== 4 || image.length !== 4) {
    throw badInput(layer, `needs 4-D bottoms, got ${shapeText(feature)} and ${shapeText(image)}`);
  }
  const minSizes = layer.paramAll("prior_box_param", "min_size").map((v) => Math.fround(Number(v)));
  const maxSizes = layer.paramAll("prior_box_param", "max_size").map((v) => Math.fround(Number(v)));
  if (minSizes.length === 0 || (maxSizes.length > 0 && maxSizes.length !== minSizes.length)) {
    throw badInput(layer, `${minSizes.length} min_size and ${maxSizes.length} max_size values`);
  }
  const variances = layer.paramAll("prior_box_param", "variance").map((v) =>
    Math.fround(Number(v))
  );
  if (variances.length === 0) variances.push(Math.fround(0.1));
  if (variances.length !== 1 && variances.length !== 4) {
    throw badInput(layer, `${variances.length} variance values (1 or 4 expected)`);
  }
  const ratios = aspectRatios(layer);
  const [layerHeight, layerWidth] = feature.slice(2);
  const [imageSizeH, imageSizeW] = sizePair(layer, "img_size");
  const imageHeight = imageSizeH === 0 || imageSizeW === 0 ? image[2] : imageSizeH;
  const imageWidth = imageSizeH === 0 || imageSizeW === 0 ? image[3] : imageSizeW;
  const [stepParamH, stepParamW] = sizePair(layer, "step");
  const useSteps = stepParamH !== 0 && stepParamW !== 0;
  const stepH = Math.fround(useSteps ? stepParamH : imageHeight / layerHeight);
  const stepW = Math.fround(useSteps ? stepParamW : imageWidth / layerWidth);
  const offset = Math.fround(numberParam(layer, "prior_box_param", "offset", 0.5));
  const clip = boolParam(layer, "prior_box_param", "clip", false);
  const priors = ratios.length * minSizes.length + maxSizes.length;
  const dim = layerHeight * layerWidth * priors * 4;
  checkTensorSize(layer.tops[0], [1, 2, dim], layer);
  const data = new Float32Array(2 * dim);
  let index = 0;
  const pushBox = (centerX: number, centerY: number, boxWidth: number, boxHeight: number) => {
    data[index++] = (centerX - boxWidth / 2) / imageWidth;
    data[index++] = (centerY - boxHeight / 2) / imageHeight;
    data[index++] = (centerX + boxWidth / 2) / imageWidth;
    data[index++] = (centerY + boxHeight / 2) / imageHeight;
  };
  for (let h = 0; h < layerHeight; h++) {
    for (let w = 0; w < layerWidth; w++) {
      const centerX = Math.fround(Math.fround(w + offset) * stepW);
      const centerY = Math.fround(Math.fround(h + offset) * stepH);
      minSizes.forEach((minSize, s) => {
        pushBox(centerX, centerY, minSize, minSize);
        if (maxSizes.length > 0) {
          const size = Math.fround(Math.sqrt(minSize * maxSizes[s]));
          pushBox(centerX, centerY, size, size);
        }
        for (const ratio of ratios) {
          if (Math.abs(ratio - 1) < 1e-6) continue;
          const root = Math.sqrt(ratio);
          pushBox(centerX, centerY, Math.fround(minSize * root), Math.fround(minSize / root));
        }
      });
    }
  }
  if (clip) { for (let i = 0; i < dim; i++) data[i] = Math.min(Math.max(data[i], 0), 1); }
  for (let i = 0; i < dim; i++) data[dim + i] = variances[variances.length === 1 ? 0 : i % 4];
  return [floatValue([1, 2, dim], data)];
}

/** PriorBox. */
export const ssdRunners: RunnerTable = {
  PriorBox: { run: priorBox },
};
