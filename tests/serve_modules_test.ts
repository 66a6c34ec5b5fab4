// The one-line module server of the README's URL import (issue 16.14): started as the README
// says, it serves .ts as application/typescript and nothing outside the module files.

import assert from "node:assert/strict";
import { repoRoot } from "./_runtime_fixture.ts";

Deno.test("scripts/serve_modules.ts serves the modules with Deno's content types, and stops on SIGTERM", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-read", "scripts/serve_modules.ts", "--port", "0"],
    cwd: repoRoot,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let banner = "";
    while (!banner.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      banner += value;
    }
    reader.releaseLock();
    const url = /(http:\/\/127\.0\.0\.1:\d+\/)mod\.ts/.exec(banner)?.[1];
    assert.ok(url, `no URL in ${JSON.stringify(banner)}`);
    const mod = await fetch(`${url}mod.ts`);
    assert.equal(mod.status, 200);
    assert.equal(mod.headers.get("content-type"), "application/typescript; charset=utf-8");
    assert.equal(await mod.text(), await Deno.readTextFile(`${repoRoot}mod.ts`));
    const nested = await fetch(`${url}src/errors.ts`);
    assert.equal(nested.headers.get("content-type"), "application/typescript; charset=utf-8");
    await nested.body?.cancel();
    for (const path of ["", "src/", ".git/HEAD", "src/../mod.ts", "README.md", "nope.ts"]) {
      const response: Response = await fetch(`${url}${path}`);
      await response.body?.cancel();
      assert.equal(response.status, path === "src/../mod.ts" ? 200 : 404, path);
    }
  } finally {
    child.kill("SIGTERM");
    const status = await child.status;
    await child.stdout.cancel().catch(() => {});
    await child.stderr.cancel();
    assert.equal(status.code, 0, "stops cleanly on SIGTERM");
  }
});
