// The three-stage recipe on a tiny model: initial → long-context (32 → 64 tokens) → annealing on another
// shard with the rate falling to 0; final/ is the Polyak average of the annealing checkpoints, and
// loss.svg marks the three stage boundaries.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { readHFCheckpoint } from "../../src/model/checkpoint/hf.js";
import { averageCheckpoints, listCheckpoints } from "../../src/train/checkpoint.js";
import { pretrain } from "../../src/train/trainer.js";
import { corpusShard, tempDir, tinyConfig } from "./fixture.js";

test("stages: long-context step, annealing to 0, Polyak-averaged final weights, loss curve", async () => {
  const dir = tempDir();
  const shard = corpusShard(dir, 30000);
  const hq = corpusShard(tempDir(), 8000);
  const cfg = tinyConfig(dir, shard, {
    stages: [
      { name: "initial", kind: "initial", steps: 8, seqLen: 32, batch: 4 },
      { name: "long-64", kind: "long-context", steps: 4, seqLen: 64, batch: 2 },
      { name: "anneal", kind: "annealing", steps: 4, seqLen: 64, batch: 2, shards: [hq] },
    ],
    checkpoint: { every: 100, keep: 1, annealEvery: 1 },
  });
  const res = await pretrain(cfg);
  const h = res.history;
  assert.deepEqual(
    h.map((m) => m.seqLen),
    [...Array(8).fill(32), ...Array(8).fill(64)],
  );
  assert.deepEqual(
    h.slice(12).map((m) => m.lr),
    [1, 0.75, 0.5, 0.25].map((f) => f * h[11]!.lr),
  );
  const ck = listCheckpoints(join(res.runDir, "checkpoints"));
  const annealed = ck.filter((c) => c.step > 12);
  assert.deepEqual(
    annealed.map((c) => c.step),
    [13, 14, 15, 16],
    "annealing checkpoints are kept for averaging",
  );
  const avg = await averageCheckpoints(annealed.map((c) => c.path));
  const { tensors } = await readHFCheckpoint(join(res.runDir, "final"));
  for (const [name, t] of avg) assert.deepEqual(tensors.get(name)!.data, t.data, name);
  const last = res.model.weights.get("model.norm.weight")!.data;
  assert.notDeepEqual(tensors.get("model.norm.weight")!.data, last, "the average is not the last checkpoint");
  const svg = readFileSync(join(res.runDir, "loss.svg"), "utf8");
  assert.equal(svg.match(/class="stage"/g)?.length, 3);
  for (const s of ["initial", "long-64", "anneal"]) assert.ok(svg.includes(`>${s}</text>`), s);
  res.model.dispose();
});
