// The native backend: the C++ kernels of native/herd.cc (a Node addon built by scripts/build-native.mjs
// during `npm ci`), with AVX-512 / AVX2+FMA / portable versions chosen at load by CPUID and one
// persistent thread pool (HERD_THREADS, default: every core). Buffers are plain Float32Arrays that the
// addon reads in place (no copying, no 4 GB ceiling), so alloc() is the js backend's. The addon has
// matmul (packed, cache-blocked SGEMM), matmulBf16 (decode GEMV reading bf16 weights), RMSNorm, SwiGLU,
// softmax and AdamW; every other kernel is the js reference's (src/backends/js/), which the conformance
// suite checks these against.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Backend } from "../backend.js";
import { jsBackend } from "../js/index.js";

type F32 = Float32Array;
interface Addon {
  init(threads: number): string;
  threads(): number;
  matmul(
    a: F32,
    b: F32,
    c: F32,
    batch: number,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
    strideA: number,
    strideB: number,
    strideC: number,
    accumulate: boolean,
  ): void;
  matmulBf16(a: F32, b: Uint16Array, c: F32, m: number, n: number, k: number): void;
  /** native/quant.cc; format 0 = q8_0, 1 = q4_0. */
  matmulQuant(a: F32, blocks: Uint8Array, c: F32, m: number, n: number, k: number, format: number): void;
  rmsNorm(x: F32, w: F32, out: F32, rstd: F32, rows: number, dim: number, eps: number): void;
  rmsNormBackward(
    dy: F32,
    x: F32,
    w: F32,
    rstd: F32,
    dx: F32,
    dw: F32 | null,
    rows: number,
    dim: number,
  ): void;
  swiglu(g: F32, u: F32, out: F32, n: number): void;
  swigluBackward(g: F32, u: F32, dout: F32, dg: F32, du: F32, n: number): void;
  softmax(x: F32, out: F32, rows: number, cols: number): void;
  adamw(
    p: F32,
    g: F32,
    m: F32,
    v: F32,
    n: number,
    lr: number,
    b1: number,
    b2: number,
    eps: number,
    wd: number,
    step: number,
  ): void;
}

/** Path of the built addon (native/build/Release/herd_native.node; it may not exist). */
export function nativeAddonPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("native backend: no package.json above src/backends/native");
    dir = up;
  }
  return join(dir, "native", "build", "Release", "herd_native.node");
}

let addon: Addon | null | undefined;
let loadError = "";

function loadAddon(): Addon | null {
  if (addon !== undefined) return addon;
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
}

function threadsFromEnv(): number {
  const t = Number(process.env.HERD_THREADS ?? 0);
  return Number.isInteger(t) && t > 0 ? t : 0;
}

/**
 * The native backend. `threads` restarts the addon's one pool (it is per process, so the last call
 * wins); without it the pool is started once from HERD_THREADS (default: all cores).
 */
export function createNativeBackend(opts: { threads?: number } = {}): NativeBackend {
  const n = loadAddon();
  if (!n) throw new Error(`native backend: ${loadError}`);
  const isa = n.init(opts.threads ?? threadsFromEnv());
  return {
    ...jsBackend,
    name: "native",
    isa,
    get threads() {
      return n.threads();
    },
    matmul(a, b, c, p) {
      n.matmul(
        a,
        b,
        c,
        p.batch,
        p.m,
        p.n,
        p.k,
        p.transA,
        p.transB,
        p.strideA,
        p.strideB,
        p.strideC,
        p.accumulate,
      );
    },
    matmulBf16(a, bBits, c, m, nn, k) {
      n.matmulBf16(a, bBits, c, m, nn, k);
    },
    matmulQuant(a, blocks, c, m, nn, k, format) {
      n.matmulQuant(a, blocks, c, m, nn, k, format === "q8_0" ? 0 : 1);
    },
    rmsNorm(x, w, out, rstd, rows, dim, eps) {
      n.rmsNorm(x, w, out, rstd, rows, dim, eps);
    },
    rmsNormBackward(dy, x, w, rstd, dx, dw, rows, dim) {
      n.rmsNormBackward(dy, x, w, rstd, dx, dw, rows, dim);
    },
    swiglu(g, u, out, len) {
      n.swiglu(g, u, out, len);
    },
    swigluBackward(g, u, dout, dg, du, len) {
      n.swigluBackward(g, u, dout, dg, du, len);
    },
    softmax(x, out, rows, cols) {
      n.softmax(x, out, rows, cols);
    },
    adamw(param, grad, m, v, len, a) {
      n.adamw(param, grad, m, v, len, a.lr, a.beta1, a.beta2, a.eps, a.weightDecay, a.step);
    },
  };
}
