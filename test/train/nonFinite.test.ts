// A run that diverges (an absurd peak learning rate: the loss or gradient norm turns NaN after a few
// steps) stops with an error naming the step and stage, writes no checkpoint or final/ with
// non-finite values, and keeps the good checkpoint written before it; with nonFinite.action "skip" the
// non-finite steps make no update and are recorded as skipped, up to nonFinite.maxSkips. `herd scaling
// fit` leaves such a run out and says why instead of reading its loss as 0.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { readHFCheckpoint } from "../../src/model/checkpoint/hf.js";
import { listCheckpoints } from "../../src/train/checkpoint.js";
import { MetricsLog } from "../../src/train/metrics.js";
import { repoPath } from "../helpers.js";
import { corpusShard, TINY, tempDir } from "./fixture.js";

const CLI = repoPath("dist", "src", "cli", "main.js");

/** A run whose gradient norm turns NaN after a few steps (peak LR 1e5 reached over 4 warm-up steps). */
function divergingConfig(dir: string, name: string, extra: Record<string, unknown> = {}): string {
  const raw = {
    name,
    runsDir: join(dir, "runs"),
    model: { preset: "tiny", overrides: TINY },
    data: { shards: [corpusShard(dir, 20000)] },
    schedule: { peakLR: 1e5, warmupSteps: 4, floorLR: 0 },
    stages: [{ kind: "initial", steps: 10, seqLen: 32, batch: 2 }],
    checkpoint: { every: 2, keep: 2 },
    eval: { every: 0, heldout: 0, tokens: 4096 },
    ...extra,
  };
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(raw));
  return path;
}

function pretrainCli(config: string) {
  return spawnSync(process.execPath, [CLI, "pretrain", config], { encoding: "utf8" });
}

async function assertFinite(dir: string): Promise<void> {
  const { tensors } = await readHFCheckpoint(dir);
  for (const [name, t] of tensors) {
    assert.ok(
      t.data.every((v) => Number.isFinite(v)),
      `${dir}: ${name} holds a non-finite value`,
    );
    t.dispose();
  }
}

test("pretrain: a non-finite loss or gradient norm stops the run; the good checkpoint survives", async () => {
  const dir = tempDir();
  const r = pretrainCli(divergingConfig(dir, "d"));
  assert.equal(r.status, 1, r.stdout + r.stderr);
  const run = join(dir, "runs", "d");
  const m = new MetricsLog(join(run, "metrics.jsonl")).read();
  const last = m.at(-1)!;
  assert.equal(last.diverged, true);
  assert.match(
    r.stderr,
    new RegExp(`diverged at step ${last.step} of stage 'initial-0': non-finite loss or gradient norm`),
  );
  assert.ok(m.slice(0, -1).every((x) => Number.isFinite(x.loss) && Number.isFinite(x.gradNorm)));
  assert.ok(!existsSync(join(run, "final")), "no final/ from a diverged run");
  const cks = listCheckpoints(join(run, "checkpoints"));
  assert.ok(cks.length > 0, "the checkpoint before the divergence is kept");
  assert.ok(cks.every((c) => c.step < last.step));
  assert.match(r.stderr, new RegExp(`newest checkpoint is ${cks.at(-1)!.path}`));
  for (const c of cks) await assertFinite(c.path);

  // scaling fit leaves the diverged run out (its loss was NaN → null, never 0).
  const s = spawnSync(process.execPath, [CLI, "scaling", "fit", run], { encoding: "utf8" });
  assert.match(s.stdout, new RegExp(`left out: ${run}: diverged at step ${last.step}`));
  assert.doesNotMatch(s.stdout, /loss 0\.0000/);
});

test("pretrain: nonFinite.action skip drops the update and counts the step, up to maxSkips", async () => {
  const dir = tempDir();
  // Enough skips allowed: the run ends, final/ holds the last finite weights.
  const ok = pretrainCli(divergingConfig(dir, "s", { nonFinite: { action: "skip", maxSkips: 20 } }));
  assert.equal(ok.status, 0, ok.stderr);
  const run = join(dir, "runs", "s");
  const m = new MetricsLog(join(run, "metrics.jsonl")).read();
  const skipped = m.filter((x) => x.skipped);
  assert.ok(skipped.length > 0 && m.length === 10);
  assert.match(ok.stdout, /\(non-finite: skipped, no update\)/);
  const firstSkip = skipped[0]!.step;
  await assertFinite(join(run, "final"));
  for (const c of listCheckpoints(join(run, "checkpoints"))) await assertFinite(c.path);
  // No update after the first skip: the final weights are those of the last finite step.
  const a = await readHFCheckpoint(join(run, "final"));
  const ck = listCheckpoints(join(run, "checkpoints")).find((c) => c.step >= firstSkip)!;
  const b = await readHFCheckpoint(ck.path);
  for (const [name, t] of a.tensors) assert.deepEqual(t.data, b.tensors.get(name)!.data, name);

  // Fewer allowed: the run stops at the first non-finite step past the limit.
  const no = pretrainCli(divergingConfig(dir, "s1", { nonFinite: { action: "skip", maxSkips: 1 } }));
  assert.equal(no.status, 1);
  const m1 = new MetricsLog(join(dir, "runs", "s1", "metrics.jsonl")).read();
  assert.equal(m1.filter((x) => x.skipped).length, 1);
  assert.equal(m1.at(-1)!.diverged, true);
  assert.match(no.stderr, /1 step\(s\) already skipped \(nonFinite\.maxSkips 1\)/);
  assert.ok(!existsSync(join(dir, "runs", "s1", "final")));

  const bad = pretrainCli(divergingConfig(dir, "s2", { nonFinite: { action: "ignore" } }));
  assert.match(bad.stderr, /field 'nonFinite\.action' must be one of stop, skip/);
});

test("scaling fit --points: a point whose loss is null (NaN in JSON) is left out, not read as 0", () => {
  const dir = tempDir();
  const points: unknown[] = [];
  for (const flops of [1e18, 1e19, 1e20])
    for (const d of [-1, 0, 1]) {
      const tokens = 10 ** (Math.log10(2 * flops ** 0.5) + d);
      points.push({ flops, tokens, loss: 3 + 0.4 * d * d });
    }
  // A diverged run at the first budget: with its loss read as 0 that budget's parabola would flip.
  points.push({ flops: 1e18, tokens: 2e9 * 3, loss: null });
  const file = join(dir, "points.json");
  writeFileSync(file, JSON.stringify(points));
  const r = spawnSync(process.execPath, [CLI, "scaling", "fit", "--points", file], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /left out: .*points\.json: point 9: loss null is not a finite number/);
  assert.equal(r.stdout.match(/^budget .* \(3 runs\)/gm)?.length, 3);
  const m = /D\*\(C\) = [\d.e+-]+·C\^([\d.]+)/.exec(r.stdout);
  assert.ok(m && Math.abs(Number(m[1]) - 0.5) < 1e-6, r.stdout);
});
