// The small post-training recipe end to end (issues #16, #17; spec §7, §10), on a model this machine
// trains in minutes: seeded verifiable tasks (`herd tasks`' generator), a byte-level tokenizer with the
// Llama 3 special tokens (256 bytes + 256 specials: the tiny preset's vocabulary of 512), a tiny base
// pre-trained on the training problems written as plain text ("… The answer is N.": it learns the
// arithmetic, never the chat format or GSM8K's `#### N` line), then the post-training rounds (SFT → RM →
// rejection sampling with the checker → DPO → average, `herd posttrain`'s runRounds), and the held-out
// split scored by the `herd_tasks` eval task for the base, the round-1 SFT model and the final model.
// The held-out problems are never trained on: pre-training and post-training read the training split.
// Everything is seeded; stages resume from OUT as herd pretrain and herd posttrain do.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { TokenShardWriter } from "../data/shards.js";
import { evaluate } from "../eval/harness.js";
import { resultsJson, writeRun } from "../eval/report.js";
import { herdTasks } from "../eval/tasks/herdTasks.js";
import { codecFor } from "../generate/codec.js";
import { loadModel } from "../model/load.js";
import { type RoundsConfig, roundsConfig, runRounds, stageDir } from "../posttrain/rounds.js";
import {
  type ArithmeticOptions,
  generateTasks,
  type Item,
  writeTaskFiles,
} from "../posttrain/tasks/index.js";
import { Tokenizer } from "../tokenizer/tiktoken.js";
import { resolveConfig } from "../train/config.js";
import { pretrain } from "../train/trainer.js";

export interface SmallRecipeOptions {
  out: string;
  seed: number;
  /** Arithmetic problems: post-training (SFT, RS prompts, preference pairs) and held-out. */
  train: number;
  heldout: number;
  /** Extra training-split problems only pre-training sees (as plain text). */
  pretrainExtra: number;
  arithmetic: ArithmeticOptions;
  /** The base: overrides of the tiny preset, and its one pre-training stage. */
  model: Record<string, unknown>;
  pretrain: { steps: number; batch: number; seqLen: number; lr: number };
  /** The rounds file's fields but model, output, tokenizer and data (herd posttrain's). */
  rounds: Record<string, unknown>;
}

export interface SmallRecipeResult {
  /** Held-out accuracy (the checker's) of each model, and the model folders. */
  accuracy: { base: number; sft: number; final: number };
  models: { base: string; sft: string; final: string };
  heldout: number;
}

/** A byte-level tiktoken ranks file: every byte its own id (the Llama 3 specials follow at 256). */
export function byteRanksFile(path: string): Tokenizer {
  const lines = Array.from({ length: 256 }, (_, b) => `${Buffer.from([b]).toString("base64")} ${b}`);
  writeFileSync(path, `${lines.join("\n")}\n`);
  return Tokenizer.fromFile(path);
}

/** A training problem as pre-training text: the question, the worked answer, "The answer is N." */
export function plainText(it: Item): string {
  const q = it.task.messages.map((m) => m.content).join("\n");
  return `${q}\n${it.correct.replace(/\n#### (.*)$/, "\nThe answer is $1.")}\n`;
}

/**
 * Held-out accuracy of the model in `dir` on DATA/herd_tasks, in the chat format; the harness's
 * results.json and samples go to `evalDir` (for herd eval compare).
 */
async function accuracy(dir: string, dataDir: string, evalDir: string): Promise<number> {
  const model = await loadModel(dir);
  try {
    const codec = codecFor(dir, model.config.vocabSize)!;
    const t0 = performance.now();
    const o = { dataDir, chat: true, codec, logSamples: true };
    const { results } = await evaluate(model, [herdTasks], o);
    const info = { model: dir, dtype: model.dtype, chat: true, limit: null, batch: 1 };
    writeRun(
      evalDir,
      resultsJson(results, { ...info, seconds: (performance.now() - t0) / 1000 }),
      results.samples,
    );
    return results.results.herd_tasks!["acc,none"] as number;
  } finally {
    model.dispose();
  }
}

export async function runSmallRecipe(
  o: SmallRecipeOptions,
  log: (line: string) => void = () => {},
): Promise<SmallRecipeResult> {
  const out = resolve(o.out);
  mkdirSync(out, { recursive: true });
  const dataDir = join(out, "data");
  const tasksDir = join(dataDir, "herd_tasks");
  const taskOpts = {
    seed: o.seed,
    heldout: o.heldout,
    kinds: ["arithmetic" as const],
    arithmetic: o.arithmetic,
  };
  writeTaskFiles(tasksDir, { ...taskOpts, train: o.train });
  const tokPath = join(out, "tokenizer.model");
  const tok = byteRanksFile(tokPath);
  // Pre-training text: the post-training problems and `pretrainExtra` more, all of the training split.
  const shard = join(out, "pretrain.tok");
  const w = new TokenShardWriter(shard, 512);
  for (const it of generateTasks({ ...taskOpts, train: o.train + o.pretrainExtra }).train)
    w.addDocument(tok.encode(plainText(it), { bos: true, eos: true }));
  w.close();
  log(`pre-training shard: ${w.tokens} tokens in ${w.documents} problems`);
  const p = o.pretrain;
  const cfg = resolveConfig(
    {
      name: "base",
      runsDir: out,
      model: {
        preset: "tiny",
        overrides: {
          vocabSize: 512,
          bosTokenId: tok.bosId,
          eosTokenIds: ["<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"].map((s) => tok.special(s)),
          ...o.model,
        },
      },
      data: { shards: [shard] },
      seed: o.seed + 1,
      schedule: { peakLR: p.lr, warmupSteps: Math.min(20, p.steps), floorLR: p.lr / 10 },
      stages: [{ name: "initial", kind: "initial", steps: p.steps, seqLen: p.seqLen, batch: p.batch }],
      checkpoint: { every: 100, keep: 1, annealEvery: 10 },
      eval: { every: p.steps, heldout: 0.02 },
    },
    "small recipe",
    out,
  );
  const t0 = performance.now();
  const pre = await pretrain(cfg, { onStart: () => log("pre-training the base") });
  pre.model.dispose();
  const base = join(pre.runDir, "final");
  writeFileSync(join(base, "tokenizer.model"), readFileSync(tokPath));
  const last = pre.history.at(-1);
  log(
    last
      ? `base: ${p.steps} steps, loss ${last.loss.toFixed(3)}, ${((performance.now() - t0) / 1000).toFixed(0)} s`
      : `base: ${p.steps} steps, finished earlier (${base})`,
  );
  const split = join(tasksDir, "train");
  const rc: RoundsConfig = roundsConfig(
    {
      ...o.rounds,
      model: base,
      output: join(out, "posttrain"),
      data: {
        sft: join(split, "sft.jsonl"),
        preferences: join(split, "preferences.jsonl"),
        prompts: join(split, "prompts.jsonl"),
      },
    },
    "small recipe rounds",
  );
  const final = await runRounds(rc, {
    onProgress: (e) => {
      if (e.kind === "done") log(`round ${e.round} ${e.stage}: ${e.note}`);
    },
  });
  const models = { base, sft: join(stageDir(rc.output!, 1, "sft"), "final"), final };
  const ev = (name: keyof typeof models) => accuracy(models[name], dataDir, join(out, "eval", name));
  const acc = { base: await ev("base"), sft: await ev("sft"), final: await ev("final") };
  return { accuracy: acc, models, heldout: o.heldout };
}
