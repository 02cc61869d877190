// Restarts (spec §8.4): `herd pretrain` killed with SIGKILL in the middle of a run — once just after the
// batch/sequence-length ramp switched, once during annealing — then started again with the same
// command, resumes from its newest checkpoint and produces exactly the losses of an uninterrupted run,
// step for step (the metrics log after the resume reads like one unbroken run), and the same final
// weights (the running Polyak average is part of the checkpoint).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { readHFCheckpoint } from "../../src/model/checkpoint/hf.js";
import { MetricsLog } from "../../src/train/metrics.js";
import { pretrain, stepShapes } from "../../src/train/trainer.js";
import { repoPath } from "../helpers.js";
import { corpusShard, TINY, tempDir, tinyConfig } from "./fixture.js";

const CLI = repoPath("dist", "src", "cli", "main.js");

function lines(path: string): number {
  return existsSync(path)
    ? readFileSync(path, "utf8")
        .split("\n")
        .filter((l) => l !== "").length
    : 0;
}

/** Run the CLI; with killAt, SIGKILL it once metrics.jsonl has that many lines. */
function runCli(config: string, metrics: string, killAt?: number): Promise<NodeJS.Signals | number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, "pretrain", config, "--quiet"], { stdio: "ignore" });
    let timer: NodeJS.Timeout | undefined;
    if (killAt !== undefined)
      timer = setInterval(() => {
        if (lines(metrics) >= killAt) child.kill("SIGKILL");
      }, 2);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearInterval(timer);
      resolve(signal ?? code);
    });
  });
}

test("resume after kill -9 (mid-ramp, mid-annealing) follows the uninterrupted run exactly", {
  timeout: 120_000,
}, async () => {
  const dir = tempDir();
  const shard = corpusShard(dir, 30000);
  const raw = {
    name: "r",
    runsDir: join(dir, "runs"),
    model: { preset: "tiny", overrides: TINY },
    data: { shards: [shard] },
    schedule: { peakLR: 1e-2, warmupSteps: 3, floorLR: 1e-3 },
    stages: [
      {
        kind: "initial",
        steps: 20,
        seqLen: 32,
        batch: 8,
        microBatch: 4,
        // After 6 steps of 8 × 32 tokens: 4 sequences of 64 (micro-batches of 2 keep 128 tokens each).
        ramp: [{ afterTokens: 6 * 8 * 32, batch: 4, seqLen: 64 }],
      },
      { kind: "annealing", steps: 12, seqLen: 64, batch: 4 },
    ],
    checkpoint: { every: 3, keep: 2, annealEvery: 2 },
  };
  const config = join(dir, "run.json");
  writeFileSync(config, JSON.stringify(raw));
  const metrics = join(dir, "runs", "r", "metrics.jsonl");
  assert.equal(await runCli(config, metrics, 8), "SIGKILL", "the first run was killed mid-run");
  const cut = lines(metrics);
  assert.ok(cut >= 8 && cut < 20, `first kill after ${cut} steps (the ramp switched at step 7)`);
  // Killed at step ≥ 25, the run resumes from a checkpoint holding ≥ 2 averaged samples (steps 22, 24).
  assert.equal(await runCli(config, metrics, 25), "SIGKILL", "the second run was killed mid-run");
  const cut2 = lines(metrics);
  assert.ok(cut2 >= 25 && cut2 < 32, `second kill after ${cut2} steps (annealing is steps 21–32)`);
  assert.equal(await runCli(config, metrics), 0);

  const refCfg = tinyConfig(dir, shard, { ...raw, name: "ref" });
  const ref = await pretrain(refCfg);
  const h = ref.history;
  assert.deepEqual(
    h.map((m) => ({ batch: m.batch, seqLen: m.seqLen })),
    stepShapes(refCfg),
  );
  assert.deepEqual(
    h.slice(0, 20).map((m) => [m.batch, m.seqLen]),
    [...Array(6).fill([8, 32]), ...Array(14).fill([4, 64])],
    "the ramp switches once the stage's tokens reach the threshold",
  );
  const resumed = new MetricsLog(metrics).read();
  const key = (m: (typeof h)[number]) => [m.step, m.loss, m.lr, m.gradNorm, m.tokens, m.batch, m.seqLen];
  assert.deepEqual(resumed.map(key), h.map(key));
  const a = await readHFCheckpoint(join(dir, "runs", "r", "final"));
  const b = await readHFCheckpoint(join(ref.runDir, "final"));
  for (const [name, t] of b.tensors) assert.deepEqual(a.tensors.get(name)!.data, t.data, name);
  ref.model.dispose();
});
