// PyTorch `torch.save` files (.pth/.pt, the zip format of PyTorch ≥ 1.6) holding a state dict.
//
// A file is a zip archive (zip.ts) whose entries all sit under one folder `<archive>/`:
//   <archive>/data.pkl      the pickled object: {name: tensor}, tensors as _rebuild_tensor_v2 calls whose
//                           storages are persistent ids (pickle.ts)
//   <archive>/data/<key>    one record per storage: numel elements of its dtype, raw little-endian
//   <archive>/byteorder     optional, "little" (PyTorch ≥ 2.1); "big" is refused
//   <archive>/version, <archive>/.data/...   ignored
// A tensor is a view of a storage: element (i0, i1, ...) sits at storage element
// offset + Σ i_k·stride_k. Contiguous row-major views (the normal case) are read with one positional
// read; other strides are gathered from the span of the storage they cover. Before anything is read, a
// view must lie inside its storage and hold no more elements than it (so no allocation made for a
// tensor exceeds the bytes the file really holds for it).
// The older non-zip torch format (PyTorch < 1.6, a bare pickle stream) is not supported.
import type { DType } from "../../tensor/dtype.js";
import { dtypeBytes } from "../../tensor/dtype.js";
import { fromHalfBits, halfZeros, shapeStr, type Tensor, zeros } from "../../tensor/tensor.js";
import type { ReadFile } from "./io.js";
import { type PickleValue, type TorchTensorRef, unpickle } from "./pickle.js";
import type { ReadDtype } from "./safetensors.js";
import { readZipDirectory, type ZipEntry } from "./zip.js";

export interface TorchTensorEntry {
  name: string;
  dtype: DType;
  shape: number[];
  ref: TorchTensorRef;
  record: ZipEntry;
}

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** The tensors of a torch state-dict file (nothing but the pickle and the zip directory is read). */
export function readTorchIndex(f: ReadFile): Map<string, TorchTensorEntry> {
  const path = f.path;
  const zip = readZipDirectory(f);
  const pkls = [...zip.keys()].filter((n) => n === "data.pkl" || /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1)
    throw new Error(`${path}: not a torch.save zip archive (found ${pkls.length} data.pkl entries)`);
  const prefix = pkls[0]!.slice(0, -"data.pkl".length);
  const bo = zip.get(`${prefix}byteorder`);
  if (bo) {
    const order = new TextDecoder().decode(f.readBytes(bo.dataStart, bo.size, "byteorder")).trim();
    if (order !== "little") throw new Error(`${path}: byteorder '${order}' is not supported`);
  }
  const pkl = zip.get(pkls[0]!)!;
  const root = unpickle(f.readBytes(pkl.dataStart, pkl.size, "data.pkl"), path);
  if (!(root instanceof Map)) throw new Error(`${path}: the pickled object is not a dict (state dict)`);
  const out = new Map<string, TorchTensorEntry>();
  for (const [k, v] of root as Map<PickleValue, PickleValue>) {
    if (typeof k !== "string") throw new Error(`${path}: state dict key ${String(k)} is not a string`);
    const ref = v as TorchTensorRef;
    if (typeof ref !== "object" || ref === null || !("kind" in ref) || ref.kind !== "tensor")
      throw new Error(`${path}: state dict entry '${k}' is not a tensor`);
    const where = `${path}: tensor '${k}'`;
    const record = zip.get(`${prefix}data/${ref.storage.key}`);
    if (!record) throw new Error(`${where}: storage record data/${ref.storage.key} is missing`);
    const esize = dtypeBytes[ref.storage.dtype];
    if (record.size !== ref.storage.numel * esize)
      throw new Error(
        `${where}: storage data/${ref.storage.key} holds ${record.size} bytes, expected ${ref.storage.numel} × ${esize}`,
      );
    if (ref.shape.some((d) => d < 0) || ref.stride.some((s) => s < 0) || ref.offset < 0)
      throw new Error(`${where}: negative size, stride or offset`);
    const n = sizeOf(ref.shape);
    const room = Math.max(0, ref.storage.numel - ref.offset);
    const tooMany = () =>
      new Error(
        `${where}: view ${shapeStr(ref.shape)} has ${n} elements, more than the ${room} its storage holds from offset ${ref.offset}`,
      );
    if (!Number.isSafeInteger(n)) throw tooMany();
    if (n > 0) {
      let last = ref.offset;
      for (let i = 0; i < ref.shape.length; i++) last += (ref.shape[i]! - 1) * ref.stride[i]!;
      if (last >= ref.storage.numel)
        throw new Error(
          `${where}: view ${shapeStr(ref.shape)} at offset ${ref.offset} reaches element ${last} of a ${ref.storage.numel}-element storage`,
        );
    }
    // A view with more elements than its storage holds repeats elements (a zero or overlapping stride):
    // not what a state dict stores, and what lets a tiny file describe gigabytes to allocate.
    if (n > room) throw tooMany();
    out.set(k, { name: k, dtype: ref.storage.dtype, shape: ref.shape, ref, record });
  }
  return out;
}

function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expect = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i]! !== 1 && stride[i]! !== expect) return false;
    expect *= shape[i]!;
  }
  return true;
}

/**
 * Read one tensor's elements into `out` at element `outAt` (Float32Array for f32 results, Uint16Array
 * of the same dtype to keep half data).
 */
export function readTorchElements(
  f: ReadFile,
  e: TorchTensorEntry,
  out: Float32Array | Uint16Array,
  outAt = 0,
): void {
  const { ref, record, dtype } = e;
  const n = sizeOf(e.shape);
  const esize = dtypeBytes[dtype];
  const what = `tensor '${e.name}'`;
  if (n === 0) return;
  if (isContiguous(ref.shape, ref.stride)) {
    f.readElements(record.dataStart + ref.offset * esize, dtype, n, out, outAt, what);
    return;
  }
  // Strided view: read the span it covers (in its stored dtype), then gather in row-major order.
  let span = 1;
  for (let i = 0; i < ref.shape.length; i++) span += (ref.shape[i]! - 1) * ref.stride[i]!;
  const src = dtype === "f32" ? new Float32Array(span) : new Uint16Array(span);
  f.readElements(record.dataStart + ref.offset * esize, dtype, span, src, 0, what);
  const gathered = dtype === "f32" ? new Float32Array(n) : new Uint16Array(n);
  const idx = new Array<number>(ref.shape.length).fill(0);
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let i = 0; i < idx.length; i++) s += idx[i]! * ref.stride[i]!;
    gathered[j] = src[s]!;
    for (let i = idx.length - 1; i >= 0; i--) {
      if (++idx[i]! < ref.shape[i]!) break;
      idx[i] = 0;
    }
  }
  if (gathered instanceof Float32Array || out instanceof Uint16Array) out.set(gathered, outAt);
  else {
    const t = fromHalfBits(gathered, [n], dtype as "bf16" | "f16");
    out.set(t.toArray(), outAt);
    t.dispose();
  }
}

/** Read one tensor as a Tensor: f32 on the active backend, or (keep) half data as host bits. */
export function readTorchTensor(f: ReadFile, e: TorchTensorEntry, dtype: ReadDtype = "f32"): Tensor {
  let t: Tensor;
  if (e.dtype !== "f32" && dtype === "keep") {
    t = halfZeros(e.shape, e.dtype);
    try {
      readTorchElements(f, e, t.halfBits);
    } catch (err) {
      t.dispose();
      throw err;
    }
  } else {
    t = zeros(e.shape);
    try {
      readTorchElements(f, e, t.data);
    } catch (err) {
      t.dispose();
      throw err;
    }
  }
  t.name = e.name;
  return t;
}
