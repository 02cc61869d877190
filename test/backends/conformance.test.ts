// The conformance suite every backend passes: each kernel's forward and backward against the js
// reference on random inputs of awkward shapes (size 1, odd sizes, non-multiples of any tile), with the
// backend's own buffers (so wasm runs on its shared memory) and with plain arrays.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import type { AttentionArgs, Backend, MatmulArgs } from "../../src/backends/backend.js";
import { kernelOf } from "../../src/backends/fallbacks.js";
import { backendByName, backendNames } from "../../src/backends/index.js";
import { jsBackend } from "../../src/backends/js/index.js";
import { decodeHalf, encodeHalf } from "../../src/tensor/dtype.js";
import { closeness, randArray, rng } from "../helpers.js";

const ref = jsBackend;

/** Copy into a buffer owned by backend b. */
function own(b: Backend, src: Float32Array): Float32Array {
  const buf = b.alloc(src.length);
  buf.set(src);
  return buf;
}

function close(name: string, got: Float32Array, want: Float32Array, rtol = 2e-4, atol = 2e-5): void {
  const c = closeness(got, want, rtol, atol);
  assert.ok(c <= 1, `${name}: worst error is ${c.toFixed(2)}× the tolerance (rtol ${rtol}, atol ${atol})`);
}

const matmulCases: [number, number, number, number][] = [
  // batch, m, n, k
  [1, 1, 1, 1],
  [1, 1, 7, 3],
  [1, 5, 1, 9],
  [1, 17, 33, 65],
  [1, 64, 64, 64],
  [1, 1, 257, 130], // decode-like GEMV
  [3, 7, 19, 11],
  [2, 40, 9, 129],
];

for (const name of backendNames()) {
  describe(`backend ${name}`, () => {
    const b = backendByName(name);
    const start = b.liveBytes();
    after(() => {
      // Every test frees what it allocates.
      assert.equal(b.liveBytes(), start, "liveBytes returns to its starting value");
    });

    test("matmul: all transposes, batch strides, broadcast and accumulate", () => {
      let seed = 1;
      for (const [batch, m, n, k] of matmulCases)
        for (const transA of [false, true])
          for (const transB of [false, true])
            for (const [bcastA, bcastB] of batch > 1
              ? [
                  [false, false],
                  [true, false],
                  [false, true],
                ]
              : [[false, false]])
              for (const accumulate of [false, true]) {
                const A = randArray((bcastA ? 1 : batch) * m * k, seed++);
                const B = randArray((bcastB ? 1 : batch) * k * n, seed++);
                const C0 = randArray(batch * m * n, seed++);
                const p: MatmulArgs = {
                  batch,
                  m,
                  n,
                  k,
                  transA,
                  transB,
                  accumulate,
                  strideA: bcastA ? 0 : m * k,
                  strideB: bcastB ? 0 : k * n,
                  strideC: m * n,
                };
                const want = C0.slice();
                ref.matmul(A, B, want, p);
                const a = own(b, A);
                const bb = own(b, B);
                const c = own(b, C0);
                b.matmul(a, bb, c, p);
                close(`matmul ${JSON.stringify(p)}`, c, want, 1e-4, 1e-5 * Math.sqrt(k));
                // Plain (foreign) arrays give the same result.
                const c2 = C0.slice();
                b.matmul(A, B, c2, p);
                close(`matmul plain arrays ${JSON.stringify(p)}`, c2, want, 1e-4, 1e-5 * Math.sqrt(k));
                for (const x of [a, bb, c]) b.free(x);
              }
    });

    test("supports lists exactly the optional kernels the backend has itself", () => {
      for (const op of [
        "matmulBf16",
        "matmulBf16Many",
        "matmulQuant",
        "matmulBf16Grad",
        "matmulQuantGrad",
        "compileGraph",
      ] as const)
        assert.equal(typeof b[op] === "function", b.supports.includes(op), `${name}.${op}`);
    });

    test("copy: a range between offsets, and out-of-bounds ranges refused", () => {
      const src = own(b, randArray(40, 5));
      const dst = own(b, new Float32Array(40));
      b.copy(src, 3, dst, 17, 20);
      assert.deepEqual(Array.from(dst.subarray(17, 37)), Array.from(src.subarray(3, 23)));
      assert.equal(dst[16], 0);
      assert.equal(dst[37], 0);
      assert.throws(() => b.copy(src, 30, dst, 0, 11), /out of bounds/);
      assert.throws(() => b.copy(src, 0, dst, 30, 11), /out of bounds/);
      for (const x of [src, dst]) b.free(x);
    });

    test("matmulBf16 (own or fallback): equals the f32 matmul of the widened weights", () => {
      const matmulBf16 = kernelOf(b, "matmulBf16");
      const many = kernelOf(b, "matmulBf16Many");
      let seed = 900;
      for (const [m, n, k] of [
        [1, 1, 1],
        [1, 257, 130],
        [3, 7, 5],
        [17, 33, 65],
      ] as const) {
        const A = randArray(m * k, seed++);
        const bits = encodeHalf(randArray(n * k, seed++), "bf16");
        const want = new Float32Array(m * n);
        const p = { batch: 1, m, n, k, transA: false, transB: true, accumulate: false };
        ref.matmul(A, decodeHalf(bits, "bf16"), want, { ...p, strideA: 0, strideB: 0, strideC: 0 });
        const a = own(b, A);
        const c = own(b, randArray(m * n, seed++)); // overwritten, not accumulated
        matmulBf16(a, bits, c, m, n, k);
        close(`matmulBf16 m=${m} n=${n} k=${k}`, c, want, 1e-5, 1e-6 * Math.sqrt(k));
        const c1 = new Float32Array(m * n);
        many(a, [bits, bits], [c1, c1], m, [n, n], k);
        close(`matmulBf16Many m=${m} n=${n} k=${k}`, c1, want, 1e-5, 1e-6 * Math.sqrt(k));
        // An odd offset into the bits (no 4-byte alignment) gives the same result.
        const shifted = new Uint16Array(n * k + 1);
        shifted.set(bits, 1);
        const c2 = new Float32Array(m * n);
        matmulBf16(A, shifted.subarray(1), c2, m, n, k);
        close(`matmulBf16 unaligned m=${m} n=${n} k=${k}`, c2, want, 1e-5, 1e-6 * Math.sqrt(k));
        for (const x of [a, c]) b.free(x);
      }
    });

    test("elementwise: add, mul, scale, axpy, sum, sumSquares", () => {
      for (const n of [1, 3, 17, 1000, 4099]) {
        const x = randArray(n, n);
        const y = randArray(n, n + 1);
        const bx = own(b, x);
        const by = own(b, y);
        const out = b.alloc(n);
        const want = new Float32Array(n);
        for (const op of ["add", "mul"] as const) {
          b[op](bx, by, out, n);
          ref[op](x, y, want, n);
          close(`${op} n=${n}`, out, want, 1e-6, 1e-7);
        }
        b.scale(bx, -1.7, out, n);
        ref.scale(x, -1.7, want, n);
        close(`scale n=${n}`, out, want, 1e-6, 1e-7);
        const acc = own(b, y);
        const accWant = y.slice();
        b.axpy(acc, bx, 0.3, n);
        ref.axpy(accWant, x, 0.3, n);
        close(`axpy n=${n}`, acc, accWant, 1e-6, 1e-7);
        assert.ok(Math.abs(b.sum(bx, n) - ref.sum(x, n)) <= 1e-4 * Math.sqrt(n), `sum n=${n}`);
        assert.ok(Math.abs(b.sumSquares(bx, n) - ref.sumSquares(x, n)) <= 1e-5 * n, `sumSquares n=${n}`);
        for (const z of [bx, by, out, acc]) b.free(z);
      }
    });

    test("rmsNorm forward and backward", () => {
      for (const [rows, dim] of [
        [1, 1],
        [3, 7],
        [5, 64],
        [2, 130],
      ] as const) {
        const x = randArray(rows * dim, rows * 100 + dim, 2);
        const w = randArray(dim, dim);
        const dy = randArray(rows * dim, dim + 7);
        const want = new Float32Array(rows * dim);
        const rstdWant = new Float32Array(rows);
        ref.rmsNorm(x, w, want, rstdWant, rows, dim, 1e-5);
        const [bx, bw, bdy] = [own(b, x), own(b, w), own(b, dy)];
        const out = b.alloc(rows * dim);
        const rstd = b.alloc(rows);
        b.rmsNorm(bx, bw, out, rstd, rows, dim, 1e-5);
        close(`rmsNorm ${rows}x${dim}`, out, want, 1e-5, 1e-6);
        close(`rmsNorm rstd ${rows}x${dim}`, rstd, rstdWant, 1e-5, 1e-6);
        const dxWant = new Float32Array(rows * dim);
        const dwWant = randArray(dim, 5);
        const dw = own(b, dwWant);
        ref.rmsNormBackward(dy, x, w, rstdWant, dxWant, dwWant, rows, dim);
        const dx = b.alloc(rows * dim);
        b.rmsNormBackward(bdy, bx, bw, rstd, dx, dw, rows, dim);
        close(`rmsNormBackward dx ${rows}x${dim}`, dx, dxWant, 1e-4, 1e-5);
        close(`rmsNormBackward dw (accumulated) ${rows}x${dim}`, dw, dwWant, 1e-4, 1e-5);
        for (const z of [bx, bw, bdy, out, rstd, dx, dw]) b.free(z);
      }
    });

    test("rope forward and inverse", () => {
      for (const [tokens, heads, hd] of [
        [1, 1, 2],
        [5, 3, 8],
        [9, 2, 64],
      ] as const) {
        const x = randArray(tokens * heads * hd, tokens + hd);
        const r = rng(hd);
        const positions = Int32Array.from({ length: tokens }, () => Math.floor(r() * 9000));
        const invFreq = Float32Array.from({ length: hd / 2 }, (_, i) => 500000 ** (-(2 * i) / hd));
        for (const inverse of [false, true]) {
          const want = new Float32Array(x.length);
          ref.rope(x, want, positions, invFreq, tokens, heads, hd, inverse);
          const bx = own(b, x);
          const out = b.alloc(x.length);
          b.rope(bx, out, positions, invFreq, tokens, heads, hd, inverse);
          close(`rope ${tokens}x${heads}x${hd} inverse=${inverse}`, out, want, 1e-5, 1e-6);
          b.free(bx);
          b.free(out);
        }
      }
    });

    test("swiglu and softmax", () => {
      for (const n of [1, 5, 333, 4100]) {
        const g = randArray(n, n, 8);
        const u = randArray(n, n + 1);
        const d = randArray(n, n + 2);
        const want = new Float32Array(n);
        ref.swiglu(g, u, want, n);
        const [bg, bu, bd] = [own(b, g), own(b, u), own(b, d)];
        const out = b.alloc(n);
        b.swiglu(bg, bu, out, n);
        close(`swiglu n=${n}`, out, want, 1e-5, 1e-6);
        const dgW = new Float32Array(n);
        const duW = new Float32Array(n);
        ref.swigluBackward(g, u, d, dgW, duW, n);
        const dg = b.alloc(n);
        const du = b.alloc(n);
        b.swigluBackward(bg, bu, bd, dg, du, n);
        close(`swigluBackward dgate n=${n}`, dg, dgW, 1e-5, 1e-6);
        close(`swigluBackward dup n=${n}`, du, duW, 1e-5, 1e-6);
        for (const z of [bg, bu, bd, out, dg, du]) b.free(z);
      }
      for (const [rows, cols] of [
        [1, 1],
        [3, 17],
        [2, 1000],
      ] as const) {
        const x = randArray(rows * cols, cols, 20);
        const want = new Float32Array(x.length);
        ref.softmax(x, want, rows, cols);
        const bx = own(b, x);
        const out = b.alloc(x.length);
        b.softmax(bx, out, rows, cols);
        close(`softmax ${rows}x${cols}`, out, want, 1e-5, 1e-7);
        b.free(bx);
        b.free(out);
      }
    });

    test("embedding forward and backward", () => {
      const [vocab, dim, rows] = [11, 7, 9];
      const table = randArray(vocab * dim, 3);
      const ids = Int32Array.from([0, 10, 3, 3, 5, 10, 1, 0, 3]);
      const want = new Float32Array(rows * dim);
      ref.embedding(table, ids, want, rows, dim);
      const bt = own(b, table);
      const out = b.alloc(rows * dim);
      b.embedding(bt, ids, out, rows, dim);
      assert.deepEqual(Array.from(out), Array.from(want), "embedding copies rows exactly");
      const dWant = randArray(vocab * dim, 4);
      const d = own(b, dWant);
      ref.embeddingBackward(want, ids, dWant, rows, dim);
      b.embeddingBackward(out, ids, d, rows, dim);
      close("embeddingBackward", d, dWant, 1e-6, 1e-7);
      for (const z of [bt, out, d]) b.free(z);
    });

    test("attention forward and backward: GQA, causal, document mask, KV cache", () => {
      const cases: Partial<AttentionArgs>[] = [
        { batch: 1, seqQ: 1, seqK: 1, heads: 1, kvHeads: 1, headDim: 4, causal: true },
        { batch: 2, seqQ: 13, seqK: 13, heads: 4, kvHeads: 2, headDim: 16, causal: true },
        { batch: 1, seqQ: 70, seqK: 70, heads: 6, kvHeads: 2, headDim: 8, causal: false },
        { batch: 1, seqQ: 3, seqK: 67, heads: 2, kvHeads: 1, headDim: 12, causal: true },
        {
          batch: 2,
          seqQ: 33,
          seqK: 33,
          heads: 2,
          kvHeads: 2,
          headDim: 6,
          causal: true,
          qDocIds: new Int32Array(66),
        },
      ];
      let seed = 50;
      for (const c of cases) {
        const a = { scale: 1 / Math.sqrt(c.headDim!), qDocIds: null, kDocIds: null, ...c } as AttentionArgs;
        if (a.qDocIds) {
          for (let i = 0; i < a.qDocIds.length; i++)
            a.qDocIds[i] = Math.floor((i % a.seqQ) / 10) + (i >= a.seqQ ? 5 : 0);
          a.kDocIds = a.qDocIds;
        }
        const qn = a.batch * a.seqQ * a.heads * a.headDim;
        const kn = a.batch * a.seqK * a.kvHeads * a.headDim;
        const [q, k, v, dout] = [
          randArray(qn, seed++),
          randArray(kn, seed++),
          randArray(kn, seed++),
          randArray(qn, seed++),
        ];
        const outW = new Float32Array(qn);
        const lseW = new Float32Array(a.batch * a.heads * a.seqQ);
        ref.attention(q, k, v, outW, lseW, a);
        const [bq, bk, bv, bdo] = [own(b, q), own(b, k), own(b, v), own(b, dout)];
        const out = b.alloc(qn);
        const lse = b.alloc(lseW.length);
        b.attention(bq, bk, bv, out, lse, a);
        const label = JSON.stringify({ ...a, qDocIds: !!a.qDocIds, kDocIds: undefined });
        close(`attention out ${label}`, out, outW, 1e-4, 1e-5);
        close(`attention lse ${label}`, lse, lseW, 1e-5, 1e-5);
        const [dqW, dkW, dvW] = [new Float32Array(qn), new Float32Array(kn), new Float32Array(kn)];
        ref.attentionBackward(q, k, v, outW, dout, lseW, dqW, dkW, dvW, a);
        const [dq, dk, dv] = [b.alloc(qn), b.alloc(kn), b.alloc(kn)];
        b.attentionBackward(bq, bk, bv, out, bdo, lse, dq, dk, dv, a);
        close(`attention dq ${label}`, dq, dqW, 1e-4, 1e-5);
        close(`attention dk ${label}`, dk, dkW, 1e-4, 1e-5);
        close(`attention dv ${label}`, dv, dvW, 1e-4, 1e-5);
        for (const z of [bq, bk, bv, bdo, out, lse, dq, dk, dv]) b.free(z);
      }
    });

    test("cross-entropy forward and backward with ignore index and mask", () => {
      for (const [rows, vocab] of [
        [1, 2],
        [7, 33],
        [4, 1001],
      ] as const) {
        const logits = randArray(rows * vocab, vocab, 6);
        const r = rng(rows);
        const targets = Int32Array.from({ length: rows }, (_, i) =>
          i === 1 ? -100 : Math.floor(r() * vocab),
        );
        const mask = Float32Array.from({ length: rows }, (_, i) => (i % 3 === 2 ? 0 : 1));
        for (const m of [null, mask]) {
          const lossW = new Float32Array(rows);
          const lseW = new Float32Array(rows);
          ref.crossEntropy(logits, targets, m, lossW, lseW, rows, vocab, -100);
          const bl = own(b, logits);
          const loss = b.alloc(rows);
          const lse = b.alloc(rows);
          b.crossEntropy(bl, targets, m, loss, lse, rows, vocab, -100);
          close(`crossEntropy ${rows}x${vocab}`, loss, lossW, 1e-5, 1e-6);
          const dW = new Float32Array(rows * vocab);
          ref.crossEntropyBackward(logits, targets, m, lseW, 0.5, dW, rows, vocab, -100);
          const d = b.alloc(rows * vocab);
          b.crossEntropyBackward(bl, targets, m, lse, 0.5, d, rows, vocab, -100);
          close(`crossEntropyBackward ${rows}x${vocab}`, d, dW, 1e-5, 1e-7);
          for (const z of [bl, loss, lse, d]) b.free(z);
        }
      }
    });

    test("adamw", () => {
      for (const n of [1, 9, 1027]) {
        const p = randArray(n, n);
        const g = randArray(n, n + 1);
        const m = randArray(n, n + 2, 0.1);
        const v = randArray(n, n + 3, 0.1).map(Math.abs);
        const args = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 3 };
        const [pw, mw, vw] = [p.slice(), m.slice(), v.slice()];
        ref.adamw(pw, g, mw, vw, n, args);
        const [bp, bg, bm, bv] = [own(b, p), own(b, g), own(b, m), own(b, v)];
        b.adamw(bp, bg, bm, bv, n, args);
        close(`adamw param n=${n}`, bp, pw, 1e-5, 1e-7);
        close(`adamw m n=${n}`, bm, mw, 1e-5, 1e-7);
        close(`adamw v n=${n}`, bv, vw, 1e-5, 1e-7);
        for (const z of [bp, bg, bm, bv]) b.free(z);
      }
    });
  });
}
