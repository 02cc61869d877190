// LoRA adapters on disk in PEFT's layout: what herd writes has the names, dtypes, shapes and config of
// the hand-written PEFT fixture (test/fixtures/peft/README.md says where each comes from); an adapter in
// that layout written by another writer loads; save → load gives the same model bit for bit; and bad
// adapters are refused with errors that name the file and the field or tensor.
import assert from "node:assert/strict";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { readSafetensorsHeader } from "../../src/model/checkpoint/safetensors.js";
import { applyLora, LORA_TARGETS } from "../../src/posttrain/lora.js";
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, loadAdapter, saveAdapter } from "../../src/posttrain/peft.js";
import { tempDir } from "../data/tmp.js";
import { randArray, repoPath } from "../helpers.js";
import { logitsOf, tinyModel } from "./loraHelpers.js";

const fixture = repoPath("test", "fixtures", "peft", "tiny-lora");
const fixtureConfig = JSON.parse(readFileSync(join(fixture, ADAPTER_CONFIG), "utf8")) as Record<
  string,
  unknown
>;
const fixtureTensors = JSON.parse(readFileSync(join(fixture, "tensors.json"), "utf8")) as Record<
  string,
  { dtype: string; shape: number[] }
>;
/** Fields PEFT writes that herd leaves out (they configure Megatron and LoftQ, which herd does not use). */
const NOT_WRITTEN = ["loftq_config", "megatron_config", "megatron_core"];

/** A safetensors file written independently of herd's writer: entries in the given order, f32 data. */
function writeRawSafetensors(path: string, tensors: [string, number[], Float32Array][]): void {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape, data] of tensors) {
    header[name] = { dtype: "F32", shape, data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([len, json, ...tensors.map(([, , d]) => Buffer.from(d.buffer))]));
}

test("an adapter written by herd has PEFT's tensor names, dtypes, shapes and config", async () => {
  const model = tinyModel("f32");
  const lora = applyLora(model, { rank: 4, alpha: 8, dropout: 0.05, targets: [...LORA_TARGETS] });
  const dir = tempDir("herd-lora-");
  await saveAdapter(lora, dir, { baseModel: "herd-tiny-lora-test" });
  const header = await readSafetensorsHeader(join(dir, ADAPTER_WEIGHTS));
  const got = Object.fromEntries(
    [...header.entries.values()].map((t) => [t.name, { dtype: t.dtype, shape: [...t.shape] }]),
  );
  assert.deepEqual(
    Object.keys(got).sort(),
    Object.keys(fixtureTensors).sort(),
    "the same tensor names as PEFT's state dict",
  );
  for (const [name, want] of Object.entries(fixtureTensors)) assert.deepEqual(got[name], want, name);
  // The config: PEFT's text (sorted keys, indent 2) less the fields herd does not write.
  const want = Object.fromEntries(Object.entries(fixtureConfig).filter(([k]) => !NOT_WRITTEN.includes(k)));
  const text = readFileSync(join(dir, ADAPTER_CONFIG), "utf8");
  assert.equal(text.trim(), JSON.stringify(want, null, 2));
});

test("an adapter in PEFT's layout from another writer loads: values, rank, alpha, dropout", async () => {
  const dir = tempDir("herd-lora-");
  copyFileSync(join(fixture, ADAPTER_CONFIG), join(dir, ADAPTER_CONFIG));
  const entries = Object.entries(fixtureTensors).map(
    ([name, { shape }], i) =>
      [name, shape, randArray(shape[0]! * shape[1]!, i + 1, 0.1)] as [string, number[], Float32Array],
  );
  writeRawSafetensors(join(dir, ADAPTER_WEIGHTS), entries.reverse());
  const model = tinyModel("bf16");
  const lora = await loadAdapter(model, dir);
  assert.equal(lora.rank, 4);
  assert.equal(lora.scaling, 2);
  assert.equal(lora.dropout, 0.05);
  assert.equal(lora.modules.length, 14);
  const byName = new Map(entries.map(([n, , d]) => [n, d]));
  for (const m of lora.modules) {
    assert.deepEqual(m.A.data, byName.get(`base_model.model.${m.module}.lora_A.weight`));
    assert.deepEqual(m.B.data, byName.get(`base_model.model.${m.module}.lora_B.weight`));
  }
});

test("save → load round trip: the same logits bit for bit, on an f32 and a Q8_0 base", async () => {
  for (const dtype of ["f32", "q8_0"] as const) {
    const a = tinyModel(dtype);
    const lora = applyLora(a, { rank: 3, alpha: 5, targets: ["q_proj", "down_proj"], useRslora: true });
    for (const [i, p] of lora.parameters().entries()) p.data.set(randArray(p.size, 50 + i, 0.2));
    const dir = tempDir("herd-lora-");
    await saveAdapter(lora, dir);
    const b = tinyModel(dtype);
    const back = await loadAdapter(b, dir);
    assert.equal(back.useRslora, true);
    assert.equal(back.scaling, 5 / Math.sqrt(3));
    assert.deepEqual(back.targets, ["q_proj", "down_proj"]);
    assert.deepEqual(logitsOf(b), logitsOf(a), dtype);
  }
});

test("an adapter on some layers only is saved with full module names and reloads onto exactly those", async () => {
  for (const targets of [["model.layers.1.mlp.up_proj", "q_proj"], ".*\\.0\\.self_attn\\.[kv]_proj"]) {
    const a = tinyModel("bf16");
    const lora = applyLora(a, { rank: 2, alpha: 2, targets });
    for (const [i, p] of lora.parameters().entries()) p.data.set(randArray(p.size, 80 + i, 0.2));
    const dir = tempDir("herd-lora-");
    await saveAdapter(lora, dir);
    const written = JSON.parse(readFileSync(join(dir, ADAPTER_CONFIG), "utf8")).target_modules;
    assert.deepEqual(written, lora.modules.map((m) => m.module).sort());
    const b = tinyModel("bf16");
    const back = await loadAdapter(b, dir);
    assert.deepEqual(
      back.modules.map((m) => m.module),
      lora.modules.map((m) => m.module),
    );
    assert.deepEqual(logitsOf(b), logitsOf(a));
  }
});

test("bad adapters are refused, naming the file and the field or tensor", async () => {
  const model = tinyModel("f32");
  const good = tempDir("herd-lora-");
  await saveAdapter(applyLora(model, { rank: 2, alpha: 4, targets: ["v_proj"] }), good);
  const config = JSON.parse(readFileSync(join(good, ADAPTER_CONFIG), "utf8"));
  const variant = (over: Record<string, unknown>, weights = true) => {
    const dir = tempDir("herd-lora-");
    writeFileSync(join(dir, ADAPTER_CONFIG), JSON.stringify({ ...config, ...over }));
    if (weights) copyFileSync(join(good, ADAPTER_WEIGHTS), join(dir, ADAPTER_WEIGHTS));
    return dir;
  };
  const fresh = () => tinyModel("f32");
  await assert.rejects(
    loadAdapter(fresh(), tempDir("herd-lora-")),
    /no adapter_config\.json \(not a PEFT adapter directory\)/,
  );
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ peft_type: "IA3" }, /adapter_config\.json: field 'peft_type' must be "LORA", got "IA3"/],
    [{ r: 0 }, /field 'r' must be an integer ≥ 1, got 0/],
    [{ use_dora: true }, /field 'use_dora' must be false \(DoRA is not supported\)/],
    [{ bias: "all" }, /field 'bias' must be "none"/],
    [{ rank_pattern: { q_proj: 8 } }, /field 'rank_pattern' must be empty or null/],
    [
      { exclude_modules: ["model.layers.0.self_attn.v_proj"] },
      /field 'exclude_modules' must be empty or null/,
    ],
    [
      { target_modules: ["v_proj", "qkv"] },
      /field 'target_modules': LoRA target 'qkv' names no module of this model/,
    ],
    [
      { target_modules: ["v_proj", "k_proj"] },
      /tensor 'base_model\.model\.model\.layers\.0\.self_attn\.k_proj\.lora_A\.weight' is missing/,
    ],
    [
      { target_modules: ["k_proj"] },
      /tensor 'base_model\.model\.model\.layers\.0\.self_attn\.v_proj\.lora_A\.weight' is not a LoRA weight/,
    ],
    [
      { r: 3 },
      /adapter_model\.safetensors: tensor '.*v_proj\.lora_A\.weight' has shape \[2,32\], expected \[3,32\]/,
    ],
  ];
  for (const [over, error] of cases) await assert.rejects(loadAdapter(fresh(), variant(over)), error);
  await assert.rejects(loadAdapter(fresh(), variant({}, false)), /no adapter_model\.safetensors/);
});
