// Matmul benchmarks of the engine: square 512/1024/2048, the decode shape 1×2048·(8192×2048)ᵀ and
// 64×2048·(8192×2048)ᵀ (in f32, then with bf16 weights via matmulBf16), on the js reference, on wasm
// and on the native backend (when its addon is built) with 1 and 2 threads, all in one run, with
// GFLOP/s, the fraction of this CPU's f32 peak and the ratios against js and against wasm on as many
// threads. The square shapes also run through numpy's matmul (OpenBLAS, or whatever BLAS that numpy
// links) in a python3 child per shape and thread count, right after herd's rows (so both see the same
// load): OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (OpenBLAS picks its own kernel and blocking, as
// herd does), OPENBLAS_NUM_THREADS (and OMP_NUM_THREADS) = the thread count, the best of repeated calls
// within the same time budget as herd's; the summary prints herd native's ratio against it. Without
// python3 or numpy one line says so and the rest runs. Attention and the Transformer block are in
// bench/layers.ts.
//
// The peak (src/backends/peak.ts): the core clock is measured (a chain of dependent integer multiplies,
// 3 cycles each on Zen), and two ceilings are derived from it per core:
//   simd128  16 f32 flops/cycle: what wasm can reach (128-bit vectors, no fused multiply-add).
//   cpu      the machine's own f32 peak by its ISA and FMA pipes: measured by the native FMA probe where
//            the addon loads (AVX-512: 64 flops/cycle with two 512-bit pipes, 32 on Zen 4), else the
//            table (peak.ts).
// Both are multiplied by the number of threads used (one thread per core).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import { performance } from "node:perf_hooks";
import type { Backend, MatmulArgs } from "../src/backends/backend.js";
import { jsBackend } from "../src/backends/js/index.js";
import { createNativeBackend, nativeAvailable, nativeCpuInfo } from "../src/backends/native/index.js";
import { cpuIsa, flopsPerCycle, measureClock, SIMD128_FLOPS_PER_CYCLE } from "../src/backends/peak.js";
import { createWasmBackend, type WasmBackend } from "../src/backends/wasm/index.js";
import { Rng } from "../src/core/rng.js";
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
  const r = new Rng(seed);
  for (let i = 0; i < buf.length; i++) buf[i] = r.next() * 2 - 1;
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

// numpy's matmul of two n×n f32 matrices: prints {"version", "blas", "best"} (seconds per call, the
// best of at least 3 calls within `budget` seconds after one warm-up call).
const NUMPY = `
import json, sys, time
import numpy as np
n, budget = int(sys.argv[1]), float(sys.argv[2])
rng = np.random.default_rng(1)
a = rng.random((n, n), dtype=np.float32) * 2 - 1
b = rng.random((n, n), dtype=np.float32) * 2 - 1
c = np.matmul(a, b)
best, reps, start = 1e30, 0, time.perf_counter()
while reps < 3 or (time.perf_counter() - start < budget and reps < 200):
    t = time.perf_counter(); np.matmul(a, b, out=c); best = min(best, time.perf_counter() - t); reps += 1
try:
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    blas = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
except Exception:
    blas = "?"
print(json.dumps({"version": np.__version__, "blas": blas, "best": best, "reps": reps}))
`;

interface NumpyTime {
  version: string;
  blas: string;
  best: number;
  reps: number;
}

/** numpy's best seconds for an n² matmul on `threads` BLAS threads, or a one-line reason it could not run. */
export function numpyMatmul(n: number, threads: number, budget: number): NumpyTime | string {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  env.OPENBLAS_NUM_THREADS = String(threads);
  env.OMP_NUM_THREADS = String(threads);
  env.MKL_NUM_THREADS = String(threads);
  const r = spawnSync("python3", ["-c", NUMPY, String(n), String(budget)], { env, encoding: "utf8" });
  if (r.error) return `python3 not found (${(r.error as NodeJS.ErrnoException).code ?? r.error.message})`;
  if (r.status !== 0) {
    const last = r.stderr.trim().split("\n").pop() ?? "";
    return /No module named .?numpy/.test(r.stderr) ? "python3 has no numpy" : `python3 failed: ${last}`;
  }
  return JSON.parse(r.stdout) as NumpyTime;
}

export async function run(): Promise<void> {
  const clock = measureClock({ runs: 30, iters: 2e6, fresh: true });
  const isa = cpuIsa();
  const peak128 = SIMD128_FLOPS_PER_CYCLE * clock;
  const fpc = flopsPerCycle(isa);
  const peakCpu = fpc.flopsPerCycle * clock;
  console.log(
    `machine: ${cpus()[0]?.model ?? "?"}, ${availableParallelism()} cores, Node ${process.version}`,
  );
  console.log(
    `clock ${(clock / 1e9).toFixed(2)} GHz (measured); f32 peak per core: simd128 ${(peak128 / 1e9).toFixed(1)} GFLOP/s ` +
      `(16 flops/cycle, wasm's ceiling), cpu ${(peakCpu / 1e9).toFixed(1)} GFLOP/s (${fpc.flopsPerCycle} flops/cycle ${fpc.from}, ${isa})`,
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
  if (native) {
    const g = nativeCpuInfo()!;
    const kib = (b: number) => `${b / 1024} KiB`;
    console.log(
      `native backend: ${createNativeBackend({ threads: 1 }).isa} kernels; caches (${g.cacheSource}) L1d ` +
        `${kib(g.l1d)}, L2 ${kib(g.l2)}, L3 ${kib(g.l3)} per core; GEMM ${g.mr}×${g.nr} micro-tile, ` +
        `mc ${g.mc} kc ${g.kc} nc ${g.nc} (${g.blockingSource})`,
    );
  } else console.log("native backend: addon not built; its rows are left out");
  const widths = [27, 9, 5, 10, 9, 9, 7, 8, 8, 8];
  console.log(
    row(
      ["shape", "backend", "reps", "ms", "GFLOP/s", "GB/s", "vs js", "vs wasm", "%simd128", "%cpu"],
      widths,
    ),
  );
  const nativeBest = new Map<string, number>();
  const numpyBest = new Map<string, number>();
  let numpyNote: string | null = null;
  let numpyBlas = "";
  for (const s of shapes) {
    const flops = 2 * s.m * s.n * s.k;
    // Each operand touched once: the memory-bound floor.
    const bytes = 4 * (s.m * s.k + s.m * s.n) + (s.bf16 ? 2 : 4) * s.k * s.n;
    // The js reference is slow (a scalar loop); one call is enough for the large shapes.
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
        const t = bench(b, s, 1.5);
        nativeBest.set(`${s.label} ${threads}`, t.best);
        console.log(line(`native ×${threads}`, t, threads));
      }
    if (s.m === s.n && s.n === s.k && !s.transB && numpyNote === null)
      for (const threads of [1, 2]) {
        const t = numpyMatmul(s.n, threads, 1.5);
        if (typeof t === "string") {
          numpyNote = t;
          break;
        }
        numpyBlas = `numpy ${t.version}, ${t.blas}`;
        numpyBest.set(`${s.label} ${threads}`, t.best);
        console.log(line(`numpy ×${threads}`, t, threads));
      }
  }
  for (const [, b] of wasm) b.dispose();
  if (numpyNote !== null) console.log(`numpy: left out (${numpyNote})`);
  else if (native) {
    console.log(`native vs ${numpyBlas} (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE unset), same run:`);
    for (const s of shapes.filter((x) => numpyBest.has(`${x.label} 1`)))
      for (const threads of [1, 2]) {
        const key = `${s.label} ${threads}`;
        const gf = (sec: number) => ((2 * s.m * s.n * s.k) / sec / 1e9).toFixed(1);
        const [h, p] = [nativeBest.get(key)!, numpyBest.get(key)!];
        console.log(
          `  ${s.label.padEnd(6)} ×${threads}: native ${gf(h)} GFLOP/s, numpy ${gf(p)} GFLOP/s: ${(p / h).toFixed(2)}×`,
        );
      }
  }
  console.log("targets (2 threads): ≥ 80 GFLOP/s at 1024², ≥ 18 GFLOP/s on the decode shape");
}
