// The heuristic filters on crafted documents that must pass and must be dropped: Gopher repetition rules,
// length/symbol rules, dirty words (LDNOOBW), token KL divergence, language id (lid.176), the quality
// classifier, domain tagging and the mixer's rates.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { Document } from "../../src/data/document.js";
import { codeLineFrac, domainOf, domainTagStep, mathDensity } from "../../src/data/domains.js";
import { countDirtyWords, dirtyWordsStep, loadWordList } from "../../src/data/filters/dirtyWords.js";
import { gopherQualityStep, heuristicReason } from "../../src/data/filters/heuristics.js";
import { corpusLogProbs, klDivergence, tokenBins } from "../../src/data/filters/kl.js";
import { REPETITION_DEFAULTS, repetitionReason } from "../../src/data/filters/repetition.js";
import { identifyLanguage } from "../../src/data/langid.js";
import { DEFAULT_MIX, mixRates } from "../../src/data/mix.js";
import type { StepSpec } from "../../src/data/pipeline/types.js";
import { QUALITY_DEFAULTS, QualityModel } from "../../src/data/quality.js";
import { repoPath, rng } from "../helpers.js";
import { tempDir } from "./tmp.js";

const defaults = (s: StepSpec) =>
  Object.fromEntries(Object.entries(s.params).map(([k, x]) => [k, x.default]));

const doc = (text: string, meta: Record<string, unknown> = {}, url?: string): Document => ({
  id: "x",
  text,
  meta,
  ...(url ? { url } : {}),
});

const alice = readFileSync(repoPath("test", "fixtures", "data", "books", "carroll-excerpt.txt"), "utf8");
const paragraphs = alice
  .split(/\n\s*\n/)
  .map((p) => p.replace(/\s+/g, " ").trim())
  .filter((p) => p.split(" ").length >= 40);

function spam(r: () => number, n: number): string {
  const w = [
    "buy",
    "cheap",
    "now",
    "click",
    "here",
    "best",
    "price",
    "free",
    "offer",
    "viagra",
    "casino",
    "win",
    "$$$",
    "deal",
    "online",
    "!!!",
    "limited",
    "discount",
  ];
  return Array.from({ length: n }, () => w[Math.floor(r() * w.length)]).join(" ");
}

test("gopherRepetition: prose passes; repeated lines, paragraphs and n-grams are dropped", () => {
  for (const p of paragraphs.slice(0, 20)) assert.equal(repetitionReason(p), null, p.slice(0, 60));
  const log = Array.from({ length: 30 }, (_, i) => `ERROR connection refused (attempt ${i % 3})`).join("\n");
  assert.equal(repetitionReason(log), "duplicated lines");
  const paras = Array.from({ length: 8 }, (_, i) =>
    i % 2 ? "Same paragraph,\nagain and again." : `Unique paragraph ${i}\nwith its words.`,
  ).join("\n\n");
  const linesLoose = { ...REPETITION_DEFAULTS, dupLineFrac: 1, dupLineCharFrac: 1 };
  assert.equal(repetitionReason(paras, linesLoose), "duplicated paragraphs");
  const ngram = `${paragraphs[0]} ${"the cat sat on the mat and looked around ".repeat(8)}`;
  assert.match(repetitionReason(ngram) ?? "", /gram/);
  // Thresholds are parameters: loosened enough, the log passes.
  const loose = {
    ...REPETITION_DEFAULTS,
    dupLineFrac: 1,
    dupParaFrac: 1,
    dupLineCharFrac: 1,
    dupParaCharFrac: 1,
    topNgramCharFrac: {},
    dupNgramCharFrac: {},
  };
  assert.equal(repetitionReason(log, loose), null);
});

test("gopherQuality: prose passes; short, symbol-heavy, bullet and non-word documents are dropped", () => {
  const p = defaults(gopherQualityStep) as unknown as Parameters<typeof heuristicReason>[1];
  const prose = paragraphs.slice(0, 4).join("\n\n");
  assert.equal(heuristicReason(doc(prose), p), null);
  assert.equal(heuristicReason(doc("Too short to keep."), p), "too few words");
  assert.equal(heuristicReason(doc(`${prose} ${"#tag ".repeat(40)}`), p), "symbol-to-word ratio");
  assert.equal(
    heuristicReason(
      doc(
        Array.from(
          { length: 60 },
          (_, i) => `• important announcement number ${i} regarding the quarterly schedule`,
        ).join("\n"),
      ),
      p,
    ),
    "bullet lines",
  );
  assert.equal(
    heuristicReason(doc(Array.from({ length: 80 }, (_, i) => `${i * 17}`).join(" ")), p),
    "words without letters",
  );
  assert.equal(heuristicReason(doc(`${prose}\n${"q{}[]<>|~ ".repeat(200)}`), p), "symbol characters");
  const german = "Der Hund läuft schnell über die Straße und bellt laut ".repeat(8);
  assert.equal(heuristicReason(doc(german, { language: "de" }), p), null, "stop words only for English");
  assert.equal(heuristicReason(doc(german, { language: "en" }), p), "too few stop words");
  assert.equal(heuristicReason(doc("x = 1;\n".repeat(80), { domain: "code" }), p), null, "code exempt");
});

test("dirtyWords: the shipped LDNOOBW lists match words and phrases, per language; clean text passes", async () => {
  const en = loadWordList("en")!;
  assert.ok(en.phrases.size > 300);
  assert.equal(countDirtyWords(paragraphs.slice(0, 10).join(" "), en).count, 0);
  assert.equal(countDirtyWords("a story about a bondage scene and 2 girls 1 cup", en).count, 2);
  assert.ok(loadWordList("de") && loadWordList("zh") && !loadWordList("xx"));
  assert.ok(countDirtyWords("这是一个测试做爱文本", loadWordList("zh")!).count >= 1);
  const block = await dirtyWordsStep.block!(
    { maxCount: 2, maxFraction: 0.01, defaultLanguage: "en", extraWords: {} },
    null as never,
  );
  assert.deepEqual(block.process(doc("porn porn porn and more porn")), { drop: "dirty words" });
  const clean = doc(paragraphs[0]!);
  assert.equal(block.process(clean), clean);
});

test("klDivergence: ordinary text is close to the corpus; outlier-token documents are far", () => {
  const r = rng(4);
  const counts = new Float64Array(65536);
  for (const p of paragraphs) for (const b of tokenBins(p, 65536)) counts[b]!++;
  const logQ = corpusLogProbs(counts, 1);
  const junk = Array.from({ length: 150 }, () => Math.floor(r() * 1e12).toString(36)).join(" ");
  const normal = Math.max(...paragraphs.slice(0, 30).map((p) => klDivergence(tokenBins(p, 65536), logQ)));
  const outlier = klDivergence(tokenBins(junk, 65536), logQ);
  assert.ok(normal < 5, `normal ${normal}`);
  assert.ok(outlier > 6, `outlier ${outlier}`);
});

test("langId: lid.176 names the language of short texts with a confidence", async () => {
  const cases: [string, string][] = [
    ["The quick brown fox jumps over the lazy dog while the children watch from the window.", "en"],
    ["Der schnelle braune Fuchs springt über den faulen Hund, während die Kinder zuschauen.", "de"],
    ["Le renard brun rapide saute par-dessus le chien paresseux pendant que les enfants regardent.", "fr"],
    ["El rápido zorro marrón salta sobre el perro perezoso mientras los niños miran.", "es"],
    ["Быстрая коричневая лиса прыгает через ленивую собаку, пока дети смотрят в окно.", "ru"],
    ["敏捷的棕色狐狸跳过了懒惰的狗，孩子们在窗边看着。", "zh"],
    ["素早い茶色の狐が怠け者の犬を飛び越え、子供たちは窓から見ている。", "ja"],
  ];
  for (const [text, lang] of cases) {
    const [top] = await identifyLanguage(text);
    assert.equal(top!.language, lang, text);
    assert.ok(top!.score > 0.5);
  }
  const mixed = await identifyLanguage("ok 123 ??? xyz", 3);
  assert.ok(mixed[0]!.score < 0.9);
});

test("quality classifier: trained on book prose vs spam, separates held-out documents; saves and loads", () => {
  const r = rng(7);
  // Positives: 40-word windows of the book; negatives: spam, and book words in random order.
  const bookWords = alice.split(/\s+/).filter((w) => w);
  const pos = Array.from({ length: Math.floor(bookWords.length / 40) }, (_, i) => ({
    text: bookWords.slice(i * 40, i * 40 + 40).join(" "),
    label: 1 as const,
  }));
  const neg = pos.map(() => ({ text: spam(r, 60), label: 0 as const }));
  const scrambled = pos.map(() => ({
    text: Array.from({ length: 40 }, () => bookWords[Math.floor(r() * bookWords.length)]).join(" "),
    label: 0 as const,
  }));
  const all = [...pos, ...neg, ...scrambled];
  const test = all.filter((_, i) => i % 5 === 0);
  const train = all.filter((_, i) => i % 5 !== 0);
  const { model, loss } = QualityModel.train(train, { ...QUALITY_DEFAULTS, buckets: 1 << 16 });
  assert.ok(loss < 0.3, `loss ${loss}`);
  const acc = test.filter((e) => (model.score(e.text) >= 0.5 ? 1 : 0) === e.label).length / test.length;
  assert.ok(acc >= 0.9, `held-out accuracy ${acc}`);
  const file = join(tempDir(), "q.bin");
  model.save(file);
  const back = QualityModel.load(file);
  assert.equal(back.score(test[0]!.text), model.score(test[0]!.text));
  // Same data and seed → the same model.
  const again = QualityModel.train(train, { ...QUALITY_DEFAULTS, buckets: 1 << 16 }).model;
  assert.equal(again.score(test[1]!.text), model.score(test[1]!.text));
});

test("domain tagging: language, hosts, code lines and math density decide the class", async () => {
  const p = defaults(domainTagStep) as unknown as Parameters<typeof domainOf>[3];
  const code = "import os\n\ndef main(argv):\n    for a in argv:\n        print(a)\n    return 0\n";
  const math =
    "Theorem. For every prime p, the integral $\\int_0^1 x^p dx = 1/(p+1)$. Proof: solve the equation directly.";
  assert.ok(codeLineFrac(code) > 0.5);
  assert.ok(mathDensity(math) > 10);
  assert.equal(domainOf(code, undefined, "en", p), "code");
  assert.equal(domainOf(math, undefined, "en", p), "math");
  assert.equal(domainOf(paragraphs[0]!, undefined, "en", p), "general");
  assert.equal(domainOf(paragraphs[0]!, "https://gist.github.com/x", "en", p), "code");
  assert.equal(domainOf(paragraphs[0]!, "https://arxiv.org/abs/1", undefined, p), "math");
  assert.equal(domainOf(code, undefined, "de", p), "multilingual");
  const block = await domainTagStep.block!(defaults(domainTagStep), null as never);
  const d = doc(code, { domain: "math" });
  block.process(d);
  assert.equal(d.meta.domain, "math", "an existing class is kept");
});

test("mixer rates: hit the target shares within the repeat limit", () => {
  const params = {
    targets: DEFAULT_MIX,
    maxRepeat: 4,
    anneal: false,
    annealMinQuality: 0.5,
    annealClasses: ["code", "math"],
    annealUpsample: 2,
  };
  const sizes = { general: 700, math: 150, code: 100, multilingual: 50 };
  const rates = mixRates(sizes, params);
  const out = Object.fromEntries(Object.entries(sizes).map(([c, s]) => [c, s * rates[c]!]));
  const total = Object.values(out).reduce((a, b) => a + b, 0);
  for (const [c, t] of Object.entries(DEFAULT_MIX)) assert.ok(Math.abs(out[c]! / total - t) < 1e-9, c);
  assert.ok(Math.max(...Object.values(rates)) <= 4 + 1e-9);
  assert.ok(Math.abs(total - 1000) < 1e-9, "output as large as the input");
  // A class too small to reach its share is capped at maxRepeat; the rest is shared by the others.
  const capped = mixRates({ general: 900, math: 10, code: 80, multilingual: 10 }, params);
  assert.equal(capped.math, 4);
  assert.equal(capped.multilingual, 4);
  const out2 = 900 * capped.general! + 40 + 80 * capped.code! + 40;
  assert.ok(Math.abs(out2 - 1000) < 1e-9);
  assert.ok(Math.abs((80 * capped.code!) / (900 * capped.general!) - 0.17 / 0.5) < 1e-9);
  // A missing class is left out and the others renormalised.
  const r2 = mixRates({ general: 100, code: 100 }, params);
  assert.ok(Math.abs((100 * r2.code!) / (100 * r2.code! + 100 * r2.general!) - 0.17 / 0.67) < 1e-9);
});

test("annealing mix: only high-quality documents, code and math upsampled", async () => {
  const { validatePipeline } = await import("../../src/data/pipeline/config.js");
  const { runLocal } = await import("../../src/data/pipeline/run.js");
  const { writeFileSync: write, readFileSync: read } = await import("node:fs");
  const dir = tempDir();
  const docs = Array.from({ length: 40 }, (_, i) => ({
    id: `d${i}`,
    text: `document ${i} ${"text ".repeat(20)}`,
    meta: { domain: i % 4 === 0 ? "code" : "general", quality: i % 2 === 0 ? 0.9 : 0.1 },
  }));
  write(join(dir, "in.jsonl"), docs.map((d) => `${JSON.stringify(d)}\n`).join(""));
  const run = join(dir, "run");
  await runLocal(
    validatePipeline({
      input: { paths: [join(dir, "in.jsonl")] },
      output: run,
      steps: [{ type: "mix", anneal: true, targets: { general: 0.5, code: 0.5 } }],
    }),
  );
  const out = read(join(run, "output", "shard-00000.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { id: string; meta: { quality: number; domain: string } });
  assert.ok(
    out.every((d) => d.meta.quality >= 0.5),
    "only high-quality documents",
  );
  const code = out.filter((d) => d.meta.domain === "code");
  assert.ok(
    code.some((d) => d.id.includes("#")),
    "code repeated",
  );
  assert.ok(code.length > out.length / 2, `code upsampled beyond its target (${code.length}/${out.length})`);
});
