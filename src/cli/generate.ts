// `herd generate --model DIR --prompt TEXT` (or `--prompt-ids 1,2,3`): continue a prompt with a Llama
// model, text streaming to stdout as it is generated; `--print-ids` prints the generated ids (for models
// without a tokenizer, such as the reference models). Timings go to stderr.
import { commandHelp, type Schema } from "../core/schema.js";
import { codecFor } from "../generate/codec.js";
import { generate } from "../generate/generate.js";
import { stopIdsOf } from "../model/config.js";
import { loadModel } from "../model/load.js";
import { loadAdapter } from "../posttrain/peft.js";
import { parseCommand } from "./command.js";
import { MODEL_OPTIONS, rate, samplingFrom, UsageError } from "./modelArgs.js";

export const OPTIONS = {
  prompt: {
    type: "string",
    short: "p",
    arg: "TEXT",
    doc: "text to continue (BOS is prepended unless --no-bos)",
  },
  "prompt-ids": {
    type: "string",
    arg: "IDS",
    doc: "token ids to continue, comma- or space-separated, used exactly as given",
  },
  "print-ids": {
    type: "boolean",
    default: false,
    doc: "print the generated ids (comma-separated) after the text",
  },
  stop: { type: "strings", arg: "STRING", doc: "also stop at this text (repeatable); it is not printed" },
  "ignore-eos": { type: "boolean", default: false, doc: "do not stop on end-of-text ids" },
  "no-bos": { type: "boolean", default: false, doc: "do not prepend BOS to --prompt" },
  ...MODEL_OPTIONS,
} as const satisfies Schema;

export const HELP = commandHelp(
  "usage: herd generate --model DIR (--prompt TEXT | --prompt-ids 1,2,3) [options]",
  OPTIONS,
);

export function parseIds(s: string): number[] {
  const parts = s.split(/[\s,]+/).filter((p) => p !== "");
  const ids = parts.map(Number);
  const bad = parts.find((p) => !Number.isInteger(Number(p)) || Number(p) < 0);
  if (bad !== undefined || ids.length === 0)
    throw new UsageError(`--prompt-ids: '${bad ?? s}' is not a token id`);
  return ids;
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(OPTIONS, HELP, argv, { required: ["model"] });
  if (!parsed) return 0;
  const { values } = parsed;
  if ((values.prompt === undefined) === (values["prompt-ids"] === undefined))
    throw new UsageError("give exactly one of --prompt TEXT and --prompt-ids IDS");
  const sampling = samplingFrom(values);
  const ids = values["prompt-ids"] !== undefined ? parseIds(values["prompt-ids"]) : null;

  const model = await loadModel(values.model, { dtype: values.f32 ? "f32" : "keep" });
  if (values.adapter) await loadAdapter(model, values.adapter);
  const c = model.config;
  const codec = codecFor(values.model, c.vocabSize, values.tokenizer);
  let prompt: number[];
  if (ids) {
    const bad = ids.find((id) => id >= c.vocabSize);
    if (bad !== undefined)
      throw new UsageError(`--prompt-ids: ${bad} is outside the vocabulary of ${c.vocabSize}`);
    prompt = ids;
  } else {
    if (!codec?.encode)
      throw new UsageError(
        `${values.model}: no tokenizer that can encode text for this model; use --prompt-ids (or --tokenizer PATH)`,
      );
    const bos = !values["no-bos"] && c.bosTokenId !== null ? [c.bosTokenId] : [];
    prompt = [...bos, ...codec.encode(values.prompt!)];
  }
  const stopIds = values["ignore-eos"] ? [] : stopIdsOf(c);
  const r = generate(model, prompt, {
    ...sampling,
    stopIds,
    stopStrings: values.stop ?? [],
    codec,
    onText: (t) => process.stdout.write(t),
  });
  if (codec && !r.text.endsWith("\n")) process.stdout.write("\n");
  if (values["print-ids"] || !codec) process.stdout.write(`${r.tokens.join(",")}\n`);
  process.stderr.write(
    `[${r.promptTokens} prompt tokens: ${rate(r.promptTokens, r.prefillSeconds)}; ${r.tokens.length} new tokens: ${rate(r.decodeTokens, r.decodeSeconds)}; stopped: ${r.finishReason}; ${model.dtype} weights]\n`,
  );
  model.dispose();
  return 0;
}
