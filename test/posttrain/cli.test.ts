// The post-training commands end to end on a tiny model directory with a byte-level tokenizer.model:
// herd sft (train, then --evaluate), herd dpo (train, reference cache), herd rm (train, held-out
// accuracy, --evaluate) and herd average over two of the results, and their errors and skip reports.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { saveModel } from "../../src/model/load.js";
import { repoPath } from "../helpers.js";
import { jsonl, tempDir, tinyModel } from "./fixture.js";

const MAIN = repoPath("dist", "src", "cli", "main.js");
const dir = tempDir();
const base = join(dir, "base");

const herd = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: "utf8" });

const a = (s: string) => [{ role: "assistant", content: s }];
const sftLines = ["one", "two", "three", "four"].map((w) => ({
  messages: [
    { role: "system", content: "Be brief." },
    { role: "user", content: `Say ${w}` },
    { role: "assistant", content: w },
  ],
}));
const prefLines = ["red", "blue", "green", "gold", "teal", "pink"].map((c) => ({
  prompt: [{ role: "user", content: `Say ${c}` }],
  chosen: a(c),
  rejected: a("no"),
}));

test("sft, dpo, rm and average on a tiny model", async () => {
  const m = tinyModel();
  await saveModel(base, m, { dtype: "f32" });
  m.dispose();
  const ranks = Array.from({ length: 256 }, (_, b) => `${Buffer.from([b]).toString("base64")} ${b}`);
  writeFileSync(join(base, "tokenizer.model"), `${ranks.join("\n")}\n`);
  const sftData = jsonl(dir, "sft.jsonl", [
    ...sftLines,
    {
      messages: [
        { role: "user", content: "x" },
        { role: "assistant", content: "" },
      ],
    },
  ]);
  const prefs = jsonl(dir, "prefs.jsonl", prefLines);

  const sft = herd(
    "sft",
    "-m",
    base,
    "--data",
    sftData,
    "-o",
    join(dir, "sft"),
    "--steps",
    "2",
    "--batch",
    "2",
    "--lr",
    "1e-3",
  );
  assert.equal(sft.status, 0, sft.stderr);
  assert.match(sft.stderr, /skipped 1 of 5 lines:\n {2}.*sft\.jsonl:5: empty assistant turn/);
  assert.ok(existsSync(join(dir, "sft", "final", "tokenizer.model")));
  assert.deepEqual(JSON.parse(readFileSync(join(dir, "sft", "skipped.jsonl"), "utf8")), {
    file: sftData,
    line: 5,
    reason: "empty assistant turn (messages[1])",
  });
  const ev = herd("sft", "--evaluate", "-m", join(dir, "sft", "final"), "--data", sftData);
  assert.equal(ev.status, 0, ev.stderr);
  const r = JSON.parse(ev.stdout);
  assert.ok(r.loss > 0 && r.dialogs === 4 && r.skipped === 1, ev.stdout);

  const dpo = herd(
    "dpo",
    "-m",
    join(dir, "sft", "final"),
    "--data",
    prefs,
    "-o",
    join(dir, "dpo"),
    "--steps",
    "2",
  );
  assert.equal(dpo.status, 0, dpo.stderr);
  assert.ok(existsSync(join(dir, "dpo", "reference_logps.json")));
  const log = readFileSync(join(dir, "dpo", "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  for (const k of [
    "rewards/chosen",
    "rewards/rejected",
    "rewards/accuracies",
    "rewards/margins",
    "logps/chosen",
    "logps/rejected",
  ])
    assert.ok(k in log[1], k);

  const dpoEval = herd(
    "dpo",
    "--evaluate",
    "-m",
    join(dir, "dpo", "final"),
    "--reference",
    join(dir, "sft", "final"),
    "--data",
    prefs,
  );
  assert.equal(dpoEval.status, 0, dpoEval.stderr);
  assert.equal(JSON.parse(dpoEval.stdout).pairs, 6);
  const noAssistant = jsonl(dir, "bad.jsonl", [{ messages: [{ role: "user", content: "x" }] }]);
  const bad1 = herd("sft", "-m", base, "--data", noAssistant, "-o", join(dir, "bad"));
  assert.equal(bad1.status, 1);
  assert.match(bad1.stderr, /bad\.jsonl:1: field 'messages' has no assistant turn: zero supervised tokens/);
  const usage = herd("dpo", "-m", base, "--data", prefs, "--beta", "0");
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /--beta: bad value '0' \(expected a positive number\)/);

  const rm = herd(
    "rm",
    "-m",
    base,
    "--data",
    prefs,
    "-o",
    join(dir, "rm"),
    "--steps",
    "2",
    "--heldout-share",
    "0.34",
  );
  assert.equal(rm.status, 0, rm.stderr);
  const report = JSON.parse(rm.stdout.split("\n")[0]!);
  assert.equal(report.heldout.pairs, 2);
  const rmEval = herd("rm", "--evaluate", "-m", join(dir, "rm", "final"), "--data", prefs);
  assert.equal(rmEval.status, 0, rmEval.stderr);
  assert.equal(JSON.parse(rmEval.stdout).pairs, 6);

  const avg = herd(
    "average",
    join(dir, "sft", "final"),
    join(dir, "dpo", "final"),
    "--weights",
    "1,3",
    "-o",
    join(dir, "avg"),
  );
  assert.equal(avg.status, 0, avg.stderr);
  const bad = herd("average", join(dir, "sft", "final"), join(dir, "rm", "final"), "-o", join(dir, "avg2"));
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /config\.json: field 'architectures'|score\.weight/);
});
