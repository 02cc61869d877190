// The one rule for relative paths (README, "Paths"): inside a config file they resolve against the config
// file's folder; on the command line against the current directory. Checked by running `herd pretrain`
// on a config in one folder from a current directory elsewhere that holds decoy files of the same names,
// and `--steps-scale`'s arithmetic.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { test } from "node:test";
import { resolveConfig } from "../../src/train/config.js";
import { parseStepsScale, scaleSteps } from "../../src/train/stepsScale.js";
import { repoPath } from "../helpers.js";
import { corpusShard, TINY, tempDir } from "./fixture.js";

const cli = repoPath("dist", "src", "cli", "main.js");

test("herd pretrain CONFIG: paths in the file resolve against its folder, CONFIG against the cwd", () => {
  const root = tempDir();
  const project = join(root, "project");
  const elsewhere = join(root, "elsewhere");
  mkdirSync(join(project, "data"), { recursive: true });
  mkdirSync(join(elsewhere, "data"), { recursive: true });
  const shard = corpusShard(join(project, "data"), 20000);
  // A decoy of the same relative name in the current directory: an unreadable shard.
  writeFileSync(join(elsewhere, "data", "carroll.tok"), "not a shard");
  writeFileSync(
    join(project, "run.yaml"),
    [
      "name: paths",
      `model: { preset: tiny, overrides: ${JSON.stringify(TINY)} }`,
      "data: { shards: [data/carroll.tok] }",
      "stages: [{ kind: initial, steps: 2, seqLen: 32, batch: 2 }]",
      "checkpoint: { every: 2 }",
      "eval: { heldout: 0 }",
      "",
    ].join("\n"),
  );
  const r = spawnSync(
    process.execPath,
    [cli, "pretrain", relative(elsewhere, join(project, "run.yaml")), "--quiet"],
    {
      cwd: elsewhere,
      encoding: "utf8",
    },
  );
  assert.equal(r.status, 0, r.stderr + r.stdout);
  // runsDir defaults to runs/ beside the config, not in the current directory.
  const runDir = join(project, "runs", "paths");
  assert.ok(existsSync(join(runDir, "final", "model.safetensors")));
  assert.ok(!existsSync(join(elsewhere, "runs")));
  const saved = JSON.parse(readFileSync(join(runDir, "config.json"), "utf8"));
  assert.deepEqual(saved.data.shards, [shard]);
  assert.equal(saved.runsDir, join(project, "runs"));
});

test("herd pretrain CONFIG: a config copied elsewhere keeps resolving against its own folder", () => {
  const dir = tempDir();
  const shard = corpusShard(dir, 5000);
  mkdirSync(join(dir, "sub"));
  copyFileSync(shard, join(dir, "sub", "carroll.tok"));
  const cfg = resolveConfig(
    { name: "x", data: { shards: ["carroll.tok"] }, stages: [{ steps: 1, seqLen: 8, batch: 1 }] },
    "sub/x.yaml",
    join(dir, "sub"),
  );
  assert.deepEqual(cfg.data.shards, [join(dir, "sub", "carroll.tok")]);
  assert.equal(cfg.runsDir, join(dir, "sub", "runs"));
});

test("--steps-scale: stage steps, warm-up, ramp thresholds and the annealing interval scale; nothing reaches 0", () => {
  const cfg = resolveConfig(
    {
      name: "s",
      data: { shards: ["a.tok"] },
      schedule: { peakLR: 1e-3, warmupSteps: 20 },
      stages: [
        {
          kind: "initial",
          steps: 1200,
          seqLen: 64,
          batch: 8,
          ramp: [
            { afterTokens: 4096, batch: 8, seqLen: 128 },
            { afterTokens: 4100, batch: 16, seqLen: 128 },
          ],
        },
        { kind: "long-context", steps: 80, seqLen: 256, batch: 4 },
        { kind: "annealing", steps: 40, seqLen: 256, batch: 4 },
      ],
      checkpoint: { every: 100, annealEvery: 10 },
    },
    "s.yaml",
    "/tmp",
  );
  const s = scaleSteps(cfg, 0.02);
  assert.deepEqual(
    s.stages.map((x) => x.steps),
    [24, 2, 1],
  );
  assert.equal(s.schedule.warmupSteps, 0);
  assert.deepEqual(
    s.stages[0]!.ramp.map((r) => r.afterTokens),
    [82, 83],
    "thresholds keep rising after rounding",
  );
  assert.equal(s.checkpoint.annealEvery, 1);
  assert.equal(s.checkpoint.every, 100, "checkpoint intervals are about time, not shares");
  assert.equal(scaleSteps(cfg, 1), cfg);
  assert.deepEqual(
    scaleSteps(cfg, 2).stages.map((x) => x.steps),
    [2400, 160, 80],
  );
  assert.equal(parseStepsScale("0.02"), 0.02);
  for (const bad of ["0", "-1", "abc", "1e9", ""])
    assert.throws(() => parseStepsScale(bad), /--steps-scale must be a number/);
});
