// Multiple-choice scoring by log-likelihood on a real model (stories260K): the shared-prefix path (one
// prefill, the choices as a batch of KV-cache copies) equals the naive path (a full sequence per choice,
// the harness's way) bit for bit on the js backend, whose kernels sum each row alike whatever the number
// of rows, and to rounding on the default backend; both equal a hand computation (log-softmax of a full
// forward's logits); the context/continuation split is the harness's _encode_pair. What is shared is
// proved by counting forwards (test/eval/forwards.ts): one prefill per item; MMLU's 5-shot prefix once
// per subject, each item computing only its own question; n sampled completions of one prompt (a code
// task's request, HumanEval's stop strings) from one prefill, decoded as a batch, equal to n fresh
// generations and to the naive path.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, test } from "node:test";
import { getBackend, setBackend } from "../../src/backends/index.js";
import { commonPrefixLength, encodePair, evaluateTasks } from "../../src/eval/harness.js";
import { scoreContinuations } from "../../src/eval/loglikelihood.js";
import { buildTurns, renderText } from "../../src/eval/prompt.js";
import { resolveTasks } from "../../src/eval/registry.js";
import type { Item, TaskSpec } from "../../src/eval/task.js";
import { choiceItem } from "../../src/eval/tasks/common.js";
import { generate, PieceVocab } from "../../src/generate/index.js";
import { initWeights, KVCache, Llama, loadModel } from "../../src/model/index.js";
import { noGrad, scope } from "../../src/tensor/index.js";
import { repoPath } from "../helpers.js";
import { countForwards, tokensOf } from "./forwards.js";

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

/** The forwards the shared path makes for an item's choices after its context: one per length > 1. */
function choiceCalls(context: readonly number[], continuations: readonly number[][]) {
  const lengths = [...new Set(continuations.map((c) => c.length).filter((n) => n > 1))];
  return lengths.map((n) => {
    const rows = continuations.filter((c) => c.length === n).length;
    return { tokens: rows * (n - 1), batch: rows, cached: context.length };
  });
}

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
  const calls = countForwards(model);
  const shared = scoreContinuations(model, context, continuations);
  // One prefill of the context, then one batched forward per length of the choices longer than a token.
  const lengths = [...new Set(continuations.map((c) => c.length).filter((n) => n > 1))];
  assert.ok(lengths.length >= 2, "choices of several lengths");
  assert.deepEqual(calls[0], { tokens: context.length, batch: 1, cached: 0 });
  assert.deepEqual(calls.slice(1), choiceCalls(context, continuations));
  calls.length = 0;
  const naive = scoreContinuations(model, context, continuations, { path: "naive" });
  // The harness's way: every choice its own full sequence.
  assert.deepEqual(
    calls,
    continuations.map((c) => ({ tokens: context.length + c.length - 1, batch: 1, cached: -1 })),
  );
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

/** stories260K's vocabulary, random weights of a smaller shape and a 2,048-token window (MMLU's 5-shot prompts are longer than 512). */
async function wideModel(): Promise<Llama> {
  const base = await loadModel(stories);
  const cfg = {
    ...base.config,
    hiddenSize: 32,
    intermediateSize: 64,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    headDim: 8,
    numHiddenLayers: 1,
    maxPositionEmbeddings: 2048,
  };
  base.dispose();
  return new Llama(cfg, initWeights(cfg, { seed: 5 }), "init");
}

test("MMLU: a subject's 5-shot prefix is computed once, each item only its question; scores equal the naive path exactly (js)", async () => {
  setBackend("js");
  const model = await wideModel();
  const task = resolveTasks(["mmlu"])[0] as TaskSpec;
  const ctx = {
    dataDir: repoPath("test", "fixtures", "eval"),
    chat: false,
    limit: 3,
    codec,
    logSamples: true,
  };
  const calls = countForwards(model);
  const shared = await evaluateTasks(model, [task], ctx);
  const sharedCalls = calls.splice(0);
  // The naive path (every choice its own full sequence) on the first subject: it is the slow one.
  const first: TaskSpec = { ...task, group: false, build: (c) => task.build(c).slice(0, 1) };
  const naive = await evaluateTasks(model, [first], { ...ctx, path: "naive" });
  const name = Object.keys(naive.samples)[0]!;
  assert.deepEqual(shared.samples[name], naive.samples[name], "every choice's log-likelihood");
  assert.deepEqual(shared.results[name], naive.results[name]);
  const expected: typeof calls = [];
  let naiveTokens = 0;
  const subjects = task.build(ctx);
  assert.equal(subjects.length, 2);
  for (const sub of subjects) {
    const pairs = sub.items.map((i) =>
      encodePair(i as Item & { request: { type: "loglikelihood" } }, codec, 1, false),
    );
    const contexts = pairs.map((p) => p.context);
    const P = commonPrefixLength(contexts);
    // The prefix is the description and the five shots: all of the prompt but the item's question.
    const turns = sub.items[0]!.request.turns;
    const shots = codec.encode!(renderText(turns.slice(0, -1))).length;
    assert.ok(P >= shots - 1 && P <= shots + 1, `prefix of ${P} tokens, the shots ${shots}`);
    expected.push({ tokens: P, batch: 1, cached: 0 });
    for (const { context, continuations } of pairs) {
      expected.push(
        { tokens: context.length - P, batch: 1, cached: P },
        ...choiceCalls(context, continuations),
      );
      if (sub.name === name) for (const c of continuations) naiveTokens += context.length + c.length - 1;
    }
  }
  assert.deepEqual(sharedCalls, expected);
  assert.equal(tokensOf(calls), naiveTokens);
  assert.ok(tokensOf(sharedCalls) * 3 < naiveTokens, "both subjects shared cost under a third of one naive");
  model.dispose();
  setBackend(initial);
});

test("n sampled completions of a prompt (HumanEval's request) decode as one batch from one prefill, as n fresh generations", async () => {
  setBackend("js");
  const model = await loadModel(stories);
  const texts = [
    "Once upon a time, Lily went to the park with her mom",
    "Once upon a time, Tom saw a big red dog",
  ];
  const until = [".", "\ndef", "\nclass", "\nif", "\nprint", "\n#"]; // HumanEval's stops and a story's
  const got: string[][] = [];
  const spec: TaskSpec = {
    name: "sampled",
    summary: "",
    build: () => [
      {
        name: "sampled",
        original: texts.length,
        nShot: 0,
        version: 1,
        metrics: { "pass@1,none": true },
        config: {},
        items: texts.map((text, doc) => ({
          doc,
          target: "",
          request: {
            type: "generate_until",
            turns: buildTurns({ shots: [], text }),
            until,
            maxNewTokens: 12,
            n: 3,
            temperature: 1,
          },
          score: async (r) => {
            if (r.type === "generate_until") got.push(r.outputs);
            return { metrics: { "pass@1,none": 0 }, extracted: null, target: "" };
          },
        })),
      },
    ],
  };
  const calls = countForwards(model);
  await evaluateTasks(model, [spec], { dataDir: "", chat: false, codec });
  const sharedCalls = calls.splice(0);
  await evaluateTasks(model, [spec], { dataDir: "", chat: false, codec, path: "naive" });
  assert.deepEqual(got[0], got[2], "the naive path: every completion its own generation");
  assert.deepEqual(got[1], got[3]);
  const ids = texts.map((t) => [1, ...codec.encode!(t)]);
  for (const [k, prompt] of ids.entries()) {
    const fresh = [0, 1, 2].map(
      (seed) =>
        generate(model, prompt, {
          maxNewTokens: 12,
          temperature: 1,
          topP: 1,
          seed,
          stopIds: [2],
          stopStrings: until,
          codec,
        }).text,
    );
    assert.deepEqual(got[k], fresh);
    assert.ok(fresh.every((f) => !f.includes(".")));
  }
  assert.ok(new Set(got.flat()).size > 1, "different seeds sample different stories");
  // Forwards: the prompts' common start once, each prompt's rest once, then decode steps of one token
  // per running row, the three samples together.
  const P = commonPrefixLength(ids);
  assert.ok(P >= 6);
  const prefills = sharedCalls.filter((c) => c.tokens > c.batch);
  assert.deepEqual(prefills, [
    { tokens: P, batch: 1, cached: 0 },
    { tokens: ids[0]!.length - P, batch: 1, cached: P },
    { tokens: ids[1]!.length - P, batch: 1, cached: P },
  ]);
  const steps = sharedCalls.filter((c) => c.tokens === c.batch);
  assert.equal(steps.length + prefills.length, sharedCalls.length);
  assert.ok(steps.length <= 2 * 11, `${steps.length} decode steps for 2 prompts × 12 tokens`);
  assert.ok(steps.some((c) => c.batch === 3));
  assert.ok(steps.every((c) => c.batch <= 3));
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
