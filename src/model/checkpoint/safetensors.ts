// safetensors files (https://github.com/huggingface/safetensors), read tensor by tensor and written in
// the exact layout Hugging Face's own writer produces.
//
// File layout (all integers little-endian):
//   bytes 0..8        N, u64: the header length
//   bytes 8..8+N      the header: UTF-8 JSON, one object
//                       { "__metadata__": { "format": "pt" },      (optional; string → string)
//                         "<tensor name>": { "dtype": "F32", "shape": [r, c], "data_offsets": [b, e] },
//                         ... }
//                     padded with spaces (0x20) so that 8+N is a multiple of 8
//   bytes 8+N..       the data: tensor bytes, row-major, little-endian; `data_offsets` are [begin, end)
//                     relative to the start of the data (byte 8+N), not of the file
//
// Rules enforced on read (as the reference Rust reader does; every error names the file and tensor):
//   - N fits in the file; the header is a JSON object; `__metadata__` maps strings to strings.
//   - dtype is one of BOOL U8 I8 F8_E5M2 F8_E4M3 I16 U16 F16 BF16 I32 U32 F32 F64 I64 U64; herd turns
//     F32, BF16 and F16 into tensors, the others are described by the header but not read.
//   - end - begin = (product of shape) × (dtype size); begin ≤ end.
//   - Sorted by begin, the tensors tile the data exactly: the first starts at 0, each starts where the
//     previous ends (no overlap, no hole), the last ends at the end of the file (no truncation, no
//     trailing bytes).
//
// Written files are byte-identical to what the reference writer (safetensors 0.8, `save_file`, as
// transformers' `save_pretrained` calls it) writes: compact JSON, `__metadata__` {"format":"pt"} first,
// then the tensors ordered by dtype size (largest first, so every tensor stays aligned to its element
// size) and by name, header padded with spaces to a multiple of 8. (Older versions of the library put
// `__metadata__` last, as the reference test files have it; readers accept either.)
import { type DType, dtypeBytes } from "../../tensor/dtype.js";
import { halfZeros, shapeStr, type Tensor, zeros } from "../../tensor/tensor.js";
import { AtomicFiles, ReadFile, WriteFile } from "./io.js";

/** Bytes per element of every safetensors dtype. */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

/** The safetensors dtypes herd reads into tensors, and the reverse names. */
const TENSOR_DTYPE: Readonly<Record<string, DType>> = { F32: "f32", BF16: "bf16", F16: "f16" };
const FILE_DTYPE: Readonly<Record<DType, string>> = { f32: "F32", bf16: "BF16", f16: "F16" };

/** Largest header accepted (the reference reader's limit). */
const MAX_HEADER = 100_000_000;

export interface SafetensorsEntry {
  name: string;
  /** The file's dtype name (F32, BF16, ...). */
  dtype: string;
  shape: number[];
  /** Byte range in the file (absolute, already offset by 8 + N). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  path: string;
  /** Absolute byte position of the data section (8 + N). */
  dataStart: number;
  metadata: Record<string, string> | null;
  /** In header order. */
  entries: Map<string, SafetensorsEntry>;
}

export type ReadDtype = "f32" | "keep";

function elements(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Parse and validate a header given its JSON bytes and the file size. */
export function parseSafetensorsHeader(path: string, json: Uint8Array, fileSize: number): SafetensorsHeader {
  const dataStart = 8 + json.length;
  const dataLen = fileSize - dataStart;
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(json));
  } catch (e) {
    throw new Error(`${path}: safetensors header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new Error(`${path}: safetensors header is not a JSON object`);
  let metadata: Record<string, string> | null = null;
  const entries = new Map<string, SafetensorsEntry>();
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    const where = `${path}: tensor '${name}'`;
    if (name === "__metadata__") {
      if (typeof v !== "object" || v === null || Array.isArray(v))
        throw new Error(`${path}: __metadata__ is not an object`);
      for (const [k, s] of Object.entries(v))
        if (typeof s !== "string") throw new Error(`${path}: __metadata__['${k}'] is not a string`);
      metadata = v as Record<string, string>;
      continue;
    }
    const info = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof info !== "object" || info === null) throw new Error(`${where}: header entry is not an object`);
    const { dtype, shape, data_offsets: offs } = info;
    if (typeof dtype !== "string" || !(dtype in SAFETENSORS_DTYPE_BYTES))
      throw new Error(`${where}: unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new Error(`${where}: bad shape ${JSON.stringify(shape)}`);
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0))
      throw new Error(`${where}: bad data_offsets ${JSON.stringify(offs)}`);
    const [b, e] = offs as [number, number];
    if (b > e) throw new Error(`${where}: data_offsets [${b},${e}] out of order (begin after end)`);
    const bytes = elements(shape) * SAFETENSORS_DTYPE_BYTES[dtype]!;
    if (e - b !== bytes)
      throw new Error(
        `${where}: shape ${shapeStr(shape)} of ${dtype} needs ${bytes} bytes but data_offsets [${b},${e}] hold ${e - b}`,
      );
    if (e > dataLen)
      throw new Error(
        `${where}: data_offsets [${b},${e}] go past the end of the data (${dataLen} bytes; truncated file?)`,
      );
    entries.set(name, { name, dtype, shape, begin: dataStart + b, end: dataStart + e });
  }
  // The tensors must tile the data section exactly.
  const sorted = [...entries.values()].sort((x, y) => x.begin - y.begin || x.end - y.end);
  let at = dataStart;
  let prev = "";
  for (const t of sorted) {
    if (t.begin < at)
      throw new Error(`${path}: tensor '${t.name}': data_offsets overlap those of tensor '${prev}'`);
    if (t.begin > at)
      throw new Error(
        `${path}: tensor '${t.name}': ${t.begin - at} unused bytes before its data (offsets not contiguous)`,
      );
    at = t.end;
    prev = t.name;
  }
  if (at !== fileSize)
    throw new Error(
      `${path}: ${fileSize - at} bytes after the last tensor${prev ? ` ('${prev}')` : ""} (trailing data)`,
    );
  return { path, dataStart, metadata, entries };
}

function readHeader(f: ReadFile): SafetensorsHeader {
  if (f.size < 8) throw new Error(`${f.path}: ${f.size} bytes, too short for a safetensors file`);
  const lenBytes = f.readBytes(0, 8, "header length");
  const n = new DataView(lenBytes.buffer).getBigUint64(0, true);
  if (n > BigInt(f.size - 8))
    throw new Error(`${f.path}: header length ${n} is larger than the file (${f.size} bytes)`);
  if (n > BigInt(MAX_HEADER)) throw new Error(`${f.path}: header length ${n} is over the 100 MB limit`);
  return parseSafetensorsHeader(f.path, f.readBytes(8, Number(n), "header"), f.size);
}

/** An open safetensors file: the validated header, and tensors read one at a time on demand. */
export class SafetensorsFile {
  readonly header: SafetensorsHeader;
  private readonly file: ReadFile;

  private constructor(file: ReadFile) {
    this.file = file;
    try {
      this.header = readHeader(file);
    } catch (e) {
      file.close();
      throw e;
    }
  }

  static open(path: string): SafetensorsFile {
    return new SafetensorsFile(new ReadFile(path));
  }

  get path(): string {
    return this.file.path;
  }

  names(): string[] {
    return [...this.header.entries.keys()];
  }

  has(name: string): boolean {
    return this.header.entries.has(name);
  }

  /**
   * Read one tensor into its own buffer. `dtype: "f32"` (default) gives an f32 tensor on the active
   * backend; "keep" leaves BF16/F16 data as a host half tensor (bit patterns, no conversion).
   */
  read(name: string, opts: { dtype?: ReadDtype } = {}): Tensor {
    const e = this.header.entries.get(name);
    if (!e) throw new Error(`${this.path}: no tensor '${name}'`);
    const stored = TENSOR_DTYPE[e.dtype];
    if (!stored)
      throw new Error(
        `${this.path}: tensor '${name}': dtype ${e.dtype} is not supported (F32, BF16, F16 are)`,
      );
    const n = elements(e.shape);
    const what = `tensor '${name}'`;
    let t: Tensor;
    if (stored !== "f32" && opts.dtype === "keep") {
      t = halfZeros(e.shape, stored);
      try {
        this.file.readElements(e.begin, stored, n, t.halfBits, 0, what);
      } catch (err) {
        t.dispose();
        throw err;
      }
    } else {
      t = zeros(e.shape);
      try {
        this.file.readElements(e.begin, stored, n, t.data, 0, what);
      } catch (err) {
        t.dispose();
        throw err;
      }
    }
    t.name = name;
    return t;
  }

  /** The stored bytes of one tensor, whatever its dtype (quantised blocks are U8; checkpoint/quant.ts). */
  readRaw(name: string): Uint8Array {
    const e = this.header.entries.get(name);
    if (!e) throw new Error(`${this.path}: no tensor '${name}'`);
    return this.file.readBytes(e.begin, e.end - e.begin, `tensor '${name}'`);
  }

  /** Read tensor `name`'s raw bytes into `out`, which must be exactly their size. */
  readRawInto(name: string, out: Uint8Array): void {
    const e = this.header.entries.get(name);
    if (!e) throw new Error(`${this.path}: no tensor '${name}'`);
    if (out.length !== e.end - e.begin)
      throw new Error(`${this.path}: tensor '${name}' holds ${e.end - e.begin} bytes, not ${out.length}`);
    this.file.readExact(out, e.begin, `tensor '${name}'`);
  }

  close(): void {
    this.file.close();
  }
}

/** Open a safetensors file for lazy, per-tensor reads (close it when done). */
export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  return SafetensorsFile.open(path);
}

/** Just the validated header (names, dtypes, shapes, offsets, metadata). */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const f = SafetensorsFile.open(path);
  f.close();
  return f.header;
}

/** Read every tensor (or only `names`), in header order. On an error, tensors already read are freed. */
export async function readSafetensors(
  path: string,
  opts: { dtype?: ReadDtype; names?: readonly string[] } = {},
): Promise<Map<string, Tensor>> {
  const f = SafetensorsFile.open(path);
  const out = new Map<string, Tensor>();
  try {
    for (const name of opts.names ?? f.names()) out.set(name, f.read(name, opts));
    return out;
  } catch (e) {
    for (const t of out.values()) t.dispose();
    throw e;
  } finally {
    f.close();
  }
}

export interface WriteSafetensorsOptions {
  /** Store every tensor in this dtype (default: each tensor's own). */
  dtype?: DType;
  /** `__metadata__`; default {"format":"pt"} as PyTorch writers set it; null for none. */
  metadata?: Record<string, string> | null;
}

// Order of the reference writer: larger dtypes first, then names by their UTF-8 bytes.
const DTYPE_RANK: Readonly<Record<DType, number>> = { f32: 0, bf16: 1, f16: 2 };
const utf8 = new TextEncoder();

/** The header bytes (length prefix included) and the order tensors are stored in. */
export function encodeSafetensorsHeader(
  tensors: ReadonlyMap<string, Tensor>,
  opts: WriteSafetensorsOptions = {},
): { bytes: Uint8Array; order: [string, Tensor, DType][]; dataBytes: number } {
  const order: [string, Tensor, DType][] = [...tensors].map(([n, t]) => [n, t, opts.dtype ?? t.dtype]);
  order.sort(
    (a, b) => DTYPE_RANK[a[2]] - DTYPE_RANK[b[2]] || Buffer.compare(utf8.encode(a[0]), utf8.encode(b[0])),
  );
  const parts: string[] = [];
  const metadata = opts.metadata === undefined ? { format: "pt" } : opts.metadata;
  if (metadata) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  let offset = 0;
  for (const [name, t, dt] of order) {
    if (name === "__metadata__") throw new Error("writeSafetensors: '__metadata__' is not a tensor name");
    const end = offset + t.size * dtypeBytes[dt];
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${FILE_DTYPE[dt]}","shape":${JSON.stringify(t.shape)},"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  return { bytes: safetensorsHeader(parts), order, dataBytes: offset };
}

/**
 * A safetensors header from its JSON entries (`"name":{...}` strings): the u64 little-endian length, then
 * the JSON object padded with spaces to a multiple of 8 bytes so the data that follows stays aligned.
 */
export function safetensorsHeader(entries: readonly string[]): Uint8Array {
  let json = utf8.encode(`{${entries.join(",")}}`);
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const bytes = new Uint8Array(8 + json.length);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
  bytes.set(json, 8);
  return bytes;
}

/** Write one safetensors file at `path` (not atomic: callers write to a temporary path). */
export function writeSafetensorsFile(
  path: string,
  tensors: ReadonlyMap<string, Tensor>,
  opts: WriteSafetensorsOptions = {},
): void {
  const { bytes, order } = encodeSafetensorsHeader(tensors, opts);
  const w = new WriteFile(path);
  try {
    w.write(bytes);
    for (const [, t, dt] of order) w.writeElements(t.dtype === "f32" ? t.data : t.halfBits, t.dtype, dt);
  } catch (e) {
    w.abandon();
    throw e;
  }
  w.close();
}

/** Write a safetensors file atomically (temporary file, then rename). */
export async function writeSafetensors(
  path: string,
  tensors: ReadonlyMap<string, Tensor>,
  opts: WriteSafetensorsOptions = {},
): Promise<void> {
  const files = new AtomicFiles();
  try {
    writeSafetensorsFile(files.temp(path), tensors, opts);
    files.commit();
  } catch (e) {
    files.abort();
    throw e;
  }
}
