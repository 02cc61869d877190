// Options shared by `herd generate` and `herd chat`: where the model is, how to hold its weights, which
// tokenizer, and how to sample, declared once as a src/core/schema.ts CLI schema (its --help lines and
// parsing follow from it). Values are checked by the schema so both commands report the same errors;
// the sampling defaults are the library's (SAMPLING_DEFAULTS, the Llama 3 reference).
import { type CliValues, HELP_OPTION, type Schema, UsageError } from "../core/schema.js";
import { SAMPLING_DEFAULTS, type SamplingOptions } from "../generate/sampling.js";

export { UsageError };

export const MODEL_OPTIONS = {
  model: {
    type: "string",
    short: "m",
    arg: "DIR",
    doc: "checkpoint directory: HF (config.json + safetensors) or Meta (params.json + .pth)",
  },
  adapter: {
    type: "string",
    arg: "DIR",
    doc: "a LoRA adapter (PEFT layout: adapter_config.json + adapter_model.safetensors) on top of the model",
  },
  tokenizer: {
    type: "string",
    arg: "PATH",
    doc: "a vocab.json piece list or a tiktoken ranks file",
    defaultDoc: "vocab.json or tokenizer.model in DIR, else the shipped Llama 3 tokenizer for its vocabulary",
  },
  f32: {
    type: "boolean",
    default: false,
    defaultDoc: "use them as stored, half the memory",
    doc: "widen bf16 weights to f32",
  },
  "max-tokens": { type: "integer", min: 0, default: 256, doc: "new tokens at most" },
  temperature: {
    type: "number",
    min: 0,
    default: SAMPLING_DEFAULTS.temperature,
    defaultDoc: `${SAMPLING_DEFAULTS.temperature}, the Llama 3 reference`,
    arg: "T",
    doc: "0 is greedy",
  },
  "top-p": {
    type: "number",
    min: 0,
    minExclusive: true,
    max: 1,
    default: SAMPLING_DEFAULTS.topP,
    arg: "P",
    doc: "nucleus mass",
  },
  "top-k": {
    type: "integer",
    min: 0,
    default: SAMPLING_DEFAULTS.topK,
    defaultDoc: `${SAMPLING_DEFAULTS.topK}: all`,
    arg: "K",
    doc: "keep the K most likely tokens",
  },
  seed: { type: "integer", default: SAMPLING_DEFAULTS.seed, arg: "S", doc: "seed of the sampler" },
  ...HELP_OPTION,
} as const satisfies Schema;

export function samplingFrom(
  values: CliValues<typeof MODEL_OPTIONS>,
): SamplingOptions & { maxNewTokens: number } {
  return {
    maxNewTokens: values["max-tokens"],
    temperature: values.temperature,
    topP: values["top-p"],
    topK: values["top-k"],
    seed: values.seed,
  };
}

/** Human-readable rate. */
export function rate(tokens: number, seconds: number): string {
  return seconds > 0 ? `${(tokens / seconds).toFixed(tokens / seconds < 10 ? 2 : 1)} tokens/s` : "-";
}
