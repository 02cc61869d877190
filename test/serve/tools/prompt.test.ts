// OpenAI tools and messages → the Llama 3.x dialog: with Meta's trending_songs tool as an OpenAI function,
// the rendered prompt equals Meta's prompt_format.md examples byte for byte (JSON and <function> tag
// formats); assistant tool_calls and role "tool" results go back in as the model writes them (ipython).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import type { OpenAITool } from "../../../src/serve/tools/openai.js";
import { chatMessages, toOpenAIToolCalls, toolCallDeltas } from "../../../src/serve/tools/prompt.js";
import { ChatFormat, renderDialog, Tokenizer } from "../../../src/tokenizer/index.js";
import { repoPath } from "../../helpers.js";

const fx = JSON.parse(
  readFileSync(repoPath("test", "fixtures", "tokenizer", "prompt-formats.json"), "utf8"),
) as {
  prompts: Record<string, string>;
};
const chat = new ChatFormat(Tokenizer.llama3());
const trendingSongs: OpenAITool = {
  type: "function",
  function: {
    name: "trending_songs",
    description: "Returns the trending songs on a Music site",
    parameters: {
      type: "object",
      properties: {
        n: { type: "integer", description: "The number of songs to return" },
        genre: { type: "string", description: "The genre of the songs to return" },
      },
      required: ["n"],
    },
  },
};
const messages = [
  { role: "system" as const, content: "You are a helpful assistant.\n" },
  { role: "user" as const, content: "Use tools to get latest trending songs" },
];

test("OpenAI tools give Meta's JSON and <function> tag prompts byte for byte", () => {
  const date = "21 September 2024";
  assert.equal(renderDialog(chat, chatMessages(messages, [trendingSongs], { date })), fx.prompts.json_tools);
  const tag = chatMessages(messages, [trendingSongs], { date, format: "function_tag" });
  assert.equal(renderDialog(chat, tag), fx.prompts.function_tag);
});

test("assistant tool_calls and tool results go back into the dialog; calls come out in OpenAI's shape", () => {
  const m = chatMessages(
    [
      { role: "user", content: [{ type: "text", text: "Songs?" }] },
      {
        role: "assistant",
        content: null,
        tool_calls: [
          { id: "call_1", type: "function", function: { name: "trending_songs", arguments: '{"n": 3}' } },
        ],
      },
      { role: "tool", tool_call_id: "call_1", content: '["a", "b", "c"]' },
    ],
    [trendingSongs],
  );
  const text = renderDialog(chat, m);
  assert.ok(
    text.includes(
      '<|start_header_id|>assistant<|end_header_id|>\n\n<|python_tag|>{"type": "function", "name": "trending_songs", "parameters": {"n": 3}}<|eom_id|>',
    ),
    text,
  );
  assert.ok(text.includes('<|start_header_id|>ipython<|end_header_id|>\n\n["a", "b", "c"]<|eot_id|>'));
  const calls = [{ toolName: "f", arguments: { a: 1 }, callId: "call_x" }];
  assert.deepEqual(toOpenAIToolCalls(calls), [
    { id: "call_x", type: "function", function: { name: "f", arguments: '{"a":1}' } },
  ]);
  assert.equal(toolCallDeltas(calls, 2)[0]!.index, 2);
  assert.throws(
    () =>
      chatMessages([
        {
          role: "assistant",
          tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{" } }],
        },
      ]),
    /messages\[0\]\.tool_calls\[0\]\.function\.arguments: not valid JSON/,
  );
});
