// Structured output over Meta's Llama 3 vocabulary: decoding with random logits under the constraint, then
// closing the value with the constraint's own finishing tokens, always yields text that JSON.parse accepts
// and ajv (an independent validator) passes against the schema; the mask is never empty and never allows a
// special token other than the stop id, which it allows exactly when the value is complete.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Ajv } from "ajv";
import { type JsonConstraint, JsonConstraintFactory } from "../../../src/serve/structured/constraint.js";
import { SchemaError } from "../../../src/serve/structured/schema.js";
import { tokenizerVocab } from "../../../src/serve/structured/trie.js";
import type { OpenAITool } from "../../../src/serve/tools/openai.js";
import { Tokenizer } from "../../../src/tokenizer/index.js";
import { rng } from "../../helpers.js";
import { SCHEMAS } from "./schemas.js";

const tok = Tokenizer.llama3();
const EOT = tok.special("<|eot_id|>");
const factory = new JsonConstraintFactory(tokenizerVocab(tok, [EOT]));
const ajv = new Ajv({ strict: false });

/** Random-logit greedy decoding for `free` steps, then the constraint's finishing tokens. */
function decode(c: JsonConstraint, seed: number, free: number): string {
  const r = rng(seed);
  const ids: number[] = [];
  for (let i = 0; i < 600; i++) {
    const m = c.mask();
    let allowed = 0;
    for (let id = 0; id < m.length; id++) if (m[id]) allowed++;
    assert.ok(allowed > 0, "the mask left no token allowed");
    for (let id = tok.numRanks; id < tok.vocabSize; id++)
      if (m[id]) assert.ok(id === EOT && c.complete, `special token ${id} allowed`);
    assert.equal(m[EOT] === 1, c.complete);
    let id = -1;
    if (i < free) {
      let best = Number.NEGATIVE_INFINITY;
      for (let k = 0; k < m.length; k++) {
        if (!m[k]) continue;
        const logit = r();
        if (logit > best) [best, id] = [logit, k];
      }
    } else id = c.finishingToken();
    assert.equal(m[id], 1, "the chosen token was not allowed");
    c.accept(id);
    if (id === EOT) return tok.decode(ids);
    ids.push(id);
  }
  throw new Error("the value did not finish");
}

for (const [name, schema] of SCHEMAS)
  test(`structured output over the Llama 3 vocabulary: ${name} always parses and validates`, () => {
    const validate = ajv.compile(schema ?? { type: "object" });
    for (const [seed, free] of [
      [1, 0],
      [2, 8],
      [3, 30],
    ] as const) {
      const text = decode(factory.json(schema), seed * 101 + name.length, free);
      const value = JSON.parse(text);
      assert.ok(validate(value), `${JSON.stringify(text)}: ${ajv.errorsText(validate.errors)}`);
    }
  });

test("a token refused by the mask is refused by accept, and the stop id only when complete", () => {
  const c = factory.json({ type: "object", properties: { a: { type: "integer" } }, required: ["a"] });
  assert.throws(() => c.accept(tok.encode("[")[0]!), /does not continue/);
  assert.throws(() => c.accept(EOT), /before the value is complete/);
  for (const id of tok.encode('{"a": 12}')) c.accept(id);
  assert.equal(c.complete, true);
  const m = c.mask();
  assert.deepEqual(
    [...m.keys()].filter((i) => m[i]),
    [EOT],
  );
});

test("whitespace is bounded, so a model cannot loop on spaces", () => {
  const c = factory.json(null);
  c.accept(tok.encode("{")[0]!);
  const space = tok.encode(" ")[0]!;
  c.accept(space);
  assert.equal(c.mask()[space], 0);
  const c2 = factory.json(null);
  for (const id of tok.encode(`{\n${" ".repeat(20)}`)) c2.accept(id);
  assert.equal(c2.mask()[space], 0);
});

test("unsupported schema keywords are refused with the path, so every output can validate", () => {
  assert.throws(
    () => factory.json({ type: "object", properties: { s: { type: "string", pattern: "^a" } } }),
    (e: unknown) => e instanceof SchemaError && /#\.properties\.s: keyword 'pattern'/.test(e.message),
  );
  assert.throws(() => factory.json({ anyOf: [{ type: "integer" }, { type: "number" }] }), SchemaError);
  assert.throws(() => factory.json({ $ref: "#/$defs/missing" }), /not a local/);
  assert.throws(
    () => factory.json({ type: "object", properties: {}, required: ["x"] }),
    /'x' is not among the properties/,
  );
});

test("partial UTF-8: a token ending inside a character is allowed in a string, then only its continuation", () => {
  const c = factory.json({ type: "string" });
  c.accept(tok.encode('"')[0]!);
  const bytes = new TextEncoder().encode("顔"); // e9 a1 94
  const lead = [...Array(tok.numRanks).keys()].find((id) => {
    const b = tok.tokenBytes(id);
    return b.length === 1 && b[0] === bytes[0];
  })!;
  assert.equal(c.mask()[lead], 1);
  c.accept(lead);
  const m = c.mask();
  for (let id = 0; id < tok.numRanks; id++) {
    const b = tok.tokenBytes(id);
    if (m[id]) assert.ok(b[0]! >= 0x80 && b[0]! <= 0xbf, `token ${id} does not continue the character`);
  }
  assert.throws(() => c.accept(tok.encode('"')[0]!));
});

const TOOLS: OpenAITool[] = [
  {
    type: "function",
    function: {
      name: "get_weather",
      parameters: {
        type: "object",
        properties: { city: { type: "string" }, unit: { enum: ["celsius", "fahrenheit"] } },
        required: ["city", "unit"],
      },
    },
  },
  { type: "function", function: { name: "now", parameters: { type: "object", properties: {} } } },
  { type: "function", function: { name: "echo" } },
];

test('tool_choice "required" and a named function force one call of a tool with valid parameters', () => {
  const byName = new Map(TOOLS.map((t) => [t.function.name, t.function.parameters ?? { type: "object" }]));
  for (let seed = 1; seed <= 9; seed++) {
    const text = decode(factory.toolCall(TOOLS, "required")!, seed, seed * 4);
    const call = JSON.parse(text);
    assert.deepEqual(Object.keys(call), ["name", "parameters"]);
    assert.ok(byName.has(call.name), text);
    const validate = ajv.compile(byName.get(call.name)!);
    assert.ok(validate(call.parameters), `${text}: ${ajv.errorsText(validate.errors)}`);
  }
  const named = decode(
    factory.toolCall(TOOLS, { type: "function", function: { name: "get_weather" } })!,
    5,
    20,
  );
  assert.equal(JSON.parse(named).name, "get_weather");
  assert.ok(named.startsWith('{"name": "get_weather", "parameters": {'));
  assert.equal(factory.toolCall(TOOLS, "auto"), null);
  assert.throws(
    () => factory.toolCall(TOOLS, { type: "function", function: { name: "nope" } }),
    /no tool named/,
  );
});
