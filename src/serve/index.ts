// `herd serve` as a library: the engine in a worker thread (engine/host.ts), the OpenAI-compatible HTTP
// server on this thread (http/server.ts). `serve` starts listening at once — /health answers 503 while
// the model loads — and resolves with the server, its URL and `ready` (the model loaded). LoRA adapters
// (`lora`) load in the engine thread beside the base; a request names one by `model`.
import { existsSync } from "node:fs";
import { basename, resolve } from "node:path";
import type { FastifyInstance } from "fastify";
import { codecFor } from "../generate/codec.js";
import { stopIdsOf } from "../model/config.js";
import { readConfig } from "../model/load.js";
import { ChatFormat } from "../tokenizer/chat.js";
import { CONSTRAINT_MODULE } from "./constraints.js";
import type { GuardClassifier } from "./contracts.js";
import type { LoraSpec } from "./engine/adapters.js";
import type { EngineOptions } from "./engine/engine.js";
import { WorkerEngineClient } from "./engine/host.js";
import { EngineGuardClassifier } from "./guard/engineGuard.js";
import type { ServeFeatures } from "./http/features.js";
import { createServer } from "./http/server.js";
import { CodeInterpreter, type CodeInterpreterOptions } from "./tools/codeInterpreter.js";
import type { OpenAITool as ToolsOpenAITool } from "./tools/openai.js";
import { chatMessages, type OpenAIMessage } from "./tools/prompt.js";
import { LlamaToolCallStream } from "./tools/stream.js";

export * from "./contracts.js";
export { type LoraSpec, loadRowAdapter, loadRowAdapters } from "./engine/adapters.js";
export { type ConstraintSpec, type EngineClient, LocalEngineClient } from "./engine/client.js";
export { Engine, type EngineOptions } from "./engine/engine.js";
export { WorkerEngineClient } from "./engine/host.js";
export * from "./engine/types.js";
export type { OpenAITool, ServeFeatures } from "./http/features.js";
export { createServer, type ServerOptions } from "./http/server.js";

export interface ServeOptions {
  model: string;
  tokenizer?: string;
  /** Widen bf16 weights to f32 (default: keep them as stored). */
  f32?: boolean;
  host?: string;
  port?: number;
  apiKey?: string | null;
  /** The tensor backend of the engine thread (default: the process's). */
  backend?: string | null;
  engine?: EngineOptions;
  features?: ServeFeatures;
  /** The module the engine thread imports for structured output (`createConstraintFactory`); default
   * constraints.ts (JSON schema over the model's vocabulary), null for none. */
  constraintModule?: string | null;
  /** A Llama Guard 3 checkpoint: user turns and replies are classified (its own engine thread). */
  guard?: string | null;
  /** Guard categories to judge (default all of S1–S14). */
  guardCategories?: readonly string[];
  /** The name clients give as `model` (default: the directory's name). */
  modelName?: string;
  /** LoRA adapters (PEFT directories) served beside the base, each chosen by `model: name`. */
  lora?: readonly LoraSpec[];
  /** Run the model's `<|python_tag|>` code in the sandbox (refused at start when it cannot run here). */
  codeInterpreter?: CodeInterpreterOptions | null;
}

export interface Served {
  app: FastifyInstance;
  url: string;
  ready: Promise<WorkerEngineClient>;
  close(): Promise<void>;
}

export async function serve(opts: ServeOptions): Promise<Served> {
  // First: a server that was asked to run code and cannot sandbox it does not start at all.
  const interpreter = opts.codeInterpreter ? await CodeInterpreter.create(opts.codeInterpreter) : null;
  const config = readConfig(opts.model);
  const codec = codecFor(opts.model, config.vocabSize, opts.tokenizer);
  if (!codec) throw new Error(`${opts.model}: no tokenizer for this model (give --tokenizer PATH)`);
  const constraintModule = opts.constraintModule === undefined ? CONSTRAINT_MODULE : opts.constraintModule;
  const modelName = opts.modelName ?? basename(resolve(opts.model));
  const lora = checkLora(opts.lora ?? [], modelName);
  const engineReady = WorkerEngineClient.start({
    model: { dir: resolve(opts.model), dtype: opts.f32 ? "f32" : "keep" },
    backend: opts.backend ?? null,
    engine: opts.engine ?? {},
    constraintModule,
    tokenizer: opts.tokenizer ?? null,
    lora,
  });
  const guard = opts.guard ? startGuard(opts.guard, opts) : null;
  const ready = engineReady.then(async (e) => {
    await guard?.ready;
    return e;
  });
  ready.catch(() => {});
  const app = createServer({
    engine: ready,
    codec,
    modelName,
    adapterNames: lora.map((l) => l.name),
    stopIds: stopIdsOf(config),
    bosId: config.bosTokenId,
    apiKey: opts.apiKey ?? null,
    features: {
      toolDialog: (messages, tools) =>
        chatMessages(messages as OpenAIMessage[], tools as readonly ToolsOpenAITool[]),
      toolStream: () => new LlamaToolCallStream(),
      ...(guard ? { guard: guard.classifier } : {}),
      ...(interpreter ? { codeInterpreter: interpreter } : {}),
      ...opts.features,
      structuredOutput: constraintModule ? true : opts.features?.structuredOutput,
    },
  });
  const host = opts.host ?? "127.0.0.1";
  await app.listen({ host, port: opts.port ?? 8080 });
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : opts.port;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  return {
    app,
    url,
    ready,
    close: async () => {
      await app.close();
      await (await engineReady.catch(() => null))?.close();
      await (await guard?.engine.catch(() => null))?.close();
    },
  };
}

/** The adapters with absolute directories, checked: names non-empty, unique, not the base's; dirs exist. */
function checkLora(specs: readonly LoraSpec[], base: string): LoraSpec[] {
  const seen = new Set<string>();
  return specs.map(({ name, dir }) => {
    if (name === "") throw new Error(`--lora: an adapter name is empty (give NAME=DIR)`);
    if (name === base)
      throw new Error(`--lora: adapter name '${name}' is the base model's name; choose another`);
    if (seen.has(name)) throw new Error(`--lora: adapter name '${name}' is given twice`);
    seen.add(name);
    if (!existsSync(dir)) throw new Error(`--lora ${name}=${dir}: no such directory`);
    return { name, dir: resolve(dir) };
  });
}

/** The guard model in its own engine thread, and a classifier that waits for it. */
function startGuard(dir: string, opts: ServeOptions) {
  const config = readConfig(dir);
  const codec = codecFor(dir, config.vocabSize);
  if (!codec?.tokenizer) throw new Error(`${dir}: the guard needs the Llama 3 tokenizer (tokenizer.model)`);
  const chat = new ChatFormat(codec.tokenizer);
  const engine = WorkerEngineClient.start({
    model: { dir: resolve(dir), dtype: opts.f32 ? "f32" : "keep" },
    backend: opts.backend ?? null,
    engine: { parallel: 4 },
    constraintModule: null,
  });
  engine.catch(() => {});
  const judge = engine.then(
    (e) =>
      new EngineGuardClassifier(e, chat, opts.guardCategories ? { categories: opts.guardCategories } : {}),
  );
  const classifier: GuardClassifier = { classify: async (turns) => (await judge).classify(turns) };
  return { engine, ready: judge, classifier };
}
