/**
 * The names of the five output files (docs/formats.md), shared by the file API, the browser page and
 * the edge function.
 *
 * @module
 */

/** The five output paths. */
export interface OutputPaths {
  /** `<prefix>_fake_quant_model.prototxt` */
  fakeQuantModel: string;
  /** `<prefix>_fake_quant_weights.caffemodel` */
  fakeQuantWeights: string;
  /** `<prefix>_deploy_model.prototxt` */
  deployModel: string;
  /** `<prefix>_deploy_weights.caffemodel` */
  deployWeights: string;
  /** `<prefix>_quant.json` */
  quantInfo: string;
}

/**
 * The output directory and file names for a save path: `<dir>/<prefix>` gives
 * `<dir>/<prefix>_fake_quant_model.prototxt` and so on; `<dir>/` gives no prefix.
 */
export function outputNames(savePath: string): { dir: string; names: OutputPaths } {
  const slash = Math.max(savePath.lastIndexOf("/"), savePath.lastIndexOf("\\"));
  const dir = slash < 0 ? "." : savePath.slice(0, slash) || "/";
  const base = savePath.slice(slash + 1);
  const prefix = base === "" ? "" : `${base}_`;
  return {
    dir,
    names: {
      fakeQuantModel: `${prefix}fake_quant_model.prototxt`,
      fakeQuantWeights: `${prefix}fake_quant_weights.caffemodel`,
      deployModel: `${prefix}deploy_model.prototxt`,
      deployWeights: `${prefix}deploy_weights.caffemodel`,
      quantInfo: `${prefix}quant.json`,
    },
  };
}

/**
 * The record file's name for a save path, beside the five outputs (`quantize` writes it):
 * `<prefix>_record.txt`, or `record.txt` without a prefix.
 */
export function recordName(savePath: string): string {
  const { names } = outputNames(savePath);
  return names.quantInfo.replace(/quant\.json$/, "record.txt");
}
