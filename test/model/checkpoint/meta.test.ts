// Meta checkpoints (params.json + consolidated.NN.pth): names, Q/K permutation, shards, torch file parsing.
import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  hfToMetaName,
  metaToHFName,
  permuteQK,
  readMetaCheckpoint,
  readSafetensors,
  readTorchIndex,
  readTorchTensor,
  unpermuteQK,
} from "../../../src/model/checkpoint/index.js";
import { ReadFile } from "../../../src/model/checkpoint/io.js";
import { loadModel } from "../../../src/model/load.js";
import { bf16BitsToF32, f32ToBf16Bits } from "../../../src/tensor/dtype.js";
import { fromArray, fromHalfBits, type Tensor } from "../../../src/tensor/tensor.js";
import { randArray, repoPath } from "../../helpers.js";
import { type PthTensor, rawBytes, statePickle, writePth, zipEntries } from "./torchWriter.js";

const refDir = (model: string) => repoPath("test", "fixtures", "reference", model);
const tmp = mkdtempSync(join(tmpdir(), "herd-meta-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

function bitsEqual(a: Tensor, b: Tensor, what: string): void {
  assert.deepEqual(a.shape, b.shape, what);
  assert.ok(Buffer.from(rawBytes(a.halfBits)).equals(Buffer.from(rawBytes(b.halfBits))), what);
}

/** The tensors of a .pth file by Meta name, as stored (half bits kept). */
function readPthRaw(path: string): Map<string, Tensor> {
  const f = new ReadFile(path);
  try {
    const out = new Map<string, Tensor>();
    for (const [name, e] of readTorchIndex(f)) out.set(name, readTorchTensor(f, e, "keep"));
    return out;
  } finally {
    f.close();
  }
}

/** A Meta directory with the given params and shards. */
function metaDir(name: string, params: unknown, shards: [string, PthTensor][][]): string {
  const d = join(tmp, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, "params.json"), JSON.stringify(params));
  for (const [i, s] of shards.entries())
    writePth(join(d, `consolidated.${String(i).padStart(2, "0")}.pth`), s);
  return d;
}

/** Split a [rows, cols] bf16 tensor into n pieces along `dim`, as PthTensors. */
function split(t: Tensor, n: number, dim: 0 | 1 | null): PthTensor[] {
  const bits = t.halfBits;
  if (dim === null)
    return Array.from({ length: n }, () => ({ dtype: "bf16", storage: rawBytes(bits), shape: [...t.shape] }));
  const [rows, cols] = [t.shape[0]!, t.shape[1]!];
  return Array.from({ length: n }, (_, i) => {
    if (dim === 0) {
      const r = rows / n;
      return {
        dtype: "bf16",
        storage: rawBytes(bits.slice(i * r * cols, (i + 1) * r * cols)),
        shape: [r, cols],
      };
    }
    const c = cols / n;
    const piece = new Uint16Array(rows * c);
    for (let r = 0; r < rows; r++) piece.set(bits.subarray(r * cols + i * c, r * cols + (i + 1) * c), r * c);
    return { dtype: "bf16", storage: rawBytes(piece), shape: [rows, c] };
  });
}

for (const model of ["tiny-scaled", "tiny-tied"]) {
  describe(`Meta checkpoint: ${model}`, () => {
    test("→ HF names, Q/K permuted: bit-equal to model-bf16.safetensors", async () => {
      const { params, tensors } = await readMetaCheckpoint(join(refDir(model), "meta"), { dtype: "keep" });
      assert.equal(params.dim, model === "tiny-tied" ? 96 : 64);
      const hf = await readSafetensors(join(refDir(model), "model-bf16.safetensors"), { dtype: "keep" });
      const f32 = await readSafetensors(join(refDir(model), "model.safetensors"));
      for (const [name, t] of hf) {
        const m = tensors.get(name);
        assert.ok(m, `${name} present`);
        assert.equal(m.dtype, "bf16");
        assert.equal(m.name, name);
        bitsEqual(m, t, name);
        const orig = f32.get(name)!.data;
        for (let i = 0; i < orig.length; i++) assert.equal(m.halfBits[i], f32ToBf16Bits(orig[i]!));
      }
      // output.weight comes back as lm_head.weight even for the tied model, whose copy equals the embedding.
      assert.ok(tensors.has("lm_head.weight"));
      if (model === "tiny-tied") {
        assert.ok(!hf.has("lm_head.weight"));
        bitsEqual(tensors.get("lm_head.weight")!, hf.get("model.embed_tokens.weight")!, "tied output");
        assert.equal(tensors.size, hf.size + 1);
      } else assert.equal(tensors.size, hf.size);
    });

    test("default f32 read gives the bf16 values exactly", async () => {
      const dir = join(refDir(model), "meta");
      const kept = (await readMetaCheckpoint(dir, { dtype: "keep" })).tensors;
      const f = (await readMetaCheckpoint(dir)).tensors;
      for (const [name, t] of kept) {
        const v = f.get(name)!;
        assert.equal(v.dtype, "f32");
        for (let i = 0; i < t.size; i += 7) assert.equal(v.data[i], bf16BitsToF32(t.halfBits[i]!));
      }
    });

    test("model-parallel shards are concatenated along Meta's split dims", async () => {
      const dir = join(refDir(model), "meta");
      const params = JSON.parse(readFileSync(join(dir, "params.json"), "utf8"));
      const raw = readPthRaw(join(dir, "consolidated.00.pth"));
      const expected = (await readMetaCheckpoint(dir, { dtype: "keep" })).tensors;
      const n = 2; // both models have 2 KV heads
      for (const embDim of [0, 1] as const) {
        const shards: [string, PthTensor][][] = Array.from({ length: n }, () => []);
        for (const [name, t] of raw) {
          const dim =
            t.rank === 1
              ? null
              : /\.(wo|w2)\.weight$/.test(name)
                ? 1
                : name === "tok_embeddings.weight"
                  ? embDim
                  : 0;
          for (const [i, p] of split(t, n, dim).entries()) shards[i]!.push([name, p]);
        }
        const d = metaDir(`${model}-mp${n}-emb${embDim}`, params, shards);
        const got = (await readMetaCheckpoint(d, { dtype: "keep" })).tensors;
        assert.deepEqual([...got.keys()], [...expected.keys()]);
        for (const [name, t] of expected)
          bitsEqual(got.get(name)!, t, `${name} (embedding split on dim ${embDim})`);
      }
    });
  });
}

describe("Q/K permutation", () => {
  test("one head of 4 rows: HF row r takes Meta row 2r, then 2(r−2)+1", () => {
    const meta = fromArray([0, 0, 1, 1, 2, 2, 3, 3, 10, 10, 11, 11, 12, 12, 13, 13], [8, 2]);
    const hf = permuteQK(meta, 2);
    assert.deepEqual([...hf.data], [0, 0, 2, 2, 1, 1, 3, 3, 10, 10, 12, 12, 11, 11, 13, 13]);
    assert.deepEqual([...unpermuteQK(hf, 2).data], [...meta.data]);
  });

  test("matches the converter's view/transpose form, and the two are inverses (f32 and bf16)", () => {
    const [heads, hd, cols] = [3, 8, 5];
    const w = fromArray(randArray(heads * hd * cols, 5), [heads * hd, cols]);
    const p = permuteQK(w, heads);
    // view(heads, hd/2, 2, cols).transpose(1, 2).reshape: out[h, j, i] = in[h, i, j]
    for (let h = 0; h < heads; h++)
      for (let j = 0; j < 2; j++)
        for (let i = 0; i < hd / 2; i++)
          for (let c = 0; c < cols; c++)
            assert.equal(
              p.data[(h * hd + j * (hd / 2) + i) * cols + c],
              w.data[(h * hd + i * 2 + j) * cols + c],
            );
    assert.deepEqual([...unpermuteQK(p, heads).data], [...w.data]);
    assert.deepEqual([...permuteQK(unpermuteQK(w, heads), heads).data], [...w.data]);
    assert.notDeepEqual([...p.data], [...w.data]);
    const b = fromHalfBits(
      Uint16Array.from({ length: heads * hd * cols }, (_, i) => i),
      [heads * hd, cols],
      "bf16",
    );
    const pb = permuteQK(b, heads);
    assert.equal(pb.dtype, "bf16");
    assert.deepEqual([...unpermuteQK(pb, heads).halfBits], [...b.halfBits]);
    assert.throws(() => permuteQK(fromArray(randArray(12, 1), [6, 2]), 2), /not 2 heads of an even head dim/);
  });

  test("interleaved RoPE on Meta weights and rotate_half on permuted weights give the same q·k", () => {
    const [hd, cols] = [8, 6];
    const wq = fromArray(randArray(hd * cols, 11), [hd, cols]);
    const wk = fromArray(randArray(hd * cols, 12), [hd, cols]);
    const x = randArray(cols, 13);
    const y = randArray(cols, 14);
    const mv = (w: Float32Array, v: Float32Array) =>
      Array.from({ length: hd }, (_, r) => v.reduce((s, vi, c) => s + w[r * cols + c]! * vi, 0));
    const freq = (i: number) => 10000 ** ((-2 * i) / hd);
    const interleaved = (q: number[], m: number) => {
      const o = [...q];
      for (let i = 0; i < hd / 2; i++) {
        const [c, s] = [Math.cos(m * freq(i)), Math.sin(m * freq(i))];
        o[2 * i] = q[2 * i]! * c - q[2 * i + 1]! * s;
        o[2 * i + 1] = q[2 * i]! * s + q[2 * i + 1]! * c;
      }
      return o;
    };
    const halves = (q: number[], m: number) => {
      const o = [...q];
      for (let i = 0; i < hd / 2; i++) {
        const [c, s] = [Math.cos(m * freq(i)), Math.sin(m * freq(i))];
        o[i] = q[i]! * c - q[i + hd / 2]! * s;
        o[i + hd / 2] = q[i]! * s + q[i + hd / 2]! * c;
      }
      return o;
    };
    const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i]!, 0);
    const metaScore = dot(interleaved(mv(wq.data, x), 5), interleaved(mv(wk.data, y), 2));
    const hfScore = dot(halves(mv(permuteQK(wq, 1).data, x), 5), halves(mv(permuteQK(wk, 1).data, y), 2));
    assert.ok(
      Math.abs(metaScore - hfScore) < 1e-9 * Math.max(1, Math.abs(metaScore)),
      `${metaScore} vs ${hfScore}`,
    );
    const unpermuted = dot(halves(mv(wq.data, x), 5), halves(mv(wk.data, y), 2));
    assert.ok(Math.abs(metaScore - unpermuted) > 1e-6, "without the permutation the scores differ");
  });

  test("Meta ↔ HF names", () => {
    assert.equal(metaToHFName("layers.12.feed_forward.w3.weight"), "model.layers.12.mlp.up_proj.weight");
    assert.equal(metaToHFName("output.weight"), "lm_head.weight");
    assert.equal(metaToHFName("layers.0.attention.wz.weight"), null);
    for (const n of [
      "tok_embeddings.weight",
      "norm.weight",
      "layers.3.attention.wk.weight",
      "layers.1.ffn_norm.weight",
    ])
      assert.equal(hfToMetaName(metaToHFName(n)!), n);
  });
});

describe("torch .pth parsing", () => {
  const bf = (vals: number[]) => rawBytes(Uint16Array.from(vals.map(f32ToBf16Bits)));
  const readOne = (path: string, name: string) => readPthRaw(path).get(name)!;

  test("strided views and storage offsets are gathered correctly; storages may be shared", () => {
    const p = join(tmp, "views.pth");
    const store = bf([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    writePth(p, [
      ["t", { dtype: "bf16", storage: store, key: "s", shape: [4, 3], stride: [1, 4] }], // transpose of [3,4]
      ["o", { dtype: "bf16", storage: store, key: "s", shape: [2, 2], offset: 5 }],
      ["c", { dtype: "bf16", storage: store, key: "s", shape: [2, 3], stride: [6, 2], offset: 1 }],
      ["f", { dtype: "f32", storage: rawBytes(Float32Array.from([1.5, -2, 3])), shape: [3] }],
      ["h", { dtype: "f16", storage: rawBytes(Uint16Array.from([0x3c00, 0xc000])), shape: [2] }],
    ]);
    assert.deepEqual([...readOne(p, "t").toArray()], [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    assert.deepEqual([...readOne(p, "o").toArray()], [5, 6, 7, 8]);
    assert.deepEqual([...readOne(p, "c").toArray()], [1, 3, 5, 7, 9, 11]);
    assert.deepEqual([...readOne(p, "f").toArray()], [1.5, -2, 3]);
    const h = readOne(p, "h");
    assert.equal(h.dtype, "f16");
    assert.deepEqual([...h.toArray()], [1, -2]);
    // f32 results of a strided half view too.
    const f = new ReadFile(p);
    try {
      const e = readTorchIndex(f).get("t")!;
      assert.deepEqual([...readTorchTensor(f, e).data], [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    } finally {
      f.close();
    }
  });

  test("64-byte aligned records (local-only extra fields) and byteorder 'little' read the same; 'big' is refused", () => {
    const t: [string, PthTensor][] = [
      ["a", { dtype: "bf16", storage: bf([1, 2, 3]), shape: [3] }],
      ["b", { dtype: "f32", storage: rawBytes(Float32Array.from([4, 5])), shape: [2] }],
    ];
    const p = join(tmp, "aligned.pth");
    writePth(p, t, { align: 64, byteorder: "little" });
    const f = new ReadFile(p);
    try {
      const idx = readTorchIndex(f);
      for (const e of idx.values()) assert.equal(e.record.dataStart % 64, 0);
    } finally {
      f.close();
    }
    assert.deepEqual([...readOne(p, "a").toArray()], [1, 2, 3]);
    assert.deepEqual([...readOne(p, "b").toArray()], [4, 5]);
    writePth(p, t, { byteorder: "big" });
    assert.throws(() => readPthRaw(p), /aligned\.pth: byteorder 'big' is not supported/);
  });

  test("ZIP64 archives read the same", () => {
    const t: [string, PthTensor][] = [["w", { dtype: "bf16", storage: bf([1, 2, 3, 4]), shape: [2, 2] }]];
    const p = join(tmp, "z64.pth");
    writePth(p, t, { zip64: true, archive: "consolidated.00" });
    assert.deepEqual([...readOne(p, "w").toArray()], [1, 2, 3, 4]);
  });

  describe("errors name the file and the problem", () => {
    const one: [string, PthTensor][] = [["w", { dtype: "bf16", storage: bf([1, 2, 3, 4]), shape: [2, 2] }]];

    test("an unknown GLOBAL is refused, never imported", () => {
      const p = join(tmp, "evil.pth");
      const evil = new Uint8Array([0x63, ...new TextEncoder().encode("os\nsystem\n"), 0x30]); // GLOBAL, POP
      writePth(p, one, { injectPickle: evil });
      assert.throws(() => readPthRaw(p), /evil\.pth: pickle byte \d+: GLOBAL os\.system is not allowed/);
    });

    test("an unknown opcode", () => {
      const p = join(tmp, "op.pth");
      writePth(p, one, { injectPickle: new Uint8Array([0x30]) }); // POP
      assert.throws(() => readPthRaw(p), /op\.pth: pickle byte 2: opcode 0x30 is not supported/);
    });

    test("a compressed entry", () => {
      const p = join(tmp, "deflate.pth");
      writePth(p, one, { compress: ["archive/data/0"] });
      assert.throws(
        () => readPthRaw(p),
        /deflate\.pth: zip entry 'archive\/data\/0' is compressed \(method 8\)/,
      );
    });

    test("a truncated file", () => {
      const p = join(tmp, "cut.pth");
      writePth(p, one);
      const b = readFileSync(p);
      writeFileSync(p, b.subarray(0, b.length - 30));
      assert.throws(() => readPthRaw(p), /cut\.pth: not a zip file/);
      // A directory that claims more data than the file holds.
      const z = Buffer.from(
        zipEntries([
          ["a/data.pkl", statePickle(one)],
          ["a/data/0", bf([1, 2, 3, 4])],
        ]),
      );
      const cd = z.lastIndexOf(Buffer.from("a/data/0")) - 46; // its central directory entry
      assert.equal(z.readUInt32LE(cd), 0x02014b50);
      z.writeUInt32LE(1000, cd + 20);
      z.writeUInt32LE(1000, cd + 24);
      writeFileSync(p, z);
      assert.throws(
        () => readPthRaw(p),
        /cut\.pth: zip entry 'a\/data\/0': data ends at byte \d+ but the file has \d+ \(truncated file\?\)/,
      );
    });

    test("a storage record of the wrong size, or a view past its storage", () => {
      const p = join(tmp, "size.pth");
      writePth(p, [["w", { dtype: "bf16", storage: bf([1, 2, 3, 4]), shape: [2, 2], offset: 1 }]]);
      assert.throws(
        () => readPthRaw(p),
        /size\.pth: tensor 'w': view \[2,2\] at offset 1 reaches element 4 of a 4-element storage/,
      );
      const entries = zipEntries([
        ["a/data.pkl", statePickle(one)],
        ["a/data/0", bf([1, 2, 3])],
      ]);
      writeFileSync(p, entries);
      assert.throws(
        () => readPthRaw(p),
        /size\.pth: tensor 'w': storage data\/0 holds 6 bytes, expected 4 × 2/,
      );
    });

    test("a zero-stride view of a tiny storage is refused before anything is allocated", () => {
      // The hostile file of issue #14: 4 bytes of storage described as a [400000, 2048] view (3.2 GB).
      const p = join(tmp, "zero-stride.pth");
      const storage = rawBytes(Float32Array.from([1]));
      writePth(p, [
        ["tok_embeddings.weight", { dtype: "f32", storage, shape: [400000, 2048], stride: [0, 0] }],
      ]);
      assert.ok(statSync(p).size < 1000);
      // readTorchIndex only parses; it must refuse the view (a regression would return and allocate later).
      const f = new ReadFile(p);
      try {
        assert.throws(
          () => readTorchIndex(f),
          /zero-stride\.pth: tensor 'tok_embeddings\.weight': view \[400000,2048\] has 819200000 elements, more than the 1 its storage holds from offset 0/,
        );
      } finally {
        f.close();
      }
      // Sizes whose product is not even a safe integer.
      writePth(p, [["w", { dtype: "f32", storage, shape: [2 ** 26, 2 ** 26, 2 ** 26], stride: [0, 0, 0] }]]);
      assert.throws(
        () => readPthRaw(p),
        /zero-stride\.pth: tensor 'w': view \[67108864,67108864,67108864\] has \d.* elements, more than the 1/,
      );
    });

    test("a pickle with a million-item list is read to its end, not a stack overflow", () => {
      const p = join(tmp, "long-list.pth");
      const n = 1_000_000;
      const pkl = new Uint8Array(n + 6);
      pkl.set([0x80, 2, 0x5d, 0x28]); // PROTO 2, EMPTY_LIST, MARK
      pkl.fill(0x4e, 4, 4 + n); // NONE × n
      pkl.set([0x65, 0x2e], 4 + n); // APPENDS, STOP
      writeFileSync(p, zipEntries([["a/data.pkl", pkl]]));
      assert.throws(() => readPthRaw(p), /long-list\.pth: the pickled object is not a dict/);
    });

    test("Llama tensors whose views overlap in one storage are refused before reading", async () => {
      // wq and wk both viewing the same 16 elements: the file holds half the bytes its tensors claim.
      const store = bf(new Array(16).fill(1));
      const d = metaDir("overlap", params, [
        [
          ["layers.0.attention.wq.weight", { dtype: "bf16", storage: store, key: "s", shape: [4, 4] }],
          ["layers.0.attention.wk.weight", { dtype: "bf16", storage: store, key: "s", shape: [4, 4] }],
        ],
      ]);
      await assert.rejects(
        readMetaCheckpoint(d),
        /overlap\/consolidated\.00\.pth: its tensors claim 64 bytes but their storages hold 32 \(views overlap\)/,
      );
      // A tied output.weight may share the embedding's storage (Meta's 3.2 1B/3B files).
      const tied = metaDir("tied-share", params, [
        [
          [
            "tok_embeddings.weight",
            { dtype: "bf16", storage: bf([1, 2, 3, 4, 5, 6, 7, 8]), key: "e", shape: [2, 4] },
          ],
          [
            "output.weight",
            { dtype: "bf16", storage: bf([1, 2, 3, 4, 5, 6, 7, 8]), key: "e", shape: [2, 4] },
          ],
        ],
      ]);
      const r = await readMetaCheckpoint(tied);
      assert.equal(r.tensors.size, 2);
      for (const t of r.tensors.values()) t.dispose();
    });

    test("loadModel checks every tensor's shape against params.json before reading any", async () => {
      const d = join(tmp, "wrong-vocab");
      cpSync(join(refDir("tiny-tied"), "meta"), d, { recursive: true });
      const p = JSON.parse(readFileSync(join(d, "params.json"), "utf8"));
      writeFileSync(join(d, "params.json"), JSON.stringify({ ...p, vocab_size: 321 }));
      await assert.rejects(
        loadModel(d),
        /wrong-vocab\/consolidated\.00\.pth: tensor 'tok_embeddings\.weight' has shape \[320,96\]; .*wrong-vocab\/params\.json needs \[321,96\]/,
      );
    });

    test("not a state dict, legacy format", () => {
      const p = join(tmp, "legacy.pth");
      writeFileSync(p, Buffer.from([0x80, 0x02, 0x8a, 0x0a]));
      assert.throws(() => readPthRaw(p), /legacy\.pth: not a zip file/);
      writeFileSync(p, zipEntries([["a/data.pkl", new Uint8Array([0x80, 2, 0x5d, 0x2e])]]));
      assert.throws(() => readPthRaw(p), /legacy\.pth: the pickled object is not a dict/);
    });

    const params = { dim: 4, n_layers: 1, n_heads: 1, n_kv_heads: 1, vocab_size: 2 };
    const w = (rows: number, cols: number): PthTensor => ({
      dtype: "bf16",
      storage: bf(new Array(rows * cols).fill(1)),
      shape: [rows, cols],
    });

    test("a missing shard, and a tensor missing from one shard", async () => {
      const d = metaDir("gap", params, [
        [["norm.weight", w(1, 4)]],
        [["norm.weight", w(1, 4)]],
        [["norm.weight", w(1, 4)]],
      ]);
      rmSync(join(d, "consolidated.01.pth"));
      await assert.rejects(readMetaCheckpoint(d), /gap\/consolidated\.01\.pth: shard 1 of 3 is missing/);
      const e = metaDir("holes", params, [
        [
          ["norm.weight", w(1, 4)],
          ["output.weight", w(2, 4)],
        ],
        [["output.weight", w(2, 4)]],
      ]);
      await assert.rejects(
        readMetaCheckpoint(e),
        /holes\/consolidated\.01\.pth: tensor 'norm\.weight' is missing \(shard 0 has it\)/,
      );
    });

    test("an unknown Meta tensor name, a Q shape that disagrees with params, no params", async () => {
      const d = metaDir("names", params, [[["layers.0.attention.wz.weight", w(4, 4)]]]);
      await assert.rejects(
        readMetaCheckpoint(d),
        /names\/consolidated\.00\.pth: tensor 'layers\.0\.attention\.wz\.weight' is not a Llama weight name/,
      );
      const q = metaDir("qshape", params, [[["layers.0.attention.wq.weight", w(6, 4)]]]);
      await assert.rejects(
        readMetaCheckpoint(q),
        /qshape\/consolidated\.00\.pth: tensor 'layers\.0\.attention\.wq\.weight' has shape \[6,4\], not 1 heads × 4 rows/,
      );
      const none = join(tmp, "noparams");
      cpSync(q, none, { recursive: true });
      rmSync(join(none, "params.json"));
      await assert.rejects(readMetaCheckpoint(none), /noparams\/params\.json: file is missing/);
    });
  });
});
