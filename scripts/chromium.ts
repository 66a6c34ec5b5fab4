/**
 * How this project starts Debian's Chromium through playwright-core (browser tests and the
 * benchmark): its path and the flags for a headless run in a container with a closed network.
 *
 * @module
 */

import process from "node:process";

/**
 * The Chromium binary: `$CHROMIUM`, else Debian's `/usr/bin/chromium` (read through
 * `node:process`, so that scripts bundled for Node can import this module).
 */
export const chromiumPath: string = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** Chromium flags: headless in a container, no network of its own, no background services. */
export const CHROMIUM_ARGS: readonly string[] = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-quic",
  "--disable-sync",
];
