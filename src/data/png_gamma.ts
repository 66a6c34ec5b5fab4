/**
 * What libpng does to gray when OpenCV reads a colour PNG as gray (`png_set_rgb_to_gray`) and
 * the file states its gamma: it converts in linear light. The file gamma comes from an `sRGB`
 * chunk or an ICC profile libpng knows as sRGB (0.45455), else from `gAMA`; libpng then takes
 * the screen gamma as its inverse, so `gray = from1[(9797·to1[R] + 19234·to1[G] + 3737·to1[B] +
 * 16384) >> 15]` with libpng's 8-bit tables `to1` (exponent 1/gamma) and `from1` (exponent
 * gamma); equal R, G and B stay as they are.
 *
 * @module
 */

/** libpng's sRGB gamma, 1/2.2 in units of 1e-5. */
const SRGB_GAMMA = 45455;

/**
 * The one ICC profile recognised as sRGB here: HP/Microsoft's sRGB IEC61966-2.1 (v2, 3144 bytes),
 * the profile scikit-image's astronaut and chelsea carry, which libpng (1.6) treats as sRGB.
 * Known by its length and Adler-32.
 */
const SRGB_PROFILES = [{ length: 3144, adler32: 0xf784f3fb }];

function adler32(bytes: Uint8Array): number {
  let a = 1;
  let b = 0;
  for (let i = 0; i < bytes.length; i++) {
    a = (a + bytes[i]) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/**
 * The file gamma libpng uses (units of 1e-5), or undefined when the PNG states none or one
 * libpng takes as 1.0 (within 5 %, png_gamma_significant): `profile` is the decompressed
 * iCCP profile, if any.
 */
export function pngFileGamma(
  bytes: Uint8Array,
  profile: Uint8Array | undefined,
): number | undefined {
  let gamma: number | undefined;
  let srgb = profile !== undefined &&
    SRGB_PROFILES.some((known) =>
      known.length === profile.length && known.adler32 === adler32(profile)
    );
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 8; at + 8 <= bytes.length;) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (type === "IDAT" || type === "IEND") break;
    if (type === "gAMA" && length === 4 && at + 12 <= bytes.length) gamma = view.getUint32(at + 8);
    if (type === "sRGB") srgb = true;
    at += 12 + length;
  }
  const value = srgb ? SRGB_GAMMA : gamma;
  if (value === undefined || value === 0 || Math.abs(value - 100000) <= 5000) return undefined;
  return value;
}

/** libpng's png_reciprocal: round(1e10 / value). */
function reciprocal(value: number): number {
  return Math.floor(1e10 / value + 0.5);
}

/** libpng's 8-bit gamma table for exponent `gamma` (1e-5 units); 0 and 255 stay. */
function gammaTable(gamma: number): Uint8Array {
  const table = new Uint8Array(256);
  for (let i = 0; i < 256; i++) {
    table[i] = i === 0 || i === 255 ? i : Math.floor(255 * Math.pow(i / 255, gamma * 1e-5) + 0.5);
  }
  return table;
}

/** Gray of 8-bit RGB samples (3 a pixel, in `rgb`) in linear light, as libpng for `gamma`. */
export function grayInLinearLight(rgb: Uint8Array, pixels: number, gamma: number): Uint8Array {
  const toLinear = gammaTable(reciprocal(gamma));
  const fromLinear = gammaTable(reciprocal(reciprocal(gamma)));
  const out = new Uint8Array(pixels);
  for (let p = 0; p < pixels; p++) {
    const [r, g, b] = [rgb[p * 3], rgb[p * 3 + 1], rgb[p * 3 + 2]];
    out[p] = r === g && r === b
      ? r
      : fromLinear[(9797 * toLinear[r] + 19234 * toLinear[g] + 3737 * toLinear[b] + 16384) >> 15];
  }
  return out;
}
