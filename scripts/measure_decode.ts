/**
 * Measures caffe-quant's image decoding against OpenCV's `cv2.imread` (Debian python3-opencv,
 * run through `/usr/bin/python3`) on every photo the test packages ship (libdlib19.1's examples,
 * scikit-image's JPEG and PNG data): per photo, the share of bytes within one level and the
 * largest difference, in colour (BGR) and gray, side by side.
 *
 * Run: `npx deno run -A scripts/measure_decode.ts [files...]` (default: every packaged photo).
 *
 * @module
 */

import { decodeImage } from "../src/data/decode.ts";

const DLIB = "/usr/share/doc/libdlib19.1/examples";
const SKIMAGE = "/usr/lib/python3/dist-packages/skimage/data";

/** Every .jpg/.png below `dir`. */
function photosIn(dir: string): string[] {
  const found: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) found.push(...photosIn(path));
    else if (/\.(jpe?g|png)$/i.test(entry.name)) found.push(path);
  }
  return found.sort();
}

const PYTHON = `
import cv2, sys
out = sys.argv[1]
for i, path in enumerate(sys.argv[2:]):
    for flag, tag in ((cv2.IMREAD_COLOR, "c"), (cv2.IMREAD_GRAYSCALE, "g")):
        image = cv2.imread(path, flag)
        open(f"{out}/{i}.{tag}", "wb").write(b"" if image is None else image.tobytes())
`;

const files = Deno.args.length > 0
  ? Deno.args
  : [...photosIn(DLIB), ...photosIn(SKIMAGE).filter((path) => !path.includes("truncated"))];
const dir = await Deno.makeTempDir();
try {
  const python = new Deno.Command("/usr/bin/python3", {
    args: ["-c", PYTHON, dir, ...files],
    stderr: "null",
  });
  if (!(await python.output()).success) throw new Error("/usr/bin/python3 with cv2 failed");
  console.log("photo\tcolour ≤1\tcolour max\tgray ≤1\tgray max");
  let worst = { colour: 100, gray: 100 };
  for (const [i, path] of files.entries()) {
    const bytes = await Deno.readFile(path);
    const cells: string[] = [];
    for (const [tag, color] of [["c", true], ["g", false]] as const) {
      const theirs = await Deno.readFile(`${dir}/${i}.${tag}`);
      let ours: Uint8Array;
      try {
        ours = (await decodeImage(bytes, color, path)).data;
      } catch (error) {
        cells.push(`error: ${(error as Error).message}`, "");
        continue;
      }
      if (ours.length !== theirs.length) {
        cells.push(`size ${ours.length} vs ${theirs.length}`, "");
        continue;
      }
      let within = 0;
      let max = 0;
      for (let k = 0; k < ours.length; k++) {
        const difference = Math.abs(ours[k] - theirs[k]);
        if (difference <= 1) within++;
        if (difference > max) max = difference;
      }
      const share = (100 * within) / ours.length;
      if (color) worst = { ...worst, colour: Math.min(worst.colour, share) };
      else worst = { ...worst, gray: Math.min(worst.gray, share) };
      cells.push(`${share.toFixed(3)}%`, String(max));
    }
    console.log(`${path.replace(DLIB, "dlib").replace(SKIMAGE, "skimage")}\t${cells.join("\t")}`);
  }
  console.log(
    `${files.length} photos; lowest share within one level: colour ${
      worst.colour.toFixed(3)
    }%, gray ${worst.gray.toFixed(3)}%`,
  );
} finally {
  await Deno.remove(dir, { recursive: true });
}
