// The LoRA commands end to end: `herd lora merge` writes a plain checkpoint with the logits of base +
// adapter, `herd generate --adapter` generates what the merged checkpoint generates, and bad invocations
// exit 2 naming the problem.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { loadModel, saveModel } from "../../src/model/load.js";
import { applyLora } from "../../src/posttrain/lora.js";
import { loadAdapter, saveAdapter } from "../../src/posttrain/peft.js";
import { tempDir } from "../data/tmp.js";
import { closeness, randArray, repoPath } from "../helpers.js";
import { logitsOf, tinyModel } from "./loraHelpers.js";

const cli = repoPath("dist", "src", "cli", "main.js");
const herd = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });

test("herd lora merge and herd generate --adapter", async () => {
  const root = tempDir("herd-lora-cli-");
  const base = join(root, "base");
  const adapter = join(root, "adapter");
  const merged = join(root, "merged");
  const model = tinyModel("f32", 5, 0.1);
  await saveModel(base, model);
  const lora = applyLora(model, { rank: 4, alpha: 8, targets: ["q_proj", "v_proj", "up_proj", "down_proj"] });
  for (const [i, p] of lora.parameters().entries()) p.data.set(randArray(p.size, 30 + i, 1));
  await saveAdapter(lora, adapter, { baseModel: base });
  const want = logitsOf(model);

  const r = herd("lora", "merge", "--model", base, "--adapter", adapter, "--out", merged);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /8 matrices merged \(rank 4, scaling 2\), f32/);
  const m = await loadModel(merged);
  assert.equal(m.adapters.size, 0);
  assert.ok(closeness(logitsOf(m), want, 1e-5, 1e-5) <= 1, "merged logits = base + adapter");
  // The same adapter loaded in-process onto the base gives the same logits too.
  const again = await loadModel(base);
  await loadAdapter(again, adapter);
  assert.deepEqual(logitsOf(again), want);

  const gen = (...extra: string[]) => {
    const g = herd(
      "generate",
      ...extra,
      "--prompt-ids",
      "3,9,27",
      "--temperature",
      "0",
      "--max-tokens",
      "12",
      "--ignore-eos",
      "--print-ids",
    );
    assert.equal(g.status, 0, g.stderr);
    return g.stdout.trim().split("\n").at(-1);
  };
  const viaAdapter = gen("-m", base, "--adapter", adapter);
  assert.equal(viaAdapter, gen("-m", merged));
  assert.notEqual(viaAdapter, gen("-m", base), "the adapter changes what is generated");

  const missing = herd("lora", "merge", "--model", base, "--out", join(root, "x"));
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /--adapter DIR is required/);
  const busy = herd("lora", "merge", "--model", base, "--adapter", adapter, "--out", merged);
  assert.equal(busy.status, 2, "OUT holds the earlier merge");
  assert.match(busy.stderr, /exists and is not empty; pass --force/);
  const bad = herd("generate", "-m", base, "--adapter", root, "--prompt-ids", "3");
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /no adapter_config\.json/);
});
