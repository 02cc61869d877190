// The validation loss (the split itself: test/train/heldoutSplit.test.ts): held-out windows by hand on a
// small shard; the validation loss equals a log-softmax computed here from the logits; with eval's
// evaluator handed to the trainer, valLoss lands in metrics.jsonl (every eval.every steps and at stage
// ends) and on loss.svg.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { heldoutTokens, heldoutWindows, validationLoss } from "../../src/eval/heldout.js";
import { pretrainEvaluator } from "../../src/eval/pretrainEvaluator.js";
import { Llama } from "../../src/model/llama.js";
import { initWeights } from "../../src/model/weights.js";
import { noGrad, scope } from "../../src/tensor/index.js";
import { heldoutSplit } from "../../src/train/heldoutSplit.js";
import { lossCurveSvg } from "../../src/train/lossCurve.js";
import { modelConfig, pretrain } from "../../src/train/trainer.js";
import { corpusShard, markedShard, tempDir, tinyConfig } from "../train/fixture.js";

test("heldout: windows by hand, spread over the held-out tokens", () => {
  const dir = tempDir();
  const shard = markedShard(dir);
  const set = heldoutSplit(tinyConfig(dir, shard, { eval: { heldout: 0.12 } }));
  // The held-out stream starts at token 850 (document 17).
  assert.deepEqual([...heldoutTokens(set, 48, 4)], [178, 179, 180, 181]);
  // Windows of 49+1 tokens start at 850, 899, 948 (the last one would need token 997+49 > 1000).
  const w = heldoutWindows(set, 49, 1000);
  assert.equal(w.batch, 3);
  assert.deepEqual([...w.ids.subarray(0, 3)], [170, 171, 172]);
  assert.deepEqual([...w.ids.subarray(49, 52)], [179, 180, 181]); // token 899 = doc 17, position 49
  assert.deepEqual([...w.docIds.subarray(49, 52)], [0, 1, 1]);
  assert.deepEqual([...w.targets.subarray(49, 52)], [-100, 181, 182]);
  // At most maxTokens / seqLen windows, first and last of the evenly spread ones.
  const two = heldoutWindows(set, 49, 98);
  assert.equal(two.batch, 2);
  assert.deepEqual([two.ids[0], two.ids[49]], [170, 188]);
  assert.throws(() => heldoutWindows(set, 200, 1000), /no window of 201 tokens.*eval\.heldout/);
});

test("heldout: validation loss equals the mean log-softmax of the targets computed from the logits", () => {
  const dir = tempDir();
  const cfg = tinyConfig(dir, markedShard(dir), { eval: { heldout: 0.12 } });
  const set = heldoutSplit(cfg);
  const mc = modelConfig(cfg);
  const model = new Llama(mc, initWeights(mc, { seed: 5 }), "t").trainable();
  const w = heldoutWindows(set, 24, 4 * 24);
  let sum = 0;
  let n = 0;
  for (let b = 0; b < w.batch; b++) {
    const part = (a: Int32Array) => a.subarray(b * 24, (b + 1) * 24);
    const logits = noGrad(() =>
      scope(() => model.forward(part(w.ids), { docIds: part(w.docIds) }).toArray()),
    );
    part(w.targets).forEach((t, i) => {
      if (t === -100) return;
      const row = logits.subarray(i * 256, (i + 1) * 256);
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
      sum += lse - row[t]!;
      n++;
    });
  }
  assert.ok(n > 80 && n < 96, `${n} targets: some windows cross a document boundary`);
  for (const rows of [1, 3]) {
    const v = validationLoss(model, set, 24, 4 * 24, rows);
    assert.ok(Math.abs(v - sum / n) < 1e-5, `${rows} rows per pass: ${v} vs ${sum / n}`);
  }
  model.dispose();
});

test("heldout: valLoss every eval.every steps and at stage ends, in metrics.jsonl and on loss.svg", async () => {
  const dir = tempDir();
  const cfg = tinyConfig(dir, corpusShard(dir, 20000), {
    stages: [
      { name: "a", kind: "initial", steps: 7, seqLen: 32, batch: 4 },
      { name: "b", kind: "initial", steps: 3, seqLen: 48, batch: 2 },
    ],
    eval: { every: 3, tokens: 512 },
  });
  const res = await pretrain(cfg, { evaluator: pretrainEvaluator() });
  const lines = readFileSync(join(res.runDir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  const withVal = lines.filter((m) => m.valLoss !== undefined).map((m) => [m.step, m.valSeqLen]);
  assert.deepEqual(withVal, [
    [3, 32],
    [6, 32],
    [7, 32],
    [9, 48],
    [10, 48],
  ]);
  const first = lines.find((m) => m.step === 3).valLoss;
  const last = lines.find((m) => m.step === 7).valLoss;
  assert.ok(first < Math.log(256) && last < first, `held-out loss falls: ${first} → ${last}`);
  const svg = readFileSync(join(res.runDir, "loss.svg"), "utf8");
  assert.match(svg, /<path class="val" d="M[^"]*( L[^"]*){4}"/);
  assert.ok(svg.includes("held-out loss (valLoss)"));
  assert.ok(!lossCurveSvg(lines.map((m) => ({ ...m, valLoss: undefined }))).includes('class="val"'));
  res.model.dispose();
});
