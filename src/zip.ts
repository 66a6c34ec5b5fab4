/**
 * A small ZIP writer: stored (uncompressed) entries with CRC-32, no ZIP64, fixed timestamps, so
 * the same files always give the same archive bytes. Used to hand the five outputs of a
 * conversion over HTTP (edge functions) as one download.
 *
 * @module
 */

/** One file of an archive: its name (UTF-8, `/` separated) and its content. */
export interface ZipEntry {
  /** Path inside the archive. */
  name: string;
  /** File content; text is stored as UTF-8. */
  content: Uint8Array | string;
}

/** CRC-32 lookup tables for slicing-by-8: table `k` holds the CRC of a byte followed by `k` zeros. */
const CRC_TABLES: Uint32Array = makeCrcTables();

function makeCrcTables(): Uint32Array {
  const tables = new Uint32Array(8 * 256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
    tables[byte] = crc;
  }
  for (let byte = 0; byte < 256; byte++) {
    for (let k = 1; k < 8; k++) {
      const previous = tables[(k - 1) * 256 + byte];
      tables[k * 256 + byte] = tables[previous & 0xff] ^ (previous >>> 8);
    }
  }
  return tables;
}

/**
 * The CRC-32 (IEEE 802.3, as ZIP and PNG use it) of `bytes`, continuing from `crc` when the data
 * comes in pieces.
 *
 * @example
 * ```ts
 * import { crc32 } from "./zip.ts";
 * crc32(new TextEncoder().encode("123456789")).toString(16); // "cbf43926"
 * ```
 */
export function crc32(bytes: Uint8Array, crc = 0): number {
  const t = CRC_TABLES;
  let c = ~crc >>> 0;
  let i = 0;
  const end8 = bytes.length - (bytes.length % 8);
  for (; i < end8; i += 8) {
    const low = c ^ (bytes[i] | bytes[i + 1] << 8 | bytes[i + 2] << 16 | bytes[i + 3] << 24);
    c = t[1792 + (low & 0xff)] ^ t[1536 + ((low >>> 8) & 0xff)] ^
      t[1280 + ((low >>> 16) & 0xff)] ^ t[1024 + (low >>> 24)] ^
      t[768 + bytes[i + 4]] ^ t[512 + bytes[i + 5]] ^ t[256 + bytes[i + 6]] ^ t[bytes[i + 7]];
  }
  for (; i < bytes.length; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const LOCAL_HEADER = 30;
const CENTRAL_HEADER = 46;
const END_OF_CENTRAL_DIRECTORY = 22;
/** Version 1.0 (stored entries) needed to extract. */
const VERSION_NEEDED = 10;
/** General purpose flag bit 11: names are UTF-8. */
const UTF8_NAMES = 0x0800;
/** MS-DOS date of 1980-01-01, the earliest a ZIP can hold (time 00:00:00 is 0). */
const DOS_DATE_1980 = (1 << 5) | 1;

/**
 * Packs `entries` into one ZIP archive, every entry stored (method 0) with its CRC-32 and the
 * timestamp 1980-01-01 00:00. The output buffer is allocated once. Throws a `RangeError` past
 * the limits of a ZIP without ZIP64 (65535 entries, 4 GiB).
 *
 * @example
 * ```ts
 * import { zipStore } from "./zip.ts";
 * const archive = zipStore([{ name: "hello.txt", content: "hello" }]);
 * archive.length; // 30 + 9 + 5 + 46 + 9 + 22 = 121
 * ```
 */
export function zipStore(entries: ZipEntry[]): Uint8Array {
  if (entries.length > 0xffff) throw new RangeError("a ZIP without ZIP64 holds 65535 entries");
  const encoder = new TextEncoder();
  const files = entries.map((entry) => {
    const content = typeof entry.content === "string"
      ? encoder.encode(entry.content)
      : entry.content;
    return { name: encoder.encode(entry.name), content, crc: crc32(content) };
  });
  let localSize = 0;
  let centralSize = 0;
  for (const { name, content } of files) {
    localSize += LOCAL_HEADER + name.length + content.length;
    centralSize += CENTRAL_HEADER + name.length;
  }
  if (localSize + centralSize > 0xffffffff) {
    throw new RangeError("a ZIP without ZIP64 holds at most 4 GiB");
  }
  const archive = new Uint8Array(localSize + centralSize + END_OF_CENTRAL_DIRECTORY);
  const view = new DataView(archive.buffer);
  let local = 0;
  let central = localSize;
  for (const { name, content, crc } of files) {
    // Fields shared by the local and central headers, from "version needed" to "name length".
    const common = (at: number) => {
      view.setUint16(at, VERSION_NEEDED, true);
      view.setUint16(at + 2, UTF8_NAMES, true);
      view.setUint16(at + 4, 0, true); // method: stored
      view.setUint16(at + 6, 0, true); // time
      view.setUint16(at + 8, DOS_DATE_1980, true);
      view.setUint32(at + 10, crc, true);
      view.setUint32(at + 14, content.length, true); // compressed size
      view.setUint32(at + 18, content.length, true); // uncompressed size
      view.setUint16(at + 22, name.length, true);
    };
    view.setUint32(central, 0x02014b50, true);
    view.setUint16(central + 4, VERSION_NEEDED, true); // version made by: MS-DOS, 1.0
    common(central + 6);
    // Extra field, comment, disk number, internal and external attributes stay 0.
    view.setUint32(central + 42, local, true);
    archive.set(name, central + CENTRAL_HEADER);
    central += CENTRAL_HEADER + name.length;

    view.setUint32(local, 0x04034b50, true);
    common(local + 4);
    archive.set(name, local + LOCAL_HEADER);
    archive.set(content, local + LOCAL_HEADER + name.length);
    local += LOCAL_HEADER + name.length + content.length;
  }
  view.setUint32(central, 0x06054b50, true);
  view.setUint16(central + 8, files.length, true);
  view.setUint16(central + 10, files.length, true);
  view.setUint32(central + 12, centralSize, true);
  view.setUint32(central + 16, localSize, true);
  return archive;
}
