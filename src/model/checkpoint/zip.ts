// The ZIP container of PyTorch's `torch.save` files (.pth / .pt since PyTorch 1.6), read by offset.
//
// Only what torch writes is supported: entries are *stored* (method 0, uncompressed), not encrypted;
// large files use ZIP64. We read the central directory and, per entry, its local header (whose extra
// field may differ from the central one — torch pads it to align the data), never the whole file.
//
// Records (little-endian):
//   end of central directory (EOCD), at the end, 22 bytes + comment:
//     u32 0x06054b50, u16 disk, u16 cd disk, u16 entries here, u16 entries, u32 cd size, u32 cd offset,
//     u16 comment length. A field at its maximum (0xffff / 0xffffffff) means "see the ZIP64 record".
//   ZIP64 EOCD locator, just before the EOCD, 20 bytes:
//     u32 0x07064b50, u32 disk, u64 offset of the ZIP64 EOCD record, u32 disks
//   ZIP64 EOCD record: u32 0x06064b50, u64 size, u16 ver, u16 ver, u32 disk, u32 cd disk,
//     u64 entries here, u64 entries, u64 cd size, u64 cd offset
//   central directory entry, 46 bytes + name + extra + comment:
//     u32 0x02014b50, u16 ver made, u16 ver needed, u16 flags, u16 method, u16 time, u16 date, u32 crc,
//     u32 compressed size, u32 size, u16 name len, u16 extra len, u16 comment len, u16 disk,
//     u16 internal attr, u32 external attr, u32 local header offset
//     ZIP64 extra field (id 0x0001): u64 values, in this order, for each of size, compressed size and
//     local header offset that is 0xffffffff above.
//   local header, 30 bytes + name + extra, then the data:
//     u32 0x04034b50, u16 ver, u16 flags, u16 method, u16 time, u16 date, u32 crc, u32 csize, u32 size,
//     u16 name len, u16 extra len
// CRCs are not checked (that would read every byte twice); sizes and bounds are.
import type { ReadFile } from "./io.js";

export interface ZipEntry {
  name: string;
  /** Absolute position of the entry's data. */
  dataStart: number;
  size: number;
}

const MAX16 = 0xffff;
const MAX32 = 0xffffffff;

function u64(v: DataView, at: number, path: string): number {
  const x = v.getBigUint64(at, true);
  if (x > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${path}: zip: 64-bit field too large`);
  return Number(x);
}

/** The stored entries of a zip file, by name. */
export function readZipDirectory(f: ReadFile): Map<string, ZipEntry> {
  const path = f.path;
  // The EOCD sits in the last 22 + (up to 65535 comment) bytes; search backwards for its signature.
  const tailLen = Math.min(f.size, 22 + MAX16);
  const tail = f.readBytes(f.size - tailLen, tailLen, "zip end record");
  const tv = new DataView(tail.buffer);
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--)
    if (tv.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd < 0) throw new Error(`${path}: not a zip file (no end-of-central-directory record)`);
  let count = tv.getUint16(eocd + 10, true);
  let cdSize = tv.getUint32(eocd + 12, true);
  let cdOffset = tv.getUint32(eocd + 16, true);
  if (count === MAX16 || cdSize === MAX32 || cdOffset === MAX32) {
    const locAt = f.size - tailLen + eocd - 20;
    if (locAt < 0) throw new Error(`${path}: zip: ZIP64 locator missing`);
    const loc = new DataView(f.readBytes(locAt, 20, "zip64 locator").buffer);
    if (loc.getUint32(0, true) !== 0x07064b50) throw new Error(`${path}: zip: ZIP64 locator missing`);
    const recAt = u64(loc, 8, path);
    if (recAt + 56 > f.size) throw new Error(`${path}: zip: ZIP64 record past the end of the file`);
    const rec = new DataView(f.readBytes(recAt, 56, "zip64 end record").buffer);
    if (rec.getUint32(0, true) !== 0x06064b50) throw new Error(`${path}: zip: bad ZIP64 end record`);
    count = u64(rec, 32, path);
    cdSize = u64(rec, 40, path);
    cdOffset = u64(rec, 48, path);
  }
  if (cdOffset + cdSize > f.size) throw new Error(`${path}: zip: central directory past the end of the file`);
  const cd = f.readBytes(cdOffset, cdSize, "zip central directory");
  const v = new DataView(cd.buffer);
  const names = new TextDecoder();
  const out = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdSize || v.getUint32(p, true) !== 0x02014b50)
      throw new Error(`${path}: zip: bad central directory entry ${i}`);
    const flags = v.getUint16(p + 8, true);
    const method = v.getUint16(p + 10, true);
    let csize = v.getUint32(p + 20, true);
    let size = v.getUint32(p + 24, true);
    const nameLen = v.getUint16(p + 28, true);
    const extraLen = v.getUint16(p + 30, true);
    const commentLen = v.getUint16(p + 32, true);
    let local = v.getUint32(p + 42, true);
    const name = names.decode(cd.subarray(p + 46, p + 46 + nameLen));
    // ZIP64 extra: replaces the fields that are at their maximum, in order size, csize, offset.
    for (let x = p + 46 + nameLen; x + 4 <= p + 46 + nameLen + extraLen; ) {
      const id = v.getUint16(x, true);
      const len = v.getUint16(x + 2, true);
      if (id === 0x0001) {
        let q = x + 4;
        if (size === MAX32) {
          size = u64(v, q, path);
          q += 8;
        }
        if (csize === MAX32) {
          csize = u64(v, q, path);
          q += 8;
        }
        if (local === MAX32) local = u64(v, q, path);
      }
      x += 4 + len;
    }
    if (flags & 1) throw new Error(`${path}: zip entry '${name}' is encrypted`);
    if (method !== 0)
      throw new Error(
        `${path}: zip entry '${name}' is compressed (method ${method}); torch files store entries uncompressed`,
      );
    if (csize !== size) throw new Error(`${path}: zip entry '${name}': stored size ${csize} ≠ size ${size}`);
    if (local + 30 > f.size) throw new Error(`${path}: zip entry '${name}': local header past the end`);
    const lh = new DataView(f.readBytes(local, 30, `zip entry '${name}'`).buffer);
    if (lh.getUint32(0, true) !== 0x04034b50)
      throw new Error(`${path}: zip entry '${name}': bad local header`);
    const dataStart = local + 30 + lh.getUint16(26, true) + lh.getUint16(28, true);
    if (dataStart + size > f.size)
      throw new Error(
        `${path}: zip entry '${name}': data ends at byte ${dataStart + size} but the file has ${f.size} (truncated file?)`,
      );
    out.set(name, { name, dataStart, size });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}
