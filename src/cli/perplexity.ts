// `herd perplexity --model DIR --text FILE`: perplexity of a model (bf16, f32 or quantised) on held-out
// text (src/eval/perplexity.ts), so the cost of `herd quantize` can be checked. Several --model options
// are scored on the same ids, one line each, with the change against the first.
import { existsSync, readFileSync } from "node:fs";
import { commandHelp, HELP_OPTION, type Schema } from "../core/schema.js";
import { perplexity } from "../eval/perplexity.js";
import { codecFor } from "../generate/codec.js";
import { loadModel, readConfig } from "../model/load.js";
import { parseCommand } from "./command.js";
import { MODEL_OPTIONS, UsageError } from "./modelArgs.js";

export const OPTIONS = {
  model: {
    type: "strings",
    short: "m",
    arg: "DIR",
    doc: "checkpoint directory (HF, Meta, or quantised by herd quantize); repeat to compare",
  },
  text: { type: "string", arg: "FILE", doc: "held-out UTF-8 text" },
  tokenizer: {
    type: "string",
    arg: "PATH",
    doc: "a vocab.json piece list (with scores) or a tiktoken ranks file",
    defaultDoc:
      "vocab.json or tokenizer.model in the first DIR, else the Llama 3 tokenizer for its vocabulary",
  },
  context: {
    type: "integer",
    min: 1,
    defaultDoc: "the model's context, at most 512",
    doc: "positions per window, BOS included",
  },
  "max-tokens": { type: "integer", min: 1, doc: "score only the first N tokens of the text" },
  f32: MODEL_OPTIONS.f32,
  ...HELP_OPTION,
} as const satisfies Schema;

export const HELP = commandHelp(
  "usage: herd perplexity --model DIR [--model DIR2 ...] --text FILE [options]",
  OPTIONS,
);

function textIds(dir: string, vocabSize: number, text: string, tokenizer?: string): number[] {
  const codec = codecFor(dir, vocabSize, tokenizer);
  if (!codec?.encode)
    throw new UsageError(`${dir}: no tokenizer that can encode text for this model; pass --tokenizer PATH`);
  return codec.encode(text);
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(OPTIONS, HELP, argv);
  if (!parsed) return 0;
  const { values } = parsed;
  const dirs = values.model ?? [];
  if (dirs.length === 0) throw new UsageError("--model DIR is required");
  if (!values.text) throw new UsageError("--text FILE is required");
  if (!existsSync(values.text)) throw new Error(`${values.text}: file is missing`);
  const context = values.context;
  const max = values["max-tokens"];
  const first = readConfig(dirs[0]!);
  let ids = textIds(dirs[0]!, first.vocabSize, readFileSync(values.text, "utf8"), values.tokenizer);
  if (max !== undefined) ids = ids.slice(0, max);
  let base: number | null = null;
  for (const dir of dirs) {
    const model = await loadModel(dir, { dtype: values.f32 ? "f32" : "keep" });
    try {
      if (model.config.vocabSize !== first.vocabSize)
        throw new Error(`${dir}: vocabulary of ${model.config.vocabSize}, ${dirs[0]} has ${first.vocabSize}`);
      const t0 = performance.now();
      const r = perplexity(model, ids, context === undefined ? {} : { context });
      const s = (performance.now() - t0) / 1000;
      const change =
        base === null
          ? ""
          : `  ${r.perplexity >= base ? "+" : ""}${(((r.perplexity - base) / base) * 100).toFixed(3)}%`;
      base ??= r.perplexity;
      process.stdout.write(
        `${dir} (${model.dtype}): perplexity ${r.perplexity.toFixed(4)}  nll ${r.nll.toFixed(5)}  ${r.tokens} tokens in ${r.windows} windows, ${s.toFixed(1)} s${change}\n`,
      );
    } finally {
      model.dispose();
    }
  }
  return 0;
}
