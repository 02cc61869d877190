// Multiple-choice scoring by log-likelihood on a real model (stories260K): the shared-prefix path (one
// prefill, KV-cache forks) equals the naive path (a full sequence per choice, the harness's way) bit for
// bit on the js backend, whose kernels sum each row alike whatever the number of rows, and to rounding on
// the default backend; both equal a hand computation (log-softmax of a full forward's logits); the
// context/continuation split is the harness's _encode_pair. n sampled completions of one prompt (what a
// code task asks for) fork one prefill and equal n fresh generations.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, test } from "node:test";
import { getBackend, setBackend } from "../../src/backends/index.js";
import { encodePair, evaluateTasks } from "../../src/eval/harness.js";
import { scoreContinuations } from "../../src/eval/loglikelihood.js";
import { buildTurns } from "../../src/eval/prompt.js";
import type { TaskSpec } from "../../src/eval/task.js";
import { choiceItem } from "../../src/eval/tasks/common.js";
import { generate, PieceVocab } from "../../src/generate/index.js";
import { KVCache, loadModel } from "../../src/model/index.js";
import { noGrad, scope } from "../../src/tensor/index.js";
import { repoPath } from "../helpers.js";

const stories = repoPath("test", "fixtures", "stories260K");
const codec = PieceVocab.fromFile(join(stories, "vocab.json"));
const initial = getBackend();
after(() => setBackend(initial));

const item = choiceItem(
  0,
  buildTurns({
    shots: [{ text: "Tom had a red ball. What colour was the ball?", target: "red" }],
    text: "Lily saw a big dog. What did Lily see?",
  }),
  ["a dog", "a cat", "the sun in the sky", "dog"],
  0,
  { dataDir: "", chat: false },
  true,
);

/** Sum of log-softmax over a full forward of context + continuation (f64), computed here by hand. */
async function hand(context: number[], cont: number[]): Promise<number> {
  const model = await loadModel(stories);
  const ids = Int32Array.from([...context, ...cont]);
  const logits = noGrad(() => scope(() => model.forward(ids).toArray()));
  const V = model.config.vocabSize;
  let total = 0;
  for (let i = 0; i < cont.length; i++) {
    const row = logits.subarray((context.length - 1 + i) * V, (context.length + i) * V);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((a, x) => a + Math.exp(x - m), 0));
    total += row[cont[i]!]! - lse;
  }
  model.dispose();
  return total;
}

test("the context/continuation split is the harness's: trailing spaces move, the whole is encoded once", () => {
  const req = item.request as Extract<typeof item.request, { type: "loglikelihood" }>;
  const { context, continuations } = encodePair({ ...item, request: req }, codec, 1, false);
  assert.equal(context[0], 1);
  assert.equal(context.filter((t) => t === 1).length, 1, "exactly one BOS");
  const text = "Tom had a red ball. What colour was the ball? red\n\nLily saw a big dog. What did Lily see?";
  for (const [i, c] of req.choices.entries()) {
    const whole = [1, ...codec.encode!(text + c)];
    assert.deepEqual([...context, ...continuations[i]!], whole);
  }
});

test("shared prefix equals the naive path exactly on js, and both equal a hand computation", async () => {
  setBackend("js");
  const model = await loadModel(stories);
  const req = item.request as Extract<typeof item.request, { type: "loglikelihood" }>;
  const { context, continuations } = encodePair({ ...item, request: req }, codec, 1, false);
  const shared = scoreContinuations(model, context, continuations);
  const naive = scoreContinuations(model, context, continuations, { path: "naive" });
  const batched = scoreContinuations(model, context, continuations, { path: "naive", batch: 4 });
  assert.deepEqual(shared, naive);
  assert.deepEqual(batched, naive);
  for (const [i, c] of continuations.entries())
    assert.ok(Math.abs(shared[i]!.logprob - (await hand(context, c))) < 1e-9);
  // The item's scorer picks the argmax (acc) and the argmax per character (acc_norm) of these.
  const s = item.score({ type: "loglikelihood", scores: shared }) as { metrics: Record<string, number> };
  const ll = shared.map((x) => x.logprob);
  const best = ll.indexOf(Math.max(...ll));
  const norm = ll.map((l, i) => l / ["a dog", "a cat", "the sun in the sky", "dog"][i]!.length);
  assert.equal(s.metrics["acc,none"], best === 0 ? 1 : 0);
  assert.equal(s.metrics["acc_norm,none"], norm.indexOf(Math.max(...norm)) === 0 ? 1 : 0);
  model.dispose();
  setBackend(initial);
});

test("on the default backend the two paths agree to rounding and choose alike", async () => {
  const model = await loadModel(stories);
  const req = item.request as Extract<typeof item.request, { type: "loglikelihood" }>;
  const { context, continuations } = encodePair({ ...item, request: req }, codec, 1, false);
  const shared = scoreContinuations(model, context, continuations);
  const naive = scoreContinuations(model, context, continuations, { path: "naive", batch: 2 });
  for (const [i, s] of shared.entries()) {
    assert.ok(Math.abs(s.logprob - naive[i]!.logprob) < 1e-3, `${s.logprob} vs ${naive[i]!.logprob}`);
    assert.equal(s.greedy, naive[i]!.greedy);
    assert.equal(s.tokens, continuations[i]!.length);
  }
  assert.throws(() => scoreContinuations(model, context, [[]]), /empty continuation/);
  assert.throws(() => scoreContinuations(model, [], [[5]]), /empty context/);
  model.dispose();
});

test("n sampled completions of one prompt (a code task's request) fork one prefill, as n fresh generations", async () => {
  setBackend("js");
  const model = await loadModel(stories);
  const turns = buildTurns({ shots: [], text: "Once upon a time, Lily" });
  const got: string[][] = [];
  const spec: TaskSpec = {
    name: "sampled",
    summary: "",
    build: () => [
      {
        name: "sampled",
        original: 1,
        nShot: 0,
        version: 1,
        metrics: { "pass@1,none": true },
        config: {},
        items: [
          {
            doc: 0,
            target: "",
            request: { type: "generate_until", turns, until: ["."], maxNewTokens: 12, n: 3, temperature: 1 },
            score: async (r) => {
              if (r.type === "generate_until") got.push(r.outputs);
              return { metrics: { "pass@1,none": 0 }, extracted: null, target: "" };
            },
          },
        ],
      },
    ],
  };
  await evaluateTasks(model, [spec], { dataDir: "", chat: false, codec });
  const ids = [1, ...codec.encode!("Once upon a time, Lily")];
  const fresh = [0, 1, 2].map(
    (seed) =>
      generate(model, ids, {
        maxNewTokens: 12,
        temperature: 1,
        topP: 1,
        seed,
        stopIds: [2],
        stopStrings: ["."],
        codec,
      }).text,
  );
  assert.deepEqual(got, [fresh]);
  assert.ok(new Set(fresh).size > 1, "different seeds sample different stories");
  model.dispose();
  setBackend(initial);
});

test("KVCache.truncate rewinds within what is cached and refuses anything else", async () => {
  const model = await loadModel(stories);
  const cache = new KVCache(model.config, 1, 8);
  noGrad(() => scope(() => model.forward(Int32Array.from([1, 403, 407]), { cache, logits: "last" })));
  assert.equal(cache.length, 3);
  cache.truncate(1);
  assert.equal(cache.length, 1);
  assert.throws(() => cache.truncate(2), /KVCache.truncate: 2 is not in 0\.\.1/);
  assert.throws(() => cache.truncate(-1), /not in 0\.\.1/);
  cache.dispose();
  model.dispose();
});
