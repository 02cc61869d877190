// Log-likelihood of continuations given a context, the multiple-choice scoring of lm-evaluation-harness
// (its `loglikelihood` requests): for each continuation, the sum of log p(token | everything before it)
// over the continuation's tokens, and whether greedy decoding would have produced it (`is_greedy`).
// Two paths give the same numbers:
// - shared prefix (default): ONE prefill of the context into a KV cache (its last logits predict every
//   continuation's first token), then each continuation's tokens but the last against the cache, which is
//   rewound to the context (KVCache.truncate) before the next;
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
    : shared(model, context, continuations);
}

function shared(
  model: Llama,
  context: readonly number[],
  continuations: readonly (readonly number[])[],
): ContinuationScore[] {
  const V = model.config.vocabSize;
  const longest = Math.max(...continuations.map((c) => c.length));
  const cache = new KVCache(model.config, 1, context.length + longest);
  try {
    const run = (ids: readonly number[], logits: "all" | "last") =>
      noGrad(() => scope(() => model.forward(Int32Array.from(ids), { cache, logits }).toArray()));
    const last = run(context, "last");
    const C = cache.length;
    return continuations.map((cont) => {
      const rest = cont.length > 1 ? run(cont.slice(0, -1), "all") : null;
      cache.truncate(C);
      return sum(cont, (r) => (r === 0 ? [last, 0] : [rest!, (r - 1) * V]), V);
    });
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
  const byLen = new Map<number, number[]>();
  continuations.forEach((c, i) => {
    const group = byLen.get(c.length);
    if (group) group.push(i);
    else byLen.set(c.length, [i]);
  });
  for (const [len, all] of byLen)
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
