// `herd rs --model DIR --prompts FILE --k K --out FILE`: rejection sampling (src/posttrain/
// rejectionSampling.ts). K completions per prompt, decoded as one batch over the prompt's shared KV
// cache, scored by each prompt's checker (prompts.jsonl from `herd tasks`); the best acceptable one of
// each prompt is written as an SFT dialog (`messages`) to FILE, and a report (kept, prompts with no
// acceptable sample and their ids, per-prompt scores) to FILE.report.json and, summarised, to stdout.
// `--scorer reward:DIR` scores with a reward model from `herd rm` (RUN/final) instead: each completion
// rendered as the reward model was trained (src/posttrain/reward.ts's rewardScorer).
import { commandHelp, type Schema } from "../core/schema.js";
import { codecFor } from "../generate/codec.js";
import { writeFileAtomic } from "../io/atomic.js";
import { loadModel } from "../model/load.js";
import { rejectionSample, type ScoreFn } from "../posttrain/rejectionSampling.js";
import { loadRewardModel, type RewardModel, rewardScorer } from "../posttrain/reward.js";
import { readTasks } from "../posttrain/tasks/generate.js";
import { ChatFormat } from "../tokenizer/chat.js";
import { parseCommand } from "./command.js";
import { formatDuration } from "./duration.js";
import { MODEL_OPTIONS, samplingFrom, UsageError } from "./modelArgs.js";

export const OPTIONS = {
  prompts: {
    type: "string",
    arg: "FILE",
    doc: "JSONL of prompts: `messages`, and `check` for the checker (herd tasks' prompts.jsonl)",
  },
  k: {
    type: "integer",
    min: 1,
    max: 256,
    default: 10,
    arg: "K",
    doc: "samples per prompt (the paper: 10–30)",
  },
  out: {
    type: "string",
    short: "o",
    arg: "FILE",
    doc: "JSONL of the kept dialogs (`messages`); the report goes to FILE.report.json",
  },
  scorer: {
    type: "string",
    default: "checker",
    arg: "S",
    doc: "checker (each prompt's task check) or reward:DIR (a reward model from herd rm: its RUN/final)",
  },
  "min-score": {
    type: "number",
    default: null,
    defaultDoc: "1 with the checker (correct), none with a reward model",
    arg: "X",
    doc: "lowest score a kept sample may have",
  },
  limit: {
    type: "integer",
    min: 1,
    default: null,
    defaultDoc: "all",
    arg: "N",
    doc: "sample only the first N prompts",
  },
  quiet: { type: "boolean", default: false, doc: "no progress line" },
  ...MODEL_OPTIONS,
} as const satisfies Schema;

export const HELP = commandHelp(
  "usage: herd rs --model DIR --prompts FILE --out FILE [--k K] [--scorer checker|reward:DIR] [options]",
  OPTIONS,
  "Samples that run out of tokens are never kept; ties go to the lowest sample index. Sample i of prompt p uses its own seed (sampleSeed(seed, p, i)), so a run is reproducible.",
);

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(OPTIONS, HELP, argv, { required: ["model", "prompts", "out"] });
  if (!parsed) return 0;
  const { values } = parsed;
  const rmDir = values.scorer.startsWith("reward:") ? values.scorer.slice("reward:".length) : null;
  if (values.scorer !== "checker" && !rmDir)
    throw new UsageError(`--scorer: '${values.scorer}' is not checker or reward:DIR`);
  const rows = readTasks(values.prompts).slice(0, values.limit ?? undefined);
  const model = await loadModel(values.model, { dtype: values.f32 ? "f32" : "keep" });
  const codec = codecFor(values.model, model.config.vocabSize, values.tokenizer);
  if (!codec?.tokenizer)
    throw new UsageError(
      `${values.model}: rs needs a tiktoken tokenizer with the chat special tokens (--tokenizer PATH)`,
    );
  const chat = new ChatFormat(codec.tokenizer);
  let rm: RewardModel | null = null;
  let scorer: "checker" | ScoreFn = "checker";
  if (rmDir) {
    rm = await loadRewardModel(rmDir);
    if (rm.base.config.vocabSize !== model.config.vocabSize)
      throw new UsageError(
        `--scorer reward:${rmDir}: a vocabulary of ${rm.base.config.vocabSize}, --model's is ${model.config.vocabSize}`,
      );
    scorer = rewardScorer(rm, chat);
  }
  const tty = process.stderr.isTTY === true && !values.quiet;
  let logged = 0; // seconds of the last progress line off a terminal (one each 5 s, and the last)
  const sampling = samplingFrom(values);
  const { dialogs, report } = rejectionSample(model, chat, codec, rows, {
    k: values.k,
    scorer,
    ...(values["min-score"] !== null ? { minScore: values["min-score"] } : {}),
    ...sampling,
    onProgress: (p) => {
      if (values.quiet) return;
      const last = p.done === p.total;
      if (!tty && !last && p.seconds - logged < 5) return;
      logged = p.seconds;
      const rate = p.seconds > 0 ? p.samples / p.seconds : 0;
      const eta = p.done < p.total && rate > 0 ? formatDuration(((p.total - p.done) * values.k) / rate) : "-";
      const line = `[${p.done}/${p.total}] kept ${p.kept}  ${rate.toFixed(1)} samples/s  ETA ${eta}`;
      process.stderr.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
    },
  });
  model.dispose();
  rm?.base.dispose();
  if (tty) process.stderr.write("\n");
  writeFileAtomic(values.out, dialogs.map((d) => `${JSON.stringify(d)}\n`).join(""));
  writeFileAtomic(`${values.out}.report.json`, `${JSON.stringify(report, null, 2)}\n`);
  const { outcomes: _, ...summary } = report;
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  return 0;
}
