// Autoregressive generation with a KV cache: one prefill forward over the prompt, then one forward per
// new token over just that token. Stops on a stop id (Llama 3: <|end_of_text|>, <|eom_id|>, <|eot_id|>,
// or the config's eos ids), on a stop string in the decoded text, at maxNewTokens, or when the context is
// full. Text streams out through `onText` as tokens arrive; text that could be the start of a stop
// string is held back until it is known not to be one, and a stop string itself is never emitted.
import { performance } from "node:perf_hooks";
import { KVCache } from "../model/kvcache.js";
import type { Llama } from "../model/llama.js";
import { noGrad } from "../tensor/tape.js";
import { scope } from "../tensor/tensor.js";
import type { TextCodec, TextStream } from "./codec.js";
import { Sampler, type SamplingOptions } from "./sampling.js";

export type FinishReason = "stop_id" | "stop_string" | "length" | "context";

export interface GenerateOptions extends SamplingOptions {
  /** New tokens at most (default 256). */
  maxNewTokens?: number;
  /** Ids that end generation (not included in `tokens`); default: the config's eos ids. */
  stopIds?: readonly number[];
  /** Strings that end generation (cut from `text`); need a codec. */
  stopStrings?: readonly string[];
  /** Decodes streamed text (and enables stop strings). */
  codec?: TextCodec | null;
  /** Called with each new token id as it is chosen (before the stop check, stop ids included). */
  onToken?: (id: number) => void;
  /** Called with newly completed text. */
  onText?: (text: string) => void;
  /** Continue this cache (chat); by default a fresh one is made and disposed. */
  cache?: KVCache;
  /** Tokens the cache may hold at most (default and ceiling: the config's maxPositionEmbeddings). */
  contextTokens?: number;
}

export interface GenerateResult {
  /** Generated ids, without the stop id. */
  tokens: number[];
  /** Decoded text of `tokens`, cut before a stop string ("" without a codec). */
  text: string;
  finishReason: FinishReason;
  /** The stop id that ended it, if one did. */
  stopId: number | null;
  promptTokens: number;
  prefillSeconds: number;
  decodeSeconds: number;
  /** One-token forward steps in decodeSeconds. */
  decodeTokens: number;
  /** Generated tokens per second of decoding (the first token, from the prefill, excluded). */
  decodeTokensPerSecond: number;
  /** The last chosen id, which the cache has not seen yet (a chat feeds it first next turn). */
  unforwarded: number | null;
}

/** Holds back text that may begin a stop string; reports the first stop string found. */
export class StopMatcher {
  private held = "";
  constructor(private readonly stops: readonly string[]) {}

  /** Returns [text safe to emit, true if a stop string was completed]. */
  push(text: string): [string, boolean] {
    this.held += text;
    let at = -1;
    for (const s of this.stops) {
      const i = this.held.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    if (at >= 0) {
      const out = this.held.slice(0, at);
      this.held = "";
      return [out, true];
    }
    // Keep the longest suffix that is a proper prefix of some stop string.
    let keep = 0;
    for (const s of this.stops)
      for (let n = Math.min(s.length - 1, this.held.length); n > keep; n--)
        if (this.held.endsWith(s.slice(0, n))) {
          keep = n;
          break;
        }
    const out = this.held.slice(0, this.held.length - keep);
    this.held = this.held.slice(this.held.length - keep);
    return [out, false];
  }

  flush(): string {
    const out = this.held;
    this.held = "";
    return out;
  }
}

/** Generate a continuation of `prompt` (ids, BOS included if the model wants one). */
export function generate(
  model: Llama,
  prompt: readonly number[],
  opts: GenerateOptions = {},
): GenerateResult {
  const c = model.config;
  if (prompt.length === 0) throw new Error("generate: empty prompt (start with the BOS id)");
  const maxNew = opts.maxNewTokens ?? 256;
  const stopIds = new Set(opts.stopIds ?? c.eosTokenIds);
  const stops = (opts.stopStrings ?? []).filter((s) => s.length > 0);
  const codec = opts.codec ?? null;
  if (stops.length > 0 && !codec) throw new Error("generate: stop strings need a tokenizer to decode text");
  const limit = Math.min(c.maxPositionEmbeddings, opts.contextTokens ?? c.maxPositionEmbeddings);
  const sampler = new Sampler(opts);
  const cache = opts.cache ?? new KVCache(c, 1, prompt.length + Math.min(maxNew, 4096));
  const stream: TextStream | null = codec ? codec.stream(prompt[prompt.length - 1] === c.bosTokenId) : null;
  const matcher = new StopMatcher(stops);
  const tokens: number[] = [];
  let text = "";
  let finishReason: FinishReason = "length";
  let stopId: number | null = null;
  let decodeSteps = 0;
  let last: number | null = null;
  const emit = (t: string) => {
    if (!t) return;
    text += t;
    opts.onText?.(t);
  };

  const step = (ids: readonly number[]): number =>
    noGrad(() =>
      scope(() => {
        const logits = model.forward(Int32Array.from(ids), { cache, logits: "last" });
        return sampler.sample(logits.data);
      }),
    );

  try {
    const t0 = performance.now();
    if (cache.length + prompt.length > limit)
      throw new Error(
        `generate: prompt of ${prompt.length} tokens (after ${cache.length} cached) exceeds the context of ${limit}`,
      );
    let next = maxNew > 0 ? step(prompt) : -1;
    const t1 = performance.now();
    let t2 = t1;
    for (let i = 0; i < maxNew; i++) {
      last = next;
      opts.onToken?.(next);
      if (stopIds.has(next)) {
        finishReason = "stop_id";
        stopId = next;
        break;
      }
      tokens.push(next);
      if (stream) {
        const [out, hit] = matcher.push(stream.push(next));
        emit(out);
        if (hit) {
          finishReason = "stop_string";
          break;
        }
      }
      if (i === maxNew - 1) break;
      if (cache.length + 1 > limit) {
        finishReason = "context";
        break;
      }
      next = step([next]);
      decodeSteps++;
      t2 = performance.now();
    }
    if (stream && finishReason !== "stop_string") {
      const [out, hit] = matcher.push(stream.flush());
      emit(out);
      if (hit) finishReason = "stop_string";
      else emit(matcher.flush());
    }
    const decodeSeconds = (t2 - t1) / 1000;
    return {
      tokens,
      text,
      finishReason,
      stopId,
      promptTokens: prompt.length,
      prefillSeconds: (t1 - t0) / 1000,
      decodeSeconds,
      decodeTokens: decodeSteps,
      decodeTokensPerSecond: decodeSeconds > 0 ? decodeSteps / decodeSeconds : 0,
      unforwarded: last,
    };
  } finally {
    if (!opts.cache) cache.dispose();
  }
}
