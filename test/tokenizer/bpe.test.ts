// BPE merging (the linear and heap variants agree), ranks-file parsing and its error messages, sha256
// pinning, decoding and the streaming decoder.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { mergeHeap, mergeLinear, PairTable } from "../../src/tokenizer/bpe.js";
import {
  formatRanks,
  KNOWN_RANKS,
  MAX_RANKS,
  parseRanks,
  RanksFormatError,
  readRanks,
} from "../../src/tokenizer/ranks.js";
import { binaryString, Tokenizer } from "../../src/tokenizer/tiktoken.js";
import { repoPath, rng } from "../helpers.js";
import { adversarial } from "./corpus.js";

const tok = Tokenizer.llama3();
const llamaRanks = readRanks(repoPath("assets", "llama3", "tokenizer.model")).ranks;
const utf8 = new TextEncoder();
const wellFormed = (s: string) =>
  s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");

/** tiktoken's _byte_pair_merge, transcribed plainly: parts as byte offsets, ranks of joined bytes. */
function referenceMerge(bin: string, ranks: Map<string, number>): number[] {
  const parts: [number, number][] = [];
  const rankOf = (i: number, j: number) => ranks.get(bin.slice(i, j)) ?? Number.POSITIVE_INFINITY;
  for (let i = 0; i < bin.length - 1; i++) parts.push([i, rankOf(i, i + 2)]);
  parts.push([bin.length - 1, Number.POSITIVE_INFINITY], [bin.length, Number.POSITIVE_INFINITY]);
  const pairRank = (i: number) =>
    i + 3 < parts.length ? rankOf(parts[i]![0], parts[i + 3]![0]) : Number.POSITIVE_INFINITY;
  for (;;) {
    let min = Number.POSITIVE_INFINITY;
    let at = -1;
    for (let i = 0; i < parts.length - 1; i++) {
      if (parts[i]![1] < min) {
        min = parts[i]![1];
        at = i;
      }
    }
    if (at < 0) break;
    parts[at]![1] = pairRank(at);
    if (at > 0) parts[at - 1]![1] = pairRank(at - 1);
    parts.splice(at + 1, 1);
  }
  const out: number[] = [];
  for (let i = 0; i + 1 < parts.length; i++) out.push(ranks.get(bin.slice(parts[i]![0], parts[i + 1]![0]))!);
  return out;
}

describe("byte-pair merging", () => {
  const run = (f: typeof mergeLinear, bytes: Uint8Array, t: PairTable) => {
    const out: number[] = [];
    f(bytes, bytes.length, t, out);
    return out;
  };

  test("the linear and heap variants both merge exactly as tiktoken's algorithm", () => {
    const table = new PairTable(llamaRanks);
    const r = rng(5);
    for (let k = 0; k < 400; k++) {
      const text = adversarial(k, 2 + Math.floor(r() * 200));
      const bytes = utf8.encode(text);
      const expected = referenceMerge(binaryString(bytes), llamaRanks);
      assert.deepEqual(run(mergeLinear, bytes, table), expected, JSON.stringify(text));
      assert.deepEqual(run(mergeHeap, bytes, table), expected, JSON.stringify(text));
    }
  });

  test("ties go to the leftmost pair", () => {
    const tokens = [
      ...Array.from({ length: 256 }, (_, b) => Uint8Array.of(b)),
      ...["aa", "aaa", "aaaa"].map((s) => utf8.encode(s)),
    ];
    const small = parseRanks(formatRanks(tokens)).ranks;
    const table = new PairTable(small);
    for (let n = 2; n < 40; n++) {
      const bytes = utf8.encode("a".repeat(n));
      const expected = referenceMerge("a".repeat(n), small);
      assert.deepEqual(run(mergeLinear, bytes, table), expected, `a×${n}`);
      assert.deepEqual(run(mergeHeap, bytes, table), expected, `a×${n}`);
    }
    assert.deepEqual(run(mergeLinear, utf8.encode("aaaaa"), table), [256, 257]); // aa·a·a·a → aa·aa·a → aa·aaa
  });

  test("every piece decodes back to itself", () => {
    for (let seed = 0; seed < 50; seed++) {
      const text = wellFormed(adversarial(seed, 500));
      assert.equal(tok.decode(tok.encode(text)), text);
    }
  });

  test("lone surrogates are encoded as U+FFFD, as TextEncoder does", () => {
    assert.deepEqual(tok.encode("a\ud800b"), tok.encode("a\ufffdb"));
    assert.equal(tok.decode(tok.encode("\udfff")), "\ufffd");
  });
});

describe("ranks files", () => {
  const good = formatRanks(Array.from({ length: 256 }, (_, b) => Uint8Array.of(b)));
  const bad = (text: string, re: RegExp) => {
    assert.throws(
      () => parseRanks(text, "x.model"),
      (e: unknown) => e instanceof RanksFormatError && re.test(e.message),
    );
  };

  test("malformed files fail with the file, the line and what is wrong", () => {
    bad(`${good}aGk= 256 extra\n`, /^x\.model:257: expected "<base64 token> <rank>", found 3 field\(s\)$/);
    bad(`${good}aGk\n`, /^x\.model:257: expected .* found 1 field/);
    bad(`${good}a!k= 256\n`, /^x\.model:257: token "a!k=" is not valid base64$/);
    bad(`${good}aGk 256\n`, /^x\.model:257: token "aGk" is not valid base64$/);
    bad(`${good}aGk= -3\n`, /^x\.model:257: rank "-3" is not an integer/);
    bad(`${good}aGk= 12x\n`, /^x\.model:257: rank "12x" is not an integer/);
    bad(`${good}aGk= 5\n`, /^x\.model:257: expected rank 256, found 5 \(rank 5 is on line 6\)$/);
    bad(`${good}\naGk= 256\naGk= 257\n`, /^x\.model:259: token "aGk=" already has a rank on line 258$/);
    bad(good.replace(/^QQ== 65$/m, "aGk= 65"), /^x\.model: no token for the single byte 0x41/);
    bad("\n\n", /^x\.model: no tokens/);
  });

  test("blank lines and CRLF are accepted", () => {
    const r = parseRanks(`${good.replace(/\n/g, "\r\n")}\n\naGk= 256\n`);
    assert.equal(r.size, 257);
    const t = new Tokenizer(r);
    assert.equal(t.special("<|begin_of_text|>"), 257);
    assert.deepEqual(t.encode("hi"), [256]);
  });

  test("ranks must be dense and in order: a gap is refused before anything is sized by it", () => {
    bad(
      `${good}aGk= 300\n`,
      /^x\.model:257: expected rank 256, found 300; ranks must run 0, 1, 2, … in order$/,
    );
    // the hostile file of issue #14: a tiny file naming rank 2147483646 (grew to 7.9 GB)
    bad(`${good}aGk= 2147483646\n`, /^x\.model:257: expected rank 256, found 2147483646;/);
    bad(`QQ== 1\n`, /^x\.model:1: expected rank 0, found 1;/);
  });

  test("the number of ranks is bounded", () => {
    const tokens = Array.from({ length: 301 }, (_, r) =>
      r < 256 ? Uint8Array.of(r) : Uint8Array.of(r & 255, 1),
    );
    assert.throws(
      () => parseRanks(formatRanks(tokens), "x.model", { maxRanks: 300 }),
      /^RanksFormatError: x\.model:301: more than 300 ranks$/,
    );
    assert.equal(parseRanks(formatRanks(tokens.slice(0, 300)), "x.model", { maxRanks: 300 }).size, 300);
    assert.equal(MAX_RANKS, 1 << 21);
  });

  test("a line too long is refused with the file and the line, not a stack overflow", () => {
    bad(
      `${good}${"A".repeat(12 << 20)}= 256\n`,
      /^x\.model:257: line is 12582917 characters long \(at most 65536\)$/,
    );
    bad(`${good}${"QUFB".repeat(3 << 20)} 256\n`, /^x\.model:257: line is 12582916 characters long/);
  });

  test("Meta's tokenizer still loads, and a sha256 asked for is checked", () => {
    assert.equal(llamaRanks.size, 128000);
    assert.equal(tok.numRanks, 128000);
    assert.equal(Tokenizer.llama3({ sha256: KNOWN_RANKS.llama3.sha256.toUpperCase() }), tok);
    assert.throws(
      () => Tokenizer.llama3({ sha256: "00".repeat(32) }),
      /tokenizer\.model: sha256 is 82e9d319[0-9a-f]{56}, expected 0{64}/,
    );
  });

  test("a file that is not what its pinned sha256 says is refused", () => {
    const dir = mkdtempSync(join(tmpdir(), "herd-ranks-"));
    const path = join(dir, "tokenizer.model");
    writeFileSync(path, good);
    assert.throws(
      () => Tokenizer.fromFile(path, { sha256: "00".repeat(32) }),
      /sha256 is [0-9a-f]{64}, expected 0{64}/,
    );
    assert.equal(Tokenizer.fromFile(path).numRanks, 256);
    writeFileSync(path, `${good}zz 256\n`);
    assert.throws(
      () => Tokenizer.fromFile(path),
      new RegExp(`^RanksFormatError: ${path.replace(/[.]/g, "\\.")}:257: `),
    );
  });

  test("a known file is recognised by its content", () => {
    const t = Tokenizer.fromFile(repoPath("assets", "llama3", "tokenizer.model"));
    assert.equal(t.name, "llama3");
  });
});

describe("streaming decoder", () => {
  test("never emits half a character and adds up to the whole decode", () => {
    const d = tok.streamDecoder();
    const ids = tok.encode("🦙"); // three tokens (2 + 1 + 1 bytes) for one 4-byte character
    assert.deepEqual(ids, [9468, 99, 247]);
    assert.deepEqual(
      ids.map((id) => d.push(id)),
      ["", "", "🦙"],
    );
    for (let seed = 0; seed < 30; seed++) {
      const ids = tok.encode(adversarial(seed, 300), { allowedSpecial: "all" });
      const s = tok.streamDecoder();
      let out = "";
      for (const id of ids) {
        const piece = s.push(id);
        assert.ok(!/[\ud800-\udbff]$/.test(piece), "no dangling high surrogate");
        out += piece;
      }
      out += s.flush();
      assert.equal(out, tok.decode(ids));
    }
  });

  test("an unfinished character at the end is flushed as U+FFFD", () => {
    const s = tok.streamDecoder();
    assert.equal(s.pushAll([9468, 99]), "");
    assert.equal(s.flush(), "\ufffd");
  });
});
