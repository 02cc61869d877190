// The tool-call parser on the model responses published with Meta's prompt formats, and the Python
// helpers it relies on.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { ChatFormat } from "../../src/tokenizer/chat.js";
import { parsePythonCallList, pyJsonDumps } from "../../src/tokenizer/python.js";
import { Tokenizer } from "../../src/tokenizer/tiktoken.js";
import { parseAssistantOutput } from "../../src/tokenizer/tools.js";
import { repoPath } from "../helpers.js";

const fx = JSON.parse(
  readFileSync(repoPath("test", "fixtures", "tokenizer", "prompt-formats.json"), "utf8"),
) as {
  responses: Record<string, string>;
};
const r = fx.responses;

describe("parsing model output", () => {
  test("plain answers keep their content and stop reason", () => {
    assert.deepEqual(parseAssistantOutput(r.conversation!), {
      content: 'Here\'s my response\n\n"What is a helpful assistant?"',
      toolCalls: [],
      stopReason: "end_of_turn",
      pythonTag: false,
    });
    assert.equal(parseAssistantOutput(r.builtin_full!).content, "The 100th decimal of pi is 7.");
    assert.equal(parseAssistantOutput("unfinished").stopReason, "out_of_tokens");
  });

  test("built-in tool call", () => {
    const m = parseAssistantOutput(r.builtin_tools!);
    assert.deepEqual(m.toolCalls, [
      { toolName: "brave_search", arguments: { query: "latest price of 1oz gold" } },
    ]);
    assert.equal(m.stopReason, "end_of_message");
    assert.equal(m.content, "");
    assert.ok(m.pythonTag);
  });

  test("code interpreter", () => {
    const m = parseAssistantOutput(r.code_interpreter!);
    assert.equal(m.toolCalls.length, 1);
    assert.equal(m.toolCalls[0]!.toolName, "code_interpreter");
    assert.match(String(m.toolCalls[0]!.arguments.code), /^def is_prime\(n\):\n/);
    assert.match(String(m.toolCalls[0]!.arguments.code), /# Output: True$/);
  });

  test("JSON custom tool call", () => {
    const m = parseAssistantOutput(r.json_tools!);
    assert.deepEqual(m.toolCalls, [{ toolName: "trending_songs", arguments: { n: "10", genre: "all" } }]);
    assert.equal(m.stopReason, "end_of_message");
  });

  test("<function> tag call, and Meta's own tool-utils test", () => {
    const m = parseAssistantOutput(r.function_tag!);
    assert.deepEqual(m.toolCalls, [{ toolName: "trending_songs", arguments: { n: 10 } }]);
    assert.equal(m.stopReason, "end_of_turn");
    assert.deepEqual(
      parseAssistantOutput('<function=getWeather>{"location":"New York","date":"2023-08-05"}').toolCalls,
      [{ toolName: "getWeather", arguments: { location: "New York", date: "2023-08-05" } }],
    );
  });

  test("Llama 3.2 lists hold several calls", () => {
    assert.deepEqual(parseAssistantOutput(r.llama3_2_python_list!).toolCalls, [
      { toolName: "get_weather", arguments: { city: "San Francisco", metric: "celsius" } },
      { toolName: "get_weather", arguments: { city: "Seattle", metric: "celsius" } },
    ]);
    assert.deepEqual(parseAssistantOutput(r.llama3_2_user_list!).toolCalls, [
      { toolName: "get_user_info", arguments: { user_id: 7890, special: "black" } },
    ]);
  });

  test("decoding generated ids gives the same message", () => {
    const tok = Tokenizer.llama3();
    const ids = tok.encode(r.builtin_tools!, { allowedSpecial: "all" });
    const m = new ChatFormat(tok).decodeAssistantMessage(ids);
    assert.equal(m.toolCalls[0]!.toolName, "brave_search");
  });

  test("text that only looks like a call stays text", () => {
    for (const s of ["[not, a, call]", "{'type': 'function'}", "[f(1)]", "brave_search.call(q=1)", "[]"]) {
      assert.deepEqual(parseAssistantOutput(s).toolCalls, [], s);
    }
  });
});

describe("python helpers", () => {
  test("json.dumps formatting", () => {
    assert.equal(
      pyJsonDumps({ b: [1, 2.5, true, null], a: 'é"<' }),
      '{"b": [1, 2.5, true, null], "a": "\\u00e9\\"<"}',
    );
    assert.equal(
      pyJsonDumps({ b: 1, a: "it's" }, { sortKeys: true, htmlSafe: true }),
      '{"a": "it\\u0027s", "b": 1}',
    );
  });

  test("Python literal call lists", () => {
    assert.deepEqual(
      parsePythonCallList("[f(a=1, b='x\\'y', c=[1, (2, 3)], d={'k': None}, e=True, g=-1.5e3)]"),
      [{ name: "f", args: { a: 1, b: "x'y", c: [1, [2, 3]], d: { k: null }, e: true, g: -1500 } }],
    );
    assert.equal(parsePythonCallList("[f(a=1) junk]"), null);
    assert.equal(parsePythonCallList("f(a=1)"), null);
  });
});
