// HumanEval as a harness task: each problem one generate_until item asking for `samples` completions
// (greedy for one, else sampled at temperature 0.2, top-p 0.95, Codex's pass@1 setting), whose scorer runs
// them in the OS sandbox (src/eval/code/: prompts, stop sequences, the check program, pass@k) and reports
// "pass@k,create_test" for each k ≤ samples among 1, 10, 100 (the harness's key). Base models continue
// the prompt; with --chat the prompt is a user turn and the answer an assistant turn begun with it in a
// python fence (code/humaneval.ts). Reads HumanEval.jsonl(.gz) from the data directory.
import { existsSync } from "node:fs";
import { humanEvalCompletion, humanEvalPrompt, readHumanEval } from "../code/humaneval.js";
import { scoreProblem } from "../code/score.js";
import type { Turn } from "../prompt.js";
import type { Sample, TaskSpec } from "../task.js";
import { dataPath, limited } from "./common.js";

export const humaneval: TaskSpec = {
  name: "humaneval",
  summary: "HumanEval, 0-shot, completions run in the sandbox (pass@1; pass@10, @100 with --samples)",
  build: (ctx) => {
    const gz = dataPath(ctx, "HumanEval.jsonl.gz");
    const path = existsSync(gz) ? gz : dataPath(ctx, "HumanEval.jsonl");
    if (!existsSync(path)) throw new Error(`${gz}: HumanEval is missing (--data-dir)`);
    const all = readHumanEval(path);
    const n = ctx.samples ?? 1;
    const ks = [1, 10, 100].filter((k) => k <= n);
    const style = ctx.chat ? "instruct" : "base";
    const sampling = n > 1 ? { temperature: 0.2, topP: 0.95 } : { temperature: 0 };
    return [
      {
        name: "humaneval",
        original: all.length,
        nShot: 0,
        version: 1,
        metrics: Object.fromEntries(ks.map((k) => [`pass@${k},create_test`, true])),
        config: { output_type: "generate_until", prompt_style: style, samples: n, ...sampling },
        items: limited(all, ctx).map((problem, doc) => {
          const p = humanEvalPrompt(problem, style);
          const turns: Turn[] =
            p.user === null
              ? [{ role: "user", content: p.prefix, delimiter: "" }]
              : [
                  { role: "user", content: p.user, delimiter: "" },
                  { role: "assistant", content: p.prefix, delimiter: "" },
                ];
          return {
            doc,
            target: problem.entryPoint,
            request: {
              type: "generate_until",
              turns,
              until: [...p.stop],
              maxNewTokens: p.maxTokens,
              n,
              ...sampling,
            },
            async score(r): Promise<Sample> {
              if (r.type !== "generate_until") throw new Error("humaneval needs completions");
              const s = await scoreProblem(
                problem,
                r.outputs.map((o) => humanEvalCompletion(o, style)),
                { k: ks },
              );
              return {
                metrics: Object.fromEntries(
                  ks.map((k) => [`pass@${k},create_test`, s.passAtK[`pass@${k}`]!]),
                ),
                extracted: s.samples.map((x) => x.status),
                target: problem.taskId,
              };
            },
          };
        }),
      },
    ];
  },
};
