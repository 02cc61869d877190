// Scaled dot-product attention, forward and backward, with GQA, causal masking (KV-cache aware) and
// document masks: the wasm version of src/backends/js/attention.ts (the readable reference, which also
// documents the layouts and the maths). Same flash-attention shape: query tiles of BQ rows against key
// blocks of BK keys with an online softmax, so memory grows linearly with the sequence; the backward
// pass recomputes the probabilities from the saved log-sum-exp. Here every product inside a tile is a
// small matrix product run by one 4×8 register-blocked kernel (tileGemm), on operands packed so that
// the "B" side is contiguous and zero-padded to a multiple of 8 columns:
//   Kt, Vt  [headDim][seqK8]   keys/values transposed: S = Q·Kᵀ and dP = dO·Vᵀ read 8 keys at a time
//   Vp, Kp  [seqK][hd8]        rows padded to hd8 = headDim rounded up to 8: P·V and dS·K
//   Qp, dOp [BQ][hd8]          the query tile's rows, padded: dK += dSᵀ·Q and dV += Pᵀ·dO
// Arithmetic is f32 (the reference accumulates in f64); exp is expf4 from vecmath.ts.
//
// Threads claim units from the shared counter (zeroed by the caller): the forward pass's units are
// (batch item, head, query tile), the backward pass's (batch item, KV head), since dK and dV of a KV
// head sum over all its query heads and queries. A unit's results do not depend on who computes it.
import { expf1, expf4 } from "./vecmath";

const BQ: i32 = 64;
const BK: i32 = 64;

@inline
function up8(x: i32): i32 {
  return (x + 7) & ~7;
}

/**
 * C[M×N8] (+)= A[M×K]·B[K×N8], N8 a multiple of 8. A(i,p) at a + 4(i·ars + p·acs) (read by broadcast, any
 * layout), B(p,j) at b + 4(p·ldb + j) (rows contiguous), C(i,j) at c + 4(i·ldc + j). Rows past M in the
 * last 4-row tile repeat row M−1 and are not stored.
 */
function tileGemm(
  M: i32, N8: i32, K: i32, a: usize, ars: i32, acs: i32, b: usize, ldb: i32, c: usize, ldc: i32, accumulate: bool,
): void {
  const ab = <usize>acs * 4;
  for (let i0 = 0; i0 < M; i0 += 4) {
    const a0 = a + <usize>i0 * ars * 4;
    const a1 = a + <usize>min(i0 + 1, M - 1) * ars * 4;
    const a2 = a + <usize>min(i0 + 2, M - 1) * ars * 4;
    const a3 = a + <usize>min(i0 + 3, M - 1) * ars * 4;
    const rows = min(4, M - i0);
    for (let j0 = 0; j0 < N8; j0 += 8) {
      let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
      let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
      let bp = b + <usize>j0 * 4;
      let ao: usize = 0;
      for (let p = 0; p < K; p++) {
        const b0 = v128.load(bp);
        const b1 = v128.load(bp, 16);
        let x = v128.load32_splat(a0 + ao);
        c00 = f32x4.add(c00, f32x4.mul(x, b0));
        c01 = f32x4.add(c01, f32x4.mul(x, b1));
        x = v128.load32_splat(a1 + ao);
        c10 = f32x4.add(c10, f32x4.mul(x, b0));
        c11 = f32x4.add(c11, f32x4.mul(x, b1));
        x = v128.load32_splat(a2 + ao);
        c20 = f32x4.add(c20, f32x4.mul(x, b0));
        c21 = f32x4.add(c21, f32x4.mul(x, b1));
        x = v128.load32_splat(a3 + ao);
        c30 = f32x4.add(c30, f32x4.mul(x, b0));
        c31 = f32x4.add(c31, f32x4.mul(x, b1));
        bp += <usize>ldb * 4;
        ao += ab;
      }
      const cr = c + (<usize>i0 * ldc + j0) * 4;
      const lb = <usize>ldc * 4;
      tileStore(cr, c00, c01, accumulate);
      if (rows > 1) tileStore(cr + lb, c10, c11, accumulate);
      if (rows > 2) tileStore(cr + 2 * lb, c20, c21, accumulate);
      if (rows > 3) tileStore(cr + 3 * lb, c30, c31, accumulate);
    }
  }
}

@inline
function tileStore(c: usize, x0: v128, x1: v128, accumulate: bool): void {
  if (accumulate) {
    x0 = f32x4.add(x0, v128.load(c));
    x1 = f32x4.add(x1, v128.load(c, 16));
  }
  v128.store(c, x0);
  v128.store(c, x1, 16);
}

// rows×cols floats at src (rows `stride` floats apart) → dst [rows][ld], zero-padded to ld columns.
function packRows(src: usize, stride: i32, rows: i32, cols: i32, dst: usize, ld: i32): void {
  for (let r = 0; r < rows; r++) {
    const d = dst + <usize>r * ld * 4;
    memory.copy(d, src + <usize>r * stride * 4, <usize>cols * 4);
    if (ld > cols) memory.fill(d + <usize>cols * 4, 0, <usize>(ld - cols) * 4);
  }
}

// Transpose rows [0, rows) × cols of src (rows `stride` floats apart) into dst [cols][ld]; columns
// [rows, up8(rows)) of dst are zeroed.
function packTransposed(src: usize, stride: i32, rows: i32, cols: i32, dst: usize, ld: i32): void {
  for (let s = 0; s < rows; s++) {
    const r = src + <usize>s * stride * 4;
    for (let d = 0; d < cols; d++) store<f32>(dst + (<usize>d * ld + s) * 4, load<f32>(r + <usize>d * 4));
  }
  for (let d = 0; d < cols; d++) {
    for (let s = rows; s < up8(rows); s++) store<f32>(dst + (<usize>d * ld + s) * 4, 0);
  }
}

// True if doc ids of keys [s0, s1) and queries with ids in [qLo, qHi] cannot match.
function docsDisjoint(kDoc: usize, s0: i32, s1: i32, qLo: i32, qHi: i32): bool {
  let lo = i32.MAX_VALUE;
  let hi = i32.MIN_VALUE;
  for (let s = s0; s < s1; s++) {
    const d = load<i32>(kDoc + <usize>s * 4);
    lo = min(lo, d);
    hi = max(hi, d);
  }
  return qHi < lo || qLo > hi;
}

/** Bytes of scratch one thread needs for attention (backward when `backward`). */
export function attentionScratchBytes(seqK: i32, headDim: i32, backward: bool): i32 {
  const s8 = up8(seqK);
  const h8 = up8(headDim);
  const fwd = headDim * s8 + s8 * h8 + BQ * BK + BQ * h8 + 2 * BQ + 16;
  const bwd = 2 * headDim * s8 + 3 * s8 * h8 + 3 * BQ * h8 + 2 * BQ * BK + 2 * BQ + 16;
  return (backward ? bwd : fwd) * 4 + 64;
}

// One row of scores S[0..nb) for keys s0..s0+nb, of which the first `vis` pass the causal mask: scale
// them, set masked ones (causal, or another document) to -Infinity, and return the row's max.
function rowMaskedMax(srow: usize, nb: i32, vis: i32, scale: f32, kDoc: usize, s0: i32, qDoc: i32): f32 {
  let mx: f32 = -Infinity;
  for (let j = 0; j < vis; j++) {
    let x = load<f32>(srow + <usize>j * 4) * scale;
    if (kDoc != 0 && load<i32>(kDoc + <usize>(s0 + j) * 4) != qDoc) x = -Infinity;
    store<f32>(srow + <usize>j * 4, x);
    if (x > mx) mx = x;
  }
  for (let j = vis; j < nb; j++) store<f32>(srow + <usize>j * 4, -Infinity);
  return mx;
}

// P[j] = exp(S[j] − shift) over [0, nb) in place, returning Σ P (f32x4 with a scalar tail).
function expRow(srow: usize, nb: i32, shift: f32): f32 {
  const sh = f32x4.splat(shift);
  let acc = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= nb; j += 4) {
    const e = expf4(f32x4.sub(v128.load(srow + <usize>j * 4), sh));
    v128.store(srow + <usize>j * 4, e);
    acc = f32x4.add(acc, e);
  }
  let sum = (f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1)) + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
  for (; j < nb; j++) {
    const e = expf1(load<f32>(srow + <usize>j * 4) - shift);
    store<f32>(srow + <usize>j * 4, e);
    sum += e;
  }
  return sum;
}

/** Forward attention (see attention() in src/backends/js/attention.ts): out and lse written. */
export function attention(
  q: usize, k: usize, v: usize, out: usize, lse: usize, batch: i32, seqQ: i32, seqK: i32, heads: i32,
  kvHeads: i32, hd: i32, scale: f32, causal: bool, qDoc: usize, kDoc: usize, scratchBase: usize,
  scratchStride: i32, counter: usize, tid: i32, nth: i32,
): void {
  const group = heads / kvHeads;
  const offset = seqK - seqQ;
  const qStride = heads * hd;
  const kStride = kvHeads * hd;
  const s8 = up8(seqK);
  const h8 = up8(hd);
  const base = (scratchBase + <usize>tid * scratchStride + 63) & ~(<usize>63);
  const kt = base; // [hd][s8]
  const vp = kt + <usize>hd * s8 * 4; // [s8][h8]
  const sb = vp + <usize>s8 * h8 * 4; // [BQ][BK]
  const acc = sb + <usize>BQ * BK * 4; // [BQ][h8]
  const rowMax = acc + <usize>BQ * h8 * 4;
  const rowSum = rowMax + <usize>BQ * 4;
  // Which (b, g) is packed, and up to which key: reused while this thread's units stay on one KV head.
  let packedB = -1, packedG = -1, packedTo = 0;
  const tiles = (seqQ + BQ - 1) / BQ;
  const units = batch * heads * tiles;
  for (let u = atomic.add<i32>(counter, 1); u < units; u = atomic.add<i32>(counter, 1)) {
    const b = u / (heads * tiles);
    const h = (u / tiles) % heads;
    const t0 = (u % tiles) * BQ;
    const t1 = min(seqQ, t0 + BQ);
    const M = t1 - t0;
    const g = h / group;
    const sMax = causal ? max(0, min(seqK, t1 + offset)) : seqK;
    if (b != packedB || g != packedG || packedTo < sMax) {
      const kvBase = <usize>(b * seqK) * kStride + <usize>g * hd;
      packTransposed(k + kvBase * 4, kStride, sMax, hd, kt, s8);
      packRows(v + kvBase * 4, kStride, sMax, hd, vp, h8);
      packedB = b;
      packedG = g;
      packedTo = sMax;
    }
    for (let i = 0; i < M; i++) {
      store<f32>(rowMax + <usize>i * 4, -Infinity);
      store<f32>(rowSum + <usize>i * 4, 0);
    }
    memory.fill(acc, 0, <usize>M * h8 * 4);
    let qLo = 0, qHi = 0;
    if (qDoc != 0) {
      qLo = i32.MAX_VALUE;
      qHi = i32.MIN_VALUE;
      for (let t = t0; t < t1; t++) {
        const d = load<i32>(qDoc + <usize>(b * seqQ + t) * 4);
        qLo = min(qLo, d);
        qHi = max(qHi, d);
      }
    }
    const qTile = q + (<usize>(b * seqQ + t0) * qStride + <usize>h * hd) * 4;
    const kd = kDoc == 0 ? 0 : kDoc + <usize>(b * seqK) * 4;
    for (let s0 = 0; s0 < sMax; s0 += BK) {
      const s1 = min(sMax, s0 + BK);
      const nb = s1 - s0;
      if (kd != 0 && docsDisjoint(kd, s0, s1, qLo, qHi)) continue;
      tileGemm(M, up8(nb), hd, qTile, qStride, 1, kt + <usize>s0 * 4, s8, sb, BK, false);
      for (let i = 0; i < M; i++) {
        const t = t0 + i;
        const srow = sb + <usize>i * BK * 4;
        const vis = causal ? max(0, min(nb, t + offset + 1 - s0)) : nb;
        const qd = qDoc != 0 ? load<i32>(qDoc + <usize>(b * seqQ + t) * 4) : 0;
        const bmax = rowMaskedMax(srow, nb, vis, scale, kd, s0, qd);
        if (bmax == -Infinity) {
          memory.fill(srow, 0, <usize>nb * 4); // nothing visible in this block: P row = 0
          continue;
        }
        const old = load<f32>(rowMax + <usize>i * 4);
        const mx = max(old, bmax);
        const alpha = expf1(old - mx); // 0 on the row's first visible block
        store<f32>(rowMax + <usize>i * 4, mx);
        store<f32>(rowSum + <usize>i * 4, load<f32>(rowSum + <usize>i * 4) * alpha + expRow(srow, nb, mx));
        if (alpha != 1) {
          const ar = acc + <usize>i * h8 * 4;
          const al = f32x4.splat(alpha);
          for (let d = 0; d < h8; d += 4) v128.store(ar + <usize>d * 4, f32x4.mul(v128.load(ar + <usize>d * 4), al));
        }
      }
      tileGemm(M, h8, nb, sb, BK, 1, vp + <usize>s0 * h8 * 4, h8, acc, h8, true);
    }
    for (let i = 0; i < M; i++) {
      const t = t0 + i;
      const o = out + (<usize>(b * seqQ + t) * qStride + <usize>h * hd) * 4;
      const sum = load<f32>(rowSum + <usize>i * 4);
      const l = lse + <usize>((b * heads + h) * seqQ + t) * 4;
      if (sum == 0) {
        memory.fill(o, 0, <usize>hd * 4);
        store<f32>(l, -Infinity);
        continue;
      }
      const inv: f32 = 1 / sum;
      const ar = acc + <usize>i * h8 * 4;
      for (let d = 0; d < hd; d++) store<f32>(o + <usize>d * 4, load<f32>(ar + <usize>d * 4) * inv);
      store<f32>(l, <f32>(<f64>load<f32>(rowMax + <usize>i * 4) + Math.log(<f64>sum)));
    }
  }
}

/**
 * Backward attention (see attentionBackward() in src/backends/js/attention.ts): dq, dk, dv written.
 * Per unit (batch item b, KV head g): dK and dV accumulate in scratch over the group's query heads and
 * all query tiles; per tile and key block, with P = exp(scale·Q·Kᵀ − lse) and D = rowsum(dO∘O):
 * dP = dO·Vᵀ, dS = scale·P∘(dP − D), dV += Pᵀ·dO, dK += dSᵀ·Q, dQ += dS·K.
 */
export function attentionBackward(
  q: usize, k: usize, v: usize, out: usize, dout: usize, lse: usize, dq: usize, dk: usize, dv: usize,
  batch: i32, seqQ: i32, seqK: i32, heads: i32, kvHeads: i32, hd: i32, scale: f32, causal: bool,
  qDoc: usize, kDoc: usize, scratchBase: usize, scratchStride: i32, counter: usize, tid: i32, nth: i32,
): void {
  const group = heads / kvHeads;
  const offset = seqK - seqQ;
  const qStride = heads * hd;
  const kStride = kvHeads * hd;
  const s8 = up8(seqK);
  const h8 = up8(hd);
  const base = (scratchBase + <usize>tid * scratchStride + 63) & ~(<usize>63);
  const kt = base; // [hd][s8]
  const vt = kt + <usize>hd * s8 * 4; // [hd][s8]
  const kp = vt + <usize>hd * s8 * 4; // [s8][h8]
  const dkAcc = kp + <usize>s8 * h8 * 4; // [s8][h8]
  const dvAcc = dkAcc + <usize>s8 * h8 * 4; // [s8][h8]
  const qp = dvAcc + <usize>s8 * h8 * 4; // [BQ][h8]
  const dop = qp + <usize>BQ * h8 * 4; // [BQ][h8]
  const dqAcc = dop + <usize>BQ * h8 * 4; // [BQ][h8]
  const pb = dqAcc + <usize>BQ * h8 * 4; // [BQ][BK] scores, then P
  const db = pb + <usize>BQ * BK * 4; // [BQ][BK] dP, then dS
  const rowD = db + <usize>BQ * BK * 4;
  const rowL = rowD + <usize>BQ * 4;
  const units = batch * kvHeads;
  for (let u = atomic.add<i32>(counter, 1); u < units; u = atomic.add<i32>(counter, 1)) {
    const b = u / kvHeads;
    const g = u % kvHeads;
    const kvBase = <usize>(b * seqK) * kStride + <usize>g * hd;
    packTransposed(k + kvBase * 4, kStride, seqK, hd, kt, s8);
    packTransposed(v + kvBase * 4, kStride, seqK, hd, vt, s8);
    packRows(k + kvBase * 4, kStride, seqK, hd, kp, h8);
    memory.fill(dkAcc, 0, <usize>s8 * h8 * 8); // dkAcc and dvAcc
    const kd = kDoc == 0 ? 0 : kDoc + <usize>(b * seqK) * 4;
    for (let h = g * group; h < (g + 1) * group; h++) {
      for (let t0 = 0; t0 < seqQ; t0 += BQ) {
        const t1 = min(seqQ, t0 + BQ);
        const M = t1 - t0;
        const rowOff = <usize>(b * seqQ + t0) * qStride + <usize>h * hd;
        packRows(q + rowOff * 4, qStride, M, hd, qp, h8);
        packRows(dout + rowOff * 4, qStride, M, hd, dop, h8);
        memory.fill(dqAcc, 0, <usize>M * h8 * 4);
        let qLo = 0, qHi = 0;
        if (qDoc != 0) {
          qLo = i32.MAX_VALUE;
          qHi = i32.MIN_VALUE;
        }
        for (let i = 0; i < M; i++) {
          const t = t0 + i;
          const o = out + (rowOff + <usize>i * qStride) * 4;
          const d = dop + <usize>i * h8 * 4;
          let sum: f32 = 0;
          for (let j = 0; j < hd; j++) sum += load<f32>(d + <usize>j * 4) * load<f32>(o + <usize>j * 4);
          store<f32>(rowD + <usize>i * 4, sum);
          store<f32>(rowL + <usize>i * 4, load<f32>(lse + <usize>((b * heads + h) * seqQ + t) * 4));
          if (qDoc != 0) {
            const dd = load<i32>(qDoc + <usize>(b * seqQ + t) * 4);
            qLo = min(qLo, dd);
            qHi = max(qHi, dd);
          }
        }
        const sMax = causal ? max(0, min(seqK, t1 + offset)) : seqK;
        for (let s0 = 0; s0 < sMax; s0 += BK) {
          const s1 = min(sMax, s0 + BK);
          const nb = s1 - s0;
          if (kd != 0 && docsDisjoint(kd, s0, s1, qLo, qHi)) continue;
          tileGemm(M, up8(nb), hd, qp, h8, 1, kt + <usize>s0 * 4, s8, pb, BK, false);
          tileGemm(M, up8(nb), hd, dop, h8, 1, vt + <usize>s0 * 4, s8, db, BK, false);
          for (let i = 0; i < M; i++) {
            const t = t0 + i;
            const prow = pb + <usize>i * BK * 4;
            const drow = db + <usize>i * BK * 4;
            const l = load<f32>(rowL + <usize>i * 4);
            const vis = causal ? max(0, min(nb, t + offset + 1 - s0)) : nb;
            if (l == -Infinity || vis == 0) {
              memory.fill(prow, 0, <usize>nb * 4);
              memory.fill(drow, 0, <usize>nb * 4);
              continue;
            }
            const qd = qDoc != 0 ? load<i32>(qDoc + <usize>(b * seqQ + t) * 4) : 0;
            rowMaskedMax(prow, nb, vis, scale, kd, s0, qd);
            expRow(prow, nb, l); // P = exp(scale·S − lse); masked scores are -Infinity → 0
            const dv4 = f32x4.splat(load<f32>(rowD + <usize>i * 4));
            const sc4 = f32x4.splat(scale);
            let j = 0;
            for (; j + 4 <= nb; j += 4) {
              const o = <usize>j * 4;
              const ds = f32x4.mul(f32x4.mul(v128.load(prow + o), f32x4.sub(v128.load(drow + o), dv4)), sc4);
              v128.store(drow + o, ds);
            }
            const dD = load<f32>(rowD + <usize>i * 4);
            for (; j < nb; j++) {
              const o = <usize>j * 4;
              store<f32>(drow + o, load<f32>(prow + o) * (load<f32>(drow + o) - dD) * scale);
            }
          }
          // dV[s0..s1] += Pᵀ·dO and dK[s0..s1] += dSᵀ·Q: A(s, i) = P[i][s], read down a column.
          tileGemm(nb, h8, M, pb, 1, BK, dop, h8, dvAcc + <usize>s0 * h8 * 4, h8, true);
          tileGemm(nb, h8, M, db, 1, BK, qp, h8, dkAcc + <usize>s0 * h8 * 4, h8, true);
          // dQ += dS·K.
          tileGemm(M, h8, nb, db, BK, 1, kp + <usize>s0 * h8 * 4, h8, dqAcc, h8, true);
        }
        for (let i = 0; i < M; i++) {
          const o = dq + (rowOff + <usize>i * qStride) * 4;
          memory.copy(o, dqAcc + <usize>i * h8 * 4, <usize>hd * 4);
        }
      }
    }
    for (let s = 0; s < seqK; s++) {
      const o = (kvBase + <usize>s * kStride) * 4;
      memory.copy(dk + o, dkAcc + <usize>s * h8 * 4, <usize>hd * 4);
      memory.copy(dv + o, dvAcc + <usize>s * h8 * 4, <usize>hd * 4);
    }
  }
}
