// HF checkpoint directories: reading the fixtures, writing single and sharded, and their errors.
import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { getBackend } from "../../../src/backends/index.js";
import {
  expectTensor,
  readHFCheckpoint,
  readSafetensorsHeader,
  writeHFCheckpoint,
} from "../../../src/model/checkpoint/index.js";
import { fromArray, type Tensor } from "../../../src/tensor/tensor.js";
import { randArray, repoPath } from "../../helpers.js";

const fixtures = repoPath("test", "fixtures");
const tmp = mkdtempSync(join(tmpdir(), "herd-hf-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

function same(a: Map<string, Tensor>, b: Map<string, Tensor>): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [name, t] of a) {
    const u = b.get(name)!;
    assert.deepEqual(u.shape, t.shape, name);
    assert.equal(u.dtype, t.dtype, name);
    const x = t.dtype === "f32" ? t.data : t.halfBits;
    const y = u.dtype === "f32" ? u.data : u.halfBits;
    assert.ok(
      Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(
        Buffer.from(y.buffer, y.byteOffset, y.byteLength),
      ),
      name,
    );
  }
}

/** Same header (up to key order: the reference files put __metadata__ last) and same data bytes. */
function sameFile(a: string, b: string): void {
  const [x, y] = [readFileSync(a), readFileSync(b)];
  const [n, m] = [Number(x.readBigUInt64LE(0)), Number(y.readBigUInt64LE(0))];
  assert.equal(n, m);
  assert.deepEqual(JSON.parse(x.subarray(8, 8 + n).toString()), JSON.parse(y.subarray(8, 8 + m).toString()));
  assert.ok(x.subarray(8 + n).equals(y.subarray(8 + m)));
}

describe("HF checkpoint directories", () => {
  test("reads stories260K: config and every LlamaForCausalLM tensor", async () => {
    const { config, tensors } = await readHFCheckpoint(join(fixtures, "stories260K"));
    assert.equal(config.hidden_size, 64);
    assert.equal(config.tie_word_embeddings, true);
    const L = config.num_hidden_layers as number;
    assert.equal(tensors.size, 2 + 9 * L, "embed, norm and 9 per layer; no lm_head (tied)");
    expectTensor(tensors, "model.embed_tokens.weight", [512, 64], "stories260K");
    expectTensor(tensors, "model.layers.4.self_attn.k_proj.weight", [32, 64], "stories260K");
    expectTensor(tensors, "model.layers.0.mlp.down_proj.weight", [64, 172], "stories260K");
    assert.ok(!tensors.has("lm_head.weight"));
  });

  test("expectTensor names the file and the tensor", async () => {
    const { tensors } = await readHFCheckpoint(join(fixtures, "reference", "tiny-scaled"));
    assert.throws(
      () => expectTensor(tensors, "model.layers.9.mlp.up_proj.weight", [224, 64], "dir/x"),
      /dir\/x: tensor 'model\.layers\.9\.mlp\.up_proj\.weight' is missing/,
    );
    assert.throws(
      () => expectTensor(tensors, "lm_head.weight", [320, 64], "dir/x"),
      /dir\/x: tensor 'lm_head\.weight' has shape \[256,64\], the config needs \[320,64\]/,
    );
  });

  test("write → read: single file, f32 and bf16, equal to the reference files", async () => {
    const src = join(fixtures, "reference", "tiny-scaled");
    const { config, tensors } = await readHFCheckpoint(src);
    const out = join(tmp, "single");
    await writeHFCheckpoint(out, config, tensors);
    assert.deepEqual(readdirSync(out).sort(), ["config.json", "model.safetensors"]);
    sameFile(join(out, "model.safetensors"), join(src, "model.safetensors"));
    assert.deepEqual(JSON.parse(readFileSync(join(out, "config.json"), "utf8")), config);
    same(tensors, (await readHFCheckpoint(out)).tensors);
    // bf16: the reference's BF16 file.
    await writeHFCheckpoint(out, config, tensors, { dtype: "bf16" });
    sameFile(join(out, "model.safetensors"), join(src, "model-bf16.safetensors"));
    const kept = await readHFCheckpoint(out, { dtype: "keep" });
    assert.equal(kept.tensors.get("lm_head.weight")!.dtype, "bf16");
  });

  test("sharded write: HF file names, index, and a byte-identical read back", async () => {
    const { config, tensors } = await readHFCheckpoint(join(fixtures, "reference", "tiny-tied"));
    const out = join(tmp, "sharded");
    const max = 400_000;
    await writeHFCheckpoint(out, config, tensors, { maxShardBytes: max });
    const files = readdirSync(out).sort();
    const shards = files.filter((f) => f.startsWith("model-"));
    assert.ok(shards.length >= 4, `${shards.length} shards`);
    const pad = (x: number) => String(x).padStart(5, "0");
    for (const [i, f] of shards.entries())
      assert.equal(f, `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`);
    assert.deepEqual(files, ["config.json", ...shards, "model.safetensors.index.json"]);
    const indexText = readFileSync(join(out, "model.safetensors.index.json"), "utf8");
    const index = JSON.parse(indexText);
    assert.deepEqual(Object.keys(index), ["metadata", "weight_map"]);
    assert.ok(indexText.endsWith("}\n"));
    let total = 0;
    for (const t of tensors.values()) total += t.size * 4;
    assert.equal(index.metadata.total_size, total);
    const names = Object.keys(index.weight_map);
    assert.deepEqual(names, [...names].sort(), "weight_map sorted by name");
    assert.deepEqual(names.sort(), [...tensors.keys()].sort());
    // Each shard holds exactly what the index says, within the size limit (none of these tensors is larger).
    for (const f of shards) {
      const h = await readSafetensorsHeader(join(out, f));
      const listed = names.filter((n) => index.weight_map[n] === f);
      assert.deepEqual([...h.entries.keys()].sort(), listed.sort());
      let bytes = 0;
      for (const e of h.entries.values()) bytes += e.end - e.begin;
      assert.ok(bytes <= max);
    }
    // Shards follow the map's order: the embedding (first tensor) is in the first shard.
    assert.equal(index.weight_map["model.embed_tokens.weight"], shards[0]);
    same(tensors, (await readHFCheckpoint(out)).tensors);
  });

  test("a tensor larger than the shard size gets a shard of its own; rewrites remove stale files", async () => {
    const t = new Map<string, Tensor>([
      ["a", fromArray(randArray(10, 1))],
      ["big", fromArray(randArray(100, 2))],
      ["c", fromArray(randArray(10, 3))],
    ]);
    const out = join(tmp, "big");
    await writeHFCheckpoint(out, { x: 1 }, t, { maxShardBytes: 100 });
    const index = JSON.parse(readFileSync(join(out, "model.safetensors.index.json"), "utf8"));
    assert.deepEqual(index.weight_map, {
      a: "model-00001-of-00003.safetensors",
      big: "model-00002-of-00003.safetensors",
      c: "model-00003-of-00003.safetensors",
    });
    same(t, (await readHFCheckpoint(out)).tensors);
    await writeHFCheckpoint(out, { x: 2 }, t);
    assert.deepEqual(readdirSync(out).sort(), ["config.json", "model.safetensors"]);
    writeFileSync(join(out, "tokenizer.json"), "{}");
    await writeHFCheckpoint(out, { x: 3 }, t, { maxShardBytes: 450 });
    assert.deepEqual(readdirSync(out).sort(), [
      "config.json",
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
      "model.safetensors.index.json",
      "tokenizer.json",
    ]);
    assert.deepEqual((await readHFCheckpoint(out)).config, { x: 3 });
  });

  test("a failed write leaves no temporary files and the old checkpoint intact", async () => {
    const out = join(tmp, "atomic");
    const t = new Map([["a", fromArray(randArray(4, 1))]]);
    await writeHFCheckpoint(out, { v: 1 }, t);
    const disposed = fromArray(randArray(4, 2));
    disposed.dispose();
    await assert.rejects(writeHFCheckpoint(out, { v: 2 }, new Map([["a", disposed]])), /disposed/);
    assert.deepEqual(readdirSync(out).sort(), ["config.json", "model.safetensors"]);
    const back = await readHFCheckpoint(out);
    assert.deepEqual(back.config, { v: 1 });
    same(t, back.tensors);
  });

  describe("errors", () => {
    const shardedDir = async (name: string): Promise<string> => {
      const d = join(tmp, name);
      await writeHFCheckpoint(
        d,
        {},
        new Map([
          ["a", fromArray([1, 2])],
          ["b", fromArray([3, 4])],
        ]),
        { maxShardBytes: 8 },
      );
      return d;
    };

    test("a missing shard", async () => {
      const d = await shardedDir("e-missing");
      rmSync(join(d, "model-00002-of-00002.safetensors"));
      await assert.rejects(
        readHFCheckpoint(d),
        /model\.safetensors\.index\.json: shard model-00002-of-00002\.safetensors \(holding tensor 'b'\) is missing/,
      );
    });

    test("a tensor listed in the index but absent from its shard", async () => {
      const d = await shardedDir("e-absent");
      const p = join(d, "model.safetensors.index.json");
      const index = JSON.parse(readFileSync(p, "utf8"));
      index.weight_map.c = "model-00001-of-00002.safetensors";
      writeFileSync(p, JSON.stringify(index));
      await assert.rejects(
        readHFCheckpoint(d),
        /model-00001-of-00002\.safetensors: tensor 'c' is listed in model\.safetensors\.index\.json but not in this shard/,
      );
    });

    test("an index pointing outside the directory", async () => {
      const d = await shardedDir("e-escape");
      writeFileSync(
        join(d, "model.safetensors.index.json"),
        JSON.stringify({ weight_map: { a: "../x.safetensors" } }),
      );
      await assert.rejects(readHFCheckpoint(d), /tensor 'a' maps to "\.\.\/x\.safetensors", not a file name/);
    });

    test("no weights, no config, a bad config", async () => {
      const d = join(tmp, "e-empty");
      mkdirSync(d, { recursive: true });
      await assert.rejects(readHFCheckpoint(d), /e-empty\/config\.json: file is missing/);
      writeFileSync(join(d, "config.json"), "{");
      await assert.rejects(readHFCheckpoint(d), /e-empty\/config\.json: not valid JSON/);
      writeFileSync(join(d, "config.json"), "{}");
      await assert.rejects(
        readHFCheckpoint(d),
        /e-empty: neither model\.safetensors nor model\.safetensors\.index\.json/,
      );
    });

    test("a corrupt shard names the shard and tensor, and frees what was read", async () => {
      const d = join(tmp, "e-corrupt");
      cpSync(join(fixtures, "reference", "tiny-scaled"), d, { recursive: true });
      const p = join(d, "model.safetensors");
      const b = readFileSync(p);
      writeFileSync(p, b.subarray(0, b.length - 100));
      await assert.rejects(
        readHFCheckpoint(d),
        /e-corrupt\/model\.safetensors: tensor 'model\.norm\.weight': .*truncated/,
      );
      // A read that fails mid-way (a dtype herd does not read, after a good tensor) frees what it read.
      const live = getBackend().liveBytes();
      const h = {
        a: { dtype: "F32", shape: [4], data_offsets: [0, 16] },
        z: { dtype: "I32", shape: [1], data_offsets: [16, 20] },
      };
      const json = Buffer.from(JSON.stringify(h));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(json.length));
      writeFileSync(p, Buffer.concat([len, json, Buffer.alloc(20)]));
      await assert.rejects(readHFCheckpoint(d), /tensor 'z': dtype I32 is not supported/);
      assert.equal(getBackend().liveBytes(), live, "tensors read before the error were freed");
    });
  });
});

test("loadModel checks the safetensors shapes against config.json before reading any tensor", async () => {
  const { loadModel } = await import("../../../src/model/load.js");
  const d = join(tmp, "wrong-ffn");
  cpSync(repoPath("test", "fixtures", "stories260K"), d, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(d, "config.json"), "utf8"));
  writeFileSync(join(d, "config.json"), JSON.stringify({ ...cfg, intermediate_size: 176 }));
  await assert.rejects(
    loadModel(d),
    /wrong-ffn\/model\.safetensors: tensor 'model\.layers\.0\.mlp\.down_proj\.weight' has shape \[64,172\]; .*wrong-ffn\/config\.json needs \[64,176\]/,
  );
});

test("a config.json larger than any config is refused before it is read", async () => {
  const { readConfig } = await import("../../../src/model/load.js");
  const d = join(tmp, "huge-config");
  cpSync(repoPath("test", "fixtures", "stories260K"), d, { recursive: true });
  // Valid JSON, padded with 17 MiB of spaces.
  const cfg = readFileSync(join(d, "config.json"), "utf8");
  writeFileSync(join(d, "config.json"), cfg.replace("{", `{${" ".repeat(17 << 20)}`));
  assert.throws(
    () => readConfig(d),
    /huge-config\/config\.json: 17\d{6} bytes, more than the 16 MiB such a file may hold/,
  );
});
