// `linear` on a bf16 weight: x·Wᵀ with W kept in bf16, for inference on checkpoints that would not fit in
// memory as f32 (the bf16 1B model generates within 4 GB). The weight is frozen: a gradient for it is an
// error (load f32 weights to train it), but a grad-requiring input gets dx = dy·W (a LoRA adapter on a
// bf16 base), W widened a block of rows at a time, never whole. The kernels are the backend's
// matmulBf16 / matmulBf16Grad or their fallbacks (src/backends/fallbacks.ts). Also the bf16 embedding
// lookup (a bf16 checkpoint's tied table is both).
import { kernelOf } from "../backends/fallbacks.js";
import { getBackend } from "../backends/index.js";
import { widenBf16 } from "../backends/js/bf16.js";
import { isGradEnabled, needsGrad, record } from "./tape.js";
import { shapeStr, type Tensor, zeros } from "./tensor.js";

/** x [rows, k] · Wᵀ for W [n, k] bf16 → [rows, n] f32. */
export function linearBf16(x: Tensor, w: Tensor): Tensor {
  if (w.dtype !== "bf16") throw new Error(`linearBf16: weight ${w} is ${w.dtype}, not bf16`);
  if (x.dtype !== "f32") throw new Error(`linear: input ${x} is ${x.dtype}; compute ops take f32`);
  if (isGradEnabled() && w.requiresGrad)
    throw new Error(
      `linear: weight${w.label()} is bf16 and requires a gradient; bf16 weights are frozen (load f32 weights to train them, or train a LoRA adapter on top)`,
    );
  const [n, k] = w.shape as [number, number];
  if (x.rank !== 2 || x.shape[1] !== k)
    throw new Error(`linearBf16: input ${shapeStr(x.shape)} does not match weight ${shapeStr(w.shape)}`);
  const m = x.shape[0]!;
  const out = zeros([m, n]);
  const backend = getBackend();
  kernelOf(backend, "matmulBf16")(x.data, w.halfBits, out.data, m, n, k);
  if (needsGrad(x))
    record(out, [w], (g, sink) =>
      sink(x, (dst, acc) => kernelOf(backend, "matmulBf16Grad")(g, w.halfBits, dst, m, n, k, acc)),
    );
  return out;
}

/**
 * x [rows, k] · Wᵀ for several bf16 weights sharing x (a layer's Q, K and V, or its gate and up
 * projections) in one kernel call (matmulBf16Many, or its fallback: one matmulBf16 each); null when it
 * does not apply (a weight is not bf16, or gradients are being recorded), so the caller does one
 * `linear` each. Results equal `linearBf16` on each weight.
 */
export function linearsBf16(x: Tensor, ws: readonly Tensor[]): Tensor[] | null {
  if (x.dtype !== "f32" || x.rank !== 2 || (isGradEnabled() && x.requiresGrad)) return null;
  const k = x.shape[1]!;
  if (ws.some((w) => w.dtype !== "bf16" || w.rank !== 2 || w.shape[1] !== k || w.requiresGrad)) return null;
  const m = x.shape[0]!;
  const outs = ws.map((w) => zeros([m, w.shape[0]!]));
  kernelOf(getBackend(), "matmulBf16Many")(
    x.data,
    ws.map((w) => w.halfBits),
    outs.map((o) => o.data),
    m,
    ws.map((w) => w.shape[0]!),
    k,
  );
  return outs;
}

/** Rows of a bf16 `table` [vocab, dim] picked by ids, widened to f32 row by row (no f32 copy of the table). */
export function embeddingBf16(
  table: Tensor,
  ids: Int32Array,
  idsShape: readonly number[] = [ids.length],
): Tensor {
  if (table.dtype !== "bf16" || table.rank !== 2)
    throw new Error(`embeddingBf16: table ${table} must be a bf16 [vocab, dim]`);
  const [V, d] = table.shape as [number, number];
  const out = zeros([...idsShape, d]);
  if (out.size !== ids.length * d)
    throw new Error(`embeddingBf16: ${ids.length} ids for shape [${idsShape}]`);
  const bits = table.halfBits;
  const rows = new Uint32Array(out.data.buffer, out.data.byteOffset, out.size);
  for (let r = 0; r < ids.length; r++) {
    const id = ids[r]!;
    if (!(id >= 0 && id < V))
      throw new Error(`embedding: id ${id} at position ${r} is outside the vocabulary [0, ${V})`);
    widenBf16(bits.subarray(id * d, (id + 1) * d), rows.subarray(r * d, (r + 1) * d), d);
  }
  return out;
}
