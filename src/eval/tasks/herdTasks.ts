// `herd_tasks`: a model scored on the held-out split of the small recipe's task generator
// (src/posttrain/tasks/, `herd tasks`) with the generator's own checkers, one subtask per kind
// (herd_tasks_arithmetic, herd_tasks_instructions, herd_tasks_facts) and the group row over them. The
// data is DATA_DIR/herd_tasks/heldout/prompts.jsonl, as `herd tasks --out DATA_DIR/herd_tasks` writes it.
// Zero-shot, greedy, stopped by the model's end ids only; the metric `acc,none` is the checker's verdict
// (1 correct, 0 not). With --chat the prompt is the task's messages in the Llama 3.1 chat format (what
// SFT trains on); without, the user message as plain text after BOS, so a base model continues the
// question — the recipe scores base, SFT and RS + DPO models all with --chat, the same prompts.
import { existsSync } from "node:fs";
import {
  check,
  type PromptRow,
  readTasks,
  TASK_KINDS,
  type Task,
  type TaskKind,
} from "../../posttrain/tasks/index.js";
import type { Turn } from "../prompt.js";
import type { Item, Response, Sample, Subtask, TaskSpec } from "../task.js";
import { dataPath, limited } from "./common.js";

/** New tokens per answer: a worked arithmetic answer, a paragraph, one word. */
export const MAX_NEW_TOKENS: Record<TaskKind, number> = { arithmetic: 256, instructions: 384, facts: 16 };

function taskItem(doc: number, row: PromptRow & { kind: TaskKind }): Item {
  const turns: Turn[] = row.messages.map((m) => ({
    role: m.role === "system" ? "system" : "user",
    content: m.content,
    delimiter: "\n",
  }));
  const task = row as Pick<Task, "check">;
  const target = JSON.stringify(row.check);
  return {
    doc,
    request: { type: "generate_until", turns, until: [], maxNewTokens: MAX_NEW_TOKENS[row.kind] },
    target,
    score(r: Response): Sample {
      if (r.type !== "generate_until") throw new Error("a herd_tasks item needs completions");
      const c = check(task, r.outputs[0] ?? "");
      return { metrics: { "acc,none": c.correct ? 1 : 0 }, extracted: c.detail, target };
    },
  };
}

export const herdTasks: TaskSpec = {
  name: "herd_tasks",
  summary: "the held-out split of `herd tasks` (DATA_DIR/herd_tasks/heldout), scored by its checkers",
  group: true,
  build: (ctx) => {
    const file = dataPath(ctx, "herd_tasks", "heldout", "prompts.jsonl");
    if (!existsSync(file))
      throw new Error(`${file}: missing (write it with herd tasks --out ${dataPath(ctx, "herd_tasks")})`);
    const rows = readTasks(file);
    for (const r of rows)
      if (!r.kind || !r.check) throw new Error(`${file}: task '${r.id}' has no kind or check`);
    return TASK_KINDS.map((kind): Subtask => {
      const all = rows.filter((r): r is PromptRow & { kind: TaskKind } => r.kind === kind);
      return {
        name: `herd_tasks_${kind}`,
        original: all.length,
        nShot: 0,
        version: 1,
        metrics: { "acc,none": true },
        config: { output_type: "generate_until", max_gen_toks: MAX_NEW_TOKENS[kind], until: [] },
        items: limited(all, ctx).map((r, i) => taskItem(i, r)),
      };
    });
  },
};
