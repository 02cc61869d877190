// Token shards: the documented layout byte for byte, round trips, document lookup, refusal of damaged
// files, and the tokenize step writing shards with the Llama 3 tokenizer in a pipeline.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { validatePipeline } from "../../src/data/pipeline/config.js";
import { runLocal } from "../../src/data/pipeline/run.js";
import { TokenShardReader, TokenShardWriter } from "../../src/data/shards.js";
import { Tokenizer } from "../../src/tokenizer/tiktoken.js";
import { tempDir } from "./tmp.js";

test("token shard: header, tokens and document index as documented", () => {
  const p = join(tempDir(), "a.tok");
  const w = new TokenShardWriter(p, 1000);
  w.addDocument([1, 2, 3]);
  w.addDocument([]);
  w.addDocument([999, 0]);
  w.close();
  const b = readFileSync(p);
  assert.equal(b.length, 64 + 5 * 4 + 4 * 8);
  assert.equal(b.toString("latin1", 0, 8), "HERDTOKS");
  assert.deepEqual([b.readUInt32LE(8), b.readUInt32LE(12), b.readUInt32LE(16)], [1, 1, 1000]);
  assert.deepEqual([b.readBigUInt64LE(24), b.readBigUInt64LE(32)], [5n, 3n]);
  assert.deepEqual(
    [...new Uint32Array(b.buffer.slice(b.byteOffset + 64, b.byteOffset + 84))],
    [1, 2, 3, 999, 0],
  );
  assert.deepEqual(
    [0, 1, 2, 3].map((i) => b.readBigUInt64LE(84 + 8 * i)),
    [0n, 3n, 3n, 5n],
  );
  const r = new TokenShardReader(p);
  assert.deepEqual([r.numTokens, r.numDocs, r.vocabSize], [5, 3, 1000]);
  assert.deepEqual([...r.document(0)], [1, 2, 3]);
  assert.deepEqual([...r.document(1)], []);
  assert.deepEqual([...r.tokens(2, 3)], [3, 999, 0]);
  assert.equal(r.documentAt(3), 2);
  assert.equal(r.documentAt(2), 0);
  assert.throws(() => r.tokens(4, 2), RangeError);
  r.close();
  assert.throws(
    () => new TokenShardWriter(join(tempDir(), "b.tok"), 10).addDocument([10]),
    /outside the vocabulary/,
  );
});

test("token shard: damaged files are refused with the reason", () => {
  const dir = tempDir();
  const p = join(dir, "a.tok");
  const w = new TokenShardWriter(p, 50);
  for (let d = 0; d < 10; d++) w.addDocument(Array.from({ length: d + 1 }, (_, i) => (i * 7) % 50));
  w.close();
  const good = readFileSync(p);
  const bad = (name: string, bytes: Buffer, re: RegExp) => {
    writeFileSync(join(dir, name), bytes);
    assert.throws(() => new TokenShardReader(join(dir, name)), re);
  };
  bad("trunc.tok", good.subarray(0, good.length - 20), /truncated/);
  const v2 = Buffer.from(good);
  v2.writeUInt32LE(2, 8);
  bad("v2.tok", v2, /version 2/);
  const magic = Buffer.from(good);
  magic.write("NOTATOKS", 0, "latin1");
  bad("magic.tok", magic, /bad magic/);
  const dtype = Buffer.from(good);
  dtype.writeUInt32LE(2, 12);
  bad("dtype.tok", dtype, /dtype code 2/);
});

test("tokenize step: Llama 3 token shards beside the JSONL output, one per task", async () => {
  const dir = tempDir();
  const texts = [
    "Hello world, this is herd.",
    "Second document: 123 + 456 = 579.",
    "Ünïcödé and emoji 🦙 too.",
  ];
  writeFileSync(
    join(dir, "a.jsonl"),
    texts
      .slice(0, 2)
      .map((t, i) => `${JSON.stringify({ id: `a${i}`, text: t })}\n`)
      .join(""),
  );
  writeFileSync(join(dir, "b.jsonl"), `${JSON.stringify({ id: "b0", text: texts[2] })}\n`);
  const run = join(dir, "run");
  await runLocal(
    validatePipeline({
      input: { paths: [join(dir, "a.jsonl"), join(dir, "b.jsonl")] },
      output: run,
      steps: [{ type: "tokenize" }],
    }),
  );
  assert.deepEqual(readdirSync(join(run, "tokens")), ["shard-00000.tok", "shard-00001.tok"]);
  const tok = Tokenizer.llama3();
  const r = new TokenShardReader(join(run, "tokens", "shard-00000.tok"));
  assert.equal(r.vocabSize, tok.vocabSize);
  assert.equal(r.numDocs, 2);
  const d1 = r.document(1);
  assert.equal(d1[0], tok.bosId);
  assert.equal(d1[d1.length - 1], tok.eosId);
  assert.equal(tok.decode(d1.subarray(1, d1.length - 1)), texts[1]);
  const out = readFileSync(join(run, "output", "shard-00000.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  assert.equal(out[1].meta.tokens, d1.length);
  r.close();
  assert.throws(
    () => validatePipeline({ input: { paths: ["x"] }, steps: [{ type: "tokenize" }, { type: "pii" }] }),
    /field 'steps\[0\]\.type' tokenize must be the last step/,
  );
});

test("tokenize step: tokenizerSha256 pins the ranks file; a different one stops the run naming it", async () => {
  const dir = tempDir();
  writeFileSync(join(dir, "a.jsonl"), `${JSON.stringify({ id: "a", text: "pinned" })}\n`);
  const pinned = "82e9d31979e92ab929cd544440f129d9ecd797b69e327f80f17e1c50d5551b55";
  const run = (sha: string, out: string) =>
    runLocal(
      validatePipeline({
        input: { paths: [join(dir, "a.jsonl")] },
        output: join(dir, out),
        steps: [{ type: "tokenize", tokenizerSha256: sha }],
      }),
    );
  await run(pinned, "good");
  assert.deepEqual(readdirSync(join(dir, "good", "tokens")), ["shard-00000.tok"]);
  await assert.rejects(
    run("0".repeat(64), "bad"),
    /tokenizer\.model: sha256 is 82e9d319[0-9a-f]+, expected 0{64}/,
  );
});
