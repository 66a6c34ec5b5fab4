/**
 * Preprocessing settings read from a data layer of a train/test prototxt: its `transform_param`
 * (`scale`, `mean_value`, `mean_file`, `crop_size`) and `image_data_param` (`new_height`,
 * `new_width`, `is_color`, `root_folder`, `source`). The TEST-phase layer is preferred.
 *
 * @module
 */

import { Layer } from "../caffe/net.ts";
import { upgradeV1Layer } from "../caffe/upgrade.ts";
import { ConvertError } from "../errors.ts";
import { caffeType } from "../proto/schema.ts";
import { parseText } from "../proto/text_read.ts";
import { TextMessage } from "../proto/tree.ts";
import type { Transform } from "./transform.ts";

/** What a data layer says about its samples. */
export interface DataLayerSettings {
  /** The layer read. */
  layer: string;
  /** Its settings (without the mean file's values: see `meanFile`). */
  transform: Transform;
  /** `transform_param.mean_file`, a path as written. */
  meanFile?: string;
  /** `image_data_param.source`: the list file, as written. */
  source?: string;
  /** `image_data_param.root_folder`. */
  rootFolder?: string;
}

/** True when the layer has `include { phase: TEST }`. */
function isTestLayer(layer: Layer): boolean {
  return layer.params.getAll("include").some((rule) =>
    rule instanceof TextMessage && rule.get("phase") === "TEST"
  );
}

/**
 * The settings of the data layer in `text` (a prototxt): the first layer with a
 * `transform_param` or `image_data_param` and `include { phase: TEST }`, else the first such
 * layer. None is a `BAD_INPUT` naming `file`. The net is not checked as a deploy net is: train/test
 * nets have a data layer per phase writing the same tops.
 */
export function dataLayerSettings(text: string, file: string): DataLayerSettings {
  const tree = parseText(text, caffeType("caffe.NetParameter"), file);
  const layers = tree.fields.flatMap((field) =>
    field.unknown || !(field.value instanceof TextMessage)
      ? []
      : field.name === "layer"
      ? [new Layer(field.value)]
      : field.name === "layers"
      ? [new Layer(upgradeV1Layer(field.value))]
      : []
  );
  const candidates = layers.filter((layer) =>
    layer.params.message("transform_param") !== undefined ||
    layer.params.message("image_data_param") !== undefined
  );
  const layer = candidates.find(isTestLayer) ?? candidates[0];
  if (layer === undefined) {
    throw new ConvertError(
      "BAD_INPUT",
      "no data layer with transform_param or image_data_param",
      { file },
    );
  }
  const transform: Transform = {};
  const number = (message: string, field: string) => {
    const value = layer.param(message, field);
    return typeof value === "number" ? value : undefined;
  };
  const scale = number("transform_param", "scale");
  if (scale !== undefined) transform.scale = scale;
  const crop = number("transform_param", "crop_size");
  if (crop !== undefined && crop > 0) transform.crop = crop;
  const mean = layer.paramAll("transform_param", "mean_value").map(Number);
  if (mean.length > 0) transform.mean = mean;
  const height = number("image_data_param", "new_height") ?? 0;
  const width = number("image_data_param", "new_width") ?? 0;
  if (height > 0 && width > 0) transform.resize = { height, width };
  if (layer.param("image_data_param", "is_color") === false) transform.gray = true;
  const settings: DataLayerSettings = { layer: layer.name, transform };
  const stringParam = (message: string, field: string) => {
    const value = layer.param(message, field);
    return typeof value === "string" && value !== "" ? value : undefined;
  };
  const meanFile = stringParam("transform_param", "mean_file");
  if (meanFile !== undefined) settings.meanFile = meanFile;
  const source = stringParam("image_data_param", "source");
  if (source !== undefined) settings.source = source;
  const rootFolder = stringParam("image_data_param", "root_folder");
  if (rootFolder !== undefined) settings.rootFolder = rootFolder;
  return settings;
}
