// Reference (js backend) fused cross-entropy over rows of logits, forward and backward. The softmax is
// never stored: the forward pass keeps only a stable log-sum-exp per row (max, then Σ exp(x - max)), and
// the backward pass writes dlogits straight from the logits and that saved lse, so dlogits may be the
// logits buffer itself (in place). Row weights: w_r = 0 if targets[r] === ignoreIndex, else mask?.[r] ?? 1.
// See src/backends/backend.ts for the contract.

/** Throws unless target t of row r is ignored or a valid class index. */
function checkTarget(t: number, r: number, vocab: number, ignoreIndex: number): void {
  if (t !== ignoreIndex && !(t >= 0 && t < vocab)) {
    throw new Error(
      `crossEntropy: target ${t} of row ${r} is out of range [0, ${vocab}) and is not the ignore index ${ignoreIndex}`,
    );
  }
}

/** Weight of row r: 0 when ignored, else the mask value (1 without a mask). */
function rowWeight(t: number, r: number, mask: Float32Array | null, ignoreIndex: number): number {
  if (t === ignoreIndex) return 0;
  return mask === null ? 1 : mask[r]!;
}

/**
 * losses[r] = w_r · (lse[r] - logits[r][targets[r]]) and lse[r] = logsumexp(logits[r]) for every row
 * (ignored rows too). Throws on a target outside [0, vocab) that is not ignoreIndex.
 */
export function crossEntropy(
  logits: Float32Array,
  targets: Int32Array,
  mask: Float32Array | null,
  losses: Float32Array,
  lse: Float32Array,
  rows: number,
  vocab: number,
  ignoreIndex: number,
): void {
  for (let r = 0; r < rows; r++) {
    const t = targets[r]!;
    checkTarget(t, r, vocab, ignoreIndex);
    const off = r * vocab;

    let max = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < vocab; j++) {
      const x = logits[off + j]!;
      if (!(x <= max)) max = x; // written so that a NaN logit propagates
    }
    let sum = 0;
    for (let j = 0; j < vocab; j++) sum += Math.exp(logits[off + j]! - max);
    // A row of all -Infinity has no mass: its lse is -Infinity (rather than NaN from -Inf - -Inf).
    const rowLse = max === Number.NEGATIVE_INFINITY ? max : max + Math.log(sum);
    lse[r] = rowLse;

    const w = rowWeight(t, r, mask, ignoreIndex);
    losses[r] = w === 0 ? 0 : w * (rowLse - logits[off + t]!);
  }
}

/**
 * dlogits[r][j] = scale · w_r · (exp(logits[r][j] - lse[r]) - [j === targets[r]]), written (not
 * accumulated); rows with w_r = 0 get zeros. dlogits may be the same array as logits.
 */
export function crossEntropyBackward(
  logits: Float32Array,
  targets: Int32Array,
  mask: Float32Array | null,
  lse: Float32Array,
  scale: number,
  dlogits: Float32Array,
  rows: number,
  vocab: number,
  ignoreIndex: number,
): void {
  for (let r = 0; r < rows; r++) {
    const t = targets[r]!;
    checkTarget(t, r, vocab, ignoreIndex);
    const off = r * vocab;
    const c = scale * rowWeight(t, r, mask, ignoreIndex);
    if (c === 0) {
      dlogits.fill(0, off, off + vocab);
      continue;
    }
    const rowLse = lse[r]!;
    // Read the target logit before the row is overwritten (dlogits may alias logits).
    const xt = logits[off + t]!;
    for (let j = 0; j < vocab; j++) dlogits[off + j] = c * Math.exp(logits[off + j]! - rowLse);
    dlogits[off + t] = c * (Math.exp(xt - rowLse) - 1);
  }
}
