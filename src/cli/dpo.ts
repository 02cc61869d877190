// `herd dpo --model DIR --data PAIRS.jsonl --output RUN_DIR`: direct preference optimisation with the
// paper's changes (spec §7.2–7.4), of every weight or (--lora) of a LoRA adapter whose reference is the
// base with the adapter switched off; `--evaluate` prints the loss and TRL's metrics of --model (with
// --adapter: base + adapter) against --reference over --data as JSON. Argument parsing and printing only (src/posttrain/dpo.ts trains).
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import { commandHelp, HELP_OPTION, type Schema, UsageError } from "../core/schema.js";
import { loadModel } from "../model/load.js";
import { DPO_SCHEMA, resolveLR, resolveSeqLen } from "../posttrain/config.js";
import { readPreferences } from "../posttrain/data.js";
import {
  cachedReference,
  checkpointHash,
  dataHash,
  dpo,
  dpoSettings,
  dpoStep,
  pairLogps,
} from "../posttrain/dpo.js";
import { chatFormatFor, writeFinal, writeSkips } from "../posttrain/io.js";
import {
  loraLoop,
  loraReference,
  loraReferenceKey,
  resolveLoraLR,
  writeFinalAdapter,
} from "../posttrain/loraRun.js";
import {
  LORA_RUN_OPTIONS,
  loadPolicy,
  POST_OPTIONS,
  parsePostArgs,
  progressPrinter,
  reportSkips,
} from "./postArgs.js";

const USAGE = `usage: herd dpo --model DIR --data PAIRS.jsonl --output RUN_DIR [--reference DIR | --lora [--base-dtype bf16|q8_0]] [options]
       herd dpo --evaluate --model DIR [--adapter ADAPTER_DIR] [--reference DIR] --data PAIRS.jsonl`;

const PROSE = `DPO: −log σ(β·[(log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r))]) averaged over the pairs
of a step, β = 0.1, the formatting tokens (header, role name, "\\n\\n", <|eot_id|>/<|eom_id|>) excluded
from both responses' log-probabilities, plus --nll-weight (0.2) × the NLL of the chosen responses: by
default the mean over the step's chosen tokens (TRL's loss_type ["sigmoid", "sft"], loss_weights
[1.0, 0.2]); --nll-reduction sequence-sum averages each response's summed NLL over the pairs instead.
Lines: {"prompt": [messages], "chosen": [...], "rejected": [...]} or {"prompt_ids", "chosen_ids",
"rejected_ids"}. The reference log-probabilities are computed once up front (from --reference,
default --model before training) and cached in RUN_DIR/reference_logps.json, keyed by a hash of the data and
the reference checkpoint. metrics.jsonl has TRL's rewards/chosen, rewards/rejected, rewards/accuracies,
rewards/margins, logps/chosen, logps/rejected per step. With --lora only a LoRA adapter trains on the
frozen base (as for herd sft), and the reference is that base with the adapter switched off (as
torchtune does: no second model), cached the same way; --evaluate --adapter DIR defaults to it too.`;

export const OPTIONS = {
  ...POST_OPTIONS,
  reference: { type: "string", arg: "DIR", defaultDoc: "--model", doc: "the reference model's checkpoint" },
  ...DPO_SCHEMA,
  ...LORA_RUN_OPTIONS,
  ...HELP_OPTION,
} as const satisfies Schema;

export const HELP = commandHelp(USAGE, OPTIONS, PROSE);

export async function run(argv: string[]): Promise<number> {
  const values = parsePostArgs(OPTIONS, HELP, argv);
  if (!values) return 0;
  if (values.lora && values.reference)
    throw new UsageError(
      "--reference with --lora: a LoRA run's reference is its base with the adapter switched off",
    );
  const { model, lora } = await loadPolicy(values);
  const c = model.config;
  const cfg = {
    ...values,
    lr: lora ? resolveLoraLR(values.lr, c.hiddenSize) : resolveLR(values.lr, c.hiddenSize),
    "seq-len": resolveSeqLen(values["seq-len"], c.maxPositionEmbeddings),
  };
  const chat = chatFormatFor(values.model, c.vocabSize, values.tokenizer, values["tool-format"]);
  const data = readPreferences(values.data, { chat, vocabSize: c.vocabSize, maxLen: cfg["seq-len"] });
  reportSkips(data.skipped, data.examples.length + data.skipped.length);
  if (values.output && !values.evaluate) writeSkips(values.output, data.skipped);
  const refDir = values.reference ?? values.model;
  const compute = async () => {
    if (lora && !values.reference)
      return loraReference(lora, data.examples, cfg["seq-len"], cfg["micro-batch"]);
    if (resolve(refDir) === resolve(values.model))
      return pairLogps(model, data.examples, cfg["seq-len"], cfg["micro-batch"]);
    const ref = await loadModel(refDir);
    if (ref.config.vocabSize !== c.vocabSize)
      throw new UsageError(`${refDir}: another vocabulary than --model's`);
    const r = pairLogps(ref, data.examples, cfg["seq-len"], cfg["micro-batch"]);
    ref.dispose();
    return r;
  };
  if (values.evaluate) {
    const reference = await compute();
    const idx = data.examples.map((_, i) => i);
    const r = dpoStep(model, data.examples, reference, idx, dpoSettings(cfg), false);
    process.stdout.write(
      `${JSON.stringify({ loss: r.loss, ...r.metrics, pairs: idx.length, skipped: data.skipped.length })}\n`,
    );
    model.dispose();
    return 0;
  }
  const hash = checkpointHash(refDir);
  const key = lora
    ? loraReferenceKey(data.examples, cfg["seq-len"], hash, values["base-dtype"])
    : createHash("sha256")
        .update(`${dataHash(data.examples, cfg["seq-len"])} ${hash}`)
        .digest("hex");
  const reference = await cachedReference(values.output!, key, compute);
  const progress = progressPrinter(values.quiet, ["rewards/accuracies", "rewards/margins"]);
  const loop = lora ? loraLoop(lora, values.model, values["base-dtype"], hash) : {};
  const res = await dpo(
    { runDir: values.output!, model, data: data.examples, cfg, reference },
    { ...loop, onStep: progress.onStep },
  );
  progress.end();
  if (res.resumedFrom > 0) process.stdout.write(`resumed from step ${res.resumedFrom}\n`);
  const final = lora
    ? await writeFinalAdapter(values.output!, lora, values.model)
    : await writeFinal(values.output!, model, values.model);
  process.stdout.write(`done: ${final}\n`);
  model.dispose();
  return 0;
}
