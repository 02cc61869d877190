// Test helper: write small torch.save-style files (zip of stored entries + a protocol-2 pickle), the way
// PyTorch lays them out, so tests can build sharded, strided, ZIP64 and deliberately corrupt .pth files.
// Python's zipfile and pickletools read what this writes (checked by hand when it was written).
import { writeFileSync } from "node:fs";
import { crc32, deflateRawSync } from "node:zlib";

export interface PthTensor {
  dtype: "f32" | "bf16" | "f16";
  /** Raw little-endian bytes of the whole storage. */
  storage: Uint8Array;
  /** Storage key (defaults to the tensor's index); tensors with the same key share one record. */
  key?: string;
  shape: number[];
  /** Element strides (default: row-major contiguous). */
  stride?: number[];
  /** Storage offset in elements (default 0). */
  offset?: number;
}

export interface PthOptions {
  archive?: string;
  /** Entry names whose data is deflate-compressed (method 8). */
  compress?: string[];
  /** Write ZIP64 end records and per-entry ZIP64 extra fields. */
  zip64?: boolean;
  /** Pad each local header's extra field so data starts at a multiple of this (torch ≥ 2 uses 64). */
  align?: number;
  /** Add a `byteorder` record with this content (PyTorch ≥ 2.1 writes "little"). */
  byteorder?: string;
  /** Extra raw opcodes inserted after PROTO (to test the interpreter's refusals). */
  injectPickle?: Uint8Array;
}

const STORAGE = { f32: "FloatStorage", bf16: "BFloat16Storage", f16: "HalfStorage" };
const ESIZE = { f32: 4, bf16: 2, f16: 2 };

class Bytes {
  parts: number[] = [];
  u8(...x: number[]) {
    this.parts.push(...x);
    return this;
  }
  u16(x: number) {
    return this.u8(x & 0xff, (x >>> 8) & 0xff);
  }
  u32(x: number) {
    return this.u16(x & 0xffff).u16(Math.floor(x / 65536) & 0xffff);
  }
  u64(x: number) {
    return this.u32(x % 2 ** 32).u32(Math.floor(x / 2 ** 32));
  }
  str(s: string) {
    return this.u8(...new TextEncoder().encode(s));
  }
  bytes(b: Uint8Array) {
    for (const x of b) this.parts.push(x);
    return this;
  }
  get length() {
    return this.parts.length;
  }
  done() {
    return Uint8Array.from(this.parts);
  }
}

function unicode(p: Bytes, s: string) {
  const b = new TextEncoder().encode(s);
  p.u8(0x58).u32(b.length).bytes(b);
}

function int(p: Bytes, x: number) {
  if (x < 256) p.u8(0x4b, x);
  else if (x < 65536) p.u8(0x4d).u16(x);
  else p.u8(0x4a).u32(x);
}

/** The pickle torch.save writes for {name: tensor}. */
export function statePickle(tensors: [string, PthTensor][], inject?: Uint8Array): Uint8Array {
  const p = new Bytes().u8(0x80, 2);
  if (inject) p.bytes(inject);
  p.u8(0x7d, 0x28); // EMPTY_DICT MARK
  tensors.forEach(([name, t], i) => {
    unicode(p, name);
    p.u8(0x63).str("torch._utils\n_rebuild_tensor_v2\n");
    p.u8(0x28, 0x28); // MARK (args) MARK (persistent id)
    unicode(p, "storage");
    p.u8(0x63).str(`torch\n${STORAGE[t.dtype]}\n`);
    unicode(p, t.key ?? String(i));
    unicode(p, "cpu");
    int(p, t.storage.length / ESIZE[t.dtype]);
    p.u8(0x74, 0x51); // TUPLE BINPERSID
    int(p, t.offset ?? 0);
    p.u8(0x28);
    for (const d of t.shape) int(p, d);
    p.u8(0x74, 0x28);
    const stride = t.stride ?? t.shape.map((_, k) => t.shape.slice(k + 1).reduce((a, b) => a * b, 1));
    for (const s of stride) int(p, s);
    p.u8(0x74, 0x89); // TUPLE NEWFALSE
    p.u8(0x63).str("collections\nOrderedDict\n");
    p.u8(0x29, 0x52, 0x74, 0x52); // EMPTY_TUPLE REDUCE TUPLE REDUCE
  });
  return p.u8(0x75, 0x2e).done(); // SETITEMS STOP
}

/** A zip of the given entries, stored (or deflated for names in `compress`), as torch writes it. */
export function zipEntries(entries: [string, Uint8Array][], opts: PthOptions = {}): Uint8Array {
  const out = new Bytes();
  const central = new Bytes();
  for (const [name, raw] of entries) {
    const deflate = opts.compress?.includes(name) ?? false;
    const data = deflate ? new Uint8Array(deflateRawSync(raw)) : raw;
    const offset = out.length;
    const crc = crc32(raw);
    const nameBytes = new TextEncoder().encode(name);
    // Torch's alignment padding: an extra field (id 0x4246 "FB"), in the local header only.
    const a = opts.align ?? 0;
    const pad = a ? (a - ((offset + 30 + nameBytes.length + 4) % a)) % a : 0;
    out
      .u32(0x04034b50)
      .u16(20)
      .u16(0)
      .u16(deflate ? 8 : 0)
      .u16(0)
      .u16(0)
      .u32(crc);
    out
      .u32(data.length)
      .u32(raw.length)
      .u16(nameBytes.length)
      .u16(a ? pad + 4 : 0)
      .bytes(nameBytes);
    if (a) out.u16(0x4246).u16(pad).bytes(new Uint8Array(pad));
    out.bytes(data);
    const z = opts.zip64 ?? false;
    central
      .u32(0x02014b50)
      .u16(45)
      .u16(z ? 45 : 20)
      .u16(0)
      .u16(deflate ? 8 : 0)
      .u16(0)
      .u16(0)
      .u32(crc);
    central.u32(z ? 0xffffffff : data.length).u32(z ? 0xffffffff : raw.length);
    central
      .u16(nameBytes.length)
      .u16(z ? 28 : 0)
      .u16(0)
      .u16(0)
      .u16(0)
      .u32(0)
      .u32(z ? 0xffffffff : offset);
    central.bytes(nameBytes);
    if (z) central.u16(1).u16(24).u64(raw.length).u64(data.length).u64(offset);
  }
  const cdOffset = out.length;
  const cd = central.done();
  out.bytes(cd);
  const n = entries.length;
  if (opts.zip64) {
    const rec = out.length;
    out.u32(0x06064b50).u64(44).u16(45).u16(45).u32(0).u32(0).u64(n).u64(n).u64(cd.length).u64(cdOffset);
    out.u32(0x07064b50).u32(0).u64(rec).u32(1);
    out.u32(0x06054b50).u16(0).u16(0).u16(0xffff).u16(0xffff).u32(0xffffffff).u32(0xffffffff).u16(0);
  } else out.u32(0x06054b50).u16(0).u16(0).u16(n).u16(n).u32(cd.length).u32(cdOffset).u16(0);
  return out.done();
}

/** Write a torch.save-style state dict file. */
export function writePth(path: string, tensors: [string, PthTensor][], opts: PthOptions = {}): void {
  const a = opts.archive ?? "archive";
  const entries: [string, Uint8Array][] = [[`${a}/data.pkl`, statePickle(tensors, opts.injectPickle)]];
  const seen = new Set<string>();
  tensors.forEach(([, t], i) => {
    const key = t.key ?? String(i);
    if (seen.has(key)) return;
    seen.add(key);
    entries.push([`${a}/data/${key}`, t.storage]);
  });
  entries.push([`${a}/version`, new TextEncoder().encode("3\n")]);
  if (opts.byteorder) entries.push([`${a}/byteorder`, new TextEncoder().encode(opts.byteorder)]);
  writeFileSync(path, zipEntries(entries, opts));
}

/** Bytes of a typed array (copy). */
export function rawBytes(a: Float32Array | Uint16Array): Uint8Array {
  return new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}
