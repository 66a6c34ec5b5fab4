/**
 * The messages between the page (web/main.ts) and its conversion worker (web/worker.ts).
 *
 * @module
 */

import type { ActivationAlgorithm } from "../src/calibrate/activation.ts";
import type { LayerCalibrationStats } from "../src/calibrate/calibrate.ts";
import type { Transform } from "../src/data/transform.ts";
import type { ConvertedBlobs, ConvertReport } from "../src/quant/convert.ts";

/** Page → worker: the inputs and their file names (for error messages). */
export interface ConvertRequest {
  /** The prototxt text. */
  model: string;
  /**
   * The chosen caffemodel file itself: a conversion reads it one layer at a time, so it is never
   * held whole in the page or the worker (calibration reads it whole, as it runs the net).
   */
  weights: File;
  /** The record file text, or calibration images to make it from. */
  record: string | Calibration;
  /** The chosen files' names. */
  names: { model: string; weights: string; record?: string };
}

/** Calibration images and how to read them. */
export interface Calibration {
  /** The images, in name order. */
  images: File[];
  /** Caffe's TEST-phase preprocessing. */
  transform: Transform;
  /** The activation algorithm. */
  algorithm: ActivationAlgorithm;
}

/** What calibration observed, for the page. */
export interface CalibrationSummary {
  /** The record made. */
  record: string;
  /** Samples used. */
  samples: number;
  /** Per quantized layer. */
  layers: LayerCalibrationStats[];
  /** Ranges that look wrong, and other notes. */
  warnings: string[];
}

/** One row of the page's layer table: a quantized or fused layer. */
export interface LayerRow {
  /** Layer name. */
  name: string;
  /** Layer type. */
  type: string;
  /** The BatchNorm and Scale folded into it (empty when not fused). */
  fusedWith: string[];
  /** The shared Quant layer feeding it, when it shares one with other layers. */
  sharedQuant?: string;
  /** The record's factors, when the layer is quantized. */
  factors?: {
    /** `scale_d`, printed as the shortest float32 decimal. */
    scaleD: string;
    /** `offset_d`. */
    offsetD: number;
    /** `scale_w`: one value, or one per output channel. */
    scaleW: Float32Array;
  };
}

/** Worker → page. */
export type WorkerMessage =
  | { type: "progress"; stage: string; done: number; total: number }
  | {
    type: "done";
    files: ConvertedBlobs;
    report: ConvertReport;
    layers: LayerRow[];
    calibration?: CalibrationSummary;
  }
  | { type: "error"; error: { code: string; message: string; [place: string]: unknown } };
