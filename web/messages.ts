/**
 * The messages between the page (web/main.ts) and its conversion worker (web/worker.ts).
 *
 * @module
 */

import type { ConvertedFiles, ConvertReport } from "../src/quant/convert.ts";

/** Page → worker: the three inputs and their file names (for error messages). */
export interface ConvertRequest {
  /** The prototxt text. */
  model: string;
  /** The caffemodel bytes (transferred). */
  weights: ArrayBuffer;
  /** The record file text. */
  record: string;
  /** The chosen files' names. */
  names: { model: string; weights: string; record: string };
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
  | { type: "done"; files: ConvertedFiles; report: ConvertReport; layers: LayerRow[] }
  | { type: "error"; error: { code: string; message: string; [place: string]: unknown } };
