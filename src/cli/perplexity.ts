// `herd perplexity --model DIR --text FILE`: perplexity of a model (bf16, f32 or quantised) on held-out
// text (src/eval/perplexity.ts), so the cost of `herd quantize` can be checked. Several --model options
// are scored on the same ids, one line each, with the change against the first.
import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { perplexity } from "../eval/perplexity.js";
import { codecFor } from "../generate/codec.js";
import { loadModel, readConfig } from "../model/load.js";
import { UsageError } from "./modelArgs.js";

const HELP = `usage: herd perplexity --model DIR [--model DIR2 ...] --text FILE [options]

  --model, -m DIR     checkpoint directory (HF, Meta, or quantised by herd quantize); repeat to compare
  --text FILE         held-out UTF-8 text
  --tokenizer PATH    a vocab.json piece list (with scores) or a tiktoken ranks file (default: vocab.json
                      or tokenizer.model in the first DIR, else the Llama 3 tokenizer for its vocabulary)
  --context N         positions per window, BOS included (default: the model's context, at most 512)
  --max-tokens N      score only the first N tokens of the text
  --f32               widen bf16 weights to f32 (default: as stored)
  -h, --help          this help`;

function textIds(dir: string, vocabSize: number, text: string, tokenizer?: string): number[] {
  const codec = codecFor(dir, vocabSize, tokenizer);
  if (!codec?.encode)
    throw new UsageError(`${dir}: no tokenizer that can encode text for this model; pass --tokenizer PATH`);
  return codec.encode(text);
}

function int(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isInteger(x) || x < 1) throw new UsageError(`--${name}: bad value '${v}'`);
  return x;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: "string", short: "m", multiple: true },
      text: { type: "string" },
      tokenizer: { type: "string" },
      context: { type: "string" },
      "max-tokens": { type: "string" },
      f32: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  try {
    const dirs = values.model ?? [];
    if (dirs.length === 0) throw new UsageError("--model DIR is required");
    if (!values.text) throw new UsageError("--text FILE is required");
    if (!existsSync(values.text)) throw new Error(`${values.text}: file is missing`);
    const context = int(values.context, "context");
    const max = int(values["max-tokens"], "max-tokens");
    const first = readConfig(dirs[0]!);
    let ids = textIds(dirs[0]!, first.vocabSize, readFileSync(values.text, "utf8"), values.tokenizer);
    if (max !== undefined) ids = ids.slice(0, max);
    let base: number | null = null;
    for (const dir of dirs) {
      const model = await loadModel(dir, { dtype: values.f32 ? "f32" : "keep" });
      try {
        if (model.config.vocabSize !== first.vocabSize)
          throw new Error(
            `${dir}: vocabulary of ${model.config.vocabSize}, ${dirs[0]} has ${first.vocabSize}`,
          );
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
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`herd perplexity: ${e.message}\n\n${HELP}\n`);
      return 2;
    }
    throw e;
  }
}
