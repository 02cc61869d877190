// The native backend: the C++ kernels of native/*.cc (a Node addon built by scripts/build-native.mjs
// during `npm ci`), with AVX-512 / AVX2+FMA / portable versions chosen at load by CPUID and one
// persistent thread pool (HERD_THREADS, default: every core). Buffers are Float32Arrays that the addon
// reads in place (no copying, no 4 GB ceiling): large ones over hugepage-backed memory the addon maps,
// small ones plain; alloc() recycles freed ones (recycler below).
// Every kernel of
// the interface is native: herd.cc has matmul (packed, cache-blocked SGEMM), RMSNorm, SwiGLU, softmax and
// AdamW; gemv.cc matmulBf16 (decode GEMV reading bf16 weights) and the bandwidth probe; quant.cc
// matmulQuant (Q8_0/Q4_0; q8dot.cc their int8-activation path on AVX2, kquant.cc the K-quants Q4_K/Q5_K/Q6_K); attention.cc flash attention forward and backward; rows.cc RoPE, embedding,
// cross-entropy and the elementwise kernels; memory.cc the hugepage-backed buffers; graph.cc replays
// recorded kernel calls (compileGraph, ./graph.ts). The js reference
// (src/backends/js/) is what the conformance suite checks them against.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { knob } from "../../core/knobs.js";
import { packageRoot } from "../../core/paths.js";
import type { Backend } from "../backend.js";
import { jsKernels } from "../js/index.js";
import { compileNativeGraph, type GraphAddon } from "./graph.js";

/**
 * The kernels the addon exports with the interface's own arguments (records included), so the backend
 * hands them over as they are: a kernel is declared in the interface (backend.ts) with its js reference,
 * and in C++ with its N-API binding, nowhere else.
 */
const SAME_AS_INTERFACE = [
  "matmul",
  "matmulQuant",
  "rmsNorm",
  "rmsNormBackward",
  "swiglu",
  "swigluBackward",
  "softmax",
  "adamw",
  "attention",
  "attentionBackward",
  "rope",
  "embedding",
  "embeddingBackward",
  "crossEntropy",
  "crossEntropyBackward",
  "add",
  "mul",
  "scale",
  "axpy",
  "sum",
  "sumSquares",
] as const satisfies readonly (keyof Backend)[];
type Kernels = Required<Pick<Backend, (typeof SAME_AS_INTERFACE)[number]>>;

/** The addon: those kernels, and what only the native backend has. */
interface Addon extends GraphAddon, Kernels {
  init(threads: number): string;
  threads(): number;
  /** native/cpu.cc: this core's caches and the SGEMM blocking derived from them. */
  cpuInfo(): NativeCpuInfo;
  /** native/cpu.cc: measured f32 flops per cycle with "avx512" or "avx2" FMAs (0: cannot measure). */
  fmaFlopsPerCycle(isa: string): number;
  /** native/gemv.cc; `packed`: b's interleaved copy (packBf16), read instead of b by the AVX-512 GEMV. */
  matmulBf16(
    a: Float32Array,
    b: Uint16Array,
    c: Float32Array,
    m: number,
    n: number,
    k: number,
    packed?: Uint16Array | null,
  ): void;
  matmulBf16Many(
    a: Float32Array,
    b: Uint16Array[],
    c: Float32Array[],
    m: number,
    n: number[],
    k: number,
    packed?: (Uint16Array | null)[],
  ): void;
  /** native/gemv.cc: out = b (n×k, k a multiple of 32) in the interleaved layout (blocks of 16 rows). */
  packBf16(b: Uint16Array, out: Uint16Array, n: number, k: number): void;
  memoryBandwidth(bytes: number, reps: number, huge: boolean): { read: number; copy: number };
  /** native/memory.cc: `bytes` zeroed bytes, 2 MiB aligned and hugepage-advised; null if unmapped. */
  allocBuffer(bytes: number): ArrayBuffer | null;
  /** native/q8dot.cc: the Q8_0/Q4_0 int8 kernels' activation quantiser (rows padded to blocks of 32). */
  quantizeQ8_0(x: Float32Array, rows: number, k: number, qs: Int8Array, d: Float32Array): void;
  /** Whether matmulQuant takes native/q8dot.cc's int8 path for Q8_0/Q4_0; returns whether it will. */
  setInt8Dot(on: boolean): boolean;
  /** native/kquant.cc: the K-quant kernels' activation quantiser (Q8_K; k a multiple of 256). */
  quantizeQ8K(
    x: Float32Array,
    rows: number,
    k: number,
    qs: Int8Array,
    d: Float32Array,
    bsums: Int16Array,
  ): void;
}

/** Path of the built addon (native/build/Release/herd_native.node; it may not exist). */
export function nativeAddonPath(): string {
  return join(packageRoot(), "native", "build", "Release", "herd_native.node");
}

let addon: Addon | null | undefined;
let loadError = "";

function loadAddon(): Addon | null {
  if (addon !== undefined) return addon;
  // The addon reads these two with getenv when it loads (native/herd.h, native/herd.cc): checked here
  // first, so a bad value is the knobs' one error rather than silently ignored.
  knob("HERD_NATIVE_ISA");
  knob("HERD_GEMM_BLOCKING");
  const path = nativeAddonPath();
  if (!existsSync(path)) {
    loadError = `${path} was not built`;
    addon = null;
    return addon;
  }
  try {
    addon = createRequire(import.meta.url)(path) as Addon;
  } catch (e) {
    loadError = (e as Error).message;
    addon = null;
  }
  return addon;
}

/**
 * Memory bandwidth on the addon's pool, restarted with `threads` (default HERD_THREADS, else every core): the
 * best of `reps` passes over a `bytes`-sized buffer, each thread streaming its own slice, reading only
 * (`read`, what a decode step does to its weights) and copying (`copy`, bytes read + written), in bytes/s.
 * The buffer is on hugepages, as alloc()'s large buffers (the weights) are.
 */
export function nativeMemoryBandwidth(
  bytes: number,
  reps = 5,
  threads?: number,
): { read: number; copy: number } {
  const n = loadAddon();
  if (!n) throw new Error(`native backend: ${loadError}`);
  n.init(threads ?? threadsFromEnv()); // (re)starts the one pool
  return n.memoryBandwidth(bytes, reps, true);
}

/**
 * This core's data caches (bytes; l2 and l3 its share, from sysfs, else CPUID; 0 with cacheSource
 * "none") and the SGEMM's micro-tile (mr×nr) and cache blocks (mc, kc, nc) native/herd.cc derived from
 * them (blockingSource "caches"), or its constants ("default"), or HERD_GEMM_BLOCKING=mc,kc,nc.
 */
export interface NativeCpuInfo {
  l1d: number;
  l2: number;
  l3: number;
  cacheSource: "sysfs" | "cpuid" | "none";
  mr: number;
  nr: number;
  mc: number;
  kc: number;
  nc: number;
  blockingSource: "caches" | "default" | "HERD_GEMM_BLOCKING";
}

/** The addon's cache sizes and GEMM blocking (null where the addon does not load). */
export function nativeCpuInfo(): NativeCpuInfo | null {
  const n = loadAddon();
  return n ? n.cpuInfo() : null;
}

/**
 * f32 flops per cycle of one core with the FMAs of `isa`, measured by native/cpu.cc's probe (a few ms of
 * independent FMA chains timed against dependent integer multiplies); null where the addon does not load
 * or cannot measure that ISA here.
 */
export function nativeFmaFlopsPerCycle(isa: "avx512" | "avx2"): number | null {
  const n = loadAddon();
  if (!n) return null;
  const f = n.fmaFlopsPerCycle(isa);
  return f > 0 ? f : null;
}

/**
 * The native K-quant kernels' activation quantiser on `rows` rows of x (native/kquant.cc quantizeQ8K:
 * per 256 values the scale d, int8 qs and the sums of each 16; src/backends/js/kquant.ts is its
 * reference); null where the addon does not load.
 */
export function nativeQuantizeQ8K(
  x: Float32Array,
  rows: number,
  k: number,
): { d: Float32Array; qs: Int8Array; bsums: Int16Array } | null {
  const n = loadAddon();
  if (!n) return null;
  const out = {
    d: new Float32Array((rows * k) / 256),
    qs: new Int8Array(rows * k),
    bsums: new Int16Array((rows * k) / 16),
  };
  n.quantizeQ8K(x, rows, k, out.qs, out.d, out.bsums);
  return out;
}

/**
 * The Q8_0/Q4_0 int8 kernels' activation quantiser (native/q8dot.cc quantizeQ8_0; src/backends/js/quant.ts
 * quantizeQ8_0 is its reference); null where the addon does not load.
 */
export function nativeQuantizeQ8_0(
  x: Float32Array,
  rows: number,
  k: number,
): { d: Float32Array; qs: Int8Array } | null {
  const n = loadAddon();
  if (!n) return null;
  const nb = Math.ceil(k / 32);
  const out = { d: new Float32Array(rows * nb), qs: new Int8Array(rows * nb * 32) };
  n.quantizeQ8_0(x, rows, k, out.qs, out.d);
  return out;
}

/**
 * Turns native/q8dot.cc's int8 path for Q8_0/Q4_0 matrices on or off for the whole process (the backend
 * sets it from HERD_NATIVE_INT8_DOT; the benchmark flips it to compare), and returns whether
 * matmulQuant now takes it (never on a CPU without AVX2); null where the addon does not load.
 */
export function nativeInt8Dot(on: boolean): boolean | null {
  const n = loadAddon();
  return n ? n.setInt8Dot(on) : null;
}

/** Whether the addon was built and loads here. */
export function nativeAvailable(): boolean {
  return loadAddon() !== null;
}

/** Why the addon is not available ("" when it is). */
export function nativeUnavailableReason(): string {
  loadAddon();
  return loadError;
}

export interface NativeBackend extends Backend {
  /** Threads a large kernel runs on (the calling thread included). */
  readonly threads: number;
  /** The instruction set the kernels were chosen for: avx512 | avx2 | generic. */
  readonly isa: string;
  /** Whether Q8_0/Q4_0 matrices take the int8 path (native/q8dot.cc) as this backend was created. */
  readonly int8Dot: boolean;
}

/**
 * Buffers for alloc()/free(). Arrays of HUGE_BYTES (2 MiB) and more live in the addon's hugepage-backed
 * memory (native/memory.cc: a decode step streams every weight, and 2 MiB pages spare it the TLB misses
 * of 4 KiB ones; bench/RESULTS.md "Model" has the figures), smaller ones are plain Float32Arrays
 * (without THP the addon's memory is on 4 KiB pages; if it cannot be mapped, plain). A freed
 * array of at least MIN_RECYCLE floats is kept by length and handed out again zero-filled, so a
 * training step's activations (the same shapes every step) reuse warm
 * memory instead of fresh pages (a page fault and the kernel's zeroing per 4 KiB, which cost a
 * small-preset step more than its elementwise kernels). At most HERD_NATIVE_CACHE_MB (default 1024)
 * MiB are kept; beyond that freed arrays are left to the garbage collector. HERD_NATIVE_HUGEPAGES=0
 * keeps every buffer a plain Float32Array (for comparison, or where THP compaction stalls hurt).
 */
const MIN_RECYCLE = 4096;
const HUGE_BYTES = 2 * 2 ** 20;
function recycler(addon: Addon) {
  const huge = knob("HERD_NATIVE_HUGEPAGES");
  const cap = knob("HERD_NATIVE_CACHE_MB") * 2 ** 20;
  const spare = new Map<number, Float32Array[]>();
  const owned = new WeakSet<Float32Array>();
  let live = 0;
  let kept = 0;
  return {
    alloc(n: number): Float32Array {
      const list = n >= MIN_RECYCLE ? spare.get(n) : undefined;
      const reused = list?.pop();
      let buf: Float32Array;
      if (reused) {
        kept -= reused.byteLength;
        reused.fill(0);
        buf = reused;
      } else {
        const mapped = huge && n * 4 >= HUGE_BYTES ? addon.allocBuffer(n * 4) : null;
        buf = mapped ? new Float32Array(mapped) : new Float32Array(n);
      }
      owned.add(buf);
      live += buf.byteLength;
      return buf;
    },
    free(buf: Float32Array): void {
      if (!owned.has(buf)) return; // plain arrays, and a second free, are ignored (as the js backend)
      owned.delete(buf);
      live -= buf.byteLength;
      if (buf.length < MIN_RECYCLE || kept + buf.byteLength > cap) return;
      const list = spare.get(buf.length);
      if (list) list.push(buf);
      else spare.set(buf.length, [buf]);
      kept += buf.byteLength;
    },
    liveBytes: () => live,
  };
}

/**
 * Interleaved copies of bf16 matrices for the decode GEMV (native/gemv.cc "The interleaved layout":
 * blocks of 16 rows stored line by line, so each line of x the kernel loads serves 16 lines of weights).
 * A matrix with rows of k ≥ PACK_MIN_K, the first time a decode step (≤ 4 rows of A) multiplies by it on
 * AVX-512, gets one: those rows gain the most, because their x outgrows L1 beside the weight stream
 * (measured: bench/RESULTS.md, Model). The copy
 * lives as long as the weight's array (a WeakMap) and costs its size again: at most HERD_NATIVE_PACK_MB
 * (default 2048) MiB in all (a 1B model's down projections: 536 MB), then the rest stay as they are;
 * HERD_NATIVE_PACK=0 makes none. bf16 weights are read-only to herd (they cannot be trained), so a copy
 * never goes stale.
 */
const PACK_MIN_K = 8192;
function packer(addon: Addon, isa: string) {
  const on = isa === "avx512" && knob("HERD_NATIVE_PACK");
  const cap = knob("HERD_NATIVE_PACK_MB") * 2 ** 20;
  const copies = new WeakMap<Uint16Array, Uint16Array | null>();
  let held = 0;
  const released = new FinalizationRegistry<number>((bytes) => {
    held -= bytes;
  });
  return (b: Uint16Array, n: number, k: number): Uint16Array | null => {
    if (!on || k < PACK_MIN_K || k % 32 !== 0 || b.length !== n * k) return null;
    const known = copies.get(b);
    if (known !== undefined) return known;
    const bytes = n * k * 2;
    const buf = held + bytes <= cap ? addon.allocBuffer(bytes) : null;
    const copy = buf ? new Uint16Array(buf) : null;
    if (copy) {
      addon.packBf16(b, copy, n, k);
      held += bytes;
      released.register(b, bytes);
    }
    copies.set(b, copy);
    return copy;
  };
}

/** HERD_THREADS, or 0: the addon's pool then takes every core. */
function threadsFromEnv(): number {
  return knob("HERD_THREADS") ?? 0;
}

/**
 * The native backend. `threads` restarts the addon's one pool (it is per process, so the last call
 * wins); without it the pool is started once from HERD_THREADS (default: all cores).
 */
export function createNativeBackend(opts: { threads?: number } = {}): NativeBackend {
  const n = loadAddon();
  if (!n) throw new Error(`native backend: ${loadError}`);
  const isa = n.init(opts.threads ?? threadsFromEnv());
  const int8Dot = n.setInt8Dot(knob("HERD_NATIVE_INT8_DOT"));
  const mem = recycler(n);
  const packed = packer(n, isa);
  // The GEMV (≤ 4 rows of A) reads long rows through their interleaved copy; prefill's tiled GEMM the rows.
  const gemvCopy = (m: number, b: Uint16Array, rows: number, k: number) =>
    m <= 4 ? packed(b, rows, k) : null;
  return {
    ...jsKernels,
    ...Object.fromEntries(SAME_AS_INTERFACE.map((k) => [k, n[k]])),
    name: "native",
    supports: ["matmulBf16", "matmulBf16Many", "matmulQuant", "compileGraph"],
    alloc: mem.alloc,
    free: mem.free,
    liveBytes: mem.liveBytes,
    isa,
    int8Dot,
    get threads() {
      return n.threads();
    },
    matmulBf16(a, bBits, c, m, nn, k) {
      n.matmulBf16(a, bBits, c, m, nn, k, gemvCopy(m, bBits, nn, k));
    },
    matmulBf16Many(a, bBits, c, m, ns, k) {
      const p = bBits.map((b, q) => gemvCopy(m, b, ns[q]!, k));
      n.matmulBf16Many(a, bBits as Uint16Array[], c as Float32Array[], m, ns as number[], k, p);
    },
    compileGraph(calls) {
      return compileNativeGraph(n, calls, gemvCopy);
    },
  };
}
