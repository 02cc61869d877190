// ARC-Challenge as lm-evaluation-harness's `arc_challenge` (tasks/arc/arc_easy.yaml with the Challenge
// set): "Question: …\nAnswer:", each choice's text scored by log-likelihood, acc and acc_norm (the
// log-likelihood over the choice's length in characters). 25-shot as the paper's pre-trained protocol
// (spec §10.2). The harness draws its shots at random from the train split; this data directory has only
// Dev and Test, so the shots are the first K of Dev (a difference in prompt, not in scoring).
import { type ArcDoc, readArcJsonl } from "../datasets.js";
import { buildTurns } from "../prompt.js";
import type { TaskSpec } from "../task.js";
import { choiceItem, dataPath, limited } from "./common.js";

export const arcText = (d: ArcDoc): string => `Question: ${d.question}\nAnswer:`;

export const arcChallenge: TaskSpec = {
  name: "arc_challenge",
  summary: "ARC-Challenge, 25-shot, choice text by log-likelihood (acc, acc_norm)",
  build: (ctx) => {
    const k = ctx.shots ?? 25;
    const shots = readArcJsonl(dataPath(ctx, "arc", "ARC-Challenge-Dev.jsonl"))
      .slice(0, k)
      .map((d) => ({ text: arcText(d), target: d.choices.text[d.choices.label.indexOf(d.answerKey)]! }));
    const all = readArcJsonl(dataPath(ctx, "arc", "ARC-Challenge-Test.jsonl"));
    return [
      {
        name: "arc_challenge",
        original: all.length,
        nShot: shots.length,
        version: 1,
        metrics: { "acc,none": true, "acc_norm,none": true },
        config: { output_type: "multiple_choice", fewshot_split: "dev", sampler: "first_n" },
        items: limited(all, ctx).map((d, i) =>
          choiceItem(
            i,
            buildTurns({ shots, text: arcText(d) }),
            d.choices.text,
            d.choices.label.indexOf(d.answerKey),
            ctx,
            true,
          ),
        ),
      },
    ];
  },
};
