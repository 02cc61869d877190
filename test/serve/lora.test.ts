// `herd serve --lora NAME=DIR` against the official `openai` client: two PEFT adapters (written by
// posttrain's saveAdapter, with non-zero B so they change the output) served beside the tiny base.
// Requests for adapter x, adapter y and the base sent concurrently each get exactly what the same request
// gets alone (they share decode steps); each adapter's output differs from the base's; /v1/models lists
// the base and the adapters (parent naming the base); an unknown name is OpenAI's model_not_found error;
// the prefix cache never serves one adapter's K/V to another (cached_tokens). Loading checks an adapter
// against the base (target modules, tensor shapes) with errors naming the adapter, its file and field,
// and `--lora` values parse as NAME=DIR.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import OpenAI from "openai";
import { setBackend } from "../../src/backends/index.js";
import { loraSpecs } from "../../src/cli/serve.js";
import { Rng } from "../../src/core/rng.js";
import { UsageError } from "../../src/core/schema.js";
import { initWeights, Llama } from "../../src/model/index.js";
import { applyLora, type LoraOptions, saveAdapter } from "../../src/posttrain/index.js";
import { loadRowAdapters, serve } from "../../src/serve/index.js";
import { type Fixture, servedFixture, tinyLlama3 } from "./fixture.js";

let fx: Fixture;
let client: OpenAI;
let tmp: string;
const base = "tiny-llama3";

/** Write an adapter of `opts` for the fixture's base to `dir`, with B drawn non-zero. */
async function writeAdapter(dir: string, opts: LoraOptions, seed: number, model = tinyLlama3()) {
  const lora = applyLora(model, { ...opts, seed });
  const rng = new Rng(seed + 100);
  for (const m of lora.modules) for (let i = 0; i < m.B.size; i++) m.B.data[i] = rng.next() - 0.5;
  await saveAdapter(lora, dir, { baseModel: base });
  lora.remove();
  model.dispose();
}

before(async () => {
  setBackend("js");
  tmp = mkdtempSync(join(tmpdir(), "herd-serve-lora-"));
  await writeAdapter(join(tmp, "x"), { rank: 4, alpha: 8, targets: ["q_proj", "v_proj"] }, 1);
  await writeAdapter(join(tmp, "y"), { rank: 2, alpha: 4, targets: "all-linear" }, 2);
  fx = await servedFixture({
    engine: { parallel: 16 },
    lora: [
      { name: "x", dir: join(tmp, "x") },
      { name: "y", dir: join(tmp, "y") },
    ],
  });
  client = new OpenAI({ baseURL: `${fx.served.url}/v1`, apiKey: "unused", maxRetries: 0 });
});
after(async () => {
  await fx.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

const chat = (model: string, content: string, seed: number, temperature = 0, system = "You are terse.") => ({
  model,
  messages: [
    { role: "system" as const, content: system },
    { role: "user" as const, content },
  ],
  max_tokens: 10,
  temperature,
  seed,
});

type ChatReq = ReturnType<typeof chat>;

async function answer(req: ChatReq, stream: boolean): Promise<{ text: string; model: string }> {
  if (!stream) {
    const r = await client.chat.completions.create(req);
    return { text: r.choices[0]!.message.content ?? "", model: r.model };
  }
  let text = "";
  let model = "";
  for await (const c of await client.chat.completions.create({ ...req, stream: true })) {
    model = c.model;
    text += c.choices[0]?.delta.content ?? "";
  }
  return { text, model };
}

test("/v1/models lists the base and each adapter, parent naming the base", async () => {
  const list = await client.models.list();
  const ids = list.data.map((m) => m.id);
  assert.deepEqual(ids, [base, "x", "y"]);
  const [b, x] = list.data as unknown as { id: string; parent: string | null; root: string }[];
  assert.equal(b!.parent, null);
  assert.equal(x!.parent, base);
  assert.equal(x!.root, base);
});

test("adapters x, y and the base batched together each give what the request gives alone", async () => {
  const reqs: { req: ChatReq; stream: boolean }[] = [];
  for (const [i, model] of ["x", "y", base, "x", "y", base].entries())
    reqs.push({
      req: chat(model, `Tell me about ${i % 3 === 0 ? "cats" : "dogs"}`, 7 + i, 0.9),
      stream: i % 2 === 1,
    });
  const together = await Promise.all(reqs.map((r) => answer(r.req, r.stream)));
  for (const [i, r] of reqs.entries()) {
    const alone = await answer(r.req, false);
    assert.equal(together[i]!.text, alone.text, `request ${i} (${r.req.model}) batched equals alone`);
    assert.equal(together[i]!.model, r.req.model, "the response names the model it ran");
  }
  // The same request (seed) under each adapter and the base: three different distributions, so three
  // different samples and first-token log-probabilities.
  const same = await Promise.all(
    ["x", "y", base].map((m) =>
      client.chat.completions.create({ ...chat(m, "Hello", 3, 0.9), logprobs: true }),
    ),
  );
  const text = same.map((r) => r.choices[0]!.message.content);
  const first = same.map((r) => r.choices[0]!.logprobs!.content![0]!.logprob);
  assert.notEqual(text[0], text[2], "adapter x changes the output");
  assert.notEqual(text[1], text[2], "adapter y changes the output");
  assert.notEqual(text[0], text[1]);
  assert.notEqual(first[0], first[2]);
  assert.notEqual(first[1], first[2]);
  // /v1/completions takes the adapter too.
  const comp = await Promise.all(
    ["x", base].map((model) =>
      client.completions.create({ model, prompt: "Once upon", max_tokens: 6, temperature: 0 }),
    ),
  );
  assert.equal(comp[0]!.model, "x");
  assert.notEqual(comp[0]!.choices[0]!.text, comp[1]!.choices[0]!.text);
});

test("an unknown model name is OpenAI's model_not_found error naming the served ones", async () => {
  await assert.rejects(client.chat.completions.create(chat("z", "Hi", 1)), (e: unknown) => {
    const err = e as InstanceType<typeof OpenAI.APIError>;
    assert.equal(err.status, 400);
    assert.equal(err.code, "model_not_found");
    assert.match(err.message, /unknown model 'z'.*'tiny-llama3', 'x', 'y'/);
    return true;
  });
});

test("the prefix cache is keyed by adapter: the same prompt under another adapter is not served from it", async () => {
  const system = `You are a careful assistant. ${"Keep every answer short and plain. ".repeat(8)}`;
  const req = (model: string) => chat(model, "What is two plus two?", 11, 0, system);
  const cached = async (model: string) => {
    const r = await client.chat.completions.create(req(model));
    return { n: r.usage!.prompt_tokens_details!.cached_tokens ?? 0, text: r.choices[0]!.message.content };
  };
  const x1 = await cached("x");
  assert.equal(x1.n, 0, "first time under x");
  const y1 = await cached("y");
  assert.equal(y1.n, 0, "x's blocks are not y's");
  const b1 = await cached(base);
  assert.equal(b1.n, 0, "nor the base's");
  const x2 = await cached("x");
  const y2 = await cached("y");
  const b2 = await cached(base);
  for (const [name, hit, first] of [
    ["x", x2, x1],
    ["y", y2, y1],
    [base, b2, b1],
  ] as const) {
    assert.ok(hit.n >= 48, `${name}: a repeat hits its own cached blocks (${hit.n})`);
    assert.equal(hit.text, first.text, `${name}: a hit gives the same output`);
  }
});

test("an adapter that does not fit the base is refused naming the adapter, the file and the field", async () => {
  const model = tinyLlama3();
  try {
    // A target module that is no Llama module.
    const bad = join(tmp, "bad-target");
    await writeAdapter(bad, { rank: 2, alpha: 2, targets: ["q_proj"] }, 3);
    const cfgFile = join(bad, "adapter_config.json");
    const cfg = JSON.parse(readFileSync(cfgFile, "utf8"));
    writeFileSync(cfgFile, JSON.stringify({ ...cfg, target_modules: ["qkv_proj"] }));
    await assert.rejects(
      loadRowAdapters(model, [{ name: "bad", dir: bad }]),
      /LoRA adapter 'bad' \(.*bad-target\): .*adapter_config\.json: field 'target_modules'.*'qkv_proj'/,
    );
    // An adapter trained on a base of another width: the tensor's shape is named.
    const wide = join(tmp, "wide");
    const c = { ...model.config, hiddenSize: 48, headDim: 24 };
    await writeAdapter(
      wide,
      { rank: 2, alpha: 2, targets: ["q_proj"] },
      4,
      new Llama(c, initWeights(c, { seed: 1 })),
    );
    await assert.rejects(
      loadRowAdapters(model, [{ name: "wide", dir: wide }]),
      /LoRA adapter 'wide' .*adapter_model\.safetensors: tensor 'base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight' has shape \[2,48\], expected \[2,32\]/,
    );
    // A directory that is not an adapter.
    await assert.rejects(loadRowAdapters(model, [{ name: "none", dir: tmp }]), /no adapter_config\.json/);
  } finally {
    model.dispose();
  }
  // Names: not the base's, not twice (refused before anything loads).
  await assert.rejects(
    serve({ model: fx.dir, port: 0, lora: [{ name: base, dir: join(tmp, "x") }] }),
    /adapter name 'tiny-llama3' is the base model's name/,
  );
  await assert.rejects(
    serve({
      model: fx.dir,
      port: 0,
      lora: [
        { name: "a", dir: join(tmp, "x") },
        { name: "a", dir: join(tmp, "y") },
      ],
    }),
    /adapter name 'a' is given twice/,
  );
});

test("--lora values parse as NAME=DIR, split at the first '='", () => {
  assert.deepEqual(loraSpecs(["math=/a/b", "chat=./c=d"]), [
    { name: "math", dir: "/a/b" },
    { name: "chat", dir: "./c=d" },
  ]);
  for (const v of ["nodir", "=dir", "name="]) assert.throws(() => loraSpecs([v]), UsageError);
});
