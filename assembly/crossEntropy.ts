// Fused cross-entropy over rows of logits, forward and backward: the wasm version of
// src/backends/js/crossEntropy.ts (the reference, which documents the contract). The softmax is never
// stored: the forward pass keeps a stable log-sum-exp per row (max, then Σ exp(x − max) accumulated in
// f64, with exp from vecmath.ts), and the backward pass writes dlogits straight from the logits and that
// lse (dlogits may be the logits themselves). Row weight w_r: 0 for the ignore index, else mask[r]
// (1 without a mask; mask is 0 when absent). Targets are checked by the caller. Threads split the rows.
import { expf1, expf4 } from "./vecmath";

@inline
function rowWeight(t: i32, r: i32, mask: usize, ignoreIndex: i32): f64 {
  if (t == ignoreIndex) return 0;
  return mask == 0 ? 1 : <f64>load<f32>(mask + <usize>r * 4);
}

/** losses[r] = w_r·(lse[r] − logits[r][targets[r]]), lse[r] = logsumexp(logits[r]). */
export function crossEntropy(
  logits: usize, targets: usize, mask: usize, losses: usize, lse: usize, rows: i32, vocab: i32, ignoreIndex: i32,
  tid: i32, nth: i32,
): void {
  const r0 = <i32>((<i64>rows * tid) / nth);
  const r1 = <i32>((<i64>rows * (tid + 1)) / nth);
  const v4 = vocab & ~3;
  for (let r = r0; r < r1; r++) {
    const x = logits + <usize>r * vocab * 4;
    let mv = f32x4.splat(-Infinity);
    for (let j = 0; j < v4; j += 4) mv = f32x4.max(mv, v128.load(x + <usize>j * 4)); // NaN propagates
    let mx = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
    for (let j = v4; j < vocab; j++) mx = max(mx, load<f32>(x + <usize>j * 4));
    const m4 = f32x4.splat(mx);
    let s0 = f64x2.splat(0), s1 = f64x2.splat(0);
    for (let j = 0; j < v4; j += 4) {
      const e = expf4(f32x4.sub(v128.load(x + <usize>j * 4), m4));
      s0 = f64x2.add(s0, f64x2.promote_low_f32x4(e));
      s1 = f64x2.add(s1, f64x2.promote_low_f32x4(f32x4.shuffle(e, e, 2, 3, 2, 3)));
    }
    const sv = f64x2.add(s0, s1);
    let sum = f64x2.extract_lane(sv, 0) + f64x2.extract_lane(sv, 1);
    for (let j = v4; j < vocab; j++) sum += expf1(load<f32>(x + <usize>j * 4) - mx);
    // A row of all -Infinity has no mass: its lse is -Infinity (rather than NaN from -Inf − -Inf).
    const rowLse: f64 = mx == -Infinity ? -Infinity : <f64>mx + Math.log(sum);
    store<f32>(lse + <usize>r * 4, <f32>rowLse);
    const t = load<i32>(targets + <usize>r * 4);
    const w = rowWeight(t, r, mask, ignoreIndex);
    store<f32>(losses + <usize>r * 4, w == 0 ? 0 : <f32>(w * (rowLse - <f64>load<f32>(x + <usize>t * 4))));
  }
}

/** dlogits[r][j] = scale·w_r·(exp(logits[r][j] − lse[r]) − [j = targets[r]]), written; w_r = 0 rows get 0. */
export function crossEntropyBackward(
  logits: usize, targets: usize, mask: usize, lse: usize, scale: f64, dlogits: usize, rows: i32, vocab: i32,
  ignoreIndex: i32, tid: i32, nth: i32,
): void {
  const r0 = <i32>((<i64>rows * tid) / nth);
  const r1 = <i32>((<i64>rows * (tid + 1)) / nth);
  const v4 = vocab & ~3;
  for (let r = r0; r < r1; r++) {
    const x = logits + <usize>r * vocab * 4;
    const d = dlogits + <usize>r * vocab * 4;
    const t = load<i32>(targets + <usize>r * 4);
    const c = <f32>(scale * rowWeight(t, r, mask, ignoreIndex));
    if (c == 0) {
      memory.fill(d, 0, <usize>vocab * 4);
      continue;
    }
    const l = load<f32>(lse + <usize>r * 4);
    const xt = load<f32>(x + <usize>t * 4); // read before the row is overwritten (d may alias x)
    const l4 = f32x4.splat(l);
    const c4 = f32x4.splat(c);
    for (let j = 0; j < v4; j += 4) {
      v128.store(d + <usize>j * 4, f32x4.mul(c4, expf4(f32x4.sub(v128.load(x + <usize>j * 4), l4))));
    }
    for (let j = v4; j < vocab; j++) store<f32>(d + <usize>j * 4, c * expf1(load<f32>(x + <usize>j * 4) - l));
    store<f32>(d + <usize>t * 4, c * (expf1(xt - l) - 1));
  }
}
