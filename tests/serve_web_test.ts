/**
 * scripts/serve_web.ts as users start it: `--help` prints the usage without building or serving,
 * and stopping `npm run web` with SIGTERM (to npm alone, as a process manager does) stops the
 * server too instead of leaving it listening.
 */

import assert from "node:assert/strict";
import { repoRoot, runCommand } from "./_runtime_fixture.ts";

Deno.test("npx deno task web --help prints the usage and exits", async () => {
  const result = await runCommand(Deno.execPath(), ["task", "web", "--help"], {
    cwd: repoRoot,
    env: { NO_COLOR: "1" },
    timeoutMs: 60_000,
  });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^usage: npm run web -- \[--port N\]/m);
  assert.doesNotMatch(result.stdout, /caffe-quant page:/);
});

/** The pids of processes whose command line holds every one of `words` (from /proc). */
function processesWith(words: string[]): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const args = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).split("\0");
      if (words.every((word) => args.includes(word))) pids.push(Number(entry.name));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

Deno.test("SIGTERM to `npm run web` stops the deno server it started", async () => {
  // A free port, chosen here so that the server's process can be found by its arguments.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = String((probe.addr as Deno.NetAddr).port);
  probe.close();
  const npm = new Deno.Command("npm", {
    args: ["run", "web", "--", "--port", port],
    cwd: repoRoot,
    stdout: "piped",
    stderr: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  const url = `http://127.0.0.1:${port}/`;
  try {
    let seen = "";
    const reader = npm.stdout.pipeThrough(new TextDecoderStream()).getReader();
    while (!seen.includes(url)) {
      const { value, done } = await reader.read();
      assert.ok(!done, `npm run web ended before listening:\n${seen}`);
      seen += value;
    }
    reader.releaseLock();
    npm.stdout.cancel().catch(() => {});
    assert.equal((await fetch(url)).status, 200);
    npm.kill("SIGTERM");
    await npm.status;
    let listening = true;
    for (let i = 0; i < 40 && listening; i++) {
      await new Promise((done) => setTimeout(done, 250));
      listening = await fetch(url).then((response) => response.body?.cancel(), () => false) !==
        false;
    }
    assert.ok(!listening, `the server still answers on ${url} after npm ended`);
  } finally {
    try {
      npm.kill("SIGKILL");
    } catch {
      // Already ended.
    }
    await npm.status;
    // An orphaned server (the failure this test looks for) is ended by its pid.
    for (const pid of processesWith(["scripts/serve_web.ts", "--port", port])) {
      Deno.kill(pid, "SIGKILL");
    }
  }
});

Deno.test("the server also stops when deno runs through npm's Node wrapper and the shell is gone", async () => {
  // Without deno's install script (npm ci --ignore-scripts, or npm enforcing allowScripts),
  // node_modules/.bin/deno is node_modules/deno/bin.cjs: Node runs the deno binary and waits, so
  // when npm and its shell end, the server's own parent (the wrapper) lives on.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = String((probe.addr as Deno.NetAddr).port);
  probe.close();
  const shell = new Deno.Command("sh", {
    // "; true" keeps the shell from replacing itself with node.
    args: ["-c", `node node_modules/deno/bin.cjs run -A scripts/serve_web.ts --port ${port}; true`],
    cwd: repoRoot,
    stdout: "piped",
    stderr: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  const url = `http://127.0.0.1:${port}/`;
  try {
    let seen = "";
    const reader = shell.stdout.pipeThrough(new TextDecoderStream()).getReader();
    while (!seen.includes(url)) {
      const { value, done } = await reader.read();
      assert.ok(!done, `the server ended before listening:\n${seen}`);
      seen += value;
    }
    reader.releaseLock();
    shell.stdout.cancel().catch(() => {});
    assert.equal((await fetch(url)).status, 200);
    assert.equal(processesWith(["node_modules/deno/bin.cjs", port]).length, 1, "the wrapper runs");
    shell.kill("SIGKILL");
    await shell.status;
    let listening = true;
    for (let i = 0; i < 40 && listening; i++) {
      await new Promise((done) => setTimeout(done, 250));
      listening = await fetch(url).then((response) => response.body?.cancel(), () => false) !==
        false;
    }
    assert.ok(!listening, `the server still answers on ${url} after its shell ended`);
  } finally {
    try {
      shell.kill("SIGKILL");
    } catch {
      // Already ended.
    }
    await shell.status;
    for (const pid of processesWith(["scripts/serve_web.ts", "--port", port])) {
      Deno.kill(pid, "SIGKILL");
    }
  }
});
