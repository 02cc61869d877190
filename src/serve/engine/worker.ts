// The engine's thread: loads the model, runs the Engine's decode loop, and trades plain messages with
// WorkerEngineClient (host.ts) — submit/cancel/stats in; accepted/rejected/tokens/done/stats out. The HTTP
// server (parsing, tokenising, streaming) lives on the main thread, so a decode step never waits for it
// and it never waits for a step. Started only by host.ts, with WorkerSetup as its workerData.
import { parentPort, workerData } from "node:worker_threads";
import { setBackend } from "../../backends/index.js";
import type { LlamaConfig } from "../../model/config.js";
import { Llama } from "../../model/llama.js";
import { loadModel } from "../../model/load.js";
import { initWeights } from "../../model/weights.js";
import type { ConstraintFactory } from "../contracts.js";
import { type LoraSpec, loadRowAdapters } from "./adapters.js";
import { type ConstraintSpec, constraintOf } from "./client.js";
import { Engine, type EngineOptions } from "./engine.js";
import { type GenerationRequest, RejectedError } from "./types.js";

export interface WorkerSetup {
  /** A checkpoint directory, or a config with random weights (benchmarks). */
  model: { dir: string; dtype: "f32" | "keep" } | { config: LlamaConfig; seed: number };
  backend: string | null;
  engine: EngineOptions;
  /** A module exporting `createConstraintFactory(modelDir, vocabSize, tokenizer?)` (structured output), or null. */
  constraintModule: string | null;
  /** The tokenizer file given with --tokenizer (default: the model folder's). */
  tokenizer?: string | null;
  /** LoRA adapters loaded beside the base, named by requests (GenerationRequest.adapter). */
  lora?: LoraSpec[];
}

export type ToWorker =
  | { type: "submit"; id: number; req: GenerationRequest; constraint: ConstraintSpec | null }
  | { type: "cancel"; id: number }
  | { type: "stats"; id: number };

const port = parentPort!;
const setup = workerData as WorkerSetup;

async function main(): Promise<void> {
  if (setup.backend) setBackend(setup.backend);
  const model =
    "dir" in setup.model
      ? await loadModel(setup.model.dir, { dtype: setup.model.dtype })
      : new Llama(setup.model.config, initWeights(setup.model.config, { seed: setup.model.seed }), "init");
  const engine = new Engine(model, setup.engine, await loadRowAdapters(model, setup.lora ?? []));
  let constraints: ConstraintFactory | null = null;
  if (setup.constraintModule) {
    const mod = (await import(setup.constraintModule)) as {
      createConstraintFactory: (
        dir: string,
        vocabSize: number,
        tokenizer?: string,
      ) => ConstraintFactory | Promise<ConstraintFactory>;
    };
    constraints = await mod.createConstraintFactory(
      "dir" in setup.model ? setup.model.dir : "",
      model.config.vocabSize,
      setup.tokenizer ?? undefined,
    );
  }
  const ids = new Map<number, number>();
  port.on("message", (m: ToWorker) => {
    if (m.type === "stats") {
      port.postMessage({ type: "stats", id: m.id, stats: engine.stats() });
    } else if (m.type === "cancel") {
      const e = ids.get(m.id);
      if (e !== undefined) engine.cancel(e);
    } else {
      try {
        const c = m.constraint ? constraintOf(constraints, m.constraint) : null;
        const e = engine.submit(
          m.req,
          {
            onTokens: (tokens) => port.postMessage({ type: "tokens", id: m.id, tokens }),
            onDone: (done) => {
              ids.delete(m.id);
              port.postMessage({ type: "done", id: m.id, done });
            },
          },
          c,
        );
        ids.set(m.id, e);
        port.postMessage({ type: "accepted", id: m.id });
      } catch (err) {
        const reason = err instanceof RejectedError ? err.reason : "invalid";
        port.postMessage({ type: "rejected", id: m.id, reason, message: (err as Error).message });
      }
    }
  });
  port.postMessage({ type: "ready", info: engine.info, config: model.config });
}

main().catch((e) => port.postMessage({ type: "failed", message: (e as Error).stack ?? String(e) }));
