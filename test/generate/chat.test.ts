// The chat session and `herd chat`: the token stream the model sees against the dialog format, and a
// dialog that outgrows its context: the oldest turns dropped (the system message kept), a message too
// long even alone refused with the conversation unchanged, a reply that fills the context stopped.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { ChatSession, ContextFullError, generate } from "../../src/generate/index.js";
import { initWeights, Llama, preset, saveModel } from "../../src/model/index.js";
import { ChatFormat, Tokenizer } from "../../src/tokenizer/index.js";
import { repoPath } from "../helpers.js";

const cli = repoPath("dist", "src", "cli", "main.js");
const tmp = mkdtempSync(join(tmpdir(), "herd-chat-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A random two-layer model with the Llama 3 vocabulary (chat needs its special tokens). */
function llama3Vocab(): Llama {
  const c = { ...preset("tiny"), hiddenSize: 32, numAttentionHeads: 2, numKeyValueHeads: 1, headDim: 16 };
  const cfg = {
    ...c,
    numHiddenLayers: 2,
    intermediateSize: 64,
    vocabSize: 128256,
    bosTokenId: 128000,
    eosTokenIds: [128001, 128008, 128009],
  };
  return new Llama(cfg, initWeights(cfg, { seed: 5 }), "init");
}

test("chat session: the model sees exactly the dialog format; replies on the kept cache equal a fresh run", () => {
  const m = llama3Vocab();
  const tok = Tokenizer.llama3();
  const format = new ChatFormat(tok);
  const chat = new ChatSession(m, format, { temperature: 0, maxNewTokens: 5, system: "Be brief." });
  const r1 = chat.reply("Hello");
  const r2 = chat.reply("And?");
  const eot = tok.special("<|eot_id|>");
  const end = (r: typeof r1) => (r.finishReason === "stop_id" ? [r.stopId!] : [r.tokens.at(-1)!, eot]);
  const body = (r: typeof r1) => (r.finishReason === "stop_id" ? r.tokens : r.tokens.slice(0, -1));
  const want = [
    ...format.encodeDialogPrompt([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hello" },
    ]),
    ...body(r1),
    ...end(r1),
    ...format.encodeMessage({ role: "user", content: "And?" }),
    ...format.encodeHeader("assistant"),
    ...body(r2),
  ];
  assert.deepEqual(chat.history, want);
  assert.equal(chat.cachedTokens, want.length);
  assert.equal(chat.messages.length, 5);
  // The second reply, made on the cache kept across turns, equals a fresh greedy run over the same ids.
  const prompt2 = want.slice(0, want.length - body(r2).length);
  const fresh = generate(m, prompt2, { maxNewTokens: 5, temperature: 0, stopIds: format.stopIds() });
  assert.deepEqual(fresh.tokens, r2.tokens);
  chat.reset();
  assert.equal(chat.cachedTokens, 0);
  assert.equal(chat.messages.length, 1);
  chat.dispose();
  m.dispose();
});

test("herd chat answers piped lines with tokens/s", async () => {
  const m = llama3Vocab();
  const dir = join(tmp, "chat-model");
  await saveModel(dir, m, { dtype: "bf16" });
  m.dispose();
  const r = spawnSync(
    process.execPath,
    [cli, "chat", "--model", dir, "--max-tokens", "4", "--temperature", "0"],
    {
      input: "Hello there\n/reset\nAgain\n",
      encoding: "utf8",
    },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.match(/assistant> /g)?.length, 2);
  assert.match(r.stdout, /tokens\/s/);
  assert.match(r.stdout, /\(new dialog\)/);
});

test("a dialog past its context drops the oldest turns, keeps the system message, and replies as a fresh run", () => {
  const m = llama3Vocab();
  const format = new ChatFormat(Tokenizer.llama3());
  const system = { role: "system" as const, content: "Be brief." };
  const chat = new ChatSession(m, format, {
    temperature: 0,
    maxNewTokens: 6,
    system: system.content,
    contextTokens: 96,
  });
  const dropped: number[] = [];
  let rebuilt = 0;
  for (let i = 0; i < 12; i++) {
    const before = chat.messages.slice();
    const r = chat.reply(`Tell me about the number ${i} in a few words, please.`, undefined, (n) =>
      dropped.push(n),
    );
    assert.ok(chat.cachedTokens <= 96, `turn ${i}: ${chat.cachedTokens} cached tokens in a 96-token context`);
    assert.deepEqual(chat.messages[0], system, `turn ${i}: the system message stays first`);
    if (r.droppedTurns === 0) continue;
    rebuilt++;
    // The rebuilt cache holds exactly the kept dialog and this message; the kept turns are the newest.
    const kept = chat.messages.slice(0, -1);
    assert.deepEqual(kept.slice(1, -1), before.slice(1 + 2 * r.droppedTurns));
    const prompt = format.encodeDialogPrompt(kept);
    assert.deepEqual(chat.history.slice(0, prompt.length), prompt);
    const fresh = generate(m, prompt, {
      maxNewTokens: 6,
      temperature: 0,
      stopIds: format.stopIds(),
      contextTokens: 96,
    });
    assert.deepEqual(fresh.tokens, r.tokens, `turn ${i}: the reply after dropping equals a fresh run`);
  }
  assert.ok(rebuilt >= 2, `12 turns of ~30 tokens in 96 should drop turns more than once (did ${rebuilt})`);
  assert.equal(dropped.length, rebuilt);
  chat.dispose();
  m.dispose();
});

test("a message too long for the context is refused and the conversation is unchanged", () => {
  const m = llama3Vocab();
  const format = new ChatFormat(Tokenizer.llama3());
  const chat = new ChatSession(m, format, {
    temperature: 0,
    maxNewTokens: 4,
    system: "Hi.",
    contextTokens: 64,
  });
  chat.reply("Hello");
  const messages = structuredClone(chat.messages);
  const history = chat.history.slice();
  const long = "word ".repeat(80);
  assert.throws(
    () => chat.reply(long),
    (e: unknown) => e instanceof ContextFullError && e.tokens > 64 && e.contextTokens === 64,
  );
  assert.deepEqual(chat.messages, messages);
  assert.deepEqual(chat.history, history);
  // And the dialog goes on, on the same cache, as if the long message was never typed.
  const r = chat.reply("And?");
  assert.equal(r.droppedTurns, 0);
  assert.equal(chat.messages.length, 5);
  assert.throws(() => new ChatSession(m, format, { contextTokens: 0 }), /contextTokens 0/);
  chat.dispose();
  m.dispose();
});

test("a reply that fills the context stops with finishReason context, and the next turn makes room", () => {
  const m = llama3Vocab();
  const format = new ChatFormat(Tokenizer.llama3());
  const chat = new ChatSession(m, format, { temperature: 0, maxNewTokens: 200, contextTokens: 48 });
  const r1 = chat.reply("Write a long story.");
  // A random model over 128K ids seldom picks a stop id; if it does, the test has nothing to check.
  assert.equal(r1.finishReason, "context");
  assert.equal(chat.cachedTokens, 48);
  const r2 = chat.reply("Go on.");
  assert.equal(r2.droppedTurns, 1);
  assert.ok(chat.cachedTokens <= 48);
  chat.dispose();
  m.dispose();
});

test("herd chat keeps going when the dialog fills --context or a message is too long, with notices", async () => {
  const m = llama3Vocab();
  const dir = join(tmp, "chat-context");
  await saveModel(dir, m, { dtype: "bf16" });
  m.dispose();
  const lines = [
    "Hello there, how are you today?",
    "word ".repeat(100),
    ...Array.from({ length: 6 }, (_, i) => `Question number ${i}: what comes next?`),
  ];
  const r = spawnSync(
    process.execPath,
    [
      cli,
      "chat",
      "--model",
      dir,
      "--max-tokens",
      "8",
      "--temperature",
      "0",
      "--context",
      "80",
      "--system",
      "Be brief.",
    ],
    { input: `${lines.join("\n")}\n`, encoding: "utf8" },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.match(/assistant> /g)?.length, 7, "every message but the long one is answered");
  assert.match(
    r.stderr,
    /\[not sent: this message needs \d+ tokens .* the context holds 80; the conversation is unchanged/,
  );
  assert.match(
    r.stderr,
    /\[context: dropped the oldest (turn|\d+ turns) to fit 80 tokens; the system message is kept\]/,
  );
  for (const c of r.stdout.matchAll(/context (\d+)\/80/g)) assert.ok(Number(c[1]) <= 80);
  const bad = spawnSync(process.execPath, [cli, "chat", "--model", dir, "--context", "x"], {
    encoding: "utf8",
  });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--context: bad value 'x'/);
});
