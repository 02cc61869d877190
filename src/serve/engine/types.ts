// What a request asks of the serving engine and what it hears back: plain data, so the same shapes cross
// the worker-thread boundary (host.ts ↔ worker.ts) and serve the in-process Engine (engine.ts).

/** One generation request, already tokenised. */
export interface GenerationRequest {
  /** Prompt ids (BOS included where the model wants one). */
  prompt: number[];
  /** New tokens at most (≥ 0; 0 with promptLogprobs scores the prompt only). */
  maxTokens: number;
  /** 0 is greedy. */
  temperature: number;
  topP: number;
  topK?: number;
  seed: number;
  /** Ids that end the reply (not part of it). */
  stopIds: number[];
  /** Report each generated token's log-probability and this many alternatives (null: none). */
  logprobs: number | null;
  /** Score the prompt too: each prompt token's log-probability (and `logprobs` alternatives); the prompt
   * is then computed in full, without the prefix cache. */
  promptLogprobs?: boolean;
  /** The LoRA adapter to run with, by its served name (absent or null: the base alone). */
  adapter?: string | null;
}

/** A token's log-probability and the most likely alternatives at its position. */
export interface TokenLogprob {
  id: number;
  logprob: number;
  top: { id: number; logprob: number }[];
}

/** Tokens produced by one decode step for one request. */
export interface TokenEvent {
  id: number;
  /** Set when the request asked for logprobs. */
  logprob?: TokenLogprob;
}

export type FinishReason = "stop" | "length" | "cancelled" | "error";

/** llama.cpp's per-request timings (milliseconds). */
export interface Timings {
  prompt_n: number;
  prompt_ms: number;
  prompt_per_second: number;
  predicted_n: number;
  predicted_ms: number;
  predicted_per_second: number;
  /** Prompt tokens whose K/V came from the prefix cache. */
  cache_n: number;
}

/** The timings of a reply that computed nothing (an engine failure, a scripted test engine). */
export const NO_TIMINGS: Readonly<Timings> = {
  prompt_n: 0,
  prompt_ms: 0,
  prompt_per_second: 0,
  predicted_n: 0,
  predicted_ms: 0,
  predicted_per_second: 0,
  cache_n: 0,
};

export interface DoneEvent {
  finishReason: FinishReason;
  /** The stop id that ended the reply, if one did. */
  stopId: number | null;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  /** Log-probabilities of prompt tokens 1.. (token 0 has none), when promptLogprobs was asked. */
  promptLogprobs?: TokenLogprob[];
  timings: Timings;
  /** The message when finishReason is "error". */
  error?: string;
}

/** Why a request was not taken. */
export type RejectReason = "queue_full" | "too_long" | "invalid";

export class RejectedError extends Error {
  constructor(
    readonly reason: RejectReason,
    message: string,
  ) {
    super(message);
  }
}

/** Live figures for /metrics. */
export interface EngineStats {
  requestsTotal: number;
  requestsRejected: number;
  promptTokensTotal: number;
  cachedTokensTotal: number;
  generatedTokensTotal: number;
  queueDepth: number;
  active: number;
  /** Time to first token: sum (seconds), count, and cumulative counts at TTFT_BUCKETS. */
  ttftSum: number;
  ttftCount: number;
  ttftBuckets: number[];
  /** Generated tokens per second over the recent window. */
  tokensPerSecond: number;
  kvBlocksTotal: number;
  kvBlocksUsed: number;
  prefixBlocksCached: number;
}

/** Upper bounds (seconds) of the time-to-first-token histogram. */
export const TTFT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** The engine's model and limits as the HTTP layer needs them. */
export interface EngineInfo {
  contextLength: number;
  vocabSize: number;
  parallel: number;
  blockSize: number;
}
