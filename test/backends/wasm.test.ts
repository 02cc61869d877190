// Tests specific to the wasm backend (the shared conformance suite checks its kernels against js):
// the allocator (reuse, zeroing, growth, liveBytes, foreign and double frees), foreign-buffer staging,
// the packed GEMM against a naive f64 triple loop on shapes that straddle every blocking edge,
// matmulBf16 with weights inside and outside the wasm memory, attention over several tiles with KV
// caches and masked rows, the same results from 1 and 2 threads, and errors in worker threads
// surfacing on the caller.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import type { AttentionArgs, MatmulArgs } from "../../src/backends/backend.js";
import { jsBackend } from "../../src/backends/js/index.js";
import { createWasmBackend } from "../../src/backends/wasm/index.js";
import { instantiate, kernelModule, sharedMemory } from "../../src/backends/wasm/kernels.js";
import { createPool } from "../../src/backends/wasm/pool.js";
import { reloadKnobs } from "../../src/core/knobs.js";
import { closeness, randArray } from "../helpers.js";

const one = createWasmBackend({ threads: 1 });
const two = createWasmBackend({ threads: 2 });
after(() => {
  one.dispose();
  two.dispose();
});

function own(b: typeof one, src: Float32Array): Float32Array {
  const buf = b.alloc(src.length);
  buf.set(src);
  return buf;
}

/** C (+)= op(A)·op(B), the textbook triple loop in f64. */
function naiveMatmul(a: Float32Array, b: Float32Array, c: Float32Array, p: MatmulArgs): void {
  for (let bi = 0; bi < p.batch; bi++)
    for (let i = 0; i < p.m; i++)
      for (let j = 0; j < p.n; j++) {
        let s = 0;
        for (let q = 0; q < p.k; q++) {
          const aiq = p.transA ? a[bi * p.strideA + q * p.m + i]! : a[bi * p.strideA + i * p.k + q]!;
          const bqj = p.transB ? b[bi * p.strideB + j * p.k + q]! : b[bi * p.strideB + q * p.n + j]!;
          s += aiq * bqj;
        }
        const ci = bi * p.strideC + i * p.n + j;
        c[ci] = (p.accumulate ? c[ci]! : 0) + s;
      }
}

function args(batch: number, m: number, n: number, k: number, o: Partial<MatmulArgs> = {}): MatmulArgs {
  return {
    batch,
    m,
    n,
    k,
    transA: false,
    transB: false,
    accumulate: false,
    strideA: m * k,
    strideB: k * n,
    strideC: m * n,
    ...o,
  };
}

describe("wasm allocator", () => {
  test("alloc gives zeroed views of the shared memory; free makes the range reusable and zeroed again", () => {
    const base = one.liveBytes();
    const a = one.alloc(1000);
    assert.ok(a.buffer instanceof SharedArrayBuffer);
    assert.equal(a.byteOffset % 64, 0);
    assert.equal(one.liveBytes(), base + 4000);
    a.fill(7);
    const offset = a.byteOffset;
    one.free(a);
    assert.equal(one.liveBytes(), base);
    const b = one.alloc(1000);
    assert.equal(b.byteOffset, offset, "first fit reuses the freed range");
    assert.ok(
      b.every((x) => x === 0),
      "a reused range is zero-filled",
    );
    one.free(b);
  });

  test("neighbouring free ranges merge, so a larger request fits where two smaller ones were", () => {
    const x = one.alloc(256);
    const y = one.alloc(256);
    const z = one.alloc(16);
    const at = x.byteOffset;
    one.free(y);
    one.free(x);
    const big = one.alloc(512);
    assert.equal(big.byteOffset, at);
    one.free(big);
    one.free(z);
  });

  test("the memory grows on demand and earlier views keep their contents", () => {
    const b = createWasmBackend({ threads: 1 });
    const small = b.alloc(16);
    small.set([1, 2, 3]);
    const before = b.memoryBytes();
    const huge = b.alloc(before / 4 + 1000); // more than the whole memory
    assert.ok(b.memoryBytes() > before, "memory grew");
    assert.deepEqual([...small.subarray(0, 3)], [1, 2, 3]);
    huge[huge.length - 1] = 5;
    // Kernels see both the old and the new ranges.
    const out = b.alloc(16);
    b.add(small, huge.subarray(huge.length - 16), out, 16);
    assert.equal(out[15], 5);
    assert.equal(out[0], 1);
    b.free(huge);
    b.free(small);
    b.free(out);
    assert.equal(b.liveBytes(), 0);
    b.dispose();
  });

  test("free ignores foreign arrays and sub-views, and rejects a second free", () => {
    const base = one.liveBytes();
    one.free(new Float32Array(8));
    const a = one.alloc(8);
    one.free(a.subarray(2));
    assert.equal(one.liveBytes(), base + 32);
    one.free(a);
    assert.throws(() => one.free(a), /freed twice/);
    assert.equal(one.liveBytes(), base);
    assert.equal(one.alloc(0).length, 0);
  });
});

describe("wasm kernels on foreign and mixed buffers", () => {
  test("plain arrays are staged in and out; in-place ops work; liveBytes does not move", () => {
    const base = one.liveBytes();
    const x = randArray(1001, 3);
    const y = randArray(1001, 4);
    const want = new Float32Array(1001);
    jsBackend.add(x, y, want, 1001);
    const got = new Float32Array(1001);
    const yOwned = own(one, y);
    one.add(x, yOwned, got, 1001); // one foreign input, one owned
    assert.deepEqual(got, want);
    const inPlace = x.slice();
    one.scale(inPlace, 3, inPlace, 1001);
    jsBackend.scale(x, 3, want, 1001);
    assert.deepEqual(inPlace, want);
    assert.equal(one.liveBytes(), base + 4004); // only the owned copy of y
    one.free(yOwned);
  });
});

describe("wasm sgemm against a naive triple loop", () => {
  // Shapes straddling the micro-tile (4×8), the blocks (MC 128, KC 256, NC 2048) and the gemv paths.
  const shapes: [number, number, number, number][] = [
    [1, 1, 1, 1],
    [1, 2, 2, 2],
    [1, 4, 8, 256],
    [1, 5, 9, 257],
    [1, 129, 3, 300],
    [1, 3, 2049, 5],
    [2, 13, 17, 1],
    [3, 7, 1, 33],
    [4, 1, 37, 19],
    [1, 3, 5, 0],
  ];
  for (const [batch, m, n, k] of shapes) {
    test(`batch ${batch}, ${m}×${n}×${k}: transposes, broadcasts, accumulate, owned and plain buffers`, () => {
      let seed = 100;
      const bcasts =
        batch > 1
          ? [
              [false, false],
              [true, false],
              [false, true],
            ]
          : [[false, false]];
      for (const transA of [false, true])
        for (const transB of [false, true])
          for (const [ba, bb] of bcasts)
            for (const accumulate of [false, true]) {
              const p = args(batch, m, n, k, {
                transA,
                transB,
                accumulate,
                strideA: ba ? 0 : m * k,
                strideB: bb ? 0 : k * n,
              });
              const A = randArray((ba ? 1 : batch) * m * k, seed++);
              const B = randArray((bb ? 1 : batch) * k * n, seed++);
              const C0 = randArray(batch * m * n, seed++);
              const want = C0.slice();
              naiveMatmul(A, B, want, p);
              const tol = 1e-6 * Math.sqrt(k + 1);
              for (const owned of [true, false]) {
                const a = owned ? own(one, A) : A;
                const b = owned ? own(one, B) : B;
                const c = owned ? own(one, C0) : C0.slice();
                one.matmul(a, b, c, p);
                const err = closeness(c, want, 1e-5, tol);
                assert.ok(err <= 1, `${JSON.stringify(p)} owned=${owned}: ${err.toFixed(2)}× tolerance`);
                if (owned) for (const x of [a, b, c]) one.free(x);
              }
            }
    });
  }
});

describe("1 and 2 threads give identical results", () => {
  function both(run: (b: typeof one) => Float32Array[]): void {
    const r1 = run(one);
    const r2 = run(two);
    for (let i = 0; i < r1.length; i++) assert.deepEqual(r2[i], r1[i], `output ${i}`);
  }

  for (const [batch, m, n, k, transB] of [
    [1, 200, 300, 150, false],
    [1, 300, 37, 290, true],
    [3, 64, 64, 64, false],
    [4, 64, 48, 80, true],
    [1, 1, 5000, 300, true],
    [1, 1, 5000, 300, false],
    [2, 3000, 1, 200, false],
  ] as [number, number, number, number, boolean][]) {
    test(`matmul batch ${batch}, ${m}×${n}×${k}${transB ? " (transB)" : ""}`, () => {
      const p = args(batch, m, n, k, { transB, accumulate: true });
      const A = randArray(batch * m * k, 1);
      const B = randArray(batch * k * n, 2);
      const C = randArray(batch * m * n, 3);
      both((b) => {
        const c = C.slice();
        b.matmul(A, B, c, p);
        return [c];
      });
    });
  }

  test("rmsNorm, rmsNormBackward, softmax, swiglu, swigluBackward, adamw, elementwise", () => {
    const rows = 67;
    const dim = 1029;
    const n = rows * dim;
    const x = randArray(n, 5, 3);
    const y = randArray(n, 6, 3);
    const w = randArray(dim, 7);
    both((b) => {
      const out = new Float32Array(n);
      const rstd = new Float32Array(rows);
      b.rmsNorm(x, w, out, rstd, rows, dim, 1e-5);
      const dx = new Float32Array(n);
      const dw = w.slice();
      b.rmsNormBackward(y, x, w, rstd, dx, dw, rows, dim);
      const sm = new Float32Array(n);
      b.softmax(x, sm, rows, dim);
      const sw = new Float32Array(n);
      b.swiglu(x, y, sw, n);
      const dg = new Float32Array(n);
      const du = new Float32Array(n);
      b.swigluBackward(x, y, out, dg, du, n);
      const p = x.slice();
      const m = y.slice();
      const vv = new Float32Array(n).fill(0.25);
      b.adamw(p, y, m, vv, n, { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 3 });
      const e = new Float32Array(n);
      b.add(x, y, e, n);
      b.axpy(e, x, 0.5, n);
      return [out, rstd, dx, dw, sm, sw, dg, du, p, m, vv, e];
    });
  });

  test("reductions agree to f64 rounding", () => {
    const x = randArray(300001, 9);
    const near = (a: number, b: number) => Math.abs(a - b) <= 1e-12 * Math.abs(b) + 1e-9;
    assert.ok(near(one.sum(x, x.length), two.sum(x, x.length)));
    assert.ok(near(one.sumSquares(x, x.length), two.sumSquares(x, x.length)));
    assert.ok(near(two.sum(x, x.length), jsBackend.sum(x, x.length)));
    assert.ok(near(two.sumSquares(x, x.length), jsBackend.sumSquares(x, x.length)));
  });
});

describe("wasm matmulBf16", () => {
  // bf16 bit patterns of random values (truncation is fine: any bits are valid bf16 weights).
  function bf16(n: number, seed: number): Uint16Array {
    const f = randArray(n, seed);
    const u = new Uint32Array(f.buffer);
    return Uint16Array.from(u, (x) => x >>> 16);
  }

  for (const [m, n, k] of [
    [1, 1, 1],
    [1, 130, 37],
    [1, 1000, 300],
    [3, 70, 19],
    [5, 300, 256],
  ] as [number, number, number][]) {
    test(`${m}×${n}×${k}: weights in wasm memory or outside, 1 and 2 threads, against the js reference`, () => {
      const A = randArray(m * k, 41);
      const bits = bf16(n * k, 42);
      const want = new Float32Array(m * n);
      jsBackend.matmulBf16!(A, bits, want, m, n, k);
      const results: Float32Array[] = [];
      for (const b of [one, two]) {
        // Weights held in the backend's memory: a Uint16Array view over an alloc()ed buffer.
        const store = b.alloc(Math.ceil((n * k) / 2));
        const inside = new Uint16Array(store.buffer, store.byteOffset, n * k);
        inside.set(bits);
        for (const w of [inside, bits, Uint16Array.from([0, ...bits]).subarray(1)]) {
          const c = randArray(m * n, 43); // overwritten
          b.matmulBf16!(A, w, c, m, n, k);
          const err = closeness(c, want, 1e-5, 1e-6 * Math.sqrt(k));
          assert.ok(err <= 1, `${err.toFixed(2)}× tolerance`);
          results.push(c);
        }
        b.free(store);
      }
      for (const r of results)
        assert.deepEqual(r, results[0], "identical whatever the placement and thread count");
    });
  }
});

describe("wasm attention against the js reference, 1 and 2 threads", () => {
  // Shapes spanning several query tiles and key blocks (64 each), odd head sizes, a KV cache
  // (seqK > seqQ) and queries that see no key at all (seqQ > seqK with the causal mask; documents).
  const cases: [string, Partial<AttentionArgs>][] = [
    [
      "multi-tile causal GQA",
      { batch: 1, seqQ: 150, seqK: 150, heads: 4, kvHeads: 2, headDim: 16, causal: true },
    ],
    [
      "odd head size, full",
      { batch: 2, seqQ: 67, seqK: 67, heads: 3, kvHeads: 1, headDim: 13, causal: false },
    ],
    ["KV cache", { batch: 1, seqQ: 5, seqK: 133, heads: 2, kvHeads: 2, headDim: 8, causal: true }],
    ["fully masked rows", { batch: 1, seqQ: 70, seqK: 20, heads: 2, kvHeads: 1, headDim: 8, causal: true }],
    ["documents", { batch: 2, seqQ: 129, seqK: 129, heads: 2, kvHeads: 2, headDim: 8, causal: true }],
  ];
  for (const [name, c] of cases) {
    test(name, () => {
      const a = { scale: 1 / Math.sqrt(c.headDim!), qDocIds: null, kDocIds: null, ...c } as AttentionArgs;
      if (name === "documents") {
        // Documents of 40 tokens; query row 0 of batch item 1 has an id no key has (it sees nothing).
        a.qDocIds = Int32Array.from(
          { length: a.batch * a.seqQ },
          (_, i) => Math.floor((i % a.seqQ) / 40) + 10 * Math.floor(i / a.seqQ),
        );
        a.kDocIds = a.qDocIds.slice();
        a.qDocIds[a.seqQ] = -1;
      }
      const qn = a.batch * a.seqQ * a.heads * a.headDim;
      const kn = a.batch * a.seqK * a.kvHeads * a.headDim;
      const [q, k, v, dout] = [randArray(qn, 1, 2), randArray(kn, 2, 2), randArray(kn, 3), randArray(qn, 4)];
      const outW = new Float32Array(qn);
      const lseW = new Float32Array(a.batch * a.heads * a.seqQ);
      jsBackend.attention(q, k, v, outW, lseW, a);
      const [dqW, dkW, dvW] = [new Float32Array(qn), new Float32Array(kn), new Float32Array(kn)];
      jsBackend.attentionBackward(q, k, v, outW, dout, lseW, dqW, dkW, dvW, a);
      const runs: Float32Array[][] = [];
      for (const b of [one, two]) {
        const out = new Float32Array(qn);
        const lse = new Float32Array(lseW.length);
        b.attention(q, k, v, out, lse, a);
        const [dq, dk, dv] = [new Float32Array(qn), new Float32Array(kn), new Float32Array(kn)];
        b.attentionBackward(q, k, v, out, dout, lse, dq, dk, dv, a);
        runs.push([out, lse, dq, dk, dv]);
      }
      const [out, lse, dq, dk, dv] = runs[0]!;
      for (let i = 0; i < lseW.length; i++) {
        if (lseW[i] === Number.NEGATIVE_INFINITY)
          assert.equal(lse![i], Number.NEGATIVE_INFINITY, `lse[${i}]`);
      }
      const finite = (x: Float32Array) => x.map((y) => (y === Number.NEGATIVE_INFINITY ? 0 : y));
      assert.ok(closeness(finite(lse!), finite(lseW), 1e-5, 1e-5) <= 1, "lse");
      for (const [got, want, what] of [
        [out, outW, "out"],
        [dq, dqW, "dq"],
        [dk, dkW, "dk"],
        [dv, dvW, "dv"],
      ] as [Float32Array, Float32Array, string][]) {
        const err = closeness(got, want, 1e-4, 1e-5);
        assert.ok(err <= 1, `${what}: ${err.toFixed(2)}× tolerance`);
      }
      for (const [i, x] of runs[1]!.entries()) assert.deepEqual(x, runs[0]![i], `2 threads, output ${i}`);
    });
  }
});

describe("wasm cross-entropy", () => {
  test("large vocabulary, mask and ignore index, in place, 1 and 2 threads, against the js reference", () => {
    const [rows, vocab] = [9, 5003];
    const logits = randArray(rows * vocab, 61, 8);
    logits.fill(Number.NEGATIVE_INFINITY, 4 * vocab, 5 * vocab); // a row with no mass (masked out below)
    const targets = Int32Array.from({ length: rows }, (_, i) => (i === 2 ? -100 : (i * 977) % vocab));
    const mask = Float32Array.from({ length: rows }, (_, i) => (i === 4 ? 0 : 0.5 + i / 10));
    const lossW = new Float32Array(rows);
    const lseW = new Float32Array(rows);
    jsBackend.crossEntropy(logits, targets, mask, lossW, lseW, rows, vocab, -100);
    const dW = new Float32Array(rows * vocab);
    jsBackend.crossEntropyBackward(logits, targets, mask, lseW, 0.25, dW, rows, vocab, -100);
    const results: Float32Array[][] = [];
    for (const b of [one, two]) {
      const loss = new Float32Array(rows);
      const lse = new Float32Array(rows);
      b.crossEntropy(logits, targets, mask, loss, lse, rows, vocab, -100);
      assert.equal(lse[4], Number.NEGATIVE_INFINITY);
      const finite = (x: Float32Array) => x.map((y) => (y === Number.NEGATIVE_INFINITY ? 0 : y));
      assert.ok(closeness(finite(lse), finite(lseW), 1e-6, 1e-6) <= 1, "lse");
      assert.ok(closeness(loss, lossW, 1e-5, 1e-6) <= 1, "loss");
      const inPlace = own(b, logits); // dlogits written over the logits
      b.crossEntropyBackward(inPlace, targets, mask, lse, 0.25, inPlace, rows, vocab, -100);
      assert.ok(closeness(inPlace, dW, 1e-5, 1e-9) <= 1, "dlogits");
      results.push([loss, lse, inPlace.slice()]);
      b.free(inPlace);
    }
    for (const [i, x] of results[1]!.entries()) assert.deepEqual(x, results[0]![i], `2 threads, output ${i}`);
    assert.throws(
      () =>
        one.crossEntropy(
          logits,
          Int32Array.of(0, vocab),
          null,
          new Float32Array(2),
          new Float32Array(2),
          2,
          vocab,
          -100,
        ),
      /target 5003 of row 1 is out of range/,
    );
  });
});

describe("wasm numerics", () => {
  test("adamw matches the reference bit for bit (same f64 arithmetic)", () => {
    const n = 1001;
    const p0 = randArray(n, 11);
    const g = randArray(n, 12);
    const m0 = randArray(n, 13, 0.1);
    const v0 = randArray(n, 14, 0.1).map(Math.abs);
    const a = { lr: 3e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 7 };
    const [p1, m1, v1] = [p0.slice(), m0.slice(), v0.slice()];
    const [p2, m2, v2] = [p0.slice(), m0.slice(), v0.slice()];
    jsBackend.adamw(p1, g, m1, v1, n, a);
    one.adamw(p2, g, m2, v2, n, a);
    assert.deepEqual([p2, m2, v2], [p1, m1, v1]);
  });

  test("the vectorised exp: softmax and swiglu within 1e-6 of Math.exp over a wide range, ±Inf and NaN", () => {
    const n = 4099;
    const x = randArray(n, 21, 100);
    x.set([-1e30, 1e30, 88.7, -87.5, -103, 0, -0, 89, -89]);
    const up = randArray(n, 22);
    const want = new Float32Array(n);
    const got = new Float32Array(n);
    jsBackend.swiglu(x, up, want, n);
    one.swiglu(x, up, got, n);
    assert.ok(closeness(got, want, 1e-6, 1e-30) <= 1, "swiglu");
    const inf = Float32Array.from([Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0, 0]);
    const infOut = new Float32Array(4);
    one.swiglu(inf, Float32Array.from([1, 1, 1, 1]), infOut, 4);
    assert.equal(infOut[0], Number.POSITIVE_INFINITY, "silu(+Inf) = +Inf");
    assert.ok(Number.isNaN(infOut[1]!), "silu(-Inf) = -Inf·0 = NaN, as in the reference");
    const s = randArray(5 * 1001, 23, 30);
    const sw = new Float32Array(s.length);
    const sg = new Float32Array(s.length);
    jsBackend.softmax(s, sw, 5, 1001);
    one.softmax(s, sg, 5, 1001);
    // exp(x − max) inherits the f32 rounding of x − max (≈ |x − max|·6e-8 relative), hence the atol for
    // outputs far below the row's maximum.
    assert.ok(closeness(sg, sw, 1e-6, 1e-9) <= 1, "softmax");
    const nan = new Float32Array(4).fill(Number.NaN);
    one.swiglu(nan, nan, nan, 4);
    assert.ok(nan.every(Number.isNaN));
  });
});

describe("wasm threads", () => {
  test("a trap in the kernels surfaces as an error and the pool keeps working", () => {
    const a = two.alloc(64 * 64);
    const bb = two.alloc(64 * 64);
    const c = two.alloc(64 * 64);
    // k far larger than the buffers: the kernels read past the end of the memory and trap.
    const bad = args(1, 64, 64, 1 << 24);
    assert.throws(() => two.matmul(a, bb, c, bad), /out of bounds|wasm/i);
    a.set(randArray(64 * 64, 31));
    bb.set(randArray(64 * 64, 32));
    const p = args(1, 64, 64, 64);
    two.matmul(a, bb, c, p);
    const want = new Float32Array(64 * 64);
    jsBackend.matmul(a, bb, want, p);
    assert.ok(closeness(c, want, 1e-5, 1e-5) <= 1);
    for (const x of [a, bb, c]) two.free(x);
  });

  test("HERD_THREADS sets the default thread count and is validated", () => {
    const saved = process.env["HERD_THREADS"];
    try {
      process.env["HERD_THREADS"] = "2";
      reloadKnobs();
      const b = createWasmBackend();
      assert.equal(b.threads, 2);
      b.dispose();
      assert.equal(b.threads, 1, "after dispose the backend runs on the caller alone");
      const x = randArray(1 << 17, 1);
      assert.ok(Math.abs(b.sum(x, x.length) - jsBackend.sum(x, x.length)) < 1e-9);
      process.env["HERD_THREADS"] = "zero";
      reloadKnobs();
      assert.throws(() => createWasmBackend(), /HERD_THREADS='zero': expected an integer from 1 to 256/);
    } finally {
      if (saved === undefined) delete process.env["HERD_THREADS"];
      else process.env["HERD_THREADS"] = saved;
      reloadKnobs();
    }
  });
});

describe("wasm pool: a worker that dies", () => {
  test("run() throws instead of waiting forever, and the pool refuses further jobs", async () => {
    const module = kernelModule();
    const memory = sharedMemory(4);
    const ex = instantiate(module, memory);
    const ops = ["scale"];
    const local = ops.map((name) => ex[name]!);
    const pool = createPool(module, memory, ops, local, 2, { watchdogMs: 300 });
    const base = Math.ceil(ex["heapBase"]!() / 64) * 64;
    const x = new Float32Array(memory.buffer, base, 4096);
    x.fill(1);
    pool.run(0, [base, 3, base, 4096]);
    assert.ok(
      x.every((v) => v === 3),
      "both threads did their share",
    );
    await pool.workers[0]!.terminate();
    assert.throws(
      () => pool.run(0, [base, 3, base, 4096]),
      /1 of 1 worker threads (exited|stopped responding)/,
    );
    assert.throws(() => pool.run(0, [base, 3, base, 4096]), /after dispose/);
  });
});
