/**
 * The npm packages the sources import with Deno's `npm:` specifiers, for the esbuild builds
 * (scripts/bundle.ts, scripts/serve_web.ts) and the declaration build, which resolve them from
 * node_modules.
 *
 * @module
 */

import type * as esbuild from "esbuild";

/** Each `npm:` specifier of the sources and the package path it names. */
export const NPM_SPECIFIERS: Record<string, string> = {
  "npm:protobufjs@8.0.0": "protobufjs",
  "npm:fast-png@8.0.0": "fast-png",
  "npm:@jsquash/jpeg@1.6.0/decode.js": "@jsquash/jpeg/decode.js",
};

/** Where the TypeScript compiler finds each specifier's declarations (below node_modules). */
export const NPM_TYPES: Record<string, string> = {
  "npm:protobufjs@8.0.0": "protobufjs",
  "npm:fast-png@8.0.0": "fast-png/lib/index.d.ts",
  "npm:@jsquash/jpeg@1.6.0/decode.js": "@jsquash/jpeg/decode.d.ts",
};

/**
 * An esbuild plugin resolving the specifiers of {@linkcode NPM_SPECIFIERS} to their packages in
 * `resolveDir`'s node_modules, so that esbuild bundles them; any other `npm:` specifier fails.
 */
export function npmSpecifiers(resolveDir: string): esbuild.Plugin {
  return {
    name: "npm-specifiers",
    setup(build) {
      build.onResolve({ filter: /^npm:/ }, async (args) => {
        const target = NPM_SPECIFIERS[args.path];
        if (target === undefined) {
          return { errors: [{ text: `unexpected npm specifier ${args.path}` }] };
        }
        return await build.resolve(target, { kind: args.kind, resolveDir });
      });
    },
  };
}
