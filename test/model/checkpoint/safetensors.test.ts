// safetensors: reading the reference files, HF-identical writing, round trips and corrupt files.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  encodeSafetensorsHeader,
  openSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
} from "../../../src/model/checkpoint/index.js";
import { bf16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../../src/tensor/dtype.js";
import { fromArray, fromHalfBits, type Tensor } from "../../../src/tensor/tensor.js";
import { randArray, repoPath } from "../../helpers.js";

const ref = (model: string, file: string) => repoPath("test", "fixtures", "reference", model, file);
const tmp = mkdtempSync(join(tmpdir(), "herd-st-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Header JSON text of a safetensors file, and its declared length. */
function headerOf(path: string): { n: number; json: string } {
  const b = readFileSync(path);
  const n = Number(b.readBigUInt64LE(0));
  return { n, json: b.subarray(8, 8 + n).toString("utf8") };
}

/** A safetensors file from a header object and a data section. */
function rawFile(name: string, header: unknown, data: Uint8Array | number): string {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const body = typeof data === "number" ? new Uint8Array(data) : data;
  const path = join(tmp, name);
  writeFileSync(path, Buffer.concat([len, json, body]));
  return path;
}

describe("safetensors: reference files", () => {
  test("reads the F32 model: names, shapes, values at known offsets", async () => {
    const path = ref("tiny-scaled", "model.safetensors");
    const m = await readSafetensors(path);
    assert.equal(m.size, 21);
    const emb = m.get("model.embed_tokens.weight")!;
    assert.deepEqual(emb.shape, [256, 64]);
    assert.equal(emb.dtype, "f32");
    assert.equal(emb.name, "model.embed_tokens.weight");
    // Compare against the bytes at the header's offsets, decoded independently.
    const { n } = headerOf(path);
    const h = await readSafetensorsHeader(path);
    const e = h.entries.get("model.layers.1.self_attn.q_proj.weight")!;
    assert.equal(e.begin - h.dataStart, JSON.parse(headerOf(path).json)[e.name].data_offsets[0]);
    const buf = readFileSync(path);
    const q = m.get(e.name)!.data;
    assert.equal(q.length, 64 * 64);
    for (const i of [0, 1, 777, 4095])
      assert.equal(q[i], buf.readFloatLE(8 + n + (e.begin - h.dataStart) + 4 * i));
    assert.deepEqual(h.metadata, { format: "pt" });
  });

  test("reads BF16: keep gives the bits, f32 gives their exact values", async () => {
    const path = ref("tiny-tied", "model-bf16.safetensors");
    const kept = await readSafetensors(path, { dtype: "keep" });
    const f32 = await readSafetensors(path);
    const f32Model = await readSafetensors(ref("tiny-tied", "model.safetensors"));
    assert.equal(kept.size, f32Model.size);
    for (const [name, t] of kept) {
      assert.equal(t.dtype, "bf16", name);
      const bits = t.halfBits;
      const vals = f32.get(name)!.data;
      const orig = f32Model.get(name)!.data;
      for (let i = 0; i < bits.length; i++) {
        assert.equal(vals[i], bf16BitsToF32(bits[i]!));
        assert.equal(bits[i], f32ToBf16Bits(orig[i]!), `${name}[${i}] is the bf16 rounding of the f32 model`);
      }
    }
  });

  test("lazy access reads one tensor and names the missing one", async () => {
    const f = await openSafetensors(repoPath("test", "fixtures", "stories260K", "model.safetensors"));
    try {
      assert.equal(f.names().length, 47);
      assert.deepEqual(f.read("model.norm.weight").shape, [64]);
      assert.throws(() => f.read("nope"), /model\.safetensors: no tensor 'nope'/);
    } finally {
      f.close();
    }
  });
});

describe("safetensors: writing", () => {
  test("byte-identical to the reference writer (safetensors 0.8.0) for mixed dtypes", async () => {
    const src = repoPath("test", "fixtures", "safetensors", "official.safetensors");
    const f16 = (v: number[]) => Uint16Array.from(v.map(f32ToF16Bits));
    const mine = new Map<string, Tensor>([
      [
        "z.weight",
        fromArray(
          [0, 1, 2, 3, 4, 5].map((x) => x / 8 - 0.25),
          [2, 3],
        ),
      ],
      ["a.bias", fromHalfBits(f16([1.5, -2, 3.25]), [3], "f16")],
      ["m.layers.10.w", fromArray(Float32Array.from([0, 1, 2, 3, 4], (x) => Math.fround(x * 1e-3)))],
      ["m.layers.2.w", fromHalfBits(f16([7]), [1, 1], "f16")],
      ["b", fromArray([], [0, 4])],
    ]);
    const out = join(tmp, "official.safetensors");
    await writeSafetensors(out, mine);
    assert.ok(readFileSync(out).equals(readFileSync(src)), headerOf(out).json);
    // And what we read from it writes back the same.
    await writeSafetensors(out, await readSafetensors(src, { dtype: "keep" }));
    assert.ok(readFileSync(out).equals(readFileSync(src)));
  });

  for (const [model, file] of [
    ["tiny-scaled", "model.safetensors"],
    ["tiny-tied", "model-bf16.safetensors"],
    ["tiny-tied", "expected.safetensors"],
  ] as const)
    test(`rewriting ${model}/${file}: same data bytes, same header but for where __metadata__ sits`, async () => {
      const src = ref(model, file);
      const m = await readSafetensors(src, { dtype: "keep" });
      const out = join(tmp, `${model}-${file}`);
      await writeSafetensors(out, m);
      const [a, b] = [headerOf(out), headerOf(src)];
      assert.equal(a.n, b.n);
      // The reference files come from an older writer that put __metadata__ last.
      const { __metadata__: meta, ...tensors } = JSON.parse(b.json);
      assert.equal(a.json.trimEnd(), JSON.stringify({ __metadata__: meta, ...tensors }));
      assert.ok(
        readFileSync(out)
          .subarray(8 + a.n)
          .equals(readFileSync(src).subarray(8 + b.n)),
      );
    });

  test("stories260K: same data bytes after a read and write", async () => {
    const src = repoPath("test", "fixtures", "stories260K", "model.safetensors");
    const out = join(tmp, "stories.safetensors");
    await writeSafetensors(out, await readSafetensors(src));
    const [a, b] = [headerOf(out), headerOf(src)];
    assert.equal(a.n, b.n);
    assert.ok(
      readFileSync(out)
        .subarray(8 + a.n)
        .equals(readFileSync(src).subarray(8 + b.n)),
    );
  });

  test("header follows HF conventions: sorted, aligned, space padded, format pt", async () => {
    const t = new Map<string, Tensor>([
      ["z.weight", fromArray(randArray(3, 1), [3])],
      ["a.weight", fromHalfBits(new Uint16Array(5).fill(0x3f80), [5], "bf16")],
      ["m.weight", fromArray(randArray(6, 2), [2, 3])],
      ["h.weight", fromHalfBits(new Uint16Array(1).fill(0x3c00), [1], "f16")],
    ]);
    const path = join(tmp, "conv.safetensors");
    await writeSafetensors(path, t);
    const { n, json } = headerOf(path);
    assert.equal(n % 8, 0);
    assert.match(json, /^\{.*\} *$/);
    assert.equal(json.trimEnd(), JSON.stringify(JSON.parse(json)), "compact JSON");
    const h = JSON.parse(json);
    // Metadata first, then F32 (aligned), BF16, F16; by name inside a dtype.
    assert.deepEqual(Object.keys(h), ["__metadata__", "m.weight", "z.weight", "a.weight", "h.weight"]);
    assert.deepEqual(h["m.weight"], { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] });
    assert.deepEqual(h["z.weight"].data_offsets, [24, 36]);
    assert.deepEqual(h["a.weight"], { dtype: "BF16", shape: [5], data_offsets: [36, 46] });
    assert.deepEqual(h["h.weight"], { dtype: "F16", shape: [1], data_offsets: [46, 48] });
    assert.deepEqual(h.__metadata__, { format: "pt" });
    assert.equal(readFileSync(path).length, 8 + n + 48);
    const back = await readSafetensors(path, { dtype: "keep" });
    assert.deepEqual([...back.get("m.weight")!.data], [...t.get("m.weight")!.data]);
    assert.deepEqual([...back.get("a.weight")!.halfBits], [...t.get("a.weight")!.halfBits]);
    assert.equal(back.get("h.weight")!.dtype, "f16");
    const { bytes } = encodeSafetensorsHeader(t, { metadata: null });
    assert.ok(!Buffer.from(bytes).toString().includes("__metadata__"));
  });

  test("round trips f32 → bf16 / f16 with round-to-nearest-even, and back exactly", async () => {
    const vals = randArray(1000, 7, 3);
    vals[0] = 1 + 2 ** -8; // a bf16 tie: rounds to even (1)
    const t = new Map([["w", fromArray(vals, [10, 100])]]);
    for (const dt of ["bf16", "f16"] as const) {
      const p = join(tmp, `rt-${dt}.safetensors`);
      await writeSafetensors(p, t, { dtype: dt });
      const got = (await readSafetensors(p, { dtype: "keep" })).get("w")!;
      assert.equal(got.dtype, dt);
      const enc = dt === "bf16" ? f32ToBf16Bits : f32ToF16Bits;
      for (let i = 0; i < vals.length; i++) assert.equal(got.halfBits[i], enc(vals[i]!));
      if (dt === "bf16") assert.equal(got.halfBits[0], 0x3f80);
      // Half → half and half → f32 → half are lossless.
      const p2 = join(tmp, `rt2-${dt}.safetensors`);
      await writeSafetensors(p2, new Map([["w", got]]));
      assert.ok(readFileSync(p2).equals(readFileSync(p)));
      await writeSafetensors(p2, await readSafetensors(p), { dtype: dt });
      assert.ok(readFileSync(p2).equals(readFileSync(p)));
    }
  });

  test("an f32 round trip is exact, NaN and infinities included", async () => {
    const vals = Float32Array.from([0, -0, 1.5, Number.NaN, Number.POSITIVE_INFINITY, -3e38, 1e-45]);
    const p = join(tmp, "special.safetensors");
    await writeSafetensors(p, new Map([["x", fromArray(vals)]]));
    const back = (await readSafetensors(p)).get("x")!.data;
    assert.deepEqual(
      new Uint32Array(back.buffer, back.byteOffset, back.length),
      new Uint32Array(vals.buffer),
    );
  });
});

describe("safetensors: corrupt files fail naming the file and tensor", () => {
  const good = { w: { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] } };

  test("truncated data", async () => {
    const p = rawFile("trunc.safetensors", good, 12);
    await assert.rejects(readSafetensors(p), /trunc\.safetensors: tensor 'w': .*past the end.*truncated/);
  });

  test("header offset past the end", async () => {
    const p = rawFile(
      "past.safetensors",
      { ...good, v: { dtype: "F32", shape: [1], data_offsets: [16, 2000] } },
      16,
    );
    await assert.rejects(readSafetensors(p), /past\.safetensors: tensor 'v': /);
  });

  test("header length larger than the file", async () => {
    const p = join(tmp, "hlen.safetensors");
    const b = Buffer.alloc(40);
    b.writeBigUInt64LE(1000n);
    writeFileSync(p, b);
    await assert.rejects(
      readSafetensors(p),
      /hlen\.safetensors: header length 1000 is larger than the file \(40 bytes\)/,
    );
  });

  test("a file too short for the length prefix", async () => {
    const p = join(tmp, "short.safetensors");
    writeFileSync(p, Buffer.alloc(5));
    await assert.rejects(readSafetensors(p), /short\.safetensors: 5 bytes, too short/);
  });

  test("header that is not JSON", async () => {
    const p = join(tmp, "json.safetensors");
    const b = Buffer.alloc(8 + 8);
    b.writeBigUInt64LE(8n);
    b.write("{notjson", 8);
    writeFileSync(p, b);
    await assert.rejects(readSafetensors(p), /json\.safetensors: safetensors header is not valid UTF-8 JSON/);
  });

  test("overlapping offsets", async () => {
    const h = {
      a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
    };
    await assert.rejects(
      readSafetensors(rawFile("ovl.safetensors", h, 12)),
      /ovl\.safetensors: tensor 'b': data_offsets overlap those of tensor 'a'/,
    );
  });

  test("begin after end", async () => {
    const h = { a: { dtype: "F32", shape: [0], data_offsets: [8, 4] } };
    await assert.rejects(
      readSafetensors(rawFile("order.safetensors", h, 8)),
      /order\.safetensors: tensor 'a': data_offsets \[8,4\] out of order/,
    );
  });

  test("a hole between tensors, and trailing bytes", async () => {
    const h = {
      a: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
      b: { dtype: "F32", shape: [1], data_offsets: [8, 12] },
    };
    await assert.rejects(
      readSafetensors(rawFile("hole.safetensors", h, 12)),
      /hole\.safetensors: tensor 'b': 4 unused bytes/,
    );
    await assert.rejects(
      readSafetensors(rawFile("tail.safetensors", good, 20)),
      /tail\.safetensors: 4 bytes after the last tensor \('w'\)/,
    );
  });

  test("unknown dtype, and a known one herd does not read", async () => {
    const h = { w: { dtype: "Q4_K", shape: [2], data_offsets: [0, 2] } };
    await assert.rejects(
      readSafetensors(rawFile("dt.safetensors", h, 2)),
      /dt\.safetensors: tensor 'w': unknown dtype "Q4_K"/,
    );
    const i = { ids: { dtype: "I64", shape: [2], data_offsets: [0, 16] } };
    const p = rawFile("i64.safetensors", i, 16);
    assert.equal((await readSafetensorsHeader(p)).entries.get("ids")!.dtype, "I64");
    await assert.rejects(readSafetensors(p), /i64\.safetensors: tensor 'ids': dtype I64 is not supported/);
  });

  test("shape that disagrees with the byte count", async () => {
    const h = { w: { dtype: "BF16", shape: [3, 3], data_offsets: [0, 16] } };
    await assert.rejects(
      readSafetensors(rawFile("shape.safetensors", h, 16)),
      /shape\.safetensors: tensor 'w': shape \[3,3\] of BF16 needs 18 bytes but data_offsets \[0,16\] hold 16/,
    );
  });

  test("malformed shape and metadata", async () => {
    const h = { w: { dtype: "F32", shape: [-1], data_offsets: [0, 0] } };
    await assert.rejects(
      readSafetensors(rawFile("neg.safetensors", h, 0)),
      /neg\.safetensors: tensor 'w': bad shape/,
    );
    const m = { __metadata__: { format: 1 }, ...good };
    await assert.rejects(
      readSafetensors(rawFile("meta.safetensors", m, 16)),
      /meta\.safetensors: __metadata__\['format'\] is not a string/,
    );
  });

  test("a file truncated after a valid write", async () => {
    const p = join(tmp, "cut.safetensors");
    await writeSafetensors(
      p,
      new Map([
        ["a", fromArray(randArray(10, 3))],
        ["b", fromArray(randArray(10, 4))],
      ]),
    );
    const b = readFileSync(p);
    writeFileSync(p, b.subarray(0, b.length - 3));
    await assert.rejects(
      readSafetensors(p),
      /cut\.safetensors: tensor 'b': data_offsets \[40,80\] go past the end of the data \(77 bytes; truncated file\?\)/,
    );
  });
});
