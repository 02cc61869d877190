// herd against an independent implementation: the npm tiktoken package (Rust compiled to wasm) loaded
// with the same ranks, pattern and special tokens must give the same ids on more than 1 MB of text.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { Tiktoken } from "tiktoken";
import { CLASS, LETTER, META_PATTERN, NUMBER, SPACE, splitPieces } from "../../src/tokenizer/pattern.js";
import { Tokenizer } from "../../src/tokenizer/tiktoken.js";
import { repoPath, rng } from "../helpers.js";
import { adversarial, parityCorpus } from "./corpus.js";
import { type ProbedClasses, probeTiktoken } from "./tools/genUnicodeTables.js";

const tok = Tokenizer.llama3();
const reference = new Tiktoken(
  readFileSync(repoPath("assets", "llama3", "tokenizer.model"), "utf8"),
  Object.fromEntries(tok.specialTokens),
  META_PATTERN,
);

function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return -1;
}

function assertSameIds(text: string, label: string): void {
  const ours = tok.encode(text);
  const theirs = reference.encode_ordinary(text);
  const at = firstDifference(ours, theirs);
  if (at >= 0) {
    const near = tok.decode(ours.slice(Math.max(0, at - 3), at + 3));
    assert.fail(
      `${label}: first different id at ${at} near ${JSON.stringify(near)}: ${ours[at]} vs ${theirs[at]}`,
    );
  }
}

describe("parity with npm tiktoken", () => {
  test("more than 1 MB of varied text, token for token", () => {
    const docs = parityCorpus();
    const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d), 0);
    assert.ok(bytes > 1_000_000, `corpus is only ${bytes} bytes`);
    for (const [k, d] of docs.entries()) assertSameIds(d, `document ${k}`);
    // and all documents as one text, so pieces also meet across document boundaries
    assertSameIds(docs.join(""), "joined corpus");
  });

  test("short random strings from the adversarial alphabet", () => {
    const r = rng(99);
    for (let k = 0; k < 20000; k++) {
      const s = adversarial(1000 + k, 1 + Math.floor(r() * 24));
      assertSameIds(s, JSON.stringify(s));
    }
  });

  test("decoding matches tiktoken's bytes, specials included", () => {
    const ids = [...tok.encode("Hello 🦙 world\r\n", { bos: true }), 128009, 128255];
    assert.deepEqual(tok.decodeBytes(ids), reference.decode(Uint32Array.from(ids)));
  });

  test("allowed special tokens split the text as tiktoken does", () => {
    const text = "x<|eot_id|>\n\n<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>";
    assert.deepEqual(tok.encode(text, { allowedSpecial: "all" }), [...reference.encode(text, "all")]);
  });
});

describe("pre-tokeniser character classes", () => {
  test("letters, numbers and whitespace agree with tiktoken on a sample of code points", () => {
    // every code point up to U+0800, and 3% of the rest of the first three planes, chosen at random
    const r = rng(7);
    const probed: ProbedClasses = {
      letter: new Uint8Array(0x110000),
      number: new Uint8Array(0x110000),
      space: new Uint8Array(0x110000),
    };
    const picked: number[] = [];
    for (let c = 0; c < 0x30000; c++) if (c < 0x800 || r() < 0.03) picked.push(c);
    for (const c of [0x85, 0xa0, 0xfeff, 0x180e, 0x200b, 0x2028, 0x3000, 0x10940, 0x11db0, 0x11de0])
      picked.push(c);
    probeTiktoken(picked, probed);
    for (const c of picked) {
      if (c >= 0xd800 && c < 0xe000) continue;
      const hex = c.toString(16);
      assert.equal(CLASS[c] === LETTER, probed.letter[c] === 1, `U+${hex} letter`);
      assert.equal(CLASS[c] === NUMBER, probed.number[c] === 1, `U+${hex} number`);
      assert.equal(CLASS[c] === SPACE, probed.space[c] === 1, `U+${hex} space`);
    }
  });

  test("pieces follow the pattern's rules", () => {
    assert.deepEqual(splitPieces("I've 12345 apples!!\n\n  ok"), [
      "I",
      "'ve",
      " ",
      "123",
      "45",
      " apples",
      "!!\n\n",
      " ",
      " ok",
    ]);
    assert.deepEqual(splitPieces("'ſt"), ["'ſ", "t"]);
    assert.deepEqual(splitPieces("a \u0085b"), ["a", " ", "\u0085b"]);
    assert.deepEqual(splitPieces("a\ufeffb"), ["a", "\ufeffb"]);
    assert.deepEqual(splitPieces("x\ud800y"), ["x", "\ud800y"]);
    assert.deepEqual(splitPieces("   "), ["   "]);
    assert.deepEqual(splitPieces("\t\tx"), ["\t", "\tx"]);
  });
});
