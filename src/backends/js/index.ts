// The reference backend: every kernel in plain TypeScript, written to be read and checked against the
// paper's formulas, not to be fast. Other backends are tested against this one (the conformance suite).
// `jsKernels` (every required kernel) is what another backend starts from and overrides; the optional
// kernels are the js backend's own, and another backend without its own gets them through fallbacks.ts.
// Kernels accept Float64Array too, so tests can check gradients by finite differences in f64.
import type { AdamWArgs, Backend, MatmulArgs, OptionalKernel } from "../backend.js";
import { attention, attentionBackward } from "./attention.js";
import { matmulBf16, matmulBf16Grad } from "./bf16.js";
import { crossEntropy, crossEntropyBackward } from "./crossEntropy.js";
import { matmulQuant, matmulQuantGrad } from "./quant.js";

type Buf = Float32Array | Float64Array;

/** C[b] (+)= op(A[b]) · op(B[b]), accumulating each row in f64. */
export function matmul(a: Buf, b: Buf, c: Buf, p: MatmulArgs): void {
  const { m, n, k } = p;
  const row = new Float64Array(n);
  for (let bi = 0; bi < p.batch; bi++) {
    const ao = bi * p.strideA;
    const bo = bi * p.strideB;
    const co = bi * p.strideC;
    for (let i = 0; i < m; i++) {
      row.fill(0);
      for (let kk = 0; kk < k; kk++) {
        const aik = p.transA ? a[ao + kk * m + i]! : a[ao + i * k + kk]!;
        if (aik === 0) continue;
        if (p.transB) for (let j = 0; j < n; j++) row[j]! += aik * b[bo + j * k + kk]!;
        else {
          const bk = bo + kk * n;
          for (let j = 0; j < n; j++) row[j]! += aik * b[bk + j]!;
        }
      }
      const ci = co + i * n;
      if (p.accumulate) for (let j = 0; j < n; j++) c[ci + j]! += row[j]!;
      else for (let j = 0; j < n; j++) c[ci + j] = row[j]!;
    }
  }
}

export function rmsNorm(x: Buf, w: Buf, out: Buf, rstd: Buf, rows: number, dim: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[o + i]! * x[o + i]!;
    const s = 1 / Math.sqrt(ss / dim + eps);
    rstd[r] = s;
    for (let i = 0; i < dim; i++) out[o + i] = x[o + i]! * s * w[i]!;
  }
}

// y = x·s·w with s = (mean(x²)+eps)^-½.  dy/dx: dx_i = s·(w_i·dy_i) − s³/dim · x_i · Σ_j (w_j·dy_j·x_j).
export function rmsNormBackward(
  dy: Buf,
  x: Buf,
  w: Buf,
  rstd: Buf,
  dx: Buf,
  dw: Buf | null,
  rows: number,
  dim: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    const s = rstd[r]!;
    let dot = 0;
    for (let i = 0; i < dim; i++) dot += w[i]! * dy[o + i]! * x[o + i]!;
    const c = (s * s * s * dot) / dim;
    for (let i = 0; i < dim; i++) {
      dx[o + i] = s * w[i]! * dy[o + i]! - c * x[o + i]!;
      if (dw) dw[i]! += dy[o + i]! * x[o + i]! * s;
    }
  }
}

export function rope(
  x: Buf,
  out: Buf,
  positions: Int32Array,
  invFreq: Buf,
  tokens: number,
  heads: number,
  headDim: number,
  inverse: boolean,
): void {
  const half = headDim / 2;
  const cos = new Float64Array(half);
  const sin = new Float64Array(half);
  for (let t = 0; t < tokens; t++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(positions[t]! * invFreq[i]!); // f32 product, as the reference computes it
      cos[i] = Math.fround(Math.cos(angle));
      sin[i] = Math.fround(inverse ? -Math.sin(angle) : Math.sin(angle));
    }
    for (let h = 0; h < heads; h++) {
      const o = (t * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const a = x[o + i]!;
        const b = x[o + i + half]!;
        out[o + i] = a * cos[i]! - b * sin[i]!;
        out[o + i + half] = b * cos[i]! + a * sin[i]!;
      }
    }
  }
}

const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

export function swiglu(gate: Buf, up: Buf, out: Buf, n: number): void {
  for (let i = 0; i < n; i++) out[i] = gate[i]! * sigmoid(gate[i]!) * up[i]!;
}

// d/dg [g·σ(g)] = σ(g)·(1 + g·(1 − σ(g))).
export function swigluBackward(gate: Buf, up: Buf, dout: Buf, dgate: Buf, dup: Buf, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i]!;
    const s = sigmoid(g);
    dup[i] = dout[i]! * g * s;
    dgate[i] = dout[i]! * up[i]! * s * (1 + g * (1 - s));
  }
}

export function softmax(x: Buf, out: Buf, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < cols; i++) if (x[o + i]! > max) max = x[o + i]!;
    let sum = 0;
    for (let i = 0; i < cols; i++) {
      const e = Math.exp(x[o + i]! - max);
      out[o + i] = e;
      sum += e;
    }
    for (let i = 0; i < cols; i++) out[o + i]! /= sum;
  }
}

export function embedding(table: Buf, ids: Int32Array, out: Buf, rows: number, dim: number): void {
  for (let r = 0; r < rows; r++) {
    const src = ids[r]! * dim;
    for (let i = 0; i < dim; i++) out[r * dim + i] = table[src + i]!;
  }
}

export function embeddingBackward(dout: Buf, ids: Int32Array, dtable: Buf, rows: number, dim: number): void {
  for (let r = 0; r < rows; r++) {
    const dst = ids[r]! * dim;
    for (let i = 0; i < dim; i++) dtable[dst + i]! += dout[r * dim + i]!;
  }
}

// PyTorch AdamW: p −= lr·wd·p; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
// p −= lr · (m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + eps).
export function adamw(param: Buf, grad: Buf, m: Buf, v: Buf, n: number, a: AdamWArgs): void {
  const bc1 = 1 - a.beta1 ** a.step;
  const bc2 = 1 - a.beta2 ** a.step;
  const decay = 1 - a.lr * a.weightDecay;
  for (let i = 0; i < n; i++) {
    const g = grad[i]!;
    m[i] = a.beta1 * m[i]! + (1 - a.beta1) * g;
    v[i] = a.beta2 * v[i]! + (1 - a.beta2) * g * g;
    param[i] = param[i]! * decay - (a.lr * (m[i]! / bc1)) / (Math.sqrt(v[i]! / bc2) + a.eps);
  }
}

let live = 0;
const owned = new WeakMap<Float32Array, number>();

/** Every required kernel, in plain TypeScript: the base other backends override. */
export const jsKernels: Omit<Backend, "name" | "supports" | OptionalKernel> = {
  alloc(n) {
    const buf = new Float32Array(n);
    owned.set(buf, buf.byteLength);
    live += buf.byteLength;
    return buf;
  },
  free(buf) {
    const bytes = owned.get(buf);
    if (bytes === undefined) return;
    owned.delete(buf);
    live -= bytes;
  },
  liveBytes: () => live,
  matmul,
  copy(src, srcOffset, dst, dstOffset, n) {
    if (!(srcOffset >= 0 && dstOffset >= 0 && srcOffset + n <= src.length && dstOffset + n <= dst.length))
      throw new Error(
        `copy: ${n} elements from ${srcOffset} of ${src.length} to ${dstOffset} of ${dst.length} is out of bounds`,
      );
    dst.set(src.subarray(srcOffset, srcOffset + n), dstOffset);
  },
  add(a, b, out, n) {
    for (let i = 0; i < n; i++) out[i] = a[i]! + b[i]!;
  },
  mul(a, b, out, n) {
    for (let i = 0; i < n; i++) out[i] = a[i]! * b[i]!;
  },
  scale(a, s, out, n) {
    for (let i = 0; i < n; i++) out[i] = a[i]! * s;
  },
  axpy(acc, a, s, n) {
    for (let i = 0; i < n; i++) acc[i]! += a[i]! * s;
  },
  sum(a, n) {
    let s = 0;
    for (let i = 0; i < n; i++) s += a[i]!;
    return s;
  },
  sumSquares(a, n) {
    let s = 0;
    for (let i = 0; i < n; i++) s += a[i]! * a[i]!;
    return s;
  },
  rmsNorm,
  rmsNormBackward,
  rope,
  swiglu,
  swigluBackward,
  softmax,
  attention,
  attentionBackward,
  embedding,
  embeddingBackward,
  crossEntropy,
  crossEntropyBackward,
  adamw,
};

export const jsBackend: Backend = {
  ...jsKernels,
  name: "js",
  supports: ["matmulBf16", "matmulQuant", "matmulBf16Grad", "matmulQuantGrad"],
  matmulBf16,
  matmulQuant,
  matmulBf16Grad,
  matmulQuantGrad,
};
