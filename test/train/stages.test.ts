// The three-stage recipe on a tiny model: initial → long-context (32 → 64 tokens) → annealing on another
// shard with the rate falling to 0; final/ is the running Polyak average of the annealing samples (every
// `annealEvery` steps and the last), equal to the offline average of those checkpoints, while only
// `checkpoint.keep` checkpoints stay on disk; loss.svg marks the three stage boundaries.
import assert from "node:assert/strict";
import { cpSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { readHFCheckpoint } from "../../src/model/checkpoint/hf.js";
import { averageCheckpoints, listCheckpoints } from "../../src/train/checkpoint.js";
import { pretrain } from "../../src/train/trainer.js";
import { closeness } from "../helpers.js";
import { corpusShard, tempDir, tinyConfig } from "./fixture.js";

test("stages: long-context step, annealing to 0, running Polyak average as final weights, loss curve", async () => {
  const dir = tempDir();
  const shard = corpusShard(dir, 30000);
  const hq = corpusShard(tempDir(), 8000);
  const cfg = tinyConfig(dir, shard, {
    stages: [
      { name: "initial", kind: "initial", steps: 8, seqLen: 32, batch: 4 },
      { name: "long-64", kind: "long-context", steps: 4, seqLen: 64, batch: 2 },
      { name: "anneal", kind: "annealing", steps: 5, seqLen: 64, batch: 2, shards: [hq] },
    ],
    checkpoint: { every: 1, keep: 1, annealEvery: 2 },
  });
  // Copies of the checkpoints the average samples (steps 12+2, 12+4 and the stage's last, 17).
  const side = tempDir();
  const sampled: string[] = [];
  const res = await pretrain(cfg, {
    onCheckpoint: (path, step) => {
      if ([14, 16, 17].includes(step)) {
        sampled.push(join(side, String(step)));
        cpSync(path, sampled.at(-1)!, { recursive: true });
      }
    },
  });
  const h = res.history;
  assert.deepEqual(
    h.map((m) => m.seqLen),
    [...Array(8).fill(32), ...Array(9).fill(64)],
  );
  for (const [i, f] of [1, 0.8, 0.6, 0.4, 0.2].entries())
    assert.ok(Math.abs(h[12 + i]!.lr - f * h[11]!.lr) < 1e-15, `annealing lr ${i}`);
  const ck = listCheckpoints(join(res.runDir, "checkpoints"));
  assert.deepEqual(
    ck.map((c) => c.step),
    [17],
    "no annealing checkpoint is kept beyond checkpoint.keep",
  );
  assert.equal(sampled.length, 3);
  const avg = await averageCheckpoints(sampled);
  const { tensors } = await readHFCheckpoint(join(res.runDir, "final"));
  // The running mean is f32 arithmetic, the reference sums in f64: within a few f32 ulps.
  for (const [name, t] of avg) assert.ok(closeness(tensors.get(name)!.data, t.data, 4e-7, 1e-8) <= 1, name);
  const last = res.model.weights.get("model.norm.weight")!.data;
  assert.notDeepEqual(tensors.get("model.norm.weight")!.data, last, "the average is not the last checkpoint");
  const svg = readFileSync(join(res.runDir, "loss.svg"), "utf8");
  assert.equal(svg.match(/class="stage"/g)?.length, 3);
  for (const s of ["initial", "long-64", "anneal"]) assert.ok(svg.includes(`>${s}</text>`), s);
  res.model.dispose();
});
