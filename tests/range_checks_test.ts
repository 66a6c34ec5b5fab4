import assert from "node:assert/strict";
import { type LayerCalibrationStats, loadNet, rangeWarnings } from "../core.ts";

/** A net with one input "data" and two layers reading "data" and "mid" (no weights needed). */
const NET = loadNet(
  `input: "data" input_shape { dim: 1 dim: 1 dim: 4 dim: 4 }
layer { name: "a" type: "ReLU" bottom: "data" top: "mid" }
layer { name: "b" type: "ReLU" bottom: "mid" top: "out" }
`,
  new Uint8Array(),
);

/** Statistics of a layer reading `blob` over `range` (only what rangeWarnings reads matters). */
function stats(layer: string, blob: string, range: [number, number]): LayerCalibrationStats {
  return {
    layer,
    blob,
    sharedWith: [],
    algorithm: "ifmr",
    range,
    clip: range,
    scaleD: 1,
    offsetD: 0,
    scaleW: [1],
    shape: [1, 4, 4],
    values: 16,
  };
}

Deno.test("rangeWarnings: raw pixels at a net input, a single value, values beyond ±1000", () => {
  const warned = (layers: LayerCalibrationStats[]) =>
    rangeWarnings(NET, layers).map((w) => `${w.layer}/${w.blob}: ${w.message.split(":")[0]}`);
  assert.deepEqual(warned([stats("a", "data", [0, 0.99]), stats("b", "mid", [-3, 8])]), []);
  // Mean-subtracted pixels (negative values) are not raw pixels.
  assert.deepEqual(warned([stats("a", "data", [-123.7, 151.1])]), []);
  assert.deepEqual(warned([stats("a", "data", [0, 255])]), [
    `a/data: net input "data" held values in [0, 255], like raw 8-bit pixels`,
  ]);
  assert.deepEqual(warned([stats("a", "data", [0, 31])]), [], "below 32: not taken for pixels");
  // "mid" is no net input: 0..255 there is an ordinary range.
  assert.deepEqual(warned([stats("b", "mid", [0, 255])]), []);
  assert.deepEqual(warned([stats("b", "mid", [0, 0])]), [
    `b/mid: "mid" held the single value 0 on this data`,
  ]);
  assert.deepEqual(warned([stats("b", "mid", [-1234.56, 0.123456])]), [
    `b/mid: "mid" held values in [-1235, 0.1235], beyond ±1000, which trained nets rarely compute on their own kind of data`,
  ]);
  assert.deepEqual(warned([stats("b", "mid", [-1000, 1000])]), [], "±1000 itself passes");
  // One warning per blob, even when several layers read it.
  assert.equal(
    rangeWarnings(NET, [stats("a", "data", [0, 255]), stats("b", "data", [0, 255])]).length,
    1,
  );
});
