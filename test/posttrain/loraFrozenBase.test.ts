// The input gradient through a frozen bf16 or Q8_0/Q4_0 matrix (what LoRA on such a base needs): the
// kernels matmulBf16Grad / matmulQuantGrad, each backend's own or its fallback, equal dY·W computed in
// f32 on the widened / dequantised weight — over several blocks of rows, with and without accumulation,
// and at an odd offset into the bits — and `linear` records exactly that gradient for a grad-requiring
// input while the weight gets none.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { Backend } from "../../src/backends/backend.js";
import { kernelOf } from "../../src/backends/fallbacks.js";
import { backendByName, backendNames, getBackend, setBackend } from "../../src/backends/index.js";
import { jsBackend } from "../../src/backends/js/index.js";
import {
  backward,
  decodeHalf,
  dequantize,
  encodeHalf,
  fromArray,
  fromHalfBits,
  linear,
  mul,
  type QuantFormat,
  quantize,
  scope,
  sum,
} from "../../src/tensor/index.js";
import { closeness, matmulArgs, randArray } from "../helpers.js";

const initial = getBackend();
after(() => setBackend(initial));

/** dX = dY (m×n) · W (n×k) in f32 by the js reference matmul. */
function reference(dy: Float32Array, w: Float32Array, m: number, n: number, k: number): Float32Array {
  const out = new Float32Array(m * k);
  jsBackend.matmul(dy, w, out, matmulArgs(m, k, n));
  return out;
}

// k = 3001: 21 rows per block in the js reference, 349 in the fallback; n = 700 spans several of each.
const shapes: [number, number, number][] = [
  [1, 1, 1],
  [3, 9, 5],
  [4, 700, 3001],
  [2, 33, 64],
];

/** The backend (its own kernels, or the fallbacks), and the fallbacks over its matmul where it has its own. */
function variants(name: string): [string, Backend][] {
  const b = backendByName(name);
  const own = b.supports.includes("matmulBf16Grad") || b.supports.includes("matmulQuantGrad");
  return own
    ? [
        [name, b],
        [`${name} fallback`, { ...b, supports: [] } as Backend],
      ]
    : [[name, b]];
}

for (const name of backendNames())
  for (const [label, b] of variants(name)) {
    test(`matmulBf16Grad equals dY·W on the widened weights (${label})`, () => {
      const grad = kernelOf(b, "matmulBf16Grad");
      let seed = 40;
      for (const [m, n, k] of shapes) {
        const bits = encodeHalf(randArray(n * k, seed++), "bf16");
        const dy = randArray(m * n, seed++);
        const want = reference(dy, decodeHalf(bits, "bf16"), m, n, k);
        const tol = 2e-6 * Math.sqrt(n);
        const dx = randArray(m * k, seed++); // overwritten
        grad(dy, bits, dx, m, n, k, false);
        assert.ok(closeness(dx, want, 1e-5, tol) <= 1, `${label} m=${m} n=${n} k=${k}`);
        const start = randArray(m * k, seed++);
        const acc = Float32Array.from(start);
        grad(dy, bits, acc, m, n, k, true);
        const wantAcc = Float32Array.from(want, (v, i) => v + start[i]!);
        assert.ok(closeness(acc, wantAcc, 1e-5, tol) <= 1, `${label} accumulate m=${m} n=${n} k=${k}`);
        const shifted = new Uint16Array(n * k + 1);
        shifted.set(bits, 1);
        const dx2 = new Float32Array(m * k);
        grad(dy, shifted.subarray(1), dx2, m, n, k, false);
        assert.ok(closeness(dx2, want, 1e-5, tol) <= 1, `${label} unaligned m=${m} n=${n} k=${k}`);
      }
      assert.throws(
        () => grad(new Float32Array(2), new Uint16Array(3), new Float32Array(2), 1, 2, 2, false),
        /too small/,
      );
    });

    test(`matmulQuantGrad equals dY·W on the dequantised weights (${label})`, () => {
      const grad = kernelOf(b, "matmulQuantGrad");
      let seed = 70;
      for (const format of ["q8_0", "q4_0"] as QuantFormat[])
        for (const [m, n, k] of shapes) {
          const q = quantize(fromArray(randArray(n * k, seed++), [n, k]), format);
          const w = dequantize(q);
          const dy = randArray(m * n, seed++);
          const want = reference(dy, w.data, m, n, k);
          const tol = 2e-6 * Math.sqrt(n);
          const dx = randArray(m * k, seed++);
          grad(dy, q.blocks, dx, m, n, k, format, false);
          assert.ok(closeness(dx, want, 1e-5, tol) <= 1, `${label} ${format} m=${m} n=${n} k=${k}`);
          const start = randArray(m * k, seed++);
          const acc = Float32Array.from(start);
          grad(dy, q.blocks, acc, m, n, k, format, true);
          const wantAcc = Float32Array.from(want, (v, i) => v + start[i]!);
          assert.ok(closeness(acc, wantAcc, 1e-5, tol) <= 1, `${label} ${format} accumulate`);
          w.dispose();
        }
    });
  }

for (const name of backendNames())
  test(`linear through a frozen bf16 / Q8_0 / Q4_0 weight: x gets dY·W, the weight nothing (${name})`, () => {
    setBackend(name);
    const [m, n, k] = [6, 40, 96];
    const W = randArray(n * k, 1);
    const X = randArray(m * k, 2);
    const R = randArray(m * n, 3);
    const gradOf = (w: Parameters<typeof linear>[1]) =>
      scope(() => {
        const x = fromArray(X, [2, 3, k]);
        x.requiresGrad = true;
        backward(sum(mul(linear(x, w), fromArray(R, [2, 3, n]))));
        assert.deepEqual(x.grad!.shape, [2, 3, k]);
        return Float32Array.from(x.grad!.data);
      });
    const bf16 = fromHalfBits(encodeHalf(W, "bf16"), [n, k], "bf16");
    const gotBf16 = gradOf(bf16);
    assert.ok(closeness(gotBf16, reference(R, decodeHalf(bf16.halfBits, "bf16"), m, n, k), 1e-5, 1e-5) <= 1);
    assert.equal(bf16.grad, null, "no gradient for the frozen bf16 weight");
    for (const format of ["q8_0", "q4_0"] as QuantFormat[]) {
      const q = quantize(fromArray(W, [n, k]), format);
      const wide = dequantize(q);
      assert.ok(closeness(gradOf(q), reference(R, wide.data, m, n, k), 1e-5, 1e-5) <= 1, `${name} ${format}`);
      wide.dispose();
    }
    bf16.dispose();
  });
