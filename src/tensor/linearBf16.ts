// `linear` on a bf16 weight: x·Wᵀ with W kept in bf16, for inference on checkpoints that would not fit in
// memory as f32 (the bf16 1B model generates within 4 GB). No autograd: a gradient through a bf16 weight
// is an error (load f32 weights to train). The backend's own `matmulBf16` runs when it has one; a
// backend that only inherits the js reference kernel gets W widened to f32 a block of rows at a time into
// a scratch buffer, multiplied with its own f32 `matmul` (a GEMV for one row, packed SGEMM for many).
// Also the bf16 embedding lookup (a bf16 checkpoint's tied table is both).

import { getBackend } from "../backends/index.js";
import { matmulBf16 as jsMatmulBf16, widenBf16 } from "../backends/js/bf16.js";
import { isGradEnabled } from "./tape.js";
import { shapeStr, type Tensor, zeros } from "./tensor.js";

/**
 * Widened weights per block, reused for every block: 256 KB of f32 for one row (decode: the block stays
 * in L2 between widening and the GEMV), 4 MB for several (prefill: wide blocks keep the SGEMM efficient).
 */
const DECODE_BLOCK_ELEMENTS = 1 << 16;
const PREFILL_BLOCK_ELEMENTS = 1 << 20;

/** x [rows, k] · Wᵀ for W [n, k] bf16 → [rows, n] f32. */
export function linearBf16(x: Tensor, w: Tensor): Tensor {
  if (w.dtype !== "bf16") throw new Error(`linearBf16: weight ${w} is ${w.dtype}, not bf16`);
  if (x.dtype !== "f32") throw new Error(`linear: input ${x} is ${x.dtype}; compute ops take f32`);
  if (isGradEnabled() && (x.requiresGrad || w.requiresGrad))
    throw new Error(
      `linear: weight${w.label()} is bf16 and gradients are being recorded; bf16 weights are for inference (run under noGrad, or load f32 weights to train)`,
    );
  const [n, k] = w.shape as [number, number];
  if (x.rank !== 2 || x.shape[1] !== k)
    throw new Error(`linearBf16: input ${shapeStr(x.shape)} does not match weight ${shapeStr(w.shape)}`);
  const m = x.shape[0]!;
  const out = zeros([m, n]);
  const backend = getBackend();
  const bits = w.halfBits;
  const kernel = backend.matmulBf16;
  if (kernel && (kernel !== jsMatmulBf16 || backend.name === "js")) {
    kernel(x.data, bits, out.data, m, n, k);
    return out;
  }
  const block = m === 1 ? DECODE_BLOCK_ELEMENTS : PREFILL_BLOCK_ELEMENTS;
  const rowsPerBlock = Math.max(1, Math.min(n, Math.floor(block / Math.max(1, k))));
  const wf = backend.alloc(rowsPerBlock * k);
  const wu = new Uint32Array(wf.buffer, wf.byteOffset, wf.length);
  const cBlock = m > 1 ? backend.alloc(m * rowsPerBlock) : null;
  const c = out.data;
  try {
    for (let j0 = 0; j0 < n; j0 += rowsPerBlock) {
      const nb = Math.min(rowsPerBlock, n - j0);
      widenBf16(bits.subarray(j0 * k, (j0 + nb) * k), wu, nb * k);
      const args = {
        batch: 1,
        m,
        n: nb,
        k,
        transA: false,
        transB: true,
        strideA: 0,
        strideB: 0,
        strideC: 0,
        accumulate: false,
      };
      const wBlock = nb === rowsPerBlock ? wf : wf.subarray(0, nb * k);
      if (!cBlock) {
        backend.matmul(x.data, wBlock, c.subarray(j0, j0 + nb), args);
        continue;
      }
      const cb = cBlock.subarray(0, m * nb);
      backend.matmul(x.data, wBlock, cb, args);
      for (let i = 0; i < m; i++) c.set(cb.subarray(i * nb, (i + 1) * nb), i * n + j0);
    }
  } finally {
    backend.free(wf);
    if (cBlock) backend.free(cBlock);
  }
  return out;
}

/**
 * x [rows, k] · Wᵀ for several bf16 weights sharing x (a layer's Q, K and V, or its gate and up
 * projections) in one backend call when the backend has `matmulBf16Many`; null when it does not apply
 * (a weight is not bf16, gradients are being recorded, or no fused kernel), so the caller does one
 * `linear` each. Results equal `linearBf16` on each weight.
 */
export function linearsBf16(x: Tensor, ws: readonly Tensor[]): Tensor[] | null {
  const backend = getBackend();
  if (!backend.matmulBf16Many || x.dtype !== "f32" || x.rank !== 2 || (isGradEnabled() && x.requiresGrad))
    return null;
  const k = x.shape[1]!;
  if (ws.some((w) => w.dtype !== "bf16" || w.rank !== 2 || w.shape[1] !== k || w.requiresGrad)) return null;
  const m = x.shape[0]!;
  const outs = ws.map((w) => zeros([m, w.shape[0]!]));
  backend.matmulBf16Many(
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
