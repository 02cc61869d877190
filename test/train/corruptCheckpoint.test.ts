// A resume whose newest checkpoint is corrupt falls back to the previous one with a warning naming the
// one passed over, which is kept (moved aside, out of the rotation), not deleted; when no checkpoint
// loads the run is refused naming each.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { repoPath } from "../helpers.js";
import { corpusShard, TINY, tempDir } from "./fixture.js";

const CLI = repoPath("dist", "src", "cli", "main.js");

test("pretrain resume: a corrupt newest checkpoint is passed over with a warning, kept aside", () => {
  const dir = tempDir();
  const raw = {
    name: "k",
    runsDir: join(dir, "runs"),
    model: { preset: "tiny", overrides: TINY },
    data: { shards: [corpusShard(dir, 20000)] },
    stages: [{ kind: "initial", steps: 4, seqLen: 32, batch: 2 }],
    checkpoint: { every: 2, keep: 2 },
  };
  const config = join(dir, "k.json");
  writeFileSync(config, JSON.stringify(raw));
  const cli = () => spawnSync(process.execPath, [CLI, "pretrain", config, "--quiet"], { encoding: "utf8" });
  assert.equal(cli().status, 0);
  const ck = join(dir, "runs", "k", "checkpoints");
  const step4 = join(ck, "step-00000004");
  truncateSync(join(step4, "model.safetensors"), 100);
  const r = cli();
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /resumed from step 2/);
  assert.match(r.stderr, new RegExp(`warning: checkpoint ${step4} does not load; moved aside`));
  assert.ok(existsSync(join(ck, "corrupt-step-00000004", "model.safetensors")), "the corrupt one is kept");
  assert.ok(existsSync(join(step4, "trainer_state.json")), "step 4 written again by the resumed run");

  // Neither loads: refused, naming both; the broken trainer_state.json is named with its field.
  truncateSync(join(step4, "optimizer.safetensors"), 10);
  const state2 = join(ck, "step-00000002", "trainer_state.json");
  writeFileSync(state2, JSON.stringify({ ...JSON.parse(readFileSync(state2, "utf8")), step: -1 }));
  const n = cli();
  assert.equal(n.status, 1);
  assert.match(n.stderr, /trainer_state\.json: field 'step' must be an integer ≥ 0 \(got -1\)/);
  assert.match(n.stderr, /no checkpoint loads \(tried .*step-00000004, .*step-00000002\)/);
});

test("pretrain resume: a NaN in a checkpoint's optimiser state is damage: passed over like a corrupt file", () => {
  const dir = tempDir();
  const raw = {
    name: "n",
    runsDir: join(dir, "runs"),
    model: { preset: "tiny", overrides: TINY },
    data: { shards: [corpusShard(dir, 20000)] },
    stages: [{ kind: "initial", steps: 4, seqLen: 32, batch: 2 }],
    checkpoint: { every: 2, keep: 2 },
  };
  const config = join(dir, "n.json");
  writeFileSync(config, JSON.stringify(raw));
  const cli = () => spawnSync(process.execPath, [CLI, "pretrain", config, "--quiet"], { encoding: "utf8" });
  assert.equal(cli().status, 0);
  const step4 = join(dir, "runs", "n", "checkpoints", "step-00000004");
  // The first f32 of the first tensor in optimizer.safetensors (after its u64 header length and header).
  const file = join(step4, "optimizer.safetensors");
  const bytes = readFileSync(file);
  const at = 8 + Number(bytes.readBigUInt64LE(0));
  bytes.writeUInt32LE(0x7fc00000, at);
  writeFileSync(file, bytes);
  const r = cli();
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /resumed from step 2/);
  assert.match(r.stderr, /holds a NaN or an infinity \(a damaged checkpoint\)/);
});
