// POST /v1/chat/completions and POST /v1/completions as OpenAI specifies them (and llama.cpp extends
// them: `timings`, `usage.prompt_tokens_details.cached_tokens`). Chat prompts are the Llama 3.1 dialog
// format (src/tokenizer/chat.ts; `role: tool` goes in as ipython). Streaming is server-sent events ending
// in `data: [DONE]`; `stream_options.include_usage` adds a last chunk with the usage. Completions accept
// `echo` with `logprobs` and return the prompt's own log-probabilities (lm-evaluation-harness's
// loglikelihood requests). A client that disconnects cancels its requests. Sampling defaults are the
// Llama 3 reference's (temperature 0.6, top-p 0.9); without `seed` a random one is drawn.
import { randomBytes, randomInt } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { TextCodec } from "../../generate/codec.js";
import { SAMPLING_DEFAULTS } from "../../generate/sampling.js";
import { ChatFormat, type Message, type Role } from "../../tokenizer/chat.js";
import type { ToolCall } from "../../tokenizer/tools.js";
import type { ConstraintSpec, EngineClient } from "../engine/client.js";
import { type GenerationRequest, RejectedError, type TokenLogprob } from "../engine/types.js";
import { refusalMessage } from "../guard/classifier.js";
import { withCodeInterpreter } from "../tools/codeInterpreter.js";
import { type ChoiceHandle, type ChoiceResult, type ChoiceSink, startChoice } from "./choice.js";
import {
  ApiError,
  asBody,
  type Body,
  optBool,
  optInt,
  optNumber,
  optObject,
  optString,
  stopStrings,
} from "./errors.js";
import type { OpenAITool, ServeFeatures } from "./features.js";
import { type InterpreterResult, type InterpreterSink, startInterpreterChoice } from "./interpreterChoice.js";

export interface ServeContext {
  engine: EngineClient | null;
  codec: TextCodec;
  modelName: string;
  /** LoRA adapters served beside the base, each a `model` name. */
  adapterNames: readonly string[];
  stopIds: readonly number[];
  bosId: number | null;
  features: ServeFeatures;
  created: number;
  httpRequests: Map<string, number>;
}

interface Sampling {
  temperature: number;
  topP: number;
  seed: number;
  n: number;
  stops: string[];
  stream: boolean;
  includeUsage: boolean;
}

function sampling(b: Body): Sampling {
  const so = optObject(b, "stream_options");
  return {
    temperature: optNumber(b, "temperature", 0, 2) ?? SAMPLING_DEFAULTS.temperature,
    topP: optNumber(b, "top_p", 0, 1) || SAMPLING_DEFAULTS.topP,
    seed: optInt(b, "seed", Number.MIN_SAFE_INTEGER) ?? randomInt(2 ** 31),
    n: optInt(b, "n", 1, 16) ?? 1,
    stops: stopStrings(b),
    stream: optBool(b, "stream") ?? false,
    includeUsage: so ? (optBool(so, "include_usage") ?? false) : false,
  };
}

/** The `model` asked for: the base (adapter null) or one of the LoRA adapters; else a 400. */
function checkModel(ctx: ServeContext, b: Body): { name: string; adapter: string | null } {
  const m = optString(b, "model");
  if (m === undefined || m === ctx.modelName) return { name: ctx.modelName, adapter: null };
  if (ctx.adapterNames.includes(m)) return { name: m, adapter: m };
  const names = [ctx.modelName, ...ctx.adapterNames].map((n) => `'${n}'`).join(", ");
  throw new ApiError(400, `unknown model '${m}' (this server has ${names})`, "model", "model_not_found");
}

/** max_tokens (or max_completion_tokens) checked against the context left after the prompt. */
function maxTokens(b: Body, engine: EngineClient, promptTokens: number, fallback: number | null): number {
  const ctx = engine.info.contextLength;
  const param =
    b.max_completion_tokens !== undefined && b.max_completion_tokens !== null
      ? "max_completion_tokens"
      : "max_tokens";
  const asked = optInt(b, param, 0);
  const room = ctx - promptTokens;
  if (room <= 0)
    throw new ApiError(
      400,
      `the prompt is ${promptTokens} tokens; the context length is ${ctx}`,
      "messages",
      "context_length_exceeded",
    );
  if (asked !== undefined && asked > room)
    throw new ApiError(
      400,
      `max_tokens ${asked} plus the prompt's ${promptTokens} tokens exceeds the context length of ${ctx}`,
      param,
      "context_length_exceeded",
    );
  return asked ?? Math.min(room, fallback ?? room);
}

const newId = (prefix: string) => `${prefix}-${randomBytes(12).toString("hex")}`;

/** Submit every choice, or none (a rejection cancels those already taken). */
async function startAll(
  engine: EngineClient,
  specs: (() => Promise<ChoiceHandle>)[],
): Promise<ChoiceHandle[]> {
  const handles: ChoiceHandle[] = [];
  try {
    for (const s of specs) handles.push(await s());
  } catch (e) {
    for (const h of handles) h.cancel();
    if (e instanceof RejectedError) {
      if (e.reason === "queue_full") throw new ApiError(429, e.message, null, "queue_full");
      if (e.reason === "too_long")
        throw new ApiError(400, e.message, "max_tokens", "context_length_exceeded");
      throw new ApiError(400, e.message);
    }
    throw e;
  }
  void engine;
  return handles;
}

function usageOf(results: ChoiceResult[]) {
  const prompt = results[0]?.done.promptTokens ?? 0;
  const completion = results.reduce((n, r) => n + r.done.completionTokens, 0);
  const cached = results[0]?.done.cachedTokens ?? 0;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cached },
  };
}

/** SSE on the raw response; `closed` turns true when the client goes away before the end. */
function sse(reply: FastifyReply, onClose: () => void) {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
  let ended = false;
  res.on("close", () => {
    if (!ended) onClose();
  });
  return {
    send: (obj: unknown) => {
      if (!res.writableEnded) res.write(`data: ${JSON.stringify(obj)}\n\n`);
    },
    end: () => {
      ended = true;
      if (!res.writableEnded) res.end("data: [DONE]\n\n");
    },
  };
}

const errorStatus = (reply: FastifyReply, e: unknown) => {
  if (e instanceof ApiError) {
    if (e.status === 429) reply.header("retry-after", "1");
    throw e;
  }
  throw e;
};

// --- chat ---------------------------------------------------------------------------------------------

function textOf(content: unknown, where: string): string {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  if (Array.isArray(content))
    return content
      .map((p, i) => {
        if (p && typeof p === "object" && (p as Body).type === "text" && typeof (p as Body).text === "string")
          return (p as Body).text as string;
        throw new ApiError(
          400,
          `${where}.content[${i}] must be a text part`,
          `${where}.content`,
          "invalid_type",
        );
      })
      .join("");
  throw new ApiError(
    400,
    `${where}.content must be a string or a list of text parts`,
    `${where}.content`,
    "invalid_type",
  );
}

function messagesOf(b: Body): Message[] {
  const ms = b.messages;
  if (!Array.isArray(ms) || ms.length === 0)
    throw new ApiError(400, "'messages' must be a non-empty list", "messages", "invalid_type");
  return ms.map((m, i): Message => {
    const where = `messages[${i}]`;
    if (!m || typeof m !== "object")
      throw new ApiError(400, `${where} must be an object`, where, "invalid_type");
    const mm = m as Body;
    const role = mm.role === "developer" ? "system" : mm.role;
    if (!["system", "user", "assistant", "tool", "ipython"].includes(role as string))
      throw new ApiError(
        400,
        `${where}.role '${String(mm.role)}' is not system, user, assistant or tool`,
        `${where}.role`,
        "invalid_value",
      );
    const out: Message = { role: role as Role, content: textOf(mm.content, where) };
    if (role === "assistant" && Array.isArray(mm.tool_calls) && mm.tool_calls.length > 0)
      out.toolCalls = mm.tool_calls.map((c: Body, j: number): ToolCall => {
        const f = (c?.function ?? {}) as Body;
        if (typeof f.name !== "string")
          throw new ApiError(
            400,
            `${where}.tool_calls[${j}].function.name must be a string`,
            `${where}.tool_calls`,
            "invalid_type",
          );
        let args: ToolCall["arguments"] = {};
        try {
          args =
            typeof f.arguments === "string"
              ? JSON.parse(f.arguments || "{}")
              : ((f.arguments as ToolCall["arguments"]) ?? {});
        } catch {
          throw new ApiError(
            400,
            `${where}.tool_calls[${j}].function.arguments is not JSON`,
            `${where}.tool_calls`,
            "invalid_value",
          );
        }
        return { toolName: f.name, arguments: args, ...(typeof c.id === "string" ? { callId: c.id } : {}) };
      });
    return out;
  });
}

function toolsOf(b: Body): OpenAITool[] | null {
  const t = b.tools;
  if (t === undefined || t === null) return null;
  if (!Array.isArray(t) || t.some((x) => !x || typeof x !== "object" || typeof x.function?.name !== "string"))
    throw new ApiError(
      400,
      "'tools' must be a list of {type: 'function', function: {name, parameters}}",
      "tools",
      "invalid_type",
    );
  return t.length > 0 ? (t as OpenAITool[]) : null;
}

const openAICall = (c: ToolCall, k: number) => ({
  index: k,
  id: c.callId ?? `call_${randomBytes(9).toString("hex")}`,
  type: "function" as const,
  function: { name: c.toolName, arguments: JSON.stringify(c.arguments) },
});

export async function chatRoute(
  ctx: ServeContext,
  engine: EngineClient,
  req: FastifyRequest,
  reply: FastifyReply,
): Promise<unknown> {
  const b = asBody(req.body);
  const served = checkModel(ctx, b);
  const tokenizer = ctx.codec.tokenizer;
  if (!tokenizer)
    throw new ApiError(
      400,
      "chat needs the Llama 3 tokenizer; this model has another vocabulary (use /v1/completions)",
    );
  const format = new ChatFormat(tokenizer);
  const s = sampling(b);
  let messages = messagesOf(b);
  const f = ctx.features;
  const tools = toolsOf(b);
  const choice = b.tool_choice ?? "auto";
  const useTools = tools !== null && choice !== "none";
  let constraint: ConstraintSpec | null = null;
  if (useTools) {
    if (!f.toolStream || !f.toolDialog)
      throw new ApiError(400, "tool calling is not available on this server", "tools", "unsupported");
    try {
      messages = f.toolDialog(b.messages as unknown[], tools);
    } catch (e) {
      throw new ApiError(400, (e as Error).message, "messages", "invalid_value");
    }
    if (choice === "required" || (typeof choice === "object" && choice !== null)) {
      const name =
        typeof choice === "object" ? ((choice as Body).function as Body | undefined)?.name : undefined;
      const chosen = name === undefined ? tools : tools.filter((t) => t.function.name === name);
      if (chosen.length === 0)
        throw new ApiError(400, `tool_choice names no tool in 'tools'`, "tool_choice", "invalid_value");
      if (!f.structuredOutput)
        throw new ApiError(
          400,
          "a required tool call needs structured output, not available on this server",
          "tool_choice",
          "unsupported",
        );
      constraint = { type: "tool_call", tools: chosen };
    } else if (choice !== "auto")
      throw new ApiError(
        400,
        "'tool_choice' must be none, auto, required or a named function",
        "tool_choice",
        "invalid_value",
      );
  }
  const rf = optObject(b, "response_format");
  if (rf && rf.type !== "text") {
    if (!f.structuredOutput)
      throw new ApiError(
        400,
        "structured output is not available on this server",
        "response_format",
        "unsupported",
      );
    if (rf.type === "json_object") constraint = { type: "json", schema: null };
    else if (rf.type === "json_schema") {
      const js = rf.json_schema as Body | undefined;
      if (!js || typeof js.schema !== "object" || js.schema === null)
        throw new ApiError(
          400,
          "response_format.json_schema.schema must be an object",
          "response_format",
          "invalid_type",
        );
      constraint = { type: "json", schema: js.schema as object };
    } else
      throw new ApiError(
        400,
        "response_format.type must be text, json_object or json_schema",
        "response_format",
        "invalid_value",
      );
  }
  // The built-in code interpreter (--code-interpreter) for requests without tools of their own.
  const interpreter = tools === null ? (f.codeInterpreter ?? null) : null;
  if (interpreter) messages = withCodeInterpreter(messages);
  const wantLogprobs = optBool(b, "logprobs") ?? false;
  const topLogprobs = optInt(b, "top_logprobs", 0, 20) ?? 0;
  const prompt = format.encodeDialogPrompt(messages);
  const max = maxTokens(b, engine, prompt.length, null);
  const stopIds = [...new Set([...ctx.stopIds, ...format.stopIds()])];

  // Llama Guard on the user's turn: an unsafe request gets a refusal, nothing is generated.
  const turns = messages.filter((m) => m.role === "user" || m.role === "assistant") as {
    role: "user" | "assistant";
    content: string;
  }[];
  const id = newId("chatcmpl");
  const head = { id, created: Math.floor(Date.now() / 1000), model: served.name };
  if (f.guard && turns.at(-1)?.role === "user") {
    const v = await f.guard.classify(turns);
    if (!v.safe) {
      const content = refusalMessage(v, "input");
      const usage = {
        prompt_tokens: prompt.length,
        completion_tokens: 0,
        total_tokens: prompt.length,
        prompt_tokens_details: { cached_tokens: 0 },
      };
      if (s.stream) {
        const out = sse(reply, () => {});
        out.send({
          ...head,
          object: "chat.completion.chunk",
          choices: [{ index: 0, delta: { role: "assistant", content }, logprobs: null, finish_reason: null }],
        });
        out.send({
          ...head,
          object: "chat.completion.chunk",
          choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: "content_filter" }],
        });
        if (s.includeUsage) out.send({ ...head, object: "chat.completion.chunk", choices: [], usage });
        out.end();
        return reply;
      }
      return {
        ...head,
        object: "chat.completion",
        choices: [
          {
            index: 0,
            message: { role: "assistant", content },
            logprobs: null,
            finish_reason: "content_filter",
          },
        ],
        usage,
      };
    }
  }

  const request = (i: number): GenerationRequest => ({
    prompt,
    maxTokens: max,
    temperature: s.temperature,
    topP: s.topP,
    seed: s.seed + i,
    stopIds,
    logprobs: wantLogprobs ? topLogprobs : null,
    adapter: served.adapter,
  });
  const lp = (l: TokenLogprob) => {
    const tok = tokenizer.decode([l.id]);
    return {
      token: tok,
      logprob: l.logprob,
      bytes: [...Buffer.from(tok)],
      top_logprobs: l.top.map((t) => {
        const tt = tokenizer.decode([t.id]);
        return { token: tt, logprob: t.logprob, bytes: [...Buffer.from(tt)] };
      }),
    };
  };
  const start = (i: number, sink: InterpreterSink) => {
    const o = { stops: s.stops, bosId: ctx.bosId, constraint, sink };
    if (interpreter) return startInterpreterChoice(engine, ctx.codec, request(i), o, interpreter, format);
    return startChoice(engine, ctx.codec, request(i), { ...o, tools: useTools ? f.toolStream!() : null });
  };
  const guardReply = f.guard;
  const handles: ChoiceHandle[] = [];
  const cancelAll = () => {
    for (const h of handles) h.cancel();
  };

  if (s.stream) {
    let out: ReturnType<typeof sse> | null = null;
    const started: ChoiceHandle[] = [];
    const withheld = new Set<number>();
    const chunk = (i: number, delta: object, finish: string | null, logprobs: object | null = null) =>
      out?.send({
        ...head,
        object: "chat.completion.chunk",
        choices: [{ index: i, delta, logprobs, finish_reason: finish }],
      });
    const sinks = Array.from({ length: s.n }, (_, i): InterpreterSink => {
      let callIndex = 0;
      let released = "";
      let pending = "";
      const write = (t: string, lps: TokenLogprob[]) =>
        chunk(i, t === "" ? {} : { content: t }, null, wantLogprobs ? { content: lps.map(lp) } : null);
      return {
        content: async (t, lps) => {
          if (withheld.has(i)) return;
          if (!guardReply) return write(t, lps);
          pending += t;
          if (!/[.!?\n]\s*$/.test(pending)) return;
          const v = await guardReply.classify([...turns, { role: "assistant", content: released + pending }]);
          if (!v.safe) {
            withheld.add(i);
            started[i]?.cancel();
            chunk(i, { content: refusalMessage(v, "output") }, null);
            return;
          }
          released += pending;
          write(pending, lps);
          pending = "";
        },
        toolCalls: (calls) => {
          if (withheld.has(i)) return;
          chunk(i, { tool_calls: calls.map((c) => openAICall(c, callIndex++)) }, null);
        },
        codeCall: (call, k) => {
          if (!withheld.has(i)) chunk(i, { code_interpreter_calls: [{ index: k, ...call }] }, null);
        },
        // The guard's last look at text held since the last sentence boundary happens in `finishStream`.
        ...({
          flush: async () => {
            if (!guardReply || withheld.has(i) || pending === "") return;
            const v = await guardReply.classify([
              ...turns,
              { role: "assistant", content: released + pending },
            ]);
            if (!v.safe) {
              withheld.add(i);
              chunk(i, { content: refusalMessage(v, "output") }, null);
            } else write(pending, []);
            pending = "";
          },
        } as object),
      };
    });
    try {
      const hs = await startAll(
        engine,
        sinks.map((sink, i) => () => start(i, sink)),
      );
      handles.push(...hs);
      started.push(...hs);
    } catch (e) {
      return errorStatus(reply, e);
    }
    out = sse(reply, cancelAll);
    for (let i = 0; i < s.n; i++) chunk(i, { role: "assistant", content: "" }, null);
    const results = await Promise.all(
      handles.map(async (h, i) => {
        const r = await h.result;
        await (sinks[i] as ChoiceSink & { flush: () => Promise<void> }).flush();
        chunk(
          i,
          {},
          withheld.has(i) ? "content_filter" : r.finishReason === "cancelled" ? "stop" : r.finishReason,
        );
        return r;
      }),
    );
    if (s.includeUsage)
      out.send({
        ...head,
        object: "chat.completion.chunk",
        choices: [],
        usage: usageOf(results),
        timings: results[0]?.done.timings,
      });
    out.end();
    return reply;
  }

  let closed = false;
  reply.raw.on("close", () => {
    if (!reply.raw.writableFinished) {
      closed = true;
      cancelAll();
    }
  });
  const nop: ChoiceSink = { content: () => {} };
  try {
    handles.push(
      ...(await startAll(
        engine,
        Array.from({ length: s.n }, (_, i) => () => start(i, nop)),
      )),
    );
  } catch (e) {
    return errorStatus(reply, e);
  }
  if (closed) cancelAll();
  const results = await Promise.all(handles.map((h) => h.result));
  const choices = await Promise.all(
    results.map(async (r, i) => {
      let content: string | null = r.text;
      let finish: string = r.finishReason === "cancelled" ? "stop" : r.finishReason;
      if (guardReply && r.toolCalls.length === 0) {
        const v = await guardReply.classify([...turns, { role: "assistant", content: r.text }]);
        if (!v.safe) {
          content = refusalMessage(v, "output");
          finish = "content_filter";
        }
      }
      const message: Body = {
        role: "assistant",
        content: r.toolCalls.length > 0 && content === "" ? null : content,
      };
      if (r.toolCalls.length > 0 && finish !== "content_filter")
        message.tool_calls = r.toolCalls.map(openAICall).map(({ index: _, ...c }) => c);
      const ran = (r as Partial<InterpreterResult>).codeCalls;
      if (ran && ran.length > 0) message.code_interpreter_calls = ran;
      return {
        index: i,
        message,
        logprobs: wantLogprobs ? { content: r.logprobs.map(lp) } : null,
        finish_reason: finish,
      };
    }),
  );
  return {
    ...head,
    object: "chat.completion",
    choices,
    usage: usageOf(results),
    timings: results[0]?.done.timings,
  };
}

// --- completions --------------------------------------------------------------------------------------

function promptsOf(ctx: ServeContext, b: Body, vocab: number): number[][] {
  const p = b.prompt;
  const enc = (text: string) => {
    if (!ctx.codec.encode)
      throw new ApiError(400, "this model's vocabulary cannot encode text; send token ids", "prompt");
    return [...(ctx.bosId !== null ? [ctx.bosId] : []), ...ctx.codec.encode(text)];
  };
  const ids = (x: unknown[]) => {
    if (
      x.length === 0 ||
      x.some((t) => !(Number.isInteger(t) && (t as number) >= 0 && (t as number) < vocab))
    )
      throw new ApiError(
        400,
        "'prompt' token ids must be integers in the vocabulary",
        "prompt",
        "invalid_value",
      );
    return x as number[];
  };
  if (typeof p === "string") return [enc(p)];
  if (Array.isArray(p) && p.length > 0) {
    if (p.every((x) => typeof x === "string")) return (p as string[]).map(enc);
    if (p.every((x) => typeof x === "number")) return [ids(p)];
    if (p.every((x) => Array.isArray(x))) return (p as unknown[][]).map(ids);
  }
  throw new ApiError(
    400,
    "'prompt' must be a string, a list of strings, or token ids",
    "prompt",
    "invalid_type",
  );
}

export async function completionsRoute(
  ctx: ServeContext,
  engine: EngineClient,
  req: FastifyRequest,
  reply: FastifyReply,
): Promise<unknown> {
  const b = asBody(req.body);
  const served = checkModel(ctx, b);
  const s = sampling(b);
  const echo = optBool(b, "echo") ?? false;
  const logprobs = optInt(b, "logprobs", 0, 20);
  const prompts = promptsOf(ctx, b, engine.info.vocabSize);
  const maxes = prompts.map((p) => maxTokens(b, engine, p.length, 16));
  const id = newId("cmpl");
  const head = { id, created: Math.floor(Date.now() / 1000), model: served.name };
  const tokenStr = (t: number) => ctx.codec.decode([t]);
  /** A prompt as text (the BOS the server put first is not part of it). */
  const promptText = (p: number[]) => ctx.codec.decode(p[0] === ctx.bosId ? p.slice(1) : p);
  const handles: ChoiceHandle[] = [];
  const cancelAll = () => {
    for (const h of handles) h.cancel();
  };
  const specs: { prompt: number[]; index: number; req: GenerationRequest }[] = [];
  for (const [pi, prompt] of prompts.entries())
    for (let i = 0; i < s.n; i++)
      specs.push({
        prompt,
        index: pi * s.n + i,
        req: {
          prompt,
          maxTokens: maxes[pi]!,
          temperature: s.temperature,
          topP: s.topP,
          seed: s.seed + i,
          stopIds: [...ctx.stopIds],
          logprobs: logprobs ?? null,
          promptLogprobs: echo && logprobs !== undefined,
          adapter: served.adapter,
        },
      });
  let out: ReturnType<typeof sse> | null = null;
  const sinks = specs.map(
    (sp): ChoiceSink => ({
      content: (t) => {
        if (t !== "")
          out?.send({
            ...head,
            object: "text_completion",
            choices: [{ index: sp.index, text: t, logprobs: null, finish_reason: null }],
          });
      },
    }),
  );
  try {
    handles.push(
      ...(await startAll(
        engine,
        specs.map(
          (sp, k) => () =>
            startChoice(engine, ctx.codec, sp.req, {
              stops: s.stops,
              bosId: ctx.bosId,
              constraint: null,
              tools: null,
              sink: s.stream ? sinks[k]! : { content: () => {} },
            }),
        ),
      )),
    );
  } catch (e) {
    return errorStatus(reply, e);
  }
  if (s.stream) {
    out = sse(reply, cancelAll);
    if (echo)
      for (const sp of specs)
        out.send({
          ...head,
          object: "text_completion",
          choices: [{ index: sp.index, text: promptText(sp.prompt), logprobs: null, finish_reason: null }],
        });
  } else
    reply.raw.on("close", () => {
      if (!reply.raw.writableFinished) cancelAll();
    });
  const results = await Promise.all(handles.map((h) => h.result));
  const finish = (r: ChoiceResult) => (r.finishReason === "cancelled" ? "stop" : r.finishReason);
  if (s.stream && out) {
    for (const [k, r] of results.entries())
      out.send({
        ...head,
        object: "text_completion",
        choices: [{ index: specs[k]!.index, text: "", logprobs: null, finish_reason: finish(r) }],
      });
    if (s.includeUsage)
      out.send({ ...head, object: "text_completion", choices: [], usage: usageOf(results) });
    out.end();
    return reply;
  }
  const choices = results.map((r, k) => {
    const sp = specs[k]!;
    const echoed = echo ? promptText(sp.prompt) : "";
    let lp: Body | null = null;
    if (logprobs !== undefined) {
      const entries: { id: number; lp: TokenLogprob | null }[] = [];
      if (echo) {
        entries.push({ id: sp.prompt[0]!, lp: null });
        for (const [j, l] of (r.done.promptLogprobs ?? []).entries())
          entries.push({ id: sp.prompt[j + 1]!, lp: l });
      }
      for (const l of r.logprobs) entries.push({ id: l.id, lp: l });
      const tokens = entries.map((e) => tokenStr(e.id));
      const offsets: number[] = [];
      let at = 0;
      for (const t of tokens) {
        offsets.push(at);
        at += t.length;
      }
      lp = {
        tokens,
        token_logprobs: entries.map((e) => e.lp?.logprob ?? null),
        top_logprobs: entries.map((e) =>
          e.lp ? Object.fromEntries(e.lp.top.map((t) => [tokenStr(t.id), t.logprob])) : null,
        ),
        text_offset: offsets,
      };
    }
    return { index: sp.index, text: echoed + r.text, logprobs: lp, finish_reason: finish(r) };
  });
  const usage = {
    prompt_tokens: prompts.reduce((n, p) => n + p.length, 0),
    completion_tokens: results.reduce((n, r) => n + r.done.completionTokens, 0),
    total_tokens: 0,
    prompt_tokens_details: { cached_tokens: results.reduce((n, r) => n + r.done.cachedTokens, 0) / s.n },
  };
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  return { ...head, object: "text_completion", choices, usage, timings: results[0]?.done.timings };
}
