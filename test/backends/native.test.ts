// Tests of the native backend's own behaviour (the kernels' results are the conformance suite's):
// argument checks that keep the addon from reading out of bounds, matmul shapes that cross the
// micro-kernel, cache-block and thread-tile edges, attention shapes the conformance suite does not
// reach (head sizes 64/128/odd, GQA 4:1, long KV caches, document masks, the backward's key chunks on
// several thread counts), every ISA path (forced in a child process with HERD_NATIVE_ISA), the thread
// pool's restarts, recycled buffers (large ones hugepage-backed), and bf16 rows read in place. Skipped where the addon was not built
// (no compiler): herd then runs on wasm.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { describe, test } from "node:test";
import type { AttentionArgs } from "../../src/backends/backend.js";
import { jsBackend, matmul as refMatmul } from "../../src/backends/js/index.js";
import {
  createNativeBackend,
  type NativeCpuInfo,
  nativeAddonPath,
  nativeAvailable,
  nativeCpuInfo,
} from "../../src/backends/native/index.js";
import { encodeHalf } from "../../src/tensor/dtype.js";
import { closeness, matmulArgs, randArray, repoPath } from "../helpers.js";

/**
 * Run `script` (an ES module printing one JSON line with its `isa`) under HERD_NATIVE_ISA=generic, avx2
 * and the CPU's best; checks each exits cleanly and that `generic` really selected the portable kernels.
 */
function eachIsa<T extends { isa: string }>(script: string): T[] {
  const outs = ["generic", "avx2", "best"].map((isa) => {
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      env: { ...process.env, HERD_NATIVE_ISA: isa },
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as T;
  });
  assert.ok(
    outs.some((o) => o.isa === "generic"),
    "HERD_NATIVE_ISA=generic selects the portable kernels",
  );
  return outs;
}

const skip = nativeAvailable() ? false : "native addon not built";

/** Worst error of native attention (forward and backward) against the js reference, in tolerances. */
function attentionError(b: ReturnType<typeof createNativeBackend>, a: AttentionArgs, seed: number): number {
  const qn = a.batch * a.seqQ * a.heads * a.headDim;
  const kn = a.batch * a.seqK * a.kvHeads * a.headDim;
  const [q, k, v, dout] = [
    randArray(qn, seed),
    randArray(kn, seed + 1),
    randArray(kn, seed + 2),
    randArray(qn, seed + 3),
  ];
  const lseN = a.batch * a.heads * a.seqQ;
  const want = { out: new Float32Array(qn), lse: new Float32Array(lseN) };
  const got = { out: new Float32Array(qn), lse: new Float32Array(lseN) };
  jsBackend.attention(q, k, v, want.out, want.lse, a);
  b.attention(q, k, v, got.out, got.lse, a);
  const gw = [new Float32Array(qn), new Float32Array(kn), new Float32Array(kn)] as const;
  const gg = [new Float32Array(qn), new Float32Array(kn), new Float32Array(kn)] as const;
  jsBackend.attentionBackward(q, k, v, want.out, dout, want.lse, ...gw, a);
  b.attentionBackward(q, k, v, want.out, dout, want.lse, ...gg, a);
  let worst = Math.max(closeness(got.out, want.out, 1e-4, 1e-5), closeness(got.lse, want.lse, 1e-5, 1e-5));
  for (let i = 0; i < 3; i++) worst = Math.max(worst, closeness(gg[i]!, gw[i]!, 1e-4, 1e-5));
  return worst;
}

describe("native backend", { skip }, () => {
  test("rejects wrong types and buffers too small for the shape instead of reading past them", () => {
    const b = createNativeBackend();
    const a = new Float32Array(6);
    const c = new Float32Array(4);
    assert.throws(() => b.matmul(a, new Float32Array(5), c, matmulArgs(2, 2, 3)), /too small/);
    assert.throws(
      () => b.matmul(a, new Float32Array(6), new Float32Array(3), matmulArgs(2, 2, 3)),
      /too small/,
    );
    assert.throws(
      () => b.matmul(a, new Float32Array(6), c, matmulArgs(2, 2, 3, { batch: 2, strideA: 6, strideC: 4 })),
      /too small/,
    );
    assert.throws(
      () => b.matmul(new Float64Array(6) as unknown as Float32Array, a, c, matmulArgs(2, 2, 3)),
      /type/,
    );
    assert.throws(() => b.softmax(new Float32Array(5), new Float32Array(6), 2, 3), /too small/);
    assert.throws(() => b.matmulBf16?.(a, new Uint16Array(5), c, 2, 2, 3), /too small/);
    // The addon reads the interface's argument records itself: a record without a field, or with a
    // size that is not one, is refused naming what is wrong.
    const { k: _k, ...noK } = matmulArgs(2, 2, 3);
    assert.throws(() => b.matmul(a, a, c, noK as never), /the argument record lacks 'k'/);
    assert.throws(() => b.matmul(a, a, c, { ...matmulArgs(2, 2, 3), m: -1 }), /non-negative integers/);
    assert.throws(
      () => b.matmulQuant?.(a, new Uint8Array(144), c, 1, 1, 128, "q4_k"),
      /a K-quant k must be a multiple of 256/,
    );
    assert.throws(
      () => b.matmulQuant?.(a, new Uint8Array(64), c, 1, 1, 32, "q2_k" as never),
      /'q8_0', 'q4_0', 'q4_k', 'q5_k' or 'q6_k'/,
    );
  });

  test("matmul across block and tile edges, all transposes, on 1 and 3 threads", () => {
    // Past the blocking derived from this CPU's caches (mc and kc; nc is thousands of columns, crossed
    // under a forced small blocking below): partial blocks and micro-tiles everywhere.
    const g = nativeCpuInfo()!;
    const [m, n, k] = [g.mc + 37, 530, g.kc + 45];
    const A = randArray(m * k, 11);
    const B = randArray(k * n, 12);
    const C0 = randArray(m * n, 13);
    for (const threads of [1, 3]) {
      const b = createNativeBackend({ threads });
      assert.equal(b.threads, threads);
      for (const transA of [false, true])
        for (const transB of [false, true]) {
          const p = matmulArgs(m, n, k, { transA, transB, accumulate: true });
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

  test("the GEMM blocking comes from this CPU's caches, by the rules of native/herd.cc", () => {
    const g = nativeCpuInfo()!;
    const sysfs = "/sys/devices/system/cpu/cpu0/cache/index0/size";
    if (existsSync(sysfs)) assert.equal(g.cacheSource, "sysfs");
    if (g.cacheSource === "none") {
      assert.equal(g.blockingSource, "default");
      return;
    }
    assert.equal(g.blockingSource, "caches");
    assert.ok(g.l1d >= 4096 && g.l2 >= g.l1d, JSON.stringify(g));
    const deep = Math.max(Math.floor(g.l1d / (g.nr * 4)), Math.floor(Math.sqrt(g.l2 / 4)));
    assert.equal(g.kc, Math.min(1024, Math.max(128, Math.floor(deep / 64) * 64)), "kc: L1 slice or √(L2/4)");
    assert.equal(g.mc % g.mr, 0);
    assert.ok(g.mc * g.kc * 4 <= g.l2 / 2, "A's mc×kc block fits in half of L2");
    assert.ok(g.mc + g.mr > g.l2 / 2 / (g.kc * 4), "... and is as tall as that allows");
    assert.equal(g.nc % g.nr, 0);
    if (g.l3 > 0 && g.nc < 4096)
      assert.ok(g.kc * g.nc * 4 <= g.l3 / 2, "B's panel fits in half the L3 share");
  });

  test("a forced small blocking (HERD_GEMM_BLOCKING) turns every GEMM loop over and stays exact", () => {
    // mc 24, kc 40, nc 64: shapes of many blocks, none a multiple of the blocks or the micro-tile, all
    // transposes, accumulate, batches, 1 and 3 threads, the few-row path; and the last row of a product
    // equals the product of the last row alone, bit for bit (the kc-slices sum in the same order).
    const script = `
      const { createNativeBackend, nativeCpuInfo } = await import(${JSON.stringify(repoPath("dist", "src", "backends", "native", "index.js"))});
      const { matmul } = await import(${JSON.stringify(repoPath("dist", "src", "backends", "js", "index.js"))});
      const g = nativeCpuInfo();
      const r = (n, s) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + s));
      let worst = 0, sameLastRow = true;
      for (const threads of [1, 3]) {
        const b = createNativeBackend({ threads });
        for (const [batch, m, n, k] of [[1, 200, 530, 300], [2, 37, 45, 70], [1, 3, 77, 130], [1, 1, 100, 81], [3, 25, 65, 41]])
          for (const transA of [false, true])
            for (const transB of [false, true]) {
              const p = { batch, m, n, k, transA, transB, strideA: m * k, strideB: k * n, strideC: m * n, accumulate: true };
              const A = r(batch * m * k, 1), B = r(batch * k * n, 2), C0 = r(batch * m * n, 3);
              const got = C0.slice(), want = C0.slice();
              b.matmul(A, B, got, p); matmul(A, B, want, p);
              for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / (1e-4 * Math.abs(want[i]) + 1e-5 * Math.sqrt(k)));
            }
        const [m, n, k] = [50, 70, 130];
        const A = r(m * k, 4), B = r(n * k, 5);
        const p = { batch: 1, m, n, k, transA: false, transB: true, strideA: 0, strideB: 0, strideC: 0, accumulate: false };
        const full = new Float32Array(m * n), last = new Float32Array(n);
        b.matmul(A, B, full, p);
        b.matmul(A.subarray((m - 1) * k), B, last, { ...p, m: 1 });
        for (let j = 0; j < n; j++) if (full[(m - 1) * n + j] !== last[j]) sameLastRow = false;
      }
      console.log(JSON.stringify({ g, worst, sameLastRow }));
    `;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      env: { ...process.env, HERD_GEMM_BLOCKING: "20,40,60" },
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { g: NativeCpuInfo; worst: number; sameLastRow: boolean };
    assert.equal(out.g.blockingSource, "HERD_GEMM_BLOCKING");
    // Rounded up to whole micro-tiles.
    assert.deepEqual(
      [out.g.mc, out.g.kc, out.g.nc],
      [Math.ceil(20 / out.g.mr) * out.g.mr, 40, Math.ceil(60 / out.g.nr) * out.g.nr],
    );
    assert.ok(out.worst <= 1, `worst error ${out.worst}× tolerance`);
    assert.ok(out.sameLastRow, "the last row alone equals the last row of the product");
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
    for (const out of eachIsa<{ isa: string; worst: number }>(script))
      assert.ok(out.worst < 1e-4, `${out.isa}: worst error ${out.worst}`);
  });

  test("attention: head sizes 64/128/odd, GQA 4:1, KV cache, document masks, 1 and 3 threads", () => {
    const docs = (n: number, len: number, run: number) =>
      Int32Array.from({ length: n }, (_, i) => Math.floor((i % len) / run));
    const cases: AttentionArgs[] = [];
    const base = { batch: 1, heads: 4, kvHeads: 1, causal: true, qDocIds: null, kDocIds: null };
    for (const headDim of [64, 128, 7]) {
      cases.push({ ...base, seqQ: 150, seqK: 150, headDim, scale: 1 / Math.sqrt(headDim) });
      // A KV cache longer than the queries (prefill after a prefix), and its decode step.
      cases.push({ ...base, seqQ: 70, seqK: 200, headDim, scale: 0.3 });
      cases.push({ ...base, seqQ: 1, seqK: 200, headDim, scale: 0.3 });
    }
    // Decode rows whose keys end mid-group of 4 (the scores' 4-key blocks), groups of 3 heads, a head
    // size with a tail past the vector width.
    cases.push({ ...base, heads: 6, kvHeads: 2, seqQ: 1, seqK: 203, headDim: 20, scale: 0.2 });
    cases.push({ ...base, heads: 6, kvHeads: 2, seqQ: 2, seqK: 66, headDim: 36, scale: 0.2 });
    // Documents: runs of 37 tokens, so key blocks and query tiles straddle document boundaries.
    const [T, S] = [130, 130];
    cases.push({
      ...base,
      batch: 2,
      seqQ: T,
      seqK: S,
      headDim: 64,
      scale: 0.125,
      qDocIds: docs(2 * T, T, 37),
      kDocIds: docs(2 * S, S, 37),
    });
    cases.push({
      ...base,
      batch: 2,
      seqQ: T,
      seqK: S,
      headDim: 20,
      scale: 0.2,
      causal: false,
      qDocIds: docs(2 * T, T, 37),
      kDocIds: docs(2 * S, S, 37),
    });
    // Decode rows with several KV heads (each GQA group's query heads run together) and documents: the
    // queries are the last 3 positions of a 90-token cache whose documents are runs of 37 tokens.
    cases.push({
      ...base,
      batch: 2,
      heads: 8,
      kvHeads: 2,
      seqQ: 3,
      seqK: 90,
      headDim: 64,
      scale: 0.125,
      qDocIds: Int32Array.from({ length: 6 }, (_, i) => Math.floor((87 + (i % 3)) / 37)),
      kDocIds: docs(2 * 90, 90, 37),
    });
    for (const threads of [1, 3]) {
      const b = createNativeBackend({ threads });
      cases.forEach((a, i) => {
        const e = attentionError(b, a, 100 + i);
        assert.ok(
          e <= 1,
          `threads=${threads} ${JSON.stringify({ ...a, qDocIds: !!a.qDocIds, kDocIds: undefined })}: ${e}× tolerance`,
        );
      });
    }
    createNativeBackend();
  });

  test("rope: the cached cos/sin table stays right across growing, decode-like, sparse and new positions", () => {
    const b = createNativeBackend();
    const [heads, hd] = [2, 16];
    const invFreq = Float32Array.from({ length: hd / 2 }, (_, i) => 500000 ** (-(2 * i) / hd));
    const check = (positions: Int32Array, freqs: Float32Array) => {
      const x = randArray(positions.length * heads * hd, positions.length);
      for (const inverse of [false, true]) {
        const got = new Float32Array(x.length);
        const want = new Float32Array(x.length);
        b.rope(x, got, positions, freqs, positions.length, heads, hd, inverse);
        jsBackend.rope(x, want, positions, freqs, positions.length, heads, hd, inverse);
        assert.ok(
          closeness(got, want, 1e-5, 1e-6) <= 1,
          `positions ${positions.slice(0, 3)}… inverse=${inverse}`,
        );
      }
    };
    check(
      Int32Array.from({ length: 300 }, (_, i) => i),
      invFreq,
    ); // prefill
    for (let p = 300; p < 600; p += 7) check(Int32Array.of(p), invFreq); // decode steps past the table
    check(Int32Array.of(3, 90000, 12), invFreq); // sparse
    check(
      Int32Array.of(599, 5),
      invFreq.map((f) => f * 0.5),
    ); // other frequencies (scaled RoPE)
    check(Int32Array.of(599, 5), invFreq);
  });

  test("alloc hands out zero-filled buffers, also when it reuses a freed one, and counts live bytes", () => {
    const b = createNativeBackend();
    const start = b.liveBytes();
    const x = b.alloc(5000);
    x.fill(3);
    assert.equal(b.liveBytes(), start + 20000);
    b.free(x);
    b.free(x); // a second free is ignored
    assert.equal(b.liveBytes(), start);
    const y = b.alloc(5000);
    assert.ok(y.every((v) => v === 0));
    b.free(y);
    assert.equal(b.liveBytes(), start);
  });

  test("alloc of 2 MiB and more: the addon's hugepage-backed memory, zeroed, reused zeroed, read in place", () => {
    const b = createNativeBackend();
    const start = b.liveBytes();
    const n = 1024 * 1024 + 3; // 4 MiB + 12 bytes: not a whole number of 2 MiB pages
    const x = b.alloc(n);
    assert.equal(x.length, n);
    assert.equal(b.liveBytes(), start + 4 * n);
    assert.ok(x.every((v) => v === 0));
    // bf16 weights live in such buffers (halfZeros): the GEMV reads them in place, at any offset.
    const k = 64;
    const rows = 512;
    const bits = new Uint16Array(x.buffer, x.byteOffset, 2 * n);
    const w = randArray(rows * k, 7);
    for (const offset of [0, 2 * n - rows * k - 5]) {
      bits.set(encodeHalf(w, "bf16"), offset);
      const a = randArray(k, 8);
      const got = new Float32Array(rows);
      const want = new Float32Array(rows);
      b.matmulBf16!(a, bits.subarray(offset, offset + rows * k), got, 1, rows, k);
      jsBackend.matmulBf16!(a, bits.subarray(offset, offset + rows * k), want, 1, rows, k);
      const c = closeness(got, want, 1e-5, 1e-6 * Math.sqrt(k));
      assert.ok(c <= 1, `offset ${offset}: ${c}× the tolerance`);
    }
    b.free(x);
    const y = b.alloc(n);
    assert.ok(y.every((v) => v === 0));
    b.free(y);
    assert.equal(b.liveBytes(), start);
  });

  test("alloc's large buffers get transparent hugepages where the kernel offers them (madvise or always)", (t) => {
    const thp = "/sys/kernel/mm/transparent_hugepage/enabled";
    const setting = existsSync(thp) ? /\[(\w+)\]/.exec(readFileSync(thp, "utf8"))?.[1] : undefined;
    if (setting !== "madvise" && setting !== "always") return t.skip(`no transparent hugepages (${setting})`);
    const huge = () =>
      Number(/AnonHugePages:\s+(\d+)/.exec(readFileSync("/proc/self/smaps_rollup", "utf8"))?.[1]);
    const b = createNativeBackend();
    const before = huge();
    const x = b.alloc(16 * 2 ** 20); // 64 MiB
    x.fill(1); // fault it in
    // At least one 2 MiB page of the 32 (a fragmented host may not have them all).
    assert.ok(huge() - before >= 2048, `AnonHugePages grew by ${huge() - before} kB`);
    b.free(x);
  });

  test("embedding rejects ids outside the table instead of reading past it", () => {
    const b = createNativeBackend();
    const table = new Float32Array(4 * 3);
    assert.throws(
      () => b.embedding(table, Int32Array.from([0, 4]), new Float32Array(6), 2, 3),
      /id 4 of row 1/,
    );
    assert.throws(
      () => b.embeddingBackward(new Float32Array(3), Int32Array.from([-1]), table, 1, 3),
      /id -1/,
    );
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
        b.matmul(A.subarray(0, m * k), B, few, matmulArgs(m, n, k, { transB, accumulate: true }));
        b.matmul(A, B, many, matmulArgs(40, n, k, { transB, accumulate: true }));
        assert.deepEqual(few, many.subarray(0, m * n), `m=${m} transB=${transB}`);
      }
  });

  test("every ISA path agrees with the reference on the training kernels", () => {
    const script = `
      const { createNativeBackend } = await import(${JSON.stringify(repoPath("dist", "src", "backends", "native", "index.js"))});
      const { jsBackend: ref } = await import(${JSON.stringify(repoPath("dist", "src", "backends", "js", "index.js"))});
      const b = createNativeBackend({ threads: 2 });
      const r = (n, s) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + s));
      const worst = {};
      const note = (name, got, want) => {
        let w = 0;
        for (let i = 0; i < got.length; i++) w = Math.max(w, Math.abs(got[i] - want[i]) / (1e-4 + 1e-4 * Math.abs(want[i])));
        worst[name] = Math.max(worst[name] ?? 0, w);
      };
      const pair = (n) => [new Float32Array(n), new Float32Array(n)];
      for (const [T, S, hd, docs] of [[70, 70, 64, false], [33, 90, 12, true], [3, 40, 16, false]]) {
        const a = { batch: 2, seqQ: T, seqK: S, heads: 4, kvHeads: 1, headDim: hd, scale: 0.25, causal: true, qDocIds: null, kDocIds: null };
        if (docs) {
          a.qDocIds = Int32Array.from({ length: 2 * T }, (_, i) => Math.floor((i % T) / 20));
          a.kDocIds = Int32Array.from({ length: 2 * S }, (_, i) => Math.floor((i % S) / 30));
        }
        const qn = 2 * T * 4 * hd, kn = 2 * S * hd;
        const q = r(qn, 1), k = r(kn, 2), v = r(kn, 3), dout = r(qn, 4);
        const [o, ow] = pair(qn), [l, lw] = pair(2 * 4 * T);
        b.attention(q, k, v, o, l, a); ref.attention(q, k, v, ow, lw, a);
        note("attention", o, ow); note("lse", l, lw);
        const [dq, dqw] = pair(qn), [dk, dkw] = pair(kn), [dv, dvw] = pair(kn);
        b.attentionBackward(q, k, v, ow, dout, lw, dq, dk, dv, a); ref.attentionBackward(q, k, v, ow, dout, lw, dqw, dkw, dvw, a);
        note("dq", dq, dqw); note("dk", dk, dkw); note("dv", dv, dvw);
      }
      const [rows, vocab] = [5, 333];
      const logits = r(rows * vocab, 5).map((x) => 4 * x), t = Int32Array.from([1, -100, 332, 0, 7]);
      const [ls, lsw] = pair(rows), [ss, ssw] = pair(rows), [d, dw] = pair(rows * vocab);
      b.crossEntropy(logits, t, null, ls, ss, rows, vocab, -100); ref.crossEntropy(logits, t, null, lsw, ssw, rows, vocab, -100);
      b.crossEntropyBackward(logits, t, null, ssw, 0.5, d, rows, vocab, -100); ref.crossEntropyBackward(logits, t, null, ssw, 0.5, dw, rows, vocab, -100);
      note("crossEntropy", ls, lsw); note("crossEntropyBackward", d, dw);
      const n = 1001, g = r(n, 6).map((x) => 8 * x), u = r(n, 7);
      const [sw, sww] = pair(n), [dg, dgw] = pair(n), [du, duw] = pair(n);
      b.swiglu(g, u, sw, n); ref.swiglu(g, u, sww, n);
      b.swigluBackward(g, u, u, dg, du, n); ref.swigluBackward(g, u, u, dgw, duw, n);
      note("swiglu", sw, sww); note("swigluBackward", dg, dgw); note("swigluBackward", du, duw);
      const args = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 3 };
      const [p, pw] = [r(n, 8), r(n, 8)], [m, mw] = [r(n, 9), r(n, 9)], [vv, vw] = [r(n, 10).map(Math.abs), r(n, 10).map(Math.abs)];
      b.adamw(p, u, m, vv, n, args); ref.adamw(pw, u, mw, vw, n, args);
      note("adamw", p, pw);
      const pos = Int32Array.from({ length: 6 }, (_, i) => 100 * i), inv = Float32Array.from({ length: 8 }, (_, i) => 500000 ** (-i / 8));
      const x = r(6 * 2 * 16, 11), [ro, rw] = pair(x.length);
      b.rope(x, ro, pos, inv, 6, 2, 16, true); ref.rope(x, rw, pos, inv, 6, 2, 16, true);
      note("rope", ro, rw);
      console.log(JSON.stringify({ isa: b.isa, worst }));
    `;
    for (const out of eachIsa<{ isa: string; worst: Record<string, number> }>(script))
      for (const [k, w] of Object.entries(out.worst)) assert.ok(w <= 1, `${out.isa} ${k}: ${w}× tolerance`);
  });

  test("long rows (k ≥ 8192) read through their packed copy agree with the reference, m = 1..4", () => {
    const b = createNativeBackend({ threads: 2 });
    // 45 rows: one whole block of 32 and a partial one; k = 8192 and 16384 are 4 and 8 segments.
    for (const k of [8192, 16384]) {
      const n = 45;
      const bits = encodeHalf(randArray(n * k, k), "bf16");
      for (const m of [1, 2, 4]) {
        const a = randArray(m * k, m);
        const got = new Float32Array(m * n);
        const want = new Float32Array(m * n);
        b.matmulBf16!(a, bits, got, m, n, k);
        jsBackend.matmulBf16!(a, bits, want, m, n, k);
        const c = closeness(got, want, 1e-5, 1e-6 * Math.sqrt(k));
        assert.ok(c <= 1, `k=${k} m=${m}: ${c}× the tolerance`);
      }
    }
    // Several products in one call (a packed one beside plain ones) give each product's own result.
    const k = 8192;
    const ws = [encodeHalf(randArray(40 * k, 1), "bf16"), encodeHalf(randArray(7 * k, 2), "bf16")];
    const a = randArray(k, 3);
    const got = [new Float32Array(40), new Float32Array(7)];
    b.matmulBf16Many!(a, ws, got, 1, [40, 7], k);
    for (let q = 0; q < 2; q++) {
      const want = new Float32Array(got[q]!.length);
      b.matmulBf16!(a, ws[q]!, want, 1, want.length, k);
      assert.deepEqual(got[q], want, `product ${q} of matmulBf16Many`);
    }
    createNativeBackend();
  });

  test("the packed layout: blocks of 16 rows stored line by line (32 elements), a short last block", () => {
    const addon = createRequire(import.meta.url)(nativeAddonPath()) as {
      packBf16(b: Uint16Array, out: Uint16Array, n: number, k: number): void;
    };
    const [n, k] = [35, 96];
    const b = Uint16Array.from({ length: n * k }, (_, i) => i % 65521);
    const out = new Uint16Array(n * k);
    addon.packBf16(b, out, n, k);
    // Blocks of rows 0..15 and 16..31: line 0 of each of the 16 rows, then line 1 of each, …; the last
    // block (rows 32..34) likewise with 3 rows.
    const at = (r: number, l: number) => {
      const b0 = Math.floor(r / 16) * 16;
      return b0 * k + (l * Math.min(16, n - b0) + (r - b0)) * 32;
    };
    for (let r = 0; r < n; r++)
      for (let l = 0; l < k / 32; l++)
        assert.deepEqual(
          out.subarray(at(r, l), at(r, l) + 32),
          b.subarray(r * k + l * 32, r * k + (l + 1) * 32),
        );
    assert.throws(() => addon.packBf16(b, out, n / 5, 5 * k - 1), /multiple of 32/);
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
    refMatmul(A, widened, want, matmulArgs(m, n, k, { transB: true }));
    assert.ok(closeness(got, want, 1e-5, 1e-5) <= 1);
  });
});
