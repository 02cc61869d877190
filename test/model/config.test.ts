// Config parsing and writing, the FFN formula, presets' parameter counts (spec §2.3, to the unit),
// KV-cache bytes, and RoPE frequencies with the llama3 scaling bands (spec §2.6).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  baseInvFreq,
  ffnHiddenSize,
  flopsPerToken,
  fromHFConfig,
  fromMetaParams,
  kvBytesPerToken,
  paramBreakdown,
  paramCount,
  preset,
  presetNames,
  ropeInvFreq,
  scaleFrequency,
  toHFConfig,
  weightBytes,
} from "../../src/model/index.js";
import { maxRelError, repoPath } from "../helpers.js";

const REF = ["tiny-scaled", "tiny-tied"];
const json = (...p: string[]) => JSON.parse(readFileSync(repoPath(...p), "utf8"));

test("HF config.json of the reference models parses, and toHFConfig writes the same values back", () => {
  for (const name of REF) {
    const raw = json("test", "fixtures", "reference", name, "config.json");
    const c = fromHFConfig(raw, `${name}/config.json`);
    const exp = json("test", "fixtures", "reference", name, "expected.json");
    assert.equal(c.intermediateSize, exp.ffn_hidden_dim);
    assert.equal(paramCount(c), exp.param_count, `${name}: parameter count`);
    const back = toHFConfig(c, "f32");
    for (const [k, v] of Object.entries(raw)) assert.deepEqual(back[k], v, `${name}: key ${k}`);
    assert.deepEqual(fromHFConfig(back), c, "round trip");
    assert.deepEqual(fromHFConfig(JSON.parse(JSON.stringify(toHFConfig(c, "bf16")))), c);
    assert.equal(toHFConfig(c, "bf16").torch_dtype, "bfloat16");
  }
  const stories = fromHFConfig(json("test", "fixtures", "stories260K", "config.json"));
  assert.equal(stories.tieWordEmbeddings, true);
  assert.equal(stories.headDim, 8);
  assert.deepEqual(stories.eosTokenIds, [2]);
});

test("config errors name the file and the field", () => {
  const raw = json("test", "fixtures", "reference", "tiny-scaled", "config.json");
  const bad = (patch: Record<string, unknown>, re: RegExp) =>
    assert.throws(() => fromHFConfig({ ...raw, ...patch }, "x/config.json"), re);
  bad({ hidden_size: undefined }, /x\/config\.json: field 'hidden_size' is missing/);
  bad({ num_key_value_heads: 3 }, /x\/config\.json: field 'num_key_value_heads' \(3\) must divide/);
  bad({ intermediate_size: -4 }, /field 'intermediate_size' must be a positive integer/);
  bad({ hidden_act: "gelu" }, /field 'hidden_act'/);
  bad({ attention_bias: true }, /field 'attention_bias'/);
  bad(
    { rope_scaling: { rope_type: "yarn", factor: 2 } },
    /field 'rope_scaling.rope_type' 'yarn' is not supported/,
  );
  bad(
    { rope_scaling: { ...raw.rope_scaling, low_freq_factor: "1" } },
    /field 'rope_scaling.low_freq_factor' must be a positive number/,
  );
  bad({ eos_token_id: 999 }, /field 'eos_token_id' \(999\) is outside the vocabulary/);
  assert.throws(
    () => fromMetaParams({ dim: 64, n_layers: 2 }, "m/params.json"),
    /m\/params\.json: field 'n_heads' is missing/,
  );
});

test("config integers beyond any Llama's shape are refused, naming the file and field; 405B's shape passes", () => {
  const raw = json("test", "fixtures", "reference", "tiny-scaled", "config.json");
  const bad = (patch: Record<string, unknown>, re: RegExp) =>
    assert.throws(() => fromHFConfig({ ...raw, ...patch }, "x/config.json"), re);
  bad(
    { num_hidden_layers: 1e9 },
    /x\/config\.json: field 'num_hidden_layers' must be at most 512, got 1000000000/,
  );
  bad({ hidden_size: 2 ** 20, head_dim: 16 }, /field 'hidden_size' must be at most 65536/);
  bad({ intermediate_size: 2 ** 30 }, /field 'intermediate_size' must be at most 262144/);
  bad({ vocab_size: 1e9 }, /field 'vocab_size' must be at most 4194304/);
  bad(
    { num_attention_heads: 2 ** 14, num_key_value_heads: 2, head_dim: 16 },
    /field 'num_attention_heads' must be at most 1024/,
  );
  bad({ head_dim: 2 ** 16 }, /field 'head_dim' must be at most 4096/);
  bad({ max_position_embeddings: 2 ** 40 }, /field 'max_position_embeddings' must be at most 16777216/);
  bad({ num_hidden_layers: 2.5 }, /field 'num_hidden_layers' must be a positive integer, got 2.5/);
  const big = preset("llama3.1-405b");
  assert.deepEqual(fromHFConfig(toHFConfig(big)), big);
  const meta = { dim: 64, n_heads: 4, n_layers: 2, vocab_size: 320 };
  assert.throws(
    () => fromMetaParams({ ...meta, n_layers: 1e9 }, "m/params.json"),
    /m\/params\.json: field 'n_layers' must be at most 512/,
  );
  assert.throws(
    () => fromMetaParams({ ...meta, ffn_dim_multiplier: 1e6 }, "m/params.json"),
    /m\/params\.json: field 'ffn_dim_multiplier' gives an FFN size of \d+, more than 262144/,
  );
});

test("Meta params.json: FFN size by the spec's formula, config equal to HF's", () => {
  for (const name of REF) {
    const params = json("test", "fixtures", "reference", name, "meta", "params.json");
    const hf = fromHFConfig(json("test", "fixtures", "reference", name, "config.json"));
    const c = fromMetaParams(params, "params.json", {
      ropeScaling: hf.ropeScaling,
      tieWordEmbeddings: hf.tieWordEmbeddings,
      maxPositionEmbeddings: hf.maxPositionEmbeddings,
      bosTokenId: hf.bosTokenId,
      eosTokenIds: hf.eosTokenIds,
    });
    assert.deepEqual(c, hf, name);
  }
  // Worked values of spec §2.2.
  assert.equal(ffnHiddenSize(2048, 256, 1.5), 8192);
  assert.equal(ffnHiddenSize(3072, 256, 1.0), 8192);
  assert.equal(ffnHiddenSize(4096, 1024, 1.3), 14336);
  assert.equal(ffnHiddenSize(8192, 4096, 1.3), 28672);
  assert.equal(ffnHiddenSize(16384, 4096, 1.2), 53248);
  // Meta's 3.2 1B params: scaled RoPE with factor 32 (spec §2.6), tied, Llama 3 token ids.
  const oneB = fromMetaParams({
    dim: 2048,
    n_layers: 16,
    n_heads: 32,
    n_kv_heads: 8,
    vocab_size: 128256,
    ffn_dim_multiplier: 1.5,
    multiple_of: 256,
    norm_eps: 1e-5,
    rope_theta: 500000.0,
    use_scaled_rope: true,
  });
  assert.deepEqual(oneB, preset("llama3.2-1b"));
  const eightB = fromMetaParams({
    dim: 4096,
    n_layers: 32,
    n_heads: 32,
    n_kv_heads: 8,
    vocab_size: 128256,
    ffn_dim_multiplier: 1.3,
    multiple_of: 1024,
    norm_eps: 1e-5,
    rope_theta: 500000.0,
    use_scaled_rope: true,
  });
  assert.deepEqual(eightB, preset("llama3.1-8b"));
});

test("published presets: parameter counts, non-embedding counts and KV bytes equal spec §2.3", () => {
  const want: [string, number, number, number, number, number][] = [
    // name, total, non-embedding, attention/layer, FFN/layer, KV KiB/token (bf16)
    ["llama3.2-1b", 1_235_814_400, 973_146_112, 10_485_760, 50_331_648, 32],
    ["llama3.2-3b", 3_212_749_824, 2_818_747_392, 25_165_824, 75_497_472, 112],
    ["llama3.1-8b", 8_030_261_248, 6_979_588_096, 41_943_040, 176_160_768, 128],
    ["llama3.1-70b", 70_553_706_496, 68_452_360_192, 150_994_944, 704_643_072, 320],
    ["llama3.1-405b", 405_853_388_800, 401_650_696_192, 570_425_344, 2_617_245_696, 504],
  ];
  for (const [name, total, nonEmb, attn, ffn, kvKiB] of want) {
    const c = preset(name);
    const p = paramBreakdown(c);
    assert.equal(p.total, total, `${name} total`);
    assert.equal(p.nonEmbedding, nonEmb, `${name} non-embedding`);
    assert.equal(p.attentionPerLayer, attn, `${name} attention/layer`);
    assert.equal(p.ffnPerLayer, ffn, `${name} FFN/layer`);
    assert.equal(kvBytesPerToken(c, "bf16"), kvKiB * 1024, `${name} KV bytes/token`);
    assert.equal(weightBytes(c, "bf16"), 2 * total);
  }
  // The 405B training compute check of spec §2.3: 6·N·15.6T ≈ 3.8e25.
  const f = flopsPerToken(preset("llama3.1-405b")).training;
  assert.ok(Math.abs((f * 15.6e12) / 3.8e25 - 1) < 0.01, `405B training FLOPs ${f * 15.6e12}`);
  // CPU presets are the sizes they claim.
  assert.ok(paramCount(preset("tiny")) > 0.8e6 && paramCount(preset("tiny")) < 2e6);
  assert.ok(paramCount(preset("small")) > 10e6 && paramCount(preset("small")) < 20e6);
  assert.ok(presetNames().includes("small"));
  assert.throws(() => preset("llama9"), /unknown preset 'llama9'/);
});

test("RoPE inverse frequencies equal the reference inv_freq (scaled and unscaled)", () => {
  for (const name of REF) {
    const c = fromHFConfig(json("test", "fixtures", "reference", name, "config.json"));
    const want = json("test", "fixtures", "reference", name, "expected.json").inv_freq as number[];
    const got = ropeInvFreq(c);
    assert.equal(got.length, want.length);
    assert.ok(maxRelError(got, want) < 2e-7, `${name}: ${maxRelError(got, want)}`);
  }
});

test("llama3 scaling bands: which pairs are kept, smoothed and divided (spec §2.6)", () => {
  const bands = (name: string) => {
    const c = preset(name);
    const base = baseInvFreq(c.headDim, c.ropeTheta);
    const kinds = [...base].map((w) => {
      const s = scaleFrequency(w, c.ropeScaling!);
      return s === w ? "keep" : Math.abs(s - w / c.ropeScaling!.factor) < 1e-15 * w ? "div" : "smooth";
    });
    return [kinds.indexOf("smooth"), kinds.lastIndexOf("smooth"), kinds.lastIndexOf("keep")];
  };
  assert.deepEqual(bands("llama3.1-8b"), [29, 34, 28]);
  assert.deepEqual(bands("llama3.2-1b"), [15, 17, 14]);
});
