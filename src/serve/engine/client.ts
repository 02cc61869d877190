// What the HTTP layer holds of the engine: submit a request (resolves once it is queued, rejects with
// RejectedError), cancel it, read the figures. Two implementations: `LocalEngineClient`, the engine in
// this thread (tests, benchmarks of the engine alone), and `WorkerEngineClient` (host.ts), the engine in
// a worker thread, which is what `herd serve` runs.
import type { ConstraintFactory, FunctionTool, TokenConstraint } from "../contracts.js";
import type { Engine, RequestListener } from "./engine.js";
import { type EngineInfo, type EngineStats, type GenerationRequest, RejectedError } from "./types.js";

/** A request's constraint as plain data (it crosses the worker boundary): built by `constraintOf`. */
export type ConstraintSpec =
  | { type: "json"; schema: object | null }
  | { type: "tool_call"; tools: FunctionTool[] };

/** The TokenConstraint of a spec, from the server's factory; throws when the server has none. */
export function constraintOf(factory: ConstraintFactory | null, spec: ConstraintSpec): TokenConstraint {
  if (!factory) throw new RejectedError("invalid", "structured output is not available on this server");
  if (spec.type === "json") return factory.json(spec.schema);
  const c = factory.toolCall?.(spec.tools, "required");
  if (!c) throw new RejectedError("invalid", "a forced tool call is not available on this server");
  return c;
}

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
    const c = constraint ? constraintOf(this.constraints, constraint) : null;
    const id = this.engine.submit(req, listener, c);
    return () => this.engine.cancel(id);
  }

  async stats(): Promise<EngineStats> {
    return this.engine.stats();
  }

  async close(): Promise<void> {}
}
