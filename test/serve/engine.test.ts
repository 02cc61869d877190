// The serving engine (src/serve/engine/): continuous batching must not change what a request gets —
// on the js backend, requests decoded together equal the same requests run alone and equal the plain
// generation loop (src/generate/generate.ts) with the same seed; a prefix-cache hit reports its cached
// tokens and gives the same tokens as a miss; cancellation frees the slot; admission waits for KV blocks;
// a full queue rejects; a token constraint is obeyed; log-probabilities match a direct forward.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { getBackend, setBackend } from "../../src/backends/index.js";
import { generate } from "../../src/generate/generate.js";
import { initWeights, KVCache, Llama, preset } from "../../src/model/index.js";
import type { TokenConstraint } from "../../src/serve/contracts.js";
import { Engine, type EngineOptions, logprobOf } from "../../src/serve/engine/engine.js";
import type { DoneEvent, GenerationRequest, TokenEvent } from "../../src/serve/engine/types.js";
import { noGrad } from "../../src/tensor/tape.js";
import { scope } from "../../src/tensor/tensor.js";

let previous = "";
before(() => {
  previous = getBackend().name;
  setBackend("js");
});
after(() => {
  setBackend(previous);
});

function tinyModel(): Llama {
  const cfg = { ...preset("tiny"), numHiddenLayers: 2 };
  return new Llama(cfg, initWeights(cfg, { seed: 3 }), "init");
}

function request(prompt: number[], over: Partial<GenerationRequest> = {}): GenerationRequest {
  return { prompt, maxTokens: 12, temperature: 0, topP: 1, seed: 0, stopIds: [], logprobs: null, ...over };
}

interface Outcome {
  tokens: TokenEvent[];
  done: DoneEvent;
}

/** Submit every request at once; resolve with each one's tokens and end. */
async function runAll(
  engine: Engine,
  reqs: GenerationRequest[],
  constraints: (TokenConstraint | null)[] = [],
): Promise<Outcome[]> {
  const out = reqs.map(
    (r, i) =>
      new Promise<Outcome>((resolve) => {
        const tokens: TokenEvent[] = [];
        engine.submit(
          r,
          { onTokens: (t) => tokens.push(...t), onDone: (done) => resolve({ tokens, done }) },
          constraints[i] ?? null,
        );
      }),
  );
  return Promise.all(out);
}

const prompts = Array.from({ length: 10 }, (_, i) =>
  Array.from({ length: 5 + ((i * 7) % 23) }, (_, t) => (1 + i * 31 + t * 17) % 512),
);
const reqs = prompts.map((p, i) =>
  request(p, {
    temperature: i % 3 === 0 ? 0 : 0.9,
    topP: 0.95,
    seed: 100 + i,
    maxTokens: 6 + (i % 5) * 3,
    stopIds: i % 2 === 0 ? Array.from({ length: 40 }, (_, k) => k * 13) : [],
  }),
);

test("forwardRows: one row computes exactly what forward with its KV cache does (prefill, then decode)", () => {
  const m = tinyModel();
  const p = prompts[3]!;
  noGrad(() =>
    scope(() => {
      const a = new KVCache(m.config, 1, 64);
      const b = new KVCache(m.config, 1, 64);
      const want = m.forward(Int32Array.from(p), { cache: a, logits: "last" }).data;
      const got = m.forwardRows(Int32Array.from(p), [{ cache: b, tokens: p.length }]).data;
      assert.deepEqual(got, want);
      const want2 = m.forward(Int32Array.of(5), { cache: a, logits: "last" }).data;
      const got2 = m.forwardRows(Int32Array.of(5), [{ cache: b, tokens: 1 }]).data;
      assert.deepEqual(got2, want2);
      a.dispose();
      b.dispose();
    }),
  );
  m.dispose();
});

test("continuous batching (js): concurrent requests each equal the request alone and generate()", async () => {
  const m = tinyModel();
  const opts: EngineOptions = { parallel: 6, prefillChunk: 8, prefillBudget: 16 };
  const together = await runAll(new Engine(m, opts), reqs);
  for (const [i, r] of reqs.entries()) {
    const [alone] = await runAll(new Engine(m, opts), [r]);
    assert.deepEqual(
      together[i]!.tokens.map((t) => t.id),
      alone!.tokens.map((t) => t.id),
      `request ${i}`,
    );
    assert.equal(together[i]!.done.finishReason, alone!.done.finishReason);
    const g = generate(m, r.prompt, {
      temperature: r.temperature,
      topP: r.topP,
      seed: r.seed,
      maxNewTokens: r.maxTokens,
      stopIds: r.stopIds,
    });
    assert.deepEqual(
      together[i]!.tokens.map((t) => t.id),
      g.tokens,
      `request ${i} against generate()`,
    );
    assert.equal(together[i]!.done.finishReason, g.finishReason === "stop_id" ? "stop" : "length");
  }
  assert.ok(
    together.some((o) => o.done.finishReason === "stop"),
    "some request ends on a stop id",
  );
  m.dispose();
});

test("prefix cache: a prompt sharing full blocks copies them, reports cached tokens, same output", async () => {
  const m = tinyModel();
  const shared = Array.from({ length: 40 }, (_, t) => (3 + t * 11) % 512);
  const engine = new Engine(m, { blockSize: 16 });
  const [first] = await runAll(engine, [request([...shared, 1, 2])]);
  assert.equal(first!.done.cachedTokens, 0);
  const second = request([...shared, 9, 8, 7], { temperature: 0.8, seed: 4 });
  const [hit] = await runAll(engine, [second]);
  assert.equal(hit!.done.cachedTokens, 32, "two full blocks of 16");
  assert.equal(hit!.done.timings.cache_n, 32);
  const [miss] = await runAll(new Engine(m, { blockSize: 16, prefixCache: false }), [second]);
  assert.equal(miss!.done.cachedTokens, 0);
  assert.deepEqual(
    hit!.tokens.map((t) => t.id),
    miss!.tokens.map((t) => t.id),
  );
  m.dispose();
});

test("cancel frees the slot at once; a full queue rejects; too long a request is refused", async () => {
  const m = tinyModel();
  const engine = new Engine(m, { parallel: 1, maxQueue: 1, prefixCache: false });
  let id = 0;
  const cancelled = new Promise<DoneEvent>((resolve) => {
    id = engine.submit(request(prompts[0]!, { maxTokens: 200 }), {
      onTokens: (t) => {
        if (t.length > 0 && engine.stats().active === 1) engine.cancel(id);
      },
      onDone: resolve,
    });
  });
  const waiting = runAll(engine, [request(prompts[1]!)]);
  assert.throws(
    () => engine.submit(request(prompts[2]!), { onTokens: () => {}, onDone: () => {} }),
    (e: Error & { reason?: string }) => e.reason === "queue_full",
  );
  const d = await cancelled;
  assert.equal(d.finishReason, "cancelled");
  assert.ok(d.completionTokens < 200);
  const [next] = await waiting;
  assert.equal(next!.done.finishReason, "length");
  assert.equal(engine.stats().active, 0);
  assert.equal(engine.stats().kvBlocksUsed, 0);
  assert.throws(
    () => engine.submit(request(prompts[0]!, { maxTokens: 252 }), { onTokens: () => {}, onDone: () => {} }),
    /exceeds the context length of 256/,
  );
  m.dispose();
});

test("admission by memory: a request waits until the blocks for prompt + max_tokens are free", async () => {
  const m = tinyModel();
  // 6 blocks of 16: each request needs 4 (17 prompt + 40 new), so only one runs at a time.
  const engine = new Engine(m, { parallel: 4, kvBlocks: 6, blockSize: 16, prefixCache: false });
  const order: string[] = [];
  const mk = (name: string, p: number[]) =>
    new Promise<void>((resolve) =>
      engine.submit(request(p, { maxTokens: 40 }), {
        onTokens: () => {
          if (order.at(-1) !== name) order.push(name);
        },
        onDone: () => resolve(),
      }),
    );
  await Promise.all([mk("a", prompts[5]!.slice(0, 30)), mk("b", prompts[6]!.slice(0, 30))]);
  assert.deepEqual(order, ["a", "b"], "b starts only after a has finished");
  m.dispose();
});

test("a token constraint masks sampling; logprobs equal a direct forward's log-softmax", async () => {
  const m = tinyModel();
  const V = m.config.vocabSize;
  /** Even ids only, four of them, then only the stop id 3. */
  class Evens implements TokenConstraint {
    n = 0;
    get complete() {
      return this.n >= 4;
    }
    mask() {
      const out = new Uint8Array(V);
      if (this.complete) out[3] = 1;
      else for (let i = 0; i < V; i += 2) out[i] = 1;
      return out;
    }
    accept(id: number) {
      if (this.mask()[id] !== 1) throw new Error(`id ${id} not allowed`);
      this.n++;
    }
  }
  const p = prompts[4]!;
  const [o] = await runAll(
    new Engine(m),
    [request(p, { temperature: 1, seed: 9, stopIds: [3], maxTokens: 10, logprobs: 3 })],
    [new Evens()],
  );
  const ids = o!.tokens.map((t) => t.id);
  assert.equal(ids.length, 4);
  assert.ok(ids.every((id) => id % 2 === 0));
  assert.equal(o!.done.finishReason, "stop");
  assert.equal(o!.done.stopId, 3);
  // Each reported logprob is the unconstrained model's, at the prefix the model saw.
  const seqIds = [...p];
  for (const t of o!.tokens) {
    const row = noGrad(() =>
      scope(() => m.forward(Int32Array.from(seqIds), { logits: "last" }).data.slice()),
    );
    const want = logprobOf(row, t.id, 3);
    assert.ok(Math.abs(t.logprob!.logprob - want.logprob) < 1e-5);
    assert.deepEqual(
      t.logprob!.top.map((x) => x.id),
      want.top.map((x) => x.id),
    );
    seqIds.push(t.id);
  }
  // Prompt log-probs: token i's log-probability given tokens < i, from one full forward.
  const [scored] = await runAll(new Engine(m, { prefillChunk: 8 }), [
    request(p, { maxTokens: 0, promptLogprobs: true, logprobs: 0 }),
  ]);
  const all = noGrad(() => scope(() => m.forward(Int32Array.from(p)).data.slice()));
  const lp = scored!.done.promptLogprobs!;
  assert.equal(lp.length, p.length - 1);
  for (let i = 1; i < p.length; i++) {
    const want = logprobOf(all.subarray((i - 1) * V, i * V), p[i]!, 0).logprob;
    assert.ok(Math.abs(lp[i - 1]!.logprob - want) < 1e-4, `prompt token ${i}`);
  }
  m.dispose();
});
