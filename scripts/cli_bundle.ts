/**
 * How the `caffe-quant` bin (`dist/cli.js`) is built, shared by scripts/bundle.ts (the npm
 * package) and scripts/bench.ts (which times the bin end to end).
 *
 * @module
 */

import type * as esbuild from "esbuild";

/** The folder beside the bin that holds the WebAssembly modules' texts. */
const TEXTS_FOLDER = "wasm";

/** The repository root. */
const root = new URL("../", import.meta.url).pathname;

/**
 * Keeps each module src/ imports with `import()` from a generated file (the WebAssembly modules'
 * base64 texts, src/wasm/*.generated.ts) out of the bin, as `wasm/<name>.js` beside it: a command
 * then reads and compiles only the texts of the kernels it runs, not ~0.5 MB of them on every
 * start (`--help`, `inspect` and `convert` need none of the engine's or the JPEG decoder's).
 */
const textsApart: esbuild.Plugin = {
  name: "texts-apart",
  setup(build) {
    build.onResolve({ filter: /\.generated\.ts$/ }, ({ kind, path }) => {
      if (kind !== "dynamic-import") return undefined;
      const name = path.slice(path.lastIndexOf("/") + 1).replace(/\.ts$/, ".js");
      return { path: `./${TEXTS_FOLDER}/${name}`, external: true };
    });
  },
};

/**
 * Builds the bin into `outdir`: `cli.js` (src/cli.ts, ESM for Node) and its `wasm/` folder.
 * `common` holds the options every bundle of the caller shares (bundle, ESM, plugins); `define`
 * adds to the bin's own.
 */
export async function buildCli(
  build: typeof esbuild.build,
  common: esbuild.BuildOptions,
  outdir: string,
  define: Record<string, string> = {},
): Promise<void> {
  await build({
    ...common,
    entryPoints: ["src/cli.ts"],
    outfile: `${outdir}/cli.js`,
    platform: "node",
    target: "node20",
    plugins: [textsApart, ...common.plugins ?? []],
    // src/cli.ts runs `main(process.argv.slice(2))` when it is the program's entry; Node 20 has
    // no `import.meta.main`, and this bundle is only ever the entry.
    define: { "import.meta.main": "true", ...define },
  });
  const texts = [...Deno.readDirSync(`${root}src/wasm`)]
    .filter((entry) => entry.name.endsWith(".generated.ts"))
    .map((entry) => `${root}src/wasm/${entry.name}`);
  await build({
    entryPoints: texts,
    outdir: `${outdir}/${TEXTS_FOLDER}`,
    format: "esm",
    logLevel: "warning",
  });
}
