// Every task `herd eval --tasks` knows, by its lm-evaluation-harness name, so results line up with the
// harness's. Request tasks (task.ts) run through harness.ts; custom tasks (perplexity, niah) run the
// model themselves.
import type { TaskSpec } from "./task.js";
import { arcChallenge } from "./tasks/arc.js";
import { type CustomTaskSpec, niahTask, perplexityTask } from "./tasks/custom.js";
import { gsm8k, gsm8kCot, gsm8kCotLlama } from "./tasks/gsm8k.js";
import { herdTasks } from "./tasks/herdTasks.js";
import { humaneval } from "./tasks/humaneval.js";
import { mgsmNativeCot } from "./tasks/mgsm.js";
import { mmlu, mmluCotLlama, mmluLlama } from "./tasks/mmlu.js";

export type AnyTask = TaskSpec | CustomTaskSpec;

export const TASKS: readonly AnyTask[] = [
  mmlu,
  mmluLlama,
  mmluCotLlama,
  arcChallenge,
  gsm8k,
  gsm8kCot,
  gsm8kCotLlama,
  mgsmNativeCot,
  humaneval, // n completions per prompt, run in src/eval/code/'s sandbox by an async scorer
  perplexityTask,
  niahTask,
  herdTasks, // the held-out split of `herd tasks`, scored by its checkers (the small recipe's table)
];

export const isCustom = (t: AnyTask): t is CustomTaskSpec => "custom" in t;

/** The tasks named in a --tasks list, in its order; an unknown name lists the known ones. */
export function resolveTasks(names: readonly string[]): AnyTask[] {
  return names.map((n) => {
    const t = TASKS.find((x) => x.name === n);
    if (!t) throw new Error(`unknown task '${n}' (known: ${TASKS.map((x) => x.name).join(", ")})`);
    return t;
  });
}
