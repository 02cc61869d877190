// The wasm backend: the AssemblyScript SIMD kernels of assembly/ (build/kernels.wasm) over one shared
// WebAssembly.Memory, run on worker threads (core.ts, pool.ts). Buffers from alloc() are Float32Array
// views into that memory (heap.ts), so kernels get them by byte offset with no copying; arrays from
// anywhere else (tests pass plain ones) are copied into scratch and back. This file has the memory
// interface and the elementwise and row kernels; matmul and matmulBf16 are in dense.ts, attention in
// attention.ts. Kernels not written in wasm (RoPE, embedding) are the js backend's, which works on the
// same views.
// bf16 weights for matmulBf16 are read in place when they live in this memory too: take
// `alloc(Math.ceil(count / 2))` and view its bytes as a Uint16Array; weights elsewhere are copied in
// block by block on every call (slower for a decode step, since every token copies them again).
import type { AdamWArgs, Backend } from "../backend.js";
import { jsKernels } from "../js/index.js";
import { attentionOps } from "./attention.js";
import { createCore, MIN_PARALLEL_ELEMENTS, MIN_PARALLEL_EXP, type Mode, type Op } from "./core.js";
import { denseOps } from "./dense.js";

export { wasmKernelsPath } from "./kernels.js";

export interface WasmBackend extends Backend {
  /** Threads a large kernel runs on (the calling thread included). */
  readonly threads: number;
  /** Stop the worker threads; the backend keeps working on the calling thread alone. */
  dispose(): void;
  /** Bytes of the shared memory (for tests of growth). */
  memoryBytes(): number;
}

export function createWasmBackend(opts: { threads?: number } = {}): WasmBackend {
  const core = createCore(opts);
  const { heap, run, staged } = core;
  const owned = new Map<Float32Array, number>();
  const freed = new WeakSet<Float32Array>();
  let live = 0;

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
    const threads = n >= MIN_PARALLEL_ELEMENTS ? core.threads() : 1;
    staged([[a, "in"]], ([pa]) => run(op, [pa!, n, core.partialsPtr], threads > 1));
    let s = 0;
    for (let t = 0; t < threads; t++) s += core.partials[t]!;
    return s;
  }

  // Cross-entropy: the kernels trust their targets, so they are checked here (the reference's message).
  function checkTargets(targets: Int32Array, rows: number, vocab: number, ignoreIndex: number): void {
    for (let r = 0; r < rows; r++) {
      const t = targets[r]!;
      if (t !== ignoreIndex && !(t >= 0 && t < vocab))
        throw new Error(
          `crossEntropy: target ${t} of row ${r} is out of range [0, ${vocab}) and is not the ignore index ${ignoreIndex}`,
        );
    }
  }
  const ceParallel = (rows: number, vocab: number) => rows > 1 && rows * vocab >= MIN_PARALLEL_EXP;

  const backend: WasmBackend = {
    ...jsKernels,
    name: "wasm",
    supports: ["matmulBf16"],
    get threads() {
      return core.threads();
    },
    alloc(n) {
      if (n === 0) return new Float32Array(0);
      const off = heap.alloc(n * 4);
      const v = core.view(off, n);
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
    dispose: core.dispose,
    ...denseOps(core),
    ...attentionOps(core),
    crossEntropy(logits, targets, mask, losses, lse, rows, vocab, ignoreIndex) {
      checkTargets(targets, rows, vocab, ignoreIndex);
      if (rows <= 0 || vocab <= 0) return;
      const specs: [Float32Array | Int32Array, Mode][] = [
        [logits, "in"],
        [targets, "in"],
        [losses, "out"],
        [lse, "out"],
      ];
      if (mask) specs.push([mask, "in"]);
      staged(specs, ([pl, pt, plo, pls, pm]) =>
        run(
          "crossEntropy",
          [pl!, pt!, pm ?? 0, plo!, pls!, rows, vocab, ignoreIndex],
          ceParallel(rows, vocab),
        ),
      );
    },
    crossEntropyBackward(logits, targets, mask, lse, scale, dlogits, rows, vocab, ignoreIndex) {
      checkTargets(targets, rows, vocab, ignoreIndex);
      if (rows <= 0 || vocab <= 0) return;
      const specs: [Float32Array | Int32Array, Mode][] = [
        [logits, "in"],
        [targets, "in"],
        [lse, "in"],
        [dlogits, "out"],
      ];
      if (mask) specs.push([mask, "in"]);
      staged(specs, ([pl, pt, pls, pd, pm]) =>
        run(
          "crossEntropyBackward",
          [pl!, pt!, pm ?? 0, pls!, scale, pd!, rows, vocab, ignoreIndex],
          ceParallel(rows, vocab),
        ),
      );
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
        MIN_PARALLEL_EXP,
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
        MIN_PARALLEL_EXP,
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
