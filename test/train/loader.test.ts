// The packed-sequence loader: windows cover the shard, targets are the next tokens (ignored across a
// document boundary), document ids restart per row, order is fixed by the seed, and a restored position
// continues the same sequence of batches.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { TokenShardWriter } from "../../src/data/shards.js";
import { PackedLoader } from "../../src/train/loader.js";
import { corpusShard, tempDir } from "./fixture.js";

test("loader: targets, document ids and the boundary between documents", () => {
  const p = join(tempDir(), "a.tok");
  const w = new TokenShardWriter(p, 100);
  w.addDocument([1, 2, 3]);
  w.addDocument([4, 5, 6, 7, 8, 9]);
  w.close();
  const l = new PackedLoader([p], 4, 1);
  assert.equal(l.size, 2); // windows at 0 and 4 (each needs 5 tokens)
  const seen = [l.next(1), l.next(1)].sort((a, b) => a.ids[0]! - b.ids[0]!);
  assert.deepEqual([...seen[0]!.ids], [1, 2, 3, 4]);
  assert.deepEqual([...seen[0]!.targets], [2, 3, -100, 5]);
  assert.deepEqual([...seen[0]!.docIds], [0, 0, 0, 1]);
  assert.deepEqual([...seen[1]!.ids], [5, 6, 7, 8]);
  assert.deepEqual([...seen[1]!.targets], [6, 7, 8, 9]);
  assert.deepEqual([...seen[1]!.docIds], [0, 0, 0, 0]);
  l.close();
});

test("loader: same seed same order, other seed other order; restore continues exactly", () => {
  const shard = corpusShard(tempDir(), 20000);
  const a = new PackedLoader([shard], 32, 7);
  const b = new PackedLoader([shard], 32, 7);
  const c = new PackedLoader([shard], 32, 8);
  const first = a.next(4);
  assert.deepEqual(first.ids, b.next(4).ids);
  assert.notDeepEqual(first.ids, c.next(4).ids);
  // Run past an epoch boundary, save the position, and compare what follows.
  for (let i = 0; i < a.size / 4 + 3; i++) a.next(4);
  const pos = JSON.parse(JSON.stringify(a.position));
  assert.ok(pos.epoch >= 1);
  const d = new PackedLoader([shard], 32, 7);
  d.restore(pos);
  for (let i = 0; i < 5; i++) assert.deepEqual(d.next(3), a.next(3));
  for (const l of [a, b, c, d]) l.close();
});

test("loader: a sequence-length change keeps the epoch's share in tokens; a restore repeats it", () => {
  const shard = corpusShard(tempDir(), 20000);
  const a = new PackedLoader([shard], 32, 7);
  for (let i = 0; i < 5; i++) a.next(2);
  assert.deepEqual(a.position, { epoch: 0, cursor: 10, seqLen: 32 });
  const saved = JSON.parse(JSON.stringify(a.position));
  a.setSeqLen(64);
  // 10 windows of 32 tokens = 5 windows of 64: the new length's order continues at window 5.
  assert.deepEqual(a.position, { epoch: 0, cursor: 5, seqLen: 64 });
  assert.ok(Math.abs(a.size - 20000 / 65) < a.size * 0.1, `${a.size} windows of 64`);
  // A loader made at 64 and given the position saved at 32 (a resume across the switch) goes on alike.
  const b = new PackedLoader([shard], 64, 7);
  b.restore(saved);
  assert.deepEqual(b.position, a.position);
  for (let i = 0; i < 3; i++) {
    const x = a.next(2);
    assert.equal(x.seqLen, 64);
    assert.deepEqual(b.next(2), x);
  }
  // The new length's order is its own, not the old windows cut differently.
  const c = new PackedLoader([shard], 64, 7);
  assert.notDeepEqual(c.next(1).ids.slice(0, 32), new PackedLoader([shard], 32, 7).next(1).ids);
  assert.throws(() => b.restore({ epoch: 0, cursor: 1, seqLen: 0 }), /bad position/);
  for (const l of [a, b, c]) l.close();
});
