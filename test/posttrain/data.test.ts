// Reading post-training JSONL: OpenAI-style tool calls, pre-tokenised lines, errors that name the file,
// line and field, and the reported skips (empty assistant turn, identical responses, too long).
import assert from "node:assert/strict";
import { test } from "node:test";
import { readPreferences, readSft } from "../../src/posttrain/data.js";
import { ChatFormat } from "../../src/tokenizer/chat.js";
import { byteChat, byteTokenizer, jsonl, tempDir } from "./fixture.js";

const chat = byteChat();
const opts = { chat, vocabSize: 512, maxLen: 200 };
const dir = tempDir();

test("conversational SFT with tool_calls; skips reported with their lines", () => {
  const f = jsonl(dir, "sft.jsonl", [
    {
      messages: [
        { role: "user", content: "2+2?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [{ type: "function", function: { name: "calc", arguments: '{"x": "2+2"}' } }],
        },
        { role: "tool", content: "4" },
        { role: "assistant", content: "4" },
      ],
    },
    {
      messages: [
        { role: "user", content: "hi" },
        { role: "assistant", content: "  " },
      ],
    },
    {
      messages: [
        { role: "user", content: "x".repeat(300) },
        { role: "assistant", content: "y" },
      ],
    },
  ]);
  const d = readSft(f, opts);
  assert.equal(d.examples.length, 1);
  const e = d.examples[0]!;
  const text = chat.tokenizer.decode([...e.ids].filter((_, i) => e.supervised[i]));
  assert.equal(
    text,
    '<|python_tag|>{"type": "function", "name": "calc", "parameters": {"x": "2+2"}}<|eot_id|>4<|eot_id|>',
  );
  assert.deepEqual(
    d.skipped.map((s) => [s.line, s.reason.split(" ")[0]]),
    [
      [2, "empty"],
      [3, "325"],
    ],
  );
});

test("tool calls in Llama 3.2's Python-list format", () => {
  const chat32 = new ChatFormat(byteTokenizer(), { toolPromptFormat: "python_list" });
  const f = jsonl(dir, "tools32.jsonl", [
    {
      messages: [
        { role: "user", content: "2+2?" },
        { role: "assistant", tool_calls: [{ name: "calc", arguments: { x: "2+2" } }] },
        { role: "ipython", content: "4" },
        { role: "assistant", content: "4" },
      ],
    },
  ]);
  const e = readSft(f, { ...opts, chat: chat32 }).examples[0]!;
  const text = chat32.tokenizer.decode([...e.ids].filter((_, i) => e.supervised[i]));
  assert.equal(text, '<|python_tag|>[calc(x="2+2")]<|eot_id|>4<|eot_id|>');
});

test("bad input is an error naming file, line and field", () => {
  const cases: [unknown, RegExp][] = [
    [
      { messages: [{ role: "bot", content: "x" }] },
      /bad\.jsonl:1: field 'messages\[0\]\.role' must be one of/,
    ],
    [
      { messages: [{ role: "user", content: "x" }] },
      /bad\.jsonl:1: .*no assistant turn: zero supervised tokens/,
    ],
    [{ input_ids: [1, 2, 3], labels: [-100, -100, -100] }, /bad\.jsonl:1: field 'labels' marks no token/],
    [
      { input_ids: [1, 2, 999], labels: [1, 2, 999] },
      /bad\.jsonl:1: field 'input_ids\[2\]' must be a token id in \[0, 512\)/,
    ],
    ["{not json", /bad\.jsonl:1: not valid JSON/],
  ];
  for (const [line, re] of cases) assert.throws(() => readSft(jsonl(dir, "bad.jsonl", [line]), opts), re);
});

test("pre-tokenised SFT: labels and masks", () => {
  const f = jsonl(dir, "ids.jsonl", [
    { input_ids: [5, 6, 7, 8], labels: [-100, -100, 7, 8] },
    { input_ids: [5, 6, 7], assistant_masks: [0, 1, 1] },
  ]);
  const d = readSft(f, { ...opts, chat: null });
  assert.deepEqual([...d.examples[0]!.supervised], [0, 0, 1, 1]);
  assert.deepEqual([...d.examples[1]!.supervised], [0, 1, 1]);
});

test("preferences: TRL layout, edited, identical pair skipped, pre-tokenised", () => {
  const prompt = [{ role: "user", content: "Say hi" }];
  const a = (s: string) => [{ role: "assistant", content: s }];
  const f = jsonl(dir, "pref.jsonl", [
    { prompt, chosen: a("hi"), rejected: a("no"), edited: a("hello") },
    { prompt, chosen: a("same"), rejected: a("same") },
    { prompt_ids: [1, 2], chosen_ids: [3], rejected_ids: [4, 5] },
  ]);
  const d = readPreferences(f, opts);
  assert.equal(d.examples.length, 2);
  assert.ok(d.examples[0]!.edited);
  assert.equal(
    chat.tokenizer.decode([...d.examples[0]!.chosen.ids].filter((_, i) => d.examples[0]!.chosen.counted[i])),
    "hi",
  );
  assert.deepEqual(
    d.skipped.map((s) => [s.line, s.reason]),
    [[2, "chosen and rejected responses are identical"]],
  );
  assert.deepEqual([...d.examples[1]!.rejected.counted], [1, 1]);
  assert.throws(
    () =>
      readPreferences(
        jsonl(dir, "p2.jsonl", [{ prompt, chosen: [{ role: "user", content: "x" }], rejected: a("y") }]),
        opts,
      ),
    /p2\.jsonl:1: field 'chosen\[0\]\.role' must be assistant/,
  );
});
