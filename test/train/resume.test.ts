// Restarts (spec §8.4): `herd pretrain` killed with SIGKILL in the middle of a run, then started again
// with the same command, resumes from its newest checkpoint and produces exactly the losses of an
// uninterrupted run, step for step (the metrics log after the resume reads like one unbroken run).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { MetricsLog } from "../../src/train/metrics.js";
import { pretrain } from "../../src/train/trainer.js";
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

test("resume after kill -9 follows the uninterrupted run's losses exactly", {
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
      { kind: "initial", steps: 24, seqLen: 64, batch: 8, microBatch: 4 },
      { kind: "annealing", steps: 6, seqLen: 64, batch: 4 },
    ],
    checkpoint: { every: 4, keep: 2 },
  };
  const config = join(dir, "run.json");
  writeFileSync(config, JSON.stringify(raw));
  const metrics = join(dir, "runs", "r", "metrics.jsonl");
  const first = await runCli(config, metrics, 10);
  assert.equal(first, "SIGKILL", "the first run was killed mid-run");
  const cut = lines(metrics);
  assert.ok(cut >= 10 && cut < 30, `killed after ${cut} steps`);
  assert.equal(await runCli(config, metrics), 0);

  const ref = await pretrain(tinyConfig(dir, shard, { ...raw, name: "ref" }));
  const resumed = new MetricsLog(metrics).read();
  assert.deepEqual(
    resumed.map((m) => [m.step, m.loss, m.lr, m.gradNorm, m.tokens]),
    ref.history.map((m) => [m.step, m.loss, m.lr, m.gradNorm, m.tokens]),
  );
  ref.model.dispose();
});
