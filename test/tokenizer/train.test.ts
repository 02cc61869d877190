// The BPE trainer: equal to a naive trainer that recounts every pair at every step, deterministic,
// usable by the tokenizer, and its files (ranks + description) written atomically.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { splitPieces } from "../../src/tokenizer/pattern.js";
import { Tokenizer } from "../../src/tokenizer/tiktoken.js";
import { PieceCounter, type TrainProgress, trainBpe } from "../../src/tokenizer/train.js";
import { countCorpus, writeTrainedTokenizer } from "../../src/tokenizer/trainIO.js";
import { rng } from "../helpers.js";
import { adversarial, sample } from "./corpus.js";

/** The textbook algorithm: recount all adjacent pairs, merge the best everywhere, repeat. */
function naiveTrain(texts: string[], vocabSize: number): [number, number][] {
  const counts = new Map<string, number>();
  for (const t of texts) for (const p of splitPieces(t)) counts.set(p, (counts.get(p) ?? 0) + 1);
  const words = [...counts].map(([p, c]) => ({ syms: [...new TextEncoder().encode(p)], c }));
  const merges: [number, number][] = [];
  for (let z = 256; z < vocabSize; z++) {
    const pc = new Map<string, number>();
    for (const w of words) {
      for (let i = 0; i + 1 < w.syms.length; i++) {
        const k = `${w.syms[i]},${w.syms[i + 1]}`;
        pc.set(k, (pc.get(k) ?? 0) + w.c);
      }
    }
    let best: [number, number] | null = null;
    let bestCount = 0;
    for (const [k, c] of pc) {
      const [a, b] = k.split(",").map(Number) as [number, number];
      if (c > bestCount || (c === bestCount && best && (a < best[0] || (a === best[0] && b < best[1])))) {
        best = [a, b];
        bestCount = c;
      }
    }
    if (!best) break;
    merges.push(best);
    for (const w of words) {
      const out: number[] = [];
      for (let i = 0; i < w.syms.length; i++) {
        if (i + 1 < w.syms.length && w.syms[i] === best[0] && w.syms[i + 1] === best[1]) {
          out.push(z);
          i++;
        } else out.push(w.syms[i]!);
      }
      w.syms = out;
    }
  }
  return merges;
}

describe("BPE trainer", () => {
  test("equals the naive algorithm, ties included", () => {
    const r = rng(3);
    const corpora = [
      ["aaaa aaa aa a aaaaaaa", "abab ababab ba ba"],
      [sample("english").slice(0, 6000)],
      [adversarial(11, 3000), sample("multilingual").slice(20000, 24000)],
      Array.from(
        { length: 30 },
        () => "xyz ".repeat(1 + Math.floor(r() * 5)) + "zzzz".slice(0, 1 + Math.floor(r() * 4)),
      ),
    ];
    for (const texts of corpora) {
      const vocab = 256 + 150;
      assert.deepEqual(trainBpe(texts, { vocabSize: vocab }).merges, naiveTrain(texts, vocab));
    }
  });

  test("is deterministic whatever the order of the texts", () => {
    const texts = [
      sample("python").slice(0, 20000),
      sample("multilingual").slice(0, 20000),
      adversarial(5, 5000),
    ];
    const a = trainBpe(texts, { vocabSize: 600 });
    const b = trainBpe([...texts].reverse(), { vocabSize: 600 });
    assert.deepEqual(a.merges, b.merges);
    assert.equal(a.tokens.length, 600);
  });

  test("stops when no pair is left, and reports progress", () => {
    const seen: TrainProgress[] = [];
    const res = trainBpe(["ab ab"], { vocabSize: 1000, onProgress: (p) => seen.push(p) });
    assert.deepEqual(
      res.tokens.slice(256).map((t) => new TextDecoder().decode(t)),
      ["ab", " ab"],
    );
    assert.ok(seen.some((p) => p.phase === "count"));
    assert.throws(() => trainBpe([], { vocabSize: 100 }), /vocabSize must be an integer ≥ 256/);
    const mf = trainBpe(["ab ab cd"], { vocabSize: 1000, minFrequency: 2 });
    assert.deepEqual(mf.merges.length, 1, "only 'ab' occurs twice");
  });

  test("writes a ranks file the tokenizer loads, atomically, with a description", async () => {
    const dir = mkdtempSync(join(tmpdir(), "herd-train-"));
    writeFileSync(join(dir, "a.txt"), sample("english").slice(0, 30000));
    writeFileSync(
      join(dir, "b.jsonl"),
      `${JSON.stringify({ text: "Hello there, world!" })}\n\n${JSON.stringify({ text: "¡Hola, mundo! 🦙" })}\n`,
    );
    const counter = new PieceCounter();
    await countCorpus([join(dir, "a.txt"), join(dir, "b.jsonl")], counter);
    assert.ok(counter.counts.has(" mundo"));
    const { trainFromCounts } = await import("../../src/tokenizer/train.js");
    const res = trainFromCounts(counter.counts, { vocabSize: 1024 });
    const out = join(dir, "tok.model");
    writeTrainedTokenizer(out, res, { note: "test" });
    assert.deepEqual(
      readdirSync(dir).sort(),
      ["a.txt", "b.jsonl", "tok.model", "tok.model.json"],
      "no temporary files left",
    );
    const tok = Tokenizer.fromFile(out);
    assert.equal(tok.numRanks, 1024);
    assert.equal(tok.special("<|begin_of_text|>"), 1024);
    const text = "Alice was beginning to get very tired — ¡Hola! 🦙";
    assert.equal(tok.decode(tok.encode(text)), text);
    assert.ok(tok.encode(text).length < new TextEncoder().encode(text).length / 2);
    const info = JSON.parse(readFileSync(`${out}.json`, "utf8"));
    assert.equal(info.vocabSize, 1280);
    assert.equal(info.specialTokens["<|eot_id|>"], 1033);
    assert.equal(info.note, "test");
    assert.match(info.sha256, /^[0-9a-f]{64}$/);
  });

  test("malformed JSONL fails with the file and line", async () => {
    const dir = mkdtempSync(join(tmpdir(), "herd-train-"));
    const f = join(dir, "bad.jsonl");
    writeFileSync(f, '{"text": "ok"}\n{"text": 5}\n');
    await assert.rejects(countCorpus([f], new PieceCounter()), new RegExp(`${f}:2: no string field "text"`));
    writeFileSync(f, '{"text": "ok"}\n{oops\n');
    await assert.rejects(countCorpus([f], new PieceCounter()), new RegExp(`${f}:2: not valid JSON`));
    assert.ok(!existsSync(join(dir, "tok.model")));
  });
});
