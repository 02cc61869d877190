// Needle in a haystack: the pieces against hand-computed cases (needle, prompt and depth placement, greedy
// scoring, log-probabilities and ranks), a Llama decoder against a full forward, and the grid on decoders
// whose behaviour is known (an induction oracle retrieves every needle; one that only looks back 60
// tokens misses exactly the deep needles of the longer context), and the lengths a stage tests.
import assert from "node:assert/strict";
import { test } from "node:test";
import { niahLengths } from "../../src/eval/longContext.js";
import {
  buildPrompt,
  type Decoder,
  haystackLength,
  llamaDecoder,
  type Needle,
  niahGrid,
  niahHeatmapSvg,
  scoreRetrieval,
  textNeedle,
  tokenNeedle,
} from "../../src/eval/niah.js";
import { Llama } from "../../src/model/llama.js";
import { preset } from "../../src/model/presets.js";
import { initWeights } from "../../src/model/weights.js";
import { noGrad, scope } from "../../src/tensor/index.js";
import { Rng } from "../../src/train/rng.js";
import { TINY } from "../train/fixture.js";

const V = 256;

/** Logits peaked on the token that followed the latest earlier occurrence of the last 4 tokens. */
function inductionDecoder(window = Number.POSITIVE_INFINITY): Decoder {
  let ctx: number[] = [];
  const predict = (): Float32Array => {
    const out = new Float32Array(V);
    const n = ctx.length;
    for (let s = n - 5; s >= Math.max(0, n - window); s--) {
      if ([0, 1, 2, 3].every((j) => ctx[s + j] === ctx[n - 4 + j])) {
        out[ctx[s + 4]!] = 10;
        return out;
      }
    }
    return out;
  };
  return {
    start: (p) => {
      ctx = [...p];
      return predict();
    },
    next: (t) => {
      ctx.push(t);
      return predict();
    },
    close: () => {},
  };
}

const bytes = (t: string) => [...Buffer.from(t, "utf8")];

test("niah: needle, prompt and depth placement by hand", () => {
  const n: Needle = {
    needle: Int32Array.of(100, 101, 102),
    query: Int32Array.of(200, 100),
    answer: Int32Array.of(101, 102),
    text: "",
  };
  assert.equal(haystackLength(n, 20), 20 - 3 - 2 - 1);
  const hay = Int32Array.from({ length: 10 }, (_, i) => i + 1);
  const at = (d: number) => [...buildPrompt(hay, n, d).prompt];
  assert.deepEqual(at(0.5), [1, 2, 3, 4, 5, 100, 101, 102, 6, 7, 8, 9, 10, 200, 100]);
  assert.deepEqual(at(0), [100, 101, 102, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 200, 100]);
  assert.deepEqual(at(1), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100, 101, 102, 200, 100]);
  assert.equal(buildPrompt(hay, n, 0.26).at, 3);
  assert.throws(() => buildPrompt(hay, n, 1.5), /depth 1\.5/);
  assert.throws(() => haystackLength(n, 5), /shorter than the needle/);

  const t = textNeedle(bytes, new Rng(4));
  const text = Buffer.from(t.needle).toString("utf8");
  assert.match(text, /^ The secret number is (\d{4})\.$/);
  assert.equal(Buffer.from(t.answer).toString("utf8"), /(\d{4})/.exec(text)![1]);
  assert.ok(Buffer.from(t.query).toString("utf8").endsWith("? The secret number is "));
  assert.equal(t.text, text.trim());
  const p = tokenNeedle(Int32Array.of(7, 8, 9), new Rng(1));
  assert.deepEqual([...p.needle.subarray(0, 6)], [...p.query]);
  assert.deepEqual([...p.needle.subarray(6)], [...p.answer]);
  assert.ok([...p.needle].every((id) => id >= 7 && id <= 9));
});

test("niah: greedy scoring, log-probability and rank by hand", () => {
  const prompt = Int32Array.of(1, 2, 3, 4, 50, 60, 9, 1, 2, 3, 4);
  const oracle = scoreRetrieval(inductionDecoder(), prompt, Int32Array.of(50, 60));
  assert.deepEqual(oracle.predicted, [50, 60]);
  assert.ok(oracle.exact);
  assert.equal(oracle.firstRank, 0);
  // Logits 10 on the right token, 0 elsewhere: log p = 10 − log(e¹⁰ + 255) per token.
  assert.ok(Math.abs(oracle.logProb - 2 * (10 - Math.log(Math.exp(10) + 255))) < 1e-9);
  // Uniform logits: greedy picks id 0, log p = −2·log 256, nothing ranks above the answer.
  const uniform: Decoder = { start: () => new Float32Array(V), next: () => new Float32Array(V), close() {} };
  const u = scoreRetrieval(uniform, prompt, Int32Array.of(50, 60));
  assert.equal(u.exact, false);
  assert.deepEqual(u.predicted, [0, 0]);
  assert.ok(Math.abs(u.logProb + 2 * Math.log(256)) < 1e-9);
  assert.equal(u.firstRank, 0);
  // A decoder that ranks ids by their value: the answer 50 has 205 ids above it.
  const ramp: Decoder = {
    start: () => Float32Array.from({ length: V }, (_, i) => i),
    next: () => Float32Array.from({ length: V }, (_, i) => i),
    close() {},
  };
  const r = scoreRetrieval(ramp, prompt, Int32Array.of(50, 60));
  assert.equal(r.firstRank, 205);
  assert.deepEqual(r.predicted, [255, 255]);
});

test("niah: a Llama decoder (KV cache) scores the greedy continuation of a full forward as exact", () => {
  const c = { ...preset("tiny"), ...TINY };
  const model = new Llama(c, initWeights(c, { seed: 9 }), "t");
  const last = (ids: number[]) =>
    noGrad(() => scope(() => model.forward(Int32Array.from(ids)).toArray())).slice(-V);
  const prompt = Array.from({ length: 40 }, (_, i) => (i * 31 + 7) % V);
  const ctx = [...prompt];
  let logProb = 0;
  for (let i = 0; i < 3; i++) {
    const row = last(ctx);
    const best = row.indexOf(Math.max(...row));
    const max = row[best]!;
    logProb += -Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
    ctx.push(best);
  }
  const answer = Int32Array.from(ctx.slice(40));
  const d1 = llamaDecoder(model, 43);
  const r = scoreRetrieval(d1, Int32Array.from(prompt), answer);
  d1.close();
  assert.ok(r.exact, `greedy ${r.predicted} vs full forward ${[...answer]}`);
  assert.equal(r.firstRank, 0);
  assert.ok(Math.abs(r.logProb - logProb) < 1e-4, `${r.logProb} vs ${logProb}`);
  const wrong = Int32Array.from(answer, (t) => (t + 1) % V);
  const d2 = llamaDecoder(model, 43);
  assert.equal(scoreRetrieval(d2, Int32Array.from(prompt), wrong).exact, false);
  d2.close();
  model.dispose();
});

test("niah: the grid over lengths × depths on decoders of known reach", () => {
  const pool = Int32Array.from({ length: 50 }, (_, i) => i + 1);
  const grid = (window: number) =>
    niahGrid({
      lengths: [64, 128],
      depths: [0, 0.5, 1],
      trials: 3,
      seed: 1,
      needle: (rng) => tokenNeedle(pool, rng),
      // Haystack ids 100..199 never match a key made of ids 1..50.
      haystack: (rng, count) => Int32Array.from({ length: count }, () => 100 + Math.floor(rng.next() * 100)),
      decoder: () => inductionDecoder(window),
    });
  const all = grid(Number.POSITIVE_INFINITY);
  assert.deepEqual(
    all.map((c) => [c.length, c.depth, c.exact]),
    [
      [64, 0, 3],
      [64, 0.5, 3],
      [64, 1, 3],
      [128, 0, 3],
      [128, 0.5, 3],
      [128, 1, 3],
    ],
  );
  // Looking back 60 tokens: at length 128 the haystack is 109 tokens and the needle must start at
  // ≥ 128 − 5 − 60 = 63, so only depth 1 (position 109) is found; at 64 every depth is in reach.
  const near = grid(60);
  assert.deepEqual(
    near.map((c) => c.exact),
    [3, 3, 3, 0, 0, 3],
  );
  const svg = niahHeatmapSvg(near, "t");
  assert.equal(svg.match(/class="cell"/g)?.length, 6);
  assert.ok(svg.includes(">0/3</text>") && svg.includes(">3/3</text>"));
  assert.deepEqual(niahLengths({ lengths: null } as never, 256, 1024), [256, 512, 1024]);
  assert.deepEqual(niahLengths({ lengths: [100, 300, 2000] } as never, 256, 1024), [100, 300]);
});
