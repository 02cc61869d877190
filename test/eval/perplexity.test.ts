// Perplexity on held-out text (test/eval/heldout-stories.txt: short stories in TinyStories' style written
// for this test, so not in stories260K's training data), tokenised by llama2.c's rule, and the bound on
// what Q8_0 quantisation may cost: under 1% (measured +0.06%; Q4_0 +14%, a 260K-parameter model has no
// redundancy to spare).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { perplexity } from "../../src/eval/perplexity.js";
import { PieceVocab } from "../../src/generate/index.js";
import { loadModel, quantizeCheckpoint } from "../../src/model/index.js";
import { noGrad, scope } from "../../src/tensor/index.js";
import { repoPath } from "../helpers.js";

const stories = repoPath("test", "fixtures", "stories260K");
const tmp = mkdtempSync(join(tmpdir(), "herd-ppl-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

test("PieceEncoder tokenises stories260K's own greedy story into exactly its tokens", () => {
  const exp = JSON.parse(readFileSync(join(stories, "expected.json"), "utf8"));
  const enc = { encode: PieceVocab.fromFile(join(stories, "vocab.json")).encode! };
  assert.deepEqual(enc.encode(exp.greedy_text), exp.greedy_new_tokens);
  assert.deepEqual(enc.encode(""), []);
});

test("perplexity is exp of the mean next-token loss, each text token scored once", async () => {
  const model = await loadModel(stories);
  const ids = [403, 407, 261, 378, 432, 383, 286, 261, 376];
  // One window of BOS + 9 tokens equals the model's own loss; windows of 4 (BOS + 3) score the same 9.
  const targets = Int32Array.from([...ids, -100]);
  const loss = noGrad(() => scope(() => model.loss(Int32Array.from([1, ...ids]), targets).item()));
  const one = perplexity(model, ids);
  assert.equal(one.tokens, 9);
  assert.ok(Math.abs(one.nll - loss) < 1e-6);
  assert.ok(Math.abs(one.perplexity - Math.exp(loss)) < 1e-5);
  const three = perplexity(model, ids, { context: 4 });
  assert.deepEqual([three.tokens, three.windows], [9, 3]);
  const noBos = perplexity(model, ids, { context: 4, bos: null });
  assert.deepEqual([noBos.tokens, noBos.windows], [8, 3]);
  assert.throws(() => perplexity(model, [600]), /id 600 at position 0 is outside the vocabulary of 512/);
  model.dispose();
});

test("Q8_0 costs stories260K under 1% perplexity on held-out text, Q4_0 under 25%", async () => {
  const ids = PieceVocab.fromFile(join(stories, "vocab.json")).encode!(
    readFileSync(repoPath("test", "eval", "heldout-stories.txt"), "utf8"),
  );
  assert.ok(ids.length > 1500, `${ids.length} tokens`);
  const ppl: Record<string, number> = {};
  for (const format of ["f32", "q8_0", "q4_0"] as const) {
    let dir = stories;
    if (format !== "f32") {
      dir = join(tmp, format);
      await quantizeCheckpoint(stories, dir, format);
    }
    const model = await loadModel(dir);
    ppl[format] = perplexity(model, ids).perplexity;
    model.dispose();
  }
  const f = ppl.f32!;
  assert.ok(f > 3 && f < 6, `f32 perplexity ${f}`); // a trained model on its kind of text
  const q8 = (ppl.q8_0! - f) / f;
  const q4 = (ppl.q4_0! - f) / f;
  assert.ok(Math.abs(q8) < 0.01, `q8_0 changes perplexity by ${(q8 * 100).toFixed(3)}%`);
  assert.ok(q4 > 0 && q4 < 0.25, `q4_0 changes perplexity by ${(q4 * 100).toFixed(3)}%`);
});
