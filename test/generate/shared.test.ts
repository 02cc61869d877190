// K sequences from one shared prefill, decoded as one batch (src/generate/shared.ts), against the plain
// generation loop: greedy rows equal generate(), sampled row i equals generate() seeded with seeds[i],
// with rows stopping at different steps (the batch is compacted as they end); stop strings end a row as
// they end generate() (finish reason "stop_string", the text cut before it), on a real vocabulary
// (stories260K, js backend); a prefix cache continues as the full prompt would; and KVCache.selectRows
// copies exactly the rows it names.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, test } from "node:test";
import { getBackend, setBackend } from "../../src/backends/index.js";
import { generate, generateShared, PieceVocab } from "../../src/generate/index.js";
import { initWeights, KVCache, Llama, loadModel, preset } from "../../src/model/index.js";
import { noGrad } from "../../src/tensor/tape.js";
import { scope } from "../../src/tensor/tensor.js";
import { repoPath } from "../helpers.js";

function tinyModel(dtype: "f32" | "bf16" = "f32"): Llama {
  const cfg = { ...preset("tiny"), numHiddenLayers: 2 };
  return new Llama(cfg, initWeights(cfg, { seed: 3, dtype }), "init");
}

const prompt = [1, 17, 42, 99, 7, 300, 12];
const stories = repoPath("test", "fixtures", "stories260K");
const initial = getBackend();
after(() => setBackend(initial));

test("KVCache.selectRows: row j of the copy is row rows[j] of the source, the source unchanged", () => {
  const m = tinyModel();
  const cache = new KVCache(m.config, 2, 4);
  noGrad(() =>
    scope(() => m.forward(Int32Array.from([...prompt, ...prompt.map((x) => x + 1)]), { batch: 2, cache })),
  );
  const copy = cache.selectRows([1, 0, 1], 64);
  assert.equal(copy.batch, 3);
  assert.equal(copy.length, prompt.length);
  const n = prompt.length * cache.kvDim;
  for (let l = 0; l < cache.layers; l++) {
    const src = cache.layerBuffers(l);
    const dst = copy.layerBuffers(l);
    assert.equal(dst.capacity, 64);
    for (const [j, r] of [1, 0, 1].entries()) {
      const want = src.k.subarray(r * src.capacity * cache.kvDim, r * src.capacity * cache.kvDim + n);
      const got = dst.k.subarray(j * 64 * cache.kvDim, j * 64 * cache.kvDim + n);
      assert.deepEqual(got, want);
      const wantV = src.v.subarray(r * src.capacity * cache.kvDim, r * src.capacity * cache.kvDim + n);
      assert.deepEqual(dst.v.subarray(j * 64 * cache.kvDim, j * 64 * cache.kvDim + n), wantV);
    }
  }
  assert.throws(() => cache.selectRows([2]), /row 2 of a cache of batch 2/);
  copy.dispose();
  cache.dispose();
  m.dispose();
});

for (const dtype of ["f32", "bf16"] as const)
  test(`generateShared (${dtype}): greedy rows each equal generate() of the same prompt`, () => {
    const m = tinyModel(dtype);
    const r = generateShared(m, prompt, {
      seeds: [0, 1, 2, 3],
      temperature: 0,
      maxNewTokens: 12,
      stopIds: [],
    });
    const plain = generate(m, prompt, { temperature: 0, maxNewTokens: 12, stopIds: [] });
    assert.equal(plain.tokens.length, 12);
    for (const s of r.samples) {
      assert.deepEqual(s.tokens, plain.tokens);
      assert.equal(s.finishReason, "length");
    }
    assert.equal(r.decodeSteps, 11);
    m.dispose();
  });

for (const dtype of ["f32", "bf16"] as const)
  test(`generateShared (${dtype}): sampled row i equals generate() seeded with seeds[i], rows ending at different steps`, () => {
    const m = tinyModel(dtype);
    const seeds = [11, 12, 13, 14, 15, 16];
    // Stop ids common enough that the rows end at different steps (the batch shrinks as they do).
    const stopIds = Array.from({ length: 24 }, (_, i) => i * 21);
    const opts = { temperature: 1.2, topP: 0.95, maxNewTokens: 40, stopIds };
    const steps: number[] = [];
    const r = generateShared(m, prompt, { ...opts, seeds, onStep: (b) => steps.push(b) });
    const reasons = new Set<string>();
    const lengths = new Set<number>();
    for (const [i, s] of r.samples.entries()) {
      const g = generate(m, prompt, { ...opts, seed: seeds[i]! });
      assert.deepEqual(s.tokens, g.tokens, `row ${i}`);
      assert.equal(s.finishReason, g.finishReason);
      assert.equal(s.stopId, g.stopId);
      reasons.add(s.finishReason);
      lengths.add(s.tokens.length);
    }
    assert.ok(lengths.size >= 3, `rows of ${[...lengths]} tokens: the test needs rows that end apart`);
    assert.ok(steps[0]! > steps.at(-1)!, "the batch shrank as rows ended");
    // Rows that differ in seed differ in what they drew.
    assert.ok(new Set(r.samples.map((s) => s.tokens.join())).size > 1);
    m.dispose();
  });

test("generateShared: the context ends rows as it ends generate()", () => {
  const m = tinyModel();
  const opts = { temperature: 0.8, maxNewTokens: 20, stopIds: [], contextTokens: prompt.length + 5 };
  const r = generateShared(m, prompt, { ...opts, seeds: [5, 6] });
  for (const [i, s] of r.samples.entries()) {
    const g = generate(m, prompt, { ...opts, seed: [5, 6][i]! });
    assert.deepEqual(s.tokens, g.tokens);
    assert.equal(s.finishReason, "context");
    assert.equal(g.finishReason, "context");
  }
  m.dispose();
});

for (const temperature of [0, 1])
  test(`generateShared (${temperature ? "sampled" : "greedy"}): stop strings end each row as generate() with the same seed (js)`, async () => {
    setBackend("js");
    const m = await loadModel(stories);
    const codec = PieceVocab.fromFile(join(stories, "vocab.json"));
    const story = [1, ...codec.encode!("Once upon a time, there was a little girl")];
    // HumanEval's stops (as the harness's humaneval.yaml) and some a story hits: "." and ", s" span tokens.
    const stopStrings = ["\ndef", "\nclass", "\nif", "\nprint", "\n#", ".", ", s", " and"];
    const seeds = [0, 1, 2, 3, 4, 5, 6, 7];
    const opts = { temperature, topP: 1, maxNewTokens: 10, stopIds: [2], stopStrings, codec };
    const r = generateShared(m, story, { ...opts, seeds });
    const reasons = new Set<string>();
    for (const [i, s] of r.samples.entries()) {
      const g = generate(m, story, { ...opts, seed: seeds[i]! });
      assert.deepEqual(s.tokens, g.tokens, `row ${i}`);
      assert.equal(s.text, g.text, `row ${i}`);
      assert.equal(s.finishReason, g.finishReason, `row ${i}`);
      assert.equal(s.stopId, g.stopId);
      if (s.finishReason === "stop_string") {
        // The text is cut before the stop string that the row's tokens completed.
        const whole = codec.decode(s.tokens);
        assert.ok(whole.startsWith(s.text) && whole.length > s.text.length);
        assert.ok(stopStrings.some((x) => whole.slice(s.text.length).startsWith(x)));
        assert.ok(!stopStrings.some((x) => s.text.includes(x)));
      }
      reasons.add(s.finishReason);
    }
    assert.ok(reasons.has("stop_string"), `finish reasons ${[...reasons]}`);
    if (temperature > 0)
      assert.ok(reasons.size >= 2, `rows ending alike (${[...reasons]}): the test needs both`);
    // A prefix cache (the prompt's first tokens, prefilled once) gives the same rows.
    const prefix = new KVCache(m.config, 1, 8);
    noGrad(() => scope(() => m.forward(Int32Array.from(story.slice(0, 5)), { cache: prefix })));
    const forked = generateShared(m, story, { ...opts, seeds, prefix });
    assert.deepEqual(forked.samples, r.samples);
    assert.equal(prefix.length, 5, "the prefix cache is left as it was");
    assert.throws(() => generateShared(m, story, { ...opts, seeds, codec: null }), /stop strings need/);
    prefix.dispose();
    m.dispose();
    setBackend(initial);
  });
