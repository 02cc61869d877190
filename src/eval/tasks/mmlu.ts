// MMLU in three forms, each its own task name so results never mix them (lm-evaluation-harness's):
// - `mmlu`: 5-shot from each subject's dev split (first five), "Question\nA. …\nD. …\nAnswer:", the
//   choice letter scored by log-likelihood (acc): the paper's pre-trained protocol (spec §10.2);
// - `mmlu_llama`: Meta's instruct prompt, 5-shot generative, the answer continuing "The best answer is"
//   within 10 tokens, stopped at "." (tasks/llama3/instruct/mmlu);
// - `mmlu_cot_llama`: 0-shot chain of thought, the letter taken from the last "best answer is X"
//   (tasks/llama3/instruct/mmlu_cot), up to 1024 tokens.
// Each subject is a subtask (mmlu_anatomy, mmlu_llama_anatomy, …); the group row aggregates them.
import { existsSync, readdirSync } from "node:fs";
import { type MmluDoc, readMmluCsv } from "../datasets.js";
import { buildTurns } from "../prompt.js";
import type { Subtask, TaskContext, TaskSpec } from "../task.js";
import { choiceItem, dataPath, type Filter, generateItem, limited, regexFilter } from "./common.js";

const LETTERS = ["A", "B", "C", "D"];

export function mmluSubjects(ctx: TaskContext): string[] {
  const dir = dataPath(ctx, "mmlu", "test");
  if (!existsSync(dir)) throw new Error(`${dir}: MMLU's test split is missing (--data-dir)`);
  return readdirSync(dir)
    .filter((f) => f.endsWith("_test.csv"))
    .map((f) => f.slice(0, -"_test.csv".length))
    .sort();
}

function docs(ctx: TaskContext, subject: string, split: "dev" | "test"): MmluDoc[] {
  return readMmluCsv(dataPath(ctx, "mmlu", split, `${subject}_${split}.csv`));
}

/** The harness's default MMLU question text. */
export function mmluText(d: MmluDoc): string {
  return `${d.question.trim()}\n${d.choices.map((c, i) => `${LETTERS[i]}. ${c}`).join("\n")}\nAnswer:`;
}

export function mmluDescription(subject: string): string {
  return `The following are multiple choice questions (with answers) about ${subject.replaceAll("_", " ")}.\n\n`;
}

function subjects(ctx: TaskContext, prefix: string, make: (s: string) => Omit<Subtask, "name">): Subtask[] {
  return mmluSubjects(ctx).map((s) => ({ name: `${prefix}_${s}`, ...make(s) }));
}

export const mmlu: TaskSpec = {
  name: "mmlu",
  summary: "MMLU, 5-shot, choice letter by log-likelihood (acc; macro and micro averages)",
  group: true,
  build: (ctx) =>
    subjects(ctx, "mmlu", (subject) => {
      const k = ctx.shots ?? 5;
      const shots = docs(ctx, subject, "dev")
        .slice(0, k)
        .map((d) => ({ text: mmluText(d), target: LETTERS[d.answer]! }));
      const all = docs(ctx, subject, "test");
      const description = mmluDescription(subject);
      return {
        original: all.length,
        nShot: shots.length,
        version: 1,
        metrics: { "acc,none": true },
        config: { output_type: "multiple_choice", fewshot_split: "dev", sampler: "first_n", description },
        items: limited(all, ctx).map((d, i) =>
          choiceItem(i, buildTurns({ description, shots, text: mmluText(d) }), LETTERS, d.answer, ctx, false),
        ),
      };
    }),
};

const LLAMA_INSTRUCTION =
  "Given the following question and four candidate answers (A, B, C and D), choose the best answer.\n";

export function mmluLlamaText(d: MmluDoc): string {
  return `${LLAMA_INSTRUCTION}Question: ${d.question.trim()}\n${d.choices.map((c, i) => `${LETTERS[i]}. ${c}`).join("\n")}\nYour response should end with "The best answer is [the_answer_letter]" where the [the_answer_letter] is one of A, B, C or D.`;
}

export const mmluLlama: TaskSpec = {
  name: "mmlu_llama",
  summary: 'MMLU, Meta\'s 5-shot generative instruct prompt ("The best answer is", 10 tokens)',
  group: true,
  build: (ctx) =>
    subjects(ctx, "mmlu_llama", (subject) => {
      const k = ctx.shots ?? 5;
      const genPrefix = "The best answer is";
      const shots = docs(ctx, subject, "dev")
        .slice(0, k)
        .map((d) => ({ text: mmluLlamaText(d), target: `${LETTERS[d.answer]}.` }));
      const all = docs(ctx, subject, "test");
      const gen = { until: ["."], maxNewTokens: 10 };
      const strip: Filter = {
        name: "strict_match",
        extract: (t) => t.trim(), // remove_whitespace (strip), then take_first
      };
      return {
        original: all.length,
        nShot: shots.length,
        version: 1,
        metrics: { "exact_match,strict_match": true },
        config: { output_type: "generate_until", gen_prefix: genPrefix, generation_kwargs: gen },
        items: limited(all, ctx).map((d, i) =>
          generateItem(
            i,
            buildTurns({ shots, text: mmluLlamaText(d), genPrefix }),
            `${LETTERS[d.answer]}.`,
            gen,
            [strip],
            { ignoreCase: true, ignorePunctuation: true, regexesToIgnore: ["\\$", "\\.$"] },
          ),
        ),
      };
    }),
};

export function mmluCotText(d: MmluDoc): string {
  return `Given the following question and four candidate answers (A, B, C and D), choose the best answer.\n\nQuestion: ${d.question.trim()}\n${d.choices.map((c, i) => `${LETTERS[i]}. ${c}`).join("\n")}\n\n- For simple problems:\nDirectly provide the answer with minimal explanation.\n\n- For complex problems:\nUse this step-by-step format:\n## Step 1: [Concise description]\n[Brief explanation]\n## Step 2: [Concise description]\n[Brief explanation]\n\nRegardless of the approach, always conclude with:\nThe best answer is [the_answer_letter].\nwhere the [the_answer_letter] is one of A, B, C or D.\n\nLet's think step by step.`;
}

export const mmluCotLlama: TaskSpec = {
  name: "mmlu_cot_llama",
  summary: 'MMLU, 0-shot chain of thought for instruct models (letter from "best answer is X")',
  group: true,
  build: (ctx) =>
    subjects(ctx, "mmlu_cot_llama", (subject) => {
      const all = docs(ctx, subject, "test");
      const gen = { until: [], maxNewTokens: 1024 };
      return {
        original: all.length,
        nShot: 0,
        version: 1,
        metrics: { "exact_match,strict_match": true },
        config: { output_type: "generate_until", generation_kwargs: gen },
        items: limited(all, ctx).map((d, i) =>
          generateItem(
            i,
            buildTurns({ shots: [], text: mmluCotText(d) }),
            LETTERS[d.answer]!,
            gen,
            [regexFilter("strict_match", "best answer is ([A-Z])", -1)],
            { ignoreCase: true, ignorePunctuation: true },
          ),
        ),
      };
    }),
};
