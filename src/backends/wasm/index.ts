// The wasm backend: the AssemblyScript SIMD kernels of assembly/ (build/kernels.wasm) over one shared
// WebAssembly.Memory, run on worker threads (pool.ts). Buffers from alloc() are Float32Array views into
// that memory (heap.ts), so kernels get them by byte offset with no copying; arrays from anywhere else
// (tests pass plain ones) are copied into scratch and back. Kernels not written in wasm (RoPE,
// embedding, cross-entropy) are the js backend's, which works on the same views.
import { availableParallelism } from "node:os";
import type { AdamWArgs, AttentionArgs, Backend, MatmulArgs } from "../backend.js";
import { jsBackend } from "../js/index.js";
import { Heap } from "./heap.js";
import { instantiate, kernelModule, sharedMemory } from "./kernels.js";
import { createPool, type KernelFn, type Pool } from "./pool.js";

export { wasmKernelsPath } from "./kernels.js";

export interface WasmBackend extends Backend {
  /** Threads a large kernel runs on (the calling thread included). */
  readonly threads: number;
  /** Stop the worker threads; the backend keeps working on the calling thread alone. */
  dispose(): void;
  /** Bytes of the shared memory (for tests of growth). */
  memoryBytes(): number;
}

// Exports of build/kernels.wasm that run as jobs: each takes its arguments, then (tid, nth).
const OPS = [
  "sgemm",
  "gemv",
  "add",
  "mul",
  "scale",
  "axpy",
  "sum",
  "sumSquares",
  "rmsNorm",
  "rmsNormBackward",
  "softmax",
  "swiglu",
  "swigluBackward",
  "adamw",
  "gemvBf16",
  "widenBf16",
  "attention",
  "attentionBackward",
] as const;
type Op = (typeof OPS)[number];

// Below these sizes a job runs on the calling thread alone: a dispatch costs a few microseconds (measured
// on 2 cores: 64³ matmul 10 µs, a 32K-element add 4 µs, a 16K-element swiglu 20 µs on one thread).
const MIN_PARALLEL_FLOPS = 1 << 19;
const MIN_PARALLEL_ELEMENTS = 1 << 15;
/** For kernels that compute an exp per element (softmax, SwiGLU): worth splitting much earlier. */
const MIN_PARALLEL_EXP = 1 << 12;
/** matmulBf16 works on blocks of this many weights (4 MB widened: wide enough for an efficient sgemm). */
const BF16_BLOCK = 1 << 20;

function threadCount(requested: number | undefined): number {
  if (requested !== undefined) {
    if (!Number.isInteger(requested) || requested < 1)
      throw new Error(`wasm backend: threads must be ≥ 1, got ${requested}`);
    return requested;
  }
  const env = process.env["HERD_THREADS"];
  if (env === undefined || env === "") return availableParallelism();
  const n = Number(env);
  if (!Number.isInteger(n) || n < 1) throw new Error(`HERD_THREADS must be a positive integer, got '${env}'`);
  return n;
}

type Mode = "in" | "out" | "inout";

export function createWasmBackend(opts: { threads?: number } = {}): WasmBackend {
  const module = kernelModule();
  const memory = sharedMemory(1);
  const ex = instantiate(module, memory);
  const heap = new Heap(memory, Math.max(64, ex["heapBase"]!()));
  const local: KernelFn[] = OPS.map((name) => ex[name]!);
  let threads = threadCount(opts.threads);
  let pool: Pool | null = threads > 1 ? createPool(module, memory, [...OPS], local, threads) : null;

  // Internal scratch, not counted in liveBytes: per-thread GEMM packing areas, reduction partials.
  const scratchStride = Math.ceil(ex["gemmScratchBytes"]!() / 64) * 64;
  const gemmScratch = heap.alloc(scratchStride * threads);
  const partials = heap.alloc(8 * threads);
  // The work counter that sgemm and gemv claim units from; zeroed before each job.
  const counter = heap.alloc(64);
  const counterView = new Int32Array(memory.buffer, counter, 1);
  const partialView = new Float64Array(memory.buffer, partials, threads);

  // Views we created all share one of memory's buffers (a new SharedArrayBuffer object after each grow).
  const ours = new WeakSet<ArrayBufferLike>();
  const owned = new Map<Float32Array, number>();
  const freed = new WeakSet<Float32Array>();
  let live = 0;

  function view(off: number, n: number): Float32Array {
    const buf = memory.buffer;
    ours.add(buf);
    return new Float32Array(buf, off, n);
  }

  function isOurs(a: ArrayBufferView): boolean {
    return a.buffer === memory.buffer || ours.has(a.buffer);
  }

  function run(op: Op, args: number[], parallel: boolean): void {
    const i = OPS.indexOf(op);
    counterView[0] = 0;
    if (pool !== null && parallel) pool.run(i, args);
    else local[i]!(...args, 0, 1);
  }

  // Call fn with byte offsets of the arrays in wasm memory, copying foreign arrays in and out of scratch.
  function staged(specs: [Float32Array | Int32Array, Mode][], fn: (ptrs: number[]) => void): void {
    const ptrs: number[] = [];
    const temps: [number, Float32Array | Int32Array, Float32Array | Int32Array, Mode][] = [];
    try {
      for (const [a, mode] of specs) {
        if (isOurs(a)) {
          ptrs.push(a.byteOffset);
          continue;
        }
        const off = heap.alloc(a.length * 4);
        const f = view(off, a.length);
        const t = a instanceof Int32Array ? new Int32Array(f.buffer, off, a.length) : f;
        temps.push([off, t, a, mode]);
        if (mode !== "out") t.set(a);
        ptrs.push(off);
      }
      fn(ptrs);
      for (const [, t, a, mode] of temps) if (mode !== "in") (a as Float32Array).set(t as Float32Array);
    } finally {
      for (const [off, t] of temps) heap.release(off, t.length * 4);
    }
  }

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

  // An elementwise job over n elements: arrays staged, then (...pointers, ...scalars, n).
  function elementwise(
    op: Op,
    specs: [Float32Array, Mode][],
    scalars: number[],
    n: number,
    minParallel = MIN_PARALLEL_ELEMENTS,
  ): void {
    if (n <= 0) return;
    staged(specs, (ptrs) => run(op, [...ptrs, ...scalars, n], n >= minParallel));
  }

  function reduce(op: "sum" | "sumSquares", a: Float32Array, n: number): number {
    if (n <= 0) return 0;
    const parallel = pool !== null && n >= MIN_PARALLEL_ELEMENTS;
    staged([[a, "in"]], ([pa]) => run(op, [pa!, n, partials], parallel));
    let s = 0;
    for (let t = 0; t < (parallel ? threads : 1); t++) s += partialView[t]!;
    return s;
  }

  // matmulBf16: weights outside the wasm memory are copied in a block of rows at a time (a memcpy of
  // 2 bytes per weight); for m > 1 each block is also widened to f32 for the packed sgemm. The two
  // scratch areas are kept between calls and grow to the largest block seen.
  const areas = new Map<string, [number, number]>(); // name → [offset, bytes]
  /** Internal scratch `name` of at least `bytes`, kept between calls (grown when a call needs more). */
  function area(name: string, bytes: number): number {
    const had = areas.get(name);
    if (had && had[1] >= bytes) return had[0];
    if (had) heap.release(had[0], had[1]);
    const off = heap.alloc(bytes);
    areas.set(name, [off, bytes]);
    return off;
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
    const inMemory = isOurs(bits);
    const rows = m === 1 && inMemory ? n : Math.max(1, Math.min(n, Math.floor(BF16_BLOCK / Math.max(1, k))));
    const stage = inMemory ? 0 : area("stage", rows * k * 2);
    const widened = m > 1 ? area("widened", rows * k * 4) : 0;
    // gemvBf16's per-thread copy of x, split for its widening order.
    const xSplit = m === 1 ? area("xsplit", (k * 4 + 64) * threads) : 0;
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
            new Uint16Array(memory.buffer, stage, nb * k).set(bits.subarray(j0 * k, (j0 + nb) * k));
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

  // Attention: per-thread scratch sized by the kernel for (seqK, headDim); doc ids staged like the rest.
  function attentionJob(backward: boolean, floats: [Float32Array, Mode][], a: AttentionArgs): void {
    const { batch, seqQ, seqK, heads, kvHeads, headDim } = a;
    if ((a.qDocIds === null) !== (a.kDocIds === null))
      throw new Error("attention: qDocIds and kDocIds must be given together");
    if (batch === 0 || seqQ === 0 || heads === 0) return;
    const stride = Math.ceil(ex["attentionScratchBytes"]!(seqK, headDim, +backward) / 64) * 64;
    const scratch = area("attention", stride * threads);
    const docs: [Int32Array, Mode][] =
      a.qDocIds && a.kDocIds
        ? [
            [a.qDocIds, "in"],
            [a.kDocIds, "in"],
          ]
        : [];
    const flops = 4 * batch * heads * seqQ * seqK * headDim;
    staged([...floats, ...docs], (ptrs) => {
      const [qDoc, kDoc] = docs.length > 0 ? ptrs.slice(floats.length) : [0, 0];
      const shape = [batch, seqQ, seqK, heads, kvHeads, headDim, a.scale, +a.causal, qDoc!, kDoc!];
      const args = [...ptrs.slice(0, floats.length), ...shape, scratch, stride, counter];
      run(backward ? "attentionBackward" : "attention", args, flops >= MIN_PARALLEL_FLOPS);
    });
  }

  const backend: WasmBackend = {
    ...jsBackend,
    name: "wasm",
    get threads() {
      return threads;
    },
    alloc(n) {
      if (n === 0) return new Float32Array(0);
      const off = heap.alloc(n * 4);
      const v = view(off, n);
      owned.set(v, off);
      live += n * 4;
      return v;
    },
    free(buf) {
      const off = owned.get(buf);
      if (off === undefined) {
        if (freed.has(buf)) throw new Error("wasm backend: buffer freed twice");
        return;
      }
      owned.delete(buf);
      freed.add(buf);
      live -= buf.length * 4;
      heap.release(off, buf.length * 4);
    },
    liveBytes: () => live,
    memoryBytes: () => heap.size(),
    dispose() {
      pool?.dispose();
      pool = null;
      threads = 1;
    },
    matmul,
    matmulBf16,
    attention(q, k, v, out, lse, a) {
      attentionJob(
        false,
        [
          [q, "in"],
          [k, "in"],
          [v, "in"],
          [out, "out"],
          [lse, "out"],
        ],
        a,
      );
    },
    attentionBackward(q, k, v, out, dout, lse, dq, dk, dv, a) {
      const ins: [Float32Array, Mode][] = [
        [q, "in"],
        [k, "in"],
        [v, "in"],
        [out, "in"],
        [dout, "in"],
        [lse, "in"],
      ];
      attentionJob(true, [...ins, [dq, "out"], [dk, "out"], [dv, "out"]], a);
    },
    add: (a, b, out, n) =>
      elementwise(
        "add",
        [
          [a, "in"],
          [b, "in"],
          [out, "out"],
        ],
        [],
        n,
      ),
    mul: (a, b, out, n) =>
      elementwise(
        "mul",
        [
          [a, "in"],
          [b, "in"],
          [out, "out"],
        ],
        [],
        n,
      ),
    scale(a, s, out, n) {
      if (n <= 0) return;
      staged(
        [
          [a, "in"],
          [out, "out"],
        ],
        ([pa, po]) => run("scale", [pa!, s, po!, n], n >= MIN_PARALLEL_ELEMENTS),
      );
    },
    axpy: (acc, a, s, n) =>
      elementwise(
        "axpy",
        [
          [acc, "inout"],
          [a, "in"],
        ],
        [s],
        n,
      ),
    sum: (a, n) => reduce("sum", a, n),
    sumSquares: (a, n) => reduce("sumSquares", a, n),
    rmsNorm(x, w, out, rstd, rows, dim, eps) {
      if (rows <= 0) return;
      staged(
        [
          [x, "in"],
          [w, "in"],
          [out, "out"],
          [rstd, "out"],
        ],
        (ptrs) => run("rmsNorm", [...ptrs, rows, dim, eps], rows * dim >= MIN_PARALLEL_ELEMENTS),
      );
    },
    rmsNormBackward(dy, x, w, rstd, dx, dw, rows, dim) {
      if (rows <= 0) return;
      const specs: [Float32Array, Mode][] = [
        [dy, "in"],
        [x, "in"],
        [w, "in"],
        [rstd, "in"],
        [dx, "out"],
      ];
      if (dw) specs.push([dw, "inout"]);
      staged(specs, (ptrs) =>
        run(
          "rmsNormBackward",
          [...ptrs.slice(0, 5), dw ? ptrs[5]! : 0, rows, dim],
          rows * dim >= MIN_PARALLEL_ELEMENTS,
        ),
      );
    },
    softmax(x, out, rows, cols) {
      if (rows <= 0 || cols <= 0) return;
      staged(
        [
          [x, "in"],
          [out, "out"],
        ],
        (ptrs) => run("softmax", [...ptrs, rows, cols], rows > 1 && rows * cols >= MIN_PARALLEL_EXP),
      );
    },
    swiglu: (gate, up, out, n) =>
      elementwise(
        "swiglu",
        [
          [gate, "in"],
          [up, "in"],
          [out, "out"],
        ],
        [],
        n,
      ),
    swigluBackward: (gate, up, dout, dgate, dup, n) =>
      elementwise(
        "swigluBackward",
        [
          [gate, "in"],
          [up, "in"],
          [dout, "in"],
          [dgate, "out"],
          [dup, "out"],
        ],
        [],
        n,
      ),
    adamw(param, grad, m, v, n, a: AdamWArgs) {
      if (n <= 0) return;
      const bc1 = 1 - a.beta1 ** a.step;
      const bc2 = 1 - a.beta2 ** a.step;
      const decay = 1 - a.lr * a.weightDecay;
      staged(
        [
          [param, "inout"],
          [grad, "in"],
          [m, "inout"],
          [v, "inout"],
        ],
        (ptrs) =>
          run(
            "adamw",
            [...ptrs, n, a.lr, a.beta1, a.beta2, a.eps, decay, bc1, bc2],
            n >= MIN_PARALLEL_ELEMENTS,
          ),
      );
    },
  };
  return backend;
}
