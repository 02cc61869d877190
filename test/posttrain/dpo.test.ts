// DPO: the loss and its gradient w.r.t. the policy log-probabilities equal the closed form on fixed
// numbers (values computed independently), with and without the NLL term and for both NLL reductions;
// the per-token log-prob op's gradient matches finite differences; formatting tokens contribute nothing to
// a response's log-probability; accumulation over micro-batches is exact; a short run on a toy
// preference set separates chosen from rejected; the reference cache is reused and a stale one detected.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { validate } from "../../src/core/schema.js";
import { DPO_SCHEMA } from "../../src/posttrain/config.js";
import { type PreferenceExample, readPreferences } from "../../src/posttrain/data.js";
import {
  cachedReference,
  type DpoPair,
  dpo,
  dpoLoss,
  dpoStep,
  pairLogps,
  REFERENCE_CACHE,
} from "../../src/posttrain/dpo.js";
import { targetLogProbs } from "../../src/posttrain/logprobs.js";
import { backward } from "../../src/tensor/tape.js";
import { parameter, scope } from "../../src/tensor/tensor.js";
import { maxRelError } from "../helpers.js";
import { byteChat, jsonl, tempDir, tinyModel } from "./fixture.js";

const pairs: DpoPair[] = [
  { policy: { chosen: -5, rejected: -7 }, reference: { chosen: -6, rejected: -6 }, chosenTokens: [-1, -2] },
  { policy: { chosen: -3, rejected: -2 }, reference: { chosen: -2.5, rejected: -2.5 }, chosenTokens: [-0.5] },
];
const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test("loss and gradient equal the closed form, with and without NLL", () => {
  const plain = dpoLoss(pairs, { beta: 0.1, nllWeight: 0, reduction: "token-mean" });
  close(plain.loss, 0.6712677647275813);
  close(plain.dChosen[0]!, -0.02250830013437611);
  close(plain.dChosen[1]!, -0.026248959373947);
  close(plain.dRejected[0]!, 0.02250830013437611);
  assert.deepEqual(plain.dChosenTokens, [[-0, -0], [-0]]);
  const tok = dpoLoss(pairs, { beta: 0.1, nllWeight: 0.2, reduction: "token-mean" });
  close(tok.loss, 0.9046010980609147);
  close(tok.dChosenTokens[0]![0]!, -0.2 / 3);
  const seq = dpoLoss(pairs, { beta: 0.1, nllWeight: 0.2, reduction: "sequence-sum" });
  close(seq.loss, 1.0212677647275814);
  close(seq.dChosenTokens[1]![0]!, -0.2 / 2);
  // Finite differences of the loss w.r.t. each input log-prob.
  const h = 1e-6;
  const f = (p: DpoPair[]) => dpoLoss(p, { beta: 0.1, nllWeight: 0.2, reduction: "token-mean" }).loss;
  const bumped = (fn: (p: DpoPair[]) => void) => {
    const p = structuredClone(pairs);
    fn(p);
    return (f(p) - tok.loss) / h;
  };
  close(
    bumped((p) => (p[0]!.policy.chosen += h)),
    tok.dChosen[0]!,
    1e-6,
  );
  close(
    bumped((p) => (p[1]!.policy.rejected += h)),
    tok.dRejected[1]!,
    1e-6,
  );
  close(
    bumped((p) => ((p[0]!.chosenTokens as number[])[1]! += h)),
    tok.dChosenTokens[0]![1]!,
    1e-6,
  );
  close(tok.sums["rewards/accuracies"]!, 1);
  close(tok.sums["rewards/margins"]!, 0.2 - 0.1);
});

test("targetLogProbs: values and gradient against finite differences", () => {
  const V = 5;
  const x = parameter(
    Float32Array.from({ length: 3 * V }, (_, i) => Math.sin(i * 1.3)),
    [3, V],
  );
  const targets = Int32Array.of(2, -100, 4);
  const g = Float32Array.of(0.7, 0.3, -1.1);
  const f = (d: Float32Array) => {
    let s = 0;
    for (const r of [0, 2]) {
      const row = d.subarray(r * V, r * V + V);
      const lse = Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
      s += g[r]! * (row[targets[r]!]! - lse);
    }
    return s;
  };
  scope(() => {
    const lp = targetLogProbs(x, targets);
    assert.equal(lp.data[1], 0);
    backward(lp, g);
  });
  const d = Float64Array.from(x.data);
  for (let i = 0; i < d.length; i++) {
    const p = Float32Array.from(d);
    const m = Float32Array.from(d);
    p[i]! += 1e-3;
    m[i]! -= 1e-3;
    close(x.grad!.data[i]!, (f(p) - f(m)) / 2e-3, 1e-3);
  }
});

const dir = tempDir();
const chat = byteChat();
const a = (s: string) => [{ role: "assistant", content: s }];
const lines = ["red", "blue", "green", "gold"].map((c) => ({
  prompt: [{ role: "user", content: `Say ${c}` }],
  chosen: a(c),
  rejected: a(`no ${c.slice(0, 2)}`),
}));
const prefs = readPreferences(jsonl(dir, "pref.jsonl", lines), { chat, vocabSize: 512, maxLen: 128 });

test("formatting tokens contribute nothing to a response's log-probability", () => {
  const model = tinyModel();
  const p = prefs.examples[0]!;
  const [got] = pairLogps(model, [p], 128, 1);
  // Independently: the forward of prompt + chosen alone, log-softmax summed over the content bytes only.
  const ids = Int32Array.from([...p.prompt, ...p.chosen.ids]);
  const content = new Set(chat.tokenizer.encode("red").map((_, j) => p.prompt.length + 13 + j)); // after the header: 1 + "assistant" + 1 + "\n\n" bytes
  let want = 0;
  let all = 0;
  scope(() => {
    const logits = model.forward(ids).data;
    for (let i = p.prompt.length; i < ids.length; i++) {
      const row = logits.subarray((i - 1) * 512, i * 512);
      const lse = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
      const lp = row[ids[i]!]! - lse;
      all += lp;
      if (content.has(i)) want += lp;
    }
  });
  close(got!.chosen, want, 1e-3);
  assert.ok(Math.abs(all - want) > 1, "the formatting tokens do carry log-probability");
  model.dispose();
});

function grads(m: ReturnType<typeof tinyModel>) {
  return m.parameters().map((t) => Float32Array.from(t.grad!.data));
}

test("micro-batches accumulate to the batch's gradient", () => {
  const model = tinyModel();
  model.trainable();
  const ref = pairLogps(model, prefs.examples, 128, 4).map((r) => ({
    chosen: r.chosen + 1,
    rejected: r.rejected - 1,
  }));
  const s = { beta: 0.1, nllWeight: 0.2, reduction: "token-mean" as const, seqLen: 128, micro: 4 };
  const one = dpoStep(model, prefs.examples, ref, [0, 1, 2, 3], s);
  const g1 = grads(model);
  for (const p of model.parameters()) p.grad = null;
  const two = dpoStep(model, prefs.examples, ref, [0, 1, 2, 3], { ...s, micro: 3 });
  close(one.loss, two.loss, 1e-5);
  grads(model).forEach((g, i) => {
    assert.ok(maxRelError(g, g1[i]!, 1e-3) < 1e-3, `parameter ${i}`);
  });
  model.dispose();
});

test("a short run separates chosen from rejected; the reference cache is reused, a stale one refused", async () => {
  const model = tinyModel();
  const runDir = join(dir, "run");
  const compute = () => pairLogps(model, prefs.examples, 128, 4);
  const reference = await cachedReference(runDir, "k1", compute);
  assert.ok(existsSync(join(runDir, REFERENCE_CACHE)));
  assert.deepEqual(await cachedReference(runDir, "k1", () => assert.fail("recomputed")), reference);
  const cfg = {
    ...validate(DPO_SCHEMA, { steps: 15, batch: 4, "checkpoint-every": 15 }, "test"),
    lr: 3e-3,
    "seq-len": 128,
  };
  const res = await dpo({ runDir, model, data: prefs.examples as PreferenceExample[], cfg, reference });
  const last = res.history.at(-1)!;
  assert.equal(last["rewards/accuracies"], 1);
  assert.ok(last["rewards/margins"]! > 0.5, String(last["rewards/margins"]));
  assert.ok(last.loss < res.history[0]!.loss);
  await assert.rejects(cachedReference(runDir, "k2", compute), /stale/);
  model.dispose();
});
