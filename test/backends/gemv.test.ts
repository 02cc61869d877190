// Tests of the native decode kernels (native/gemv.cc and the few-rows path of native/herd.cc): the f32
// GEMV for a few rows of A stays bit-identical to the tiled GEMM on shapes that cross its groups of 16
// columns, chunk edges and the tail of k; matmulBf16Many equals matmulBf16 on each weight (and the
// js reference within the bf16 tolerance) for decode and prefill row counts; the bandwidth probe measures
// something. Skipped where the addon was not built.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { jsBackend } from "../../src/backends/js/index.js";
import {
  createNativeBackend,
  nativeAvailable,
  nativeMemoryBandwidth,
} from "../../src/backends/native/index.js";
import { encodeHalf } from "../../src/tensor/dtype.js";
import { closeness, matmulArgs, randArray } from "../helpers.js";

const skip = nativeAvailable() ? false : "native addon not built";

describe("native decode kernels", { skip }, () => {
  test("f32, a few rows: bit-identical to the same rows of a large matmul", () => {
    const b = createNativeBackend({ threads: 2 });
    // n = 16·g + s: whole groups of 16 columns and a short last group, over several chunks; k with a
    // tail past the last 16 and past a KC block (256).
    for (const [n, k] of [
      [16 * 9 + 5, 300],
      [16 * 7 + 5, 300],
      [16 * 8, 64],
      [16 * 13 + 15, 529],
      [7, 17],
    ] as const)
      for (const transB of [false, true])
        for (const accumulate of [false, true])
          for (const m of [1, 2, 3, 4]) {
            const A = randArray(24 * k, n + k);
            const B = randArray(n * k, n * k);
            const few = randArray(m * n, m);
            const many = new Float32Array(24 * n);
            many.set(few);
            b.matmul(A.subarray(0, m * k), B, few, matmulArgs(m, n, k, { transB, accumulate }));
            b.matmul(A, B, many, matmulArgs(24, n, k, { transB, accumulate }));
            assert.deepEqual(few, many.subarray(0, m * n), `m=${m} n=${n} k=${k} transB=${transB}`);
          }
    createNativeBackend(); // back to HERD_THREADS for the other tests
  });

  test("matmulBf16Many equals matmulBf16 on each weight and the js reference", () => {
    const b = createNativeBackend();
    for (const m of [1, 3, 6])
      for (const k of [64, 77, 2]) {
        const ns = [33, 8, 1, 130];
        const bits = ns.map((n, q) => encodeHalf(randArray(n * k, 40 + q), "bf16"));
        const A = randArray(m * k, m * k);
        const outs = ns.map((n) => new Float32Array(m * n).fill(Number.NaN));
        b.matmulBf16Many!(A, bits, outs, m, ns, k);
        ns.forEach((n, q) => {
          const one = new Float32Array(m * n);
          b.matmulBf16!(A, bits[q]!, one, m, n, k);
          assert.deepEqual(outs[q], one, `m=${m} k=${k} product ${q}`);
          const want = new Float32Array(m * n);
          jsBackend.matmulBf16!(A, bits[q]!, want, m, n, k);
          const c = closeness(outs[q]!, want, 1e-5, 1e-6 * Math.sqrt(k));
          assert.ok(c <= 1, `m=${m} k=${k} product ${q}: ${c}× the tolerance`);
        });
      }
    assert.throws(
      () => b.matmulBf16Many!(new Float32Array(4), [new Uint16Array(3)], [new Float32Array(1)], 1, [1], 4),
      /too small/,
    );
    assert.throws(
      () => b.matmulBf16Many!(new Float32Array(4), [new Uint16Array(4)], [], 1, [1], 4),
      /equal arrays/,
    );
  });

  test("matmulBf16 on weights at any offset (the kernel reads whole aligned lines and masks off the neighbouring rows)", () => {
    const b = createNativeBackend();
    for (const [m, n, k] of [
      [1, 9, 64],
      [2, 5, 256],
      [1, 3, 96],
    ] as const) {
      const bits = encodeHalf(randArray(n * k, k), "bf16");
      const A = randArray(m * k, m + k);
      const want = new Float32Array(m * n);
      jsBackend.matmulBf16!(A, bits, want, m, n, k);
      for (let offset = 0; offset < 40; offset++) {
        const buf = new Uint16Array(n * k + 40);
        buf.set(bits, offset);
        const got = new Float32Array(m * n);
        b.matmulBf16!(A, buf.subarray(offset, offset + n * k), got, m, n, k);
        const c = closeness(got, want, 1e-5, 1e-6 * Math.sqrt(k));
        assert.ok(c <= 1, `m=${m} n=${n} k=${k} offset ${offset}: ${c}× the tolerance`);
      }
    }
  });

  test("the memory bandwidth probe reports read and copy rates", () => {
    const bw = nativeMemoryBandwidth(8 << 20, 2, 2);
    for (const v of [bw.read, bw.copy]) assert.ok(Number.isFinite(v) && v > 1e8, `${JSON.stringify(bw)}`);
    createNativeBackend();
  });
});
