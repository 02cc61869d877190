// `herd sft --model DIR --data FILE.jsonl --output RUN_DIR`: supervised fine-tuning, of every weight or
// (--lora) of a LoRA adapter on a frozen base; `--evaluate` prints the loss of --model (with --adapter:
// base + adapter) over --data as JSON. Argument parsing and printing only (src/posttrain/sft.ts trains).
import { commandHelp, HELP_OPTION, type Schema } from "../core/schema.js";
import { resolveLR, resolveSeqLen, SFT_SCHEMA } from "../posttrain/config.js";
import { readSft } from "../posttrain/data.js";
import { checkpointHash } from "../posttrain/dpo.js";
import { chatFormatFor, writeFinal, writeSkips } from "../posttrain/io.js";
import { loraLoop, resolveLoraLR, writeFinalAdapter } from "../posttrain/loraRun.js";
import { sft, sftEvaluate } from "../posttrain/sft.js";
import {
  LORA_RUN_OPTIONS,
  loadPolicy,
  POST_OPTIONS,
  parsePostArgs,
  progressPrinter,
  reportSkips,
} from "./postArgs.js";

const USAGE = `usage: herd sft --model DIR --data FILE.jsonl --output RUN_DIR [--lora [--base-dtype bf16|q8_0]] [options]
       herd sft --evaluate --model DIR [--adapter ADAPTER_DIR] --data FILE.jsonl`;

const PROSE = `Supervised fine-tuning: cross-entropy on the assistant tokens only, each assistant turn's
<|eot_id|>/<|eom_id|> included (system, user, tool output and headers are masked). Lines: {"messages":
[...]} (roles system/user/assistant/tool|ipython, OpenAI tool_calls) or {"input_ids", "labels"|"mask"}.
Dialogs are packed several to a row with document masks and position restarts; the loss is the sum
over supervised tokens over their count in the whole step (exact under accumulation). Empty assistant
turns and dialogs longer than --seq-len are skipped and listed; a dialog with no assistant turn is an error.
With --lora only a LoRA adapter trains (A random, B zero; default every linear layer; --lr default
10× the full default) on the frozen base, kept in --base-dtype; checkpoints hold the adapter and its
optimiser state, and RUN_DIR/final is the adapter in PEFT's layout (adapter_config.json +
adapter_model.safetensors) for \`herd generate --adapter\` and \`herd lora merge\`.`;

export const OPTIONS = {
  ...POST_OPTIONS,
  ...SFT_SCHEMA,
  ...LORA_RUN_OPTIONS,
  ...HELP_OPTION,
} as const satisfies Schema;

export const HELP = commandHelp(USAGE, OPTIONS, PROSE);

export async function run(argv: string[]): Promise<number> {
  const values = parsePostArgs(OPTIONS, HELP, argv);
  if (!values) return 0;
  const { model, lora } = await loadPolicy(values);
  const c = model.config;
  const seqLen = resolveSeqLen(values["seq-len"], c.maxPositionEmbeddings);
  const chat = chatFormatFor(values.model, c.vocabSize, values.tokenizer, values["tool-format"]);
  const data = readSft(values.data, { chat, vocabSize: c.vocabSize, maxLen: seqLen });
  reportSkips(data.skipped, data.examples.length + data.skipped.length);
  if (values.output && !values.evaluate) writeSkips(values.output, data.skipped);
  if (values.evaluate) {
    const r = sftEvaluate(model, data.examples, seqLen, values["micro-batch"]);
    process.stdout.write(`${JSON.stringify({ ...r, skipped: data.skipped.length })}\n`);
    model.dispose();
    return 0;
  }
  const lr = lora ? resolveLoraLR(values.lr, c.hiddenSize) : resolveLR(values.lr, c.hiddenSize);
  const cfg = { ...values, lr, "seq-len": seqLen };
  const progress = progressPrinter(values.quiet, ["supervisedTokens"]);
  const loop = lora ? loraLoop(lora, values.model, values["base-dtype"], checkpointHash(values.model)) : {};
  const res = await sft(
    { runDir: values.output!, model, data: data.examples, cfg },
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
