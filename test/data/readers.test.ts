// Readers and writers: JSONL (plain, gzip, zstd) with malformed lines reported by file and line, truncated
// compressed files, text folders, WARC/WET (real Common Crawl samples), Parquet; atomic sharded writers.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import { parquetWriteBuffer } from "hyparquet-writer";
import type { Document } from "../../src/data/document.js";
import { IssueLog } from "../../src/data/issues.js";
import { expandInputs, readInputs } from "../../src/data/readers/index.js";
import { readJsonl } from "../../src/data/readers/jsonl.js";
import { readParquet } from "../../src/data/readers/parquet.js";
import { readWarc } from "../../src/data/readers/warc.js";
import { JsonlShardWriter, JsonlWriter } from "../../src/data/writers.js";
import { repoPath } from "../helpers.js";
import { tempDir } from "./tmp.js";

async function all(it: AsyncIterable<Document>): Promise<Document[]> {
  const out: Document[] = [];
  for await (const d of it) out.push(d);
  return out;
}

const lines = (n: number) =>
  Array.from({ length: n }, (_, i) =>
    JSON.stringify({ id: `d${i}`, text: `text ${i} ${"x".repeat(i % 50)}`, source: "t" }),
  );

test("JSONL: broken JSON, invalid UTF-8 and a record without text are reported by line; good lines all read", async () => {
  const dir = tempDir();
  const p = join(dir, "mixed.jsonl");
  const good = lines(5);
  const parts: Buffer[] = [
    Buffer.from(`${good[0]}\n`),
    Buffer.from('{"id": "broken", "text": "no closing\n'),
    Buffer.from(`${good[1]}\n`),
    Buffer.concat([
      Buffer.from('{"id":"bad-utf8","text":"caf'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}\n'),
    ]),
    Buffer.from(`${good[2]}\r\n\n`),
    Buffer.from('{"id":"notext","body":"x"}\n'),
    Buffer.from(`${good[3]}\n${good[4]}`),
  ];
  writeFileSync(p, Buffer.concat(parts));
  const log = new IssueLog();
  const docs = await all(readJsonl(p, { onIssue: log.sink }));
  assert.deepEqual(
    docs.map((d) => d.id),
    ["d0", "d1", "bad-utf8", "d2", "d3", "d4"],
  );
  assert.equal(docs[2]!.text, "caf\ufffd(");
  assert.equal(docs[0]!.meta.source, "t");
  assert.deepEqual(
    log.first.map((i) => [i.kind, i.line, i.action]),
    [
      ["json", 2, "skipped"],
      ["utf8", 4, "kept"],
      ["record", 7, "skipped"],
    ],
  );
  // With invalidUtf8: "skip" the bad line is dropped, still reported.
  const log2 = new IssueLog();
  const docs2 = await all(readJsonl(p, { onIssue: log2.sink, invalidUtf8: "skip" }));
  assert.equal(docs2.length, 5);
  assert.equal(log2.counts.utf8, 1);
});

test("JSONL gzip: a truncated file yields every complete line before the cut and reports it", async () => {
  const dir = tempDir();
  const text = `${lines(400).join("\n")}\n`;
  const gz = gzipSync(text);
  const whole = join(dir, "whole.jsonl.gz");
  writeFileSync(whole, gz);
  assert.equal((await all(readJsonl(whole))).length, 400);
  const cut = join(dir, "cut.jsonl.gz");
  writeFileSync(cut, gz.subarray(0, Math.floor(gz.length * 0.6)));
  const log = new IssueLog();
  const docs = await all(readJsonl(cut, { onIssue: log.sink }));
  assert.ok(docs.length > 50 && docs.length < 400, `read ${docs.length}`);
  for (const [i, d] of docs.entries()) assert.equal(d.id, `d${i}`);
  assert.equal(log.counts.truncated, 1);
  assert.equal(log.first[0]!.file, cut);
  assert.ok(log.first[0]!.line! >= docs.length, "line number points at the cut");
});

test("JSONL zstd: reads the fixture; a truncated copy is reported, not thrown", async () => {
  const fx = repoPath("test", "fixtures", "data", "small.jsonl.zst");
  const docs = await all(readJsonl(fx));
  assert.equal(docs.length, 50);
  assert.equal(docs[7]!.id, "z7");
  assert.equal(docs[7]!.url, "https://example.org/z/7");
  assert.match(docs[7]!.text, /Ünïcödé ✓$/);
  const dir = tempDir();
  const cut = join(dir, "cut.jsonl.zst");
  writeFileSync(cut, readFileSync(fx).subarray(0, 300));
  const log = new IssueLog();
  const part = await all(readJsonl(cut, { onIssue: log.sink }));
  assert.ok(part.length < 50);
  for (const [i, d] of part.entries()) assert.equal(d.id, `z${i}`);
  assert.equal(log.counts.truncated, 1);
});

test("text folders: one document per file, sorted, ids relative; invalid UTF-8 reported", async () => {
  const dir = tempDir();
  mkdirSync(join(dir, "b"));
  writeFileSync(join(dir, "b", "two.txt"), "second");
  writeFileSync(join(dir, "a.md"), "first");
  writeFileSync(join(dir, "c.txt"), Buffer.from([0x61, 0xff, 0x62]));
  writeFileSync(join(dir, ".hidden"), "skip me");
  const log = new IssueLog();
  const inputs = expandInputs([dir]);
  assert.deepEqual(
    inputs.map((i) => i.format),
    ["text", "text", "text"],
  );
  const docs = await all(readInputs(inputs, { onIssue: log.sink }));
  assert.deepEqual(
    docs.map((d) => [d.id, d.text]),
    [
      ["a.md", "first"],
      [join("b", "two.txt"), "second"],
      ["c.txt", "a\ufffdb"],
    ],
  );
  assert.equal(log.counts.utf8, 1);
});

test("input folders: links are followed, but never back into the folder (a link to .. or .)", () => {
  const dir = tempDir();
  const inDir = join(dir, "in");
  mkdirSync(join(inDir, "sub"), { recursive: true });
  mkdirSync(join(dir, "other"));
  writeFileSync(join(inDir, "a.txt"), "a");
  writeFileSync(join(inDir, "sub", "b.txt"), "b");
  writeFileSync(join(dir, "other", "c.txt"), "c");
  writeFileSync(join(dir, "beside.txt"), "not an input");
  symlinkSync("..", join(inDir, "up"));
  symlinkSync(".", join(inDir, "self"));
  symlinkSync("..", join(inDir, "sub", "back"));
  symlinkSync(join(dir, "other"), join(inDir, "ext"));
  assert.deepEqual(
    expandInputs([inDir]).map((i) => i.path),
    [join(inDir, "a.txt"), join(inDir, "ext", "c.txt"), join(inDir, "sub", "b.txt")],
  );
  // A dangling link is named as one, with its target, rather than a bare ENOENT.
  symlinkSync(join(dir, "gone.txt"), join(inDir, "sub", "dangling.txt"));
  assert.throws(
    () => expandInputs([inDir]),
    (e: Error) =>
      e.message.includes(join(inDir, "sub", "dangling.txt")) && e.message.includes("which does not exist"),
  );
});

test("WARC and WET: real Common Crawl records become documents with url, id and crawl date", async () => {
  const web = repoPath("test", "fixtures", "data", "web");
  const [warcDoc, ...restWarc] = await all(readWarc(join(web, "whirlwind.warc.gz")));
  const [wetDoc, ...restWet] = await all(readWarc(join(web, "whirlwind.warc.wet.gz")));
  assert.equal(restWarc.length + restWet.length, 0);
  assert.equal(warcDoc!.url, "https://an.wikipedia.org/wiki/Escopete");
  assert.equal(wetDoc!.url, warcDoc!.url);
  assert.match(warcDoc!.meta.date as string, /^2024-/);
  assert.match(warcDoc!.id, /^urn:uuid:/);
  assert.doesNotMatch(warcDoc!.text, /<\/?[a-z]+[ >]|function\s*\(|\{\s*"/i, "no markup or script left");
  // Every word we extract is in Common Crawl's own WET text (which also keeps the menus we drop).
  const words = (s: string) => new Set(s.toLowerCase().match(/\p{L}{4,}/gu) ?? []);
  const ours = words(warcDoc!.text);
  const wet = words(wetDoc!.text);
  let common = 0;
  for (const w of ours) if (wet.has(w)) common++;
  assert.ok(common / ours.size > 0.9, `overlap ${common}/${ours.size}`);
  assert.ok(ours.size < wet.size, "navigation dropped");
  assert.match(warcDoc!.text, /Escopete ye un municipio d'a provincia de Guadalachara/);

  const many = await all(readWarc(join(web, "resiliparse-CC-MAIN-2020-34-sample.warc.gz")));
  assert.ok(many.length >= 10, `pages ${many.length}`);
  assert.ok(
    many.some((d) => /[\u4e00-\u9fff]/.test(d.text)),
    "a Chinese page decoded by its charset",
  );
  assert.ok(
    many.every((d) => !d.text.includes("\ufffd\ufffd\ufffd")),
    "no mis-decoded pages",
  );
});

test("WARC: a truncated file is reported and the records before the cut are kept", async () => {
  const web = repoPath("test", "fixtures", "data", "web");
  const bytes = readFileSync(join(web, "resiliparse-CC-MAIN-2020-34-sample.warc.gz"));
  const dir = tempDir();
  const cut = join(dir, "cut.warc.gz");
  writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
  const log = new IssueLog();
  const docs = await all(readWarc(cut, { onIssue: log.sink }));
  assert.ok(docs.length >= 3, `kept ${docs.length}`);
  assert.equal(log.total, 1);
  assert.equal(log.first[0]!.file, cut);
});

// A record that runs past the end of the file once made warcio's skip loop spin forever on microtasks
// (no timer can fire), so the reader runs in a child process with a wall-clock limit.
test("WARC cut mid-record, plain and gzip: reported with file and offset; the run goes on with every whole record", async () => {
  const web = repoPath("test", "fixtures", "data", "web");
  const plain = gunzipSync(readFileSync(join(web, "resiliparse-CC-MAIN-2020-34-sample.warc.gz")));
  const starts: number[] = [];
  for (let i = plain.indexOf("WARC/1.0\r\n"); i >= 0; i = plain.indexOf("WARC/1.0\r\n", i + 1))
    if (i === 0 || plain.subarray(i - 4, i).toString() === "\r\n\r\n") starts.push(i);
  assert.ok(starts.length > 10, `records ${starts.length}`);
  const dir = tempDir();
  const inDir = join(dir, "in");
  mkdirSync(inDir);
  const expected: string[] = [];
  const cuts: { file: string; offset: number }[] = [];
  // Record 1 is a request (skipped unread), record 5 an HTML response (read): each cut in its middle.
  for (const k of [1, 5]) {
    const cut = plain.subarray(0, Math.floor((starts[k]! + starts[k + 1]!) / 2));
    const before = join(dir, `before-${k}.warc`);
    writeFileSync(before, plain.subarray(0, starts[k]));
    const ids = (await all(readWarc(before))).map((d) => d.id);
    for (const [name, bytes] of [
      [`${k}-cut.warc`, cut],
      [`${k}-cut.warc.gz`, gzipSync(cut)],
    ] as const) {
      writeFileSync(join(inDir, name), bytes);
      cuts.push({ file: join(inDir, name), offset: starts[k]! });
      expected.push(...ids);
    }
  }
  assert.ok(expected.length >= 2, "documents before the cut");
  writeFileSync(join(dir, "p.json"), JSON.stringify({ input: { paths: ["in"] }, output: "run", steps: [] }));
  const r = spawnSync(
    process.execPath,
    [repoPath("dist", "src", "cli", "main.js"), "data", "run", join(dir, "p.json")],
    {
      encoding: "utf8",
      timeout: 30_000,
    },
  );
  assert.equal(r.error, undefined, "the run ends");
  assert.equal(r.status, 0, r.stderr);
  const out = readdirSync(join(dir, "run", "output"))
    .sort()
    .flatMap((f) =>
      readFileSync(join(dir, "run", "output", f), "utf8")
        .split("\n")
        .filter(Boolean),
    );
  assert.deepEqual(
    out.map((l) => JSON.parse(l).id),
    expected,
  );
  const report = JSON.parse(readFileSync(join(dir, "run", "report.json"), "utf8"));
  assert.deepEqual(report.issues.counts, { truncated: cuts.length });
  for (const c of cuts) {
    const issue = report.issues.first.find((i: { file: string }) => i.file === c.file);
    assert.ok(issue, `issue for ${c.file}`);
    assert.match(issue.message, new RegExp(`offset ${c.offset}\\b`));
  }
  const leftovers = readdirSync(join(dir, "run"), { recursive: true }).filter((f) =>
    String(f).includes(".tmp-"),
  );
  assert.deepEqual(leftovers, []);
});

test("WARC: a record larger than maxRecordBytes is skipped and reported, never read into memory", async () => {
  const wet = repoPath("test", "fixtures", "data", "web", "whirlwind.warc.wet.gz");
  assert.equal((await all(readWarc(wet))).length, 1);
  const log = new IssueLog();
  assert.equal((await all(readWarc(wet, { onIssue: log.sink, maxRecordBytes: 100 }))).length, 0);
  assert.deepEqual(log.counts, { record: 1 });
  assert.match(
    log.first[0]!.message,
    /^WARC record 2 at offset \d+ of the decompressed data: \d+ bytes, over the limit of 100$/,
  );
});

test("Parquet: rows become documents; other columns go to meta; batches cover every row", async () => {
  const n = 300;
  const buf = parquetWriteBuffer({
    columnData: [
      { name: "text", data: Array.from({ length: n }, (_, i) => `parquet row ${i}`) },
      { name: "id", data: Array.from({ length: n }, (_, i) => `p${i}`) },
      { name: "url", data: Array.from({ length: n }, (_, i) => `https://example.com/${i}`) },
      { name: "score", data: Array.from({ length: n }, (_, i) => i / 2), type: "DOUBLE" },
    ],
  });
  const dir = tempDir();
  const p = join(dir, "t.parquet");
  writeFileSync(p, Buffer.from(buf));
  const docs = await all(readParquet(p, { batchRows: 64 }));
  assert.equal(docs.length, n);
  assert.deepEqual(docs[123], {
    id: "p123",
    text: "parquet row 123",
    url: "https://example.com/123",
    meta: { score: 61.5 },
  });
  const log = new IssueLog();
  writeFileSync(join(dir, "bad.parquet"), "not parquet at all");
  assert.equal((await all(readParquet(join(dir, "bad.parquet"), { onIssue: log.sink }))).length, 0);
  assert.equal(log.counts.format, 1);
});

test("writers: sharded, atomic (no temporary files left), gzip round trip", async () => {
  const dir = tempDir();
  const w = new JsonlShardWriter(join(dir, "out", "part"), { maxDocs: 3 });
  for (let i = 0; i < 7; i++) w.write({ id: `i${i}`, text: `t${i}`, meta: {} });
  const paths = await w.close();
  assert.equal(paths.length, 3);
  assert.deepEqual(readdirSync(join(dir, "out")), [
    "part-00000.jsonl",
    "part-00001.jsonl",
    "part-00002.jsonl",
  ]);
  assert.equal(readFileSync(paths[2]!, "utf8"), '{"id":"i6","text":"t6"}\n');
  const g = new JsonlWriter(join(dir, "z.jsonl.gz"));
  g.write({ id: "a", text: "é", url: "u", meta: { k: 1 } });
  assert.ok(!existsSync(join(dir, "z.jsonl.gz")), "invisible until closed");
  await g.close();
  assert.equal(
    gunzipSync(readFileSync(join(dir, "z.jsonl.gz"))).toString(),
    '{"id":"a","text":"é","url":"u","meta":{"k":1}}\n',
  );
  assert.deepEqual(readdirSync(dir).sort(), ["out", "z.jsonl.gz"]);
});
