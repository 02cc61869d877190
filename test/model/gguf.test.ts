// GGUF files: the container read against bytes laid out by hand from ggml's docs/gguf.md (every
// metadata type, nested arrays, alignment), hostile files (a loop of truncations and lying counts,
// lengths, types and offsets: each an Error naming the file, never a crash or a giant allocation), and
// Llama models: export → loadModel gives the source model's config and the same logits (f32 exactly;
// f16/bf16/q8_0/q4_0 exactly those of the source rounded or quantised by herd), the f32 file matches
// the independent PyTorch reference logits, the Q/K/V matrices hold Meta's interleaved rows as in Meta's
// own checkpoint (llama.cpp's layout), and rope_freqs holds the divisors of the reference's
// scaled inverse frequencies.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { run as runExport } from "../../src/cli/export.js";
import { UsageError } from "../../src/core/schema.js";
import { GGUFFile, GGUFType, gguf, writeGGUF } from "../../src/model/checkpoint/gguf.js";
import { ggufConfig, ropeFreqFactors, writeGGUFModel } from "../../src/model/checkpoint/ggufLlama.js";
import { byteToUnicode, readGGUFTokenizer, vocabMetadata } from "../../src/model/checkpoint/ggufVocab.js";
import { readSafetensors, readTorchIndex, readTorchTensor } from "../../src/model/checkpoint/index.js";
import { ReadFile } from "../../src/model/checkpoint/io.js";
import { Llama, loadModel } from "../../src/model/index.js";
import { quantizeWeights } from "../../src/model/quantize.js";
import { noGrad, scope, type Tensor } from "../../src/tensor/index.js";
import type { QuantTensor } from "../../src/tensor/quant.js";
import { Tokenizer } from "../../src/tokenizer/index.js";
import { closeness, repoPath } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "herd-gguf-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Little-endian bytes built field by field, as docs/gguf.md describes them. */
class B {
  parts: number[] = [];
  u8(v: number) {
    this.parts.push(v & 255);
    return this;
  }
  u32(v: number) {
    for (let i = 0; i < 4; i++) this.parts.push((v >>> (8 * i)) & 255);
    return this;
  }
  u64(v: number) {
    return this.u32(v % 2 ** 32).u32(Math.floor(v / 2 ** 32));
  }
  f32(v: number) {
    this.parts.push(...new Uint8Array(Float32Array.of(v).buffer));
    return this;
  }
  str(s: string) {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.parts.push(...b);
    return this;
  }
  pad(align: number) {
    while (this.parts.length % align) this.parts.push(0);
    return this;
  }
  bytes() {
    return Uint8Array.from(this.parts);
  }
}

/** A small valid file by hand: 5 metadata pairs (u8, i32, f32 ... nested array), alignment 64, 2 tensors. */
function handMade(): Uint8Array {
  const b = new B().u32(0x46554747).u32(3).u64(2).u64(6);
  b.str("general.alignment").u32(4).u32(64);
  b.str("a.u8").u32(0).u8(200);
  b.str("a.i32")
    .u32(5)
    .u32(-7 >>> 0);
  b.str("a.f32").u32(6).f32(1.5);
  b.str("a.bool").u32(7).u8(1);
  // an array of 2 arrays of UINT16: [[1, 2], [3]]
  b.str("a.nested").u32(9).u32(9).u64(2);
  b.u32(2).u64(2).u8(1).u8(0).u8(2).u8(0);
  b.u32(2).u64(1).u8(3).u8(0);
  b.str("t.a").u32(2).u64(4).u64(2).u32(0).u64(0); // F32 [2 rows of 4]
  b.str("t.b").u32(1).u64(3).u32(0).u64(64); // F32 [3] at offset 64
  b.pad(64);
  for (let i = 0; i < 8; i++) b.f32(i);
  b.pad(64);
  for (let i = 0; i < 3; i++) b.f32(10 + i);
  return b.bytes();
}

describe("GGUF container", () => {
  test("reads a file laid out by hand from the spec", () => {
    const path = join(tmp, "hand.gguf");
    writeFileSync(path, handMade());
    const f = GGUFFile.open(path);
    assert.equal(f.version, 3);
    assert.equal(f.alignment, 64);
    assert.equal(f.get("a.u8"), 200);
    assert.equal(f.get("a.i32"), -7);
    assert.equal(f.get("a.f32"), 1.5);
    assert.equal(f.get("a.bool"), true);
    assert.deepEqual(f.get("a.nested"), {
      itemType: GGUFType.ARRAY,
      items: [
        { itemType: GGUFType.UINT16, items: [1, 2] },
        { itemType: GGUFType.UINT16, items: [3] },
      ],
    });
    const a = new Float32Array(8);
    f.readInto("t.a", new Uint8Array(a.buffer));
    assert.deepEqual([...a], [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(f.tensors.get("t.a")!.dims, [4, 2]);
    const b = new Float32Array(3);
    f.readInto("t.b", new Uint8Array(b.buffer));
    assert.deepEqual([...b], [10, 11, 12]);
    f.close();
  });

  test("the writer reproduces the hand-made file byte for byte", () => {
    const path = join(tmp, "rewritten.gguf");
    const meta = new Map([
      ["general.alignment", gguf.u32(64)],
      ["a.u8", { type: GGUFType.UINT8, value: 200 } as const],
      ["a.i32", gguf.i32(-7)],
      ["a.f32", gguf.f32(1.5)],
      ["a.bool", gguf.bool(true)],
      [
        "a.nested",
        gguf.arr(GGUFType.ARRAY, [
          { itemType: GGUFType.UINT16, items: [1, 2] },
          { itemType: GGUFType.UINT16, items: [3] },
        ]),
      ],
    ]);
    const f32 = (v: number[]) => () => new Uint8Array(Float32Array.from(v).buffer);
    writeGGUF(path, meta, [
      { name: "t.a", dims: [4, 2], type: 0, data: f32([0, 1, 2, 3, 4, 5, 6, 7]) },
      { name: "t.b", dims: [3], type: 0, data: f32([10, 11, 12]) },
    ]);
    assert.deepEqual(new Uint8Array(readFileSync(path)), handMade());
  });

  test("hostile files: every truncation and many lying fields give an Error naming the file", () => {
    const good = handMade();
    const path = join(tmp, "bad.gguf");
    const expectClear = (bytes: Uint8Array, what: string) => {
      writeFileSync(path, bytes);
      let f: GGUFFile | undefined;
      try {
        f = GGUFFile.open(path);
      } catch (e) {
        assert.ok(e instanceof Error && !(e instanceof RangeError), `${what}: ${String(e)}`);
        assert.ok(e.message.startsWith(path), `${what}: message names the file: ${e.message}`);
        return;
      }
      f.close(); // a mutation that still parses is fine (e.g. a changed value)
    };
    for (let n = 0; n < good.length; n++) expectClear(good.subarray(0, n), `truncated to ${n} bytes`);
    // Overwrite each u32/u64 field position in the header with huge, zero and odd values.
    const headerEnd = good.length - 64 - 12;
    for (let at = 4; at < headerEnd; at++)
      for (const v of [0xffffffff, 0x7fffffff, 0, 13, 0x10000]) {
        const m = good.slice();
        new DataView(m.buffer).setUint32(at, v, true);
        expectClear(m, `u32 ${v} at byte ${at}`);
      }
    // Specific lies, with the message they must give.
    const withU32 = (at: number, v: number) => {
      const m = good.slice();
      new DataView(m.buffer).setUint32(at, v, true);
      return m;
    };
    const message = (bytes: Uint8Array) => {
      writeFileSync(path, bytes);
      try {
        GGUFFile.open(path).close();
        return "";
      } catch (e) {
        return (e as Error).message;
      }
    };
    assert.match(message(withU32(8, 1e9)), /tensor_count at byte 8: 1000000000 tensor infos cannot fit/);
    assert.match(message(withU32(16, 1e9)), /metadata_kv_count at byte 16/);
    assert.match(message(withU32(4, 1)), /version 1 is not supported/);
    assert.match(message(withU32(4, 0x03000000)), /big-endian/);
    // the first key's length: a string past the end of the file
    assert.match(
      message(withU32(24, 1e9)),
      /metadata key #0 at byte 24: string of 1000000000 bytes runs past/,
    );
    // general.alignment's value type → 99
    assert.match(
      message(withU32(24 + 8 + 17, 99)),
      /metadata key 'general.alignment' at byte 49: value type 99/,
    );
  });
});

// --- Llama models ------------------------------------------------------------------------------------

function logitsOf(model: Llama, ids: number[]): Float32Array {
  return noGrad(() => scope(() => model.forward(Int32Array.from(ids), { batch: 1 }).toArray()));
}

function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++)
    if (!Object.is(a[i], b[i])) assert.fail(`${what}: logit ${i}: ${a[i]} ≠ ${b[i]}`);
}

for (const name of ["tiny-scaled", "tiny-tied"]) {
  describe(`GGUF export of reference model ${name}`, async () => {
    const dir = repoPath("test", "fixtures", "reference", name);
    const exp = JSON.parse(readFileSync(join(dir, "expected.json"), "utf8")) as {
      tokens: number[][];
      inv_freq: number[];
    };
    const ids = exp.tokens[0]!;
    const src = await loadModel(dir);
    const weights = new Map<string, Tensor | QuantTensor>(src.weights);
    const want = logitsOf(src, ids);
    after(() => src.dispose());

    test("f32: same config, bit-identical logits, and the PyTorch reference's logits", async () => {
      const path = join(tmp, `${name}-f32.gguf`);
      writeGGUFModel(path, { config: src.config, weights, tokenizer: null }, "f32");
      const m = await loadModel(path);
      assert.deepEqual(m.config, src.config);
      sameBits(logitsOf(m, ids), want, "f32");
      const ref = (await readSafetensors(join(dir, "expected.safetensors"))).get("logits")!.toArray();
      const V = src.config.vocabSize;
      const got = logitsOf(m, ids);
      const first = ref.subarray(0, got.length);
      let scale = 0;
      for (const x of first) scale = Math.max(scale, Math.abs(x));
      assert.ok(closeness(got, first, 1e-4, 1e-4 * scale) <= 1, `reference logits (V ${V})`);
      m.dispose();
    });

    for (const type of ["f16", "bf16"] as const)
      test(`${type}: the logits of the source rounded to ${type}`, async () => {
        const path = join(tmp, `${name}-${type}.gguf`);
        writeGGUFModel(path, { config: src.config, weights, tokenizer: null }, type);
        const m = await loadModel(path, { dtype: "keep" });
        if (type === "f16") {
          // f16 matrices are widened to f32 either way (Llama's constructor or the reader)
          const wide = await loadModel(path);
          sameBits(logitsOf(wide, ids), logitsOf(m, ids), "f16 read as f32");
          wide.dispose();
        }
        const rounded = new Map<string, Tensor>();
        for (const [n, t] of src.weights) rounded.set(n, t.rank === 2 ? t.toDtype(type) : t.toF32());
        const r = new Llama(src.config, rounded, "rounded");
        sameBits(logitsOf(m, ids), logitsOf(r, ids), type);
        m.dispose();
        r.dispose();
      });

    for (const type of ["q8_0", "q4_0"] as const)
      test(`${type}: the logits of herd's own ${type} quantisation`, async () => {
        const path = join(tmp, `${name}-${type}.gguf`);
        writeGGUFModel(path, { config: src.config, weights, tokenizer: null }, type);
        const m = await loadModel(path);
        assert.equal(m.quantized.size > 0, true);
        const q = new Llama(src.config, quantizeWeights(src, type), "quantised");
        sameBits(logitsOf(m, ids), logitsOf(q, ids), type);
        // and a quantised model exports its blocks as they are
        const again = join(tmp, `${name}-${type}-again.gguf`);
        writeGGUFModel(
          again,
          {
            config: m.config,
            weights: new Map<string, Tensor | QuantTensor>([...m.weights, ...m.quantized]),
            tokenizer: null,
          },
          type,
        );
        assert.deepEqual(readFileSync(again), readFileSync(path));
        m.dispose();
        for (const t of q.quantized.values()) t.dispose(); // its norms are the source's
      });

    test("bf16 attn_q/attn_k/attn_v hold Meta's rows (interleaved RoPE pairs), as llama.cpp's converter writes", () => {
      const path = join(tmp, `${name}-bf16.gguf`);
      writeGGUFModel(path, { config: src.config, weights, tokenizer: null }, "bf16");
      const g = GGUFFile.open(path);
      const pth = new ReadFile(join(dir, "meta", "consolidated.00.pth"));
      try {
        const index = readTorchIndex(pth);
        for (const [gname, mname] of [
          ["blk.0.attn_q.weight", "layers.0.attention.wq.weight"],
          ["blk.1.attn_k.weight", "layers.1.attention.wk.weight"],
          ["blk.1.attn_v.weight", "layers.1.attention.wv.weight"],
        ] as const) {
          const meta = readTorchTensor(pth, index.get(mname)!, "keep");
          const stored = new Uint16Array(g.tensors.get(gname)!.bytes / 2);
          g.readInto(gname, new Uint8Array(stored.buffer));
          assert.deepEqual(stored, meta.halfBits, gname);
          meta.dispose();
        }
      } finally {
        pth.close();
        g.close();
      }
    });

    test("rope_freqs.weight: base frequencies ÷ the reference's scaled ones", () => {
      const factors = ropeFreqFactors(src.config);
      const base = exp.inv_freq.map((_, i) => 1 / src.config.ropeTheta ** ((2 * i) / src.config.headDim));
      exp.inv_freq.forEach((w, i) => {
        const f = src.config.ropeScaling ? base[i]! / w : 1;
        assert.ok(Math.abs(factors[i]! - f) <= 1e-5 * f, `band ${i}: ${factors[i]} vs ${f}`);
      });
      // its own file, so the test does not depend on another having run first
      const path = join(tmp, `${name}-rope.gguf`);
      writeGGUFModel(path, { config: src.config, weights, tokenizer: null }, "f32");
      const f = GGUFFile.open(path);
      assert.equal(f.tensors.has("rope_freqs.weight"), src.config.ropeScaling !== null);
      assert.equal(f.tensors.has("output.weight"), !src.config.tieWordEmbeddings);
      assert.deepEqual(ggufConfig(f), src.config);
      f.close();
    });
  });
}

describe("GGUF vocabulary and herd export", () => {
  test("Llama 3's vocabulary written as gpt2/llama-bpe reads back as a tokenizer encoding as Meta's", () => {
    const tok = Tokenizer.llama3();
    const path = join(tmp, "vocab.gguf");
    writeGGUF(path, vocabMetadata(tok, 128256, { bos: 128000, eos: [128009] }), []);
    const f = GGUFFile.open(path);
    const merges = f.get("tokenizer.ggml.merges") as { items: string[] };
    // Rank 256 of Llama 3 is two spaces, so the first merge is "Ġ Ġ" (GPT-2 writes a space as Ġ).
    assert.equal(merges.items[0], "Ġ Ġ");
    f.close();
    const back = readGGUFTokenizer(path)!;
    const cases = JSON.parse(
      readFileSync(repoPath("test", "fixtures", "tokenizer", "tokenizer-cases.json"), "utf8"),
    ) as { text: string; ids: number[] }[];
    for (const c of cases) assert.deepEqual(back.encode(c.text), c.ids, JSON.stringify(c.text));
    assert.equal(back.special("<|eot_id|>"), 128009);
  });

  test("a Llama 3 vocabulary laid out as Hugging Face's converter makes it (every split of each token) reads the same", () => {
    // tokenizer.json's merges for a tiktoken vocabulary: for each token in rank order, every split into
    // two tokens (ordered by the parts' ranks), as transformers' TikTokenConverter writes them; llama.cpp's
    // convert_hf_to_gguf.py copies that list into tokenizer.ggml.merges.
    const tok = Tokenizer.llama3();
    const meta = vocabMetadata(tok, 128256, { bos: 128000, eos: [128009] });
    const bu = byteToUnicode();
    const bins: string[] = [];
    const rank = new Map<string, number>();
    for (let id = 0; id < tok.numRanks; id++) {
      const bin = String.fromCharCode(...tok.tokenBytes(id));
      bins.push(bin);
      rank.set(bin, id);
    }
    const show = (bin: string) => [...bin].map((c) => bu[c.charCodeAt(0)]).join("");
    const merges: string[] = [];
    for (let id = 0; id < bins.length; id++) {
      const bin = bins[id]!;
      const splits: [string, string][] = [];
      for (let i = 1; i < bin.length; i++)
        if (rank.has(bin.slice(0, i)) && rank.has(bin.slice(i))) splits.push([bin.slice(0, i), bin.slice(i)]);
      splits.sort((a, b) => rank.get(a[0])! - rank.get(b[0])! || rank.get(a[1])! - rank.get(b[1])!);
      for (const [l, r] of splits) merges.push(`${show(l)} ${show(r)}`);
    }
    meta.set("tokenizer.ggml.merges", gguf.arr(GGUFType.STRING, merges));
    const path = join(tmp, "vocab-hf-layout.gguf");
    writeGGUF(path, meta, []);
    const back = readGGUFTokenizer(path)!;
    const cases = JSON.parse(
      readFileSync(repoPath("test", "fixtures", "tokenizer", "tokenizer-cases.json"), "utf8"),
    ) as { text: string; ids: number[] }[];
    for (const c of cases) assert.deepEqual(back.encode(c.text), c.ids, JSON.stringify(c.text));
  });

  test("herd export writes a file loadModel reads; bad arguments are usage errors", async () => {
    const out = join(tmp, "cli.gguf");
    const dir = repoPath("test", "fixtures", "reference", "tiny-tied");
    assert.equal(await runExport(["--type", "q4_0", dir, out]), 0);
    const m = await loadModel(out);
    assert.equal(m.quantized.get("model.embed_tokens.weight")?.format, "q4_0");
    assert.equal(readGGUFTokenizer(out), null, "a model without a tokenizer gets placeholders, read as none");
    m.dispose();
    await assert.rejects(runExport([dir, out]), UsageError, "exists without --force");
    await assert.rejects(runExport([dir, join(tmp, "x.bin")]), UsageError, "not .gguf");
    await assert.rejects(runExport(["--type", "q5_k", dir, out]), UsageError, "unknown type");
    // a K-quant mix: this model's 96-wide rows fall back as llama.cpp's do (Q5_0, Q8_0 for the output)
    const km = join(tmp, "cli-q4km.gguf");
    assert.equal(await runExport(["--type", "q4_k_m", dir, km]), 0);
    const g = GGUFFile.open(km);
    assert.equal(g.get("general.file_type"), 15);
    assert.equal(
      g.tensors.get("token_embd.weight")!.type,
      8,
      "tied output: Q8_0 (96 is not whole 256-blocks)",
    );
    assert.equal(g.tensors.get("blk.1.attn_q.weight")!.type, 6, "Q4_K → Q5_0");
    g.close();
    const k = await loadModel(km);
    assert.equal(k.config.hiddenSize, 96);
    k.dispose();
    // a GGUF file is a source too (its header parsed once), read as inference holds it (dequantised
    // blocks in bf16): re-exported as f32, the logits of the source's within bf16's rounding
    const again = join(tmp, "cli-again.gguf");
    assert.equal(await runExport(["--type", "f32", km, again]), 0);
    const [x, y] = [await loadModel(km), await loadModel(again)];
    const [lx, ly] = [logitsOf(x, [0, 5, 9]), logitsOf(y, [0, 5, 9])];
    let scale = 0;
    for (const v of lx) scale = Math.max(scale, Math.abs(v));
    assert.ok(closeness(ly, lx, 0, 2e-2 * scale) <= 1, "q4_k_m → f32 re-export");
    x.dispose();
    y.dispose();
  });

  test("a file whose tensors do not match its metadata is refused by name", async () => {
    const path = join(tmp, "lying.gguf");
    // An f32 export rewritten with llama.feed_forward_length 256 (its tensors are 384 wide).
    const dir = repoPath("test", "fixtures", "reference", "tiny-tied");
    const base = join(tmp, "lying-base.gguf");
    const src = await loadModel(dir);
    writeGGUFModel(base, { config: src.config, weights: src.weights, tokenizer: null }, "f32");
    src.dispose();
    const g = GGUFFile.open(base);
    const meta = new Map(g.metadata);
    meta.set("llama.feed_forward_length", gguf.u32(256));
    const tensors = [...g.tensors.values()].map((t) => {
      const b = new Uint8Array(t.bytes);
      g.readInto(t.name, b);
      return { name: t.name, dims: t.dims, type: t.type, data: () => b };
    });
    writeGGUF(path, meta, tensors);
    g.close();
    await assert.rejects(
      loadModel(path),
      /lying\.gguf: tensor 'blk\.0\.ffn_gate\.weight' has ggml dims \[96,384\]; the metadata needs \[96,256\]/,
    );
  });
});
