// Matmul benchmarks of the engine: square 512/1024/2048, the decode shape 1×2048·(8192×2048)ᵀ and
// 64×2048·(8192×2048)ᵀ (in f32, then with bf16 weights via matmulBf16), on the js reference, on wasm
// and on the native backend (when its addon is built) with 1 and 2 threads, all in one run, with
// GFLOP/s, the fraction of this CPU's f32 peak and the ratios against js and against wasm on as many
// threads. Attention and the Transformer
// block are in bench/layers.ts.
//
// The peak (src/backends/peak.ts): the core clock is measured (a chain of dependent integer multiplies,
// 3 cycles each on Zen), and two ceilings are derived from it per core:
//   simd128  16 f32 flops/cycle: what wasm can reach (128-bit vectors, no fused multiply-add).
//   cpu      the machine's own f32 peak by its ISA: 64 flops/cycle with AVX-512 (two 512-bit FMA
//            pipes), 32 with AVX2+FMA, 16 without either.
// Both are multiplied by the number of threads used (one thread per core).
import { existsSync, readFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import { performance } from "node:perf_hooks";
import type { Backend, MatmulArgs } from "../src/backends/backend.js";
import { jsBackend } from "../src/backends/js/index.js";
import { createNativeBackend, nativeAvailable } from "../src/backends/native/index.js";
import { cpuIsa, FLOPS_PER_CYCLE, measureClock, SIMD128_FLOPS_PER_CYCLE } from "../src/backends/peak.js";
import { createWasmBackend, type WasmBackend } from "../src/backends/wasm/index.js";
import { row } from "./timing.js";

/** Fraction of CPU time other processes used over `ms` milliseconds while this one sleeps (Linux), or null. */
export function otherLoad(ms: number): number | null {
  if (!existsSync("/proc/stat")) return null;
  const sample = (): [number, number] => {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    return [f.reduce((a, b) => a + b, 0), f[3]! + (f[4] ?? 0)];
  };
  const [t0, i0] = sample();
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  const [t1, i1] = sample();
  return t1 > t0 ? 1 - (i1 - i0) / (t1 - t0) : null;
}

/** Seconds per call: the best of repeated calls within `budget` seconds; one call if that alone is slower. */
function timeBoxed(fn: () => void, budget: number): { best: number; reps: number } {
  let t0 = performance.now();
  fn();
  let best = (performance.now() - t0) / 1000;
  if (best > budget / 2) return { best, reps: 1 };
  const start = performance.now();
  let reps = 1;
  while ((performance.now() - start) / 1000 < budget && reps < 200) {
    t0 = performance.now();
    fn();
    best = Math.min(best, (performance.now() - t0) / 1000);
    reps++;
  }
  return { best, reps };
}

function fill(buf: Float32Array, seed: number): void {
  let x = seed >>> 0;
  for (let i = 0; i < buf.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    buf[i] = (x / 4294967296) * 2 - 1;
  }
}

interface Shape {
  label: string;
  m: number;
  n: number;
  k: number;
  transB: boolean;
  /** Weights as bf16 bits (`matmulBf16`, inference), held in the backend's own memory. */
  bf16?: boolean;
}

const shapes: Shape[] = [
  { label: "512²", m: 512, n: 512, k: 512, transB: false },
  { label: "1024²", m: 1024, n: 1024, k: 1024, transB: false },
  { label: "2048²", m: 2048, n: 2048, k: 2048, transB: false },
  { label: "1×2048·(8192×2048)ᵀ", m: 1, n: 8192, k: 2048, transB: true },
  { label: "64×2048·(8192×2048)ᵀ", m: 64, n: 8192, k: 2048, transB: true },
  { label: "bf16 1×2048·(8192×2048)ᵀ", m: 1, n: 8192, k: 2048, transB: true, bf16: true },
  { label: "bf16 64×2048·(8192×2048)ᵀ", m: 64, n: 8192, k: 2048, transB: true, bf16: true },
];

function bench(b: Backend, s: Shape, budget: number): { best: number; reps: number } {
  const a = b.alloc(s.m * s.k);
  const w = b.alloc(s.k * s.n);
  const c = b.alloc(s.m * s.n);
  fill(a, 1);
  fill(w, 2);
  const p: MatmulArgs = {
    batch: 1,
    m: s.m,
    n: s.n,
    k: s.k,
    transA: false,
    transB: s.transB,
    accumulate: false,
    strideA: 0,
    strideB: 0,
    strideC: 0,
  };
  let run = () => b.matmul(a, w, c, p);
  if (s.bf16) {
    // bf16 bits in the first half of w's bytes (random values: the low 16 bits of random f32s' tops).
    const bits = new Uint16Array(w.buffer, w.byteOffset, s.n * s.k);
    for (let i = 0; i < bits.length; i++) bits[i] = 0x3c00 + ((i * 2654435761) >>> 25);
    run = () => b.matmulBf16!(a, bits, c, s.m, s.n, s.k);
  }
  const t = timeBoxed(run, budget);
  b.free(a);
  b.free(w);
  b.free(c);
  return t;
}

export async function run(): Promise<void> {
  const clock = measureClock({ runs: 30, iters: 2e6, fresh: true });
  const isa = cpuIsa();
  const peak128 = SIMD128_FLOPS_PER_CYCLE * clock;
  const peakCpu = FLOPS_PER_CYCLE[isa] * clock;
  console.log(
    `machine: ${cpus()[0]?.model ?? "?"}, ${availableParallelism()} cores, Node ${process.version}`,
  );
  console.log(
    `clock ${(clock / 1e9).toFixed(2)} GHz (measured); f32 peak per core: simd128 ${(peak128 / 1e9).toFixed(1)} GFLOP/s ` +
      `(16 flops/cycle, wasm's ceiling), cpu ${(peakCpu / 1e9).toFixed(1)} GFLOP/s (${FLOPS_PER_CYCLE[isa]} flops/cycle, ${isa})`,
  );
  const busy = otherLoad(500);
  if (busy !== null && busy > 0.1) {
    console.log(
      `warning: other processes kept ${(100 * busy).toFixed(0)}% of the CPU busy before the run; ` +
        "figures (2-thread ones most) will be low",
    );
  }
  const wasm: [string, WasmBackend][] = [1, 2].map((t) => [`wasm ×${t}`, createWasmBackend({ threads: t })]);
  // The native backend has one pool per process: it is restarted with 1, then 2 threads per shape.
  const native = nativeAvailable();
  if (native) console.log(`native backend: ${createNativeBackend({ threads: 1 }).isa} kernels`);
  else console.log("native backend: addon not built; its rows are left out");
  const widths = [27, 9, 5, 10, 9, 9, 7, 8, 8, 8];
  console.log(
    row(
      ["shape", "backend", "reps", "ms", "GFLOP/s", "GB/s", "vs js", "vs wasm", "%simd128", "%cpu"],
      widths,
    ),
  );
  for (const s of shapes) {
    const flops = 2 * s.m * s.n * s.k;
    // Each operand touched once: the memory-bound floor.
    const bytes = 4 * (s.m * s.k + s.m * s.n) + (s.bf16 ? 2 : 4) * s.k * s.n;
    // The js reference is slow (≈2 GFLOP/s); one call is enough for the large shapes.
    const js = bench(jsBackend, s, 2);
    const wasmBest = new Map<number, number>();
    const line = (name: string, t: { best: number; reps: number }, threads: number) =>
      row(
        [
          s.label,
          name,
          t.reps,
          (t.best * 1e3).toFixed(2),
          (flops / t.best / 1e9).toFixed(1),
          (bytes / t.best / 1e9).toFixed(1),
          (js.best / t.best).toFixed(1),
          wasmBest.has(threads) && name.startsWith("native")
            ? (wasmBest.get(threads)! / t.best).toFixed(2)
            : "",
          ((100 * flops) / t.best / (peak128 * threads)).toFixed(0),
          ((100 * flops) / t.best / (peakCpu * threads)).toFixed(0),
        ],
        widths,
      );
    console.log(line("js", js, 1));
    for (const [name, b] of wasm) {
      const t = bench(b, s, 1.5);
      wasmBest.set(b.threads, t.best);
      console.log(line(name, t, b.threads));
    }
    if (native)
      for (const threads of [1, 2]) {
        const b = createNativeBackend({ threads });
        console.log(line(`native ×${threads}`, bench(b, s, 1.5), threads));
      }
  }
  for (const [, b] of wasm) b.dispose();
  console.log("targets (2 threads): ≥ 80 GFLOP/s at 1024², ≥ 18 GFLOP/s on the decode shape");
}
