/**
 * The names, usage and help of the data options (src/cli/data_options.ts reads them): a module
 * of its own so that a command may list them without loading the image decoders.
 *
 * @module
 */

/** The valued options, for a command's `parseArgs` spec. */
export const DATA_OPTIONS = [
  "data",
  "input",
  "resize",
  "crop",
  "mean",
  "mean-file",
  "scale",
  "transform-from",
  "samples",
  "labels",
];

/** The flags, for a command's `parseArgs` spec. */
export const DATA_FLAGS = ["rgb", "gray"];

/** The usage text of the data options. */
export const DATA_USAGE =
  "[--data <dir|list.txt|file.npy|image>]... [--input <blob>=<file.npy|dir>]... " +
  "[--resize HxW] [--crop N] [--mean B,G,R | --mean-file F] [--scale X] [--rgb] [--gray] " +
  "[--transform-from <prototxt>] [--samples N] [--labels F]";

/** The help text of the data options. */
export const DATA_HELP =
  "Data: --data takes folders of images (.jpg/.png) or .npy files, Caffe ImageData\n" +
  "list files (`path label` lines) and single files; --input <blob>=<file.npy> feeds one\n" +
  "blob (repeat it, or give a folder, for several samples). Images are preprocessed as Caffe's\n" +
  "TEST phase: --resize HxW (OpenCV INTER_LINEAR), --crop N (centre), --mean B,G,R or\n" +
  "--mean-file mean.binaryproto, --scale X, --rgb, --gray, or all of it from a data layer of\n" +
  "--transform-from train_val.prototxt. --samples N uses the first N samples; --labels F gives\n" +
  "labels (one integer a line) to .npy samples.";
