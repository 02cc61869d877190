// The op front end: each function checks its inputs (errors name the op and the shapes), runs the
// active backend's forward kernel, and records one tape node whose backward calls one kernel per input.
// Nothing is broadcast unless the op says so.
import type { AttentionArgs, MatmulArgs } from "../backends/backend.js";
import { getBackend } from "../backends/index.js";
import { linearBf16 } from "./linearBf16.js";
import { linearQuant, QuantTensor } from "./quant.js";
import { needsGrad, record } from "./tape.js";
import { fromArray, shapeStr, sizeOf, type Tensor, zeros } from "./tensor.js";

function f32(op: string, ...ts: Tensor[]): void {
  for (const t of ts)
    if (t.dtype !== "f32") throw new Error(`${op}: ${t} is ${t.dtype}; compute ops take f32 (call toF32())`);
}

function sameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.size !== b.size || a.rank !== b.rank || a.shape.some((d, i) => d !== b.shape[i]))
    throw new Error(`${op}: shapes differ: ${shapeStr(a.shape)} vs ${shapeStr(b.shape)}`);
}

// --- matmul -----------------------------------------------------------------------------------

export interface MatmulOptions {
  /** Use Aᵀ: a's last two dimensions are k×m. */
  transA?: boolean;
  /** Use Bᵀ: b's last two dimensions are n×k (PyTorch weight layout). */
  transB?: boolean;
}

/**
 * op(a) · op(b). a: [...batch, m, k]; b: [k, n] (shared by every batch item) or [...batch, k, n] with
 * exactly a's batch dimensions; a may also be 2-D against a batched b. Result: [...batch, m, n].
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  f32("matmul", a, b);
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  if (a.rank < 2 || b.rank < 2)
    throw new Error(`matmul: operands need rank ≥ 2, got ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`);
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  let m = transA ? ac : ar;
  const k = transA ? ar : ac;
  const kb = transB ? bc : br;
  const n = transB ? br : bc;
  if (k !== kb)
    throw new Error(
      `matmul: inner dimensions differ: a ${shapeStr(a.shape)}${transA ? "ᵀ" : ""} has k=${k}, b ${shapeStr(b.shape)}${transB ? "ᵀ" : ""} has k=${kb}`,
    );
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  if (bBatch.length > 0 && aBatch.length > 0 && shapeStr(aBatch) !== shapeStr(bBatch))
    throw new Error(
      `matmul: batch dimensions differ: a ${shapeStr(a.shape)} vs b ${shapeStr(b.shape)} (only a 2-D operand is broadcast)`,
    );
  const batchShape = aBatch.length > 0 ? aBatch : bBatch;
  const out = zeros([...batchShape, m, n]);
  let batch = sizeOf(batchShape);
  let aB = aBatch.length > 0;
  const bB = bBatch.length > 0;
  if (aB && !bB && !transA) {
    // [batch·m, k] · op(B): one plain product (the x·Wᵀ case).
    m *= batch;
    batch = 1;
    aB = false;
  }
  gemm(a.data, b.data, out.data, batch, m, n, k, transA, transB, aB, bB, true, false);

  if (needsGrad(a, b)) {
    const B1 = batch;
    record(out, [a, b], (g, sink) => {
      // d op(A) = dC·op(B)ᵀ and d op(B) = op(A)ᵀ·dC, each written in its operand's stored layout.
      sink(a, (dst, acc) => {
        if (!transA) gemm(g, b.data, dst, B1, m, k, n, false, !transB, true, bB, aB, acc);
        else gemm(b.data, g, dst, B1, k, m, n, transB, true, bB, true, aB, acc);
      });
      sink(b, (dst, acc) => {
        if (!transB) gemm(a.data, g, dst, B1, k, n, m, !transA, false, aB, true, bB, acc);
        else gemm(g, a.data, dst, B1, n, k, m, true, transA, true, aB, bB, acc);
      });
    });
  }
  return out;
}

/**
 * C (+)= op(A)·op(B) over `batch` items. An operand that is not batched is shared by every item; when
 * C is not batched (the gradient of a shared operand) the items' products are summed into it.
 */
function gemm(
  A: Float32Array,
  B: Float32Array,
  C: Float32Array,
  batch: number,
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
  aBatched: boolean,
  bBatched: boolean,
  cBatched: boolean,
  accumulate: boolean,
): void {
  const backend = getBackend();
  const args: MatmulArgs = {
    batch,
    m,
    n,
    k,
    transA,
    transB,
    strideA: aBatched ? m * k : 0,
    strideB: bBatched ? k * n : 0,
    strideC: m * n,
    accumulate,
  };
  if (cBatched || batch === 1) {
    backend.matmul(A, B, C, args);
    return;
  }
  for (let i = 0; i < batch; i++) {
    const Ai = aBatched ? A.subarray(i * m * k, (i + 1) * m * k) : A;
    const Bi = bBatched ? B.subarray(i * k * n, (i + 1) * k * n) : B;
    backend.matmul(Ai, Bi, C, {
      ...args,
      batch: 1,
      strideA: 0,
      strideB: 0,
      strideC: 0,
      accumulate: accumulate || i > 0,
    });
  }
}

/**
 * x · Wᵀ for a PyTorch-layout weight W [out, in]: x [..., in] → [..., out]. A bf16 W is used as it is
 * stored (linearBf16.ts), and so is a quantised W (quant.ts): both are frozen, with x's gradient dy·W.
 */
export function linear(x: Tensor, w: Tensor | QuantTensor): Tensor {
  if (w.rank !== 2) throw new Error(`linear: weight must be 2-D [out, in], got ${shapeStr(w.shape)}`);
  if (x.shape[x.rank - 1] !== w.shape[1])
    throw new Error(
      `linear: input ${shapeStr(x.shape)} has ${x.shape[x.rank - 1]} features, weight ${shapeStr(w.shape)} expects ${w.shape[1]}`,
    );
  const rows = x.size / w.shape[1]!;
  const x2 = reshape(x, [rows, w.shape[1]!]);
  const y =
    w instanceof QuantTensor
      ? linearQuant(x2, w)
      : w.dtype === "bf16"
        ? linearBf16(x2, w)
        : matmul(x2, w, { transB: true });
  return reshape(y, [...x.shape.slice(0, -1), w.shape[0]!]);
}

// --- shape ------------------------------------------------------------------------------------

/** Same data, another shape of the same size (a view; no copy). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const out = x.view(shape);
  if (needsGrad(x)) record(out, [], (g, sink) => sink(x, (dst, acc) => copyInto(dst, g, acc)));
  return out;
}

function copyInto(dst: Float32Array, src: Float32Array, accumulate: boolean): void {
  if (accumulate) getBackend().axpy(dst, src, 1, src.length);
  else dst.set(src);
}

// --- elementwise ------------------------------------------------------------------------------

/** a + b (same shape). */
export function add(a: Tensor, b: Tensor): Tensor {
  f32("add", a, b);
  sameShape("add", a, b);
  const out = zeros(a.shape);
  getBackend().add(a.data, b.data, out.data, a.size);
  if (needsGrad(a, b))
    record(out, [], (g, sink) => {
      sink(a, (dst, acc) => copyInto(dst, g, acc));
      sink(b, (dst, acc) => copyInto(dst, g, acc));
    });
  return out;
}

/** a ⊙ b (same shape). */
export function mul(a: Tensor, b: Tensor): Tensor {
  f32("mul", a, b);
  sameShape("mul", a, b);
  const backend = getBackend();
  const out = zeros(a.shape);
  backend.mul(a.data, b.data, out.data, a.size);
  if (needsGrad(a, b))
    record(out, [a, b], (g, sink) => {
      sink(a, (dst, acc) => productInto(dst, g, b.data, acc));
      sink(b, (dst, acc) => productInto(dst, g, a.data, acc));
    });
  return out;
}

function productInto(dst: Float32Array, x: Float32Array, y: Float32Array, accumulate: boolean): void {
  const backend = getBackend();
  if (!accumulate) {
    backend.mul(x, y, dst, x.length);
    return;
  }
  const tmp = backend.alloc(x.length);
  backend.mul(x, y, tmp, x.length);
  backend.axpy(dst, tmp, 1, x.length);
  backend.free(tmp);
}

/** a · s for a number s. */
export function scale(a: Tensor, s: number): Tensor {
  f32("scale", a);
  const out = zeros(a.shape);
  getBackend().scale(a.data, s, out.data, a.size);
  if (needsGrad(a))
    record(out, [], (g, sink) =>
      sink(a, (dst, acc) => {
        if (acc) getBackend().axpy(dst, g, s, g.length);
        else getBackend().scale(g, s, dst, g.length);
      }),
    );
  return out;
}

/** Sum of all elements, as a one-element tensor [1]. */
export function sum(a: Tensor): Tensor {
  f32("sum", a);
  const out = fromArray([getBackend().sum(a.data, a.size)], [1]);
  if (needsGrad(a)) record(out, [], (g, sink) => sink(a, (dst, acc) => fillInto(dst, g[0]!, acc)));
  return out;
}

/** Mean of all elements, as a one-element tensor [1]. */
export function mean(a: Tensor): Tensor {
  if (a.size === 0) throw new Error(`mean: empty tensor ${shapeStr(a.shape)}`);
  return scale(sum(a), 1 / a.size);
}

function fillInto(dst: Float32Array, v: number, accumulate: boolean): void {
  if (!accumulate) dst.fill(v);
  else for (let i = 0; i < dst.length; i++) dst[i]! += v;
}

// --- Llama blocks -----------------------------------------------------------------------------

/** RMSNorm over the last dimension: x · rsqrt(mean(x²) + eps) · w. */
export function rmsNorm(x: Tensor, w: Tensor, eps: number): Tensor {
  f32("rmsNorm", x, w);
  const dim = x.shape[x.rank - 1]!;
  if (w.rank !== 1 || w.size !== dim)
    throw new Error(
      `rmsNorm: weight ${shapeStr(w.shape)} does not match x ${shapeStr(x.shape)} (last dim ${dim})`,
    );
  const backend = getBackend();
  const rows = x.size / dim;
  const out = zeros(x.shape);
  const rstd = backend.alloc(rows);
  backend.rmsNorm(x.data, w.data, out.data, rstd, rows, dim, eps);
  if (needsGrad(x, w)) {
    record(
      out,
      [x, w],
      (g, sink) => {
        const dx = backend.alloc(x.size);
        const dw = w.requiresGrad ? backend.alloc(dim) : null;
        backend.rmsNormBackward(g, x.data, w.data, rstd, dx, dw, rows, dim);
        sink(x, (dst, acc) => copyInto(dst, dx, acc));
        if (dw) sink(w, (dst, acc) => copyInto(dst, dw, acc));
        backend.free(dx);
        if (dw) backend.free(dw);
      },
      [rstd],
    );
  } else backend.free(rstd);
  return out;
}

/**
 * Rotary position embedding in the split-halves layout. x: [batch, seq, heads, headDim];
 * positions: one per (batch, seq) token; invFreq: headDim/2 frequencies (already scaled for Llama 3.1).
 */
export function rope(x: Tensor, positions: Int32Array, invFreq: Float32Array): Tensor {
  f32("rope", x);
  if (x.rank !== 4) throw new Error(`rope: x must be [batch, seq, heads, headDim], got ${shapeStr(x.shape)}`);
  const [b, t, heads, hd] = x.shape as [number, number, number, number];
  if (hd % 2 !== 0) throw new Error(`rope: headDim ${hd} must be even`);
  if (positions.length !== b * t)
    throw new Error(`rope: ${positions.length} positions for x ${shapeStr(x.shape)} (need ${b * t})`);
  if (invFreq.length !== hd / 2)
    throw new Error(`rope: ${invFreq.length} frequencies for headDim ${hd} (need ${hd / 2})`);
  const out = zeros(x.shape);
  getBackend().rope(x.data, out.data, positions, invFreq, b * t, heads, hd, false);
  if (needsGrad(x))
    record(out, [], (g, sink) =>
      sink(x, (dst, acc) => {
        const backend = getBackend();
        if (!acc) backend.rope(g, dst, positions, invFreq, b * t, heads, hd, true);
        else {
          const tmp = backend.alloc(g.length);
          backend.rope(g, tmp, positions, invFreq, b * t, heads, hd, true);
          backend.axpy(dst, tmp, 1, g.length);
          backend.free(tmp);
        }
      }),
    );
  return out;
}

/** The SwiGLU product silu(gate) ⊙ up. */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  f32("swiglu", gate, up);
  sameShape("swiglu", gate, up);
  const out = zeros(gate.shape);
  getBackend().swiglu(gate.data, up.data, out.data, gate.size);
  if (needsGrad(gate, up))
    record(out, [gate, up], (g, sink) => {
      const backend = getBackend();
      const n = gate.size;
      const dg = backend.alloc(n);
      const du = backend.alloc(n);
      backend.swigluBackward(gate.data, up.data, g, dg, du, n);
      sink(gate, (dst, acc) => copyInto(dst, dg, acc));
      sink(up, (dst, acc) => copyInto(dst, du, acc));
      backend.free(dg);
      backend.free(du);
    });
  return out;
}

export interface AttentionOptions {
  /** Causal mask (default true). */
  causal?: boolean;
  /** Document id per query token [batch·seqQ] and per key token [batch·seqK] (document mask). */
  docIds?: Int32Array;
  kDocIds?: Int32Array;
  /** Softmax scale (default 1/sqrt(headDim)). */
  scale?: number;
}

/**
 * Scaled dot-product attention with grouped KV heads. q: [batch, seqQ, heads, headDim];
 * k, v: [batch, seqK, kvHeads, headDim]; returns [batch, seqQ, heads, headDim]. Memory is linear in
 * the sequence length (the kernels are tiled; no seqQ×seqK matrix is stored).
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  f32("attention", q, k, v);
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4)
    throw new Error(
      `attention: q, k, v must be 4-D, got ${shapeStr(q.shape)}, ${shapeStr(k.shape)}, ${shapeStr(v.shape)}`,
    );
  sameShape("attention (k vs v)", k, v);
  const [batch, seqQ, heads, headDim] = q.shape as [number, number, number, number];
  const [kb, seqK, kvHeads, kd] = k.shape as [number, number, number, number];
  if (kb !== batch || kd !== headDim)
    throw new Error(
      `attention: q ${shapeStr(q.shape)} and k ${shapeStr(k.shape)} differ in batch or headDim`,
    );
  if (heads % kvHeads !== 0)
    throw new Error(`attention: ${heads} query heads are not a multiple of ${kvHeads} KV heads`);
  if (seqK < seqQ) throw new Error(`attention: fewer keys (${seqK}) than queries (${seqQ})`);
  const qDoc = opts.docIds ?? null;
  const kDoc = opts.kDocIds ?? (qDoc && seqK === seqQ ? qDoc : null);
  if (qDoc && qDoc.length !== batch * seqQ)
    throw new Error(`attention: ${qDoc.length} query document ids, need ${batch * seqQ}`);
  if (qDoc && !kDoc) throw new Error("attention: docIds with seqK ≠ seqQ needs kDocIds");
  if (kDoc && kDoc.length !== batch * seqK)
    throw new Error(`attention: ${kDoc.length} key document ids, need ${batch * seqK}`);
  const args: AttentionArgs = {
    batch,
    seqQ,
    seqK,
    heads,
    kvHeads,
    headDim,
    scale: opts.scale ?? 1 / Math.sqrt(headDim),
    causal: opts.causal ?? true,
    qDocIds: qDoc,
    kDocIds: kDoc,
  };
  const backend = getBackend();
  const out = zeros(q.shape);
  const lse = backend.alloc(batch * heads * seqQ);
  backend.attention(q.data, k.data, v.data, out.data, lse, args);
  if (needsGrad(q, k, v)) {
    record(
      out,
      [q, k, v, out],
      (g, sink) => {
        const dq = backend.alloc(q.size);
        const dk = backend.alloc(k.size);
        const dv = backend.alloc(v.size);
        backend.attentionBackward(q.data, k.data, v.data, out.data, g, lse, dq, dk, dv, args);
        sink(q, (dst, acc) => copyInto(dst, dq, acc));
        sink(k, (dst, acc) => copyInto(dst, dk, acc));
        sink(v, (dst, acc) => copyInto(dst, dv, acc));
        for (const buf of [dq, dk, dv]) backend.free(buf);
      },
      [lse],
    );
  } else backend.free(lse);
  return out;
}

/** Rows of `table` [vocab, dim] picked by ids; result [...idsShape, dim]. */
export function embedding(
  table: Tensor,
  ids: Int32Array,
  idsShape: readonly number[] = [ids.length],
): Tensor {
  f32("embedding", table);
  if (table.rank !== 2)
    throw new Error(`embedding: table must be [vocab, dim], got ${shapeStr(table.shape)}`);
  if (sizeOf(idsShape) !== ids.length)
    throw new Error(`embedding: ${ids.length} ids for shape ${shapeStr(idsShape)}`);
  const [vocab, dim] = table.shape as [number, number];
  for (let i = 0; i < ids.length; i++)
    if (!(ids[i]! >= 0 && ids[i]! < vocab))
      throw new Error(`embedding: id ${ids[i]} at position ${i} is outside the vocabulary [0, ${vocab})`);
  const out = zeros([...idsShape, dim]);
  getBackend().embedding(table.data, ids, out.data, ids.length, dim);
  if (needsGrad(table))
    record(out, [], (g, sink) =>
      sink(table, (dst, acc) => {
        if (!acc) dst.fill(0);
        getBackend().embeddingBackward(g, ids, dst, ids.length, dim);
      }),
    );
  return out;
}

export interface CrossEntropyOptions {
  /** Targets equal to this are skipped (default −100, as PyTorch). */
  ignoreIndex?: number;
  /** Per-token loss weights (e.g. 0 on prompt tokens in SFT); same length as targets. */
  mask?: Float32Array;
}

/**
 * Mean cross-entropy of logits [..., vocab] against integer targets (one per row), averaged over the
 * rows that count (weights from ignoreIndex and mask). Fused: the softmax is never stored.
 */
export function crossEntropy(logits: Tensor, targets: Int32Array, opts: CrossEntropyOptions = {}): Tensor {
  f32("crossEntropy", logits);
  const vocab = logits.shape[logits.rank - 1]!;
  const rows = logits.size / vocab;
  if (targets.length !== rows)
    throw new Error(
      `crossEntropy: ${targets.length} targets for logits ${shapeStr(logits.shape)} (${rows} rows)`,
    );
  const mask = opts.mask ?? null;
  if (mask && mask.length !== rows) throw new Error(`crossEntropy: mask of ${mask.length} for ${rows} rows`);
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const backend = getBackend();
  const losses = backend.alloc(rows);
  const lse = backend.alloc(rows);
  backend.crossEntropy(logits.data, targets, mask, losses, lse, rows, vocab, ignoreIndex);
  let weight = 0;
  for (let r = 0; r < rows; r++) if (targets[r] !== ignoreIndex) weight += mask ? mask[r]! : 1;
  const total = backend.sum(losses, rows);
  backend.free(losses);
  const out = fromArray([weight > 0 ? total / weight : 0], [1]);
  if (needsGrad(logits) && weight > 0) {
    record(
      out,
      [logits],
      (g, sink) =>
        sink(logits, (dst, acc) => {
          const s = g[0]! / weight;
          if (!acc)
            backend.crossEntropyBackward(logits.data, targets, mask, lse, s, dst, rows, vocab, ignoreIndex);
          else {
            const tmp = backend.alloc(logits.size);
            backend.crossEntropyBackward(logits.data, targets, mask, lse, s, tmp, rows, vocab, ignoreIndex);
            backend.axpy(dst, tmp, 1, logits.size);
            backend.free(tmp);
          }
        }),
      [lse],
    );
  } else backend.free(lse);
  return out;
}

/** Softmax over the last dimension. */
export function softmax(x: Tensor): Tensor {
  f32("softmax", x);
  const cols = x.shape[x.rank - 1]!;
  const rows = x.size / cols;
  const out = zeros(x.shape);
  getBackend().softmax(x.data, out.data, rows, cols);
  if (needsGrad(x))
    record(out, [out], (g, sink) =>
      sink(x, (dst, acc) => {
        // dx = y ⊙ (dy − Σ dy⊙y) per row.
        const y = out.data;
        for (let r = 0; r < rows; r++) {
          const o = r * cols;
          let dot = 0;
          for (let i = 0; i < cols; i++) dot += g[o + i]! * y[o + i]!;
          for (let i = 0; i < cols; i++) {
            const d = y[o + i]! * (g[o + i]! - dot);
            dst[o + i] = acc ? dst[o + i]! + d : d;
          }
        }
      }),
    );
  return out;
}
