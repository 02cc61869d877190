// `herd sft --lora` end to end on a tiny model directory: the loss falls, RUN/final is a PEFT adapter
// (PEFT's names and shapes, adapter_config.json) that `sft --evaluate --adapter` and `herd lora merge`
// read, the merged checkpoint gives the logits of base + adapter, checkpoints hold the adapter and no
// base weights, bf16 and Q8_0 bases train, and the bad inputs are errors naming what is wrong.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { readSafetensorsHeader } from "../../src/model/checkpoint/safetensors.js";
import type { Llama } from "../../src/model/llama.js";
import { loadModel } from "../../src/model/load.js";
import { LORA_PARTS, LORA_TARGETS } from "../../src/posttrain/lora.js";
import { loadAdapter } from "../../src/posttrain/peft.js";
import { noGrad, scope } from "../../src/tensor/index.js";
import { closeness, repoPath } from "../helpers.js";
import { jsonl, TINY_CONFIG, tempDir } from "./fixture.js";
import { tinyBaseDir } from "./loraHelpers.js";

const MAIN = repoPath("dist", "src", "cli", "main.js");
const spawn = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: "utf8" });
/** sft on the js backend (bit-reproducible). */
const herd = (...args: string[]) => spawn(...args, "--backend", "js");
const dir = tempDir();

const sftLines = ["one", "two", "three", "four"].map((w) => ({
  messages: [
    { role: "user", content: `Say ${w}` },
    { role: "assistant", content: w },
  ],
}));

const base = join(dir, "base");
const data = join(dir, "sft.jsonl");
const evalLoss = (...args: string[]) => {
  const r = herd("sft", "--evaluate", "--data", data, ...args);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout).loss as number;
};
const train = (out: string, ...args: string[]) => {
  const r = herd(
    "sft",
    "-m",
    base,
    "--data",
    data,
    "-o",
    out,
    "--lora",
    "--lora-rank",
    "4",
    "--lora-alpha",
    "8",
    "--batch",
    "2",
    "--lr",
    "1e-2",
    "--quiet",
    ...args,
  );
  assert.equal(r.status, 0, r.stderr);
  return r;
};
const metrics = (run: string) =>
  readFileSync(join(run, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { loss: number });

test("sft --lora lowers the loss and writes a PEFT adapter that evaluate, merge and the model read", async () => {
  await tinyBaseDir(base);
  jsonl(dir, "sft.jsonl", sftLines);
  const run = join(dir, "run");
  const r = train(run, "--steps", "12", "--checkpoint-every", "6");
  assert.match(r.stdout, /done: .*run[/\\]final/);
  const before = evalLoss("-m", base);
  const after = evalLoss("-m", base, "--adapter", join(run, "final"));
  assert.ok(after < before * 0.8, `loss ${before} → ${after}`);
  assert.equal(metrics(run)[0]!.loss, before, "step 1's loss is the base's (B starts at zero)");

  // PEFT's layout: every linear module of both layers, A [r, in] and B [out, r], f32, PEFT's names.
  const cfg = JSON.parse(readFileSync(join(run, "final", "adapter_config.json"), "utf8"));
  assert.equal(cfg.peft_type, "LORA");
  assert.equal(cfg.r, 4);
  assert.equal(cfg.lora_alpha, 8);
  assert.deepEqual(cfg.target_modules, [...LORA_TARGETS].sort());
  assert.equal(cfg.base_model_name_or_path, base);
  const header = await readSafetensorsHeader(join(run, "final", "adapter_model.safetensors"));
  const c = TINY_CONFIG;
  const q = c.numAttentionHeads * c.headDim;
  const kv = c.numKeyValueHeads * c.headDim;
  const io: Record<string, [number, number]> = {
    q_proj: [q, c.hiddenSize],
    k_proj: [kv, c.hiddenSize],
    v_proj: [kv, c.hiddenSize],
    o_proj: [c.hiddenSize, q],
    gate_proj: [c.intermediateSize, c.hiddenSize],
    up_proj: [c.intermediateSize, c.hiddenSize],
    down_proj: [c.hiddenSize, c.intermediateSize],
  };
  const want = new Map<string, number[]>();
  for (let l = 0; l < c.numHiddenLayers; l++)
    for (const t of LORA_TARGETS) {
      const [out, inp] = io[t]!;
      const m = `base_model.model.model.layers.${l}.${LORA_PARTS[t]}`;
      want.set(`${m}.lora_A.weight`, [4, inp]);
      want.set(`${m}.lora_B.weight`, [out, 4]);
    }
  assert.deepEqual(
    new Map([...header.entries.values()].map((e) => [e.name, e.shape])),
    want,
    "PEFT's tensor names and shapes",
  );
  assert.ok([...header.entries.values()].every((e) => e.dtype === "F32"));

  // A checkpoint holds the adapter, the optimiser state and the trainer state: no base weights.
  for (const step of ["step-00000006", "step-00000012"])
    assert.deepEqual(readdirSync(join(run, "checkpoints", step)).sort(), [
      "adapter_config.json",
      "adapter_model.safetensors",
      "optimizer.safetensors",
      "trainer_state.json",
    ]);

  // herd lora merge: the merged checkpoint's logits are base + adapter's, and so is its loss.
  const merged = join(dir, "merged");
  const m = spawn("lora", "merge", "--model", base, "--adapter", join(run, "final"), "--out", merged);
  assert.equal(m.status, 0, m.stderr);
  const ids = Int32Array.from({ length: 24 }, (_, i) => (i * 37 + 5) % 256);
  const logits = (model: Llama) =>
    noGrad(() => scope(() => Float32Array.from(model.forward(ids, { batch: 2 }).toArray())));
  const adapted = await loadModel(base);
  await loadAdapter(adapted, join(run, "final"));
  const mm = await loadModel(merged);
  assert.ok(closeness(logits(mm), logits(adapted), 1e-5, 1e-5) <= 1, "merged logits = base + adapter");
  assert.ok(Math.abs(evalLoss("-m", merged) - after) < 1e-5 * after);
  adapted.dispose();
  mm.dispose();
});

for (const dtype of ["bf16", "q8_0"])
  test(`sft --lora on a ${dtype} base: the loss falls, evaluate reads the adapter on that base`, () => {
    const run = join(dir, `run-${dtype}`);
    train(run, "--steps", "12", "--base-dtype", dtype);
    const log = metrics(run);
    const after = evalLoss("-m", base, "--base-dtype", dtype, "--adapter", join(run, "final"));
    assert.ok(after < log[0]!.loss * 0.8, `${dtype}: loss ${log[0]!.loss} → ${after}`);
    // The base's dtype changes the base's loss: the run trained on that base, not on f32.
    assert.notEqual(log[0]!.loss, metrics(join(dir, "run"))[0]!.loss);
  });

test("bad LoRA input: a target naming no module, an unquantisable Q8_0 base, meaningless combinations", async () => {
  const out = join(dir, "bad");
  const t = herd("sft", "-m", base, "--data", data, "-o", out, "--lora", "--lora-targets", "q_proj,qkv_proj");
  assert.equal(t.status, 1);
  assert.match(
    t.stderr,
    /LoRA target 'qkv_proj' names no module of this model; the linear modules are q_proj/,
  );

  const odd = join(dir, "odd");
  await tinyBaseDir(odd, { ...TINY_CONFIG, hiddenSize: 48, numAttentionHeads: 3 });
  const q = herd("sft", "-m", odd, "--data", data, "-o", out, "--lora", "--base-dtype", "q8_0");
  assert.equal(q.status, 1);
  assert.match(
    q.stderr,
    /--base-dtype q8_0 needs every matrix's rows in whole blocks of 32 values \(ggml's Q8_0\); 'model\.embed_tokens\.weight' is \[512,48\] \(rows of 48\)\. Use --base-dtype bf16/,
  );

  const usage = (args: string[], re: RegExp) => {
    const r = herd("sft", "-m", base, "--data", data, ...args);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, re);
  };
  usage(["-o", out, "--base-dtype", "bf16"], /--base-dtype bf16 needs --lora/);
  usage(["-o", out, "--adapter", join(dir, "run", "final")], /--adapter DIR is for --evaluate/);
  usage(["--evaluate", "--lora"], /pass it with --adapter DIR, not --lora/);
  const noAdapter = herd("sft", "--evaluate", "-m", base, "--data", data, "--adapter", dir);
  assert.equal(noAdapter.status, 1);
  assert.match(noAdapter.stderr, /no adapter_config\.json/);
});
