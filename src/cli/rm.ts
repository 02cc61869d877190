import { Rng } from "../core/rng.js";
import { commandHelp, HELP_OPTION, type Schema } from "../core/schema.js";
import { loadModel, readConfig } from "../model/load.js";
import { RM_SCHEMA, resolveLR, resolveSeqLen } from "../posttrain/config.js";
import { readPreferences, type Skip } from "../posttrain/data.js";
import { chatFormatFor, writeFinal, writeSkips } from "../posttrain/io.js";
import {
  loadRewardModel,
  RM_CONFIG,
  rmStep,
  SCORE,
  trainRewardModel,
  withRewardHead,
} from "../posttrain/reward.js";
import { POST_OPTIONS, parsePostArgs, progressPrinter, reportSkips } from "./postArgs.js";

const USAGE = `usage: herd rm --model DIR --data PAIRS.jsonl --output RUN_DIR [--heldout FILE | --heldout-share F] [options]
       herd rm --evaluate --model RM_DIR --data PAIRS.jsonl`;

const PROSE = `Reward model: the base model with a scalar head (score.weight [1, hidden], HF's
LlamaForSequenceClassification with num_labels 1) read at the last token of each response; loss
−log σ(r_better − r_worse) without margin, over the orderings edited > chosen > rejected (3 pairs with an
edited response, else 1). Lines as for herd dpo. Writes RUN_DIR/final/ as an HF directory and prints the
pairwise accuracy on the training pairs and on the held-out ones (--heldout FILE, else a
seeded --heldout-share of --data kept out of training).`;

export const OPTIONS = {
  ...POST_OPTIONS,
  heldout: { type: "string", arg: "FILE", doc: "held-out pairs for the accuracy report" },
  "heldout-share": {
    type: "number",
    min: 0,
    max: 1,
    maxExclusive: true,
    default: 0.1,
    doc: "without --heldout: the share of --data held out (seeded by --seed)",
  },
  ...RM_SCHEMA,
  ...HELP_OPTION,
} as const satisfies Schema;

export const HELP = commandHelp(USAGE, OPTIONS, PROSE);

export async function run(argv: string[]): Promise<number> {
  const values = parsePostArgs(OPTIONS, HELP, argv);
  if (!values) return 0;
  const c = readConfig(values.model);
  const seqLen = resolveSeqLen(values["seq-len"], c.maxPositionEmbeddings);
  const chat = chatFormatFor(values.model, c.vocabSize, values.tokenizer, values["tool-format"]);
  const skipped: Skip[] = [];
  const read = (f: string) => {
    const d = readPreferences(f, { chat, vocabSize: c.vocabSize, maxLen: seqLen });
    reportSkips(d.skipped, d.examples.length + d.skipped.length);
    skipped.push(...d.skipped);
    return d.examples;
  };
  const all = read(values.data);
  const micro = values["micro-batch"];
  const score = (rm: Parameters<typeof rmStep>[0], data: typeof all) => {
    const r = rmStep(
      rm,
      data,
      data.map((_, i) => i),
      seqLen,
      micro,
      false,
    );
    return { loss: r.loss, accuracy: r.metrics.accuracy, pairs: r.metrics.pairs };
  };
  if (values.evaluate) {
    const rm = await loadRewardModel(values.model);
    process.stdout.write(`${JSON.stringify(score(rm, all))}\n`);
    rm.base.dispose();
    return 0;
  }
  let train = all;
  let heldout = values.heldout ? read(values.heldout) : [];
  if (!values.heldout && values["heldout-share"] > 0) {
    const order = new Rng(values.seed ^ 0x4e1d).permutation(all.length);
    const n = Math.min(all.length - 1, Math.round(values["heldout-share"] * all.length));
    heldout = [...order.subarray(0, n)].map((i) => all[i]!);
    train = [...order.subarray(n)].sort((a, b) => a - b).map((i) => all[i]!);
  }
  writeSkips(values.output!, skipped);
  const rm = withRewardHead(await loadModel(values.model), values.seed);
  const cfg = { ...values, lr: resolveLR(values.lr, c.hiddenSize), "seq-len": seqLen };
  const progress = progressPrinter(values.quiet, ["accuracy"]);
  const res = await trainRewardModel(
    { runDir: values.output!, rm, data: train, cfg },
    { onStep: progress.onStep },
  );
  progress.end();
  if (res.resumedFrom > 0) process.stdout.write(`resumed from step ${res.resumedFrom}\n`);
  const final = await writeFinal(values.output!, rm.base, values.model, {
    tensors: new Map([[SCORE, rm.head]]),
    config: RM_CONFIG,
  });
  const report = { train: score(rm, train), heldout: heldout.length > 0 ? score(rm, heldout) : null };
  process.stdout.write(`${JSON.stringify(report)}\ndone: ${final}\n`);
  rm.base.dispose();
  return 0;
}
