// Rejection sampling (spec §7.7): K completions per prompt from the current model, each scored, the best
// kept as a new SFT dialog (`messages`: the prompt plus the chosen assistant reply). The K samples share
// the prompt's KV cache: one prefill, then the K sequences decoded as one batch (src/generate/shared.ts;
// rows that stop leave the batch). Sample i of prompt p is sampled with seed sampleSeed(seed, p, i), so a
// run is reproducible; regenerated alone with generate() and that seed, a sample is the same wherever the
// batched and one-row forwards round alike (see src/generate/shared.ts).
// Scoring: "checker" uses the prompt's own task check (src/posttrain/tasks/, 1 correct, 0 not), or any
// `score(promptMessages, completionText) → number` (a reward model plugs in here). A sample is acceptable
// when it ended with a stop id (a completion cut off at maxNewTokens or the context is never kept), is
// not empty (an empty assistant turn is bad SFT data) and scores at least minScore (default: 1 with the checker, i.e. correct; −∞ with a score function); a score that is not finite (a reward model's −∞ for a completion past its context) is never acceptable.
// The best is the acceptable sample with the highest score, ties going to the lowest sample index.
// Prompts with no acceptable sample are counted and listed in the report, never silently dropped.
import { performance } from "node:perf_hooks";
import { fmix32 } from "../core/rng.js";
import type { TextCodec } from "../generate/codec.js";
import { generateShared } from "../generate/shared.js";
import type { Llama } from "../model/llama.js";
import type { ChatFormat, Message } from "../tokenizer/chat.js";
import { check } from "./tasks/checker.js";
import type { PromptRow } from "./tasks/generate.js";

/** A completion's score given its prompt (higher is better). */
export type ScoreFn = (prompt: readonly Message[], completion: string) => number;

export interface RejectionOptions {
  /** Samples per prompt (the paper: 10–30). */
  k: number;
  /** "checker": each prompt's task check (1 correct, 0 not); or a score function such as a reward model. */
  scorer: "checker" | ScoreFn;
  /** Lowest acceptable score (default: 1 with the checker, −∞ with a score function). */
  minScore?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  /** New tokens at most per sample (default 256). */
  maxNewTokens?: number;
  /** Ids that end a completion (default: the chat format's <|eot_id|>, <|eom_id|>, <|end_of_text|> and the config's eos). */
  stopIds?: readonly number[];
  /** Seed of every sample's stream (sampleSeed). */
  seed?: number;
  /** Heard after each prompt. */
  onProgress?: (p: RejectionProgress) => void;
}

export interface RejectionProgress {
  done: number;
  total: number;
  samples: number;
  kept: number;
  seconds: number;
}

/** What happened to one prompt. */
export interface PromptOutcome {
  id: string;
  /** Index of the kept sample, or null when none was acceptable. */
  best: number | null;
  bestScore: number | null;
  /** Samples that were acceptable. */
  acceptable: number;
  /** Samples cut off at maxNewTokens or the context. */
  truncated: number;
  scores: number[];
}

export interface RejectionReport {
  prompts: number;
  kept: number;
  /** Prompts with no acceptable sample, and their ids. */
  noAcceptable: number;
  noAcceptableIds: string[];
  samples: number;
  /** Acceptable samples over all samples (with the checker: the share of correct completions). */
  acceptRate: number;
  truncated: number;
  seconds: number;
  samplesPerSecond: number;
  outcomes: PromptOutcome[];
}

export interface RejectionResult {
  /** The new SFT data: the prompt's messages plus the best completion as the assistant's. */
  dialogs: { messages: Message[] }[];
  report: RejectionReport;
}

/** The sampler seed of sample `sample` of prompt `prompt` (its own stream of src/core/rng.ts's generator). */
export function sampleSeed(seed: number, prompt: number, sample: number): number {
  return fmix32((fmix32((seed ^ fmix32(prompt + 1)) >>> 0) + sample) >>> 0);
}

/** Index of the highest score among acceptable samples, the lowest index on ties; null if none. */
export function pickBest(scores: readonly number[], acceptable: readonly boolean[]): number | null {
  let best: number | null = null;
  for (let i = 0; i < scores.length; i++)
    if (acceptable[i] && (best === null || scores[i]! > scores[best]!)) best = i;
  return best;
}

/** Rejection-sample `rows` with `model` (prompts encoded in `chat`'s dialog format). */
export function rejectionSample(
  model: Llama,
  chat: ChatFormat,
  codec: TextCodec,
  rows: readonly PromptRow[],
  opts: RejectionOptions,
): RejectionResult {
  if (!(Number.isInteger(opts.k) && opts.k >= 1))
    throw new Error(`rejection sampling: k ${opts.k} must be ≥ 1`);
  const useChecker = opts.scorer === "checker";
  const minScore = opts.minScore ?? (useChecker ? 1 : Number.NEGATIVE_INFINITY);
  const seed = opts.seed ?? 0;
  const stopIds = opts.stopIds ?? [...new Set([...chat.stopIds(), ...model.config.eosTokenIds])];
  const dialogs: { messages: Message[] }[] = [];
  const outcomes: PromptOutcome[] = [];
  const t0 = performance.now();
  let samples = 0;
  for (const [p, row] of rows.entries()) {
    if (useChecker && !row.check)
      throw new Error(`rejection sampling: prompt '${row.id}' has no 'check' for the checker`);
    const messages = row.messages as Message[];
    const ids = chat.encodeDialogPrompt(messages);
    const seeds = Array.from({ length: opts.k }, (_, i) => sampleSeed(seed, p, i));
    const limit = model.config.maxPositionEmbeddings;
    if (ids.length >= limit)
      throw new Error(
        `rejection sampling: prompt '${row.id}' is ${ids.length} tokens, the model's context ${limit}`,
      );
    const r = generateShared(model, ids, {
      seeds,
      stopIds,
      codec,
      maxNewTokens: opts.maxNewTokens ?? 256,
      ...(opts.temperature !== undefined ? { temperature: opts.temperature } : {}),
      ...(opts.topP !== undefined ? { topP: opts.topP } : {}),
      ...(opts.topK !== undefined ? { topK: opts.topK } : {}),
    });
    const score = (text: string) =>
      opts.scorer === "checker"
        ? check({ check: row.check! }, text).correct
          ? 1
          : 0
        : opts.scorer(messages, text);
    const scores = r.samples.map((s) => score(s.text));
    const ok = r.samples.map(
      (s, i) =>
        s.finishReason === "stop_id" &&
        s.text.trim() !== "" &&
        Number.isFinite(scores[i]) &&
        scores[i]! >= minScore,
    );
    const best = pickBest(scores, ok);
    if (best !== null)
      dialogs.push({ messages: [...messages, { role: "assistant", content: r.samples[best]!.text }] });
    samples += opts.k;
    outcomes.push({
      id: row.id,
      best,
      bestScore: best === null ? null : scores[best]!,
      acceptable: ok.filter(Boolean).length,
      truncated: r.samples.filter((s) => s.finishReason !== "stop_id").length,
      scores,
    });
    opts.onProgress?.({
      done: p + 1,
      total: rows.length,
      samples,
      kept: dialogs.length,
      seconds: (performance.now() - t0) / 1000,
    });
  }
  const seconds = (performance.now() - t0) / 1000;
  const none = outcomes.filter((o) => o.best === null);
  return {
    dialogs,
    report: {
      prompts: rows.length,
      kept: dialogs.length,
      noAcceptable: none.length,
      noAcceptableIds: none.map((o) => o.id),
      samples,
      acceptRate: samples > 0 ? outcomes.reduce((a, o) => a + o.acceptable, 0) / samples : 0,
      truncated: outcomes.reduce((a, o) => a + o.truncated, 0),
      seconds,
      samplesPerSecond: seconds > 0 ? samples / seconds : 0,
      outcomes,
    },
  };
}
