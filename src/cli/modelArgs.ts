// Options shared by `herd generate` and `herd chat`: where the model is, how to hold its weights, which
// tokenizer, and how to sample. Parsed values are checked here so both commands report the same errors.
import type { ParseArgsConfig } from "node:util";
import type { SamplingOptions } from "../generate/sampling.js";

export const MODEL_OPTIONS = {
  model: { type: "string", short: "m" },
  tokenizer: { type: "string" },
  f32: { type: "boolean", default: false },
  "max-tokens": { type: "string" },
  temperature: { type: "string" },
  "top-p": { type: "string" },
  "top-k": { type: "string" },
  seed: { type: "string" },
  help: { type: "boolean", short: "h", default: false },
} as const satisfies ParseArgsConfig["options"];

export const MODEL_HELP = `  --model, -m DIR     checkpoint directory: HF (config.json + safetensors) or Meta (params.json + .pth)
  --tokenizer PATH    a vocab.json piece list or a tiktoken ranks file (default: vocab.json or
                      tokenizer.model in DIR, else the shipped Llama 3 tokenizer for its vocabulary)
  --f32               widen bf16 weights to f32 (default: use them as stored, half the memory)
  --max-tokens N      new tokens at most (default 256)
  --temperature T     0 is greedy (default 0.6, the Llama 3 reference)
  --top-p P           nucleus mass (default 0.9)
  --top-k K           keep the K most likely tokens (default 0: all)
  --seed S            seed of the sampler (default 0)
  -h, --help          this help`;

export class UsageError extends Error {}

export function num(
  v: string | undefined,
  name: string,
  fallback: number,
  check: (x: number) => boolean,
): number {
  if (v === undefined) return fallback;
  const x = Number(v);
  if (v.trim() === "" || !Number.isFinite(x) || !check(x))
    throw new UsageError(`--${name}: bad value '${v}'`);
  return x;
}

export function samplingFrom(values: Record<string, unknown>): SamplingOptions & { maxNewTokens: number } {
  const s = (k: string) => values[k] as string | undefined;
  return {
    maxNewTokens: num(s("max-tokens"), "max-tokens", 256, (x) => Number.isInteger(x) && x >= 0),
    temperature: num(s("temperature"), "temperature", 0.6, (x) => x >= 0),
    topP: num(s("top-p"), "top-p", 0.9, (x) => x > 0 && x <= 1),
    topK: num(s("top-k"), "top-k", 0, (x) => Number.isInteger(x) && x >= 0),
    seed: num(s("seed"), "seed", 0, (x) => Number.isInteger(x)),
  };
}

/** Human-readable rate. */
export function rate(tokens: number, seconds: number): string {
  return seconds > 0 ? `${(tokens / seconds).toFixed(tokens / seconds < 10 ? 2 : 1)} tokens/s` : "-";
}
