// The reward model as rejection sampling's scorer (src/posttrain/reward.ts's rewardOf/rewardScorer):
// a completion is scored as training scored a response (the pairwise loss of a pair equals
// −log σ(rewardOf(chosen) − rewardOf(rejected))), a reward model trained to prefer one answer scores it
// higher, rejection sampling keeps the sample the reward model scores highest, and `herd rs --scorer
// reward:DIR` does the same from a saved reward model.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { generate, tiktokenCodec } from "../../src/generate/index.js";
import { Llama } from "../../src/model/llama.js";
import { saveModel } from "../../src/model/load.js";
import { initWeights } from "../../src/model/weights.js";
import { rmConfig } from "../../src/posttrain/config.js";
import { readPreferences } from "../../src/posttrain/data.js";
import { pickBest, rejectionSample, sampleSeed } from "../../src/posttrain/rejectionSampling.js";
import {
  loadRewardModel,
  rewardOf,
  rewardScorer,
  rmStep,
  saveRewardModel,
  trainRewardModel,
  withRewardHead,
} from "../../src/posttrain/reward.js";
import type { PromptRow } from "../../src/posttrain/tasks/index.js";
import { repoPath } from "../helpers.js";
import { byteChat, jsonl, TINY_CONFIG, tempDir, tinyModel } from "./fixture.js";

const MAIN = repoPath("dist", "src", "cli", "main.js");
const dir = tempDir();
const chat = byteChat();
const topics = ["cats", "rain", "maps", "tea", "jazz", "salt", "moss", "kites"];
const lines = topics.map((t) => ({
  prompt: [{ role: "user" as const, content: `Tell me about ${t}.` }],
  chosen: [{ role: "assistant", content: `Yes! ${t} are fine.` }],
  rejected: [{ role: "assistant", content: "no." }],
}));
const data = readPreferences(jsonl(dir, "rm.jsonl", lines), { chat, vocabSize: 512, maxLen: 128 }).examples;
// Stop on every fifth byte id and every special token: the random policy's samples end at different
// lengths, and their text is plain bytes.
const STOPS = [
  ...Array.from({ length: 52 }, (_, i) => 5 * i),
  ...Array.from({ length: 256 }, (_, i) => 256 + i),
];
const rows: PromptRow[] = ["Tell me about owls.", "Tell me about figs."].map((q, i) => ({
  id: `p${i}`,
  messages: [{ role: "user", content: q }],
}));

test("the reward model scores completions as it was trained, and rejection sampling keeps its favourite", async () => {
  const rm = withRewardHead(tinyModel(), 3);
  const cfg = { ...rmConfig({ steps: 30, batch: 8, "micro-batch": 8 }), lr: 3e-3, "seq-len": 128 };
  await trainRewardModel({ runDir: join(dir, "run"), rm, data, cfg });
  const [p, c, r] = [lines[1]!.prompt, lines[1]!.chosen[0]!.content, "no."];
  const d = rewardOf(rm, chat, p, c) - rewardOf(rm, chat, p, r);
  const pair = rmStep(rm, data, [1], 128, 1, false);
  assert.ok(Math.abs(pair.loss - Math.log1p(Math.exp(-d))) < 1e-5, `${pair.loss} vs −log σ(${d})`);
  const owls = [{ role: "user" as const, content: "Tell me about owls." }];
  assert.ok(rewardOf(rm, chat, owls, "Yes! owls are fine.") > rewardOf(rm, chat, owls, "no."));

  const policy = new Llama(TINY_CONFIG, initWeights(TINY_CONFIG, { seed: 5 }), "init");
  const codec = tiktokenCodec(chat.tokenizer);
  const scorer = rewardScorer(rm, chat);
  const res = rejectionSample(policy, chat, codec, rows, {
    k: 6,
    scorer,
    seed: 2,
    maxNewTokens: 12,
    stopIds: STOPS,
  });
  const kept = [...res.dialogs];
  for (const [i, o] of res.report.outcomes.entries()) {
    // Each sample regenerated alone and scored by the reward model: the kept one is the best that stopped.
    const msgs = rows[i]!.messages as typeof owls;
    const gens = Array.from({ length: 6 }, (_, j) =>
      generate(policy, chat.encodeDialogPrompt(msgs), {
        seed: sampleSeed(2, i, j),
        maxNewTokens: 12,
        stopIds: STOPS,
        codec,
      }),
    );
    const rewards = gens.map((g) => rewardOf(rm, chat, msgs, g.text));
    assert.deepEqual(o.scores, rewards);
    const ok = gens.map((g) => g.finishReason === "stop_id" && g.text.trim() !== "");
    assert.equal(o.best, pickBest(rewards, ok));
    if (o.best !== null) assert.equal(kept.shift()!.messages.at(-1)!.content, gens[o.best]!.text);
  }
  assert.ok(res.report.kept > 0, "some sample stopped on its own");
  // A reward model that prefers one answer: of "Yes! owls are fine." and "no.", the first is kept.
  const two = ["Yes! owls are fine.", "no."];
  const s = two.map((t) => scorer(owls, t));
  assert.equal(pickBest(s, [true, true]), 0);

  const rmDir = join(dir, "rm-final");
  await saveRewardModel(rmDir, rm);
  const policyDir = join(dir, "policy");
  const saved = new Llama(
    { ...TINY_CONFIG, eosTokenIds: STOPS },
    initWeights(TINY_CONFIG, { seed: 5 }),
    "init",
  );
  await saveModel(policyDir, saved, { dtype: "f32" });
  saved.dispose();
  const ranks = Array.from({ length: 256 }, (_, b) => `${Buffer.from([b]).toString("base64")} ${b}`);
  writeFileSync(join(policyDir, "tokenizer.model"), `${ranks.join("\n")}\n`);
  const prompts = jsonl(dir, "prompts.jsonl", rows);
  const out = join(dir, "rs.jsonl");
  const args = ["rs", "-m", policyDir, "--prompts", prompts, "--out", out, "--k", "4", "--max-tokens", "12"];
  const cli = spawnSync(process.execPath, [MAIN, ...args, "--scorer", `reward:${rmDir}`, "--quiet"], {
    encoding: "utf8",
  });
  assert.equal(cli.status, 0, cli.stderr);
  const report = JSON.parse(readFileSync(`${out}.report.json`, "utf8"));
  const dialogs = readFileSync(out, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  assert.ok(dialogs.length > 0);
  const back = await loadRewardModel(rmDir);
  for (const o of report.outcomes) {
    if (o.best === null) continue;
    const dlg = dialogs.shift();
    const want = rewardOf(back, chat, dlg.messages.slice(0, -1), dlg.messages.at(-1).content);
    assert.ok(Math.abs(o.bestScore - want) < 1e-5, `${o.bestScore} vs ${want}`);
  }
  const missing = spawnSync(process.execPath, [MAIN, ...args, "--scorer", `reward:${join(dir, "nope")}`], {
    encoding: "utf8",
  });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nope/);
  for (const m of [rm.base, policy, back.base]) m.dispose();
});
