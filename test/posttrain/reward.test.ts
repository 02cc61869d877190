// The reward model: orderings from edited > chosen > rejected, a head read at each response's last
// token, training that separates a toy preference set (accuracy ≥ 0.95 on it), and an HF-style directory
// (score.weight, LlamaForSequenceClassification) that loads back to the same rewards.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { validate } from "../../src/core/schema.js";
import { RM_SCHEMA } from "../../src/posttrain/config.js";
import { readPreferences } from "../../src/posttrain/data.js";
import {
  loadRewardModel,
  orderings,
  rmStep,
  saveRewardModel,
  trainRewardModel,
  withRewardHead,
} from "../../src/posttrain/reward.js";
import { linear } from "../../src/tensor/ops.js";
import { scope } from "../../src/tensor/tensor.js";
import { maxRelError } from "../helpers.js";
import { byteChat, jsonl, tempDir, tinyModel } from "./fixture.js";

const dir = tempDir();
const chat = byteChat();
const a = (s: string) => [{ role: "assistant", content: s }];
const topics = [
  "cats",
  "rain",
  "maps",
  "tea",
  "jazz",
  "salt",
  "moss",
  "kites",
  "wool",
  "figs",
  "owls",
  "dust",
];
const lines = topics.map((t, i) => ({
  prompt: [{ role: "user", content: `Tell me about ${t}.` }],
  chosen: a(`Yes! ${t} are fine.`),
  rejected: a(`no.`),
  ...(i % 3 === 0 ? { edited: a(`Yes! ${t} are great, truly.`) } : {}),
}));
const data = readPreferences(jsonl(dir, "rm.jsonl", lines), { chat, vocabSize: 512, maxLen: 128 }).examples;

test("forward output 'hidden' is what the LM head reads: hidden × embeddingᵀ gives the logits", () => {
  const m = tinyModel();
  const ids = Int32Array.of(1, 5, 9, 300, 42);
  scope(() => {
    const logits = m.forward(ids).data;
    const h = m.forward(ids, { output: "hidden" });
    assert.deepEqual(h.shape, [1, 5, 32]);
    const again = linear(h, m.weights.get("model.embed_tokens.weight")!).data;
    assert.ok(maxRelError(again, logits, 1e-4) < 1e-5);
  });
  m.dispose();
});

test("edited > chosen > rejected gives three orderings, else one", () => {
  assert.deepEqual(orderings(data[0]!).pairs, [
    [0, 1],
    [0, 2],
    [1, 2],
  ]);
  assert.equal(orderings(data[1]!).pairs.length, 1);
});

test("training separates the toy set it trained on; the saved directory loads to the same rewards", async () => {
  const rm = withRewardHead(tinyModel(), 3);
  const idx = data.map((_, i) => i);
  const before = rmStep(rm, data, idx, 128, 8, false);
  const cfg = {
    ...validate(RM_SCHEMA, { steps: 30, batch: 6, "micro-batch": 6, "checkpoint-every": 30 }, "test"),
    lr: 3e-3,
    "seq-len": 128,
  };
  await trainRewardModel({ runDir: join(dir, "run"), rm, data, cfg });
  const after = rmStep(rm, data, idx, 128, 8, false);
  assert.ok(
    after.metrics.accuracy! >= 0.95,
    `accuracy ${after.metrics.accuracy} (before ${before.metrics.accuracy})`,
  );
  assert.ok(after.loss < before.loss, `${before.loss} → ${after.loss}`);
  const out = join(dir, "rm");
  await saveRewardModel(out, rm);
  const cfgJson = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
  assert.deepEqual(cfgJson.architectures, ["LlamaForSequenceClassification"]);
  assert.equal(cfgJson.num_labels, 1);
  const back = await loadRewardModel(out);
  assert.deepEqual(back.head.shape, [1, 32]);
  const again = rmStep(back, data, idx, 128, 8, false);
  assert.ok(Math.abs(again.loss - after.loss) < 1e-6);
  // Killed during step 21 (checkpoint at 20), resumed: the head comes back with the weights.
  const killed = withRewardHead(tinyModel(), 3);
  const kill = (m: { step: number }) => {
    if (m.step === 21) throw new Error("killed");
  };
  const runCfg = { ...cfg, "checkpoint-every": 10 };
  await assert.rejects(
    trainRewardModel({ runDir: join(dir, "k"), rm: killed, data, cfg: runCfg }, { onStep: kill }),
    /killed/,
  );
  const resumed = withRewardHead(tinyModel(), 3);
  const res = await trainRewardModel({ runDir: join(dir, "k"), rm: resumed, data, cfg: runCfg });
  assert.equal(res.resumedFrom, 20);
  const h = resumed.head.data;
  rm.head.data.forEach((v, i) => {
    assert.ok(Math.abs(v - h[i]!) < 1e-4, `head[${i}] ${v} vs ${h[i]}`);
  });
  for (const m of [rm.base, back.base, killed.base, resumed.base]) m.dispose();
});
