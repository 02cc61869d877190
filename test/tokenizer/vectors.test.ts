// Meta's published vectors, the spec's extra vectors, the 44 llama.cpp cases, and the special tokens.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { NAMED_SPECIAL_TOKENS, specialTokenNames } from "../../src/tokenizer/specialTokens.js";
import { Tokenizer } from "../../src/tokenizer/tiktoken.js";
import { repoPath } from "../helpers.js";

const tok = Tokenizer.llama3();
const fixture = (name: string) =>
  JSON.parse(readFileSync(repoPath("test", "fixtures", "tokenizer", name), "utf8"));

describe("Llama 3 test vectors", () => {
  test("the shipped tokenizer has 128,000 ranks and 256 special tokens", () => {
    assert.equal(tok.name, "llama3");
    assert.equal(tok.numRanks, 128000);
    assert.equal(tok.vocabSize, 128256);
    assert.equal(tok.specialTokens.size, 256);
  });

  test("Meta's vectors and the spec's extra vectors", () => {
    const v = fixture("meta-vectors.json") as {
      encode: { text: string; bos?: boolean; eos?: boolean; ids: number[] }[];
    };
    for (const c of v.encode) {
      assert.deepEqual(tok.encode(c.text, { bos: c.bos, eos: c.eos }), c.ids, JSON.stringify(c.text));
      assert.equal(
        tok.decode(c.ids),
        (c.bos ? "<|begin_of_text|>" : "") + c.text + (c.eos ? "<|end_of_text|>" : ""),
      );
    }
  });

  test("the 44 llama.cpp cases", () => {
    const cases = fixture("tokenizer-cases.json") as { text: string; ids: number[] }[];
    assert.equal(cases.length, 44);
    for (const c of cases) {
      assert.deepEqual(tok.encode(c.text), c.ids, JSON.stringify(c.text));
      assert.equal(tok.decode(c.ids), c.text);
    }
  });
});

describe("special tokens", () => {
  test("ids and names as in Meta's Llama 3.1 tokenizer", () => {
    const names = specialTokenNames();
    assert.equal(names.length, 256);
    assert.equal(new Set(names).size, 256);
    for (const [k, name] of NAMED_SPECIAL_TOKENS.entries()) assert.equal(tok.special(name), 128000 + k);
    assert.equal(tok.special("<|begin_of_text|>"), 128000);
    assert.equal(tok.special("<|eot_id|>"), 128009);
    assert.equal(tok.special("<|python_tag|>"), 128010);
    assert.equal(tok.special("<|reserved_special_token_2|>"), 128011);
    assert.equal(tok.special("<|reserved_special_token_246|>"), 128255);
    assert.equal(tok.bosId, 128000);
    assert.equal(tok.eosId, 128001);
  });

  test("special-token text is ordinary text unless allowed by name", () => {
    const text = "a<|eot_id|>b<|python_tag|>";
    const plain = tok.encode(text);
    assert.ok(plain.every((id) => id < 128000));
    assert.equal(tok.decode(plain), text);
    assert.deepEqual(tok.encode(text, { allowedSpecial: ["<|eot_id|>"] }), [
      ...tok.encode("a"),
      128009,
      ...tok.encode("b<|python_tag|>"),
    ]);
    assert.deepEqual(tok.encode(text, { allowedSpecial: "all" }), [
      ...tok.encode("a"),
      128009,
      ...tok.encode("b"),
      128010,
    ]);
    assert.throws(() => tok.encode(text, { allowedSpecial: ["<|nope|>"] }), /no special token <\|nope\|>/);
  });

  test("ordinary text never produces special ids, decoding rejects unknown ids", () => {
    assert.ok(tok.encode("<|begin_of_text|><|reserved_special_token_5|>").every((id) => id < 128000));
    assert.throws(() => tok.decode([128256]), /no token with id 128256/);
    assert.throws(() => tok.decode([-1]), /no token with id -1/);
  });
});
