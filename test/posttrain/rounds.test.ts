// The post-training rounds (src/posttrain/rounds.ts, `herd posttrain`): two rounds on a tiny model with
// tiny inline data finish with the documented folders and rounds.json holding every default; a run
// killed in round 2's DPO completes on a rerun that skips every finished stage; a rerun of a finished
// run does no work; a changed setting is refused naming the field; bad rounds files name the field.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Llama } from "../../src/model/llama.js";
import { saveModel } from "../../src/model/load.js";
import { initWeights } from "../../src/model/weights.js";
import { type RoundsEvent, roundsConfig, runRounds } from "../../src/posttrain/rounds.js";
import { repoPath } from "../helpers.js";
import { jsonl, TINY_CONFIG, tempDir } from "./fixture.js";

const MAIN = repoPath("dist", "src", "cli", "main.js");
const dir = tempDir();
const a = (s: string) => [{ role: "assistant", content: s }];
// Every fifth byte id and every special token end a completion: the random model's samples stop.
const STOPS = [
  ...Array.from({ length: 52 }, (_, i) => 5 * i),
  ...Array.from({ length: 256 }, (_, i) => 256 + i),
];

async function setup(): Promise<Record<string, unknown>> {
  const m = new Llama({ ...TINY_CONFIG, eosTokenIds: STOPS }, initWeights(TINY_CONFIG, { seed: 1 }), "init");
  await saveModel(join(dir, "base"), m, { dtype: "f32" });
  m.dispose();
  const ranks = Array.from({ length: 256 }, (_, b) => `${Buffer.from([b]).toString("base64")} ${b}`);
  writeFileSync(join(dir, "base", "tokenizer.model"), `${ranks.join("\n")}\n`);
  const words = ["one", "two", "three", "four"];
  jsonl(
    dir,
    "sft.jsonl",
    words.map((w) => ({ messages: [{ role: "user", content: `Say ${w}` }, ...a(w)] })),
  );
  jsonl(
    dir,
    "prefs.jsonl",
    words.map((w) => ({ prompt: [{ role: "user", content: `Say ${w}` }], chosen: a(w), rejected: a("no") })),
  );
  jsonl(
    dir,
    "prompts.jsonl",
    words.slice(0, 2).map((w, i) => ({ id: `p${i}`, messages: [{ role: "user", content: `Say ${w}` }] })),
  );
  const train = { steps: 2, batch: 2, "micro-batch": 2, lr: 1e-3, "seq-len": 96 };
  return {
    model: "base",
    output: "run",
    rounds: 2,
    data: { sft: "sft.jsonl", preferences: "prefs.jsonl", prompts: "prompts.jsonl" },
    sft: train,
    rm: train,
    rs: { k: 2, scorer: "reward", "max-tokens": 8 },
    dpo: { ...train, "checkpoint-every": 1 },
    average: { weights: [1, 1] },
  };
}

test("two rounds: folders as documented, a kill in round 2 resumed, a finished run skipped", async () => {
  const raw = await setup();
  const cfg = () => roundsConfig(structuredClone(raw), "rounds.yaml", dir);
  const run = join(dir, "run");
  const seen: RoundsEvent[] = [];
  const kill = (e: RoundsEvent) => {
    seen.push(e);
    // After step 2's update, before its checkpoint: the rerun resumes from step 1's.
    if (e.kind === "step" && e.round === 2 && e.stage === "dpo" && e.step.step === 2)
      throw new Error("killed");
  };
  await assert.rejects(runRounds(cfg(), { onProgress: kill }), /killed/);
  const started = (es: RoundsEvent[]) =>
    es.filter((e) => e.kind === "start").map((e) => `${e.round}/${e.stage}`);
  assert.deepEqual(started(seen), ["1/sft", "1/rm", "1/rs", "1/dpo", "2/sft", "2/rm", "2/rs", "2/dpo"]);

  const again: RoundsEvent[] = [];
  const final = await runRounds(cfg(), { onProgress: (e) => again.push(e) });
  assert.deepEqual(started(again), ["2/dpo", "2/average"]);
  const dpoSteps = again.flatMap((e) => (e.kind === "step" && e.stage === "dpo" ? [e.step.step] : []));
  assert.deepEqual(dpoSteps, [2], "round 2's DPO resumed from its step-1 checkpoint");
  assert.equal(again.filter((e) => e.kind === "skip").length, 7);
  assert.equal(final, join(run, "round-2", "average", "final"));
  for (const n of [1, 2]) {
    for (const s of ["sft", "rm", "dpo"]) {
      assert.ok(existsSync(join(run, `round-${n}`, s, "final", "model.safetensors")), `round-${n}/${s}`);
      assert.ok(existsSync(join(run, `round-${n}`, s, "metrics.jsonl")));
    }
    assert.ok(existsSync(join(run, `round-${n}`, "rs", "final", "kept.jsonl")));
    assert.ok(existsSync(join(run, `round-${n}`, "rs", "final", "report.json")));
  }
  assert.ok(!existsSync(join(run, "round-1", "average")), "round 1 has no previous model to average with");
  assert.ok(existsSync(join(final, "tokenizer.model")));
  const rm = JSON.parse(readFileSync(join(run, "round-1", "rm", "final", "config.json"), "utf8"));
  assert.deepEqual(rm.architectures, ["LlamaForSequenceClassification"]);
  // Round 2's SFT trained on the 4 dialogs plus round 1's kept ones.
  const kept = readFileSync(join(run, "round-1", "rs", "final", "kept.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean);
  const report = JSON.parse(readFileSync(join(run, "round-1", "rs", "final", "report.json"), "utf8"));
  assert.equal(kept.length, report.kept);
  assert.ok(kept.length > 0, "round 1 kept some samples");
  assert.equal(seen.find((e) => e.kind === "done" && e.round === 2 && e.stage === "sft")?.kind, "done");
  const note = seen.find((e) => e.kind === "done" && e.round === 2 && e.stage === "sft");
  assert.equal(note?.kind === "done" && note.note, `${4 + kept.length} dialogs`);
  // Every default written back.
  const written = JSON.parse(readFileSync(join(run, "rounds.json"), "utf8"));
  assert.equal(written.rs.temperature, 1);
  assert.equal(written.sft.epochs, 1);
  assert.equal(written.dpo.beta, 0.1);
  assert.equal(written.model, join(dir, "base"));

  // A finished run: the CLI does no work, every stage skipped.
  writeFileSync(join(dir, "rounds.json"), JSON.stringify(raw));
  const cli = spawnSync(process.execPath, [MAIN, "posttrain", join(dir, "rounds.json")], {
    encoding: "utf8",
  });
  assert.equal(cli.status, 0, cli.stderr);
  assert.equal(cli.stderr.match(/finished before, skipped/g)?.length, 9, cli.stderr);
  assert.doesNotMatch(cli.stderr, /started|step /);
  assert.equal(cli.stdout, `done: ${final}\n`);

  // A changed setting is refused, naming it.
  const changed = { ...raw, dpo: { ...(raw.dpo as object), beta: 0.5 } };
  await assert.rejects(
    runRounds(roundsConfig(changed, "rounds.yaml", dir)),
    /round-1\/dpo\/stage\.json: the stage was run with other settings or inputs \(settings\.beta: 0\.1 → 0\.5\)/,
  );
});

test("a bad rounds file names the field", () => {
  const ok = { model: "m", data: { sft: "s", preferences: "p", prompts: "q" } };
  assert.throws(
    () => roundsConfig({ ...ok, sft: { stesp: 3 } }, "r.yaml"),
    /r\.yaml: field 'sft\.stesp' is not a known field/,
  );
  assert.throws(() => roundsConfig({ ...ok, rs: { k: 0 } }, "r.yaml"), /field 'rs\.k' must be an integer/);
  assert.throws(() => roundsConfig({ model: "m" }, "r.yaml"), /field 'data\.sft' is missing/);
  assert.throws(
    () => roundsConfig({ ...ok, average: { weights: [1] } }, "r.yaml"),
    /'average\.weights' must be two weights/,
  );
  const bad = join(tempDir(), "bad.yaml");
  writeFileSync(bad, "model: m\ndata: { sft: s, preferences: p, prompts: q }\ndpo: { beta: -1 }\n");
  const cli = spawnSync(process.execPath, [MAIN, "posttrain", bad], { encoding: "utf8" });
  assert.notEqual(cli.status, 0);
  assert.match(cli.stderr, /bad\.yaml: field 'dpo\.beta' must be/);
  const c = roundsConfig(ok, "r.yaml", "/x");
  assert.equal(c.data.sft, "/x/s");
  assert.equal(c.rounds, 2);
  assert.equal(c.average.weights, null);
});
