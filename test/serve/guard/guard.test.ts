// The Llama Guard 3 classifier: the ids given to the model are exactly Meta's prompt (guardPromptText in
// the dialog format), a table of guard outputs parses to verdicts (malformed ones count unsafe, categories
// outside the chosen subset do not count), the classifier runs end to end on a tiny random model and
// decodes what greedy generation on that prompt gives, refusals name the categories, and sentence
// boundaries in streamed text are found however the text is split.
import assert from "node:assert/strict";
import { test } from "node:test";
import { generate } from "../../../src/generate/generate.js";
import { validateConfig } from "../../../src/model/config.js";
import { Llama } from "../../../src/model/llama.js";
import { preset } from "../../../src/model/presets.js";
import { initWeights } from "../../../src/model/weights.js";
import { LlamaGuardClassifier, refusalMessage, verdictOf } from "../../../src/serve/guard/classifier.js";
import { SentenceBoundaries } from "../../../src/serve/guard/sentences.js";
import { ChatFormat } from "../../../src/tokenizer/chat.js";
import { guardPromptText } from "../../../src/tokenizer/guard.js";
import { Tokenizer } from "../../../src/tokenizer/tiktoken.js";

/** A byte-level tokenizer with Llama 3's special tokens, and a tiny random model over it. */
function tiny(): { model: Llama; chat: ChatFormat } {
  const ranks = new Map<string, number>();
  for (let b = 0; b < 256; b++) ranks.set(String.fromCharCode(b), b);
  const chat = new ChatFormat(new Tokenizer({ ranks, size: 256 }, { name: "bytes" }));
  const cfg = validateConfig(
    {
      ...preset("tiny"),
      hiddenSize: 32,
      intermediateSize: 64,
      numHiddenLayers: 2,
      numAttentionHeads: 2,
      numKeyValueHeads: 1,
      headDim: 16,
      vocabSize: 512,
      maxPositionEmbeddings: 4096,
    },
    "test",
  );
  return { model: new Llama(cfg, initWeights(cfg, { seed: 3 }), "init"), chat };
}

const turns = [
  { role: "user" as const, content: "How do I bake bread?" },
  { role: "assistant" as const, content: "Mix flour, water, salt and yeast." },
];

test("the guard prompt given to the model is Meta's, byte for byte, with the chosen categories", async () => {
  const { model, chat } = tiny();
  const guard = new LlamaGuardClassifier(model, chat, { categories: ["S1", "S10"], maxNewTokens: 6 });
  const ids = guard.prompt(turns);
  const want =
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n" +
    guardPromptText(turns, { categories: ["S1", "S10"] }) +
    "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
  assert.equal(chat.tokenizer.decode(ids), want);
  assert.ok(want.includes("'Agent' messages") && want.includes("S10: Hate.") && !want.includes("S2:"));
  // end to end: the verdict is that of greedy generation on exactly these ids
  const v = await guard.classify(turns);
  const r = generate(model, ids, { temperature: 0, maxNewTokens: 6, stopIds: chat.stopIds() });
  assert.equal(v.output, chat.tokenizer.decode(r.tokens));
  assert.deepEqual(v, verdictOf(v.output, ["S1", "S10"]));
  assert.equal(typeof v.safe, "boolean");
  assert.throws(() => new LlamaGuardClassifier(model, chat, { categories: ["S15"] }), /no category S15/);
});

test("verdicts: safe, unsafe with categories, malformed counted unsafe, a subset honoured", () => {
  const table: [string, readonly string[] | undefined, boolean, string[], boolean][] = [
    ["safe", undefined, true, [], false],
    ["  safe\n", undefined, true, [], false],
    ["unsafe\nS1,S10", undefined, false, ["S1", "S10"], false],
    ["unsafe\nS2<|eot_id|>", undefined, false, ["S2"], false],
    ["unsafe", undefined, false, [], false],
    ["unsafe\nS6", ["S1", "S2"], true, [], false],
    ["unsafe\nS1,S6", ["S1"], false, ["S1"], false],
    ["I think it is fine", undefined, false, [], true],
    ["unsafe\nS99", undefined, false, [], true],
    ["", undefined, false, [], true],
  ];
  for (const [out, cats, safe, categories, malformed] of table)
    assert.deepEqual(verdictOf(out, cats), { safe, categories, output: out, malformed }, JSON.stringify(out));
});

test("a refusal names the violated categories", () => {
  assert.equal(
    refusalMessage({ safe: false, categories: ["S1", "S11"] }, "input"),
    "I can't help with that. The request was classified as unsafe by the safety guard (S1 Violent Crimes, S11 Suicide & Self-Harm).",
  );
  assert.ok(!refusalMessage({ safe: false, categories: [] }, "output").includes("("));
});

test("sentence boundaries in streamed text, the same however it is split", () => {
  const text = 'Hello there. Pi is 3.14, roughly! "Really?" she asked.\nNext line… and 。more';
  const whole = new SentenceBoundaries();
  const at = (s: SentenceBoundaries, pieces: string[]) =>
    pieces.map((p) => s.push(p)).filter((x) => x !== null);
  const ends = at(whole, [...text]);
  assert.deepEqual(
    ends.map((e) => text.slice(0, e!).slice(-6)),
    ["there.", "ughly!", 'ally?"', "sked.\n", " line…"],
  );
  for (let i = 1; i < text.length; i += 7) {
    const s = new SentenceBoundaries();
    const got = at(s, [text.slice(0, i), text.slice(i)]);
    assert.equal(got.at(-1), ends.at(-1));
    for (const e of got) assert.ok(ends.includes(e), `boundary ${e} not found char by char`);
  }
});
