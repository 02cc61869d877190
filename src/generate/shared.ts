// K continuations of one prompt that share its KV cache (spec §7.7: the paper reuses the shared prompt's
// KV pages across the K samples): one prefill forward of batch 1, the cache copied into K rows
// (KVCache.selectRows), then the K sequences decoded as ONE batch, one token per row per forward step.
// Each row samples with its own Sampler seeded from `seeds[i]`, drawing once per token as generate()
// does, so row i is a draw from the distribution generate() samples with seed seeds[i]: the same tokens
// wherever the batched forward and the one-row forward round alike (the js backend, small shapes); on
// native at real shapes a batch goes through the GEMM and one row through the GEMV, which sum in another
// order, so a sampled token can differ once a logit rounds differently (bench/RESULTS.md, rejection sampling).
// A row that stops (a stop id, a stop string, maxNewTokens, the context) is dropped from the batch: the
// cache is compacted to the rows still running (selectRows again), so no forward step is spent on padding
// and the batch shrinks as samples end. Stop strings work as in generate(): each row streams its text
// through its own decoder and StopMatcher, a row whose text completes one ends with "stop_string" and its
// text cut before it (its tokens keep the one that completed it). `prefix` starts from a cache that
// already holds the prompt's first tokens (a task's few-shot prefix, prefilled once for all its items).
import { performance } from "node:perf_hooks";
import { KVCache } from "../model/kvcache.js";
import type { Llama } from "../model/llama.js";
import { noGrad } from "../tensor/tape.js";
import { scope } from "../tensor/tensor.js";
import type { TextCodec, TextStream } from "./codec.js";
import { type FinishReason, StopMatcher } from "./generate.js";
import { Sampler, type SamplingOptions } from "./sampling.js";

export interface SharedOptions extends Omit<SamplingOptions, "seed"> {
  /** One sampler seed per sequence; its length is K. */
  seeds: readonly number[];
  /** New tokens at most per sequence (default 256). */
  maxNewTokens?: number;
  /** Ids that end a sequence (not included in its tokens); default: the config's eos ids. */
  stopIds?: readonly number[];
  /** Decodes each sequence's text ("" without one); stop strings need it. */
  codec?: TextCodec | null;
  /** Strings that end a sequence (cut from its text), as generate()'s. */
  stopStrings?: readonly string[];
  /**
   * A batch-1 cache holding the prompt's first `prefix.length` tokens (left unchanged): only the rest of
   * the prompt is prefilled. The caller vouches that it holds exactly those tokens.
   */
  prefix?: KVCache;
  /** Tokens a sequence may hold at most, prompt included (default and ceiling: the model's context). */
  contextTokens?: number;
  /** Called after each batched decode step with the rows still running. */
  onStep?: (running: number) => void;
}

export interface SharedSample {
  /** Generated ids, without the stop id. */
  tokens: number[];
  text: string;
  finishReason: FinishReason;
  stopId: number | null;
}

export interface SharedResult {
  samples: SharedSample[];
  promptTokens: number;
  prefillSeconds: number;
  decodeSeconds: number;
  /** Batched forward steps after the prefill. */
  decodeSteps: number;
}

/** K = seeds.length continuations of `prompt` from one prefill, decoded as one batch. */
export function generateShared(model: Llama, prompt: readonly number[], opts: SharedOptions): SharedResult {
  const c = model.config;
  const K = opts.seeds.length;
  if (K < 1) throw new Error("generateShared: no seeds (one per sequence)");
  if (prompt.length === 0) throw new Error("generateShared: empty prompt (start with the BOS id)");
  const maxNew = opts.maxNewTokens ?? 256;
  const stopIds = new Set(opts.stopIds ?? c.eosTokenIds);
  const limit = Math.min(c.maxPositionEmbeddings, opts.contextTokens ?? c.maxPositionEmbeddings);
  if (prompt.length > limit)
    throw new Error(`generateShared: prompt of ${prompt.length} tokens exceeds the context of ${limit}`);
  const stops = (opts.stopStrings ?? []).filter((s) => s.length > 0);
  const codec = opts.codec ?? null;
  if (stops.length > 0 && !codec)
    throw new Error("generateShared: stop strings need a tokenizer to decode text");
  const prefix = opts.prefix ?? null;
  if (prefix && (prefix.batch !== 1 || prefix.length >= prompt.length))
    throw new Error(
      `generateShared: the prefix cache (batch ${prefix.batch}, ${prefix.length} tokens) must hold fewer tokens than the prompt of ${prompt.length}`,
    );
  const samplers = opts.seeds.map((seed) => new Sampler({ ...opts, seed }));
  // With stop strings each row streams its text, as generate() does.
  const afterBos = prompt[prompt.length - 1] === c.bosTokenId;
  const streams: [TextStream, StopMatcher][] | null =
    stops.length > 0 ? opts.seeds.map(() => [codec!.stream(afterBos), new StopMatcher(stops)]) : null;
  const samples: SharedSample[] = opts.seeds.map(() => ({
    tokens: [],
    text: "",
    finishReason: "length",
    stopId: null,
  }));
  const capacity = prompt.length + Math.min(maxNew, 4096);
  const t0 = performance.now();
  let cache: KVCache = prefix ? (prefix.selectRows([0], capacity) as KVCache) : new KVCache(c, 1, capacity);
  let steps = 0;
  /** A row's text once it has stopped: the stream's held bytes go through its matcher, as generate()'s. */
  const finish = (i: number) => {
    const s = samples[i]!;
    if (!streams || s.finishReason === "stop_string") return;
    const [stream, matcher] = streams[i]!;
    const [out, hit] = matcher.push(stream.flush());
    s.text += out;
    if (hit) s.finishReason = "stop_string";
    else s.text += matcher.flush();
  };
  try {
    if (maxNew === 0) {
      for (let i = 0; i < K; i++) finish(i);
      return result(0, 0);
    }
    const rest = prompt.slice(prefix?.length ?? 0);
    const first = noGrad(() =>
      scope(() => model.forward(Int32Array.from(rest), { cache, logits: "last" }).data.slice()),
    );
    const t1 = performance.now();
    // rows[j]: the sample whose sequence is batch row j of `cache`; next[j]: its chosen, unforwarded id.
    let rows = samples.map((_, i) => i);
    let next = rows.map((i) => samplers[i]!.sample(first));
    const shared = cache;
    cache = shared.selectRows(
      rows.map(() => 0),
      capacity,
    ) as KVCache;
    shared.dispose();
    for (;;) {
      const keep: number[] = [];
      for (const [j, i] of rows.entries()) {
        const s = samples[i]!;
        const id = next[j]!;
        if (stopIds.has(id)) {
          s.finishReason = "stop_id";
          s.stopId = id;
          finish(i);
          continue;
        }
        s.tokens.push(id);
        if (streams) {
          const [stream, matcher] = streams[i]!;
          const [out, hit] = matcher.push(stream.push(id));
          s.text += out;
          if (hit) {
            s.finishReason = "stop_string";
            continue;
          }
        }
        if (s.tokens.length >= maxNew) {
          finish(i);
          continue;
        }
        if (cache.length + 1 > limit) {
          s.finishReason = "context";
          finish(i);
          continue;
        }
        keep.push(j);
      }
      if (keep.length === 0) break;
      if (keep.length < rows.length) {
        const compact = cache.selectRows(keep) as KVCache;
        cache.dispose();
        cache = compact;
        next = keep.map((j) => next[j]!);
        rows = keep.map((j) => rows[j]!);
      }
      const B = rows.length;
      const ids = Int32Array.from(next);
      next = noGrad(() =>
        scope(() => {
          const logits = model.forward(ids, { batch: B, cache, logits: "last" });
          const V = c.vocabSize;
          return rows.map((i, j) => samplers[i]!.sample(logits.data.subarray(j * V, (j + 1) * V)));
        }),
      );
      steps++;
      opts.onStep?.(B);
    }
    return result((t1 - t0) / 1000, (performance.now() - t1) / 1000);
  } finally {
    cache.dispose();
  }

  function result(prefillSeconds: number, decodeSeconds: number): SharedResult {
    if (codec && !streams) for (const s of samples) s.text = codec.decode(s.tokens);
    return { samples, promptTokens: prompt.length, prefillSeconds, decodeSeconds, decodeSteps: steps };
  }
}
