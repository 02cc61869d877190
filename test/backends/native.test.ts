// Tests of the native backend's own behaviour (the kernels' results are the conformance suite's):
// argument checks that keep the addon from reading out of bounds, matmul shapes that cross the
// micro-kernel, cache-block and thread-tile edges, every ISA path (forced in a child process with
// HERD_NATIVE_ISA), the thread pool's restarts, and bf16 rows read in place. Skipped where the addon
// was not built (no compiler): herd then runs on wasm.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import type { MatmulArgs } from "../../src/backends/backend.js";
import { matmul as refMatmul } from "../../src/backends/js/index.js";
import { createNativeBackend, nativeAvailable } from "../../src/backends/native/index.js";
import { closeness, randArray, repoPath } from "../helpers.js";

const skip = nativeAvailable() ? false : "native addon not built";

function args(m: number, n: number, k: number, over: Partial<MatmulArgs> = {}): MatmulArgs {
  return {
    batch: 1,
    m,
    n,
    k,
    transA: false,
    transB: false,
    strideA: 0,
    strideB: 0,
    strideC: 0,
    accumulate: false,
    ...over,
  };
}

describe("native backend", { skip }, () => {
  test("rejects wrong types and buffers too small for the shape instead of reading past them", () => {
    const b = createNativeBackend();
    const a = new Float32Array(6);
    const c = new Float32Array(4);
    assert.throws(() => b.matmul(a, new Float32Array(5), c, args(2, 2, 3)), /too small/);
    assert.throws(() => b.matmul(a, new Float32Array(6), new Float32Array(3), args(2, 2, 3)), /too small/);
    assert.throws(
      () => b.matmul(a, new Float32Array(6), c, args(2, 2, 3, { batch: 2, strideA: 6, strideC: 4 })),
      /too small/,
    );
    assert.throws(
      () => b.matmul(new Float64Array(6) as unknown as Float32Array, a, c, args(2, 2, 3)),
      /type/,
    );
    assert.throws(() => b.softmax(new Float32Array(5), new Float32Array(6), 2, 3), /too small/);
    assert.throws(() => b.matmulBf16?.(a, new Uint16Array(5), c, 2, 2, 3), /too small/);
  });

  test("matmul across block and tile edges, all transposes, on 1 and 3 threads", () => {
    // 200 > MC (192 rows on AVX-512), 530 > NC (512), 300 > KC (256): partial blocks everywhere.
    const [m, n, k] = [200, 530, 300];
    const A = randArray(m * k, 11);
    const B = randArray(k * n, 12);
    const C0 = randArray(m * n, 13);
    for (const threads of [1, 3]) {
      const b = createNativeBackend({ threads });
      assert.equal(b.threads, threads);
      for (const transA of [false, true])
        for (const transB of [false, true]) {
          const p = args(m, n, k, { transA, transB, accumulate: true });
          const got = C0.slice();
          const want = C0.slice();
          b.matmul(A, B, got, p);
          refMatmul(A, B, want, p);
          const c = closeness(got, want, 1e-4, 1e-5 * Math.sqrt(k));
          assert.ok(c <= 1, `threads=${threads} transA=${transA} transB=${transB}: ${c}× tolerance`);
        }
    }
    createNativeBackend(); // back to HERD_THREADS / all cores for the other tests
  });

  test("every ISA path (generic, avx2, the CPU's best) agrees with the reference", () => {
    const script = `
      const { createNativeBackend } = await import(${JSON.stringify(repoPath("dist", "src", "backends", "native", "index.js"))});
      const { matmul, jsBackend } = await import(${JSON.stringify(repoPath("dist", "src", "backends", "js", "index.js"))});
      const b = createNativeBackend({ threads: 2 });
      const r = (n, s) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + s));
      const [m, n, k] = [37, 45, 70];
      const A = r(m * k, 1), B = r(k * n, 2);
      let worst = 0;
      for (const transB of [false, true]) {
        const p = { batch: 1, m, n, k, transA: false, transB, strideA: 0, strideB: 0, strideC: 0, accumulate: false };
        const got = new Float32Array(m * n), want = new Float32Array(m * n);
        b.matmul(A, B, got, p); matmul(A, B, want, p);
        for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
      }
      const bits = Uint16Array.from(r(n * k, 3), (x) => new Uint32Array(new Float32Array([x]).buffer)[0] >>> 16);
      const g = new Float32Array(3 * n), w = new Float32Array(3 * n);
      b.matmulBf16(A.subarray(0, 3 * k), bits, g, 3, n, k); jsBackend.matmulBf16(A.subarray(0, 3 * k), bits, w, 3, n, k);
      for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(g[i] - w[i]));
      console.log(JSON.stringify({ isa: b.isa, worst }));
    `;
    const seen = new Set<string>();
    for (const isa of ["generic", "avx2", "best"]) {
      const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
        env: { ...process.env, HERD_NATIVE_ISA: isa },
        encoding: "utf8",
      });
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { isa: string; worst: number };
      assert.ok(out.worst < 1e-4, `${out.isa}: worst error ${out.worst}`);
      seen.add(out.isa);
    }
    assert.ok(seen.has("generic"), "HERD_NATIVE_ISA=generic selects the portable kernels");
  });

  test("a few rows (the decode path) are bit-identical to the same rows of a large matmul", () => {
    const b = createNativeBackend();
    const [n, k] = [300, 530];
    for (const transB of [false, true])
      for (const m of [1, 2, 4]) {
        const A = randArray(40 * k, 21);
        const B = randArray(n * k, 22);
        const few = randArray(m * n, 23);
        const many = new Float32Array(40 * n);
        many.set(few);
        b.matmul(A.subarray(0, m * k), B, few, args(m, n, k, { transB, accumulate: true }));
        b.matmul(A, B, many, args(40, n, k, { transB, accumulate: true }));
        assert.deepEqual(few, many.subarray(0, m * n), `m=${m} transB=${transB}`);
      }
  });

  test("matmulBf16 reads bf16 rows at an odd element offset", () => {
    const b = createNativeBackend();
    const [m, n, k] = [2, 9, 33];
    const bits = new Uint16Array(n * k + 1);
    const f = randArray(n * k, 5);
    const u = new Uint32Array(f.buffer);
    for (let i = 0; i < n * k; i++) bits[i + 1] = u[i]! >>> 16;
    const A = randArray(m * k, 6);
    const got = new Float32Array(m * n);
    const want = new Float32Array(m * n);
    b.matmulBf16?.(A, bits.subarray(1), got, m, n, k);
    const widened = Float32Array.from(
      bits.subarray(1),
      (h) => new Float32Array(new Uint32Array([h << 16]).buffer)[0]!,
    );
    refMatmul(A, widened, want, args(m, n, k, { transB: true }));
    assert.ok(closeness(got, want, 1e-5, 1e-5) <= 1);
  });
});
