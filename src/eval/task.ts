// The shape of an evaluation task, after lm-evaluation-harness: a task turns each document of a data set
// into one request — `loglikelihood` (score each choice's continuation after a shared context) or
// `generate_until` (n completions of a prompt, stopping at the task's strings) — and a scorer that turns
// the model's response into per-sample metrics keyed as the harness keys them ("acc,none",
// "exact_match,strict-match": metric, comma, filter). A code task (HumanEval) is a generate_until task
// whose scorer receives its n completions and may be async (it runs them). The metric functions the
// harness uses (mean, sample stderr of the mean, pooled stderr over subtasks, exact match with its
// normalisations, the regex filter) live here too, so every task scores the same way.
import type { ContinuationScore } from "./loglikelihood.js";
import type { Turn } from "./prompt.js";

export interface ChoiceRequest {
  type: "loglikelihood";
  turns: Turn[];
  /** Continuations scored after the context (target delimiter included, as the harness builds them). */
  choices: string[];
}

export interface GenerateRequest {
  type: "generate_until";
  turns: Turn[];
  /** Stop strings (cut from the output); the Llama 3 end ids always stop too. */
  until: string[];
  maxNewTokens: number;
  /** Completions per prompt (default 1, greedy); more need a temperature > 0. */
  n?: number;
  temperature?: number;
  topP?: number;
}

export type Request = ChoiceRequest | GenerateRequest;

export type Response =
  | { type: "loglikelihood"; scores: ContinuationScore[] }
  | { type: "generate_until"; outputs: string[] };

/** One document scored: its metrics ("acc,none" → 0/1), what was extracted, and the target. */
export interface Sample {
  metrics: Record<string, number>;
  extracted: unknown;
  target: string;
}

export interface Item {
  /** Position of the document in its data file (0-based). */
  doc: number;
  request: Request;
  target: string;
  score(r: Response): Sample | Promise<Sample>;
}

/** What a task is built from: the data directory, the CLI's overrides and the prompt format. */
export interface TaskContext {
  dataDir: string;
  /** Documents per subtask at most (the harness's --limit). */
  limit?: number;
  /** Few-shot examples (default: the task's own). */
  shots?: number;
  /** Completions per prompt for sampled tasks (humaneval's pass@k; default 1, greedy). */
  samples?: number;
  /** Instruct model: the Llama 3.1 chat format (few-shot examples as turns); else plain text. */
  chat: boolean;
}

/** One scored unit of a task, as a row of the harness's `results` (mmlu_anatomy, gsm8k, …). */
export interface Subtask {
  name: string;
  /** Documents in the data file before --limit (the harness's n-samples "original"). */
  original: number;
  items: Item[];
  /** The settings that decide the number: written to the results' `configs`. */
  config: Record<string, unknown>;
  /** Metric keys and whether higher is better ("acc,none" → true). */
  metrics: Record<string, boolean>;
  nShot: number;
  /** The harness task config's metadata.version this one follows (results' `versions`). */
  version: number;
}

/** A task by its harness name: one subtask, or a group of them aggregated (mmlu over 57 subjects). */
export interface TaskSpec {
  name: string;
  summary: string;
  /** Several subtasks are aggregated into a group row named after the task. */
  group?: boolean;
  build(ctx: TaskContext): Subtask[];
}

// --- metrics ----------------------------------------------------------------------------------------

export function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** The harness's mean_stderr: sample standard deviation (n − 1) over √n; "N/A" for one sample. */
export function meanStderr(xs: readonly number[]): number | "N/A" {
  if (xs.length < 2) return "N/A";
  const mu = mean(xs);
  const v = xs.reduce((a, x) => a + (x - mu) ** 2, 0) / (xs.length - 1);
  return Math.sqrt(v) / Math.sqrt(xs.length);
}

/** The harness's pooled_sample_stderr: a group's stderr from its subtasks' stderrs and sizes. */
export function pooledStderr(stderrs: readonly number[], sizes: readonly number[]): number {
  const n = sizes.reduce((a, b) => a + b, 0);
  let v = 0;
  sizes.forEach((s, i) => {
    v += (s - 1) * stderrs[i]! ** 2 * s;
  });
  return Math.sqrt(v / (n - sizes.length) / n);
}

/** Python's string.punctuation. */
const PUNCTUATION = new Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");

export interface ExactMatchOptions {
  regexesToIgnore?: readonly string[];
  ignoreCase?: boolean;
  ignorePunctuation?: boolean;
}

/** A Python regex as JS: a leading inline (?s) becomes the s flag. */
export function pyRegex(pattern: string, flags = ""): RegExp {
  if (pattern.startsWith("(?s)")) return new RegExp(pattern.slice(4), `${flags}s`);
  return new RegExp(pattern, flags);
}

/** The harness's exact_match (HF evaluate's): strip the regexes, then case, then punctuation; compare. */
export function normalizeForMatch(s: string, o: ExactMatchOptions): string {
  for (const r of o.regexesToIgnore ?? []) s = s.replace(pyRegex(r, "g"), "");
  if (o.ignoreCase) s = s.toLowerCase();
  if (o.ignorePunctuation) s = [...s].filter((c) => !PUNCTUATION.has(c)).join("");
  return s;
}

export function exactMatch(prediction: string, reference: string, o: ExactMatchOptions): number {
  return normalizeForMatch(prediction, o) === normalizeForMatch(reference, o) ? 1 : 0;
}

/**
 * The harness's regex filter: Python's re.findall, the match at group_select (−1: the last), a tuple's
 * first non-empty group, stripped; "[invalid]" when nothing matches.
 */
export function regexExtract(text: string, pattern: string, groupSelect = 0, fallback = "[invalid]"): string {
  const re = pyRegex(pattern, "g");
  const found: string[] = [];
  const groups = new RegExp(`${re.source}|`).exec("")!.length - 1;
  for (const m of text.matchAll(re)) {
    if (groups === 0) found.push(m[0]);
    else if (groups === 1) found.push(m[1] ?? "");
    else found.push(m.slice(1).find((g) => g) ?? "\u0000");
  }
  if (found.length === 0) return fallback;
  const pick = found[groupSelect < 0 ? found.length + groupSelect : groupSelect];
  if (pick === undefined) return fallback;
  return pick === "\u0000" ? fallback : pick.trim();
}
