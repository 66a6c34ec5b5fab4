/**
 * Photos that Debian packages ship (installed by .ci/run: libdlib19.1, python3-skimage), for
 * tests against OpenCV. In CI (`CI=true`) a missing photo fails loudly; elsewhere the tests that
 * need them are skipped with a printed reason.
 *
 * @module
 */

/** Faces and other photos of libdlib19.1's examples. */
export const DLIB_EXAMPLES = "/usr/share/doc/libdlib19.1/examples";
/** scikit-image's sample images. */
export const SKIMAGE_DATA = "/usr/lib/python3/dist-packages/skimage/data";

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * True when every path exists. Otherwise: in CI an error naming the first missing one; elsewhere
 * false, after printing why the caller's tests are skipped.
 */
export function photosPresent(paths: string[], what: string): boolean {
  const missing = paths.find((path) => !exists(path));
  if (missing === undefined) return true;
  const message =
    `${missing} is missing (install libdlib19.1 and python3-skimage, as .ci/run does)`;
  if (Deno.env.get("CI") === "true") throw new Error(`CI=true but ${message}`);
  console.warn(`skipping ${what}: ${message}`);
  return false;
}
