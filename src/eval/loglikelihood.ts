// Log-likelihood of continuations given a context, the multiple-choice scoring of lm-evaluation-harness
// (its `loglikelihood` requests): for each continuation, the sum of log p(token | everything before it)
// over the continuation's tokens, and whether greedy decoding would have produced it (`is_greedy`).
// Two paths give the same numbers:
// - shared prefix (default): ONE prefill of the context into a KV cache (its last logits predict every
//   continuation's first token), then the continuations' tokens but the last as ONE batch against copies
//   of that cache (KVCache.selectRows; continuations of equal length per forward, so nothing is padded;
//   MMLU's one-token letters need no forward beyond the context). `prefix` starts from a cache already
//   holding the context's first tokens (a subject's 5-shot prefix, prefilled once for all its items), so
//   only the rest of the context is computed;
// - naive (the harness's way): every context + continuation as its own full sequence without a cache,
//   sequences of equal length stacked up to `batch` rows per forward (never padded).
// On a backend whose kernels sum each row the same way whatever the number of rows (js) the two are
// equal bit for bit; native and wasm matmuls block rows by shape, so there they agree to rounding.
// Context and continuation ids come from the caller (tokenize.ts splits them as the harness does).
import { KVCache } from "../model/kvcache.js";
import type { Llama } from "../model/llama.js";
import { noGrad } from "../tensor/tape.js";
import { scope } from "../tensor/tensor.js";

export interface ContinuationScore {
  /** Sum of the continuation tokens' log-probabilities (natural log). */
  logprob: number;
  /** Every continuation token is the argmax at its position. */
  greedy: boolean;
  tokens: number;
}

export interface ScoreOptions {
  /** "shared" (one prefill, KV-cache forks) or "naive" (a full sequence per continuation). */
  path?: "shared" | "naive";
  /** Naive path: sequences of equal length per forward at most (default 1). */
  batch?: number;
  /**
   * Shared path: a batch-1 cache holding the context's first `prefix.length` tokens, left unchanged (the
   * caller vouches for its tokens); only the rest of the context is prefilled.
   */
  prefix?: KVCache;
}

/** log softmax(row)[id] in f64, and whether id is the row's argmax (first maximum, as torch.argmax). */
function tokenScore(logits: Float32Array, at: number, V: number, id: number): [number, boolean] {
  let max = Number.NEGATIVE_INFINITY;
  let arg = 0;
  for (let v = 0; v < V; v++)
    if (logits[at + v]! > max) {
      max = logits[at + v]!;
      arg = v;
    }
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(logits[at + v]! - max);
  return [logits[at + id]! - max - Math.log(s), arg === id];
}

/** Score `rows` (row r holds the logits predicting cont[r]) into a ContinuationScore. */
function sum(cont: readonly number[], row: (r: number) => [Float32Array, number], V: number) {
  let logprob = 0;
  let greedy = true;
  for (let r = 0; r < cont.length; r++) {
    const [logits, at] = row(r);
    const [lp, g] = tokenScore(logits, at, V, cont[r]!);
    logprob += lp;
    greedy &&= g;
  }
  return { logprob, greedy, tokens: cont.length };
}

function check(model: Llama, context: readonly number[], continuations: readonly (readonly number[])[]) {
  if (context.length === 0) throw new Error("loglikelihood: empty context (start it with BOS)");
  const max = model.config.maxPositionEmbeddings;
  for (const c of continuations) {
    if (c.length === 0) throw new Error("loglikelihood: empty continuation");
    if (context.length + c.length - 1 > max)
      throw new Error(
        `loglikelihood: context ${context.length} + continuation ${c.length} tokens exceed the model's ${max}`,
      );
  }
}

/** Log-likelihood of each continuation after `context` (ids, BOS included). */
export function scoreContinuations(
  model: Llama,
  context: readonly number[],
  continuations: readonly (readonly number[])[],
  opts: ScoreOptions = {},
): ContinuationScore[] {
  check(model, context, continuations);
  return opts.path === "naive"
    ? naive(model, context, continuations, opts.batch ?? 1)
    : shared(model, context, continuations, opts.prefix ?? null);
}

/** Indices of `lists` grouped by length, in first-seen order. */
function byLength(lists: readonly (readonly number[])[]): [number, number[]][] {
  const groups = new Map<number, number[]>();
  lists.forEach((c, i) => {
    const group = groups.get(c.length);
    if (group) group.push(i);
    else groups.set(c.length, [i]);
  });
  return [...groups];
}

function shared(
  model: Llama,
  context: readonly number[],
  continuations: readonly (readonly number[])[],
  prefix: KVCache | null,
): ContinuationScore[] {
  const V = model.config.vocabSize;
  const P = prefix?.length ?? 0;
  if (prefix && (prefix.batch !== 1 || P >= context.length))
    throw new Error(
      `loglikelihood: the prefix cache (batch ${prefix.batch}, ${P} tokens) must hold fewer tokens than the context of ${context.length}`,
    );
  const cache = prefix
    ? (prefix.selectRows([0], context.length) as KVCache)
    : new KVCache(model.config, 1, context.length);
  try {
    const last = noGrad(() =>
      scope(() => model.forward(Int32Array.from(context.slice(P)), { cache, logits: "last" }).toArray()),
    );
    const out: ContinuationScore[] = new Array(continuations.length);
    for (const [len, group] of byLength(continuations)) {
      if (len === 1) {
        for (const i of group) out[i] = sum(continuations[i]!, () => [last, 0], V);
        continue;
      }
      // The group's tokens but the last, one row each, against copies of the context's cache.
      const B = group.length;
      const T = len - 1;
      const ids = new Int32Array(B * T);
      for (const [b, i] of group.entries()) ids.set(continuations[i]!.slice(0, -1), b * T);
      // One row runs on the context's own cache (rewound after); several on copies of it.
      const fork =
        B === 1
          ? cache
          : (cache.selectRows(
              group.map(() => 0),
              context.length + T,
            ) as KVCache);
      try {
        const rest = noGrad(() =>
          scope(() => model.forward(ids, { batch: B, cache: fork, logits: "all" }).toArray()),
        );
        group.forEach((i, b) => {
          out[i] = sum(continuations[i]!, (r) => (r === 0 ? [last, 0] : [rest, (b * T + r - 1) * V]), V);
        });
      } finally {
        if (fork === cache) cache.truncate(context.length);
        else fork.dispose();
      }
    }
    return out;
  } finally {
    cache.dispose();
  }
}

function naive(
  model: Llama,
  context: readonly number[],
  continuations: readonly (readonly number[])[],
  batch: number,
): ContinuationScore[] {
  if (!(Number.isInteger(batch) && batch >= 1)) throw new Error(`loglikelihood: batch ${batch} must be ≥ 1`);
  const V = model.config.vocabSize;
  const C = context.length;
  const out: ContinuationScore[] = new Array(continuations.length);
  // Group by length so a batch is rectangular without padding.
  for (const [len, all] of byLength(continuations))
    for (let s = 0; s < all.length; s += batch) {
      const group = all.slice(s, s + batch);
      const T = C + len - 1;
      const ids = new Int32Array(group.length * T);
      group.forEach((i, b) => {
        ids.set(context, b * T);
        ids.set(continuations[i]!.slice(0, -1), b * T + C);
      });
      const logits = noGrad(() => scope(() => model.forward(ids, { batch: group.length }).toArray()));
      group.forEach((i, b) => {
        out[i] = sum(continuations[i]!, (r) => [logits, (b * T + C - 1 + r) * V], V);
      });
    }
  return out;
}
