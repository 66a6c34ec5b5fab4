// Calibration kernels (SPEC §11): activation ranges, histograms, AMCT's IFMR search and our HFMG
// search, compiled to WebAssembly by scripts/build_wasm.ts.
//
// Every export works on data that the caller (src/wasm/calibrate.ts) has copied into scratch
// memory; arguments are byte offsets into linear memory. These kernels never allocate.
// Histogram counts are float64 (exact integers up to 2^53; HFMG's merged counts are fractional).
//
// The small helpers carry no @inline (deno fmt drops decorators on functions); binaryen's -O3
// inlines them.

/** IFMR's replacement threshold: a scale below it becomes 1 (SPEC §11 step 3). */
const MIN_SCALE: f64 = 1.1920929e-7;

/** Writes min and max of `count` float32 values (count >= 1) as two float32 at `out`; NaN wins. */
export function minMax(values: usize, count: i32, out: usize): void {
  let low = f32x4.splat(Infinity);
  let high = f32x4.splat(-Infinity);
  let at = values;
  let left = count;
  for (; left >= 4; left -= 4) {
    const lanes = v128.load(at);
    low = f32x4.min(low, lanes);
    high = f32x4.max(high, lanes);
    at += 16;
  }
  for (; left > 0; left--) {
    const lanes = f32x4.splat(load<f32>(at));
    low = f32x4.min(low, lanes);
    high = f32x4.max(high, lanes);
    at += 4;
  }
  let lowest = f32x4.extract_lane(low, 0);
  let highest = f32x4.extract_lane(high, 0);
  for (let lane = 1; lane < 4; lane++) {
    const lowLane = lane == 1
      ? f32x4.extract_lane(low, 1)
      : lane == 2
      ? f32x4.extract_lane(low, 2)
      : f32x4.extract_lane(low, 3);
    const highLane = lane == 1
      ? f32x4.extract_lane(high, 1)
      : lane == 2
      ? f32x4.extract_lane(high, 2)
      : f32x4.extract_lane(high, 3);
    lowest = min(lowest, lowLane);
    highest = max(highest, highLane);
  }
  store<f32>(out, lowest);
  store<f32>(out, highest, 4);
}

/**
 * Moves the non-zero values of `count` float32 values to the front, in order; returns how many
 * there are. (A zero's IFMR round-trip error is exactly 0, so the error sums skip zeros.)
 */
export function compactNonZero(values: usize, count: i32): i32 {
  let kept = 0;
  for (let index = 0; index < count; index++) {
    const value = load<f32>(values + (<usize> index << 2));
    if (value != 0) {
      store<f32>(values + (<usize> kept << 2), value);
      kept++;
    }
  }
  return kept;
}

/** The bin of `value` among `bins` equal bins over [lo, hi] (SPEC §11 step 1; 0 when hi = lo). */
function binOf(value: f64, lo: f64, hi: f64, bins: i32): i32 {
  if (!(hi > lo)) return 0;
  const position = Math.floor((value - lo) / (hi - lo) * <f64> bins);
  if (position < 0) return 0;
  return position >= <f64> bins ? bins - 1 : <i32> position;
}

/** Adds `count` float32 values to the float64 counts of `bins` equal bins over [lo, hi]. */
export function addToHistogram(
  values: usize,
  count: i32,
  lo: f64,
  hi: f64,
  bins: i32,
  counts: usize,
): void {
  for (let index = 0; index < count; index++) {
    const value = <f64> load<f32>(values + (<usize> index << 2));
    const bin = counts + (<usize> binOf(value, lo, hi, bins) << 3);
    store<f64>(bin, load<f64>(bin) + 1);
  }
}

/**
 * Spreads the counts of `bins` bins over [oldLo, oldHi] onto `bins` bins over [newLo, newHi]
 * (which holds the old range), adding to `newCounts`: each old bin's count goes to the new bins
 * in proportion to overlap. An old range with oldHi = oldLo is a point: all its count goes to the
 * new bin of that point.
 */
export function rebinHistogram(
  oldCounts: usize,
  oldLo: f64,
  oldHi: f64,
  newCounts: usize,
  newLo: f64,
  newHi: f64,
  bins: i32,
): void {
  if (!(oldHi > oldLo)) {
    let total: f64 = 0;
    for (let bin = 0; bin < bins; bin++) total += load<f64>(oldCounts + (<usize> bin << 3));
    const target = newCounts + (<usize> binOf(oldLo, newLo, newHi, bins) << 3);
    store<f64>(target, load<f64>(target) + total);
    return;
  }
  const oldWidth = (oldHi - oldLo) / <f64> bins;
  const newWidth = (newHi - newLo) / <f64> bins;
  for (let bin = 0; bin < bins; bin++) {
    const count = load<f64>(oldCounts + (<usize> bin << 3));
    if (count == 0) continue;
    const start = oldLo + <f64> bin * oldWidth;
    const end = bin == bins - 1 ? oldHi : oldLo + <f64> (bin + 1) * oldWidth;
    let first = binOf(start, newLo, newHi, bins);
    const last = binOf(end, newLo, newHi, bins);
    if (first == last || !(end > start)) {
      const target = newCounts + (<usize> first << 3);
      store<f64>(target, load<f64>(target) + count);
      continue;
    }
    const length = end - start;
    for (; first <= last; first++) {
      const binStart = max(start, newLo + <f64> first * newWidth);
      const binEnd = first == bins - 1 ? end : min(end, newLo + <f64> (first + 1) * newWidth);
      if (binEnd <= binStart) continue;
      const target = newCounts + (<usize> first << 3);
      store<f64>(target, load<f64>(target) + count * ((binEnd - binStart) / length));
    }
  }
}

/** Writes the float32 scale, float32 1/scale and offset of a candidate at `index`. */
function storeCandidate(
  scale: f64,
  clipMin: f64,
  withOffset: bool,
  index: i32,
  scaleOut: usize,
  quantScaleOut: usize,
  offsetOut: usize,
): void {
  const usable = scale < MIN_SCALE ? 1 : scale;
  let offset: f64 = 0;
  if (withOffset) offset = min<f64>(127, max<f64>(-128, -128 - nearest<f64>(clipMin / usable)));
  const scaleD = <f32> usable;
  store<f32>(scaleOut + (<usize> index << 2), scaleD);
  store<f32>(quantScaleOut + (<usize> index << 2), <f32> 1 / scaleD);
  store<f32>(offsetOut + (<usize> index << 2), <f32> offset);
}

/**
 * IFMR steps 1–3 (SPEC §11) from the 128-bin histogram of n values over [lo, hi]: writes the
 * candidates' float32 scale_d, f32(1/scale_d) and offset_d (as float32) and returns their count
 * (at most `capacity`). Candidate k uses s = start + k·step for k < ceil((end − start)/step −
 * 1e-9): "while s < end", without float rounding adding a candidate at `end` (60 for the
 * defaults).
 */
export function ifmrCandidates(
  histogram: usize,
  n: f64,
  lo: f64,
  hi: f64,
  maxPercentile: f64,
  minPercentile: f64,
  start: f64,
  end: f64,
  step: f64,
  withOffset: bool,
  capacity: i32,
  scaleOut: usize,
  quantScaleOut: usize,
  offsetOut: usize,
): i32 {
  let cumulative: f64 = 0;
  let maxIndex = 0;
  let minIndex = 0;
  for (let bin = 0; bin < 128; bin++) {
    cumulative += load<f64>(histogram + (<usize> bin << 3));
    const cdf = cumulative / n;
    if (cdf < maxPercentile) maxIndex++;
    if (cdf < 1 - minPercentile) minIndex++;
  }
  let maxInit = lo + <f64> maxIndex / 128 * (hi - lo);
  let minInit = lo + <f64> minIndex / 128 * (hi - lo);
  if (withOffset) {
    maxInit = max(maxInit, 0);
    minInit = min(minInit, 0);
  }
  const steps = <i32> Math.ceil((end - start) / step - 1e-9);
  const count = min(max(steps, 0), capacity);
  for (let k = 0; k < count; k++) {
    const s = start + <f64> k * step;
    if (withOffset) {
      const clipMax = maxInit * s;
      storeCandidate((clipMax - minInit) / 255, minInit, true, k, scaleOut, quantScaleOut, offsetOut);
    } else {
      const scale = max(Math.abs(maxInit), Math.abs(minInit)) * s / 127;
      storeCandidate(scale, 0, false, k, scaleOut, quantScaleOut, offsetOut);
    }
  }
  return count;
}

/**
 * Adds to `sums` (float64, one per candidate) each candidate's Σ (x̂ − x)² over `count` float32
 * values, in value order, with x̂ the Quant layer's round trip of SPEC §4:
 * r = rint(clamp(f32(x·S), −128 − offset, 127 − offset)) (= q − offset_d), x̂ = f32(r·scale_d).
 * `candidates` is a multiple of 4 (the caller pads); four candidates run in the four lanes.
 */
export function addRoundTripErrors(
  values: usize,
  count: i32,
  scales: usize,
  quantScales: usize,
  offsets: usize,
  candidates: i32,
  sums: usize,
): void {
  for (let group = 0; group < candidates; group += 4) {
    const lane = <usize> group << 2;
    const scaleD = v128.load(scales + lane);
    const quantScale = v128.load(quantScales + lane);
    const offset = v128.load(offsets + lane);
    const low = f32x4.sub(f32x4.splat(-128), offset);
    const high = f32x4.sub(f32x4.splat(127), offset);
    let sumLow = v128.load(sums + (<usize> group << 3));
    let sumHigh = v128.load(sums + (<usize> group << 3) + 16);
    let at = values;
    for (let left = count; left > 0; left--) {
      const value = load<f32>(at);
      const x = f32x4.splat(value);
      const r = f32x4.nearest(f32x4.pmin(f32x4.pmax(f32x4.mul(x, quantScale), low), high));
      const roundTrip = f32x4.mul(r, scaleD);
      const x64 = f64x2.splat(<f64> value);
      const diffLow = f64x2.sub(f64x2.promote_low_f32x4(roundTrip), x64);
      const upper = i32x4.shuffle(roundTrip, roundTrip, 2, 3, 0, 1);
      const diffHigh = f64x2.sub(f64x2.promote_low_f32x4(upper), x64);
      sumLow = f64x2.add(sumLow, f64x2.mul(diffLow, diffLow));
      sumHigh = f64x2.add(sumHigh, f64x2.mul(diffHigh, diffHigh));
      at += 4;
    }
    v128.store(sums + (<usize> group << 3), sumLow);
    v128.store(sums + (<usize> group << 3) + 16, sumHigh);
  }
}

/** The index of the least of `count` float64 sums; ties go to the first (the smaller s). */
export function leastIndex(sums: usize, count: i32): i32 {
  let best = 0;
  let bestSum = load<f64>(sums);
  for (let index = 1; index < count; index++) {
    const sum = load<f64>(sums + (<usize> index << 3));
    if (sum < bestSum) {
      best = index;
      bestSum = sum;
    }
  }
  return best;
}

// HFMG search (ours; README "Calibration"). Bins are measured in bin units from lo: bin i covers
// [i, i + 1), its count is spread uniformly over it. Prefix sums from the bottom (for the part
// below a clip range) and suffix sums from the top (for the part above) of the count, the first
// and the second moment of each bin keep the tails accurate.

/** Fills prefix (bins + 1 entries × 3: count, Σ c·m, Σ c·m², m = bin centre from 0) and suffix. */
function fillMoments(counts: usize, bins: i32, prefix: usize, suffix: usize): void {
  let c: f64 = 0;
  let m1: f64 = 0;
  let m2: f64 = 0;
  store<f64>(prefix, 0);
  store<f64>(prefix, 0, 8);
  store<f64>(prefix, 0, 16);
  for (let bin = 0; bin < bins; bin++) {
    const count = load<f64>(counts + (<usize> bin << 3));
    const centre = <f64> bin + 0.5;
    c += count;
    m1 += count * centre;
    m2 += count * centre * centre;
    const at = prefix + <usize> (bin + 1) * 24;
    store<f64>(at, c);
    store<f64>(at, m1, 8);
    store<f64>(at, m2, 16);
  }
  c = 0;
  m1 = 0;
  m2 = 0;
  store<f64>(suffix + <usize> bins * 24, 0);
  store<f64>(suffix + <usize> bins * 24, 0, 8);
  store<f64>(suffix + <usize> bins * 24, 0, 16);
  for (let bin = bins - 1; bin >= 0; bin--) {
    const count = load<f64>(counts + (<usize> bin << 3));
    const centre = <f64> (bins - bin) - 0.5; // measured down from the top
    c += count;
    m1 += count * centre;
    m2 += count * centre * centre;
    const at = suffix + <usize> bin * 24;
    store<f64>(at, c);
    store<f64>(at, m1, 8);
    store<f64>(at, m2, 16);
  }
}

/**
 * Count and Σ (x − t)² of the values below t (t in bin units from the bottom, 0 < t < bins),
 * under the uniform-within-bin model. Writes [count, squared error] at `out`.
 */
function belowPart(counts: usize, prefix: usize, t: f64, out: usize): void {
  const full = <i32> Math.floor(t);
  const at = prefix + <usize> full * 24;
  const c = load<f64>(at);
  const m1 = load<f64>(at, 8);
  const m2 = load<f64>(at, 16);
  // Σ c·((m − t)² + 1/12) over full bins
  let error = m2 - 2 * t * m1 + t * t * c + c / 12;
  let count = c;
  const part = t - <f64> full;
  if (part > 0) {
    const binCount = load<f64>(counts + (<usize> full << 3));
    count += binCount * part;
    error += binCount * part * part * part / 3;
  }
  store<f64>(out, count);
  store<f64>(out, max(error, 0), 8);
}

/** As belowPart for the values above t, with u = bins − t measured down from the top. */
function abovePart(counts: usize, suffix: usize, bins: i32, u: f64, out: usize): void {
  const full = <i32> Math.floor(u);
  const at = suffix + <usize> (bins - full) * 24;
  const c = load<f64>(at);
  const m1 = load<f64>(at, 8);
  const m2 = load<f64>(at, 16);
  let error = m2 - 2 * u * m1 + u * u * c + c / 12;
  let count = c;
  const part = u - <f64> full;
  if (part > 0) {
    const binCount = load<f64>(counts + (<usize> (bins - 1 - full) << 3));
    count += binCount * part;
    error += binCount * part * part * part / 3;
  }
  store<f64>(out, count);
  store<f64>(out, max(error, 0), 8);
}

/**
 * The estimated squared error (in squared bin units) of quantizing the histogram with the grid
 * that clip range [a, b + 1) (bin units) gives: with offset, [min(a, z), max(b + 1, z)] where z
 * is the position of 0; without, [z − m, z + m] with m = max(|a − z|, |b + 1 − z|). Values
 * outside the grid's range cost their squared distance to its nearer end, values inside cost
 * step²/12 (uniform rounding noise), step = width/255 (offset) or m/127 (no offset).
 */
function clipError(
  counts: usize,
  prefix: usize,
  suffix: usize,
  bins: i32,
  a: f64,
  b1: f64,
  zero: f64,
  withOffset: bool,
  scratch: usize,
): f64 {
  let low: f64;
  let high: f64;
  let step: f64;
  if (withOffset) {
    low = min(a, zero);
    high = max(b1, zero);
    step = (high - low) / 255;
  } else {
    const m = max(Math.abs(a - zero), Math.abs(b1 - zero));
    low = zero - m;
    high = zero + m;
    step = m / 127;
  }
  const total = load<f64>(prefix + <usize> bins * 24);
  let error: f64 = 0;
  let outside: f64 = 0;
  if (low > 0) {
    belowPart(counts, prefix, min(low, <f64> bins), scratch);
    outside += load<f64>(scratch);
    error += load<f64>(scratch, 8);
  }
  if (high < <f64> bins) {
    abovePart(counts, suffix, bins, min(<f64> bins - high, <f64> bins), scratch);
    outside += load<f64>(scratch);
    error += load<f64>(scratch, 8);
  }
  return error + max(total - outside, 0) * step * step / 12;
}

/**
 * HFMG's search over clip ranges [bin a, bin b] (0 <= a <= b < bins) of a histogram whose value 0
 * lies at `zero` bin units from its bottom: the range with the least {@link clipError}; ties go
 * to the smaller a, then the larger b. With offset, every a past the bin of 0 gives the same grid
 * as that bin (and every b below it as that bin), so those are not tried. Writes a, b and the
 * error as three float64 at `out`; `scratch` holds (bins + 1) × 48 + 16 bytes.
 */
export function hfmgSearch(
  counts: usize,
  bins: i32,
  zero: f64,
  withOffset: bool,
  scratch: usize,
  out: usize,
): void {
  const prefix = scratch;
  const suffix = prefix + <usize> (bins + 1) * 24;
  const parts = suffix + <usize> (bins + 1) * 24;
  fillMoments(counts, bins, prefix, suffix);
  let lastA = bins - 1;
  let firstB = 0;
  if (withOffset) {
    // the first a whose start is at or above 0, the last b whose end is at or below 0
    lastA = <i32> min(<f64> (bins - 1), max(0, Math.ceil(zero)));
    firstB = <i32> min(<f64> (bins - 1), max(0, Math.floor(zero) - 1));
  }
  let bestA = 0;
  let bestB = bins - 1;
  let bestError = Infinity;
  for (let a = 0; a <= lastA; a++) {
    for (let b = bins - 1; b >= max(a, firstB); b--) {
      const error = clipError(
        counts,
        prefix,
        suffix,
        bins,
        <f64> a,
        <f64> (b + 1),
        zero,
        withOffset,
        parts,
      );
      if (error < bestError) {
        bestError = error;
        bestA = a;
        bestB = b;
      }
    }
  }
  store<f64>(out, <f64> bestA);
  store<f64>(out, <f64> bestB, 8);
  store<f64>(out, bestError, 16);
}

// The search (ours; docs/calibration.md "The search"): a layer's output error under candidate
// activation factors, over sampled input patches, and the rounding error of weight scales.
// Patches and weight rows are `stride` float32 apart, `stride` a multiple of 4 with a zero tail.

/**
 * Copies `count` input patches of a convolution out of one batch `input` [N, channels, height,
 * width] (float32) to `out`. `positions` holds int32 quadruples (n, g, oy, ox); element
 * (c·kernelH + ky)·kernelW + kx of the patch of group g at output (oy, ox) is
 * input[n, g·groupChannels + c, oy·strideH − padH + ky·dilationH, ox·strideW − padW +
 * kx·dilationW], 0 outside the input (Caffe's zero padding).
 */
export function gatherPatches(
  input: usize,
  channels: i32,
  height: i32,
  width: i32,
  kernelH: i32,
  kernelW: i32,
  strideH: i32,
  strideW: i32,
  padH: i32,
  padW: i32,
  dilationH: i32,
  dilationW: i32,
  groupChannels: i32,
  positions: usize,
  count: i32,
  stride: i32,
  out: usize,
): void {
  const plane = <usize> height * <usize> width;
  const length = groupChannels * kernelH * kernelW;
  for (let k = 0; k < count; k++) {
    const at = positions + (<usize> k << 4);
    const n = load<i32>(at);
    const g = load<i32>(at, 4);
    const oy = load<i32>(at, 8);
    const ox = load<i32>(at, 12);
    let target = out + ((<usize> k * <usize> stride) << 2);
    const first = <usize> n * <usize> channels + <usize> g * <usize> groupChannels;
    for (let c = 0; c < groupChannels; c++) {
      const planeAt = input + (((first + <usize> c) * plane) << 2);
      for (let ky = 0; ky < kernelH; ky++) {
        const y = oy * strideH - padH + ky * dilationH;
        for (let kx = 0; kx < kernelW; kx++) {
          const x = ox * strideW - padW + kx * dilationW;
          const inside = y >= 0 && y < height && x >= 0 && x < width;
          const value: f32 = inside
            ? load<f32>(planeAt + ((<usize> y * <usize> width + <usize> x) << 2))
            : 0;
          store<f32>(target, value);
          target += 4;
        }
      }
    }
    for (let rest = length; rest < stride; rest++) {
      store<f32>(target, 0);
      target += 4;
    }
  }
}

/**
 * Writes `channels` rows of `length` float32 weights to `out`, `stride` apart with a zero tail:
 * as they are when `scales` is 0, else fake-quantized with the channel's float32 scale s:
 * f32(clamp(rint(f32(w / s)), −128, 127) · s) (docs/math.md).
 */
export function weightRows(
  weights: usize,
  channels: i32,
  length: i32,
  scales: usize,
  stride: i32,
  out: usize,
): void {
  for (let c = 0; c < channels; c++) {
    const from = weights + ((<usize> c * <usize> length) << 2);
    const to = out + ((<usize> c * <usize> stride) << 2);
    const scale: f32 = scales == 0 ? 0 : load<f32>(scales + (<usize> c << 2));
    for (let i = 0; i < length; i++) {
      const w = load<f32>(from + (<usize> i << 2));
      const value: f32 = scales == 0 ? w : min<f32>(127, max<f32>(-128, nearest<f32>(w / scale))) *
        scale;
      store<f32>(to + (<usize> i << 2), value);
    }
    for (let i = length; i < stride; i++) store<f32>(to + (<usize> i << 2), 0);
  }
}

/** Σ a[i]·b[i] over `stride` float32 (a multiple of 4), in four lanes. */
function rowDot(a: usize, b: usize, stride: i32): f32 {
  let sum = f32x4.splat(0);
  for (let i = 0; i < stride; i += 4) {
    const at = <usize> i << 2;
    sum = f32x4.add(sum, f32x4.mul(v128.load(a + at), v128.load(b + at)));
  }
  return f32x4.extract_lane(sum, 0) + f32x4.extract_lane(sum, 1) +
    (f32x4.extract_lane(sum, 2) + f32x4.extract_lane(sum, 3));
}

/**
 * The layer's outputs at `count` patches: out[k·outPerGroup + j] = rowDot(patch k, row
 * g_k·outPerGroup + j) + bias[g_k·outPerGroup + j] (bias 0: none), g_k = groups[k] (int32).
 */
export function patchOutputs(
  patches: usize,
  count: i32,
  stride: i32,
  groups: usize,
  rows: usize,
  bias: usize,
  outPerGroup: i32,
  out: usize,
): void {
  for (let k = 0; k < count; k++) {
    const patch = patches + ((<usize> k * <usize> stride) << 2);
    const firstRow = load<i32>(groups + (<usize> k << 2)) * outPerGroup;
    for (let j = 0; j < outPerGroup; j++) {
      const row = firstRow + j;
      let value = rowDot(patch, rows + ((<usize> row * <usize> stride) << 2), stride);
      if (bias != 0) value += load<f32>(bias + (<usize> row << 2));
      store<f32>(out + ((<usize> k * <usize> outPerGroup + <usize> j) << 2), value);
    }
  }
}

/**
 * For each of `candidates` activation factors (float32 scale_d, S = f32(1/scale_d), offset_d):
 * the patches' round trip x̂ (SPEC §4, as addRoundTripErrors) into `scratch`, then
 * sums[i] = Σ over patches k and their group's outputs j of (y(x̂)[k, j] − targets[k, j])² in
 * float64, y as patchOutputs computes it; with `rectify`, of (max(y, 0) − max(target, 0))² (the
 * error a ReLU after the layer lets through).
 */
export function candidateOutputErrors(
  patches: usize,
  count: i32,
  stride: i32,
  groups: usize,
  rows: usize,
  bias: usize,
  outPerGroup: i32,
  targets: usize,
  scales: usize,
  quantScales: usize,
  offsets: usize,
  candidates: i32,
  rectify: bool,
  scratch: usize,
  sums: usize,
): void {
  const values = <usize> count * <usize> stride;
  for (let i = 0; i < candidates; i++) {
    const at = <usize> i << 2;
    const scaleD = f32x4.splat(load<f32>(scales + at));
    const quantScale = f32x4.splat(load<f32>(quantScales + at));
    const offset = load<f32>(offsets + at);
    const low = f32x4.splat(-128 - offset);
    const high = f32x4.splat(127 - offset);
    for (let v: usize = 0; v < values; v += 4) {
      const x = v128.load(patches + (v << 2));
      const r = f32x4.nearest(f32x4.pmin(f32x4.pmax(f32x4.mul(x, quantScale), low), high));
      v128.store(scratch + (v << 2), f32x4.mul(r, scaleD));
    }
    let sum: f64 = 0;
    for (let k = 0; k < count; k++) {
      const patch = scratch + ((<usize> k * <usize> stride) << 2);
      const firstRow = load<i32>(groups + (<usize> k << 2)) * outPerGroup;
      for (let j = 0; j < outPerGroup; j++) {
        const row = firstRow + j;
        let value = rowDot(patch, rows + ((<usize> row * <usize> stride) << 2), stride);
        if (bias != 0) value += load<f32>(bias + (<usize> row << 2));
        const target = load<f32>(targets + ((<usize> k * <usize> outPerGroup + <usize> j) << 2));
        const difference = rectify
          ? <f64> max<f32>(value, 0) - <f64> max<f32>(target, 0)
          : <f64> value - <f64> target;
        sum += difference * difference;
      }
    }
    store<f64>(sums + (<usize> i << 3), sum);
  }
}

/**
 * errors[c·ratios + r] = Σ over the `length` weights w of channel c (rows of `weights`, float32)
 * of (f32(clamp(rint(f32(w / s)), −128, 127) · s) − w)² in float64, with s = scales[c·ratios + r]
 * (float32, > 0).
 */
export function weightRoundingErrors(
  weights: usize,
  channels: i32,
  length: i32,
  scales: usize,
  ratios: i32,
  errors: usize,
): void {
  const lanes = length & ~3;
  for (let c = 0; c < channels; c++) {
    const row = weights + ((<usize> c * <usize> length) << 2);
    for (let r = 0; r < ratios; r++) {
      const index = <usize> c * <usize> ratios + <usize> r;
      const s = load<f32>(scales + (index << 2));
      const scale = f32x4.splat(s);
      let sum = f64x2.splat(0);
      for (let i = 0; i < lanes; i += 4) {
        const w = v128.load(row + (<usize> i << 2));
        const q = f32x4.pmin(f32x4.pmax(f32x4.nearest(f32x4.div(w, scale)), f32x4.splat(-128)), f32x4.splat(127));
        const d = f32x4.sub(f32x4.mul(q, scale), w);
        const dLow = f64x2.promote_low_f32x4(d);
        const dHigh = f64x2.promote_low_f32x4(i32x4.shuffle(d, d, 2, 3, 0, 1));
        sum = f64x2.add(sum, f64x2.add(f64x2.mul(dLow, dLow), f64x2.mul(dHigh, dHigh)));
      }
      let total = f64x2.extract_lane(sum, 0) + f64x2.extract_lane(sum, 1);
      for (let i = lanes; i < length; i++) {
        const w = load<f32>(row + (<usize> i << 2));
        const d = <f64> (min<f32>(127, max<f32>(-128, nearest<f32>(w / s))) * s) - <f64> w;
        total += d * d;
      }
      store<f64>(errors + (index << 3), total);
    }
  }
}

/**
 * errors[c·ratios + r] = Σ over the patches k of channel c's group of (y − targets[k, j])² in
 * float64, j = c mod outPerGroup, where y = rowDot(x̂_k, ŵ) + bias[c] (bias 0: none): x̂ the
 * patches' round trip with (scaleD, quantScale, offsetD) as candidateOutputErrors makes it, ŵ
 * row c of `rows` (float, `stride` apart) fake-quantized with the float32 scale
 * trials[c·ratios + r]; with `rectify`, of (max(y, 0) − max(target, 0))². `scratch` holds
 * count·stride + stride floats.
 */
export function channelOutputErrors(
  patches: usize,
  count: i32,
  stride: i32,
  groups: usize,
  rows: usize,
  bias: usize,
  channels: i32,
  outPerGroup: i32,
  targets: usize,
  scaleD: f32,
  quantScale: f32,
  offsetD: f32,
  trials: usize,
  ratios: i32,
  rectify: bool,
  scratch: usize,
  errors: usize,
): void {
  const values = <usize> count * <usize> stride;
  const scale = f32x4.splat(scaleD);
  const quant = f32x4.splat(quantScale);
  const low = f32x4.splat(-128 - offsetD);
  const high = f32x4.splat(127 - offsetD);
  for (let v: usize = 0; v < values; v += 4) {
    const x = v128.load(patches + (v << 2));
    const r = f32x4.nearest(f32x4.pmin(f32x4.pmax(f32x4.mul(x, quant), low), high));
    v128.store(scratch + (v << 2), f32x4.mul(r, scale));
  }
  const row = scratch + (values << 2);
  const lowW = f32x4.splat(-128);
  const highW = f32x4.splat(127);
  for (let c = 0; c < channels; c++) {
    const group = c / outPerGroup;
    const j = c - group * outPerGroup;
    const from = rows + ((<usize> c * <usize> stride) << 2);
    const b: f32 = bias != 0 ? load<f32>(bias + (<usize> c << 2)) : 0;
    for (let r = 0; r < ratios; r++) {
      const index = <usize> c * <usize> ratios + <usize> r;
      const s = f32x4.splat(load<f32>(trials + (index << 2)));
      for (let i = 0; i < stride; i += 4) {
        const at = <usize> i << 2;
        const q = f32x4.pmin(f32x4.pmax(f32x4.nearest(f32x4.div(v128.load(from + at), s)), lowW), highW);
        v128.store(row + at, f32x4.mul(q, s));
      }
      let sum: f64 = 0;
      for (let k = 0; k < count; k++) {
        if (load<i32>(groups + (<usize> k << 2)) != group) continue;
        const patch = scratch + ((<usize> k * <usize> stride) << 2);
        const value = rowDot(patch, row, stride) + b;
        const target = load<f32>(targets + ((<usize> k * <usize> outPerGroup + <usize> j) << 2));
        const difference = rectify
          ? <f64> max<f32>(value, 0) - <f64> max<f32>(target, 0)
          : <f64> value - <f64> target;
        sum += difference * difference;
      }
      store<f64>(errors + (index << 3), sum);
    }
  }
}
