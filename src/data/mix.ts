// The mixer: samples documents so the output's classes (meta.domain; untagged counts as general) have the
// asked shares of bytes — the paper's ≈50% general, 25% math & reasoning, 17% code, 8% multilingual by
// default. Collect totals each class's bytes per shard; a reduce picks per-class rates r_c = t_c·T / S_c
// that keep the output as large as the input, repeating no document more than `maxRepeat` times (classes
// with no documents are left out and the others' shares renormalised; the report shows asked vs
// achieved); apply keeps ⌊r⌋ copies of a document plus one more with probability r − ⌊r⌋, decided by
// hash(seed, id) so reruns agree. Extra copies get ids "<id>#k". Classes not in `targets` are dropped.
// With `anneal`, only documents whose meta.quality ≥ `annealMinQuality` take part (the paper's annealing
// data: small amounts of high-quality code and math, upsampled), and `annealUpsample` multiplies the
// rates of `annealClasses`.
import { join } from "node:path";
import type { Document } from "./document.js";
import { textBytes } from "./document.js";
import { readJson, writeJson } from "./files.js";
import { unitHash } from "./hash.js";
import { defineStep } from "./pipeline/types.js";

export interface MixParams {
  targets: Record<string, number>;
  maxRepeat: number;
  anneal: boolean;
  annealMinQuality: number;
  annealClasses: string[];
  annealUpsample: number;
}

export const DEFAULT_MIX = { general: 0.5, math: 0.25, code: 0.17, multilingual: 0.08 };

const classOf = (doc: Document) => (typeof doc.meta.domain === "string" ? doc.meta.domain : "general");
const eligible = (doc: Document, p: MixParams) =>
  !p.anneal || (typeof doc.meta.quality === "number" && doc.meta.quality >= p.annealMinQuality);

/**
 * Sampling rate per class for class sizes `sizes` (bytes) and target shares, keeping the output as large
 * as the input: each class gets its share of the total; a class that would need more than `maxRepeat`
 * copies is capped there and the bytes it cannot supply go to the others in proportion to their targets.
 */
export function mixRates(sizes: Record<string, number>, p: MixParams): Record<string, number> {
  const present = Object.keys(p.targets).filter((c) => (sizes[c] ?? 0) > 0 && p.targets[c]! > 0);
  const total = present.reduce((a, c) => a + sizes[c]!, 0);
  const rates: Record<string, number> = {};
  for (const c of Object.keys({ ...sizes, ...p.targets })) rates[c] = 0;
  const capped = new Set<string>();
  for (;;) {
    const free = present.filter((c) => !capped.has(c));
    const left = total - [...capped].reduce((a, c) => a + p.maxRepeat * sizes[c]!, 0);
    const share = free.reduce((a, c) => a + p.targets[c]!, 0);
    let newCap = false;
    for (const c of free) {
      const r = (left * (p.targets[c]! / share)) / sizes[c]!;
      if (r > p.maxRepeat) {
        capped.add(c);
        newCap = true;
      }
      rates[c] = Math.min(r, p.maxRepeat);
    }
    if (!newCap || free.length === 0) break;
  }
  for (const c of capped) rates[c] = p.maxRepeat;
  if (p.anneal)
    for (const c of p.annealClasses)
      if (rates[c]) rates[c] = Math.min(p.maxRepeat, rates[c]! * p.annealUpsample);
  return rates;
}

export const mixStep = defineStep<MixParams>({
  type: "mix",
  cli: "mix",
  summary: "sample documents to target class proportions (default 50/25/17/8), or an annealing mix",
  params: {
    targets: { type: "object", default: DEFAULT_MIX, doc: "class → share of output bytes (renormalised)" },
    maxRepeat: { type: "number", default: 4, min: 1, doc: "most copies of one document (upsampling limit)" },
    anneal: {
      type: "boolean",
      default: false,
      doc: "annealing mix: only documents with meta.quality ≥ annealMinQuality",
    },
    annealMinQuality: {
      type: "number",
      default: 0.5,
      min: 0,
      max: 1,
      doc: "lowest quality score in the annealing mix",
    },
    annealClasses: {
      type: "strings",
      default: ["code", "math"],
      doc: "classes upsampled in the annealing mix",
    },
    annealUpsample: { type: "number", default: 2, min: 1, doc: "rate multiplier for annealClasses" },
  },
  global: {
    collect(p, ctx) {
      const sizes: Record<string, number> = {};
      return {
        add(doc) {
          if (!eligible(doc, p)) return;
          const c = classOf(doc);
          sizes[c] = (sizes[c] ?? 0) + textBytes(doc.text);
        },
        async finish() {
          writeJson(join(ctx.workDir, `sizes-${String(ctx.task).padStart(5, "0")}.json`), sizes);
        },
      };
    },
    reduces: [
      {
        name: "rates",
        tasks: () => 1,
        async run(p, ctx) {
          const sizes: Record<string, number> = {};
          for (let t = 0; t < ctx.tasks; t++)
            for (const [c, b] of Object.entries(
              readJson<Record<string, number>>(join(ctx.workDir, `sizes-${String(t).padStart(5, "0")}.json`)),
            ))
              sizes[c] = (sizes[c] ?? 0) + b;
          writeJson(join(ctx.workDir, "rates.json"), { sizes, rates: mixRates(sizes, p) });
        },
      },
    ],
    apply(p, ctx) {
      const { rates } = readJson<{ rates: Record<string, number> }>(join(ctx.workDir, "rates.json"));
      return {
        name: "mix",
        process(doc) {
          if (!eligible(doc, p)) return { drop: "below annealing quality" };
          const r = rates[classOf(doc)] ?? 0;
          const copies = Math.floor(r) + (unitHash(ctx.seed, doc.id) < r - Math.floor(r) ? 1 : 0);
          if (copies === 0) return { drop: "mix downsampled" };
          const out: Document[] = [doc];
          for (let k = 1; k < copies; k++) out.push({ ...doc, id: `${doc.id}#${k}` });
          return out;
        },
      };
    },
  },
});
