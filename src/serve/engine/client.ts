// What the HTTP layer holds of the engine: submit a request (resolves once it is queued, rejects with
// RejectedError), cancel it, read the figures. Two implementations: `LocalEngineClient`, the engine in
// this thread (tests, benchmarks of the engine alone), and `WorkerEngineClient` (host.ts), the engine in
// a worker thread, which is what `herd serve` runs.
import type { ConstraintFactory } from "../contracts.js";
import type { Engine, RequestListener } from "./engine.js";
import type { EngineInfo, EngineStats, GenerationRequest } from "./types.js";

/** A constraint as data (it crosses to the worker, which builds it with its ConstraintFactory). */
export type ConstraintSpec = { type: "json"; schema: object | null };

export interface EngineClient {
  readonly info: EngineInfo;
  /** Queue a request; resolves with its cancel function once accepted. */
  submit(
    req: GenerationRequest,
    listener: RequestListener,
    constraint?: ConstraintSpec | null,
  ): Promise<() => void>;
  stats(): Promise<EngineStats>;
  close(): Promise<void>;
}

export class LocalEngineClient implements EngineClient {
  readonly info: EngineInfo;
  constructor(
    readonly engine: Engine,
    private readonly constraints: ConstraintFactory | null = null,
  ) {
    this.info = engine.info;
  }

  async submit(
    req: GenerationRequest,
    listener: RequestListener,
    constraint: ConstraintSpec | null = null,
  ): Promise<() => void> {
    let c = null;
    if (constraint) {
      if (!this.constraints) throw new Error("structured output is not available on this server");
      c = this.constraints.json(constraint.schema);
    }
    const id = this.engine.submit(req, listener, c);
    return () => this.engine.cancel(id);
  }

  async stats(): Promise<EngineStats> {
    return this.engine.stats();
  }

  async close(): Promise<void> {}
}
