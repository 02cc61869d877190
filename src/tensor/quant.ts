// Weight-only quantised matrices (GGUF Q8_0 and Q4_0 blocks, and the K-quants Q4_K, Q5_K, Q6_K as GGUF
// files store them; layouts in src/backends/js/quant.ts and kquant.ts): the QuantTensor that holds one, `quantize` by ggml's reference rules (quantize_row_q8_0_ref /
// quantize_row_q4_0_ref, so a file made here holds the bytes llama.cpp would make from the same
// values), `dequantize`, and `linearQuant`, the `linear` of a quantised weight. The weight is frozen (it
// has no gradient), but a grad-requiring input gets dx = dy·W (a LoRA adapter on a quantised base),
// dequantised a block of rows at a time (matmulQuantGrad or its fallback). herd quantises to Q8_0 and
// Q4_0 only (QUANT_FORMATS); K-quant matrices come from GGUF files (model/checkpoint/ggufLlama.ts).
//
// Rules, per block of 32 values x (f32 arithmetic throughout, as ggml's C):
//   Q8_0: amax = max|x|, d = amax/127, id = d ? 1/d : 0, q = round(x·id) (halves away from 0); store f16(d).
//   Q4_0: max = the x of largest |x| (first one on ties), d = max/−8, id = d ? 1/d : 0,
//         q = min(15, trunc(x·id + 8.5)); store f16(d). (Note q is computed with the f32 d, dequantised
//         with the f16 one, as ggml does.)

import { kernelOf } from "../backends/fallbacks.js";
import { type Backend, getBackend } from "../backends/index.js";
import {
  dequantizeK,
  K_BLOCK_BYTES,
  type KQuant,
  matmulKQ8,
  QK_K,
  quantizeQ8K,
  scaleMinK4,
} from "../backends/js/kquant.js";
import {
  dequantizeRow,
  isKQuant,
  QUANT_BLOCK,
  QUANT_BLOCK_BYTES,
  type QuantFormat,
  quantBlockValues,
  quantRowBytes,
} from "../backends/js/quant.js";
import { decodeHalf, f32ToF16Bits } from "./dtype.js";
import { needsGrad, record } from "./tape.js";
import { shapeStr, type Tensor, zeros } from "./tensor.js";

export {
  dequantizeK,
  dequantizeRow,
  isKQuant,
  K_BLOCK_BYTES,
  type KQuant,
  matmulKQ8,
  QK_K,
  QUANT_BLOCK,
  QUANT_BLOCK_BYTES,
  type QuantFormat,
  quantBlockValues,
  quantizeQ8K,
  quantRowBytes,
  scaleMinK4,
};

/** The formats herd quantises to (`quantize`, `herd quantize`); the K-quants are read from GGUF files. */
export const QUANT_FORMATS: readonly QuantFormat[] = ["q8_0", "q4_0"];

/** The K-quant formats a QuantTensor holds as GGUF stores them. */
export const K_QUANT_FORMATS: readonly KQuant[] = ["q4_k", "q5_k", "q6_k"];

export function isQuantFormat(s: string): s is QuantFormat {
  return (QUANT_FORMATS as readonly string[]).includes(s);
}

/**
 * A 2-D weight [n, k] held as quantised blocks, row after row (n · quantRowBytes(format, k) bytes).
 * Not a Tensor: nothing but `linearQuant`, `dequantize` and embedding lookups read it.
 */
export class QuantTensor {
  readonly shape: readonly [number, number];
  /** Optional name, used in error messages (the checkpoint name). */
  name = "";
  private bytes: Uint8Array | null;
  /** The backend buffer the blocks live in, when `allocate` made them (freed on dispose). */
  private owner: { backend: Backend; buffer: Float32Array } | null = null;

  /**
   * Zeroed blocks for `format` [n, k] in the active backend's memory (as `halfZeros` does for bf16), so
   * a large matrix gets what the backend gives large buffers (the native one: hugepages, which a decode
   * step streaming every weight needs); a loader then reads the file's bytes straight into `blocks`.
   */
  static allocate(format: QuantFormat, shape: readonly [number, number]): QuantTensor {
    const bytes = shape[0] * quantRowBytes(format, shape[1]);
    const backend = getBackend();
    const buffer = backend.alloc(Math.ceil(bytes / 4));
    const q = new QuantTensor(format, shape, new Uint8Array(buffer.buffer, buffer.byteOffset, bytes));
    q.owner = { backend, buffer };
    return q;
  }

  constructor(
    readonly format: QuantFormat,
    shape: readonly number[],
    blocks: Uint8Array,
  ) {
    if (shape.length !== 2 || !shape.every((d) => Number.isInteger(d) && d >= 0))
      throw new Error(`QuantTensor: shape ${shapeStr(shape)} is not [rows, columns]`);
    const [n, k] = shape as [number, number];
    if (isKQuant(format) && k % QK_K !== 0)
      throw new Error(`QuantTensor: ${format} ${shapeStr(shape)}: a row must be whole blocks of ${QK_K}`);
    const need = n * quantRowBytes(format, k);
    if (blocks.length !== need)
      throw new Error(`QuantTensor: ${blocks.length} bytes for ${format} ${shapeStr(shape)} (needs ${need})`);
    this.shape = [n, k];
    this.bytes = blocks;
  }

  get dtype(): QuantFormat {
    return this.format;
  }

  get rank(): number {
    return 2;
  }

  /** The block bytes (throws once disposed). */
  get blocks(): Uint8Array {
    if (!this.bytes) throw new Error(`QuantTensor${this.label()}: used after dispose`);
    return this.bytes;
  }

  dispose(): void {
    this.bytes = null;
    this.owner?.backend.free(this.owner.buffer);
    this.owner = null;
  }

  label(): string {
    return this.name ? ` '${this.name}'` : "";
  }

  toString(): string {
    return `QuantTensor${this.label()}(${shapeStr(this.shape)}, ${this.format})`;
  }
}

const fr = Math.fround;

/** Quantise one row of k values (any k; the last block zero-padded) into out at offset o. */
export function quantizeRow(x: ArrayLike<number>, format: QuantFormat, out: Uint8Array, o: number): void {
  if (isKQuant(format))
    throw new Error(`quantize: herd quantises to ${QUANT_FORMATS.join(", ")}, not ${format}`);
  const k = x.length;
  const bb = QUANT_BLOCK_BYTES[format];
  const v = new Float32Array(QUANT_BLOCK);
  for (let p0 = 0; p0 < k; p0 += QUANT_BLOCK, o += bb) {
    v.fill(0);
    for (let t = 0; t < QUANT_BLOCK && p0 + t < k; t++) v[t] = x[p0 + t]!;
    let amax = 0;
    let max = 0;
    for (let t = 0; t < QUANT_BLOCK; t++) {
      const a = Math.abs(v[t]!);
      if (amax < a) {
        amax = a;
        max = v[t]!;
      }
    }
    const d = format === "q8_0" ? fr(amax / 127) : fr(max / -8);
    const id = d ? fr(1 / d) : 0;
    const dBits = f32ToF16Bits(d);
    out[o] = dBits & 0xff;
    out[o + 1] = dBits >> 8;
    if (format === "q8_0") {
      for (let t = 0; t < QUANT_BLOCK; t++) {
        const s = fr(v[t]! * id);
        out[o + 2 + t] = (Math.sign(s) * Math.round(Math.abs(s))) & 0xff; // roundf: halves away from 0
      }
    } else {
      for (let t = 0; t < 16; t++) {
        const q0 = Math.min(15, Math.trunc(fr(fr(v[t]! * id) + 8.5)));
        const q1 = Math.min(15, Math.trunc(fr(fr(v[t + 16]! * id) + 8.5)));
        out[o + 2 + t] = q0 | (q1 << 4);
      }
    }
  }
}

/** Quantise a 2-D weight [n, k] (f32, bf16 or f16) into `format` blocks. */
export function quantize(w: Tensor, format: QuantFormat): QuantTensor {
  if (w.rank !== 2) throw new Error(`quantize: weight${w.label()} ${shapeStr(w.shape)} is not 2-D`);
  const [n, k] = w.shape as [number, number];
  const rb = quantRowBytes(format, k);
  const out = new Uint8Array(n * rb);
  // A block of rows at a time, so a half-precision matrix is never widened whole.
  const rowsPer = Math.max(1, Math.floor((1 << 20) / Math.max(1, k)));
  const src = w.dtype === "f32" ? null : w;
  for (let j0 = 0; j0 < n; j0 += rowsPer) {
    const j1 = Math.min(n, j0 + rowsPer);
    const vals = src
      ? decodeHalf(src.halfBits.subarray(j0 * k, j1 * k), src.dtype as "bf16" | "f16")
      : w.data.subarray(j0 * k, j1 * k);
    for (let j = j0; j < j1; j++)
      quantizeRow(vals.subarray((j - j0) * k, (j - j0 + 1) * k), format, out, j * rb);
  }
  const q = new QuantTensor(format, [n, k], out);
  q.name = w.name;
  return q;
}

/** The f32 values [n, k] the blocks stand for (a new f32 tensor on the active backend). */
export function dequantize(w: QuantTensor): Tensor {
  const [n, k] = w.shape;
  const out = zeros([n, k]);
  for (let j = 0; j < n; j++) dequantizeRow(w.blocks, w.format, j, k, out.data.subarray(j * k, (j + 1) * k));
  return out;
}

/** Rows `ids` of a quantised table [V, d], dequantised: an embedding lookup → [...shape, d]. */
export function embeddingQuant(table: QuantTensor, ids: Int32Array, shape: readonly number[]): Tensor {
  const [V, d] = table.shape;
  const out = zeros([...shape, d]);
  for (let r = 0; r < ids.length; r++) {
    const id = ids[r]!;
    if (!(id >= 0 && id < V))
      throw new Error(`embedding: id ${id} at position ${r} is outside the vocabulary [0, ${V})`);
    dequantizeRow(table.blocks, table.format, id, d, out.data.subarray(r * d, (r + 1) * d));
  }
  return out;
}

/** The kernel for the active backend: its own `matmulQuant` (native), else the js reference (fallbacks.ts). */
function quantKernel(): NonNullable<Backend["matmulQuant"]> {
  return kernelOf(getBackend(), "matmulQuant");
}

/**
 * x [rows, k] · Wᵀ for a quantised W [n, k] → [rows, n] f32 (kernel: see quantKernel). W is frozen; x's
 * gradient, when recorded, is dy·W (matmulQuantGrad).
 */
export function linearQuant(x: Tensor, w: QuantTensor): Tensor {
  if (x.dtype !== "f32") throw new Error(`linear: input ${x} is ${x.dtype}; compute ops take f32`);
  const [n, k] = w.shape;
  if (x.rank !== 2 || x.shape[1] !== k)
    throw new Error(`linearQuant: input ${shapeStr(x.shape)} does not match weight ${shapeStr(w.shape)}`);
  const m = x.shape[0]!;
  const out = zeros([m, n]);
  // A recorded forward keeps x in f32 (exact): its gradient below is that product's, not the 8-bit one's.
  quantKernel()(x.data, w.blocks, out.data, m, n, k, w.format, needsGrad(x));
  if (needsGrad(x)) {
    const backend = getBackend();
    record(out, [], (g, sink) =>
      sink(x, (dst, acc) => kernelOf(backend, "matmulQuantGrad")(g, w.blocks, dst, m, n, k, w.format, acc)),
    );
  }
  return out;
}
