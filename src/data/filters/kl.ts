// klDivergence: drop documents whose token distribution is far from the corpus's (the paper's filter for
// documents "with excessive numbers of outlier tokens"). Tokens are lower-cased words hashed into
// `buckets` bins. Collect sums each shard's bin counts; a reduce forms the corpus distribution Q (with
// add-`smoothing` counts); apply computes KL(P‖Q) = Σ p log(p/q) in nats for each document's distribution P
// and drops it above `maxKl`. Documents with fewer than `minWords` words pass (too short to judge).
// With `byLanguage` (default) each meta.language has its own corpus distribution (a German page is not
// an outlier for being German); a language with fewer than `minCorpusTokens` tokens is not judged.
import { join } from "node:path";
import { readF64, readJson, writeJson, writeTyped } from "../files.js";
import { hashString } from "../hash.js";
import { defineStep } from "../pipeline/types.js";

export interface KlParams {
  maxKl: number;
  buckets: number;
  minWords: number;
  smoothing: number;
  byLanguage: boolean;
  minCorpusTokens: number;
}

const langKey = (lang: unknown) => (typeof lang === "string" && /^[\w-]+$/.test(lang) ? lang : "all");

const pad = (n: number) => String(n).padStart(5, "0");

export function tokenBins(text: string, buckets: number): number[] {
  const w = text.toLowerCase().match(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu) ?? [];
  return w.map((x) => hashString(x) % buckets);
}

/** KL(P‖Q) in nats of the document's bin distribution against the corpus log-probabilities. */
export function klDivergence(bins: number[], logQ: Float64Array): number {
  const counts = new Map<number, number>();
  for (const b of bins) counts.set(b, (counts.get(b) ?? 0) + 1);
  let kl = 0;
  for (const c of counts.values()) {
    const p = c / bins.length;
    kl += p * Math.log(p);
  }
  for (const [b, c] of counts) kl -= (c / bins.length) * logQ[b]!;
  return kl;
}

/** Corpus log-probabilities from summed bin counts. */
export function corpusLogProbs(counts: Float64Array, smoothing: number): Float64Array {
  let total = 0;
  for (const c of counts) total += c + smoothing;
  return counts.map((c) => Math.log((c + smoothing) / total));
}

export const klDivergenceStep = defineStep<KlParams>({
  type: "klDivergence",
  cli: "kl",
  summary: "drop documents whose token distribution diverges from the corpus (KL)",
  params: {
    maxKl: {
      type: "number",
      default: 5,
      min: 0,
      doc: "largest KL(document ‖ corpus) in nats (book paragraphs: median 2.5, p99 3.5; random strings ≈ 7)",
    },
    buckets: { type: "integer", default: 65536, min: 16, doc: "hash bins for tokens" },
    minWords: { type: "integer", default: 50, min: 1, doc: "documents with fewer tokens are not judged" },
    smoothing: { type: "number", default: 1, min: 0, doc: "added to every bin's corpus count" },
    byLanguage: { type: "boolean", default: true, doc: "one corpus distribution per meta.language" },
    minCorpusTokens: {
      type: "integer",
      default: 10000,
      min: 0,
      doc: "a language with fewer corpus tokens is not judged",
    },
  },
  global: {
    collect(p, ctx) {
      const counts = new Map<string, Float64Array>();
      return {
        add(doc) {
          const key = p.byLanguage ? langKey(doc.meta.language) : "all";
          let c = counts.get(key);
          if (!c) counts.set(key, (c = new Float64Array(p.buckets)));
          for (const b of tokenBins(doc.text, p.buckets)) c[b]!++;
        },
        async finish() {
          const langs = [...counts.keys()].sort();
          writeJson(join(ctx.workDir, `langs-${pad(ctx.task)}.json`), langs);
          for (const l of langs)
            writeTyped(join(ctx.workDir, `counts-${pad(ctx.task)}-${l}.f64`), counts.get(l)!);
        },
      };
    },
    reduces: [
      {
        name: "corpus",
        tasks: () => 1,
        async run(p, ctx) {
          const sums = new Map<string, Float64Array>();
          for (let t = 0; t < ctx.tasks; t++)
            for (const l of readJson<string[]>(join(ctx.workDir, `langs-${pad(t)}.json`))) {
              const c = readF64(join(ctx.workDir, `counts-${pad(t)}-${l}.f64`));
              let sum = sums.get(l);
              if (!sum) sums.set(l, (sum = new Float64Array(p.buckets)));
              for (let i = 0; i < sum.length; i++) sum[i]! += c[i]!;
            }
          const judged: string[] = [];
          for (const [l, sum] of [...sums].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
            if (sum.reduce((a, b) => a + b, 0) < p.minCorpusTokens) continue;
            judged.push(l);
            writeTyped(join(ctx.workDir, `logq-${l}.f64`), corpusLogProbs(sum, p.smoothing));
          }
          writeJson(join(ctx.workDir, "languages.json"), judged);
        },
      },
    ],
    apply(p, ctx) {
      const judged = new Set(readJson<string[]>(join(ctx.workDir, "languages.json")));
      const logQ = new Map<string, Float64Array>();
      return {
        name: "klDivergence",
        process(doc) {
          const key = p.byLanguage ? langKey(doc.meta.language) : "all";
          if (!judged.has(key)) return doc;
          const bins = tokenBins(doc.text, p.buckets);
          if (bins.length < p.minWords) return doc;
          let q = logQ.get(key);
          if (!q) logQ.set(key, (q = readF64(join(ctx.workDir, `logq-${key}.f64`))));
          const kl = klDivergence(bins, q);
          doc.meta.kl = Math.round(kl * 1000) / 1000;
          return kl > p.maxKl ? { drop: "token KL divergence" } : doc;
        },
      };
    },
  },
});
