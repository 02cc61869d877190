// The evaluation harness: runs tasks (registry.ts) against a model and aggregates them the way
// lm-evaluation-harness does. Each item's request is tokenised (the context's trailing spaces move to the
// continuation, as the harness's _encode_pair; one BOS), run and scored. What the items of a subtask share
// is computed once: the tokens every one of its contexts begins with (MMLU's description and five shots,
// GSM8K's eight exemplars) are prefilled into one KV cache per subtask, and each item continues a copy of
// it; choices are scored by log-likelihood with one prefill of the item's context and the continuations
// as a batch (loglikelihood.ts); n completions of one prompt (HumanEval's pass@k) decode as one batch
// from one prefill (generate/shared.ts); generation is greedy unless the task samples, stopped by every
// Llama 3 end id and the task's strings. The naive path (`path: "naive"`) computes every request from
// scratch, as the harness does: each choice its own full sequence, each completion its own generation.
// A subtask's metrics are means with the sample stderr of the mean, a group's are weighted by subtask
// size with the pooled stderr (the harness's) plus the plain mean over subtasks (`_macro`, the paper's
// MMLU average). Contexts longer than the model's window are cut from the left, as the harness does.
// Progress goes to `onProgress`; nothing here prints.
import type { TextCodec } from "../generate/codec.js";
import { generate } from "../generate/generate.js";
import { generateShared } from "../generate/shared.js";
import { stopIdsOf } from "../model/config.js";
import { KVCache } from "../model/kvcache.js";
import type { Llama } from "../model/llama.js";
import { noGrad } from "../tensor/tape.js";
import { scope } from "../tensor/tensor.js";
import { scoreContinuations } from "./loglikelihood.js";
import { promptIds, promptText, renderText } from "./prompt.js";
import type { Item, Response, Subtask, TaskContext, TaskSpec } from "./task.js";
import { mean, meanStderr, pooledStderr } from "./task.js";
import type { CustomContext, CustomTaskSpec } from "./tasks/custom.js";

export interface EvalOptions extends TaskContext {
  codec: TextCodec;
  /** "shared" (default: shared prefixes computed once) or "naive" (every request from scratch). */
  path?: "shared" | "naive";
  /** Naive path: sequences per forward. */
  batch?: number;
  /** Keep every sample (prompt, output, extraction, score) in the result. */
  logSamples?: boolean;
  onProgress?: (p: EvalProgress) => void;
}

export interface EvalProgress {
  task: string;
  done: number;
  total: number;
  /** Items done over all tasks, and their count. */
  allDone: number;
  allTotal: number;
}

export interface SampleRecord {
  doc_id: number;
  prompt: string;
  target: string;
  /** Raw completions, or each choice's log-likelihood. */
  output: string[] | number[];
  extracted: unknown;
  metrics: Record<string, number>;
}

export type MetricValue = number | "N/A";

export interface TaskResults {
  results: Record<string, Record<string, MetricValue | string>>;
  group_subtasks: Record<string, string[]>;
  configs: Record<string, Record<string, unknown>>;
  versions: Record<string, number>;
  "n-shot": Record<string, number>;
  "n-samples": Record<string, { original: number; effective: number }>;
  higher_is_better: Record<string, Record<string, boolean>>;
  samples: Record<string, SampleRecord[]>;
}

/** Stop ids: the config's eos ids, and every Llama 3 end id for a Llama 3 vocabulary. */
export function stopIdsFor(model: Llama): number[] {
  return stopIdsOf(model.config);
}

/** Context and continuation ids as the harness's _encode_pair (base) or the dialog then the answer (chat). */
export function encodePair(
  item: Item & { request: { type: "loglikelihood" } },
  codec: TextCodec,
  bos: number | null,
  chat: boolean,
): { context: number[]; continuations: number[][] } {
  const encode = codec.encode!;
  if (chat) {
    const context = promptIds(item.request.turns, codec, bos, true);
    return { context, continuations: item.request.choices.map((c) => encode(c)) };
  }
  const text = renderText(item.request.turns);
  const trimmed = text.replace(/\s+$/, "");
  const spaces = text.slice(trimmed.length);
  const lead = bos === null ? [] : [bos];
  const context = [...lead, ...encode(trimmed)];
  const continuations = item.request.choices.map((c) => {
    const whole = [...lead, ...encode(trimmed + spaces + c)];
    return whole.slice(context.length);
  });
  return { context, continuations };
}

/** An item's ids as the model sees them, after the harness's left truncation to the window. */
interface Prepared {
  context: number[];
  /** Multiple choice: each choice's continuation ids. */
  continuations: number[][];
  /** Generation: new tokens at most. */
  maxNewTokens: number;
}

function prepare(model: Llama, item: Item, o: EvalOptions): Prepared {
  const max = model.config.maxPositionEmbeddings;
  const bos = model.config.bosTokenId;
  const r = item.request;
  if (r.type === "loglikelihood") {
    const { context, continuations } = encodePair(item as Item & { request: typeof r }, o.codec, bos, o.chat);
    const longest = Math.max(...continuations.map((c) => c.length));
    const ctx = context.slice(Math.max(0, context.length + longest - 1 - max));
    return { context: ctx, continuations, maxNewTokens: 0 };
  }
  let ids = promptIds(r.turns, o.codec, bos, o.chat);
  // The harness keeps max − max_gen_toks prompt tokens; a window shorter than twice the generation keeps half.
  const room = Math.max(Math.floor(max / 2), max - r.maxNewTokens);
  if (ids.length > room) ids = ids.slice(ids.length - room);
  return { context: ids, continuations: [], maxNewTokens: Math.min(r.maxNewTokens, max - ids.length) };
}

/**
 * How many tokens every one of `contexts` begins with (their longest common prefix), at most one short of
 * the shortest so each item still computes its last context token; 0 for fewer than two contexts.
 */
export function commonPrefixLength(contexts: readonly (readonly number[])[]): number {
  if (contexts.length < 2) return 0;
  const first = contexts[0]!;
  let n = Math.min(...contexts.map((c) => c.length)) - 1;
  for (const c of contexts) {
    let k = 0;
    while (k < n && c[k] === first[k]) k++;
    n = k;
  }
  return Math.max(0, n);
}

/** The subtask's shared prefix prefilled into a batch-1 cache (null when there is none or on the naive path). */
function prefillPrefix(model: Llama, prepared: readonly Prepared[], o: EvalOptions): KVCache | null {
  if (o.path === "naive") return null;
  const P = commonPrefixLength(prepared.map((p) => p.context));
  if (P === 0) return null;
  const cache = new KVCache(model.config, 1, P);
  const ids = Int32Array.from(prepared[0]!.context.slice(0, P));
  noGrad(() => scope(() => model.forward(ids, { cache, logits: "last" })));
  return cache;
}

async function runItem(
  model: Llama,
  item: Item,
  p: Prepared,
  prefix: KVCache | null,
  o: EvalOptions,
  stopIds: number[],
): Promise<[Response, number[] | string[]]> {
  const r = item.request;
  if (r.type === "loglikelihood") {
    const scores = scoreContinuations(model, p.context, p.continuations, {
      path: o.path ?? "shared",
      batch: o.batch ?? 1,
      ...(prefix ? { prefix } : {}),
    });
    return [{ type: "loglikelihood", scores }, scores.map((s) => s.logprob)];
  }
  const ids = p.context;
  const n = r.n ?? 1;
  const gen = {
    maxNewTokens: p.maxNewTokens,
    temperature: r.temperature ?? 0,
    topP: r.topP ?? 1,
    stopIds,
    stopStrings: r.until,
    codec: o.codec,
  };
  // Completion s is the one generate() draws with seed s, on every path.
  let outputs: string[];
  if (o.path === "naive")
    outputs = Array.from({ length: n }, (_, seed) => generate(model, ids, { ...gen, seed }).text);
  else if (n > 1) {
    const seeds = Array.from({ length: n }, (_, s) => s);
    outputs = generateShared(model, ids, { ...gen, seeds, ...(prefix ? { prefix } : {}) }).samples.map(
      (s) => s.text,
    );
  } else if (prefix) {
    const cache = prefix.selectRows([0], ids.length + p.maxNewTokens) as KVCache;
    try {
      outputs = [generate(model, ids.slice(prefix.length), { ...gen, seed: 0, cache }).text];
    } finally {
      cache.dispose();
    }
  } else outputs = [generate(model, ids, { ...gen, seed: 0 }).text];
  return [{ type: "generate_until", outputs }, outputs];
}

function aggregate(values: Record<string, number[]>): Record<string, MetricValue> {
  const out: Record<string, MetricValue> = {};
  for (const [key, xs] of Object.entries(values)) {
    const [metric, filter] = key.split(",");
    out[key] = mean(xs);
    out[`${metric}_stderr,${filter}`] = meanStderr(xs);
  }
  return out;
}

/** A group row: each metric weighted by subtask size (pooled stderr), and the plain mean as `_macro`. */
function groupRow(rows: Record<string, MetricValue | string>[], sizes: number[], keys: string[]) {
  const out: Record<string, MetricValue | string> = {};
  for (const key of keys) {
    const [metric, filter] = key.split(",");
    const vals = rows.map((r) => r[key] as number);
    const n = sizes.reduce((a, b) => a + b, 0);
    out[key] = vals.reduce((a, v, i) => a + v * sizes[i]!, 0) / n;
    const errs = rows.map((r) => r[`${metric}_stderr,${filter}`]);
    out[`${metric}_stderr,${filter}`] = errs.every((e) => typeof e === "number")
      ? pooledStderr(errs as number[], sizes)
      : "N/A";
    out[`${metric}_macro,${filter}`] = mean(vals);
  }
  return out;
}

/** Run the tasks; results keyed as the harness keys them. */
export async function evaluateTasks(
  model: Llama,
  specs: readonly TaskSpec[],
  o: EvalOptions,
): Promise<TaskResults> {
  const out: TaskResults = {
    results: {},
    group_subtasks: {},
    configs: {},
    versions: {},
    "n-shot": {},
    "n-samples": {},
    higher_is_better: {},
    samples: {},
  };
  const built = specs.map((s) => ({ spec: s, subtasks: s.build(o).filter((t) => t.items.length > 0) }));
  const allTotal = built.reduce((a, b) => a + b.subtasks.reduce((x, t) => x + t.items.length, 0), 0);
  let allDone = 0;
  const stopIds = stopIdsFor(model);
  for (const { spec, subtasks } of built) {
    if (subtasks.length === 0) throw new Error(`${spec.name}: no documents to evaluate`);
    const rows: Record<string, MetricValue | string>[] = [];
    for (const t of subtasks) {
      const values: Record<string, number[]> = {};
      const samples: SampleRecord[] = [];
      let done = 0;
      const prepared = t.items.map((item) => prepare(model, item, o));
      const prefix = prefillPrefix(model, prepared, o);
      try {
        for (const [at, item] of t.items.entries()) {
          const [resp, output] = await runItem(model, item, prepared[at]!, prefix, o, stopIds);
          const s = await item.score(resp);
          for (const [k, v] of Object.entries(s.metrics)) (values[k] ??= []).push(v);
          if (o.logSamples)
            samples.push({
              doc_id: item.doc,
              prompt: promptText(item.request.turns, o.codec, o.chat),
              target: s.target,
              output,
              extracted: s.extracted,
              metrics: s.metrics,
            });
          done++;
          allDone++;
          o.onProgress?.({ task: t.name, done, total: t.items.length, allDone, allTotal });
        }
      } finally {
        prefix?.dispose();
      }
      const row = { alias: t.name, ...aggregate(values) };
      rows.push(row);
      record(out, t, row, samples, o);
    }
    if (spec.group) {
      const keys = Object.keys(subtasks[0]!.metrics);
      out.results[spec.name] = {
        alias: spec.name,
        ...groupRow(
          rows,
          subtasks.map((t) => t.items.length),
          keys,
        ),
      };
      out.group_subtasks[spec.name] = subtasks.map((t) => t.name);
      out.higher_is_better[spec.name] = subtasks[0]!.metrics;
    }
  }
  return out;
}

function record(
  out: TaskResults,
  t: Subtask,
  row: Record<string, MetricValue | string>,
  samples: SampleRecord[],
  o: EvalOptions,
): void {
  out.results[t.name] = row;
  out.configs[t.name] = { task: t.name, num_fewshot: t.nShot, chat_format: o.chat, ...t.config };
  out.versions[t.name] = t.version;
  out["n-shot"][t.name] = t.nShot;
  out["n-samples"][t.name] = { original: t.original, effective: t.items.length };
  out.higher_is_better[t.name] = t.metrics;
  if (o.logSamples) out.samples[t.name] = samples;
}

/** Request tasks and custom ones (perplexity, niah) in one run; custom tasks' files come back beside. */
export async function evaluate(
  model: Llama,
  tasks: readonly (TaskSpec | CustomTaskSpec)[],
  o: EvalOptions & CustomContext,
): Promise<{ results: TaskResults; files: Record<string, string> }> {
  const custom = tasks.filter((t): t is CustomTaskSpec => "custom" in t);
  const results = await evaluateTasks(
    model,
    tasks.filter((t): t is TaskSpec => !("custom" in t)),
    o,
  );
  const files: Record<string, string> = {};
  for (const t of custom) {
    const r = t.run(model, o);
    results.results[t.name] = r.row;
    results.configs[t.name] = { task: t.name, text: o.textFile ?? null };
    results["n-shot"][t.name] = 0;
    results["n-samples"][t.name] = { original: r.nSamples, effective: r.nSamples };
    Object.assign(files, r.files);
  }
  return { results, files };
}
