// Resuming with a changed config: refused before anything is written, listing each changed field
// (old → new), unless --allow-config-change; a change of the model's dimensions is refused even then,
// naming the field. Unknown keys in model.overrides are errors naming the field and the known ones.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { repoPath } from "../helpers.js";
import { corpusShard, TINY, tempDir, tinyConfig } from "./fixture.js";

const CLI = repoPath("dist", "src", "cli", "main.js");

test("pretrain resume: a changed config is refused unless allowed; dimensions never change", () => {
  const dir = tempDir();
  const raw = {
    name: "c",
    runsDir: join(dir, "runs"),
    model: { preset: "tiny", overrides: TINY },
    data: { shards: [corpusShard(dir, 20000)] },
    schedule: { peakLR: 1e-2, warmupSteps: 2, floorLR: 1e-3 },
    stages: [{ kind: "initial", steps: 4, seqLen: 32, batch: 2 }],
    checkpoint: { every: 2, keep: 2 },
  };
  const config = join(dir, "c.json");
  const cli = (r: unknown, ...flags: string[]) => {
    writeFileSync(config, JSON.stringify(r));
    return spawnSync(process.execPath, [CLI, "pretrain", config, "--quiet", ...flags], { encoding: "utf8" });
  };
  assert.equal(cli(raw).status, 0);
  const runConfig = join(dir, "runs", "c", "config.json");
  const before = readFileSync(runConfig, "utf8");

  const changed = { ...raw, seed: 7, schedule: { ...raw.schedule, peakLR: 2e-2 } };
  const r = cli(changed);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /config\.json: the config differs/);
  assert.match(r.stderr, /schedule\.peakLR: 0\.01 → 0\.02/);
  assert.match(r.stderr, /seed: 1 → 7/);
  assert.match(r.stderr, /--allow-config-change/);
  assert.equal(readFileSync(runConfig, "utf8"), before, "config.json untouched");

  const wider = { ...raw, model: { preset: "tiny", overrides: { ...TINY, hiddenSize: 64 } } };
  const d = cli(wider, "--allow-config-change");
  assert.equal(d.status, 1);
  assert.match(d.stderr, /model hiddenSize: 32 → 64/);
  assert.doesNotMatch(d.stderr, /assign:/);
  assert.equal(readFileSync(runConfig, "utf8"), before);

  const ok = cli({ ...changed, stages: [{ ...raw.stages[0], steps: 6 }] }, "--allow-config-change");
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /resumed from step 4/);
  assert.equal(JSON.parse(readFileSync(runConfig, "utf8")).schedule.peakLR, 2e-2);
});

test("config: an unknown key in model.overrides is an error naming it and the known fields", () => {
  const dir = tempDir();
  assert.throws(
    () => tinyConfig(dir, "x.tok", { model: { preset: "tiny", overrides: { ...TINY, hiddenSise: 64 } } }),
    /test-config: field 'model\.overrides\.hiddenSise' is not a known field \(known: .*hiddenSize/,
  );
});
