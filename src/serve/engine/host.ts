// The engine in a worker thread (worker.ts), seen from the main thread as an EngineClient: requests go
// over as messages, each step's tokens come back as messages. `startWorkerEngine` resolves once the model
// has loaded (the HTTP server answers /health with 503 until then).
import { Worker } from "node:worker_threads";
import type { LlamaConfig } from "../../model/config.js";
import type { ConstraintSpec, EngineClient } from "./client.js";
import type { RequestListener } from "./engine.js";
import {
  type DoneEvent,
  type EngineInfo,
  type EngineStats,
  type GenerationRequest,
  NO_TIMINGS,
  RejectedError,
  type RejectReason,
  type TokenEvent,
} from "./types.js";
import type { ToWorker, WorkerSetup } from "./worker.js";

type FromWorker =
  | { type: "ready"; info: EngineInfo; config: LlamaConfig }
  | { type: "failed"; message: string }
  | { type: "accepted"; id: number }
  | { type: "rejected"; id: number; reason: RejectReason; message: string }
  | { type: "tokens"; id: number; tokens: TokenEvent[] }
  | { type: "done"; id: number; done: DoneEvent }
  | { type: "stats"; id: number; stats: EngineStats };

export class WorkerEngineClient implements EngineClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<number, RequestListener>();
  private readonly statsWaiting = new Map<number, (s: EngineStats) => void>();

  private constructor(
    private readonly worker: Worker,
    readonly info: EngineInfo,
    readonly config: LlamaConfig,
  ) {
    worker.on("message", (m: FromWorker) => this.receive(m));
    worker.on("error", (e) => this.failAll(e));
    worker.on("exit", () => this.failAll(new Error("the engine thread exited")));
  }

  static start(setup: WorkerSetup): Promise<WorkerEngineClient> {
    const worker = new Worker(new URL("./worker.js", import.meta.url), { workerData: setup });
    return new Promise((resolve, reject) => {
      const first = (m: FromWorker) => {
        worker.off("message", first);
        if (m.type === "ready") resolve(new WorkerEngineClient(worker, m.info, m.config));
        else {
          void worker.terminate();
          reject(new Error(m.type === "failed" ? m.message : `engine thread: unexpected ${m.type}`));
        }
      };
      worker.on("message", first);
      worker.once("error", reject);
    });
  }

  submit(
    req: GenerationRequest,
    listener: RequestListener,
    constraint: ConstraintSpec | null = null,
  ): Promise<() => void> {
    const id = this.nextId++;
    this.listeners.set(id, listener);
    const msg: ToWorker = { type: "submit", id, req, constraint };
    return new Promise((resolve, reject) => {
      this.pending.set(id, {
        resolve: () => resolve(() => this.worker.postMessage({ type: "cancel", id } satisfies ToWorker)),
        reject,
      });
      this.worker.postMessage(msg);
    });
  }

  stats(): Promise<EngineStats> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.statsWaiting.set(id, resolve);
      this.worker.postMessage({ type: "stats", id } satisfies ToWorker);
    });
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners("exit");
    await this.worker.terminate();
  }

  private receive(m: FromWorker): void {
    switch (m.type) {
      case "accepted":
        this.pending.get(m.id)?.resolve();
        this.pending.delete(m.id);
        break;
      case "rejected":
        this.pending.get(m.id)?.reject(new RejectedError(m.reason, m.message));
        this.pending.delete(m.id);
        this.listeners.delete(m.id);
        break;
      case "tokens":
        this.listeners.get(m.id)?.onTokens(m.tokens);
        break;
      case "done": {
        const l = this.listeners.get(m.id);
        this.listeners.delete(m.id);
        l?.onDone(m.done);
        break;
      }
      case "stats":
        this.statsWaiting.get(m.id)?.(m.stats);
        this.statsWaiting.delete(m.id);
        break;
      default:
        break;
    }
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    for (const l of this.listeners.values())
      l.onDone({
        finishReason: "error",
        stopId: null,
        promptTokens: 0,
        completionTokens: 0,
        cachedTokens: 0,
        timings: { ...NO_TIMINGS },
        error: e.message,
      });
    this.listeners.clear();
  }
}
