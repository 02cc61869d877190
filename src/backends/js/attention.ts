// Reference (js backend) scaled dot-product attention, forward and backward, with GQA, causal masking
// (KV-cache aware) and document masking. This is the readable kernel that faster backends are tested
// against, so it favours clarity over speed, but it has the flash-attention shape: queries are processed
// in tiles of BLOCK_Q rows against key blocks of BLOCK_K keys with an online softmax (running max and
// running sum), so memory grows with the sequence length, never with its square. The backward pass
// recomputes the probabilities block by block from q, k and the saved log-sum-exp.
//
// Layouts (see src/backends/backend.ts): q, out, dout, dq [batch, seqQ, heads, headDim];
// k, v, dk, dv [batch, seqK, kvHeads, headDim]; lse [batch, heads, seqQ].
// Masking: query t sees key s iff (!causal || s <= t + seqK - seqQ) and (no doc ids || qDoc == kDoc).
// A query with no visible key gets out = 0, lse = -Infinity and zero gradient.

import type { AttentionArgs } from "../backend.js";

/** Query rows per tile. */
const BLOCK_Q = 32;
/** Keys per block of the online softmax. */
const BLOCK_K = 64;

/**
 * For each (batch item, key block): the smallest and largest document id among its keys, so that a
 * query tile whose ids fall outside that range can skip the whole block. Null without doc ids.
 */
interface DocRanges {
  qDoc: Int32Array;
  kDoc: Int32Array;
  /** [batch * numKeyBlocks] */
  kMin: Int32Array;
  kMax: Int32Array;
}

function docRanges(args: AttentionArgs): DocRanges | null {
  const { qDocIds, kDocIds, batch, seqK } = args;
  if (qDocIds === null && kDocIds === null) return null;
  if (qDocIds === null || kDocIds === null) {
    throw new Error("attention: qDocIds and kDocIds must be given together");
  }
  const nkb = Math.ceil(seqK / BLOCK_K);
  const kMin = new Int32Array(batch * nkb);
  const kMax = new Int32Array(batch * nkb);
  for (let b = 0; b < batch; b++) {
    for (let kb = 0; kb < nkb; kb++) {
      let lo = 0x7fffffff;
      let hi = -0x80000000;
      const end = Math.min(seqK, (kb + 1) * BLOCK_K);
      for (let s = kb * BLOCK_K; s < end; s++) {
        const d = kDocIds[b * seqK + s]!;
        if (d < lo) lo = d;
        if (d > hi) hi = d;
      }
      kMin[b * nkb + kb] = lo;
      kMax[b * nkb + kb] = hi;
    }
  }
  return { qDoc: qDocIds, kDoc: kDocIds, kMin, kMax };
}

/** Smallest and largest query doc id in rows [t0, t1) of batch item b. */
function queryDocRange(qDoc: Int32Array, base: number, t0: number, t1: number): [number, number] {
  let lo = 0x7fffffff;
  let hi = -0x80000000;
  for (let t = t0; t < t1; t++) {
    const d = qDoc[base + t]!;
    if (d < lo) lo = d;
    if (d > hi) hi = d;
  }
  return [lo, hi];
}

/**
 * True if no query in [t0, t1) can see any key in [s0, s1) (batch item b, key block kb): the block lies
 * entirely above the causal diagonal, or the document ids of queries and keys cannot overlap.
 */
function blockMasked(
  args: AttentionArgs,
  docs: DocRanges | null,
  qDocLo: number,
  qDocHi: number,
  b: number,
  kb: number,
  t1: number,
  s0: number,
): boolean {
  if (args.causal && s0 > t1 - 1 + (args.seqK - args.seqQ)) return true;
  if (docs !== null) {
    const i = b * Math.ceil(args.seqK / BLOCK_K) + kb;
    if (qDocHi < docs.kMin[i]! || qDocLo > docs.kMax[i]!) return true;
  }
  return false;
}

/** Dot product of a[ai .. ai+n) and b[bi .. bi+n), in f64. */
function dot(a: ArrayLike<number>, ai: number, b: ArrayLike<number>, bi: number, n: number): number {
  let acc = 0;
  for (let d = 0; d < n; d++) acc += a[ai + d]! * b[bi + d]!;
  return acc;
}

/**
 * Forward attention: out = softmax(scale · q·kᵀ + mask) · v per (batch, head), and
 * lse = log Σ_s exp(scale · q_t·k_s) over visible keys.
 */
export function attention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  out: Float32Array,
  lse: Float32Array,
  args: AttentionArgs,
): void {
  const { batch, seqQ, seqK, heads, kvHeads, headDim: hd, scale, causal } = args;
  const group = heads / kvHeads;
  const offset = seqK - seqQ; // query t sits at absolute position t + offset
  const docs = docRanges(args);
  const qStride = heads * hd; // elements between consecutive positions of q/out
  const kStride = kvHeads * hd; // ... and of k/v

  // Per-tile state of the online softmax, for each query row of the tile.
  const rowMax = new Float64Array(BLOCK_Q); // running max of the scores seen so far
  const rowSum = new Float64Array(BLOCK_Q); // running Σ exp(score - rowMax)
  const acc = new Float64Array(BLOCK_Q * hd); // running Σ exp(score - rowMax) · v
  const p = new Float64Array(BLOCK_K); // scaled scores of one row against one block (-Infinity: masked)

  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / group);
      for (let t0 = 0; t0 < seqQ; t0 += BLOCK_Q) {
        const t1 = Math.min(seqQ, t0 + BLOCK_Q);
        rowMax.fill(Number.NEGATIVE_INFINITY);
        rowSum.fill(0);
        acc.fill(0);
        const [qDocLo, qDocHi] = docs ? queryDocRange(docs.qDoc, b * seqQ, t0, t1) : [0, 0];

        for (let s0 = 0, kb = 0; s0 < seqK; s0 += BLOCK_K, kb++) {
          if (blockMasked(args, docs, qDocLo, qDocHi, b, kb, t1, s0)) continue;
          const s1 = Math.min(seqK, s0 + BLOCK_K);

          for (let t = t0; t < t1; t++) {
            const i = t - t0;
            const qOff = (b * seqQ + t) * qStride + h * hd;
            // Keys of this block the row may see under the causal mask: [s0, sEnd).
            const sEnd = causal ? Math.min(s1, t + offset + 1) : s1;
            if (sEnd <= s0) continue;
            const qDoc = docs ? docs.qDoc[b * seqQ + t]! : 0;

            // Scores of this row against the block, and their max.
            let blockMax = Number.NEGATIVE_INFINITY;
            for (let s = s0; s < sEnd; s++) {
              let score = Number.NEGATIVE_INFINITY;
              if (docs === null || docs.kDoc[b * seqK + s] === qDoc) {
                score = scale * dot(q, qOff, k, (b * seqK + s) * kStride + g * hd, hd);
              }
              p[s - s0] = score;
              if (!(score <= blockMax)) blockMax = score; // written so that a NaN score propagates
            }
            if (blockMax === Number.NEGATIVE_INFINITY) continue; // every key of the block is masked

            // Online softmax: rescale what was accumulated under the old max, then add this block.
            const newMax = Math.max(rowMax[i]!, blockMax);
            const alpha = Math.exp(rowMax[i]! - newMax); // 0 on the row's first visible block
            rowMax[i] = newMax;
            let sum = rowSum[i]! * alpha;
            const a = i * hd;
            if (alpha !== 1) for (let d = 0; d < hd; d++) acc[a + d] *= alpha;
            for (let s = s0; s < sEnd; s++) {
              const w = Math.exp(p[s - s0]! - newMax); // exp(-Infinity) = 0 for masked keys
              if (w === 0) continue;
              sum += w;
              const vOff = (b * seqK + s) * kStride + g * hd;
              for (let d = 0; d < hd; d++) acc[a + d] += w * v[vOff + d]!;
            }
            rowSum[i] = sum;
          }
        }

        // Normalise and write the tile.
        for (let t = t0; t < t1; t++) {
          const i = t - t0;
          const oOff = (b * seqQ + t) * qStride + h * hd;
          const sum = rowSum[i]!;
          if (sum === 0) {
            out.fill(0, oOff, oOff + hd);
            lse[(b * heads + h) * seqQ + t] = Number.NEGATIVE_INFINITY;
            continue;
          }
          const inv = 1 / sum;
          for (let d = 0; d < hd; d++) out[oOff + d] = acc[i * hd + d]! * inv;
          lse[(b * heads + h) * seqQ + t] = rowMax[i]! + Math.log(sum);
        }
      }
    }
  }
}

/**
 * Backward attention. With P = exp(scale · q·kᵀ - lse) (recomputed per block), dO = dout and
 * D_t = Σ_d dO_t · O_t:  dV = Pᵀ·dO,  dP = dO·Vᵀ,  dS = P ∘ (dP - D),  dQ = scale · dS·K,
 * dK = scale · dSᵀ·Q, with dK and dV summed over the query heads sharing a KV head.
 * dq, dk, dv are overwritten.
 */
export function attentionBackward(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  out: Float32Array,
  dout: Float32Array,
  lse: Float32Array,
  dq: Float32Array,
  dk: Float32Array,
  dv: Float32Array,
  args: AttentionArgs,
): void {
  const { batch, seqQ, seqK, heads, kvHeads, headDim: hd, scale, causal } = args;
  const group = heads / kvHeads;
  const offset = seqK - seqQ;
  const docs = docRanges(args);
  const qStride = heads * hd;
  const kStride = kvHeads * hd;

  // dK and dV of one (batch item, KV head), accumulated over its query heads: linear in seqK.
  const dkAcc = new Float64Array(seqK * hd);
  const dvAcc = new Float64Array(seqK * hd);
  const dqAcc = new Float64Array(BLOCK_Q * hd); // dQ of the current query tile
  const rowD = new Float64Array(BLOCK_Q); // D_t of the current query tile

  for (let b = 0; b < batch; b++) {
    for (let g = 0; g < kvHeads; g++) {
      dkAcc.fill(0);
      dvAcc.fill(0);
      for (let h = g * group; h < (g + 1) * group; h++) {
        for (let t0 = 0; t0 < seqQ; t0 += BLOCK_Q) {
          const t1 = Math.min(seqQ, t0 + BLOCK_Q);
          dqAcc.fill(0);
          for (let t = t0; t < t1; t++) {
            const o = (b * seqQ + t) * qStride + h * hd;
            rowD[t - t0] = dot(dout, o, out, o, hd);
          }
          const [qDocLo, qDocHi] = docs ? queryDocRange(docs.qDoc, b * seqQ, t0, t1) : [0, 0];

          for (let s0 = 0, kb = 0; s0 < seqK; s0 += BLOCK_K, kb++) {
            if (blockMasked(args, docs, qDocLo, qDocHi, b, kb, t1, s0)) continue;
            const s1 = Math.min(seqK, s0 + BLOCK_K);

            for (let t = t0; t < t1; t++) {
              const i = t - t0;
              const rowLse = lse[(b * heads + h) * seqQ + t]!;
              if (rowLse === Number.NEGATIVE_INFINITY) continue; // no visible key: zero gradient
              const sEnd = causal ? Math.min(s1, t + offset + 1) : s1;
              const qOff = (b * seqQ + t) * qStride + h * hd;
              const qDoc = docs ? docs.qDoc[b * seqQ + t]! : 0;
              const Dt = rowD[i]!;
              const a = i * hd;

              for (let s = s0; s < sEnd; s++) {
                if (docs !== null && docs.kDoc[b * seqK + s] !== qDoc) continue;
                const kOff = (b * seqK + s) * kStride + g * hd;
                const prob = Math.exp(scale * dot(q, qOff, k, kOff, hd) - rowLse);
                const dp = dot(dout, qOff, v, kOff, hd);
                const ds = prob * (dp - Dt) * scale; // gradient w.r.t. the unscaled score q·k
                const kv = s * hd;
                for (let d = 0; d < hd; d++) {
                  dqAcc[a + d] += ds * k[kOff + d]!;
                  dkAcc[kv + d] += ds * q[qOff + d]!;
                  dvAcc[kv + d] += prob * dout[qOff + d]!;
                }
              }
            }
          }

          for (let t = t0; t < t1; t++) {
            const o = (b * seqQ + t) * qStride + h * hd;
            const a = (t - t0) * hd;
            for (let d = 0; d < hd; d++) dq[o + d] = dqAcc[a + d]!;
          }
        }
      }
      for (let s = 0; s < seqK; s++) {
        const o = (b * seqK + s) * kStride + g * hd;
        for (let d = 0; d < hd; d++) {
          dk[o + d] = dkAcc[s * hd + d]!;
          dv[o + d] = dvAcc[s * hd + d]!;
        }
      }
    }
  }
}
