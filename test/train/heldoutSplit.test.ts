// The held-out split: the last documents of each shard are held out and the training loader never reads
// them (not even as targets), in the trainer too (which, without an evaluator, records no evaluation);
// data.validation shards are held out whole and may not be trained on; the eval fields' validation.
import assert from "node:assert/strict";
import { test } from "node:test";
import { heldoutSplit, loaderEnds } from "../../src/train/heldoutSplit.js";
import { PackedLoader } from "../../src/train/loader.js";
import { pretrain } from "../../src/train/trainer.js";
import { corpusShard, markedShard, tempDir, tinyConfig } from "./fixture.js";

test("heldout: the last documents are held out and the training loader never reads them", () => {
  const dir = tempDir();
  const shard = markedShard(dir);
  const cfg = tinyConfig(dir, shard, { eval: { heldout: 0.12 } });
  const set = heldoutSplit(cfg);
  // 12% of 1,000 tokens = 120 → the last 3 whole documents (150 tokens), from token 850.
  assert.deepEqual(set.spans, [{ path: shard, start: 850, end: 1000 }]);
  assert.equal(set.tokens, 150);
  assert.deepEqual(loaderEnds(set, [shard, "other.tok"]), [850, undefined]);
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
    const res = await pretrain(cfg);
    assert.ok(
      res.history.every((m) => m.valLoss === undefined && m.longContext === undefined),
      "without an evaluator the run records no evaluation",
    );
    res.model.dispose();
  } finally {
    PackedLoader.prototype.next = next;
  }
  assert.equal(rows, 64, "more than an epoch: all 53 training windows were read");
  assert.equal(maxId, 169);
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
