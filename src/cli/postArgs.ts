// What `herd sft`, `herd dpo` and `herd rm` share on the command line: the input options (model, data,
// run folder, tokenizer, backend, --evaluate), the progress line (step, loss, rate, ETA) and the report
// of skipped lines; and for `sft` and `dpo` the LoRA options (--lora …, --base-dtype, --adapter with
// --evaluate, --recompute) and the loading of the policy they ask for. Parsing and printing only; the
// trainers are src/posttrain/'s.
import { setBackend } from "../backends/index.js";
import { type CliValues, parseCli, type Schema, UsageError } from "../core/schema.js";
import type { Llama } from "../model/llama.js";
import { loadModel } from "../model/load.js";
import type { Skip } from "../posttrain/data.js";
import type { PostStep } from "../posttrain/loop.js";
import { applyLora, LORA_OPTIONS, type Lora, type LoraOptions, loraOptionsFrom } from "../posttrain/lora.js";
import { BASE_DTYPES, type BaseDtype, loadBase } from "../posttrain/loraRun.js";
import { loadAdapter } from "../posttrain/peft.js";
import { formatDuration } from "./duration.js";

export const POST_OPTIONS = {
  model: {
    type: "string",
    short: "m",
    arg: "DIR",
    doc: "the starting checkpoint (HF or Meta directory; trained in f32)",
  },
  data: { type: "string", arg: "FILE", doc: "training (or with --evaluate, evaluation) JSONL" },
  output: {
    type: "string",
    short: "o",
    arg: "RUN_DIR",
    doc: "run folder: metrics.jsonl, checkpoints/, final/ (run again to resume)",
  },
  tokenizer: {
    type: "string",
    arg: "PATH",
    defaultDoc: "tokenizer.model in DIR, else the shipped Llama 3 tokenizer for a 128,256 vocabulary",
    doc: "tiktoken ranks file for conversational lines (pre-tokenised lines need none)",
  },
  "tool-format": {
    type: "enum",
    choices: ["json", "function_tag", "python_list"],
    default: "json",
    doc: "how assistant tool_calls are written: Llama 3.1 JSON, 3.1 <function> tag, or 3.2 Python list",
  },
  evaluate: {
    type: "boolean",
    default: false,
    doc: "print the loss and metrics of --model over --data as JSON; no training",
  },
  backend: {
    type: "string",
    arg: "NAME",
    defaultDoc: "the fastest available",
    doc: "tensor backend (js, wasm, native)",
  },
  quiet: { type: "boolean", default: false, doc: "no progress output" },
} as const satisfies Schema;

/** "step 3/40 loss 1.2345 lr 1.00e-4 |g| 0.812 1234 tok/s ETA 2m" plus the named metrics. */
export function postProgressText(m: PostStep, extra: readonly string[] = []): string {
  const num = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(4));
  const more = extra.map((k) => ` ${k} ${num(Number(m[k]))}`).join("");
  return (
    `step ${m.step}/${m.totalSteps} loss ${m.loss.toFixed(4)}${more} lr ${m.lr.toExponential(2)} ` +
    `|g| ${m.gradNorm.toFixed(3)} ${Math.round(m.tokensPerSec)} tok/s ETA ${formatDuration(m.eta)}`
  );
}

/** A printer of progress: one updating line on a terminal, a line per step otherwise. */
export function progressPrinter(quiet: boolean, extra: readonly string[] = []) {
  const tty = process.stderr.isTTY === true;
  return {
    onStep: (m: PostStep) => {
      if (quiet) return;
      process.stderr.write(tty ? `\r\x1b[K${postProgressText(m, extra)}` : `${postProgressText(m, extra)}\n`);
    },
    end: () => {
      if (tty && !quiet) process.stderr.write("\n");
    },
  };
}

/** Report skipped lines on stderr: every one, with its file, line and reason. */
export function reportSkips(skipped: readonly Skip[], total: number): void {
  if (skipped.length === 0) return;
  process.stderr.write(`skipped ${skipped.length} of ${total} lines:\n`);
  for (const s of skipped) process.stderr.write(`  ${s.file}:${s.line}: ${s.reason}\n`);
}

/** The values of a post-training command once parsePostArgs has checked them: --model and --data given. */
export type PostValues<S extends typeof POST_OPTIONS & Schema> = CliValues<S> & {
  model: string;
  data: string;
};

/**
 * The start `herd sft`, `herd rm` and `herd dpo` share: parse argv, print --help (then null), require
 * --model and --data, and --output unless --evaluate, and switch to --backend.
 */
export function parsePostArgs<S extends typeof POST_OPTIONS & Schema>(
  options: S,
  help: string,
  argv: string[],
): PostValues<S> | null {
  const { values } = parseCli(options, argv);
  const v = values as CliValues<typeof POST_OPTIONS> & { help?: boolean };
  if (v.help) {
    process.stdout.write(`${help}\n`);
    return null;
  }
  if (!v.model || !v.data) throw new UsageError("--model DIR and --data FILE are required");
  if (!v.evaluate && !v.output) throw new UsageError("--output RUN_DIR is required (or --evaluate)");
  if (v.backend) setBackend(v.backend);
  return values as PostValues<S>;
}

/** The LoRA options of `herd sft` and `herd dpo`. */
export const LORA_RUN_OPTIONS = {
  ...LORA_OPTIONS,
  "base-dtype": {
    type: "enum",
    choices: BASE_DTYPES,
    default: "f32",
    doc: "with --lora or --adapter: the frozen base's storage: f32, bf16 (as stored, or rounded at load) or q8_0 (quantised at load, ggml's Q8_0)",
  },
  adapter: {
    type: "string",
    arg: "DIR",
    doc: "with --evaluate: a LoRA adapter (PEFT layout, e.g. RUN_DIR/final of a --lora run) on --model",
  },
  recompute: {
    type: "boolean",
    default: false,
    doc: "activation recomputation: keep each block's input only and recompute the block in backward (less memory, more time)",
  },
} as const satisfies Schema;

export interface LoraRunValues {
  lora?: boolean;
  "lora-rank"?: number;
  "lora-alpha"?: number;
  "lora-dropout"?: number;
  "lora-targets"?: readonly string[];
  "base-dtype": BaseDtype;
  adapter?: string;
  recompute: boolean;
  evaluate: boolean;
  model: string;
  seed: number;
}

/** What the LoRA options ask for, checked: a combination that cannot mean anything is a usage error. */
export function loraRunArgs(v: LoraRunValues): { lora: LoraOptions | null; baseDtype: BaseDtype } {
  const lora = loraOptionsFrom(v);
  if (lora && v.evaluate)
    throw new UsageError("--evaluate evaluates a trained adapter: pass it with --adapter DIR, not --lora");
  if (v.adapter && !v.evaluate)
    throw new UsageError("--adapter DIR is for --evaluate; to train an adapter use --lora");
  if (v["base-dtype"] !== "f32" && !lora && !v.adapter)
    throw new UsageError(
      `--base-dtype ${v["base-dtype"]} needs --lora (or --adapter with --evaluate): full fine-tuning trains f32 weights`,
    );
  return { lora, baseDtype: v["base-dtype"] };
}

/**
 * The model a command works on: --model in f32 (full fine-tuning), or with --lora / --adapter the frozen
 * base in --base-dtype with a new adapter (A seeded by --seed) or the one in --adapter attached.
 */
export async function loadPolicy(v: LoraRunValues): Promise<{ model: Llama; lora: Lora | null }> {
  const { lora: opts, baseDtype } = loraRunArgs(v);
  if (!opts && !v.adapter) {
    const model = await loadModel(v.model);
    model.recompute = v.recompute;
    return { model, lora: null };
  }
  const model = await loadBase(v.model, baseDtype);
  model.recompute = v.recompute;
  try {
    const lora = opts ? applyLora(model, { ...opts, seed: v.seed }) : await loadAdapter(model, v.adapter!);
    return { model, lora };
  } catch (e) {
    model.dispose();
    throw e;
  }
}
