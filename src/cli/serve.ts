// `herd serve --model DIR`: an OpenAI-compatible HTTP server (src/serve/, docs/serve.md) — the engine
// decodes with continuous batching in a worker thread, the HTTP API runs on this one. Prints the URL once
// listening and serves until interrupted (SIGINT/SIGTERM close it cleanly). Loopback only unless --host.
import { commandHelp, HELP_OPTION, type Schema, UsageError } from "../core/schema.js";
import { SANDBOX_LIMITS } from "../eval/code/sandbox.js";
import { serve } from "../serve/index.js";
import { CODE_INTERPRETER_DEFAULTS } from "../serve/tools/codeInterpreter.js";
import { parseCommand } from "./command.js";
import { MODEL_OPTIONS } from "./modelArgs.js";

export const OPTIONS = {
  model: MODEL_OPTIONS.model,
  tokenizer: MODEL_OPTIONS.tokenizer,
  f32: MODEL_OPTIONS.f32,
  host: {
    type: "string",
    arg: "HOST",
    default: "127.0.0.1",
    doc: "address to listen on (loopback unless given)",
  },
  port: { type: "integer", min: 0, max: 65535, default: 8080, arg: "N", doc: "port (0: any free one)" },
  "api-key": { type: "string", arg: "KEY", doc: "require Authorization: Bearer KEY (not /health, /metrics)" },
  parallel: {
    type: "integer",
    min: 1,
    max: 256,
    default: 8,
    arg: "N",
    doc: "sequences decoded together at most",
  },
  queue: { type: "integer", min: 0, default: 64, arg: "N", doc: "requests waiting at most; beyond, 429" },
  "kv-blocks": {
    type: "integer",
    min: 1,
    arg: "N",
    defaultDoc: "--parallel full contexts, at most 256 MiB",
    doc: "KV cache blocks of 16 tokens (sequences and prefix cache together)",
  },
  "no-prefix-cache": { type: "boolean", default: false, doc: "do not reuse cached prompt blocks" },
  "model-name": {
    type: "string",
    arg: "NAME",
    defaultDoc: "DIR's name",
    doc: "the name clients pass as model",
  },
  backend: {
    type: "string",
    arg: "NAME",
    defaultDoc: "the fastest available",
    doc: "tensor backend (js, wasm, native)",
  },
  guard: {
    type: "string",
    arg: "DIR",
    doc: "Llama Guard 3 checkpoint: user turns and replies are classified, unsafe ones refused (its own thread)",
  },
  "guard-categories": {
    type: "strings",
    arg: "S1,...",
    defaultDoc: "all of S1–S14",
    doc: "the guard categories judged",
  },
  "code-interpreter": {
    type: "boolean",
    default: false,
    doc: "run the model's <|python_tag|> code (Llama 3.1's built-in interpreter) in the bubblewrap sandbox",
  },
  "code-interpreter-rounds": {
    type: "integer",
    min: 0,
    default: CODE_INTERPRETER_DEFAULTS.rounds,
    arg: "N",
    doc: "code runs per reply at most; a further code call is returned as a tool call",
  },
  "code-interpreter-timeout": {
    type: "number",
    min: 0,
    minExclusive: true,
    default: SANDBOX_LIMITS.timeoutS.default,
    arg: "S",
    doc: "wall-clock and CPU seconds per code run",
  },
  lora: {
    type: "strings",
    arg: "NAME=DIR",
    doc: "a LoRA adapter (PEFT directory) served beside the base as model NAME; repeat for more (mixed in one batch)",
  },
  ...HELP_OPTION,
} as const satisfies Schema;

export const HELP = commandHelp(
  "usage: herd serve --model DIR [--port N] [--host H] [--api-key K] [--parallel N] [options]",
  OPTIONS,
  "OpenAI-compatible API: /v1/chat/completions, /v1/completions, /v1/models, /tokenize, /detokenize, /health, /metrics (docs/serve.md). Chat and completions (echo + logprobs), streaming, continuous batching, prefix cache, auth, tools (Llama 3.1 JSON calls; tool_choice required constrains the call), response_format json_object / json_schema, the guard with --guard, Llama 3.1's code interpreter with --code-interpreter (sandboxed), and LoRA adapters with --lora NAME=DIR (a request picks one by model; different adapters share a decode step).",
);

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(OPTIONS, HELP, argv, { required: ["model"] });
  if (!parsed) return 0;
  const { values } = parsed;
  const served = await serve({
    model: values.model,
    ...(values.tokenizer ? { tokenizer: values.tokenizer } : {}),
    f32: values.f32,
    host: values.host,
    port: values.port,
    apiKey: values["api-key"] ?? null,
    backend: values.backend ?? null,
    engine: {
      parallel: values.parallel,
      maxQueue: values.queue,
      prefixCache: !values["no-prefix-cache"],
      ...(values["kv-blocks"] !== undefined ? { kvBlocks: values["kv-blocks"] } : {}),
    },
    ...(values["model-name"] ? { modelName: values["model-name"] } : {}),
    lora: loraSpecs(values.lora ?? []),
    guard: values.guard ?? null,
    ...(values["guard-categories"] ? { guardCategories: values["guard-categories"] } : {}),
    codeInterpreter: values["code-interpreter"]
      ? {
          rounds: values["code-interpreter-rounds"],
          limits: {
            timeoutS: values["code-interpreter-timeout"],
            cpuS: Math.max(1, Math.ceil(values["code-interpreter-timeout"])),
          },
        }
      : null,
  });
  process.stdout.write(`herd serve: listening on ${served.url} (loading the model…)\n`);
  await served.ready;
  process.stdout.write(`herd serve: ready — ${served.url}/v1 (chat page: ${served.url}/)\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  await served.close();
  return 0;
}

/** `--lora NAME=DIR` values as adapter specs (split at the first "="). */
export function loraSpecs(values: readonly string[]): { name: string; dir: string }[] {
  return values.map((v) => {
    const eq = v.indexOf("=");
    if (eq <= 0 || eq === v.length - 1)
      throw new UsageError(
        `--lora '${v}': expected NAME=DIR (the model name requests use, the adapter's directory)`,
      );
    return { name: v.slice(0, eq), dir: v.slice(eq + 1) };
  });
}
