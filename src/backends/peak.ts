// The measured f32 peak of this CPU, the denominator of MFU (model FLOPs utilisation) in training and of
// the "% of peak" columns of the benchmarks. The core clock is measured, not read from a spec sheet: a
// chain of dependent 32-bit integer multiplies (3 cycles each on every Zen core and on Intel cores since
// Sandy Bridge) runs at one multiply per 3 cycles, so clock = multiplies · 3 / seconds. The fastest of
// several short runs is kept (preemption only ever makes a run slower). The peak is then
//   clock · flops per cycle per core (of the widest f32 vector ISA) · threads used,
// the ISA being the native addon's `isa` when it is the active backend, else the CPU flags. The flops
// per cycle are measured where the native addon loads (native/cpu.cc: independent FMA chains against
// the same dependent multiplies, a few ms, rounded to a power of two), because the ISA alone does not
// say how many FMA pipes of what width a core has: Zen 4 and many Intel parts (one 512-bit FMA unit)
// run AVX-512 at 32, Zen 5 and Intel's two-unit parts at 64. Without the addon, the table:
//   avx512   64: two 512-bit FMA pipes, 2 · 16 lanes · 2 flops (32 on AMD family 25, Zen 4: two
//               256-bit pipes, each 512-bit FMA in two halves)
//   avx2     32: two 256-bit FMA pipes, 2 · 8 · 2
//   generic  16: 128-bit vectors without FMA, two multiplies and two adds per cycle, 2·4 + 2·4
// `SIMD128_FLOPS_PER_CYCLE` (16) is what wasm can reach whatever the CPU: 128-bit vectors and no fused
// multiply-add (relaxed SIMD is behind a flag in Node 20).
import { existsSync, readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import type { Backend } from "./backend.js";
import { nativeFmaFlopsPerCycle } from "./native/index.js";
import { instantiate, kernelModule, sharedMemory, wasmKernelsPath } from "./wasm/kernels.js";

export type Isa = "avx512" | "avx2" | "generic";

export const FLOPS_PER_CYCLE: Record<Isa, number> = { avx512: 64, avx2: 32, generic: 16 };
export const SIMD128_FLOPS_PER_CYCLE = 16;

export interface CpuPeak {
  /** Measured core clock in Hz. */
  clockHz: number;
  isa: Isa;
  /** f32 flops per cycle of one core under `isa`. */
  flopsPerCycle: number;
  /** Whence flopsPerCycle: the native FMA probe, or the table (FLOPS_PER_CYCLE, tableFlopsPerCycle). */
  flopsPerCycleFrom?: "measured" | "table";
  threads: number;
  /** clockHz · flopsPerCycle · threads: f32 FLOP/s. */
  flops: number;
}

/** The dependent-multiply chain in JavaScript (when the wasm kernels are not built). */
function jsProbe(iters: number, x: number, y: number): number {
  for (let i = 0; i < iters; i++) {
    x = Math.imul(x, y);
    x = Math.imul(x, y);
    x = Math.imul(x, y);
    x = Math.imul(x, y);
    x = Math.imul(x, y);
    x = Math.imul(x, y);
    x = Math.imul(x, y);
    x = Math.imul(x, y);
  }
  return x;
}

let clockCache: number | null = null;

/**
 * Core clock in Hz: the fastest of `runs` runs of 8·`iters` dependent multiplies (the wasm probe,
 * assembly/probe.ts, or its JavaScript twin). Measured once per process unless `fresh`.
 */
export function measureClock(opts: { runs?: number; iters?: number; fresh?: boolean } = {}): number {
  if (clockCache !== null && !opts.fresh) return clockCache;
  const probe = existsSync(wasmKernelsPath())
    ? instantiate(kernelModule(), sharedMemory(1)).clockProbe!
    : jsProbe;
  // Many short runs (~1.5 ms each at 4 GHz): on a busy machine some still run unpreempted.
  const iters = opts.iters ?? 2.5e5;
  probe(iters, 3, 5);
  let best = 0;
  for (let r = 0; r < (opts.runs ?? 40); r++) {
    const t0 = performance.now();
    probe(iters, 3, 5);
    const s = (performance.now() - t0) / 1000;
    best = Math.max(best, (iters * 8 * 3) / s);
  }
  clockCache = best;
  return best;
}

/** The CPU's widest f32 vector ISA from /proc/cpuinfo (the flags the native addon's CPUID test uses). */
export function cpuIsa(): Isa {
  if (!existsSync("/proc/cpuinfo")) return "generic";
  const line = readFileSync("/proc/cpuinfo", "utf8")
    .split("\n")
    .find((l) => /^(flags|Features)\s*:/.test(l));
  const flags = new Set((line ?? "").split(":")[1]?.trim().split(/\s+/) ?? []);
  if (flags.has("avx512f") && flags.has("avx512bw")) return "avx512";
  if (flags.has("avx2") && flags.has("fma")) return "avx2";
  return "generic";
}

/** The CPU's vendor and family from /proc/cpuinfo ("" and 0 where unknown). */
function cpuFamily(): { vendor: string; family: number } {
  if (!existsSync("/proc/cpuinfo")) return { vendor: "", family: 0 };
  const text = readFileSync("/proc/cpuinfo", "utf8");
  const vendor = /^vendor_id\s*:\s*(\S+)/m.exec(text)?.[1] ?? "";
  const family = Number(/^cpu family\s*:\s*(\d+)/m.exec(text)?.[1] ?? 0);
  return { vendor, family };
}

/** The table's flops per cycle for `isa` on this CPU: FLOPS_PER_CYCLE, but 32 for AVX-512 on AMD family 25. */
export function tableFlopsPerCycle(isa: Isa): number {
  if (isa !== "avx512") return FLOPS_PER_CYCLE[isa];
  const { vendor, family } = cpuFamily();
  return vendor === "AuthenticAMD" && family === 25 ? 32 : FLOPS_PER_CYCLE.avx512;
}

const measured = new Map<Isa, number | null>();

/**
 * f32 flops per cycle of one core with `isa`: the native FMA probe's figure rounded to a power of two
 * (measured once per process), else the table.
 */
export function flopsPerCycle(isa: Isa): { flopsPerCycle: number; from: "measured" | "table" } {
  if (isa !== "generic") {
    if (!measured.has(isa)) {
      const f = nativeFmaFlopsPerCycle(isa);
      measured.set(isa, f === null ? null : 2 ** Math.round(Math.log2(f)));
    }
    const f = measured.get(isa);
    if (f) return { flopsPerCycle: f, from: "measured" };
  }
  return { flopsPerCycle: tableFlopsPerCycle(isa), from: "table" };
}

/** Threads a backend's large kernels run on (1 for one without a pool, such as js). */
export function backendThreads(b: Backend): number {
  const t = (b as { threads?: unknown }).threads;
  return typeof t === "number" && t >= 1 ? t : 1;
}

/** The f32 peak of `threads` cores: the native backend's ISA when given one, else the CPU's. */
export function cpuPeak(threads: number, backend?: Backend): CpuPeak {
  const own = (backend as { isa?: unknown } | undefined)?.isa;
  const isa: Isa = own === "avx512" || own === "avx2" || own === "generic" ? own : cpuIsa();
  const clockHz = measureClock();
  const f = flopsPerCycle(isa);
  return {
    clockHz,
    isa,
    flopsPerCycle: f.flopsPerCycle,
    flopsPerCycleFrom: f.from,
    threads,
    flops: clockHz * f.flopsPerCycle * threads,
  };
}
