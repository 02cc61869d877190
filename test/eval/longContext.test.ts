// The long-context checks end to end on the tiny preset, with eval's evaluator handed to the trainer:
// report, heat map and verdict at the end of a long-context stage, `require` stopping the run, and
// `herd pretrain check` on the run's weights reproducing the trainer's report.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { checkRun, planLongContextChecks, readLongContextReport } from "../../src/eval/longContext.js";
import { pretrainEvaluator } from "../../src/eval/pretrainEvaluator.js";
import { listCheckpoints } from "../../src/train/checkpoint.js";
import { heldoutSplit } from "../../src/train/heldoutSplit.js";
import { pretrain } from "../../src/train/trainer.js";
import { repoPath } from "../helpers.js";
import { corpusShard, tempDir, tinyConfig } from "../train/fixture.js";

function lcConfig(dir: string, shard: string, longContext: Record<string, unknown>) {
  return tinyConfig(dir, shard, {
    stages: [
      { name: "initial", kind: "initial", steps: 12, seqLen: 64, batch: 4 },
      { name: "long-256", kind: "long-context", steps: 4, seqLen: 256, batch: 1 },
    ],
    eval: { tokens: 512 },
    longContext: { tokenizer: "bytes", depths: [0, 0.5, 1], trials: 1, ...longContext },
    checkpoint: { every: 100, keep: 5 },
  });
}

test("long-context checks end to end on the tiny preset: report, heat map, verdict, require, check CLI", async () => {
  const dir = tempDir();
  const shard = corpusShard(dir, 30000);
  // The text needle in bytes is ~80 tokens: lengths under twice that are skipped, and a stage of 64 fails early.
  const short = tinyConfig(dir, shard, {
    stages: [
      { kind: "initial", steps: 1, seqLen: 32, batch: 1 },
      { kind: "long-context", steps: 1, seqLen: 64, batch: 1 },
    ],
    longContext: { tokenizer: "bytes" },
  });
  assert.throws(() => planLongContextChecks(short, heldoutSplit(short)), /at least 1\d\d tokens/);

  const lines: string[] = [];
  const res = await pretrain(lcConfig(dir, shard, {}), {
    evaluator: pretrainEvaluator({ onLongContext: (_r, l) => lines.push(l) }),
  });
  const report = readLongContextReport(join(res.runDir, "long-context", "long-256.json"));
  assert.equal(report.step, 16);
  assert.deepEqual(report.niah.lengths, [256]);
  assert.deepEqual(report.niah.skippedLengths, [64, 128]);
  assert.equal(report.niah.cells.length, 3);
  const base = res.history.find((m) => m.step === 12)!;
  assert.equal(report.shortContext.before, base.valLoss);
  assert.equal(base.valSeqLen, 64);
  assert.equal(report.shortContext.ratio, report.shortContext.after / base.valLoss!);
  assert.equal(report.shortContext.recovered, report.shortContext.ratio! <= 1.02);
  assert.equal(report.passed, report.shortContext.recovered && report.niah.accuracy === 1);
  const last = res.history.at(-1)!;
  assert.equal(last.longContext?.passed, report.passed);
  assert.equal(last.longContext?.niahAccuracy, report.niah.accuracy);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /^long-context check \[long-256\] (PASSED|FAILED): short-context loss/);
  const svg = readFileSync(join(res.runDir, "long-context", "long-256-niah.svg"), "utf8");
  assert.equal(svg.match(/class="cell"/g)?.length, 3);
  res.model.dispose();

  // The same checks on the run's final weights reproduce the trainer's report.
  const again = await checkRun(res.runDir);
  assert.equal(again.weights, join(res.runDir, "final"));
  assert.deepEqual({ ...again.report }, { ...report });
  assert.ok(existsSync(join(res.runDir, "long-context", "check-long-256-step-00000016-niah.svg")));
  // Through the CLI: exit status 0 when passed, 1 when failed; on the initial stage's last weights the
  // short-context loss is exactly its baseline (ratio 1).
  const cli = spawnSync(
    process.execPath,
    [
      repoPath("dist", "src", "cli", "main.js"),
      "pretrain",
      "check",
      res.runDir,
      "--step",
      "12",
      "--stage",
      "long-256",
    ],
    { encoding: "utf8" },
  );
  assert.equal(cli.status, report.niah.accuracy === 1 ? 0 : 1, cli.stderr);
  assert.match(cli.stdout, /×1\.000, recovered/);

  // require: true stops a run whose check fails (a threshold above 1 cannot be met) before the stage's
  // last checkpoint, so the check runs again when the run is restarted.
  const dir2 = tempDir();
  const strict = lcConfig(dir2, corpusShard(dir2, 30000), { require: true, niahThreshold: 1, tolerance: 0 });
  strict.longContext.niahThreshold = 1.5;
  await assert.rejects(
    pretrain(strict, { evaluator: pretrainEvaluator() }),
    /long-context check \[long-256\] FAILED.*longContext\.require is set/,
  );
  const steps = listCheckpoints(join(strict.runsDir, strict.name, "checkpoints")).map((c) => c.step);
  assert.deepEqual(steps, [12]);
});
