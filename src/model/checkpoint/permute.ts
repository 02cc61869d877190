// The Q/K row permutation between Meta's and Hugging Face's RoPE layouts (spec §2.5).
//
// Meta rotates interleaved pairs (x[2i], x[2i+1]) of each head; HF rotates split halves (x[i], x[i+hd/2]).
// The weights of q_proj and k_proj differ by a permutation of rows inside each head of hd rows:
//   HF row r  =  Meta row 2r           for r < hd/2
//   HF row r  =  Meta row 2(r−hd/2)+1  for r ≥ hd/2
// (HF's converter: view(heads, hd/2, 2, in) → transpose(1, 2) → reshape.) Wv, Wo and everything else are
// the same in both layouts. permuteQK goes Meta → HF, unpermuteQK HF → Meta; each is the other's inverse.
import { fromArray, fromHalfBits, shapeStr, type Tensor } from "../../tensor/tensor.js";

/** The Meta row that HF row r of a head takes. */
function metaRow(r: number, half: number): number {
  return r < half ? 2 * r : 2 * (r - half) + 1;
}

/**
 * Permute the rows of a [heads·hd, cols] matrix in place, one head at a time (scratch: one head).
 * toHF: Meta → HF layout; otherwise HF → Meta.
 */
export function permuteRowsInPlace(
  data: Float32Array | Uint16Array,
  heads: number,
  cols: number,
  toHF: boolean,
): void {
  const rows = data.length / cols;
  if (!Number.isInteger(rows) || rows % heads !== 0 || (rows / heads) % 2 !== 0)
    throw new Error(
      `permuteQK: ${data.length} elements are not ${heads} heads of an even head dim × ${cols}`,
    );
  const hd = rows / heads;
  const half = hd / 2;
  const head = data.slice(0, hd * cols);
  for (let h = 0; h < heads; h++) {
    const base = h * hd * cols;
    head.set(data.subarray(base, base + hd * cols));
    for (let r = 0; r < hd; r++) {
      const m = metaRow(r, half);
      const [to, from] = toHF ? [r, m] : [m, r];
      data.set(head.subarray(from * cols, (from + 1) * cols), base + to * cols);
    }
  }
}

function permuted(t: Tensor, heads: number, toHF: boolean): Tensor {
  if (t.rank !== 2) throw new Error(`permuteQK: tensor${t.label()} ${shapeStr(t.shape)} is not a matrix`);
  const cols = t.shape[1]!;
  let out: Tensor;
  if (t.dtype === "f32") {
    out = fromArray(t.data, t.shape);
    permuteRowsInPlace(out.data, heads, cols, toHF);
  } else {
    const bits = t.halfBits.slice();
    permuteRowsInPlace(bits, heads, cols, toHF);
    out = fromHalfBits(bits, t.shape, t.dtype);
  }
  out.name = t.name;
  return out;
}

/** Meta (interleaved pairs) → HF (split halves): a new tensor; `heads` = query heads for wq, KV heads for wk. */
export function permuteQK(t: Tensor, heads: number): Tensor {
  return permuted(t, heads, true);
}

/** HF (split halves) → Meta (interleaved pairs): the inverse of permuteQK. */
export function unpermuteQK(t: Tensor, heads: number): Tensor {
  return permuted(t, heads, false);
}
