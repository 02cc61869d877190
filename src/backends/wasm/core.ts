// The wasm backend's core, shared by its kernel wrappers (index.ts, dense.ts, attention.ts): the kernels
// instantiated over one shared WebAssembly.Memory, its allocator (heap.ts), the thread pool (pool.ts),
// running a kernel on one or all threads, staging foreign arrays into the memory and out again, and
// internal scratch areas (not counted in liveBytes).
import { availableParallelism } from "node:os";
import { knob } from "../../core/knobs.js";
import { Heap } from "./heap.js";
import { instantiate, kernelModule, sharedMemory, type WasmMemory } from "./kernels.js";
import { createPool, type KernelFn, type Pool } from "./pool.js";

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
  "crossEntropy",
  "crossEntropyBackward",
] as const;
export type Op = (typeof OPS)[number];

/** How a kernel uses an array: staging copies "in" arrays in, "out" arrays back, "inout" both ways. */
export type Mode = "in" | "out" | "inout";

// Below these sizes a job runs on the calling thread alone: a dispatch to the workers costs about as much
// as the job itself (bench/RESULTS.md "Kernel design notes").
export const MIN_PARALLEL_FLOPS = 1 << 19;
export const MIN_PARALLEL_ELEMENTS = 1 << 15;
/** For kernels that compute an exp per element (softmax, SwiGLU): worth splitting much earlier. */
export const MIN_PARALLEL_EXP = 1 << 12;

export interface Core {
  readonly memory: WasmMemory;
  readonly heap: Heap;
  /** The main thread's instance: exported functions by name. */
  readonly exports: Record<string, (...a: number[]) => number>;
  /** Threads a parallel job runs on (1 after dispose). */
  threads(): number;
  /** Run kernel `op` with `args` (then tid, nth): on every thread if `parallel` and there are workers. */
  run(op: Op, args: number[], parallel: boolean): void;
  /** Call fn with the arrays' byte offsets in the memory, copying foreign arrays in and out of scratch. */
  staged(specs: [Float32Array | Int32Array, Mode][], fn: (ptrs: number[]) => void): void;
  /** A Float32Array view of the memory at byte `off` (recorded as ours). */
  view(off: number, n: number): Float32Array;
  /** True if the array lies in the memory. */
  isOurs(a: ArrayBufferView): boolean;
  /** Internal scratch `name` of at least `bytes`, kept between calls (grown when a call needs more). */
  area(name: string, bytes: number): number;
  /** The i32 that sgemm, gemv and friends claim work units from; zeroed by run() before each job. */
  readonly counter: number;
  /** Per-thread sgemm packing scratch: thread t's at gemmScratch + t·scratchStride. */
  readonly gemmScratch: number;
  readonly scratchStride: number;
  /** One f64 per thread for reductions. */
  readonly partials: Float64Array;
  readonly partialsPtr: number;
  /** Stop the workers; jobs then run on the calling thread. */
  dispose(): void;
}

function threadCount(requested: number | undefined): number {
  if (requested !== undefined) {
    if (!Number.isInteger(requested) || requested < 1)
      throw new Error(`wasm backend: threads must be ≥ 1, got ${requested}`);
    return requested;
  }
  return knob("HERD_THREADS") ?? availableParallelism();
}

export function createCore(opts: { threads?: number }): Core {
  const module = kernelModule();
  const memory = sharedMemory(1);
  const ex = instantiate(module, memory);
  const heap = new Heap(memory, Math.max(64, ex["heapBase"]!()));
  const local: KernelFn[] = OPS.map((name) => ex[name]!);
  let threads = threadCount(opts.threads);
  let pool: Pool | null = threads > 1 ? createPool(module, memory, [...OPS], local, threads) : null;

  const scratchStride = Math.ceil(ex["gemmScratchBytes"]!() / 64) * 64;
  const gemmScratch = heap.alloc(scratchStride * threads);
  const partialsPtr = heap.alloc(8 * threads);
  const counter = heap.alloc(64);
  const counterView = new Int32Array(memory.buffer, counter, 1);
  const partials = new Float64Array(memory.buffer, partialsPtr, threads);

  // Views we created all share one of memory's buffers (a new SharedArrayBuffer object after each grow).
  const ours = new WeakSet<ArrayBufferLike>();
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

  const areas = new Map<string, [number, number]>(); // name → [offset, bytes]
  function area(name: string, bytes: number): number {
    const had = areas.get(name);
    if (had && had[1] >= bytes) return had[0];
    if (had) heap.release(had[0], had[1]);
    const off = heap.alloc(bytes);
    areas.set(name, [off, bytes]);
    return off;
  }

  return {
    memory,
    heap,
    exports: ex,
    threads: () => threads,
    run,
    staged,
    view,
    isOurs,
    area,
    counter,
    gemmScratch,
    scratchStride,
    partials,
    partialsPtr,
    dispose() {
      pool?.dispose();
      pool = null;
      threads = 1;
    },
  };
}
