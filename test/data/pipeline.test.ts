// The pipeline engine with the dedup steps: URL dedup keeps the newest crawl, line dedup removes lines
// seen more than N times, MinHash keeps one document per cluster and writes the others beside with their
// cluster; outputs are identical across worker counts; a killed run resumed gives the same bytes; pipeline
// files are validated with errors that name the field.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { configTable, SchemaError, withGenerated } from "../../src/core/schema.js";
import { documentToJson } from "../../src/data/document.js";
import { loadPipeline, PIPELINE_SCHEMA, validatePipeline } from "../../src/data/pipeline/config.js";
import { runLocal } from "../../src/data/pipeline/run.js";
import { repoPath, rng } from "../helpers.js";
import { plantedCorpus } from "./corpus.js";
import { tempDir } from "./tmp.js";

function readAll(dir: string): { id: string; text: string; url?: string; meta?: Record<string, unknown> }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .flatMap((f) =>
      readFileSync(join(dir, f), "utf8")
        .split("\n")
        .filter((l) => l)
        .map((l) => JSON.parse(l)),
    );
}

function filesOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      if (
        readdirSync(d, { withFileTypes: true })
          .find((e) => e.name === n)!
          .isDirectory()
      )
        walk(p, join(rel, n));
      else out[join(rel, n)] = readFileSync(p, "latin1");
    }
  };
  walk(dir, "");
  return out;
}

/** Three JSONL shards: planted near duplicates across shards, URL repeats with dates, boilerplate lines. */
function makeInput(root: string): string {
  const dir = join(root, "in");
  mkdirSync(dir);
  const c = plantedCorpus({
    distinct: 60,
    exact: 6,
    near: 12,
    words: 120,
    seed: 5,
    editRates: [0.01, 0.02, 0.5],
  });
  const r = rng(9);
  const docs = c.docs.map((d, i) => {
    const lines = [d.text];
    if (i % 4 === 0) lines.unshift("Accept all cookies"); // 30+ documents: removed
    if (i < 6) lines.push("Rare footer line 6 times"); // exactly 6: kept
    return {
      ...d,
      text: lines.join("\n"),
      url: `https://site${i}.example.com/page?utm_source=x`,
      meta: { date: "2023-01-01" },
    };
  });
  // The same URL crawled three times (http/https/www variants), newest in the middle.
  docs.push({
    id: "u-old",
    text: `old crawl ${r()}`,
    url: "http://www.news.example/a",
    meta: { date: "2022-05-01" },
  });
  docs.push({
    id: "u-new",
    text: `new crawl ${r()}`,
    url: "https://news.example/a#top",
    meta: { date: "2024-02-01" },
  });
  docs.push({
    id: "u-mid",
    text: `mid crawl ${r()}`,
    url: "https://news.example/a",
    meta: { date: "2023-02-01" },
  });
  const per = Math.ceil(docs.length / 3);
  for (let s = 0; s < 3; s++)
    writeFileSync(
      join(dir, `in-${s}.jsonl`),
      docs
        .slice(s * per, (s + 1) * per)
        .map((d) => `${documentToJson(d)}\n`)
        .join(""),
    );
  return dir;
}

const STEPS = [
  { type: "urlDedup" },
  { type: "lineDedup", maxOccurrences: 6 },
  { type: "minhashDedup", threshold: 0.8 },
  { type: "tokenize" },
];

test("dedup pipeline: URL, line and MinHash dedup through the staged engine, on 2 workers", async () => {
  const dir = tempDir();
  const input = makeInput(dir);
  const run = join(dir, "run");
  const config = validatePipeline({
    name: "t",
    input: { paths: [input] },
    output: run,
    workers: 2,
    steps: STEPS,
  });
  const report = await runLocal(config);
  const out = readAll(join(run, "output"));
  const ids = new Set(out.map((d) => d.id));
  assert.ok(ids.has("u-new") && !ids.has("u-old") && !ids.has("u-mid"), "newest crawl of the URL kept");
  assert.ok(!out.some((d) => d.text.includes("Accept all cookies")), "boilerplate line removed");
  assert.equal(
    out.filter((d) => d.text.includes("Rare footer line 6 times")).length,
    6,
    "a line seen 6 times stays",
  );
  const removed = readAll(join(run, "removed", "02-minhashDedup"));
  assert.ok(removed.length >= 6 * 2 + 6, `removed ${removed.length}`);
  for (const d of removed) {
    const cluster = d.meta!.minhash_cluster;
    assert.equal(typeof cluster, "number");
    assert.ok(
      out.some((k) => k.meta?.minhash_cluster === cluster),
      "its cluster's kept document is in the output",
    );
  }
  const f = Object.fromEntries(report.funnel.map((b) => [b.name, b]));
  assert.equal(f.read!.docsOut, 105);
  assert.equal(f.urlDedup!.dropped["duplicate URL"]!.docs, 2);
  assert.equal(f.minhashDedup!.dropped["near duplicate"]!.docs, removed.length);
  assert.equal(f.minhashDedup!.docsOut, out.length);
  assert.ok(report.duplicates!.clusterSizes["3"]! >= 6);
  assert.ok(readFileSync(join(run, "report.svg"), "utf8").startsWith("<svg"));
  // The written pipeline has every default and reloads to the same config.
  const written = loadPipeline(join(run, "pipeline.json"));
  assert.deepEqual(written, config);
  assert.equal(
    (JSON.parse(readFileSync(join(run, "pipeline.json"), "utf8")) as { steps: { bands: number }[] }).steps[2]!
      .bands,
    14,
  );

  // Same input, one worker, another folder: the same bytes.
  const run1 = join(dir, "run1");
  await runLocal({ ...config, output: run1, workers: 1 });
  assert.deepEqual(filesOf(join(run1, "output")), filesOf(join(run, "output")));
  assert.deepEqual(filesOf(join(run1, "removed")), filesOf(join(run, "removed")));
  assert.deepEqual(filesOf(join(run1, "tokens")), filesOf(join(run, "tokens")));

  // Output split into parts of 10 documents: the same documents, in the same order.
  const run2 = join(dir, "run2");
  await runLocal({ ...config, output: run2, outputMaxDocs: 10 });
  const parts = readdirSync(join(run2, "output"));
  assert.ok(parts.length > 3 && parts.every((f) => /^shard-\d{5}-\d{5}\.jsonl$/.test(f)), parts.join(" "));
  assert.equal(
    Object.values(filesOf(join(run2, "output"))).join(""),
    Object.values(filesOf(join(run, "output"))).join(""),
  );
});

test("a killed run, resumed, gives byte-identical output", () => {
  const dir = tempDir();
  const input = makeInput(dir);
  const pipe = join(dir, "p.yaml");
  writeFileSync(
    pipe,
    `name: resume\ninput:\n  paths: [${input}]\noutput: run\nsteps:\n${STEPS.map((s) => `  - ${JSON.stringify(s)}`).join("\n")}\n`,
  );
  const cli = repoPath("dist", "src", "cli", "main.js");
  const clean = spawnSync(process.execPath, [cli, "data", "run", pipe, "--output", join(dir, "clean")], {
    encoding: "utf8",
  });
  assert.equal(clean.status, 0, clean.stderr);
  // Killed in the middle of a task: the first task of stage 4 (after line dedup) has written 10 documents.
  const killed = spawnSync(process.execPath, [cli, "data", "run", pipe, "--output", join(dir, "again")], {
    encoding: "utf8",
    env: { ...process.env, HERD_DATA_CRASH: "4:10" },
  });
  assert.equal(killed.signal, "SIGKILL");
  assert.ok(!existsSync(join(dir, "again", "report.json")));
  assert.ok(readdirSync(join(dir, "again", "markers")).length >= 1, "some stages finished before the kill");
  const resumed = spawnSync(process.execPath, [cli, "data", "run", pipe, "--output", join(dir, "again")], {
    encoding: "utf8",
  });
  assert.equal(resumed.status, 0, resumed.stderr);
  for (const sub of ["output", "removed", "tokens"])
    assert.deepEqual(filesOf(join(dir, "again", sub)), filesOf(join(dir, "clean", sub)));
  const leftovers = Object.keys(filesOf(join(dir, "again"))).filter((f) => f.includes(".tmp-"));
  assert.deepEqual(leftovers, []);
});

test("resume after the inputs changed: refused, naming the file; --restart starts over", () => {
  const dir = tempDir();
  const input = join(dir, "in.jsonl");
  const doc = (i: number, w = "doc") => `{"id":"d${i}","text":"${w} ${i}"}\n`;
  writeFileSync(input, doc(0) + doc(1) + doc(2));
  writeFileSync(
    join(dir, "p.json"),
    JSON.stringify({ input: { paths: ["in.jsonl"] }, output: "run", steps: [] }),
  );
  const cli = repoPath("dist", "src", "cli", "main.js");
  const herd = (...args: string[]) =>
    spawnSync(process.execPath, [cli, "data", "run", join(dir, "p.json"), ...args], { encoding: "utf8" });
  const docsRead = () =>
    (JSON.parse(readFileSync(join(dir, "run", "report.json"), "utf8")) as { funnel: { docsOut: number }[] })
      .funnel[0]!.docsOut;
  assert.equal(herd().status, 0);
  assert.equal(docsRead(), 3);
  const output = readFileSync(join(dir, "run", "output", "shard-00000.jsonl"), "utf8");
  // Two documents appended: refused, the old output untouched.
  writeFileSync(input, doc(0) + doc(1) + doc(2) + doc(3) + doc(4));
  const grown = herd();
  assert.notEqual(grown.status, 0);
  assert.match(grown.stderr, /in\.jsonl/);
  assert.match(grown.stderr, /--restart/);
  assert.equal(readFileSync(join(dir, "run", "output", "shard-00000.jsonl"), "utf8"), output);
  // Rewritten in place with the same size and modification time: still noticed (by its bytes).
  const st = statSync(input);
  writeFileSync(input, doc(0, "DOC") + doc(1, "DOC") + doc(2, "DOC") + doc(3) + doc(4));
  utimesSync(input, st.atime, st.mtime);
  assert.match(herd().stderr, /in\.jsonl/);
  // --restart: the run starts over on the new inputs.
  const restarted = herd("--restart");
  assert.equal(restarted.status, 0, restarted.stderr);
  assert.equal(docsRead(), 5);
  assert.equal(herd().status, 0, "resumes normally once the inputs are unchanged");
});

test("relative paths: a pipeline file's against its folder, the command line's against the current folder", () => {
  const dir = tempDir();
  for (const d of ["conf", "data", "elsewhere"]) mkdirSync(join(dir, d));
  writeFileSync(
    join(dir, "data", "in.jsonl"),
    '{"id":"a","text":"kept","url":"https://ok.example/"}\n{"id":"b","text":"blocked","url":"https://bad.example/x"}\n',
  );
  writeFileSync(join(dir, "conf", "blocked.txt"), "bad.example\n");
  writeFileSync(
    join(dir, "conf", "p.yaml"),
    "input:\n  paths: [../data/in.jsonl]\noutput: run\nsteps:\n  - type: domainBlocklist\n    domainsFile: blocked.txt\n",
  );
  const cli = repoPath("dist", "src", "cli", "main.js");
  const herd = (cwd: string, ...args: string[]) => {
    const r = spawnSync(process.execPath, [cli, "data", ...args], { cwd, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
  };
  const ids = (run: string) => readAll(join(run, "output")).map((d) => d.id);
  // From another folder: the file's paths (input, output, the step's list) are the file's folder's.
  herd(join(dir, "elsewhere"), "run", "../conf/p.yaml");
  assert.deepEqual(ids(join(dir, "conf", "run")), ["a"]);
  // --output on the command line is the current folder's.
  herd(join(dir, "elsewhere"), "run", "../conf/p.yaml", "--output", "mine");
  assert.deepEqual(ids(join(dir, "elsewhere", "mine")), ["a"]);
  // A one-step command: every path is the current folder's.
  herd(
    join(dir, "data"),
    "blocklist",
    "--input",
    "in.jsonl",
    "--output",
    "out",
    "--domains-file",
    "../conf/blocked.txt",
  );
  assert.deepEqual(ids(join(dir, "data", "out")), ["a"]);
  assert.deepEqual(readdirSync(join(dir, "elsewhere")), ["mine"]);
});

test("resume cleanup: removes the run folder's temporaries, never follows a link out of it", async () => {
  const dir = tempDir();
  writeFileSync(join(dir, "in.jsonl"), '{"id":"a","text":"one"}\n{"id":"b","text":"two"}\n');
  const run = join(dir, "run");
  const config = validatePipeline({ input: { paths: [join(dir, "in.jsonl")] }, output: run, steps: [] });
  await runLocal(config);
  // A killed task's temporary, a link to a folder outside holding a temporary-named file, a link to `..`
  // (whose folder holds another), and a temporary-named link to a file outside.
  const half = join(run, "output", "shard-00000.jsonl.tmp-3-ghi");
  writeFileSync(half, "half");
  const outside = join(dir, "elsewhere");
  mkdirSync(outside);
  writeFileSync(join(outside, "precious.jsonl.tmp-1-abc"), "keep");
  writeFileSync(join(dir, "beside.tmp-2-def"), "keep");
  writeFileSync(join(dir, "target"), "keep");
  symlinkSync(outside, join(run, "elsewhere-link"));
  symlinkSync("..", join(run, "up"));
  symlinkSync(join(dir, "target"), join(run, "output", "link.tmp-4-jkl"));
  const report = await runLocal(config);
  assert.equal(report.funnel[0]!.docsOut, 2);
  assert.ok(!existsSync(half), "the run's own temporary is removed");
  assert.equal(readFileSync(join(outside, "precious.jsonl.tmp-1-abc"), "utf8"), "keep");
  assert.equal(readFileSync(join(dir, "beside.tmp-2-def"), "utf8"), "keep");
  assert.equal(readFileSync(join(dir, "target"), "utf8"), "keep");
});

test("pipeline files: errors name the field; unknown fields and steps are refused", () => {
  const bad = () =>
    validatePipeline({
      input: { paths: ["x"], format: "csv" },
      workers: 0,
      steps: [{ type: "minhashDedup", bands: 0, bandz: 3 }, { type: "nope" }],
    });
  assert.throws(bad, (e: unknown) => {
    assert.ok(e instanceof SchemaError);
    const p = e.message;
    assert.match(p, /^pipeline: field 'input\.format' must be one of auto, jsonl/m);
    assert.match(p, /field 'workers' must be an integer ≥ 1, got 0/);
    assert.match(p, /field 'steps\[0\]\.bands' must be an integer ≥ 1, got 0/);
    assert.match(
      p,
      /field 'steps\[0\]\.bandz' is not a known field \(known: keepRemoved, shingleSize, bands/,
    );
    assert.match(p, /field 'steps\[1\]\.type' must be one of .*urlDedup/);
    return true;
  });
  assert.throws(() => validatePipeline({ steps: [] }), /field 'input\.paths' is missing/);
  assert.throws(
    () => validatePipeline({ input: { paths: [] }, steps: [] }),
    /field 'input\.paths' must name at least one file or folder/,
  );
});

test("docs/data.md's pipeline-file table is the one PIPELINE_SCHEMA makes (node scripts/readme-knobs.mjs)", () => {
  const readme = readFileSync(repoPath("docs", "data.md"), "utf8");
  assert.equal(withGenerated(readme, "pipeline-config", configTable(PIPELINE_SCHEMA)), readme);
});

test("CLI: `herd data dedup` runs one step on JSONL and reports the funnel", () => {
  const dir = tempDir();
  const input = makeInput(dir);
  const cli = repoPath("dist", "src", "cli", "main.js");
  const r = spawnSync(
    process.execPath,
    [
      cli,
      "data",
      "dedup",
      "--input",
      join(input, "in-0.jsonl"),
      "--input",
      join(input, "in-1.jsonl"),
      "--output",
      join(dir, "o"),
      "--bands",
      "10",
      "--rows",
      "10",
    ],
    {
      encoding: "utf8",
    },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /minhashDedup\s+\d+ docs/);
  assert.ok(existsSync(join(dir, "o", "removed", "00-minhashDedup", "shard-00000.jsonl")));
  const bad = spawnSync(
    process.execPath,
    [cli, "data", "dedup", "--input", input, "--output", join(dir, "p"), "--bands", "0"],
    { encoding: "utf8" },
  );
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /herd data dedup: --bands: bad value '0' \(expected an integer ≥ 1\)/);
});
