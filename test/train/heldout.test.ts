// The held-out split and the validation loss: the last documents of each shard are held out and the
// training loader never reads them (not even as targets); held-out windows by hand on a small shard;
// the validation loss equals a log-softmax computed here from the logits; data.validation shards may not
// be trained on; valLoss lands in metrics.jsonl (every eval.every steps and at stage ends) and on loss.svg.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { TokenShardWriter } from "../../src/data/shards.js";
import { Llama } from "../../src/model/llama.js";
import { initWeights } from "../../src/model/weights.js";
import { noGrad, scope } from "../../src/tensor/index.js";
import {
  heldoutSplit,
  heldoutTokens,
  heldoutWindows,
  loaderEnds,
  validationLoss,
} from "../../src/train/heldout.js";
import { PackedLoader } from "../../src/train/loader.js";
import { lossCurveSvg } from "../../src/train/lossCurve.js";
import { modelConfig, pretrain } from "../../src/train/trainer.js";
import { corpusShard, tempDir, tinyConfig } from "./fixture.js";

/** 20 documents of 50 tokens: document d holds ids 10·(d mod 20)..; the last ones are easy to spot. */
function markedShard(dir: string): string {
  const p = join(dir, "marked.tok");
  const w = new TokenShardWriter(p, 256);
  for (let d = 0; d < 20; d++) w.addDocument(Array.from({ length: 50 }, (_, i) => d * 10 + (i % 10)));
  w.close();
  return p;
}

test("heldout: the last documents are held out and the training loader never reads them", () => {
  const dir = tempDir();
  const shard = markedShard(dir);
  const cfg = tinyConfig(dir, shard, { eval: { heldout: 0.12 } });
  const set = heldoutSplit(cfg);
  // 12% of 1,000 tokens = 120 → the last 3 whole documents (150 tokens), from token 850.
  assert.deepEqual(set.spans, [{ path: shard, start: 850, end: 1000 }]);
  assert.equal(set.tokens, 150);
  assert.deepEqual(loaderEnds(set, [shard, "other.tok"]), [850, undefined]);
  assert.deepEqual([...heldoutTokens(set, 48, 4)], [178, 179, 180, 181]);
  const loader = new PackedLoader([shard], 16, 1, loaderEnds(set, [shard]));
  let maxId = 0;
  for (let i = 0; i < loader.size * 2; i++) {
    const b = loader.next(1);
    for (const v of [...b.ids, ...b.targets]) maxId = Math.max(maxId, v);
  }
  assert.equal(maxId, 169, "documents 17-19 (ids ≥ 170) never appear");
  loader.close();
  const all = new PackedLoader([shard], 16, 1);
  assert.ok(all.size > loader.size);
  all.close();
});

test("heldout: the trainer's loader skips the held-out documents", async () => {
  const dir = tempDir();
  const cfg = tinyConfig(dir, markedShard(dir), {
    eval: { heldout: 0.12 },
    stages: [{ kind: "initial", steps: 16, seqLen: 16, batch: 4 }],
  });
  const next = PackedLoader.prototype.next;
  let maxId = 0;
  let rows = 0;
  PackedLoader.prototype.next = function (this: PackedLoader, batch: number) {
    const b = next.call(this, batch);
    for (const v of [...b.ids, ...b.targets]) maxId = Math.max(maxId, v);
    rows += b.batch;
    return b;
  };
  try {
    (await pretrain(cfg)).model.dispose();
  } finally {
    PackedLoader.prototype.next = next;
  }
  assert.equal(rows, 64, "more than an epoch: all 53 training windows were read");
  assert.equal(maxId, 169);
});

test("heldout: windows by hand, spread over the held-out tokens", () => {
  const dir = tempDir();
  const shard = markedShard(dir);
  const set = heldoutSplit(tinyConfig(dir, shard, { eval: { heldout: 0.12 } }));
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

test("heldout: data.validation shards are held out whole and may not be trained on", () => {
  const dir = tempDir();
  const shard = corpusShard(dir, 6000);
  const val = markedShard(tempDir());
  const set = heldoutSplit(tinyConfig(dir, shard, { data: { shards: [shard], validation: [val] } }));
  assert.deepEqual(set.spans, [{ path: val, start: 0, end: 1000 }]);
  assert.equal(set.trainEnds.size, 0, "training shards are not cut");
  const bad = tinyConfig(dir, shard, {
    data: { shards: [shard], validation: [val] },
    stages: [{ name: "s", kind: "initial", steps: 1, seqLen: 16, batch: 1, shards: [val] }],
  });
  assert.throws(
    () => heldoutSplit(bad),
    /data\.validation: .*marked\.tok is also a training shard of stage 's'/,
  );
  assert.equal(heldoutSplit(tinyConfig(dir, shard, { eval: { heldout: 0 } })).spans.length, 0);
  assert.throws(
    () => tinyConfig(dir, shard, { eval: { every: -1 } }),
    /field 'eval\.every' must be an integer ≥ 0/,
  );
  assert.throws(() => tinyConfig(dir, shard, { eval: { heldout: 0.9 } }), /field 'eval\.heldout'/);
  assert.throws(
    () => tinyConfig(dir, shard, { eval: { often: 1 } }),
    /field 'eval\.often' is not a known field/,
  );
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
  const res = await pretrain(cfg);
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
