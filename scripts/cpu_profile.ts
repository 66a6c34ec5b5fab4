/**
 * Where a Deno script's CPU time goes, from V8's sampling profiler: runs the script in a child
 * `deno run -A --inspect-brk` process, records a CPU profile over its first `--seconds` through the
 * inspector protocol (samples every `--interval` µs), then stops the child, writes the profile
 * (`--out`, a `.cpuprofile` that Chrome DevTools opens) and prints the functions that took the most
 * time themselves (self time; JavaScript by name, file and line; WebAssembly functions by index).
 * The script should run at least as long as the window. Figures only.
 *
 * ```sh
 * npx deno run -A scripts/cpu_profile.ts [--seconds S] [--interval US] [--top N] [--out FILE] \
 *   -- <script.ts> [script arguments...]
 * ```
 *
 * @module
 */

/** A node of a V8 CPU profile (the fields used here). */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

/** A V8 CPU profile (the fields used here). */
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function option(args: string[], name: string, fallback: string): string {
  const at = args.indexOf(name);
  return at < 0 ? fallback : args[at + 1];
}

/** The child's inspector address, from the first line of its standard error that names one. */
async function inspectorUrl(stderr: ReadableStream<Uint8Array>): Promise<string> {
  const chunks = stderr.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (true) {
    const { value, done } = await chunks.read();
    if (done) throw new Error(`the script's process printed no inspector address:\n${text}`);
    text += decoder.decode(value, { stream: true });
    const url = text.match(/ws:\/\/\S+/)?.[0];
    if (url !== undefined) {
      // Keep reading, so that the child never blocks on a full pipe.
      (async () => {
        while (!(await chunks.read()).done) { /* drained */ }
      })();
      return url;
    }
  }
}

/**
 * Sends inspector protocol commands over `socket` and resolves each with its result; rejects
 * those still waiting when the socket closes (the script ended).
 */
function commander(socket: WebSocket): (method: string, params?: object) => Promise<unknown> {
  let next = 0;
  const waiting = new Map<number, [(result: unknown) => void, (error: Error) => void]>();
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    waiting.get(message.id)?.[0](message.result);
    waiting.delete(message.id);
  };
  socket.onclose = () => {
    for (const [, reject] of waiting.values()) {
      reject(
        new Error("the script ended before the profile was taken: give it a shorter --seconds"),
      );
    }
    waiting.clear();
  };
  return (method, params = {}) =>
    new Promise((resolve, reject) => {
      const id = ++next;
      waiting.set(id, [resolve, reject]);
      socket.send(JSON.stringify({ id, method, params }));
    });
}

/** Self time (µs) by function, largest first. */
function selfTimes(profile: CpuProfile): [string, number][] {
  const byNode = new Map(profile.nodes.map((node) => [node.id, node]));
  const times = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const { functionName, url, lineNumber } = byNode.get(id)!.callFrame;
    const file = url.split("/").pop();
    const name = `${functionName || "(anonymous)"}${file ? ` ${file}:${lineNumber + 1}` : ""}`;
    times.set(name, (times.get(name) ?? 0) + profile.timeDeltas[i]);
  });
  return [...times].sort((a, b) => b[1] - a[1]);
}

if (import.meta.main) {
  const split = Deno.args.indexOf("--");
  if (split < 0 || split === Deno.args.length - 1) {
    console.error(
      "usage: cpu_profile.ts [--seconds S] [--interval US] [--top N] [--out FILE] -- <script> [args]",
    );
    Deno.exit(2);
  }
  const own = Deno.args.slice(0, split);
  const seconds = Number(option(own, "--seconds", "5"));
  const interval = Number(option(own, "--interval", "50"));
  const top = Number(option(own, "--top", "30"));
  const out = option(own, "--out", "cpu.cpuprofile");
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--inspect-brk=127.0.0.1:0", ...Deno.args.slice(split + 1)],
    stdout: "inherit",
    stderr: "piped",
  }).spawn();
  try {
    const socket = new WebSocket(await inspectorUrl(child.stderr));
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = reject;
    });
    const send = commander(socket);
    await send("Profiler.enable");
    await send("Profiler.setSamplingInterval", { interval });
    await send("Profiler.start");
    send("Runtime.runIfWaitingForDebugger").catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const { profile } = await send("Profiler.stop") as { profile: CpuProfile };
    socket.close();
    await Deno.writeTextFile(out, JSON.stringify(profile));
    const times = selfTimes(profile);
    const total = times.reduce((sum, [, time]) => sum + time, 0);
    console.log(`${(total / 1000).toFixed(0)} ms sampled (profile: ${out}); self time:`);
    for (const [name, time] of times.slice(0, top)) {
      const share = (100 * time / total).toFixed(1).padStart(5);
      console.log(`${(time / 1000).toFixed(1).padStart(9)} ms ${share} %  ${name}`);
    }
  } finally {
    try {
      child.kill();
    } catch {
      // It has exited.
    }
    await child.status;
  }
}
