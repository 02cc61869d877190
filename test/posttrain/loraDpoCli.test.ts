// `herd dpo --lora` end to end: the reference log-probabilities cached in RUN/reference_logps.json are
// the base model's own (pairLogps of the base, no adapter), and after training the base with the
// adapter switched off (lora.disabled) still gives exactly them while base + adapter does not; the run
// raises the chosen-over-rejected margin; `dpo --evaluate --adapter` scores base + adapter against that
// reference; --reference with --lora is refused.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { setBackend } from "../../src/backends/index.js";
import { loadModel } from "../../src/model/load.js";
import { readPreferences } from "../../src/posttrain/data.js";
import { pairLogps } from "../../src/posttrain/dpo.js";
import { chatFormatFor } from "../../src/posttrain/io.js";
import { loraReference } from "../../src/posttrain/loraRun.js";
import { loadAdapter } from "../../src/posttrain/peft.js";
import { repoPath } from "../helpers.js";
import { jsonl, tempDir } from "./fixture.js";
import { tinyBaseDir } from "./loraHelpers.js";

const MAIN = repoPath("dist", "src", "cli", "main.js");
const herd = (...args: string[]) =>
  spawnSync(process.execPath, [MAIN, ...args, "--backend", "js"], { encoding: "utf8" });
const a = (s: string) => [{ role: "assistant", content: s }];

test("dpo --lora: the reference is the base with the adapter off, cached; the margin grows", async () => {
  const dir = tempDir();
  const base = join(dir, "base");
  await tinyBaseDir(base);
  const prefs = jsonl(
    dir,
    "prefs.jsonl",
    ["red", "blue", "green", "gold", "teal", "pink"].map((c) => ({
      prompt: [{ role: "user", content: `Say ${c}` }],
      chosen: a(c),
      rejected: a("no"),
    })),
  );
  const run = join(dir, "run");
  const r = herd(
    "dpo",
    "-m",
    base,
    "--data",
    prefs,
    "-o",
    run,
    "--lora",
    "--lora-rank",
    "4",
    "--steps",
    "12",
    "--batch",
    "3",
    "--lr",
    "1e-2",
    "--quiet",
  );
  assert.equal(r.status, 0, r.stderr);
  const cached = JSON.parse(readFileSync(join(run, "reference_logps.json"), "utf8")).logps;

  // The same numbers in this process, on the same backend, from the base alone.
  setBackend("js");
  const model = await loadModel(base);
  const data = readPreferences(prefs, { chat: chatFormatFor(base, 512), vocabSize: 512, maxLen: 256 });
  const want = pairLogps(model, data.examples, 256, 4);
  assert.deepEqual(cached, want, "the cached reference is the base model's log-probabilities");
  const lora = await loadAdapter(model, join(run, "final"));
  assert.deepEqual(loraReference(lora, data.examples, 256, 4), want, "the base with the adapter off");
  const policy = pairLogps(model, data.examples, 256, 4);
  assert.notDeepEqual(policy, want, "the trained adapter changes the log-probabilities");
  const margin = (p: { chosen: number; rejected: number }[]) =>
    p.reduce((s, x, i) => s + (x.chosen - want[i]!.chosen) - (x.rejected - want[i]!.rejected), 0);
  assert.ok(margin(policy) > 0, `implicit reward margin ${margin(policy)}`);
  model.dispose();

  // --evaluate --adapter: base + adapter against the base (default reference); the base itself scores ln 2.
  const ev = (...args: string[]) => {
    const x = herd("dpo", "--evaluate", "-m", base, "--data", prefs, "--nll-weight", "0", ...args);
    assert.equal(x.status, 0, x.stderr);
    return JSON.parse(x.stdout) as Record<string, number>;
  };
  const at0 = ev();
  assert.ok(Math.abs(at0.loss! - Math.LN2) < 1e-12, `${at0.loss}`);
  const trained = ev("--adapter", join(run, "final"));
  assert.ok(trained.loss! < Math.LN2, `${trained.loss}`);
  assert.ok(trained["rewards/margins"]! > 0);
  assert.equal(trained.pairs, 6);

  const bad = herd("dpo", "-m", base, "--data", prefs, "-o", join(dir, "x"), "--lora", "--reference", base);
  assert.equal(bad.status, 2);
  assert.match(
    bad.stderr,
    /--reference with --lora: a LoRA run's reference is its base with the adapter switched off/,
  );
});
