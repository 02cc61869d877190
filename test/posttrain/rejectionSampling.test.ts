// Rejection sampling (src/posttrain/rejectionSampling.ts) on a random model with the Llama 3 vocabulary:
// every sample is exactly the completion generate() gives with its seed (sampleSeed), the kept reply is
// the best acceptable sample by the scorer (ties to the lowest index, cut-off samples never kept), the
// task checker scores as check() does, prompts without an acceptable sample are counted and named, and
// `herd rs` writes the kept dialogs and its report. The random model rarely picks a Llama 3 stop token,
// so the tests make every fifth id a stop id: completions then end at different lengths.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { generate, tiktokenCodec } from "../../src/generate/index.js";
import { initWeights, Llama, preset, saveModel } from "../../src/model/index.js";
import { pickBest, rejectionSample, sampleSeed } from "../../src/posttrain/rejectionSampling.js";
import { check, type PromptRow } from "../../src/posttrain/tasks/index.js";
import { ChatFormat, type Message, Tokenizer } from "../../src/tokenizer/index.js";
import { repoPath } from "../helpers.js";

const cli = repoPath("dist", "src", "cli", "main.js");
const tmp = mkdtempSync(join(tmpdir(), "herd-rs-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const STOPS = Array.from({ length: 25651 }, (_, i) => 5 * i);

function llama3Vocab(eos: number[] = [128001, 128008, 128009]): Llama {
  const c = { ...preset("tiny"), hiddenSize: 32, numAttentionHeads: 2, numKeyValueHeads: 1, headDim: 16 };
  const cfg = {
    ...c,
    numHiddenLayers: 2,
    intermediateSize: 64,
    vocabSize: 128256,
    bosTokenId: 128000,
    eosTokenIds: eos,
  };
  const w = initWeights(cfg, { seed: 9 });
  // Sharper logits than random init gives (the tied embedding is the output head): sampling then sorts
  // a few candidates instead of the whole 128K vocabulary, which keeps the test fast.
  const emb = w.get("model.embed_tokens.weight")!.data;
  for (let i = 0; i < emb.length; i++) emb[i]! *= 10;
  return new Llama(cfg, w, "init");
}

const tok = Tokenizer.llama3();
const chat = new ChatFormat(tok);
const codec = tiktokenCodec(tok);
const sampling = { temperature: 1, topK: 40, maxNewTokens: 10, stopIds: STOPS };
const rows: PromptRow[] = ["What is two plus two?", "Name a colour.", "Say hello."].map((q, i) => ({
  id: `p${i}`,
  messages: [{ role: "user", content: q }],
}));

/** Sample i of prompt p as generate() makes it alone. */
function alone(m: Llama, p: number, i: number, seed: number) {
  const ids = chat.encodeDialogPrompt(rows[p]!.messages as Message[]);
  return generate(m, ids, { ...sampling, seed: sampleSeed(seed, p, i), codec });
}

test("pickBest: the highest acceptable score, the lowest index on ties, null when none is acceptable", () => {
  assert.equal(pickBest([1, 3, 3, 2], [true, true, true, true]), 1);
  assert.equal(pickBest([1, 3, 3, 2], [true, false, true, true]), 2);
  assert.equal(pickBest([1, 3], [false, false]), null);
  assert.notEqual(sampleSeed(0, 0, 1), sampleSeed(0, 1, 0));
});

test("rejection sampling: each sample equals generate() with its seed; the kept reply is the scorer's best", () => {
  const m = llama3Vocab();
  const K = 6;
  // A score function (as a reward model would be): the number of letters; ≥ 12 letters is acceptable.
  const letters = (_: readonly Message[], text: string) => text.replace(/[^A-Za-z]/g, "").length;
  const r = rejectionSample(m, chat, codec, rows, {
    k: K,
    scorer: letters,
    minScore: 12,
    seed: 4,
    ...sampling,
  });
  const dialogs = [...r.dialogs];
  let stopped = 0;
  let cut = 0;
  const lone = rows.map((_, p) => Array.from({ length: K }, (_, i) => alone(m, p, i, 4)));
  for (const [p, o] of r.report.outcomes.entries()) {
    const gens = lone[p]!;
    const scores = gens.map((g) => letters([], g.text));
    assert.deepEqual(o.scores, scores, `prompt ${p}: the batched samples are the lone generations`);
    const ok = gens.map((g, i) => g.finishReason === "stop_id" && g.text.trim() !== "" && scores[i]! >= 12);
    stopped += gens.filter((g) => g.finishReason === "stop_id").length;
    cut += gens.filter((g) => g.finishReason === "length").length;
    assert.equal(o.best, pickBest(scores, ok));
    assert.equal(o.acceptable, ok.filter(Boolean).length);
    if (o.best !== null) {
      const d = dialogs.shift()!;
      assert.deepEqual(d.messages.slice(0, -1), rows[p]!.messages);
      assert.deepEqual(d.messages.at(-1), { role: "assistant", content: gens[o.best]!.text });
    } else assert.ok(r.report.noAcceptableIds.includes(rows[p]!.id));
  }
  assert.ok(stopped > 0 && cut > 0, `${stopped} stopped, ${cut} cut off: the test needs both`);
  assert.equal(r.report.samples, rows.length * K);
  assert.equal(r.report.kept + r.report.noAcceptable, rows.length);
  // A score that ties every sample: the lowest index that stopped with some text is kept, never an empty reply.
  const flat = rejectionSample(m, chat, codec, rows, { k: K, scorer: () => 0, seed: 4, ...sampling });
  for (const [p, o] of flat.report.outcomes.entries()) {
    const first = lone[p]!.findIndex((g) => g.finishReason === "stop_id" && g.text.trim() !== "");
    assert.equal(o.best, first < 0 ? null : first);
  }
  assert.ok(
    flat.report.outcomes.some((o) => o.best !== null && o.best > 0),
    "a tie passed over an earlier sample",
  );
  for (const d of flat.dialogs) assert.notEqual(d.messages.at(-1)!.content.trim(), "");
  // A threshold no sample reaches: every prompt counted as without an acceptable sample.
  const none = rejectionSample(m, chat, codec, rows, {
    k: 2,
    scorer: letters,
    minScore: 1e9,
    seed: 4,
    ...sampling,
  });
  assert.equal(none.dialogs.length, 0);
  assert.deepEqual(none.report.noAcceptableIds, ["p0", "p1", "p2"]);
  m.dispose();
});

test("rejection sampling with the checker: correct samples are kept, the lowest index first", () => {
  const m = llama3Vocab();
  const K = 8;
  // A facts task whose answer is the first word of one of prompt 0's stopped samples.
  const gens = Array.from({ length: K }, (_, i) => alone(m, 0, i, 1));
  const target = gens.findIndex((g) => g.finishReason === "stop_id" && /[A-Za-z]{2,}/.test(g.text));
  assert.ok(target >= 0, "a stopped sample with a word");
  const answer = /[A-Za-z']+/.exec(gens[target]!.text)![0];
  const task: PromptRow = { ...rows[0]!, check: { kind: "facts", answer } };
  const r = rejectionSample(m, chat, codec, [task], { k: K, scorer: "checker", seed: 1, ...sampling });
  const ok = gens.map((g) => g.finishReason === "stop_id" && check({ check: task.check! }, g.text).correct);
  assert.deepEqual(
    r.report.outcomes[0]!.scores,
    gens.map((g) => (check({ check: task.check! }, g.text).correct ? 1 : 0)),
  );
  assert.equal(r.report.outcomes[0]!.best, ok.indexOf(true));
  assert.equal(r.dialogs[0]!.messages.at(-1)!.content, gens[ok.indexOf(true)]!.text);
  assert.throws(
    () => rejectionSample(m, chat, codec, rows, { k: 2, scorer: "checker" }),
    /prompt 'p0' has no 'check'/,
  );
  const words = "word ".repeat(m.config.maxPositionEmbeddings);
  const long: PromptRow = { id: "long", messages: [{ role: "user", content: words }] };
  assert.throws(
    () => rejectionSample(m, chat, codec, [long], { k: 2, scorer: () => 0 }),
    /prompt 'long' is \d+ tokens, the model's context/,
  );
  m.dispose();
});

test("herd rs: kept dialogs as JSONL, the report beside them, bad prompt lines named", async () => {
  const m = llama3Vocab(STOPS);
  const dir = join(tmp, "model");
  await saveModel(dir, m, { dtype: "bf16" });
  m.dispose();
  const prompts = join(tmp, "prompts.jsonl");
  const tasks = rows.map((r) => ({ ...r, check: { kind: "arithmetic", answer: 4 } }));
  writeFileSync(prompts, tasks.map((t) => JSON.stringify(t)).join("\n"));
  const out = join(tmp, "rs.jsonl");
  const args = ["rs", "--model", dir, "--prompts", prompts, "--out", out, "--k", "4", "--max-tokens", "6"];
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  assert.equal(summary.prompts, 3);
  assert.equal(summary.samples, 12);
  assert.equal(summary.kept + summary.noAcceptable, 3);
  const report = JSON.parse(readFileSync(`${out}.report.json`, "utf8"));
  assert.equal(report.outcomes.length, 3);
  const kept = readFileSync(out, "utf8").split("\n").filter(Boolean);
  assert.equal(kept.length, summary.kept);
  writeFileSync(prompts, `${JSON.stringify(tasks[0])}\n{"messages": [{"role": "robot", "content": "hi"}]}\n`);
  const bad = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /prompts\.jsonl:2: field 'messages\[0\]' needs a 'role'/);
  const scorer = spawnSync(process.execPath, [cli, ...args, "--scorer", "judge"], { encoding: "utf8" });
  assert.equal(scorer.status, 2);
  assert.match(scorer.stderr, /--scorer: 'judge' is not checker or reward:DIR/);
});
