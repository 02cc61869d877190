// The wasm backend's dense algebra: matmul (the packed sgemm of assembly/gemm.ts, or the GEMV of
// assembly/gemv.ts when m or n is 1) and matmulBf16 (assembly/bf16.ts). matmulBf16 reads bf16 weights in
// place when they live in the wasm memory; weights elsewhere are copied in a block of rows at a time (a
// memcpy of 2 bytes per weight), and for m > 1 each block is widened to f32 for the packed sgemm.
import type { MatmulArgs } from "../backend.js";
import { type Core, MIN_PARALLEL_ELEMENTS, MIN_PARALLEL_FLOPS } from "./core.js";

/** matmulBf16 works on blocks of this many weights (4 MB widened: wide enough for an efficient sgemm). */
const BF16_BLOCK = 1 << 20;

export function denseOps(core: Core) {
  const { run, staged, area, counter, gemmScratch, scratchStride } = core;

  function matmul(a: Float32Array, b: Float32Array, c: Float32Array, p: MatmulArgs): void {
    if (p.batch === 0 || p.m === 0 || p.n === 0) return;
    const flops = 2 * p.batch * p.m * p.n * p.k;
    const parallel = flops >= MIN_PARALLEL_FLOPS;
    staged(
      [
        [a, "in"],
        [b, "in"],
        [c, p.accumulate ? "inout" : "out"],
      ],
      ([pa, pb, pc]) => {
        const common = [
          pa!,
          pb!,
          pc!,
          p.batch,
          p.m,
          p.n,
          p.k,
          +p.transA,
          +p.transB,
          p.strideA,
          p.strideB,
          p.strideC,
          +p.accumulate,
        ];
        if (p.m === 1 || p.n === 1) run("gemv", [...common, counter], parallel);
        else run("sgemm", [...common, p.n, gemmScratch, scratchStride, counter], parallel);
      },
    );
  }

  function matmulBf16(
    a: Float32Array,
    bits: Uint16Array,
    c: Float32Array,
    m: number,
    n: number,
    k: number,
  ): void {
    if (a.length < m * k || bits.length < n * k || c.length < m * n)
      throw new Error(`matmulBf16: buffers too small for m=${m} n=${n} k=${k}`);
    if (m === 0 || n === 0) return;
    const inMemory = core.isOurs(bits);
    const rows = m === 1 && inMemory ? n : Math.max(1, Math.min(n, Math.floor(BF16_BLOCK / Math.max(1, k))));
    const stage = inMemory ? 0 : area("stage", rows * k * 2);
    const widened = m > 1 ? area("widened", rows * k * 4) : 0;
    // gemvBf16's per-thread copy of x, split for its widening order.
    const xSplit = m === 1 ? area("xsplit", (k * 4 + 64) * core.threads()) : 0;
    staged(
      [
        [a, "in"],
        [c, "out"],
      ],
      ([pa, pc]) => {
        for (let j0 = 0; j0 < n; j0 += rows) {
          const nb = Math.min(rows, n - j0);
          let w = bits.byteOffset + j0 * k * 2;
          if (!inMemory) {
            new Uint16Array(core.memory.buffer, stage, nb * k).set(bits.subarray(j0 * k, (j0 + nb) * k));
            w = stage;
          }
          const parallel = 2 * m * nb * k >= MIN_PARALLEL_FLOPS;
          if (m === 1) {
            run("gemvBf16", [pa!, w, pc! + j0 * 4, nb, k, xSplit, k * 4 + 64, counter], parallel);
            continue;
          }
          run("widenBf16", [w, widened, nb * k], nb * k >= MIN_PARALLEL_ELEMENTS);
          // C[:, j0..j0+nb] = A · widenedᵀ, rows of C n apart.
          const args = [pa!, widened, pc! + j0 * 4, 1, m, nb, k, 0, 1, 0, 0, 0, 0, n];
          run("sgemm", [...args, gemmScratch, scratchStride, counter], parallel);
        }
      },
    );
  }

  return { matmul, matmulBf16 };
}
