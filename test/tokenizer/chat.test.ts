// The Llama 3.1/3.2 dialog format: Meta's dialog vector, and Meta's published prompt-format examples
// rebuilt from messages with herd's helpers, byte for byte.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { ChatFormat, type Message, renderDialog } from "../../src/tokenizer/chat.js";
import { Tokenizer } from "../../src/tokenizer/tiktoken.js";
import {
  functionTagToolsPrompt,
  jsonToolsPrompt,
  pythonListToolsPrompt,
  systemPrompt,
  type ToolDefinition,
} from "../../src/tokenizer/tools.js";
import { repoPath } from "../helpers.js";

const tok = Tokenizer.llama3();
const chat = new ChatFormat(tok);
const load = (name: string) =>
  JSON.parse(readFileSync(repoPath("test", "fixtures", "tokenizer", name), "utf8"));
const fx = load("prompt-formats.json") as { prompts: Record<string, string>; wolframResponse: string };

const trendingSongs: ToolDefinition = {
  toolName: "trending_songs",
  description: "Returns the trending songs on a Music site",
  parameters: {
    n: { paramType: "int", description: "The number of songs to return", required: true },
    genre: { paramType: "str", description: "The genre of the songs to return", required: false },
  },
};
const getWeather: ToolDefinition = {
  toolName: "get_weather",
  description: "Get weather info for places",
  parameters: {
    city: { paramType: "string", description: "The name of the city to get the weather for", required: true },
    metric: {
      paramType: "string",
      description: "The metric for weather. Options are: celsius, fahrenheit",
      required: false,
      default: "celsius",
    },
  },
};
const helpful = "You are a helpful assistant.\n";
const date = "21 September 2024";

/** The dialog's text, and a check that its ids are the pieces encoded separately. */
function render(messages: Message[], c = chat): string {
  const ids = c.encodeDialogPrompt(messages);
  assert.ok(ids.filter((id) => id >= 128000).length >= 2 * messages.length + 3);
  return renderDialog(c, messages);
}

describe("dialog encoding", () => {
  test("Meta's dialog vector", () => {
    const v = load("meta-vectors.json").dialog as { messages: Message[]; ids: number[] };
    assert.deepEqual(chat.encodeDialogPrompt(v.messages), v.ids);
  });

  test("headers, stop tokens, the tool role and content with special-token text", () => {
    assert.deepEqual(chat.encodeHeader("user"), [128006, 882, 128007, 271]);
    assert.deepEqual(chat.encodeHeader("tool"), chat.encodeHeader("ipython"));
    const eom = chat.encodeMessage({ role: "assistant", content: "x", stopReason: "end_of_message" });
    assert.equal(eom.at(-1), tok.special("<|eom_id|>"));
    const sneaky = chat.encodeMessage({ role: "user", content: "<|eot_id|>" });
    assert.equal(sneaky.filter((id) => id === 128009).length, 1, "content text never becomes a special id");
    assert.deepEqual(
      chat.encodeDialogPrompt([{ role: "user", content: "hi" }], { addGenerationPrompt: false }).slice(-1),
      [128009],
    );
  });

  test("a plain conversation (3.1 and 3.2)", () => {
    const m: Message[] = [
      { role: "system", content: "You are a helpful assistant" },
      { role: "user", content: "Answer who are you in the form of jeopardy?" },
    ];
    assert.equal(render(m), fx.prompts.conversation);
  });

  test("built-in tools: system switches and a brave_search request", () => {
    const sys = systemPrompt({ builtinTools: ["brave_search", "wolfram_alpha"], date, text: helpful });
    const m: Message[] = [
      { role: "system", content: sys },
      { role: "user", content: "Search the web for the latest price of 1oz gold?" },
    ];
    assert.equal(render(m), fx.prompts.builtin_tools);
  });

  test("code interpreter", () => {
    const m: Message[] = [
      { role: "system", content: "Environment: ipython" },
      {
        role: "user",
        content: "Write code to check if number is prime, use that to see if the number 7 is prime",
      },
    ];
    assert.equal(render(m), fx.prompts.code_interpreter);
  });

  test("a full built-in tool interaction with the ipython result", () => {
    const m: Message[] = [
      { role: "system", content: systemPrompt({ builtinTools: ["brave_search", "wolfram_alpha"] }) },
      { role: "user", content: "What is the 100th decimal of pi?" },
      {
        role: "assistant",
        content: "",
        stopReason: "end_of_message",
        toolCalls: [{ toolName: "wolfram_alpha", arguments: { query: "100th decimal of pi" } }],
      },
      { role: "tool", content: fx.wolframResponse },
    ];
    assert.equal(render(m), fx.prompts.builtin_full);
  });

  test("JSON custom tools", () => {
    const m: Message[] = [
      { role: "system", content: systemPrompt({ customTools: true, date, text: helpful }) },
      { role: "user", content: jsonToolsPrompt([trendingSongs]) },
      { role: "user", content: "Use tools to get latest trending songs" },
    ];
    assert.equal(render(m), fx.prompts.json_tools);
  });

  test("<function> tag custom tools", () => {
    const m: Message[] = [
      { role: "system", content: systemPrompt({ customTools: true, date, text: helpful }) },
      { role: "user", content: functionTagToolsPrompt([trendingSongs]) },
      { role: "user", content: "Use tools to get latest trending songs" },
    ];
    assert.equal(render(m), fx.prompts.function_tag);
  });

  test("Llama 3.2: pythonic tool list, code interpreter, and a full cycle", () => {
    const c32 = new ChatFormat(tok, { toolPromptFormat: "python_list" });
    const sys: Message = { role: "system", content: pythonListToolsPrompt([getWeather]) };
    assert.equal(
      render([sys, { role: "user", content: "What is the weather in SF and Seattle?" }], c32),
      fx.prompts.llama3_2_python_list,
    );
    const ci: Message[] = [
      {
        role: "system",
        content: systemPrompt({ builtinTools: ["code_interpreter"], date: new Date(2024, 8, 24) }),
      },
      {
        role: "user",
        content: "Write code to check if number is prime. Use it to verify if number 7 is prime",
      },
    ];
    assert.equal(render(ci, c32), fx.prompts.llama3_2_code_interpreter);
    const e2e: Message[] = [
      sys,
      { role: "user", content: "What is the weather in SF?" },
      {
        role: "assistant",
        content: "",
        toolCalls: [{ toolName: "get_weather", arguments: { city: "San Francisco", metric: "celsius" } }],
      },
      { role: "ipython", content: '"25 C"' },
    ];
    assert.equal(render(e2e, c32), fx.prompts.llama3_2_e2e);
  });

  test("custom tool calls in history, in each format", () => {
    const call = { toolName: "trending_songs", arguments: { n: "10", genre: "all" } };
    const text = (format: "json" | "function_tag" | "python_list") =>
      tok.decode(
        new ChatFormat(tok, { toolPromptFormat: format }).encodeMessage({
          role: "assistant",
          content: "",
          toolCalls: [call],
          stopReason: "end_of_message",
        }),
      );
    assert.equal(
      text("json"),
      '<|start_header_id|>assistant<|end_header_id|>\n\n<|python_tag|>{"type": "function", "name": "trending_songs", "parameters": {"n": "10", "genre": "all"}}<|eom_id|>',
    );
    assert.equal(
      text("function_tag"),
      '<|start_header_id|>assistant<|end_header_id|>\n\n<function=trending_songs>{"n": "10", "genre": "all"}</function><|eom_id|>',
    );
    assert.equal(
      text("python_list"),
      '<|start_header_id|>assistant<|end_header_id|>\n\n<|python_tag|>[trending_songs(n="10", genre="all")]<|eom_id|>',
    );
  });
});
