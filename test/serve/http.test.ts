// `herd serve`'s HTTP API against the official `openai` client and raw fetch: chat (plain and streamed,
// with include_usage), completions with echo + logprobs equal to a direct forward's log-probabilities,
// /tokenize round trip, /health, /metrics, OpenAI error objects for bad input, bearer auth, 32 concurrent
// streaming clients each equal to the same request alone, a disconnecting client freeing its slot, a full
// queue answering 429, and a prefix-cache hit reporting cached_tokens with the same output.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import OpenAI from "openai";
import { setBackend } from "../../src/backends/index.js";
import { logprobOf } from "../../src/serve/engine/engine.js";
import { noGrad } from "../../src/tensor/tape.js";
import { scope } from "../../src/tensor/tensor.js";
import { type Fixture, servedFixture } from "./fixture.js";

let fx: Fixture;
let client: OpenAI;
const model = "tiny-llama3";

before(async () => {
  setBackend("js");
  fx = await servedFixture({ engine: { parallel: 32, maxQueue: 64 } });
  client = new OpenAI({ baseURL: `${fx.served.url}/v1`, apiKey: "unused", maxRetries: 0 });
});
after(async () => {
  await fx.cleanup();
});

// Greedy unless a test says otherwise: sampling a random model's flat distribution over 128K ids sorts
// them all, the slow part of these tests on the js backend.
const chat = (content: string, seed: number, max = 12, temperature = 0) => ({
  model,
  messages: [
    { role: "system" as const, content: "You are terse." },
    { role: "user" as const, content },
  ],
  max_tokens: max,
  temperature,
  seed,
});

test("chat: non-streaming answer with usage and timings; streaming gives the same text and ends in [DONE]", async () => {
  const r = await client.chat.completions.create(chat("Hello there", 1, 8, 0.9));
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices.length, 1);
  const text = r.choices[0]!.message.content ?? "";
  assert.ok(["stop", "length"].includes(r.choices[0]!.finish_reason));
  assert.ok(r.usage!.prompt_tokens > 10);
  assert.ok(r.usage!.completion_tokens >= 1 && r.usage!.completion_tokens <= 12);
  assert.equal(typeof (r as unknown as { timings: { predicted_n: number } }).timings.predicted_n, "number");
  const stream = await client.chat.completions.create({
    ...chat("Hello there", 1, 8, 0.9),
    stream: true,
    stream_options: { include_usage: true },
  });
  let streamed = "";
  let usage: OpenAI.CompletionUsage | null | undefined = null;
  let finish: string | null = null;
  for await (const c of stream) {
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) {
      streamed += ch.delta.content ?? "";
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  assert.equal(streamed, text);
  assert.equal(finish, r.choices[0]!.finish_reason);
  assert.deepEqual(
    { p: usage!.prompt_tokens, c: usage!.completion_tokens },
    { p: r.usage!.prompt_tokens, c: r.usage!.completion_tokens },
  );
  // The raw stream ends with data: [DONE].
  const raw = await fetch(`${fx.served.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...chat("Hi", 2, 3), stream: true }),
  });
  assert.equal(raw.headers.get("content-type")?.startsWith("text/event-stream"), true);
  const body = await raw.text();
  assert.ok(body.trimEnd().endsWith("data: [DONE]"));
  // n choices, each seeded seed + i; logprobs with top alternatives.
  const many = await client.chat.completions.create({
    ...chat("Hi", 3, 5),
    n: 2,
    logprobs: true,
    top_logprobs: 2,
  });
  assert.equal(many.choices.length, 2);
  for (const ch of many.choices) {
    assert.ok(ch.logprobs!.content!.length >= 1);
    for (const l of ch.logprobs!.content!) {
      assert.ok(l.logprob <= 0);
      assert.equal(l.top_logprobs.length, 2);
      assert.ok(l.top_logprobs[0]!.logprob >= l.logprob - 1e-9);
    }
  }
});

test("completions: echo + logprobs give the prompt's log-probabilities of a direct forward", async () => {
  const prompt = "The quick brown fox jumps";
  const r = await client.completions.create({
    model,
    prompt,
    echo: true,
    logprobs: 1,
    max_tokens: 1,
    temperature: 0,
  });
  const ch = r.choices[0]!;
  assert.ok(ch.text.startsWith(prompt));
  const lp = ch.logprobs!;
  const tok = await (
    await fetch(`${fx.served.url}/tokenize`, {
      method: "POST",
      body: JSON.stringify({ content: prompt, add_special: true }),
      headers: { "content-type": "application/json" },
    })
  ).json();
  const ids = (tok as { tokens: number[] }).tokens;
  assert.equal(ids[0], 128000);
  assert.equal(lp.tokens!.length, ids.length + 1, "prompt tokens and the one generated");
  assert.equal(lp.token_logprobs![0], null);
  const V = fx.model.config.vocabSize;
  const all = noGrad(() => scope(() => fx.model.forward(Int32Array.from(ids)).data.slice()));
  for (let i = 1; i < ids.length; i++) {
    const want = logprobOf(all.subarray((i - 1) * V, i * V), ids[i]!, 0).logprob;
    assert.ok(Math.abs(lp.token_logprobs![i]! - want) < 1e-4, `token ${i}`);
  }
  // /detokenize inverts /tokenize.
  const back = await (
    await fetch(`${fx.served.url}/detokenize`, {
      method: "POST",
      body: JSON.stringify({ tokens: ids.slice(1) }),
      headers: { "content-type": "application/json" },
    })
  ).json();
  assert.equal((back as { content: string }).content, prompt);
});

test("/health, /v1/models and /metrics", async () => {
  const h = await fetch(`${fx.served.url}/health`);
  assert.equal(h.status, 200);
  assert.deepEqual(await h.json(), { status: "ok" });
  const models = await client.models.list();
  assert.deepEqual(
    models.data.map((m) => m.id),
    [model],
  );
  const text = await (await fetch(`${fx.served.url}/metrics`)).text();
  const value = (name: string) => {
    const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
    assert.ok(m, `metric ${name}`);
    return Number(m[1]);
  };
  assert.ok(value("herd_requests_total") >= 1);
  assert.ok(value("herd_generated_tokens_total") >= 1);
  assert.equal(value("herd_queue_depth"), 0);
  assert.ok(value("herd_time_to_first_token_seconds_count") >= 1);
  assert.match(text, /# TYPE herd_time_to_first_token_seconds histogram/);
});

test("errors: OpenAI error objects for bad JSON, wrong types, unknown model, max_tokens past the context", async () => {
  const post = (body: string) =>
    fetch(`${fx.served.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
  const badJson = await post("{not json");
  assert.equal(badJson.status, 400);
  const e1 = (await badJson.json()) as { error: { message: string; type: string } };
  assert.match(e1.error.message, /JSON/);
  assert.equal(e1.error.type, "invalid_request_error");
  const wrong = await post(JSON.stringify({ ...chat("x", 1), temperature: "hot" }));
  assert.equal(wrong.status, 400);
  const e2 = (await wrong.json()) as { error: { param: string } };
  assert.equal(e2.error.param, "temperature");
  await assert.rejects(
    client.chat.completions.create({ ...chat("x", 1), model: "gpt-9" }),
    (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && e.param === "model",
  );
  await assert.rejects(
    client.chat.completions.create({ ...chat("x", 1), max_tokens: 100_000 }),
    (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && e.code === "context_length_exceeded",
  );
  await assert.rejects(
    client.chat.completions.create({
      ...chat("x", 1),
      response_format: {
        type: "json_schema",
        json_schema: { name: "s", schema: { type: "string", pattern: "^a+$" } },
      },
    }),
    (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && /pattern/.test(e.message),
  );
  // The server goes on serving.
  const ok = await client.chat.completions.create(chat("still there?", 4, 2));
  assert.equal(ok.choices.length, 1);
});

test("32 concurrent streaming clients each get exactly what the same request gets alone", async () => {
  const reqs = Array.from({ length: 32 }, (_, i) => ({
    ...chat(`Question number ${i}: ${"why ".repeat(i % 7)}`, 50 + i, 3 + (i % 3)),
    temperature: i % 8 === 0 ? 0.8 : 0,
  }));
  const run = async (r: (typeof reqs)[number]) => {
    const s = await client.chat.completions.create({ ...r, stream: true });
    let t = "";
    for await (const c of s) t += c.choices[0]?.delta.content ?? "";
    return t;
  };
  const alone: string[] = [];
  for (const r of reqs.slice(0, 4)) alone.push(await run(r));
  const together = await Promise.all(reqs.map(run));
  for (let i = 0; i < 4; i++) assert.equal(together[i], alone[i], `client ${i}`);
  for (const i of [8, 17, 31]) assert.equal(together[i], await run(reqs[i]!), `client ${i}`);
});

test("a client that disconnects mid-stream frees its slot; the server keeps serving", async () => {
  const ac = new AbortController();
  const res = await fetch(`${fx.served.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...chat("Tell me a long story", 7, 200), stream: true }),
    signal: ac.signal,
  });
  const reader = res.body!.getReader();
  await reader.read();
  ac.abort();
  let active = 1;
  for (let i = 0; i < 200 && active > 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
    active = (await fx.served.ready.then((e) => e.stats())).active;
  }
  assert.equal(active, 0);
  const ok = await client.chat.completions.create(chat("after", 8, 2));
  assert.equal(ok.choices.length, 1);
});

test("prefix cache: a repeated system prompt reports cached_tokens and gives the same output", async () => {
  const system = `You are a helpful assistant. ${"Answer carefully and briefly. ".repeat(8)}`;
  const req = (seed: number) => ({
    model,
    messages: [
      { role: "system" as const, content: system },
      { role: "user" as const, content: "What is two plus two?" },
    ],
    max_tokens: 8,
    seed,
    temperature: 0,
  });
  const first = await client.chat.completions.create(req(11));
  const second = await client.chat.completions.create(req(11));
  assert.ok(second.usage!.prompt_tokens_details!.cached_tokens! >= 48, "full blocks of the shared prompt");
  assert.equal(second.choices[0]!.message.content, first.choices[0]!.message.content);
});

test("auth and a full queue: 401 without the key, 429 with Retry-After when the queue is full", async () => {
  const small = await servedFixture({ apiKey: "sekret", engine: { parallel: 1, maxQueue: 0 } });
  try {
    const noKey = await fetch(`${small.served.url}/v1/models`);
    assert.equal(noKey.status, 401);
    assert.equal(((await noKey.json()) as { error: { code: string } }).error.code, "invalid_api_key");
    assert.equal((await fetch(`${small.served.url}/health`)).status, 200);
    const c = new OpenAI({ baseURL: `${small.served.url}/v1`, apiKey: "sekret", maxRetries: 0 });
    const long = c.chat.completions.create({ ...chat("a long one", 1, 40) });
    await new Promise((r) => setTimeout(r, 50));
    const res = await fetch(`${small.served.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer sekret" },
      body: JSON.stringify(chat("me too", 2, 3)),
    });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get("retry-after"), "1");
    assert.equal(((await res.json()) as { error: { type: string } }).error.type, "rate_limit_error");
    assert.equal((await long).choices.length, 1);
  } finally {
    await small.cleanup();
  }
});
