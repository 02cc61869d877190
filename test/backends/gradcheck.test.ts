// Finite-difference gradient checks in f64 on the js reference kernels: each backward kernel against
// central differences of its forward kernel, for a random projection L = Σ r ⊙ f(x).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  matmul,
  rmsNorm,
  rmsNormBackward,
  rope,
  swiglu,
  swigluBackward,
} from "../../src/backends/js/index.js";
import { rng } from "../helpers.js";

function rand64(n: number, seed: number, scale = 1): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

/** Central differences of L(x) = Σ r·f(x) with respect to every element of x. */
function numericGrad(x: Float64Array, loss: () => number, h = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const keep = x[i]!;
    x[i] = keep + h;
    const up = loss();
    x[i] = keep - h;
    const down = loss();
    x[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function assertGrad(name: string, got: Float64Array, want: Float64Array): void {
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i]! - want[i]!) / (1e-6 + Math.abs(want[i]!));
    assert.ok(err < 1e-5, `${name}[${i}]: analytic ${got[i]} vs numeric ${want[i]}`);
  }
}

test("matmul gradients (all transposes) by finite differences", () => {
  const [m, n, k] = [3, 4, 5];
  for (const transA of [false, true])
    for (const transB of [false, true]) {
      const A = rand64(m * k, 1);
      const B = rand64(k * n, 2);
      const R = rand64(m * n, 3);
      const p = { batch: 1, m, n, k, transA, transB, strideA: 0, strideB: 0, strideC: 0, accumulate: false };
      const loss = () => {
        const C = new Float64Array(m * n);
        matmul(A, B, C, p);
        return dot(C, R);
      };
      // dA = R·op(B)ᵀ in A's stored layout; dB = op(A)ᵀ·R in B's stored layout.
      const dA = new Float64Array(m * k);
      if (!transA) matmul(R, B, dA, { ...p, m, n: k, k: n, transA: false, transB: !transB });
      else matmul(B, R, dA, { ...p, m: k, n: m, k: n, transA: transB, transB: true });
      const dB = new Float64Array(k * n);
      if (!transB) matmul(A, R, dB, { ...p, m: k, n, k: m, transA: !transA, transB: false });
      else matmul(R, A, dB, { ...p, m: n, n: k, k: m, transA: true, transB: transA });
      assertGrad(`matmul dA transA=${transA} transB=${transB}`, dA, numericGrad(A, loss));
      assertGrad(`matmul dB transA=${transA} transB=${transB}`, dB, numericGrad(B, loss));
    }
});

test("rmsNorm gradients by finite differences", () => {
  const [rows, dim, eps] = [3, 6, 1e-5];
  const x = rand64(rows * dim, 4, 2);
  const w = rand64(dim, 5);
  const R = rand64(rows * dim, 6);
  const loss = () => {
    const out = new Float64Array(rows * dim);
    rmsNorm(x, w, out, new Float64Array(rows), rows, dim, eps);
    return dot(out, R);
  };
  const rstd = new Float64Array(rows);
  rmsNorm(x, w, new Float64Array(rows * dim), rstd, rows, dim, eps);
  const dx = new Float64Array(rows * dim);
  const dw = new Float64Array(dim);
  rmsNormBackward(R, x, w, rstd, dx, dw, rows, dim);
  assertGrad("rmsNorm dx", dx, numericGrad(x, loss));
  assertGrad("rmsNorm dw", dw, numericGrad(w, loss));
});

test("rope backward (the inverse rotation) by finite differences", () => {
  const [tokens, heads, hd] = [3, 2, 8];
  const x = rand64(tokens * heads * hd, 7);
  const R = rand64(x.length, 8);
  const positions = Int32Array.from([0, 5, 1000]);
  const invFreq = Float64Array.from({ length: hd / 2 }, (_, i) => 500000 ** (-(2 * i) / hd));
  const loss = () => {
    const out = new Float64Array(x.length);
    rope(x, out, positions, invFreq, tokens, heads, hd, false);
    return dot(out, R);
  };
  const dx = new Float64Array(x.length);
  rope(R, dx, positions, invFreq, tokens, heads, hd, true);
  assertGrad("rope dx", dx, numericGrad(x, loss));
});

test("swiglu gradients by finite differences", () => {
  const n = 9;
  const g = rand64(n, 9, 4);
  const u = rand64(n, 10);
  const R = rand64(n, 11);
  const loss = () => {
    const out = new Float64Array(n);
    swiglu(g, u, out, n);
    return dot(out, R);
  };
  const dg = new Float64Array(n);
  const du = new Float64Array(n);
  swigluBackward(g, u, R, dg, du, n);
  assertGrad("swiglu dgate", dg, numericGrad(g, loss));
  assertGrad("swiglu dup", du, numericGrad(u, loss));
});
