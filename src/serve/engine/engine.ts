// The serving engine: continuous batching over one model. Every step advances every running sequence
// in ONE forward (Llama.forwardRows): a decoding sequence feeds its last sampled token, a sequence still
// in its prompt feeds its next chunk (at most `prefillChunk` tokens, and `prefillBudget` prompt tokens per
// step in all, so a long prompt joins without stalling the others' decoding). New requests join between
// steps; finished or cancelled ones leave at once, their memory freed. Each sequence has its own batch-1
// KV cache and its own seeded Sampler drawing once per token, so with the same seed a request gets the
// tokens it gets alone wherever the batched matrix products round as one row's do (the js backend;
// docs/serve.md records the native backend). Admission (spec §7.7): a request waits in a bounded queue
// until `parallel` allows another sequence and the block pool (blocks.ts) has room for its prompt plus
// max_tokens; beyond the queue it is rejected (the HTTP layer answers 429). Prefix caching: a prompt's
// full blocks are kept after its prefill; a later prompt starting with them copies their K/V. LoRA
// adapters (adapters.ts) are loaded beside the base and named by a request's `adapter`: rows with
// different adapters, and rows with none, still share one step (forwardRows adds each row's low-rank
// updates), and the prefix cache keys a prompt's blocks by its adapter too.
// Single-threaded: run it in a worker thread (worker.ts) so HTTP work never waits on a step.
import { performance } from "node:perf_hooks";
import { Sampler } from "../../generate/sampling.js";
import { KVCache } from "../../model/kvcache.js";
import type { BatchRow, Llama, RowAdapter } from "../../model/llama.js";
import { noGrad } from "../../tensor/tape.js";
import { scope } from "../../tensor/tensor.js";
import type { TokenConstraint } from "../contracts.js";
import { BlockPool, blockKeys, type CachedBlock } from "./blocks.js";
import {
  type DoneEvent,
  type EngineInfo,
  type EngineStats,
  type FinishReason,
  type GenerationRequest,
  RejectedError,
  type TokenEvent,
  type TokenLogprob,
  TTFT_BUCKETS,
} from "./types.js";

export interface EngineOptions {
  /** Sequences decoded together at most (default 8). */
  parallel?: number;
  /** Requests waiting for a slot at most; more are rejected (default 64). */
  maxQueue?: number;
  /** Tokens per KV block (default 16). */
  blockSize?: number;
  /** KV blocks in all (running sequences + prefix cache); default: `parallel` full contexts, at most
   * 256 MiB of f32 K/V. */
  kvBlocks?: number;
  /** Prompt tokens one sequence feeds per step at most (default 128). */
  prefillChunk?: number;
  /** Prompt tokens all sequences feed per step at most (default 256). */
  prefillBudget?: number;
  /** Keep and reuse full prompt blocks (default true). */
  prefixCache?: boolean;
}

export interface RequestListener {
  onTokens(tokens: TokenEvent[]): void;
  onDone(done: DoneEvent): void;
}

interface Sequence {
  id: number;
  req: GenerationRequest;
  /** The request's adapter (null: the base) and its name ("" for the base; the prefix cache's namespace). */
  adapter: RowAdapter | null;
  adapterName: string;
  listener: RequestListener;
  constraint: TokenConstraint | null;
  sampler: Sampler;
  cache: KVCache | null;
  blocks: number;
  /** Prompt tokens in the cache (computed or copied). */
  fed: number;
  cached: number;
  /** Sampled but not yet fed. */
  pending: number | null;
  generated: number;
  promptLogprobs: TokenLogprob[];
  tSubmit: number;
  tAdmit: number;
  tFirst: number;
  tLast: number;
}

const DEFAULT_KV_BYTES = 256 << 20;

export class Engine {
  readonly info: EngineInfo;
  private readonly opts: Required<Omit<EngineOptions, "kvBlocks">>;
  private readonly pool: BlockPool;
  private readonly queue: Sequence[] = [];
  private readonly running: Sequence[] = [];
  private nextId = 1;
  private scheduled = false;
  private readonly counters = {
    requestsTotal: 0,
    requestsRejected: 0,
    promptTokensTotal: 0,
    cachedTokensTotal: 0,
    generatedTokensTotal: 0,
    ttftSum: 0,
    ttftCount: 0,
  };
  private readonly ttftBuckets = TTFT_BUCKETS.map(() => 0);
  /** (time ms, tokens) of recent steps, for tokens/s. */
  private readonly recent: [number, number][] = [];

  /**
   * `adapters`: the LoRA adapters a request may name (GenerationRequest.adapter), by name, each already
   * checked against the model (adapters.ts).
   */
  constructor(
    readonly model: Llama,
    opts: EngineOptions = {},
    readonly adapters: ReadonlyMap<string, RowAdapter> = new Map(),
  ) {
    const c = model.config;
    this.opts = {
      parallel: opts.parallel ?? 8,
      maxQueue: opts.maxQueue ?? 64,
      blockSize: opts.blockSize ?? 16,
      prefillChunk: opts.prefillChunk ?? 128,
      prefillBudget: opts.prefillBudget ?? 256,
      prefixCache: opts.prefixCache ?? true,
    };
    for (const [k, v] of Object.entries(this.opts))
      if (typeof v === "number" && !(Number.isInteger(v) && v >= (k === "maxQueue" ? 0 : 1)))
        throw new Error(`Engine: ${k} ${v} must be a positive integer`);
    const bs = this.opts.blockSize;
    const blockBytes = 2 * c.numHiddenLayers * c.numKeyValueHeads * c.headDim * 4 * bs;
    const perContext = Math.ceil(c.maxPositionEmbeddings / bs);
    const total =
      opts.kvBlocks ??
      Math.max(
        perContext,
        Math.min(this.opts.parallel * perContext, Math.floor(DEFAULT_KV_BYTES / blockBytes)),
      );
    this.pool = new BlockPool(total, bs, this.opts.prefixCache);
    this.info = {
      contextLength: c.maxPositionEmbeddings,
      vocabSize: c.vocabSize,
      parallel: this.opts.parallel,
      blockSize: bs,
    };
  }

  /**
   * Queue a request; its tokens and its end come through `listener` (from later steps, never from
   * inside this call). Throws RejectedError when the queue is full, it can never fit, or it is invalid.
   */
  submit(
    req: GenerationRequest,
    listener: RequestListener,
    constraint: TokenConstraint | null = null,
  ): number {
    const c = this.model.config;
    const fail = (reason: "queue_full" | "too_long" | "invalid", msg: string): never => {
      this.counters.requestsRejected++;
      throw new RejectedError(reason, msg);
    };
    if (req.prompt.length === 0) fail("invalid", "empty prompt");
    const bad = req.prompt.find((id) => !(Number.isInteger(id) && id >= 0 && id < c.vocabSize));
    if (bad !== undefined) fail("invalid", `token id ${bad} is outside the vocabulary of ${c.vocabSize}`);
    if (!(Number.isInteger(req.maxTokens) && req.maxTokens >= 0)) fail("invalid", "max_tokens must be ≥ 0");
    const adapterName = req.adapter ?? "";
    const adapter = adapterName === "" ? null : (this.adapters.get(adapterName) ?? null);
    if (adapterName !== "" && !adapter)
      fail(
        "invalid",
        `unknown adapter '${adapterName}' (this engine has ${[...this.adapters.keys()].map((n) => `'${n}'`).join(", ") || "none"})`,
      );
    const need = req.prompt.length + req.maxTokens;
    if (need > c.maxPositionEmbeddings)
      fail(
        "too_long",
        `the prompt (${req.prompt.length} tokens) plus max_tokens (${req.maxTokens}) exceeds the context length of ${c.maxPositionEmbeddings}`,
      );
    if (this.pool.blocksFor(need) > this.pool.total)
      fail(
        "too_long",
        `the request needs ${this.pool.blocksFor(need)} KV blocks; the server has ${this.pool.total}`,
      );
    const free = Math.max(0, this.opts.parallel - this.running.length);
    if (this.queue.length >= this.opts.maxQueue + free)
      fail("queue_full", `the queue is full (${this.opts.maxQueue} requests waiting)`);
    const now = performance.now();
    const seq: Sequence = {
      id: this.nextId++,
      req,
      adapter,
      adapterName,
      listener,
      constraint,
      sampler: new Sampler({
        temperature: req.temperature,
        topP: req.topP,
        topK: req.topK ?? 0,
        seed: req.seed,
      }),
      cache: null,
      blocks: 0,
      fed: 0,
      cached: 0,
      pending: null,
      generated: 0,
      promptLogprobs: [],
      tSubmit: now,
      tAdmit: now,
      tFirst: 0,
      tLast: now,
    };
    this.counters.requestsTotal++;
    this.queue.push(seq);
    this.schedule();
    return seq.id;
  }

  /** Stop a request now: its slot and memory are freed before the next step. */
  cancel(id: number): void {
    const qi = this.queue.findIndex((s) => s.id === id);
    if (qi >= 0) {
      const [s] = this.queue.splice(qi, 1);
      this.finish(s!, "cancelled", null);
      return;
    }
    const s = this.running.find((r) => r.id === id);
    if (s) this.finish(s, "cancelled", null);
  }

  /** Whether requests are waiting or running. */
  get busy(): boolean {
    return this.queue.length + this.running.length > 0;
  }

  stats(): EngineStats {
    const now = performance.now();
    while (this.recent.length > 0 && now - this.recent[0]![0] > 10_000) this.recent.shift();
    const tokens = this.recent.reduce((n, [, t]) => n + t, 0);
    const span = this.recent.length > 0 ? Math.max(1, now - this.recent[0]![0]) : 1;
    return {
      ...this.counters,
      ttftBuckets: [...this.ttftBuckets],
      queueDepth: this.queue.length,
      active: this.running.length,
      tokensPerSecond: this.recent.length > 0 ? (tokens * 1000) / span : 0,
      kvBlocksTotal: this.pool.total,
      kvBlocksUsed: this.pool.used,
      prefixBlocksCached: this.pool.cachedBlocks,
    };
  }

  /** Run steps until nothing is left (for tests and benchmarks; a server lets `schedule` drive). */
  async drain(): Promise<void> {
    while (this.busy) await new Promise((r) => setImmediate(r));
  }

  // --- scheduling -----------------------------------------------------------------------------------

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      try {
        this.step();
      } catch (e) {
        for (const s of [...this.running]) this.finish(s, "error", null, (e as Error).message);
      }
      if (this.busy) this.schedule();
    });
  }

  /** Admit waiting requests in order while a slot and their blocks are free. */
  private admit(): void {
    const c = this.model.config;
    while (this.queue.length > 0 && this.running.length < this.opts.parallel) {
      const s = this.queue[0]!;
      const need = s.req.prompt.length + s.req.maxTokens;
      const blocks = this.pool.blocksFor(need);
      if (!this.pool.tryTake(blocks)) break;
      this.queue.shift();
      s.blocks = blocks;
      s.tAdmit = performance.now();
      s.cache = new KVCache(c, 1, blocks * this.pool.blockSize);
      if (!s.req.promptLogprobs) {
        // At least the last prompt token is computed: its logits choose the first new token.
        const maxBlocks = Math.floor((s.req.prompt.length - 1) / this.pool.blockSize);
        const keys = blockKeys(s.req.prompt, this.pool.blockSize, maxBlocks, s.adapterName);
        const hits = this.pool.lookup(keys);
        if (hits.length > 0) this.copyIn(s.cache, hits);
        s.fed = s.cached = hits.length * this.pool.blockSize;
      }
      this.running.push(s);
    }
  }

  private copyIn(cache: KVCache, blocks: CachedBlock[]): void {
    const bs = this.pool.blockSize;
    const per = bs * cache.kvDim;
    for (let l = 0; l < cache.layers; l++) {
      const buf = cache.layerBuffers(l);
      for (const [i, b] of blocks.entries()) {
        buf.k.set(b.k.subarray(l * per, (l + 1) * per), i * per);
        buf.v.set(b.v.subarray(l * per, (l + 1) * per), i * per);
      }
    }
    cache.length = blocks.length * bs;
  }

  /** Keep the full blocks of a finished prefill in the prefix cache. */
  private storePrefix(s: Sequence): void {
    const bs = this.pool.blockSize;
    const cache = s.cache!;
    const keys = blockKeys(s.req.prompt, bs, Math.floor(s.req.prompt.length / bs), s.adapterName);
    const per = bs * cache.kvDim;
    for (const [i, key] of keys.entries()) {
      if (this.pool.has(key)) continue;
      const k = new Float32Array(cache.layers * per);
      const v = new Float32Array(cache.layers * per);
      for (let l = 0; l < cache.layers; l++) {
        const buf = cache.layerBuffers(l);
        k.set(buf.k.subarray(i * per, (i + 1) * per), l * per);
        v.set(buf.v.subarray(i * per, (i + 1) * per), l * per);
      }
      this.pool.store(key, { k, v });
    }
  }

  /** One batched forward over every running sequence, then sampling. */
  step(): void {
    this.admit();
    if (this.running.length === 0) return;
    const rows: BatchRow[] = [];
    const ids: number[] = [];
    const members: { s: Sequence; n: number; prefill: boolean }[] = [];
    let budget = this.opts.prefillBudget;
    for (const s of this.running) {
      const left = s.req.prompt.length - s.fed;
      if (left > 0) {
        const n = Math.min(left, this.opts.prefillChunk);
        if (n > budget && members.some((m) => m.prefill)) continue;
        budget -= n;
        ids.push(...s.req.prompt.slice(s.fed, s.fed + n));
        rows.push({
          cache: s.cache!,
          tokens: n,
          allLogits: s.req.promptLogprobs === true,
          adapter: s.adapter,
        });
        members.push({ s, n, prefill: true });
      } else {
        ids.push(s.pending!);
        rows.push({ cache: s.cache!, tokens: 1, adapter: s.adapter });
        members.push({ s, n: 1, prefill: false });
      }
    }
    const V = this.model.config.vocabSize;
    let produced = 0;
    noGrad(() =>
      scope(() => {
        const logits = this.model.forwardRows(Int32Array.from(ids), rows).data;
        let out = 0;
        for (const m of members) {
          const s = m.s;
          let last: Float32Array;
          if (m.prefill && s.req.promptLogprobs) {
            for (let t = 0; t < m.n; t++) {
              const p = s.fed + t;
              const row = logits.subarray((out + t) * V, (out + t + 1) * V);
              if (p + 1 < s.req.prompt.length)
                s.promptLogprobs.push(logprobOf(row, s.req.prompt[p + 1]!, s.req.logprobs ?? 0));
            }
            last = logits.subarray((out + m.n - 1) * V, (out + m.n) * V);
            out += m.n;
          } else {
            last = logits.subarray(out * V, (out + 1) * V);
            out++;
          }
          if (m.prefill) {
            s.fed += m.n;
            if (s.fed < s.req.prompt.length) continue;
            this.storePrefix(s);
            if (s.req.maxTokens === 0) {
              this.finish(s, "length", null);
              continue;
            }
          }
          if (this.sampleNext(s, last)) produced++;
        }
      }),
    );
    const now = performance.now();
    this.recent.push([now, produced]);
    if (this.recent.length > 4096) this.recent.shift();
  }

  /** Choose a sequence's next token from its logits; report it or finish. True if a token was produced. */
  private sampleNext(s: Sequence, logits: Float32Array): boolean {
    let row: Float32Array = logits;
    if (s.constraint) {
      const mask = s.constraint.mask();
      row = Float32Array.from(logits);
      for (let i = 0; i < row.length; i++) if (mask[i] === 0) row[i] = Number.NEGATIVE_INFINITY;
    }
    const id = s.sampler.sample(row);
    const now = performance.now();
    if (s.generated === 0 && s.tFirst === 0) {
      s.tFirst = now;
      const ttft = (now - s.tSubmit) / 1000;
      this.counters.ttftSum += ttft;
      this.counters.ttftCount++;
      for (const [i, b] of TTFT_BUCKETS.entries()) if (ttft <= b) this.ttftBuckets[i]!++;
    }
    s.tLast = now;
    if (s.req.stopIds.includes(id)) {
      this.finish(s, "stop", id);
      return false;
    }
    if (s.constraint) s.constraint.accept(id);
    s.generated++;
    this.counters.generatedTokensTotal++;
    const ev: TokenEvent = { id };
    if (s.req.logprobs !== null) ev.logprob = logprobOf(logits, id, s.req.logprobs);
    s.listener.onTokens([ev]);
    if (!this.running.includes(s)) return true; // cancelled by its listener
    if (s.generated >= s.req.maxTokens) this.finish(s, "length", null);
    else s.pending = id;
    return true;
  }

  private finish(s: Sequence, reason: FinishReason, stopId: number | null, error?: string): void {
    const i = this.running.indexOf(s);
    if (i >= 0) this.running.splice(i, 1);
    if (s.cache) {
      s.cache.dispose();
      s.cache = null;
      this.pool.give(s.blocks);
      s.blocks = 0;
    }
    const promptMs = (s.tFirst || s.tLast) - s.tAdmit;
    const predictedMs = s.tFirst ? s.tLast - s.tFirst : 0;
    const computed = Math.max(0, s.fed - s.cached);
    this.counters.promptTokensTotal += s.req.prompt.length;
    this.counters.cachedTokensTotal += s.cached;
    const done: DoneEvent = {
      finishReason: reason,
      stopId,
      promptTokens: s.req.prompt.length,
      completionTokens: s.generated,
      cachedTokens: s.cached,
      timings: {
        prompt_n: computed,
        prompt_ms: promptMs,
        prompt_per_second: promptMs > 0 ? (computed * 1000) / promptMs : 0,
        predicted_n: s.generated,
        predicted_ms: predictedMs,
        predicted_per_second: predictedMs > 0 ? ((s.generated - 1) * 1000) / predictedMs : 0,
        cache_n: s.cached,
      },
    };
    if (s.req.promptLogprobs) done.promptLogprobs = s.promptLogprobs;
    if (error !== undefined) done.error = error;
    s.listener.onDone(done);
  }
}

/** log softmax(logits)[id] and the `top` most likely ids with theirs. */
export function logprobOf(logits: ArrayLike<number>, id: number, top: number): TokenLogprob {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const lse = max + Math.log(sum);
  const best: { id: number; logprob: number }[] = [];
  if (top > 0) {
    for (let i = 0; i < logits.length; i++) {
      const v = logits[i]!;
      if (best.length === top && v <= best[top - 1]!.logprob) continue;
      let j = best.length < top ? best.length : top - 1;
      if (best.length < top) best.push({ id: i, logprob: v });
      while (j > 0 && best[j - 1]!.logprob < v) {
        best[j] = best[j - 1]!;
        j--;
      }
      best[j] = { id: i, logprob: v };
    }
    for (const b of best) b.logprob -= lse;
  }
  return { id, logprob: logits[id]! - lse, top: best };
}
