/**
 * Serves the repository's modules over HTTP for a URL import
 * (`import { convertModel } from "http://HOST:8001/mod.ts"`), with the content types Deno
 * requires (`.ts` as `application/typescript`):
 *
 * ```sh
 * npx deno run --allow-net --allow-read scripts/serve_modules.ts [--port N] [--host H]
 * ```
 *
 * Read-only: no directory listings, no hidden files, no `..`, only `.ts`, `.js` and `.json`.
 *
 * @module
 */

/** Content types Deno accepts for the module kinds the repository holds. */
export const MODULE_CONTENT_TYPES: Record<string, string> = {
  ".ts": "application/typescript; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".json": "application/json; charset=utf-8",
};

/** Where and what {@linkcode serveModules} serves. */
export interface ServeModulesOptions {
  /** The folder served as `/` (path ending in `/`); the repository by default. */
  root?: string;
  /** Interface to listen on (default 127.0.0.1). */
  hostname?: string;
  /** Port (default 8001; 0 picks a free one). */
  port?: number;
  /** Called with each path asked for. */
  onRequest?: (path: string) => void;
  /** Called with the server's base URL once it listens. */
  onListen?: (url: string) => void;
}

/** Serves `.ts`, `.js` and `.json` files below `options.root` with Deno's content types. */
export function serveModules(options: ServeModulesOptions = {}): Deno.HttpServer<Deno.NetAddr> {
  const root = options.root ?? new URL("../", import.meta.url).pathname;
  const hostname = options.hostname ?? "127.0.0.1";
  return Deno.serve({
    hostname,
    port: options.port ?? 8001,
    onListen: ({ port }) => options.onListen?.(`http://${hostname}:${port}/`),
  }, async (request) => {
    const path = decodeURIComponent(new URL(request.url).pathname);
    options.onRequest?.(path);
    const extension = path.slice(path.lastIndexOf("."));
    const hidden = path.split("/").some((part) => part.startsWith("."));
    if (hidden || !(extension in MODULE_CONTENT_TYPES)) {
      return new Response("not found", { status: 404 });
    }
    try {
      return new Response(await Deno.readFile(root + path.slice(1)), {
        headers: { "content-type": MODULE_CONTENT_TYPES[extension] },
      });
    } catch (error) {
      if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.IsADirectory) {
        return new Response("not found", { status: 404 });
      }
      throw error;
    }
  });
}

function option(args: string[], name: string): string | undefined {
  const index = args.indexOf(`--${name}`);
  return index < 0 ? undefined : args[index + 1];
}

if (import.meta.main) {
  if (Deno.args.includes("--help")) {
    console.log(
      "usage: npx deno run --allow-net --allow-read scripts/serve_modules.ts [--port N] [--host H]\n" +
        'Serves this repository\'s modules for `import … from "http://HOST:PORT/mod.ts"`.',
    );
    Deno.exit(0);
  }
  const port = Number(option(Deno.args, "port") ?? 8001);
  const server = serveModules({
    hostname: option(Deno.args, "host"),
    port,
    onListen: (url) => console.log(`caffe-quant modules: ${url}mod.ts (Ctrl-C to stop)`),
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => server.shutdown().then(() => Deno.exit(0)));
  }
}
