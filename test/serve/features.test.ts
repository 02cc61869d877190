// `herd serve` with its request features wired in, through the official `openai` client: response_format
// json_schema output always parses and validates (ajv), a forced tool call (tool_choice "required") comes
// back as OpenAI tool_calls whose arguments validate against the tool's parameters, and with --guard a
// guard model whose output is no verdict (a random model) fails closed: the request gets the refusal.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Ajv } from "ajv";
import OpenAI from "openai";
import { setBackend } from "../../src/backends/index.js";
import { type Fixture, servedFixture } from "./fixture.js";

let fx: Fixture;
let client: OpenAI;
const model = "tiny-llama3";
const ajv = new Ajv();

before(async () => {
  setBackend("js");
  fx = await servedFixture({ engine: { parallel: 4 } });
  client = new OpenAI({ baseURL: `${fx.served.url}/v1`, apiKey: "unused", maxRetries: 0 });
});
after(async () => {
  await fx.cleanup();
});

const schema = {
  type: "object",
  properties: { ok: { type: "boolean" }, color: { enum: ["red", "green", "blue"] } },
  required: ["ok", "color"],
};

test("response_format json_schema: a random model's reply parses and validates against the schema", async () => {
  for (const seed of [1, 2]) {
    const r = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: `Describe the sky (${seed}).` }],
      max_tokens: 80,
      temperature: 0,
      seed,
      response_format: { type: "json_schema", json_schema: { name: "sky", schema } },
    });
    const c = r.choices[0]!;
    assert.equal(c.finish_reason, "stop", `seed ${seed}: ${c.message.content}`);
    const v = JSON.parse(c.message.content ?? "");
    assert.ok(ajv.validate(schema, v), `seed ${seed}: ${c.message.content} ${ajv.errorsText()}`);
  }
});

test('tool_choice "required": the reply is a tool call whose arguments match the tool\'s parameters', async () => {
  const parameters = {
    type: "object",
    properties: { city: { enum: ["Paris", "Lima"] }, metric: { type: "boolean" } },
    required: ["city", "metric"],
  };
  const r = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: "Weather in Paris?" }],
    max_tokens: 60,
    temperature: 0,
    tools: [{ type: "function", function: { name: "get_weather", parameters } }],
    tool_choice: "required",
  });
  const m = r.choices[0]!.message;
  assert.equal(r.choices[0]!.finish_reason, "tool_calls", JSON.stringify(m));
  assert.equal(m.tool_calls?.length, 1);
  const call = m.tool_calls![0]! as { type: string; function: { name: string; arguments: string } };
  assert.equal(call.function.name, "get_weather");
  assert.ok(ajv.validate(parameters, JSON.parse(call.function.arguments)), call.function.arguments);
  assert.ok(!m.content, "a call's text never shows as content");
});

test("--guard: a guard whose output is no verdict fails closed, and the request gets the refusal", async () => {
  const guarded = await servedFixture({ guard: fx.dir, engine: { parallel: 2 } });
  try {
    const c = new OpenAI({ baseURL: `${guarded.served.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const r = await c.chat.completions.create({
      model,
      messages: [{ role: "user", content: "Hello" }],
      max_tokens: 4,
      temperature: 0,
    });
    assert.equal(r.choices[0]!.finish_reason, "content_filter");
    assert.match(r.choices[0]!.message.content ?? "", /classified as unsafe by the safety guard/);
    assert.equal(r.usage!.completion_tokens, 0);
  } finally {
    await guarded.cleanup();
  }
});
