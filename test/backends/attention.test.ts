// Tests for the reference (js backend) attention kernels: the tiled, online-softmax forward and the
// block-recomputing backward are compared against a naive f64 implementation written here (full score
// matrix, explicit mask, plain softmax and its analytic gradient), and that gradient against finite
// differences, across GQA ratios, odd head sizes, KV-cache offsets, lengths that are not multiples of the
// block sizes, causal masking and document masking.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { AttentionArgs } from "../../src/backends/backend.js";
import { attention, attentionBackward } from "../../src/backends/js/attention.js";
import { closeness, randArray } from "../helpers.js";

// --- naive f64 reference ------------------------------------------------------------------------

/** Whether query t of batch item b may see key s. */
function visible(a: AttentionArgs, b: number, t: number, s: number): boolean {
  if (a.causal && s > t + (a.seqK - a.seqQ)) return false;
  if (a.qDocIds && a.kDocIds && a.qDocIds[b * a.seqQ + t] !== a.kDocIds[b * a.seqK + s]) return false;
  return true;
}

const qIndex = (a: AttentionArgs, b: number, t: number, h: number) =>
  ((b * a.seqQ + t) * a.heads + h) * a.headDim;
const kIndex = (a: AttentionArgs, b: number, s: number, g: number) =>
  ((b * a.seqK + s) * a.kvHeads + g) * a.headDim;

/** Full probability matrix P [seqQ, seqK] of (b, h) and each row's lse (-Infinity if fully masked). */
function naiveProbs(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  a: AttentionArgs,
  b: number,
  h: number,
): { P: Float64Array[]; lse: Float64Array } {
  const g = Math.floor(h / (a.heads / a.kvHeads));
  const P: Float64Array[] = [];
  const lse = new Float64Array(a.seqQ);
  for (let t = 0; t < a.seqQ; t++) {
    const scores = new Float64Array(a.seqK).fill(Number.NEGATIVE_INFINITY);
    for (let s = 0; s < a.seqK; s++) {
      if (!visible(a, b, t, s)) continue;
      let dot = 0;
      for (let d = 0; d < a.headDim; d++) dot += q[qIndex(a, b, t, h) + d]! * k[kIndex(a, b, s, g) + d]!;
      scores[s] = a.scale * dot;
    }
    const max = Math.max(...scores);
    const row = new Float64Array(a.seqK);
    if (max === Number.NEGATIVE_INFINITY) {
      lse[t] = max;
    } else {
      let sum = 0;
      for (let s = 0; s < a.seqK; s++) sum += Math.exp(scores[s]! - max);
      for (let s = 0; s < a.seqK; s++) row[s] = Math.exp(scores[s]! - max) / sum;
      lse[t] = max + Math.log(sum);
    }
    P.push(row);
  }
  return { P, lse };
}

function naiveForward(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  a: AttentionArgs,
): { out: Float64Array; lse: Float64Array } {
  const out = new Float64Array(a.batch * a.seqQ * a.heads * a.headDim);
  const lse = new Float64Array(a.batch * a.heads * a.seqQ);
  for (let b = 0; b < a.batch; b++) {
    for (let h = 0; h < a.heads; h++) {
      const g = Math.floor(h / (a.heads / a.kvHeads));
      const { P, lse: rowLse } = naiveProbs(q, k, a, b, h);
      for (let t = 0; t < a.seqQ; t++) {
        lse[(b * a.heads + h) * a.seqQ + t] = rowLse[t]!;
        for (let s = 0; s < a.seqK; s++) {
          for (let d = 0; d < a.headDim; d++)
            out[qIndex(a, b, t, h) + d] += P[t]![s]! * v[kIndex(a, b, s, g) + d]!;
        }
      }
    }
  }
  return { out, lse };
}

/** Analytic gradient of Σ out·dout: dV = Pᵀ dO, dP = dO Vᵀ, dS = P∘(dP - rowsum(P∘dP)), dQ, dK from dS. */
function naiveBackward(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dout: ArrayLike<number>,
  a: AttentionArgs,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  const hd = a.headDim;
  for (let b = 0; b < a.batch; b++) {
    for (let h = 0; h < a.heads; h++) {
      const g = Math.floor(h / (a.heads / a.kvHeads));
      const { P } = naiveProbs(q, k, a, b, h);
      for (let t = 0; t < a.seqQ; t++) {
        const qi = qIndex(a, b, t, h);
        const dP = new Float64Array(a.seqK);
        let rowDot = 0;
        for (let s = 0; s < a.seqK; s++) {
          const ki = kIndex(a, b, s, g);
          for (let d = 0; d < hd; d++) {
            dP[s] += dout[qi + d]! * v[ki + d]!;
            dv[ki + d] += P[t]![s]! * dout[qi + d]!;
          }
          rowDot += P[t]![s]! * dP[s]!;
        }
        for (let s = 0; s < a.seqK; s++) {
          const dS = P[t]![s]! * (dP[s]! - rowDot);
          const ki = kIndex(a, b, s, g);
          for (let d = 0; d < hd; d++) {
            dq[qi + d] += a.scale * dS * k[ki + d]!;
            dk[ki + d] += a.scale * dS * q[qi + d]!;
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}

// --- cases ----------------------------------------------------------------------------------------

interface Case {
  name: string;
  batch: number;
  seqQ: number;
  seqK: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  causal: boolean;
  scale?: number;
  /** Document lengths per batch row, laid over the keys; queries take the ids of the last seqQ keys. */
  docs?: number[][];
  /** Or an explicit doc id for key position s (same for every batch row). */
  docOf?: (s: number) => number;
}

function argsOf(c: Case): AttentionArgs {
  let qDocIds: Int32Array | null = null;
  let kDocIds: Int32Array | null = null;
  if (c.docs || c.docOf) {
    kDocIds = new Int32Array(c.batch * c.seqK);
    qDocIds = new Int32Array(c.batch * c.seqQ);
    for (let b = 0; b < c.batch; b++) {
      if (c.docs) {
        const lengths = c.docs[b]!;
        assert.equal(
          lengths.reduce((x, y) => x + y, 0),
          c.seqK,
          `${c.name}: doc lengths must cover seqK`,
        );
        let s = 0;
        lengths.forEach((len, id) => {
          for (let i = 0; i < len; i++) kDocIds![b * c.seqK + s++] = id;
        });
      } else {
        for (let s = 0; s < c.seqK; s++) kDocIds[b * c.seqK + s] = c.docOf!(s);
      }
      for (let t = 0; t < c.seqQ; t++) qDocIds[b * c.seqQ + t] = kDocIds[b * c.seqK + c.seqK - c.seqQ + t]!;
    }
  }
  return {
    batch: c.batch,
    seqQ: c.seqQ,
    seqK: c.seqK,
    heads: c.heads,
    kvHeads: c.kvHeads,
    headDim: c.headDim,
    scale: c.scale ?? 1 / Math.sqrt(c.headDim),
    causal: c.causal,
    qDocIds,
    kDocIds,
  };
}

const cases: Case[] = [
  {
    name: "single query and key",
    batch: 2,
    seqQ: 1,
    seqK: 1,
    heads: 2,
    kvHeads: 2,
    headDim: 5,
    causal: false,
  },
  {
    name: "T=S=7 causal, MHA, hd 5",
    batch: 2,
    seqQ: 7,
    seqK: 7,
    heads: 2,
    kvHeads: 2,
    headDim: 5,
    causal: true,
  },
  {
    name: "T=S=7 full, GQA 2, hd 16",
    batch: 2,
    seqQ: 7,
    seqK: 7,
    heads: 4,
    kvHeads: 2,
    headDim: 16,
    causal: false,
  },
  {
    name: "T=S=65 causal, GQA 3, hd 24",
    batch: 2,
    seqQ: 65,
    seqK: 65,
    heads: 6,
    kvHeads: 2,
    headDim: 24,
    causal: true,
  },
  {
    name: "T=S=130 causal, GQA 2, hd 16, scale 0.3",
    batch: 1,
    seqQ: 130,
    seqK: 130,
    heads: 2,
    kvHeads: 1,
    headDim: 16,
    causal: true,
    scale: 0.3,
  },
  {
    name: "T=S=130 full, MHA, hd 5",
    batch: 2,
    seqQ: 130,
    seqK: 130,
    heads: 3,
    kvHeads: 3,
    headDim: 5,
    causal: false,
  },
  {
    name: "KV cache decode T=1 S=65",
    batch: 2,
    seqQ: 1,
    seqK: 65,
    heads: 6,
    kvHeads: 2,
    headDim: 16,
    causal: true,
  },
  {
    name: "KV cache T=7 S=130 causal",
    batch: 2,
    seqQ: 7,
    seqK: 130,
    heads: 4,
    kvHeads: 2,
    headDim: 5,
    causal: true,
  },
  {
    name: "T=65 S=130 full, GQA 3",
    batch: 2,
    seqQ: 65,
    seqK: 130,
    heads: 6,
    kvHeads: 2,
    headDim: 24,
    causal: false,
  },
  {
    name: "T=65 S=130 causal, GQA 3",
    batch: 1,
    seqQ: 65,
    seqK: 130,
    heads: 3,
    kvHeads: 1,
    headDim: 16,
    causal: true,
  },
  {
    name: "docs causal, 1-token docs, block-aligned docs",
    batch: 2,
    seqQ: 130,
    seqK: 130,
    heads: 4,
    kvHeads: 2,
    headDim: 16,
    causal: true,
    docs: [
      [1, 40, 1, 30, 58],
      [64, 66],
    ],
  },
  {
    name: "docs non-causal",
    batch: 2,
    seqQ: 65,
    seqK: 65,
    heads: 6,
    kvHeads: 2,
    headDim: 5,
    causal: false,
    docs: [[10, 1, 54], [65]],
  },
  {
    name: "docs interleaved (non-contiguous ids), causal",
    batch: 2,
    seqQ: 130,
    seqK: 130,
    heads: 2,
    kvHeads: 1,
    headDim: 5,
    causal: true,
    docOf: (s) => (s * 7) % 3,
  },
  {
    name: "docs with KV cache, last query alone in its doc",
    batch: 2,
    seqQ: 7,
    seqK: 130,
    heads: 6,
    kvHeads: 2,
    headDim: 24,
    causal: true,
    docs: [
      [120, 9, 1],
      [60, 70],
    ],
  },
];

interface Inputs {
  args: AttentionArgs;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  dout: Float32Array;
}

function inputs(c: Case, seed: number): Inputs {
  const args = argsOf(c);
  const nq = c.batch * c.seqQ * c.heads * c.headDim;
  const nk = c.batch * c.seqK * c.kvHeads * c.headDim;
  return {
    args,
    q: randArray(nq, seed, 1.5),
    k: randArray(nk, seed + 1, 1.5),
    v: randArray(nk, seed + 2),
    dout: randArray(nq, seed + 3),
  };
}

function runForward(x: Inputs): { out: Float32Array; lse: Float32Array } {
  const a = x.args;
  const out = new Float32Array(x.q.length).fill(Number.NaN);
  const lse = new Float32Array(a.batch * a.heads * a.seqQ).fill(Number.NaN);
  attention(x.q, x.k, x.v, out, lse, a);
  return { out, lse };
}

function runBackward(x: Inputs): { dq: Float32Array; dk: Float32Array; dv: Float32Array } {
  const { out, lse } = runForward(x);
  // Pre-filled with NaN: the kernel must overwrite every element, not accumulate.
  const dq = new Float32Array(x.q.length).fill(Number.NaN);
  const dk = new Float32Array(x.k.length).fill(Number.NaN);
  const dv = new Float32Array(x.v.length).fill(Number.NaN);
  attentionBackward(x.q, x.k, x.v, out, x.dout, lse, dq, dk, dv, x.args);
  return { dq, dk, dv };
}

/** Asserts closeness ≤ 1, treating equal infinities as equal. */
function assertClose(
  what: string,
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  rtol: number,
  atol: number,
) {
  const g = Array.from(got);
  const w = Array.from(want);
  for (let i = 0; i < w.length; i++) {
    if (!Number.isFinite(w[i]!) && g[i] === w[i]) g[i] = w[i] = 0;
  }
  const c = closeness(g, w, rtol, atol);
  assert.ok(c <= 1, `${what}: closeness ${c} (rtol ${rtol}, atol ${atol})`);
}

// --- tests ----------------------------------------------------------------------------------------

describe("js attention forward vs naive f64", () => {
  cases.forEach((c, i) => {
    test(c.name, () => {
      const x = inputs(c, 100 + 10 * i);
      const { out, lse } = runForward(x);
      const want = naiveForward(x.q, x.k, x.v, x.args);
      assertClose("out", out, want.out, 1e-4, 1e-6);
      assertClose("lse", lse, want.lse, 1e-6, 1e-6);
    });
  });
});

describe("js attention backward vs naive analytic gradient", () => {
  cases.forEach((c, i) => {
    test(c.name, () => {
      const x = inputs(c, 500 + 10 * i);
      const got = runBackward(x);
      const want = naiveBackward(x.q, x.k, x.v, x.dout, x.args);
      assertClose("dq", got.dq, want.dq, 1e-4, 1e-5);
      assertClose("dk", got.dk, want.dk, 1e-4, 1e-5);
      assertClose("dv", got.dv, want.dv, 1e-4, 1e-5);
    });
  });
});

describe("js attention backward vs finite differences (f64)", () => {
  const tiny: Case[] = [
    {
      name: "causal KV cache GQA 2",
      batch: 1,
      seqQ: 3,
      seqK: 5,
      heads: 2,
      kvHeads: 1,
      headDim: 3,
      causal: true,
    },
    {
      name: "docs + causal, batch 2",
      batch: 2,
      seqQ: 4,
      seqK: 4,
      heads: 3,
      kvHeads: 3,
      headDim: 2,
      causal: true,
      docs: [
        [1, 3],
        [2, 1, 1],
      ],
    },
  ];
  tiny.forEach((c, i) => {
    test(c.name, () => {
      const x = inputs(c, 900 + 10 * i);
      const got = runBackward(x);
      const analytic = naiveBackward(x.q, x.k, x.v, x.dout, x.args);
      // Loss L = Σ out · dout, evaluated by the naive forward in f64; central differences.
      const loss = (q: Float64Array, k: Float64Array, v: Float64Array) => {
        const { out } = naiveForward(q, k, v, x.args);
        let l = 0;
        for (let j = 0; j < out.length; j++) l += out[j]! * x.dout[j]!;
        return l;
      };
      const base = { q: Float64Array.from(x.q), k: Float64Array.from(x.k), v: Float64Array.from(x.v) };
      const eps = 1e-6;
      for (const name of ["q", "k", "v"] as const) {
        const p = base[name];
        const fd = new Float64Array(p.length);
        for (let j = 0; j < p.length; j++) {
          const keep = p[j]!;
          p[j] = keep + eps;
          const up = loss(base.q, base.k, base.v);
          p[j] = keep - eps;
          const down = loss(base.q, base.k, base.v);
          p[j] = keep;
          fd[j] = (up - down) / (2 * eps);
        }
        assertClose(`naive d${name} vs fd`, analytic[`d${name}`], fd, 1e-6, 1e-8);
        assertClose(`kernel d${name} vs fd`, got[`d${name}`], fd, 1e-4, 1e-6);
      }
    });
  });
});

describe("js attention masking edge cases", () => {
  test("a query with no visible key: out 0, lse -Infinity, zero gradient", () => {
    const c: Case = { name: "", batch: 2, seqQ: 5, seqK: 70, heads: 2, kvHeads: 1, headDim: 5, causal: true };
    const x = inputs(c, 42);
    const kDoc = new Int32Array(2 * 70);
    const qDoc = new Int32Array(2 * 5);
    qDoc[2] = 9; // batch 0, query 2: doc 9 has no keys
    qDoc[5 + 4] = 7; // batch 1, query 4: doc 7 has no keys
    x.args.qDocIds = qDoc;
    x.args.kDocIds = kDoc;
    const { out, lse } = runForward(x);
    const { dq } = runBackward(x);
    const want = naiveForward(x.q, x.k, x.v, x.args);
    assertClose("out", out, want.out, 1e-4, 1e-6);
    for (const [b, t] of [
      [0, 2],
      [1, 4],
    ] as const) {
      for (let h = 0; h < 2; h++) {
        assert.equal(lse[(b * 2 + h) * 5 + t], Number.NEGATIVE_INFINITY);
        for (let d = 0; d < 5; d++) {
          assert.equal(out[qIndex(x.args, b, t, h) + d], 0);
          assert.equal(dq[qIndex(x.args, b, t, h) + d], 0);
        }
      }
    }
    // Other rows stayed finite.
    assert.ok(Number.isFinite(lse[0]!));
  });

  test("a query whose only visible key is itself copies that value row", () => {
    const c: Case = {
      name: "",
      batch: 1,
      seqQ: 70,
      seqK: 70,
      heads: 3,
      kvHeads: 1,
      headDim: 16,
      causal: true,
      docs: [[66, 1, 3]],
    };
    const x = inputs(c, 7);
    const { out, lse } = runForward(x);
    const t = 66;
    for (let h = 0; h < 3; h++) {
      let dot = 0;
      for (let d = 0; d < 16; d++) {
        assert.ok(Math.abs(out[qIndex(x.args, 0, t, h) + d]! - x.v[kIndex(x.args, 0, t, 0) + d]!) < 1e-6);
        dot += x.q[qIndex(x.args, 0, t, h) + d]! * x.k[kIndex(x.args, 0, t, 0) + d]!;
      }
      assert.ok(Math.abs(lse[h * 70 + t]! - x.args.scale * dot) < 1e-5);
    }
  });

  test("a NaN input propagates to its row instead of being masked away", () => {
    const c: Case = { name: "", batch: 1, seqQ: 3, seqK: 3, heads: 1, kvHeads: 1, headDim: 4, causal: true };
    const x = inputs(c, 3);
    x.q[4] = Number.NaN; // query 1
    const { out, lse } = runForward(x);
    assert.ok(Number.isNaN(lse[1]!) && Number.isNaN(out[4]!));
    assert.ok(Number.isFinite(lse[0]!) && Number.isFinite(out[0]!));
  });

  test("doc ids on only one side are rejected", () => {
    const c: Case = { name: "", batch: 1, seqQ: 2, seqK: 2, heads: 1, kvHeads: 1, headDim: 2, causal: false };
    const x = inputs(c, 1);
    x.args.qDocIds = new Int32Array(2);
    assert.throws(() => runForward(x), /together/);
  });
});
