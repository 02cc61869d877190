// The one place optional kernels are resolved: `kernelOf(backend, op)` is the backend's own kernel when it
// lists op in `supports`, else the fallback here. matmulBf16 falls back to widening the bf16 weights a
// block of rows at a time into a scratch buffer and multiplying with the backend's own f32 matmul (a
// GEMV for one row, its tiled SGEMM for many), so a backend's figures stay its own; matmulBf16Many to
// one matmulBf16 each; matmulQuant to the js reference kernel; the input gradients through a frozen
// weight (matmulBf16Grad, matmulQuantGrad) to widening or dequantising a block of rows at a time and
// multiplying the matching columns of dY by it with the backend's matmul; compileGraph to none (a
// graph is then replayed call by call, src/tensor/graph.ts). Kernels know no model.
import type { Backend, OptionalKernel } from "./backend.js";
import { widenBf16 } from "./js/bf16.js";
import { dequantizeRow, matmulQuant as jsMatmulQuant, type QuantFormat, quantRowBytes } from "./js/quant.js";

type Kernel<K extends OptionalKernel> = NonNullable<Backend[K]>;

/** Whether `backend` has its own `op`. */
export function supports(backend: Backend, op: OptionalKernel): boolean {
  return backend.supports.includes(op) && typeof backend[op] === "function";
}

/** The kernel `op` for `backend`: its own, or the fallback (null: compileGraph has none). */
export function kernelOf<K extends Exclude<OptionalKernel, "compileGraph">>(
  backend: Backend,
  op: K,
): Kernel<K>;
export function kernelOf(backend: Backend, op: "compileGraph"): Kernel<"compileGraph"> | null;
export function kernelOf(backend: Backend, op: OptionalKernel): unknown {
  if (supports(backend, op)) return (backend[op] as (...a: unknown[]) => unknown).bind(backend);
  switch (op) {
    case "matmulBf16":
      return (a: Float32Array, bits: Uint16Array, c: Float32Array, m: number, n: number, k: number) =>
        widenedMatmulBf16(backend, a, bits, c, m, n, k);
    case "matmulBf16Many": {
      const one = kernelOf(backend, "matmulBf16");
      return (
        a: Float32Array,
        bits: readonly Uint16Array[],
        c: readonly Float32Array[],
        m: number,
        ns: readonly number[],
        k: number,
      ) => {
        for (let q = 0; q < bits.length; q++) one(a, bits[q]!, c[q]!, m, ns[q]!, k);
      };
    }
    case "matmulQuant":
      return jsMatmulQuant;
    case "matmulBf16Grad":
      return (
        dy: Float32Array,
        bits: Uint16Array,
        dx: Float32Array,
        m: number,
        n: number,
        k: number,
        acc: boolean,
      ) => {
        if (dy.length < m * n || bits.length < n * k || dx.length < m * k)
          throw new Error(`matmulBf16Grad: buffers too small for m=${m} n=${n} k=${k}`);
        const wu = (w: Float32Array, j0: number, nb: number) =>
          widenBf16(
            bits.subarray(j0 * k, (j0 + nb) * k),
            new Uint32Array(w.buffer, w.byteOffset, nb * k),
            nb * k,
          );
        blockedInputGrad(backend, dy, dx, m, n, k, acc, wu);
      };
    case "matmulQuantGrad":
      return (
        dy: Float32Array,
        blocks: Uint8Array,
        dx: Float32Array,
        m: number,
        n: number,
        k: number,
        format: QuantFormat,
        acc: boolean,
      ) => {
        if (dy.length < m * n || blocks.length < n * quantRowBytes(format, k) || dx.length < m * k)
          throw new Error(`matmulQuantGrad: buffers too small for m=${m} n=${n} k=${k} ${format}`);
        const rows = (w: Float32Array, j0: number, nb: number) => {
          for (let j = 0; j < nb; j++)
            dequantizeRow(blocks, format, j0 + j, k, w.subarray(j * k, (j + 1) * k));
        };
        blockedInputGrad(backend, dy, dx, m, n, k, acc, rows);
      };
    case "compileGraph":
      return null;
  }
}

/**
 * Widened weights per block, reused for every block: 256 KB of f32 for one row (decode: the block stays
 * in L2 between widening and the GEMV), 4 MB for several (prefill: wide blocks keep the SGEMM efficient).
 */
const DECODE_BLOCK_ELEMENTS = 1 << 16;
const PREFILL_BLOCK_ELEMENTS = 1 << 20;

/** C (m×n) = A (m×k) · Bᵀ, B n×k bf16: blocks of B widened and multiplied by the backend's f32 matmul. */
function widenedMatmulBf16(
  backend: Backend,
  a: Float32Array,
  bits: Uint16Array,
  c: Float32Array,
  m: number,
  n: number,
  k: number,
): void {
  const block = m === 1 ? DECODE_BLOCK_ELEMENTS : PREFILL_BLOCK_ELEMENTS;
  const rowsPerBlock = Math.max(1, Math.min(n, Math.floor(block / Math.max(1, k))));
  const wf = backend.alloc(rowsPerBlock * k);
  const wu = new Uint32Array(wf.buffer, wf.byteOffset, wf.length);
  const cBlock = m > 1 ? backend.alloc(m * rowsPerBlock) : null;
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
        backend.matmul(a, wBlock, c.subarray(j0, j0 + nb), args);
        continue;
      }
      const cb = cBlock.subarray(0, m * nb);
      backend.matmul(a, wBlock, cb, args);
      for (let i = 0; i < m; i++) c.set(cb.subarray(i * nb, (i + 1) * nb), i * n + j0);
    }
  } finally {
    backend.free(wf);
    if (cBlock) backend.free(cBlock);
  }
}

/**
 * dX (m×k) (+)= dY (m×n) · W for a W (n×k) that `rows(dst, j0, nb)` writes in f32 a block of rows at a
 * time: each block's columns of dY are copied out and multiplied by the block with the backend's matmul,
 * accumulating into dX, so at most PREFILL_BLOCK_ELEMENTS of W exist in f32 at once.
 */
function blockedInputGrad(
  backend: Backend,
  dy: Float32Array,
  dx: Float32Array,
  m: number,
  n: number,
  k: number,
  accumulate: boolean,
  rows: (dst: Float32Array, j0: number, nb: number) => void,
): void {
  if (n === 0) {
    if (!accumulate) dx.fill(0, 0, m * k);
    return;
  }
  const rowsPerBlock = Math.max(1, Math.min(n, Math.floor(PREFILL_BLOCK_ELEMENTS / Math.max(1, k))));
  const wf = backend.alloc(rowsPerBlock * k);
  const dyBlock = rowsPerBlock < n ? backend.alloc(m * rowsPerBlock) : null;
  try {
    for (let j0 = 0; j0 < n; j0 += rowsPerBlock) {
      const nb = Math.min(rowsPerBlock, n - j0);
      const wBlock = nb === rowsPerBlock ? wf : wf.subarray(0, nb * k);
      rows(wBlock, j0, nb);
      let a = dy;
      if (dyBlock) {
        a = nb === rowsPerBlock ? dyBlock : dyBlock.subarray(0, m * nb);
        for (let i = 0; i < m; i++) a.set(dy.subarray(i * n + j0, i * n + j0 + nb), i * nb);
      }
      backend.matmul(a, wBlock, dx, {
        batch: 1,
        m,
        n: k,
        k: nb,
        transA: false,
        transB: false,
        strideA: 0,
        strideB: 0,
        strideC: 0,
        accumulate: accumulate || j0 > 0,
      });
    }
  } finally {
    backend.free(wf);
    if (dyBlock) backend.free(dyBlock);
  }
}
