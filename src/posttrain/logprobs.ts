// Per-token log-probabilities with their gradient: the one op DPO and its NLL term need beyond the
// engine's crossEntropy (which only returns a batch mean). For logits [rows, V] and a target per row,
// out[r] = log softmax(logits[r])[target[r]] (0 where the target is −100); backward adds
// g[r]·(onehot(target[r]) − softmax(logits[r])) into the logits' gradient. Rows without a target cost
// nothing either way. The caller sums rows into sequences and chains its loss in through backward(out, g).
import { needsGrad, record } from "../tensor/tape.js";
import { fromArray, shapeStr, type Tensor } from "../tensor/tensor.js";

export function targetLogProbs(logits: Tensor, targets: Int32Array): Tensor {
  const V = logits.shape[logits.rank - 1]!;
  const rows = logits.size / V;
  if (targets.length !== rows)
    throw new Error(`targetLogProbs: ${targets.length} targets for logits ${shapeStr(logits.shape)}`);
  const x = logits.data;
  const lse = new Float64Array(rows);
  const out = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const t = targets[r]!;
    if (t === -100) continue;
    if (t < 0 || t >= V)
      throw new Error(`targetLogProbs: target ${t} at row ${r} outside the vocabulary ${V}`);
    const o = r * V;
    let m = Number.NEGATIVE_INFINITY;
    for (let v = 0; v < V; v++) if (x[o + v]! > m) m = x[o + v]!;
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(x[o + v]! - m);
    lse[r] = m + Math.log(s);
    out[r] = x[o + t]! - lse[r]!;
  }
  const result = fromArray(out, [rows]);
  if (needsGrad(logits))
    record(result, [logits], (g, sink) =>
      sink(logits, (dst, acc) => {
        if (!acc) dst.fill(0);
        for (let r = 0; r < rows; r++) {
          const t = targets[r]!;
          const gr = g[r]!;
          if (t === -100 || gr === 0) continue;
          const o = r * V;
          const l = lse[r]!;
          for (let v = 0; v < V; v++) dst[o + v]! -= gr * Math.exp(x[o + v]! - l);
          dst[o + t]! += gr;
        }
      }),
    );
  return result;
}
