// The tool-call stream on a table of real-looking Llama 3.x replies (Meta's prompt_format.md responses
// among them): fed whole, split in two at every character boundary, and one character at a time, each
// gives the same content and the same calls, and a completed call's text never appears in the content.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ToolStreamDelta } from "../../../src/serve/contracts.js";
import { LlamaToolCallStream } from "../../../src/serve/tools/stream.js";
import type { ToolCall } from "../../../src/tokenizer/tools.js";

type Case = [name: string, reply: string, content: string, calls: Omit<ToolCall, "callId">[]];

const weather = (city: string) => ({ toolName: "get_weather", arguments: { city } });

const CASES: Case[] = [
  ["plain text", "Hello, world! How can I help?", "Hello, world! How can I help?", []],
  ["text with < and braces mid-line", "a < b, and {x} <b>bold</b>", "a < b, and {x} <b>bold</b>", []],
  ["spaces kept", "  Hi there  \n", "  Hi there  \n", []],
  ["function tag", '<function=get_weather>{"city": "Paris"}</function>', "", [weather("Paris")]],
  ["function tag, no closing tag", '<function=get_weather>{"city": "Paris"}', "", [weather("Paris")]],
  [
    "Meta's function tag response",
    '<function=trending_songs>{"n": 10}</function>',
    "",
    [{ toolName: "trending_songs", arguments: { n: 10 } }],
  ],
  [
    "function tag, single quotes",
    "<function=f>{'a': 1}</function>",
    "",
    [{ toolName: "f", arguments: { a: 1 } }],
  ],
  [
    "text, then a call",
    'Let me check.\n<function=get_weather>{"city": "Paris"}</function>',
    "Let me check.",
    [weather("Paris")],
  ],
  [
    "a call, then text",
    '<function=f>{"a": 1}</function>\nDone.',
    "Done.",
    [{ toolName: "f", arguments: { a: 1 } }],
  ],
  [
    "two function tags on two lines",
    '<function=get_weather>{"city": "Paris"}</function>\n<function=get_weather>{"city": "Rome"}</function>',
    "",
    [weather("Paris"), weather("Rome")],
  ],
  [
    "Meta's JSON response (python tag, pretty-printed)",
    '<|python_tag|>{\n    "type": "function",\n    "name": "trending_songs",\n    "parameters": {\n        "n": "10",\n        "genre": "all"\n    }\n}',
    "",
    [{ toolName: "trending_songs", arguments: { n: "10", genre: "all" } }],
  ],
  [
    "python tag, two calls joined by ;",
    '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}; {"name": "get_weather", "parameters": {"city": "Rome"}}',
    "",
    [weather("Paris"), weather("Rome")],
  ],
  [
    "Meta's built-in call",
    '<|python_tag|>brave_search.call(query="latest price of 1oz gold")',
    "",
    [{ toolName: "brave_search", arguments: { query: "latest price of 1oz gold" } }],
  ],
  [
    "code interpreter",
    "<|python_tag|>def is_prime(n):\n    return n > 1\n\nprint(is_prime(7))",
    "",
    [
      {
        toolName: "code_interpreter",
        arguments: { code: "def is_prime(n):\n    return n > 1\n\nprint(is_prime(7))" },
      },
    ],
  ],
  ["bare JSON", '{"name": "get_weather", "parameters": {"city": "SF"}}', "", [weather("SF")]],
  [
    "bare JSON with arguments, two on two lines",
    '{"name": "get_weather", "arguments": {"city": "SF"}}\n{"name": "get_weather", "arguments": {"city": "LA"}}',
    "",
    [weather("SF"), weather("LA")],
  ],
  [
    "bare JSON, arguments as a string (OpenAI style)",
    '{"name": "get_weather", "arguments": "{\\"city\\": \\"SF\\"}"}',
    "",
    [weather("SF")],
  ],
  [
    "bare JSON after text on its own line",
    'Sure.\n\n{"name": "get_weather", "parameters": {"city": "SF"}}',
    "Sure.",
    [weather("SF")],
  ],
  ["JSON that is not a call", '{"answer": 42}', '{"answer": 42}', []],
  ["JSON with a name but no parameters", '{"name": "Alice", "age": 3}', '{"name": "Alice", "age": 3}', []],
  [
    "a call-looking object mid-line stays text",
    'Use {"name": "x", "parameters": {}} like that',
    'Use {"name": "x", "parameters": {}} like that',
    [],
  ],
  [
    "Llama 3.2 pythonic list",
    "[get_weather(city='San Francisco', metric='celsius'), get_weather(city='Seattle', metric='celsius')]",
    "",
    [
      { toolName: "get_weather", arguments: { city: "San Francisco", metric: "celsius" } },
      { toolName: "get_weather", arguments: { city: "Seattle", metric: "celsius" } },
    ],
  ],
  ["a Markdown link is text", "[docs](http://example.com) and [x]", "[docs](http://example.com) and [x]", []],
  [
    "a cut-off call is released as text",
    '<function=get_weather>{"city": "Pa',
    '<function=get_weather>{"city": "Pa',
    [],
  ],
  ["a cut-off tag name is text", "The tag <|pyth", "The tag <|pyth", []],
  [
    "Meta's conversation response",
    'Here\'s my response\n\n"What is a helpful assistant?"',
    'Here\'s my response\n\n"What is a helpful assistant?"',
    [],
  ],
];

function run(pieces: string[]): { content: string; calls: ToolCall[] } {
  let n = 0;
  const s = new LlamaToolCallStream(() => `call_${n++}`);
  const out = { content: "", calls: [] as ToolCall[] };
  const take = (d: ToolStreamDelta) => {
    out.content += d.content;
    out.calls.push(...d.calls);
  };
  for (const p of pieces) take(s.push(p));
  take(s.end());
  return out;
}

const CALL_TEXT = ["<function=", "<|python_tag|>", '"parameters"', '"arguments"', "get_weather("];

for (const [name, reply, content, calls] of CASES)
  test(`tool-call stream: ${name}`, () => {
    const want = { content, calls: calls.map((c, i) => ({ ...c, callId: `call_${i}` })) };
    assert.deepEqual(run([reply]), want, "fed whole");
    assert.deepEqual(run([...reply]), want, "one character at a time");
    for (let i = 1; i < reply.length; i++)
      assert.deepEqual(run([reply.slice(0, i), reply.slice(i)]), want, `split at ${i}`);
    if (calls.length > 0)
      for (const t of CALL_TEXT) assert.ok(!want.content.includes(t), `content leaks ${t}`);
  });

test("streamed content is released as soon as it cannot begin a call", () => {
  const s = new LlamaToolCallStream();
  assert.equal(s.push("Hello wor").content, "Hello wor");
  assert.equal(s.push("ld <fun").content, "ld");
  assert.equal(s.push("ny").content, " <funny");
  const t = new LlamaToolCallStream();
  assert.equal(t.push('{"na').content, "");
  assert.equal(t.push('me": 1').content, "");
  assert.equal(t.push("}").content, '{"name": 1}'); // complete, and not a call
  assert.equal(t.end().content, "");
  const u = new LlamaToolCallStream();
  assert.equal(u.push('{"answer"').content, '{"answer"');
});
