// Sampling rules (spec §2.9): greedy, temperature, top-k, the reference top-p rule, seeded draws; the
// generation loop's stop ids and the SentencePiece piece decoder.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  argmax,
  generate,
  PieceVocab,
  Sampler,
  samplingDistribution,
  seededRandom,
} from "../../src/generate/index.js";
import { initWeights, Llama, preset } from "../../src/model/index.js";

const logp = (ps: number[]) => ps.map(Math.log);

test("greedy is argmax, first index on ties", () => {
  assert.equal(argmax([0.1, 3, -2, 3]), 1);
  assert.equal(new Sampler({ temperature: 0 }).sample([1, 5, 2]), 1);
  assert.equal(new Sampler({ temperature: 0, topP: 0.1 }).sample([1, 5, 2]), 1);
});

test("top-p keeps tokens while the mass before them is at most p (reference rule)", () => {
  const p = [0.5, 0.3, 0.15, 0.05];
  const d = (topP: number) => samplingDistribution(logp(p), { temperature: 1, topP });
  // Mass before each token: 0, 0.5, 0.8, 0.95.
  assert.deepEqual([...d(0.9).ids], [0, 1, 2]);
  assert.deepEqual([...d(0.5).ids], [0, 1]); // 0.5 does not exceed 0.5
  assert.deepEqual([...d(0.49).ids], [0]);
  assert.deepEqual([...d(1).ids], [0, 1, 2, 3]);
  const probs = d(0.9).probs;
  assert.ok(Math.abs(probs[0]! - 0.5 / 0.95) < 1e-12 && Math.abs(probs[2]! - 0.15 / 0.95) < 1e-12);
});

test("temperature sharpens or flattens; top-k cuts before top-p", () => {
  const l = logp([0.5, 0.3, 0.2]);
  const cold = samplingDistribution(l, { temperature: 0.5 }).probs;
  // p^(1/T) renormalised: 0.25, 0.09, 0.04 over 0.38.
  assert.ok(Math.abs(cold[0]! - 0.25 / 0.38) < 1e-12);
  const k2 = samplingDistribution(l, { temperature: 1, topK: 2 });
  assert.deepEqual([...k2.ids], [0, 1]);
  assert.ok(Math.abs(k2.probs[1]! - 0.3 / 0.8) < 1e-12);
  // After top-k 2 the masses are 0.625, 0.375: top-p 0.6 keeps only the first.
  assert.deepEqual([...samplingDistribution(l, { temperature: 1, topK: 2, topP: 0.6 }).ids], [0]);
  assert.throws(() => samplingDistribution(l, { temperature: 1, topP: 0 }), /topP 0 must be in \(0, 1\]/);
});

test("on a 128K vocabulary the distribution equals the sort-everything reference rule", () => {
  // The reference: sort all tokens by probability, top-k, then drop each token whose mass before it
  // exceeds p, renormalise.
  const reference = (l: Float32Array, T: number, topP: number, topK: number) => {
    let max = Number.NEGATIVE_INFINITY;
    for (const x of l) max = Math.max(max, x);
    const p = Array.from(l, (x) => Math.exp((x - max) / T));
    const order = p.map((_, i) => i).sort((a, b) => p[b]! - p[a]! || a - b);
    const top = topK > 0 ? order.slice(0, topK) : order;
    const kept = top.reduce((s, i) => s + p[i]!, 0);
    const ids: number[] = [];
    let cum = 0;
    for (const i of top) {
      if (cum / kept > topP) break;
      ids.push(i);
      cum += p[i]!;
    }
    const z = ids.reduce((s, i) => s + p[i]!, 0);
    return { ids, probs: ids.map((i) => p[i]! / z) };
  };
  const V = 128256;
  const rand = seededRandom(5);
  // Peaked like a trained model's logits (a few likely tokens over a long tail), and flat.
  const peaked = Float32Array.from({ length: V }, () => -12 * rand() ** 0.15 + 2);
  const flat = Float32Array.from({ length: V }, () => rand());
  for (const [l, T, topP, topK] of [
    [peaked, 0.6, 0.9, 0],
    [peaked, 1, 0.99, 0],
    [peaked, 0.7, 1, 40],
    [peaked, 0.7, 0.5, 40],
    [peaked, 1, 1, 0],
    [flat, 1, 0.9, 0],
    [flat, 1, 0.9, 5],
  ] as const) {
    const got = samplingDistribution(l, { temperature: T, topP, topK });
    const want = reference(l, T, topP, topK);
    const label = `T=${T} topP=${topP} topK=${topK} (${want.ids.length} kept)`;
    assert.deepEqual([...got.ids], want.ids, label);
    for (let r = 0; r < want.probs.length; r++)
      assert.ok(Math.abs(got.probs[r]! - want.probs[r]!) < 1e-12, `${label}: p[${r}]`);
  }
});

test("seeded sampling is reproducible and follows the distribution", () => {
  const l = logp([0.6, 0.3, 0.1]);
  const draw = (seed: number) => {
    const s = new Sampler({ temperature: 1, seed });
    return Array.from({ length: 20000 }, () => s.sample(l));
  };
  assert.deepEqual(draw(7), draw(7));
  assert.notDeepEqual(draw(7).slice(0, 50), draw(8).slice(0, 50));
  const counts = [0, 0, 0];
  for (const t of draw(1)) counts[t]!++;
  for (const [i, p] of [0.6, 0.3, 0.1].entries())
    assert.ok(Math.abs(counts[i]! / 20000 - p) < 0.015, `token ${i}: ${counts[i]! / 20000} vs ${p}`);
  const r = seededRandom(3);
  for (let i = 0; i < 1000; i++) {
    const u = r();
    assert.ok(u >= 0 && u < 1);
  }
});

test("generation stops on a stop id, which is not returned", () => {
  const c = { ...preset("tiny"), vocabSize: 64, eosTokenIds: [5] };
  const m = new Llama(c, initWeights(c, { seed: 2 }), "init");
  const free = generate(m, [0, 1, 2], { maxNewTokens: 12, temperature: 0, stopIds: [] });
  assert.equal(free.tokens.length, 12);
  assert.equal(free.finishReason, "length");
  const stopAt = free.tokens[4]!;
  const first = free.tokens.indexOf(stopAt);
  const stopped = generate(m, [0, 1, 2], { maxNewTokens: 12, temperature: 0, stopIds: [stopAt] });
  assert.equal(stopped.finishReason, "stop_id");
  assert.equal(stopped.stopId, stopAt);
  assert.deepEqual(stopped.tokens, free.tokens.slice(0, first));
  assert.equal(stopped.unforwarded, stopAt);
  m.dispose();
});

test("piece vocabulary: byte pieces join into UTF-8, the space after BOS is dropped", () => {
  const pieces = ["<unk>", "<s>", "</s>", "<0xC3>", "<0xA9>", " caf", " x", "!"];
  const v = new PieceVocab(pieces, 1, 2);
  assert.equal(v.decode([1, 5, 3, 4, 7, 2]), "café!");
  assert.equal(v.decode([6, 5]), " x caf");
  const s = v.stream(true);
  assert.equal(s.push(5), "caf");
  assert.equal(s.push(3), ""); // half a character
  assert.equal(s.push(4), "é");
  assert.throws(() => v.decode([99]), /id 99 is outside the vocabulary of 8/);
});
