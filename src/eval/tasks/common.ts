// The two kinds of harness task as builders: a multiple-choice item (acc, and acc_norm by the choice's
// length in characters, as the harness's multiple_choice output type) and a generated item scored by
// exact match after each of the task's filters (regex extraction, take_first). Task files only say
// what their documents, prompts and filters are.

import { join } from "node:path";
import { argmax } from "../../generate/sampling.js";
import type { Turn } from "../prompt.js";
import type { Item, Response, Sample, TaskContext } from "../task.js";
import { type ExactMatchOptions, exactMatch, regexExtract } from "../task.js";

/** The index of the first maximum (numpy's argmax). */
export const argmaxOf = argmax;

export function choiceItem(
  doc: number,
  turns: Turn[],
  choices: readonly string[],
  gold: number,
  ctx: TaskContext,
  norm: boolean,
): Item {
  // With a chat template the harness drops the target delimiter (the answer opens the assistant turn).
  const delim = ctx.chat ? "" : " ";
  return {
    doc,
    request: { type: "loglikelihood", turns, choices: choices.map((c) => delim + c) },
    target: choices[gold]!,
    score(r: Response): Sample {
      if (r.type !== "loglikelihood") throw new Error("a multiple-choice item needs log-likelihoods");
      const ll = r.scores.map((s) => s.logprob);
      const metrics: Record<string, number> = { "acc,none": argmaxOf(ll) === gold ? 1 : 0 };
      if (norm)
        metrics["acc_norm,none"] = argmaxOf(ll.map((l, i) => l / choices[i]!.length)) === gold ? 1 : 0;
      return { metrics, extracted: { loglikelihoods: ll, chosen: argmaxOf(ll) }, target: String(gold) };
    },
  };
}

/** A filter: a name, and the answer it extracts from a completion. */
export interface Filter {
  name: string;
  extract: (text: string) => string;
}

export const regexFilter = (name: string, pattern: string, groupSelect = 0): Filter => ({
  name,
  extract: (t) => regexExtract(t, pattern, groupSelect),
});

/** The harness's flexible-extract: the last number-looking string. */
export const FLEXIBLE: Filter = regexFilter("flexible-extract", "(-?[$0-9.,]{2,})|(-?[0-9]+)", -1);

export function generateItem(
  doc: number,
  turns: Turn[],
  target: string,
  gen: { until: string[]; maxNewTokens: number },
  filters: readonly Filter[],
  match: ExactMatchOptions,
): Item {
  return {
    doc,
    request: { type: "generate_until", turns, ...gen },
    target,
    score(r: Response): Sample {
      if (r.type !== "generate_until") throw new Error("a generated item needs completions");
      const text = r.outputs[0] ?? "";
      const metrics: Record<string, number> = {};
      const extracted: Record<string, string> = {};
      for (const f of filters) {
        extracted[f.name] = f.extract(text);
        metrics[`exact_match,${f.name}`] = exactMatch(extracted[f.name]!, target, match);
      }
      return { metrics, extracted, target };
    },
  };
}

/** The first `limit` documents (all without a limit). */
export function limited<T>(docs: T[], ctx: TaskContext): T[] {
  return ctx.limit === undefined ? docs : docs.slice(0, ctx.limit);
}

export function dataPath(ctx: TaskContext, ...parts: string[]): string {
  return join(ctx.dataDir, ...parts);
}
