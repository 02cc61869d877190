// Every step in one pipeline file (YAML, through the CLI) on a small crafted corpus: each planted bad
// document is removed by the step meant for it, the report has the funnel in step order, languages, the
// mix asked vs achieved and the duplicate clusters, and the token shards match the JSONL output.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { Report } from "../../src/data/pipeline/report.js";
import { QUALITY_DEFAULTS, QualityModel } from "../../src/data/quality.js";
import { TokenShardReader } from "../../src/data/shards.js";
import { repoPath, rng } from "../helpers.js";
import { tempDir } from "./tmp.js";

const alice = readFileSync(repoPath("test", "fixtures", "data", "books", "carroll-excerpt.txt"), "utf8");
const words = alice.split(/\s+/).filter((w) => w);
const prose = (i: number) => words.slice(i * 90, i * 90 + 90).join(" ");

const GERMAN = [
  "Alice saß am Ufer neben ihrer Schwester und hatte nichts zu tun, weil der Nachmittag lang und sehr warm war.",
  "Sie hatte ein paar Mal in das Buch geschaut, das ihre Schwester las, aber es hatte weder Bilder noch Gespräche.",
  "Was nützt ein Buch, dachte Alice bei sich, wenn man darin keine Bilder und keine Gespräche finden kann?",
  "Also überlegte sie gerade, ob das Vergnügen, eine Kette aus Gänseblümchen zu flechten, die Mühe wert wäre.",
  "Plötzlich lief ein weißes Kaninchen mit rosa Augen dicht an ihr vorbei und sah dabei auf seine Taschenuhr.",
  "Daran war eigentlich nichts besonders Merkwürdiges, und Alice fand es auch nicht sehr seltsam, es sprechen zu hören.",
  "Später fiel ihr allerdings ein, dass sie sich darüber hätte wundern sollen, doch damals schien es ganz natürlich.",
  "Als das Kaninchen aber tatsächlich eine Uhr aus der Westentasche zog, sprang Alice sofort auf die Füße.",
  "Brennend vor Neugier lief sie hinter ihm her über das Feld und kam gerade noch rechtzeitig zu einem großen Loch.",
  "Der Kaninchenbau ging zuerst eine Weile geradeaus wie ein Tunnel und senkte sich dann ganz plötzlich in die Tiefe.",
  "Entweder war der Brunnen sehr tief, oder sie fiel sehr langsam, denn sie hatte unterwegs viel Zeit, sich umzusehen.",
  "Zuerst versuchte sie hinunterzuschauen, um zu sehen, wohin sie käme, aber es war viel zu dunkel, um etwas zu erkennen.",
];

function corpus(): { id: string; text: string; url: string; meta?: Record<string, unknown> }[] {
  const r = rng(21);
  const docs: { id: string; text: string; url: string; meta?: Record<string, unknown> }[] = [];
  for (let i = 0; i < 40; i++)
    docs.push({
      id: `prose${i}`,
      text: prose(i),
      url: `https://books.example/alice/${i}`,
      meta: { date: "2024-03-01" },
    });
  for (let i = 0; i < 3; i++)
    docs.push({
      id: `de${i}`,
      text: GERMAN.slice(i * 4, i * 4 + 4).join(" "),
      url: `https://buecher.example/${i}`,
    });
  for (let i = 0; i < 6; i++) {
    const fns = Array.from(
      { length: 6 },
      (_, k) =>
        `def f${i}_${k}(x, y):\n    z = x * ${k + 2} + y\n    if z > ${i}:\n        return z - 1\n    return z\n`,
    );
    // Code arrives tagged by its source (the paper runs code through its own pipeline).
    docs.push({
      id: `code${i}`,
      text: `import math\n\n${fns.join("\n")}`,
      url: `https://github.com/example/repo${i}/blob/main/a.py`,
      meta: { domain: "code" },
    });
  }
  // Planted bad documents, one per filter.
  docs.push({ id: "blocked", text: prose(41), url: "https://ads.blocked.example/page" });
  docs.push({
    id: "near-dup",
    text: prose(3).replace("Alice", "Alicia"),
    url: "https://mirror.example/alice/3",
  });
  docs.push({
    id: "url-dup-old",
    text: prose(42),
    url: "https://books.example/alice/5",
    meta: { date: "2001-01-01" },
  });
  docs.push({
    id: "log",
    text: Array.from({ length: 40 }, () => "WARN disk quota nearly exceeded on volume data").join("\n"),
    url: "https://logs.example/1",
  });
  docs.push({
    id: "short",
    text: "This page has moved to a new address, please update your bookmarks.",
    url: "https://short.example/1",
  });
  docs.push({ id: "dirty", text: `${prose(43)} porn porn xxx porn`, url: "https://dirty.example/1" });
  docs.push({
    id: "outlier",
    text: Array.from({ length: 120 }, () => Math.floor(r() * 1e12).toString(36)).join(" "),
    url: "https://junk.example/1",
  });
  docs.push({
    id: "pii",
    text: `${prose(44)} Write to alice@example.com or call (555) 123-4567.`,
    url: "https://pii.example/1",
  });
  return docs;
}

test("full pipeline from a YAML file: every step, report, token shards", () => {
  const dir = tempDir();
  const input = join(dir, "in");
  mkdirSync(input);
  const docs = corpus();
  const half = Math.ceil(docs.length / 2);
  writeFileSync(
    join(input, "a.jsonl"),
    docs
      .slice(0, half)
      .map((d) => `${JSON.stringify(d)}\n`)
      .join(""),
  );
  writeFileSync(
    join(input, "b.jsonl"),
    docs
      .slice(half)
      .map((d) => `${JSON.stringify(d)}\n`)
      .join(""),
  );
  // A quality model trained on book text vs spam (kept lenient: it only scores and drops spam).
  const r = rng(3);
  const spamWords = ["buy", "cheap", "click", "free", "win", "casino", "offer", "now", "deal", "!!!"];
  const examples = [
    ...Array.from({ length: 60 }, (_, i) => ({ text: prose(i + 50), label: 1 as const })),
    ...Array.from({ length: 60 }, () => ({
      text: Array.from({ length: 60 }, () => spamWords[Math.floor(r() * 10)]).join(" "),
      label: 0 as const,
    })),
  ];
  QualityModel.train(examples, { ...QUALITY_DEFAULTS, buckets: 1 << 14 }).model.save(
    join(dir, "quality.bin"),
  );
  writeFileSync(
    join(dir, "pipeline.yaml"),
    `name: full
seed: 7
workers: 2
input:
  paths: [in]
output: run
steps:
  - { type: domainBlocklist, domains: [blocked.example], keepRemoved: true }
  - { type: urlDedup, keepRemoved: true }
  - { type: langId, minScore: 0.5, keepRemoved: true }
  - { type: lineDedup, keepRemoved: true }
  - { type: minhashDedup, threshold: 0.7 }
  - { type: gopherRepetition, keepRemoved: true }
  - { type: gopherQuality, keepRemoved: true }
  - { type: dirtyWords, keepRemoved: true }
  - { type: klDivergence, keepRemoved: true }
  - { type: quality, model: quality.bin, threshold: 0.2, keepRemoved: true }
  - { type: pii }
  - { type: domainTag }
  - { type: mix, targets: { general: 0.6, code: 0.25, multilingual: 0.15 } }
  - { type: tokenize }
`,
  );
  const cli = repoPath("dist", "src", "cli", "main.js");
  const res = spawnSync(process.execPath, [cli, "data", "run", join(dir, "pipeline.yaml")], {
    encoding: "utf8",
  });
  assert.equal(res.status, 0, res.stderr);
  const run = join(dir, "run");
  const removedBy: Record<string, string> = {};
  for (const step of readdirSync(join(run, "removed")))
    for (const f of readdirSync(join(run, "removed", step)))
      for (const l of readFileSync(join(run, "removed", step, f), "utf8")
        .split("\n")
        .filter(Boolean)) {
        const d = JSON.parse(l) as { id: string; meta: { removed_by: string } };
        removedBy[d.id] = d.meta.removed_by;
      }
  assert.deepEqual(
    {
      blocked: removedBy.blocked,
      old: removedBy["url-dup-old"],
      near: removedBy["near-dup"],
      log: removedBy.log,
      short: removedBy.short,
      dirty: removedBy.dirty,
      outlier: removedBy.outlier,
    },
    {
      blocked: "domainBlocklist",
      old: "urlDedup",
      near: "minhashDedup",
      log: "lineDedup",
      short: "gopherQuality",
      dirty: "dirtyWords",
      outlier: "langId",
    },
  );
  const out = readdirSync(join(run, "output")).flatMap((f) =>
    readFileSync(join(run, "output", f), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id: string; text: string; meta: Record<string, unknown> }),
  );
  // The mixer may sample the PII document out; the shard handed to the mixer shows it masked.
  const lastStage = readdirSync(join(run, "work"))
    .filter((d) => d.startsWith("s"))
    .sort()
    .pop()!;
  const beforeMix = readdirSync(join(run, "work", lastStage)).flatMap((f) =>
    readFileSync(join(run, "work", lastStage, f), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id: string; text: string }),
  );
  const pii = beforeMix.find((d) => d.id === "pii");
  assert.ok(pii, "the PII document reached the mixer");
  assert.ok(
    pii.text.includes("<EMAIL>") && pii.text.includes("<PHONE>") && !pii.text.includes("alice@"),
    "PII masked",
  );
  assert.ok(out.every((d) => typeof d.meta.quality === "number" && typeof d.meta.language === "string"));
  const report = JSON.parse(readFileSync(join(run, "report.json"), "utf8")) as Report;
  assert.deepEqual(
    report.funnel.map((b) => b.name),
    [
      "read",
      "domainBlocklist",
      "urlDedup",
      "langId",
      "lineDedup",
      "minhashDedup",
      "gopherRepetition",
      "gopherQuality",
      "dirtyWords",
      "klDivergence",
      "quality",
      "pii",
      "domainTag",
      "mix",
      "tokenize",
    ],
  );
  for (let i = 1; i < report.funnel.length; i++) {
    const prev = report.funnel[i - 1]!;
    const cur = report.funnel[i]!;
    assert.equal(cur.docsIn, prev.docsOut, `${cur.name} reads what ${prev.name} wrote`);
  }
  assert.equal(report.funnel[0]!.docsOut, docs.length);
  assert.ok(
    (report.languages.en?.docs ?? 0) > 20 && (report.languages.de?.docs ?? 0) >= 2,
    JSON.stringify({ l: report.languages, f: report.funnel.map((b) => [b.name, b.docsOut, b.dropped]) }),
  );
  assert.ok(report.mix && Math.abs(report.mix.achieved.general! - 0.6) < 0.15, JSON.stringify(report.mix));
  assert.ok(report.domains.code!.docs >= 6);
  assert.ok(report.duplicates!.removed >= 1);
  const svg = readFileSync(join(run, "report.svg"), "utf8");
  for (const s of ["Funnel", "languages", "Mix", "clusters"]) assert.ok(svg.includes(s), s);
  // Token shards hold exactly the output documents.
  let shardDocs = 0;
  for (const f of readdirSync(join(run, "tokens"))) {
    const t = new TokenShardReader(join(run, "tokens", f));
    shardDocs += t.numDocs;
    t.close();
  }
  assert.equal(shardDocs, out.length);
  // The run folder reproduces the run: its pipeline.json has every default.
  const written = JSON.parse(readFileSync(join(run, "pipeline.json"), "utf8")) as {
    steps: Record<string, unknown>[];
  };
  assert.equal(written.steps[4]!.bands, 14);
  assert.equal(written.steps[12]!.maxRepeat, 4);
  assert.ok(existsSync(join(run, "plan.json")));
});
