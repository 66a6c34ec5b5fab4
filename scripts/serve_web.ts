/**
 * Builds the browser page (web/) with esbuild and serves it on this machine:
 *
 * ```sh
 * npm run web              # or: npx deno task web
 * npx deno run -A scripts/serve_web.ts --port 8080 --host 127.0.0.1
 * npx deno run -A scripts/serve_web.ts --build-only
 * ```
 *
 * The page converts in a Web Worker; the server only hands out the static files, and the
 * Content-Security-Policy it sends (`connect-src 'none'`) keeps the page from sending anything
 * anywhere.
 *
 * @module
 */

import * as esbuild from "esbuild";
import { npmSpecifiers } from "./npm_specifiers.ts";

const webDir = new URL("../web/", import.meta.url).pathname;

/** The static files copied as they are next to the bundles. */
const STATIC_FILES = ["index.html", "style.css"];

/** Content types of the files the page is made of. */
const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
  ".svg": "image/svg+xml",
};

/**
 * What the page may do: load its own scripts, styles and worker, compile WebAssembly, and nothing
 * else: no eval, no fetch, no remote images or forms.
 */
export const CONTENT_SECURITY_POLICY: string = [
  "default-src 'none'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'none'",
  "form-action 'none'",
  "base-uri 'none'",
].join("; ");

/** Bundles web/main.ts and web/worker.ts and copies the static files into `outDir`. */
export async function buildWeb(outDir: string = `${webDir}dist`): Promise<void> {
  await Deno.mkdir(outDir, { recursive: true });
  try {
    await esbuild.build({
      absWorkingDir: webDir,
      entryPoints: ["main.ts", "worker.ts"],
      outdir: outDir,
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      logLevel: "warning",
      plugins: [npmSpecifiers(webDir)],
    });
  } finally {
    await esbuild.stop();
  }
  for (const file of STATIC_FILES) await Deno.copyFile(`${webDir}${file}`, `${outDir}/${file}`);
}

/** Options of {@linkcode serveStatic}. */
export interface ServeOptions {
  /** The folder to serve (flat: no subfolders are served). */
  root: string;
  /** Host to listen on; `127.0.0.1` unless given. */
  hostname?: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** Called once listening, with the page's URL. */
  onListen?: (url: string) => void;
}

/** Serves the files directly in `options.root` with {@linkcode CONTENT_SECURITY_POLICY}. */
export function serveStatic(options: ServeOptions): Deno.HttpServer<Deno.NetAddr> {
  const hostname = options.hostname ?? "127.0.0.1";
  return Deno.serve({
    hostname,
    port: options.port,
    onListen: ({ port }) => options.onListen?.(`http://${hostname}:${port}/`),
  }, async (request) => {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("method not allowed", { status: 405 });
    }
    const name = decodeURIComponent(new URL(request.url).pathname.slice(1)) || "index.html";
    const extension = name.slice(name.lastIndexOf("."));
    if (!/^[\w.-]+$/.test(name) || name.startsWith(".") || !(extension in CONTENT_TYPES)) {
      return new Response("not found", { status: 404 });
    }
    try {
      const body = await Deno.readFile(`${options.root}/${name}`);
      return new Response(request.method === "HEAD" ? null : body, {
        headers: {
          "content-type": CONTENT_TYPES[extension],
          "content-security-policy": CONTENT_SECURITY_POLICY,
          "cache-control": "no-store",
          "x-content-type-options": "nosniff",
        },
      });
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return new Response("not found", { status: 404 });
      throw error;
    }
  });
}

const USAGE = `usage: npm run web -- [--port N] [--host H] [--build-only]
       npx deno task web [--port N] [--host H] [--build-only]

Builds the browser page into web/dist/ and serves it on http://127.0.0.1:8000/ (--port 0
picks a free port). --build-only builds and exits.`;

function option(args: string[], name: string): string | undefined {
  const index = args.indexOf(`--${name}`);
  return index < 0 ? undefined : args[index + 1];
}

/** The parent of process `pid` where /proc tells it (Linux), else undefined. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

/**
 * Stops the server once the process that started it is gone. Stopping `npm run web` with
 * SIGTERM ends npm and its shell but not this process (the shell does not pass the signal on),
 * which would otherwise keep listening as an orphan. When npm did not run deno's install script
 * (`--ignore-scripts`, or npm enforcing `allowScripts`), `deno` is a Node wrapper that runs
 * this process and outlives the shell too: so the parent's parent is watched as well.
 */
function stopWithParent(server: Deno.HttpServer): void {
  const parent = Deno.ppid;
  const grandparent = parentOf(parent);
  const timer = setInterval(() => {
    if (Deno.ppid === parent && parentOf(parent) === grandparent) return;
    clearInterval(timer);
    console.log("caffe-quant page: the process that started it is gone, stopping");
    server.shutdown();
  }, 250);
}

if (import.meta.main) {
  if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const outDir = `${webDir}dist`;
  await buildWeb(outDir);
  if (Deno.args.includes("--build-only")) {
    console.log(`built ${outDir}`);
  } else {
    const server = serveStatic({
      root: outDir,
      hostname: option(Deno.args, "host"),
      port: Number(option(Deno.args, "port") ?? 8000),
      onListen: (url) => console.log(`caffe-quant page: ${url} (Ctrl-C to stop)`),
    });
    stopWithParent(server);
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(signal, () => server.shutdown().then(() => Deno.exit(0)));
    }
  }
}
