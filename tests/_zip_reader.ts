/**
 * An independent reader of stored ZIP archives for the tests of src/zip.ts and the edge function:
 * written from the ZIP format (APPNOTE), sharing no code with the writer.
 *
 * @module
 */

/** The CRC-32 of `bytes`, bit by bit (no tables): the independent check of src/zip.ts. */
export function naiveCrc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** One entry read back from a ZIP by {@linkcode readStoredZip}. */
export interface UnzippedEntry {
  /** Name from the central directory. */
  name: string;
  /** The stored bytes. */
  content: Uint8Array;
}

/**
 * Reads a ZIP of stored entries through its central directory, checking every local header
 * against it and every CRC with {@linkcode naiveCrc32}; throws on anything unexpected.
 */
export function readStoredZip(archive: Uint8Array): UnzippedEntry[] {
  const view = new DataView(archive.buffer, archive.byteOffset, archive.byteLength);
  const end = archive.length - 22;
  if (view.getUint32(end, true) !== 0x06054b50) throw new Error("no end of central directory");
  const count = view.getUint16(end + 10, true);
  let at = view.getUint32(end + 16, true);
  if (at + view.getUint32(end + 12, true) !== end) throw new Error("central directory misplaced");
  const decoder = new TextDecoder();
  const entries: UnzippedEntry[] = [];
  for (let i = 0; i < count; i++) {
    if (view.getUint32(at, true) !== 0x02014b50) throw new Error(`bad central header ${i}`);
    const method = view.getUint16(at + 10, true);
    const crc = view.getUint32(at + 16, true);
    const size = view.getUint32(at + 20, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    const local = view.getUint32(at + 42, true);
    const name = decoder.decode(archive.subarray(at + 46, at + 46 + nameLength));
    if (method !== 0 || view.getUint32(at + 24, true) !== size) {
      throw new Error(`${name}: not stored`);
    }
    if (view.getUint32(local, true) !== 0x04034b50) throw new Error(`${name}: bad local header`);
    if (view.getUint32(local + 14, true) !== crc) throw new Error(`${name}: local CRC differs`);
    if (view.getUint16(local + 26, true) !== nameLength) throw new Error(`${name}: name length`);
    const start = local + 30 + nameLength + view.getUint16(local + 28, true);
    const content = archive.slice(start, start + size);
    if (naiveCrc32(content) !== crc) throw new Error(`${name}: CRC mismatch`);
    entries.push({ name, content });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}
