// The OpenAI-compatible HTTP server (fastify): /v1/chat/completions and /v1/completions (routes.ts),
// /v1/models (the base, then each LoRA adapter), /tokenize, /detokenize, /health (503 until the engine is ready), /metrics (Prometheus
// text), and the web chat page at / (web.ts). It runs on the main thread — parsing, tokenising,
// detokenising and streaming — while the engine decodes in its worker thread (src/serve/engine/host.ts),
// so neither waits on the other. Bearer-token auth with `apiKey` (compared in constant time on SHA-256
// digests; the page and its assets are open); every error is OpenAI's error object.
import { createHash, timingSafeEqual } from "node:crypto";
import Fastify, { type FastifyInstance } from "fastify";
import type { TextCodec } from "../../generate/codec.js";
import type { EngineClient } from "../engine/client.js";
import { TTFT_BUCKETS } from "../engine/types.js";
import { ApiError, asBody } from "./errors.js";
import type { ServeFeatures } from "./features.js";
import { chatRoute, completionsRoute, type ServeContext } from "./routes.js";
import { isWebRoute, webRoutes } from "./web.js";

export interface ServerOptions {
  /** The engine, or its start (the server answers 503 until it resolves). */
  engine: EngineClient | Promise<EngineClient>;
  /** Text ↔ ids (chat needs the Llama 3 tokenizer: codec.tokenizer). */
  codec: TextCodec;
  /** The name clients pass as `model`. */
  modelName: string;
  /** The LoRA adapters the engine serves, each a `model` name of its own (default none). */
  adapterNames?: readonly string[];
  /** Ids that end a reply (the model's stop ids). */
  stopIds: readonly number[];
  /** Does the model want BOS before a completion prompt (its bos id), or null. */
  bosId: number | null;
  apiKey?: string | null;
  features?: ServeFeatures;
  /** Largest request body in bytes (default 4 MiB). */
  bodyLimit?: number;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

export function createServer(opts: ServerOptions): FastifyInstance {
  const app = Fastify({ bodyLimit: opts.bodyLimit ?? 4 << 20, logger: false });
  const ctx: ServeContext = {
    engine: null,
    codec: opts.codec,
    modelName: opts.modelName,
    adapterNames: opts.adapterNames ?? [],
    stopIds: opts.stopIds,
    bosId: opts.bosId,
    features: opts.features ?? {},
    created: Math.floor(Date.now() / 1000),
    httpRequests: new Map(),
  };
  let loadError: string | null = null;
  Promise.resolve(opts.engine).then(
    (e) => {
      ctx.engine = e;
    },
    (e) => {
      loadError = (e as Error).message;
    },
  );
  const key = opts.apiKey ? digest(opts.apiKey) : null;

  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof ApiError) return reply.status(err.status).send(err.body());
    const e = err as Error & { statusCode?: number; code?: string };
    const status = e.statusCode && e.statusCode >= 400 && e.statusCode < 600 ? e.statusCode : 500;
    const message =
      e.code === "FST_ERR_CTP_INVALID_JSON_BODY" || e instanceof SyntaxError
        ? `the request body is not valid JSON: ${e.message}`
        : e.message;
    return reply.status(status).send(new ApiError(status, message, null, e.code ?? null).body());
  });
  app.setNotFoundHandler((req, reply) =>
    reply.status(404).send(new ApiError(404, `no route ${req.method} ${req.url}`, null, "not_found").body()),
  );

  app.addHook("onRequest", async (req) => {
    const route = req.routeOptions.url ?? "other";
    ctx.httpRequests.set(route, (ctx.httpRequests.get(route) ?? 0) + 1);
    if (!key || req.url === "/health" || req.url === "/metrics" || isWebRoute(req.routeOptions.url)) return;
    const h = req.headers.authorization ?? "";
    const m = /^Bearer\s+(.+)$/i.exec(h);
    if (!m || !timingSafeEqual(digest(m[1]!.trim()), key))
      throw new ApiError(
        401,
        "invalid or missing API key (Authorization: Bearer KEY)",
        null,
        "invalid_api_key",
      );
  });

  const ready = (): EngineClient => {
    if (loadError) throw new ApiError(500, `the model failed to load: ${loadError}`);
    if (!ctx.engine) throw new ApiError(503, "the model is loading", null, "loading", "unavailable_error");
    return ctx.engine;
  };

  app.get("/health", async (_req, reply) => {
    if (loadError) return reply.status(500).send({ status: "error", error: loadError });
    if (!ctx.engine) return reply.status(503).send({ status: "loading" });
    return { status: "ok" };
  });

  // The base, then each LoRA adapter with parent/root naming the base (as vLLM lists them).
  app.get("/v1/models", async () => {
    const meta = ctx.engine
      ? { meta: { n_ctx: ctx.engine.info.contextLength, n_vocab: ctx.engine.info.vocabSize } }
      : {};
    const model = (id: string, parent: string | null) => ({
      id,
      object: "model",
      created: ctx.created,
      owned_by: "herd",
      root: parent ?? id,
      parent,
      ...meta,
    });
    return {
      object: "list",
      data: [model(ctx.modelName, null), ...ctx.adapterNames.map((n) => model(n, ctx.modelName))],
    };
  });

  app.post("/tokenize", async (req) => {
    const b = asBody(req.body);
    if (typeof b.content !== "string")
      throw new ApiError(400, "'content' must be a string", "content", "invalid_type");
    if (!ctx.codec.encode) throw new ApiError(400, "this model's vocabulary cannot encode text");
    const special = b.add_special === true && ctx.bosId !== null ? [ctx.bosId] : [];
    const tokens = [...special, ...ctx.codec.encode(b.content)];
    if (b.with_pieces === true)
      return { tokens: tokens.map((id) => ({ id, piece: ctx.codec.decode([id]) })) };
    return { tokens };
  });

  app.post("/detokenize", async (req) => {
    const b = asBody(req.body);
    const t = b.tokens;
    const V = ctx.engine?.info.vocabSize ?? Number.MAX_SAFE_INTEGER;
    if (!Array.isArray(t) || t.some((x) => !(Number.isInteger(x) && x >= 0 && x < V)))
      throw new ApiError(
        400,
        "'tokens' must be a list of token ids in the vocabulary",
        "tokens",
        "invalid_type",
      );
    return { content: ctx.codec.decode(t as number[]) };
  });

  app.get("/metrics", async (_req, reply) => {
    const e = ready();
    const s = await e.stats();
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string, value: number) =>
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
    metric("herd_requests_total", "counter", "Generation requests accepted.", s.requestsTotal);
    metric(
      "herd_requests_rejected_total",
      "counter",
      "Generation requests refused (queue full, too long).",
      s.requestsRejected,
    );
    metric("herd_prompt_tokens_total", "counter", "Prompt tokens of finished requests.", s.promptTokensTotal);
    metric(
      "herd_prompt_tokens_cached_total",
      "counter",
      "Prompt tokens taken from the prefix cache.",
      s.cachedTokensTotal,
    );
    metric("herd_generated_tokens_total", "counter", "Tokens generated.", s.generatedTokensTotal);
    metric("herd_queue_depth", "gauge", "Requests waiting for a slot.", s.queueDepth);
    metric("herd_active_requests", "gauge", "Requests being decoded.", s.active);
    metric(
      "herd_tokens_per_second",
      "gauge",
      "Generated tokens per second over the last 10 s.",
      s.tokensPerSecond,
    );
    metric("herd_kv_blocks_used", "gauge", "KV blocks held (sequences and prefix cache).", s.kvBlocksUsed);
    metric("herd_kv_blocks_total", "gauge", "KV blocks in all.", s.kvBlocksTotal);
    lines.push(
      "# HELP herd_time_to_first_token_seconds Time from arrival to the first generated token.",
      "# TYPE herd_time_to_first_token_seconds histogram",
    );
    for (const [i, b] of TTFT_BUCKETS.entries())
      lines.push(`herd_time_to_first_token_seconds_bucket{le="${b}"} ${s.ttftBuckets[i]}`);
    lines.push(
      `herd_time_to_first_token_seconds_bucket{le="+Inf"} ${s.ttftCount}`,
      `herd_time_to_first_token_seconds_sum ${s.ttftSum}`,
      `herd_time_to_first_token_seconds_count ${s.ttftCount}`,
      "# HELP herd_http_requests_total HTTP requests by route.",
      "# TYPE herd_http_requests_total counter",
    );
    for (const [route, n] of ctx.httpRequests) lines.push(`herd_http_requests_total{route="${route}"} ${n}`);
    lines.push(...(ctx.features.codeInterpreter?.metricLines() ?? []));
    reply.type("text/plain; version=0.0.4");
    return `${lines.join("\n")}\n`;
  });

  app.post("/v1/chat/completions", async (req, reply) => chatRoute(ctx, ready(), req, reply));
  app.post("/v1/completions", async (req, reply) => completionsRoute(ctx, ready(), req, reply));
  webRoutes(app);
  return app;
}
