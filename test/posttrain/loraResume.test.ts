// A `herd sft --lora` run (with adapter dropout) killed by SIGKILL mid-run and run again resumes from
// its newest checkpoint (adapter + optimiser state + step + data position) and ends on the adapter of
// an uninterrupted run, bit for bit on the js backend, with the same per-step losses; a resume with
// other LoRA options, another base dtype or another base model is refused, naming the changed field.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Llama } from "../../src/model/llama.js";
import { saveModel } from "../../src/model/load.js";
import { initWeights } from "../../src/model/weights.js";
import { listCheckpoints } from "../../src/train/checkpoint.js";
import { repoPath } from "../helpers.js";
import { jsonl, TINY_CONFIG, tempDir } from "./fixture.js";
import { tinyBaseDir } from "./loraHelpers.js";

const MAIN = repoPath("dist", "src", "cli", "main.js");
const dir = tempDir();
const base = join(dir, "base");
const data = join(dir, "sft.jsonl");
const STEPS = 30;
const args = (out: string, rank = "4", dtype = "f32") => [
  MAIN,
  "sft",
  "-m",
  base,
  "--data",
  data,
  "-o",
  out,
  "--lora",
  "--lora-rank",
  rank,
  "--base-dtype",
  dtype,
  "--lora-dropout",
  "0.1",
  "--seq-len",
  "40",
  "--batch",
  "2",
  "--steps",
  String(STEPS),
  "--checkpoint-every",
  "4",
  "--lr",
  "1e-2",
  "--backend",
  "js",
];
const herd = (out: string, rank?: string, dtype?: string) =>
  spawnSync(process.execPath, args(out, rank, dtype), { encoding: "utf8" });
const losses = (run: string) =>
  readFileSync(join(run, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => (JSON.parse(l) as { loss: number }).loss);

/** Run until the progress line of step `at` appears, then SIGKILL the process. */
function killedAt(out: string, at: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args(out), { stdio: ["ignore", "ignore", "pipe"] });
    let text = "";
    child.stderr.on("data", (b: Buffer) => {
      text += b.toString();
      if (new RegExp(`^step ${at}/`, "m").test(text)) child.kill("SIGKILL");
    });
    child.on("error", reject);
    child.on("exit", (code, signal) =>
      signal === "SIGKILL" ? resolve() : reject(new Error(`exited ${code} before the kill: ${text}`)),
    );
  });
}

test("a LoRA run killed mid-run resumes to the uninterrupted run's adapter, bit for bit", async () => {
  await tinyBaseDir(base);
  jsonl(
    dir,
    "sft.jsonl",
    ["one", "two", "three", "four", "five", "six", "seven", "eight"].map((w) => ({
      messages: [
        { role: "user", content: `Say ${w}` },
        { role: "assistant", content: w },
      ],
    })),
  );
  const whole = join(dir, "whole");
  const w = herd(whole);
  assert.equal(w.status, 0, w.stderr);

  const cut = join(dir, "cut");
  await killedAt(cut, 10);
  assert.ok(!existsSync(join(cut, "done.json")), "the kill came before the end");
  const newest = listCheckpoints(join(cut, "checkpoints")).at(-1)!.step;
  assert.ok(newest >= 8 && newest < STEPS, `newest checkpoint ${newest}`);
  const r = herd(cut);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`resumed from step ${newest}\\n`));

  const file = (run: string, f: string) => readFileSync(join(run, "final", f));
  assert.ok(file(cut, "adapter_model.safetensors").equals(file(whole, "adapter_model.safetensors")));
  assert.ok(file(cut, "adapter_config.json").equals(file(whole, "adapter_config.json")));
  assert.deepEqual(losses(cut), losses(whole), "the same loss at every step");
  assert.equal(losses(whole).length, STEPS);

  // A resume with other settings or another base is refused, naming what changed.
  const refused = (re: RegExp, rank?: string, dtype?: string) => {
    const x = herd(cut, rank, dtype);
    assert.equal(x.status, 1, x.stderr);
    assert.match(x.stderr, /the run was started with other settings or data/);
    assert.match(x.stderr, re);
  };
  refused(/lora\.r: 4 → 16/, "16");
  refused(/base\.dtype: "f32" → "bf16"/, "4", "bf16");
  const other = new Llama(TINY_CONFIG, initWeights(TINY_CONFIG, { seed: 9 }));
  await saveModel(base, other, { dtype: "f32" });
  other.dispose();
  refused(/base\.sha256: "[0-9a-f]{64}" → "[0-9a-f]{64}"/);
});
