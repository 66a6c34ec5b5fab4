/**
 * The esbuild options of the `caffe-quant` bin (`dist/cli.js`), shared by scripts/bundle.ts
 * (the npm package) and scripts/bench.ts (which times the bin end to end).
 *
 * @module
 */

/** The bin's own options, on top of the package's common ones (bundle, ESM, plugins). */
export const CLI_BUNDLE = {
  entryPoints: ["src/cli.ts"],
  platform: "node" as const,
  target: "node20",
  // src/cli.ts runs `main(process.argv.slice(2))` when it is the program's entry; Node 20 has
  // no `import.meta.main`, and this bundle is only ever the entry.
  define: { "import.meta.main": "true" },
};
