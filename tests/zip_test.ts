/** src/zip.ts: CRC-32 against known values and a bitwise reference; archives read back two ways. */

import assert from "node:assert/strict";
import { crc32, zipStore } from "../src/zip.ts";
import { naiveCrc32, readStoredZip } from "./_zip_reader.ts";

const encoder = new TextEncoder();

Deno.test("crc32 gives the published check values", () => {
  // The CRC-32 catalogue's check value, and two well-known strings.
  assert.equal(crc32(encoder.encode("123456789")), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
  assert.equal(crc32(encoder.encode("The quick brown fox jumps over the lazy dog")), 0x414fa339);
});

Deno.test("crc32 agrees with a bitwise CRC at every length around the 8-byte steps", () => {
  const bytes = new Uint8Array(1000);
  let seed = 12345;
  for (let i = 0; i < bytes.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    bytes[i] = seed >>> 24;
  }
  for (let length = 0; length <= 40; length++) {
    const part = bytes.subarray(3, 3 + length);
    assert.equal(crc32(part), naiveCrc32(part), `length ${length}`);
  }
  assert.equal(crc32(bytes), naiveCrc32(bytes));
  assert.equal(crc32(bytes.subarray(500), crc32(bytes.subarray(0, 500))), naiveCrc32(bytes));
});

const ENTRIES = [
  { name: "a_fake_quant_model.prototxt", content: 'name: "net"\n' },
  { name: "dir/ünïcode.bin", content: new Uint8Array([0, 1, 2, 255, 254, 128, 127]) },
  { name: "empty.json", content: new Uint8Array(0) },
];

Deno.test("zipStore writes stored entries that read back with their names and bytes", () => {
  const archive = zipStore(ENTRIES);
  const expectedSize = ENTRIES.reduce(
    (sum, e) => {
      const name = encoder.encode(e.name).length;
      const size = typeof e.content === "string"
        ? encoder.encode(e.content).length
        : e.content.length;
      return sum + 30 + name + size + 46 + name;
    },
    22,
  );
  assert.equal(archive.length, expectedSize);
  const entries = readStoredZip(archive);
  assert.deepEqual(entries.map((e) => e.name), ENTRIES.map((e) => e.name));
  for (const [i, entry] of entries.entries()) {
    const content = ENTRIES[i].content;
    assert.deepEqual(
      entry.content,
      typeof content === "string" ? encoder.encode(content) : content,
    );
  }
  assert.deepEqual(zipStore(ENTRIES), archive, "same input, same bytes");
});

/** Runs Info-ZIP's `unzip` (killed after 10 s). */
async function unzip(args: string[]): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await new Deno.Command("unzip", {
    args,
    stdin: "null",
    signal: AbortSignal.timeout(10_000),
  }).output();
  return { code, output: new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr) };
}

/** Whether Info-ZIP's `unzip` is installed (required in CI; elsewhere its test is skipped). */
async function haveUnzip(): Promise<boolean> {
  try {
    await unzip(["-v"]);
    return true;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    if (Deno.env.get("CI") === "true") throw new Error("CI=true but unzip is not installed");
    console.warn("skipping the unzip -t test: unzip is not installed");
    return false;
  }
}

Deno.test({
  name: "zipStore archives pass `unzip -t` (Info-ZIP)",
  ignore: !(await haveUnzip()),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "caffe-quant-zip-" });
    try {
      await Deno.writeFile(`${dir}/test.zip`, zipStore(ENTRIES));
      const result = await unzip(["-t", `${dir}/test.zip`]);
      assert.equal(result.code, 0, result.output);
      assert.match(result.output, /No errors detected/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
