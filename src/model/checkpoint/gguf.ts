// GGUF files (ggml's docs/gguf.md, versions 2 and 3): the container llama.cpp reads and writes.
//
//   "GGUF" u32 version  u64 tensor_count  u64 metadata_kv_count
//   metadata:  key (u64 length + UTF-8)  u32 value type  value      (arrays: u32 item type, u64 count, items)
//   tensors:   name  u32 n_dims  u64 ne[n_dims] (ne[0] = the innermost, row length)  u32 ggml type  u64 offset
//   padding to `general.alignment` (default 32), then the data; each tensor's offset is relative to the
//   data start and a multiple of the alignment.
// Everything is little-endian (a big-endian file, which v3 allows, is refused by its byte-swapped version).
//
// The reader is bounds-checked throughout: every count, length, dimension and offset is checked against
// the bytes left in the file before anything is allocated, so a truncated or hostile file gives an error
// naming the file, the key or tensor, and the byte offset, never a crash or a giant allocation. The
// header is read through a small window; tensor data is read on demand by positioned reads.
// The writer lays out the same structure and writes it atomically (tensors produced one at a time).
import { AtomicFiles, ReadFile, WriteFile } from "./io.js";

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Metadata value types (gguf_type). */
export const GGUFType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GGUFTypeId = (typeof GGUFType)[keyof typeof GGUFType];

const SCALAR_BYTES: Record<number, number> = {
  0: 1,
  1: 1,
  2: 2,
  3: 2,
  4: 4,
  5: 4,
  6: 4,
  7: 1,
  10: 8,
  11: 8,
  12: 8,
};
const TYPE_NAMES = Object.fromEntries(Object.entries(GGUFType).map(([k, v]) => [v, k])) as Record<
  number,
  string
>;

/** A metadata value: numbers (64-bit integers as bigint), booleans, strings, or an array of one item type. */
export type GGUFValue = number | bigint | boolean | string | GGUFArray;
export interface GGUFArray {
  itemType: GGUFTypeId;
  items: GGUFValue[];
}
export interface GGUFEntry {
  type: GGUFTypeId;
  value: GGUFValue;
}

/** The ggml tensor types herd knows the block shape of: block size (elements) and bytes per block. */
export const GGML_TYPES: Record<number, { name: string; block: number; bytes: number }> = {
  0: { name: "F32", block: 1, bytes: 4 },
  1: { name: "F16", block: 1, bytes: 2 },
  2: { name: "Q4_0", block: 32, bytes: 18 },
  3: { name: "Q4_1", block: 32, bytes: 20 },
  6: { name: "Q5_0", block: 32, bytes: 22 },
  7: { name: "Q5_1", block: 32, bytes: 24 },
  8: { name: "Q8_0", block: 32, bytes: 34 },
  9: { name: "Q8_1", block: 32, bytes: 36 },
  10: { name: "Q2_K", block: 256, bytes: 84 },
  11: { name: "Q3_K", block: 256, bytes: 110 },
  12: { name: "Q4_K", block: 256, bytes: 144 },
  13: { name: "Q5_K", block: 256, bytes: 176 },
  14: { name: "Q6_K", block: 256, bytes: 210 },
  15: { name: "Q8_K", block: 256, bytes: 292 },
  24: { name: "I8", block: 1, bytes: 1 },
  25: { name: "I16", block: 1, bytes: 2 },
  26: { name: "I32", block: 1, bytes: 4 },
  27: { name: "I64", block: 1, bytes: 8 },
  28: { name: "F64", block: 1, bytes: 8 },
  30: { name: "BF16", block: 1, bytes: 2 },
};
export const GGML = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, BF16: 30 } as const;

/** Up to 4 dimensions (GGML_MAX_DIMS). */
const MAX_DIMS = 4;

export interface GGUFTensorInfo {
  name: string;
  /** ggml order: dims[0] is the row length (a [n, k] matrix is dims [k, n]). */
  dims: number[];
  type: number;
  /** Absolute byte position of the data in the file, and its length. */
  position: number;
  bytes: number;
}

/** Bytes of a tensor of `type` with ggml dims (errors when dims[0] is not a whole number of blocks). */
export function ggmlTensorBytes(type: number, dims: readonly number[]): number {
  const t = GGML_TYPES[type];
  if (!t) throw new Error(`ggml type ${type} is not known`);
  const row = dims[0] ?? 1;
  if (row % t.block !== 0)
    throw new Error(`row length ${row} is not a multiple of ${t.name}'s block of ${t.block}`);
  let n = row / t.block;
  for (let i = 1; i < dims.length; i++) n *= dims[i]!;
  return n * t.bytes;
}

/** Header window: bytes read ahead at a time while parsing metadata and tensor infos. */
const WINDOW = 1 << 20;

/** A forward cursor over the header of `f` (refills a window by positioned reads). */
class Cursor {
  pos = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private bufAt = 0;
  private view = new DataView(this.buf.buffer);
  private readonly dec = new TextDecoder("utf-8", { fatal: true });
  constructor(private readonly f: ReadFile) {}

  fail(what: string, msg: string, at = this.pos): Error {
    return new Error(`${this.f.path}: ${what} at byte ${at}: ${msg}`);
  }

  get left(): number {
    return this.f.size - this.pos;
  }

  /** Make `n` bytes at pos available; returns their offset in the window. */
  private need(n: number, what: string): number {
    if (n > this.left) throw this.fail(what, `needs ${n} bytes, the file has ${this.left} left (truncated?)`);
    if (this.pos < this.bufAt || this.pos + n > this.bufAt + this.buf.length) {
      const len = Math.min(Math.max(n, WINDOW), this.left);
      this.buf = this.f.readBytes(this.pos, len, what);
      this.bufAt = this.pos;
      this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    }
    const at = this.pos - this.bufAt;
    this.pos += n;
    return at;
  }

  /** Make `n` bytes available and return the window's view (the bytes start at `this.off`). */
  private at(n: number, what: string): DataView {
    this.off = this.need(n, what);
    return this.view;
  }
  private off = 0;

  u8(what: string): number {
    return this.at(1, what).getUint8(this.off);
  }
  u32(what: string): number {
    return this.at(4, what).getUint32(this.off, true);
  }
  /** A u64 that must fit a safe integer (counts, lengths, offsets). */
  u64(what: string): number {
    const at = this.pos;
    const v = this.at(8, what).getBigUint64(this.off, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.fail(what, `value ${v} is too large`, at);
    return Number(v);
  }

  string(what: string): string {
    const at = this.pos;
    const len = this.u64(what);
    if (len > this.left) throw this.fail(what, `string of ${len} bytes runs past the end of the file`, at);
    const off = this.need(len, what);
    try {
      return this.dec.decode(this.buf.subarray(off, off + len));
    } catch {
      throw this.fail(what, "string is not valid UTF-8", at);
    }
  }

  scalar(type: number, what: string): GGUFValue {
    switch (type) {
      case GGUFType.UINT8:
        return this.at(1, what).getUint8(this.off);
      case GGUFType.INT8:
        return this.at(1, what).getInt8(this.off);
      case GGUFType.UINT16:
        return this.at(2, what).getUint16(this.off, true);
      case GGUFType.INT16:
        return this.at(2, what).getInt16(this.off, true);
      case GGUFType.UINT32:
        return this.at(4, what).getUint32(this.off, true);
      case GGUFType.INT32:
        return this.at(4, what).getInt32(this.off, true);
      case GGUFType.FLOAT32:
        return this.at(4, what).getFloat32(this.off, true);
      case GGUFType.BOOL: {
        const at = this.pos;
        const b = this.at(1, what).getUint8(this.off);
        if (b > 1) throw this.fail(what, `bool byte is ${b}, not 0 or 1`, at);
        return b === 1;
      }
      case GGUFType.UINT64:
        return this.at(8, what).getBigUint64(this.off, true);
      case GGUFType.INT64:
        return this.at(8, what).getBigInt64(this.off, true);
      case GGUFType.FLOAT64:
        return this.at(8, what).getFloat64(this.off, true);
      default:
        throw this.fail(what, `internal: ${type} is not a scalar type`);
    }
  }

  value(type: number, what: string, depth: number): GGUFValue {
    if (type === GGUFType.STRING) return this.string(what);
    if (type !== GGUFType.ARRAY) return this.scalar(type, what);
    const at = this.pos;
    const itemType = this.u32(what);
    if (!(itemType in TYPE_NAMES))
      throw this.fail(what, `array item type ${itemType} is not a GGUF type`, at);
    if (itemType === GGUFType.ARRAY && depth >= 8) throw this.fail(what, "arrays nested deeper than 8", at);
    const count = this.u64(what);
    // Each item takes at least this many bytes, so a lying count is caught before any allocation.
    const min = SCALAR_BYTES[itemType] ?? (itemType === GGUFType.STRING ? 8 : 12);
    if (count * min > this.left)
      throw this.fail(
        what,
        `array of ${count} ${TYPE_NAMES[itemType]} items cannot fit the ${this.left} bytes left`,
        at,
      );
    const items: GGUFValue[] = new Array(count);
    for (let i = 0; i < count; i++) items[i] = this.value(itemType, `${what}[${i}]`, depth + 1);
    return { itemType: itemType as GGUFTypeId, items };
  }
}

/** A GGUF file opened for reading: its metadata and tensor infos; tensor data read on demand. */
export class GGUFFile {
  readonly version: number;
  readonly metadata = new Map<string, GGUFEntry>();
  readonly tensors = new Map<string, GGUFTensorInfo>();
  readonly alignment: number;
  /** Absolute position of the data section. */
  readonly dataStart: number;
  private readonly f: ReadFile;

  private constructor(path: string) {
    this.f = new ReadFile(path);
    try {
      const c = new Cursor(this.f);
      if (this.f.size < 24)
        throw c.fail("header", `file of ${this.f.size} bytes is too short for a GGUF header`, 0);
      const magic = c.u32("magic");
      if (magic !== GGUF_MAGIC) throw c.fail("magic", "not a GGUF file (no 'GGUF' magic)", 0);
      this.version = c.u32("version");
      if (this.version === 1) throw c.fail("version", "GGUF version 1 is not supported (only 2 and 3)", 4);
      if (this.version !== 2 && this.version !== 3)
        throw c.fail(
          "version",
          `version ${this.version} is not 2 or 3${this.version > 0xffff ? " (a big-endian file?)" : ""}`,
          4,
        );
      const nTensors = c.u64("tensor_count");
      const nKV = c.u64("metadata_kv_count");
      // A key-value pair takes at least 8 + 4 + 1 bytes, a tensor info at least 8 + 4 + 8 + 4 + 8.
      if (nKV * 13 > c.left) throw c.fail("metadata_kv_count", `${nKV} pairs cannot fit the file`, 16);
      for (let i = 0; i < nKV; i++) {
        const at = c.pos;
        const key = c.string(`metadata key #${i}`);
        if (this.metadata.has(key)) throw c.fail(`metadata key '${key}'`, "appears twice", at);
        const tAt = c.pos;
        const type = c.u32(`metadata key '${key}'`);
        if (!(type in TYPE_NAMES))
          throw c.fail(`metadata key '${key}'`, `value type ${type} is not a GGUF type`, tAt);
        const value = c.value(type, `metadata key '${key}'`, 0);
        this.metadata.set(key, { type: type as GGUFTypeId, value });
      }
      const align = this.metadata.get("general.alignment");
      this.alignment = GGUF_DEFAULT_ALIGNMENT;
      if (align) {
        const a = align.value;
        if (align.type !== GGUFType.UINT32 || typeof a !== "number" || a === 0 || (a & (a - 1)) !== 0)
          throw new Error(
            `${this.f.path}: metadata key 'general.alignment' must be a u32 power of two, got ${String(a)}`,
          );
        this.alignment = a;
      }
      if (nTensors * 32 > c.left)
        throw c.fail("tensor_count", `${nTensors} tensor infos cannot fit the file`, 8);
      const seen = new Set<string>();
      const infos: { name: string; dims: number[]; type: number; offset: number; at: number }[] = [];
      for (let i = 0; i < nTensors; i++) {
        const at = c.pos;
        const name = c.string(`tensor info #${i}`);
        const what = `tensor '${name}'`;
        if (seen.has(name)) throw c.fail(what, "appears twice", at);
        const nd = c.u32(what);
        if (nd > MAX_DIMS) throw c.fail(what, `${nd} dimensions (at most ${MAX_DIMS})`, c.pos - 4);
        const dims: number[] = [];
        let elems = 1;
        for (let d = 0; d < nd; d++) {
          const dAt = c.pos;
          const n = c.u64(what);
          elems *= n;
          if (n === 0 || elems > this.f.size * 8)
            throw c.fail(what, `dimension ${d} is ${n} (${elems} elements cannot be in this file)`, dAt);
          dims.push(n);
        }
        const tAt = c.pos;
        const type = c.u32(what);
        if (!GGML_TYPES[type]) throw c.fail(what, `ggml type ${type} is not supported`, tAt);
        const oAt = c.pos;
        const offset = c.u64(what);
        if (offset % this.alignment !== 0)
          throw c.fail(
            what,
            `data offset ${offset} is not a multiple of the alignment ${this.alignment}`,
            oAt,
          );
        seen.add(name);
        infos.push({ name, dims, type, offset, at: oAt });
      }
      this.dataStart = Math.ceil(c.pos / this.alignment) * this.alignment;
      for (const t of infos) {
        let bytes: number;
        try {
          bytes = ggmlTensorBytes(t.type, t.dims);
        } catch (e) {
          throw c.fail(`tensor '${t.name}'`, (e as Error).message, t.at - 8);
        }
        const position = this.dataStart + t.offset;
        if (position + bytes > this.f.size)
          throw c.fail(
            `tensor '${t.name}'`,
            `data [${position}, ${position + bytes}) runs past the end of the file (${this.f.size} bytes; truncated?)`,
            t.at,
          );
        this.tensors.set(t.name, { name: t.name, dims: t.dims, type: t.type, position, bytes });
      }
    } catch (e) {
      this.f.close();
      throw e;
    }
  }

  static open(path: string): GGUFFile {
    return new GGUFFile(path);
  }

  get path(): string {
    return this.f.path;
  }

  /** A metadata value, or undefined. */
  get(key: string): GGUFValue | undefined {
    return this.metadata.get(key)?.value;
  }

  /** Read a tensor's stored bytes into `out` (its length must be the tensor's byte size). */
  readInto(name: string, out: Uint8Array): void {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`${this.f.path}: tensor '${name}' is missing`);
    if (out.length !== t.bytes)
      throw new Error(`${this.f.path}: tensor '${name}': internal: ${out.length} ≠ ${t.bytes} bytes`);
    this.f.readExact(out, t.position, `tensor '${name}'`);
  }

  close(): void {
    this.f.close();
  }
}

// --- writing ---------------------------------------------------------------------------------------

export interface GGUFTensorOut {
  name: string;
  dims: number[];
  type: number;
  /** The tensor's bytes, produced when it is written (so one tensor is in memory at a time). */
  data: () => Uint8Array;
}

class Bytes {
  private parts: Uint8Array[] = [];
  length = 0;
  private readonly enc = new TextEncoder();
  push(b: Uint8Array): void {
    this.parts.push(b);
    this.length += b.length;
  }
  num(type: number, v: number | bigint | boolean): void {
    const n = type === GGUFType.STRING ? 8 : SCALAR_BYTES[type]!;
    const b = new Uint8Array(n);
    const d = new DataView(b.buffer);
    const x = typeof v === "boolean" ? Number(v) : v;
    switch (type) {
      case GGUFType.UINT8:
      case GGUFType.BOOL:
        d.setUint8(0, Number(x));
        break;
      case GGUFType.INT8:
        d.setInt8(0, Number(x));
        break;
      case GGUFType.UINT16:
        d.setUint16(0, Number(x), true);
        break;
      case GGUFType.INT16:
        d.setInt16(0, Number(x), true);
        break;
      case GGUFType.UINT32:
        d.setUint32(0, Number(x), true);
        break;
      case GGUFType.INT32:
        d.setInt32(0, Number(x), true);
        break;
      case GGUFType.FLOAT32:
        d.setFloat32(0, Number(x), true);
        break;
      case GGUFType.FLOAT64:
        d.setFloat64(0, Number(x), true);
        break;
      case GGUFType.INT64:
        d.setBigInt64(0, BigInt(x), true);
        break;
      default: // UINT64 and lengths
        d.setBigUint64(0, BigInt(x), true);
    }
    this.push(b);
  }
  u32(v: number): void {
    this.num(GGUFType.UINT32, v);
  }
  u64(v: number): void {
    this.num(GGUFType.UINT64, v);
  }
  string(s: string): void {
    const b = this.enc.encode(s);
    this.u64(b.length);
    this.push(b);
  }
  value(type: number, v: GGUFValue, key: string): void {
    if (type === GGUFType.STRING) {
      if (typeof v !== "string") throw new Error(`GGUF writer: key '${key}' is STRING but holds ${typeof v}`);
      this.string(v);
    } else if (type === GGUFType.ARRAY) {
      if (typeof v !== "object") throw new Error(`GGUF writer: key '${key}' is ARRAY but holds ${typeof v}`);
      this.u32(v.itemType);
      this.u64(v.items.length);
      for (const item of v.items) this.value(v.itemType, item, key);
    } else {
      if (typeof v === "object" || typeof v === "string")
        throw new Error(`GGUF writer: key '${key}' is ${TYPE_NAMES[type]} but holds ${typeof v}`);
      this.num(type, v);
    }
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

/**
 * Write a GGUF v3 file atomically: `metadata` in its order, then the tensor infos and data in the order
 * given, each tensor's data aligned to `general.alignment` (default 32).
 */
export function writeGGUF(
  path: string,
  metadata: ReadonlyMap<string, GGUFEntry>,
  tensors: readonly GGUFTensorOut[],
  onTensor?: (name: string, index: number, count: number) => void,
): void {
  const alignEntry = metadata.get("general.alignment");
  const align = alignEntry ? Number(alignEntry.value) : GGUF_DEFAULT_ALIGNMENT;
  const pad = (n: number) => Math.ceil(n / align) * align;
  const h = new Bytes();
  h.u32(GGUF_MAGIC);
  h.u32(3);
  h.u64(tensors.length);
  h.u64(metadata.size);
  for (const [key, e] of metadata) {
    h.string(key);
    h.u32(e.type);
    h.value(e.type, e.value, key);
  }
  let offset = 0;
  const sizes: number[] = [];
  for (const t of tensors) {
    h.string(t.name);
    h.u32(t.dims.length);
    for (const d of t.dims) h.u64(d);
    h.u32(t.type);
    h.u64(offset);
    const bytes = ggmlTensorBytes(t.type, t.dims);
    sizes.push(bytes);
    offset = pad(offset + bytes);
  }
  const files = new AtomicFiles();
  const tmp = files.temp(path);
  const w = new WriteFile(tmp);
  try {
    const head = h.concat();
    w.write(head);
    w.write(new Uint8Array(pad(head.length) - head.length));
    tensors.forEach((t, i) => {
      const data = t.data();
      if (data.length !== sizes[i])
        throw new Error(
          `GGUF writer: tensor '${t.name}' gave ${data.length} bytes, its dims need ${sizes[i]}`,
        );
      w.write(data);
      if (i < tensors.length - 1) w.write(new Uint8Array(pad(data.length) - data.length));
      onTensor?.(t.name, i, tensors.length);
    });
    w.close();
    files.commit();
  } catch (e) {
    w.abandon();
    files.abort();
    throw e;
  }
}

/** Shorthands for metadata entries. */
export const gguf = {
  u32: (v: number): GGUFEntry => ({ type: GGUFType.UINT32, value: v }),
  i32: (v: number): GGUFEntry => ({ type: GGUFType.INT32, value: v }),
  f32: (v: number): GGUFEntry => ({ type: GGUFType.FLOAT32, value: v }),
  bool: (v: boolean): GGUFEntry => ({ type: GGUFType.BOOL, value: v }),
  str: (v: string): GGUFEntry => ({ type: GGUFType.STRING, value: v }),
  arr: (itemType: GGUFTypeId, items: GGUFValue[]): GGUFEntry => ({
    type: GGUFType.ARRAY,
    value: { itemType, items },
  }),
};

/** The name of a metadata type (for error messages). */
export function ggufTypeName(type: number): string {
  return TYPE_NAMES[type] ?? `type ${type}`;
}
