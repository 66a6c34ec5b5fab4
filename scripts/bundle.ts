/**
 * Builds the npm package into `dist/`:
 *
 * - `dist/mod.js`: the whole API with file access, ESM for Node (fast-png and @jsquash/jpeg bundled in);
 * - `dist/core.js`: the in-memory API, browser-safe ESM (no `node:` imports), sharing its
 *   chunk (`dist/chunks/`) with `dist/mod.js`;
 * - `dist/cli.js`: the `caffe-quant` bin (src/cli.ts with `#!/usr/bin/env node`);
 * - `dist/wasm/`: the WebAssembly modules' texts the bin imports when it first runs their kernels
 *   (scripts/cli_bundle.ts; the library's are chunks of their own in `dist/chunks/`);
 * - `dist/engine_worker_web.js`, `dist/engine_worker_node.js`: the engine pool's workers (Web
 *   Workers; `node:worker_threads`);
 * - `dist/types/`: TypeScript declarations of `mod.ts` and `core.ts` and what they export.
 *
 * The package has no runtime dependencies. Run `npx deno run -A scripts/bundle.ts` (or
 * `npm run build`; `npm pack` runs it first).
 *
 * @module
 */

import * as esbuild from "esbuild";
import ts from "typescript";
import { buildCli } from "./cli_bundle.ts";
import { NPM_SPECIFIERS, NPM_TYPES, npmSpecifiers } from "./npm_specifiers.ts";

/** The repository root. */
const root = new URL("../", import.meta.url).pathname;
/** Where the package build goes. */
const dist = `${root}dist/`;

/** Options every bundle shares. */
const COMMON: esbuild.BuildOptions = {
  absWorkingDir: root,
  bundle: true,
  format: "esm",
  target: "es2022",
  legalComments: "eof",
  logLevel: "warning",
  plugins: [npmSpecifiers(root)],
};

/** The bundles. */
const BUNDLES: esbuild.BuildOptions[] = [
  {
    // One build with code splitting: mod.js re-exports core.js's chunk, so both entries share
    // one copy of every class (`instanceof ConvertError` holds across them). `platform:
    // "neutral"` keeps core.js free of Node assumptions; only mod.js's own part imports `node:`.
    // The engine workers are entries too (sharing the chunk); the pool finds them through
    // WORKER_PATHS, relative to the chunk (Web Workers) and to mod.js (Node's).
    entryPoints: {
      mod: "mod.ts",
      core: "core.ts",
      engine_worker_web: "src/engine/engine_worker_web.ts",
      engine_worker_node: "src/io/engine_worker_node.ts",
    },
    outdir: "dist",
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    platform: "neutral",
    mainFields: ["module", "main"],
    external: ["node:*"],
    define: workerPaths("../engine_worker_web.js", "./engine_worker_node.js"),
  },
];

/**
 * The `define`s telling the bundled engine pool where the worker scripts are, relative to the
 * bundled file that starts them (src/engine/worker_starter.ts, src/io/node_workers.ts).
 */
function workerPaths(web: string, node: string): Record<string, string> {
  return {
    CAFFE_QUANT_WEB_WORKER: JSON.stringify(web),
    CAFFE_QUANT_NODE_WORKER: JSON.stringify(node),
  };
}

/**
 * Fails the build unless every bundled file that names a worker script (see
 * {@linkcode workerPaths}) finds it there: the chunk layout decides those paths.
 */
async function checkWorkerPaths(): Promise<void> {
  const names = ["engine_worker_web.js", "engine_worker_node.js"];
  let found = 0;
  for (const file of ["mod.js", "core.js", "cli.js", ...await chunkFiles()]) {
    const code = await Deno.readTextFile(`${dist}${file}`);
    for (const match of code.matchAll(/"(\.{1,2}\/engine_worker_(?:web|node)\.js)"/g)) {
      const target = new URL(match[1], `file://${dist}${file}`).pathname;
      if (!names.some((name) => target === `${dist}${name}`)) {
        throw new Error(`${file} looks for a worker at ${target}, which the build does not write`);
      }
      found++;
    }
  }
  if (found === 0) throw new Error("no bundled file starts an engine worker");
}

/** The chunk files of dist/, as paths relative to it. */
async function chunkFiles(): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(`${dist}chunks`)) files.push(`chunks/${entry.name}`);
  return files;
}

/** The modules whose declarations are published (with everything they reference). */
const TYPE_ROOTS = ["mod.ts", "core.ts"];

/** Bundles the JavaScript with esbuild. */
async function bundleJavaScript(): Promise<void> {
  try {
    for (const options of BUNDLES) await esbuild.build({ ...COMMON, ...options });
    await buildCli(
      esbuild.build,
      COMMON,
      dist,
      workerPaths("./engine_worker_web.js", "./engine_worker_node.js"),
    );
  } finally {
    await esbuild.stop();
  }
  // esbuild keeps src/cli.ts's `#!/usr/bin/env -S deno run -A`; the npm bin runs under Node.
  const cli = await Deno.readTextFile(`${dist}cli.js`);
  await Deno.writeTextFile(`${dist}cli.js`, `#!/usr/bin/env node\n${cli.replace(/^#!.*\n/, "")}`);
  await Deno.chmod(`${dist}cli.js`, 0o755);
  await checkWorkerPaths();
}

/**
 * Writes `.d.ts` files for {@linkcode TYPE_ROOTS} into `dist/types/` with the TypeScript
 * compiler, rewriting the import specifiers Deno needs (`./x.ts`, `npm:…`) into the ones Node and
 * bundlers resolve (`./x.js`, the bare package name). Any compiler diagnostic fails the build.
 */
function emitDeclarations(): void {
  const options: ts.CompilerOptions = {
    declaration: true,
    emitDeclarationOnly: true,
    declarationDir: `${dist}types`,
    rootDir: root,
    strict: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    allowImportingTsExtensions: true,
    lib: ["lib.es2023.d.ts", "lib.dom.d.ts"],
    types: ["node"],
    typeRoots: [`${root}node_modules/@types`],
    paths: Object.fromEntries(
      Object.entries(NPM_TYPES).map(([specifier, target]) => [
        specifier,
        [`${root}node_modules/${target}`],
      ]),
    ),
  };
  const program = ts.createProgram(TYPE_ROOTS.map((file) => root + file), options);
  const written: string[] = [];
  const result = program.emit(undefined, (fileName, text) => {
    Deno.mkdirSync(fileName.slice(0, fileName.lastIndexOf("/")), { recursive: true });
    Deno.writeTextFileSync(fileName, nodeSpecifiers(text));
    written.push(fileName);
  });
  const diagnostics = [...ts.getPreEmitDiagnostics(program), ...result.diagnostics];
  if (diagnostics.length > 0) {
    throw new Error(ts.formatDiagnosticsWithColorAndContext(diagnostics, {
      getCanonicalFileName: (name) => name,
      getCurrentDirectory: () => root,
      getNewLine: () => "\n",
    }));
  }
  if (written.length === 0) throw new Error("the TypeScript compiler wrote no declarations");
}

/** Import specifiers of a declaration file as Node resolves them. */
function nodeSpecifiers(declarations: string): string {
  return declarations
    .replace(/(from\s+|import\()(["'])(\.{1,2}\/[^"']*)\.ts\2/g, "$1$2$3.js$2")
    .replace(
      /"(npm:[^"]+)"/g,
      (text, specifier: string) =>
        NPM_SPECIFIERS[specifier] === undefined ? text : `"${NPM_SPECIFIERS[specifier]}"`,
    );
}

/** Builds everything into a fresh `dist/`. */
export async function bundle(): Promise<void> {
  await Deno.remove(dist, { recursive: true }).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
  await bundleJavaScript();
  emitDeclarations();
}

if (import.meta.main) {
  const started = performance.now();
  await bundle();
  console.log(`built dist/ in ${(performance.now() - started).toFixed(0)} ms`);
}
