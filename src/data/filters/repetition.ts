// gopherRepetition: the duplicated n-gram coverage rules of Gopher (Rae et al. 2021, Table A1), which the
// paper uses to drop repetitive content such as logs and error messages that line dedup misses:
// the fraction of duplicated lines and paragraphs (by count and by characters), the share of characters in
// the most frequent 2-, 3- and 4-gram, and the share of characters inside duplicated 5- to 10-grams.
// Every threshold is a parameter; a document exceeding any of them is dropped with that rule as reason.
// Documents of `exemptDomains` (code) are not judged.
import { fmix32, hashString } from "../hash.js";
import { defineStep } from "../pipeline/types.js";
import { lines, paragraphs, words } from "./text.js";

export interface RepetitionParams {
  dupLineFrac: number;
  dupParaFrac: number;
  dupLineCharFrac: number;
  dupParaCharFrac: number;
  /** n → max share of characters in the most frequent n-gram. */
  topNgramCharFrac: Record<string, number>;
  /** n → max share of characters covered by duplicated n-grams. */
  dupNgramCharFrac: Record<string, number>;
  /** meta.domain classes the rules skip. */
  exemptDomains?: string[];
}

export const REPETITION_DEFAULTS: RepetitionParams = {
  dupLineFrac: 0.3,
  dupParaFrac: 0.3,
  dupLineCharFrac: 0.2,
  dupParaCharFrac: 0.2,
  topNgramCharFrac: { "2": 0.2, "3": 0.18, "4": 0.16 },
  dupNgramCharFrac: { "5": 0.15, "6": 0.14, "7": 0.13, "8": 0.12, "9": 0.11, "10": 0.1 },
};

/** [duplicate elements, characters in duplicate elements] (the first occurrence is not a duplicate). */
function duplicates(items: string[]): [number, number] {
  const seen = new Set<string>();
  let n = 0;
  let chars = 0;
  for (const x of items) {
    if (seen.has(x)) {
      n++;
      chars += x.length;
    } else seen.add(x);
  }
  return [n, chars];
}

/** Word hashes (two independent 32-bit hashes each) and lengths, computed once per document. */
interface HashedWords {
  h1: Uint32Array;
  h2: Uint32Array;
  len: Uint32Array;
}

function hashWords(w: string[]): HashedWords {
  const h1 = new Uint32Array(w.length);
  const h2 = new Uint32Array(w.length);
  const len = new Uint32Array(w.length);
  for (let i = 0; i < w.length; i++) {
    h1[i] = hashString(w[i]!, 0x2545f491);
    h2[i] = hashString(w[i]!, 0x6c8e9cf5);
    len[i] = w[i]!.length;
  }
  return { h1, h2, len };
}

/** A 53-bit key for the n-gram starting at word i (exact in a JS number; collisions ~2^-53). */
function ngramKey(hw: HashedWords, i: number, n: number): number {
  let a = 0x9e3779b9;
  let b = 0x7f4a7c15;
  for (let j = i; j < i + n; j++) {
    a = Math.imul(a ^ hw.h1[j]!, 0x01000193) + j - i;
    b = Math.imul(b ^ hw.h2[j]!, 0x85ebca6b) ^ (b >>> 13);
  }
  return fmix32(a) * 2097152 + (fmix32(b) & 0x1fffff);
}

function asHashed(w: string[] | HashedWords): HashedWords {
  return Array.isArray(w) ? hashWords(w) : w;
}

/** Characters of the most frequent n-gram times its count, over all characters of the words. */
export function topNgramCharFrac(words: string[] | HashedWords, n: number): number {
  const hw = asHashed(words);
  const m = hw.len.length;
  if (m < n) return 0;
  const counts = new Map<number, number>();
  let best = 0;
  let bestChars = 0;
  for (let i = 0; i + n <= m; i++) {
    const k = ngramKey(hw, i, n);
    const c = (counts.get(k) ?? 0) + 1;
    counts.set(k, c);
    if (c >= best) {
      let chars = 0;
      for (let j = i; j < i + n; j++) chars += hw.len[j]!;
      if (c > best || chars > bestChars) {
        best = c;
        bestChars = chars;
      }
    }
  }
  if (best < 2) return 0;
  let total = 0;
  for (let i = 0; i < m; i++) total += hw.len[i]!;
  return (bestChars * best) / total;
}

/** Share of word characters inside n-grams that occur more than once (overlaps counted once). */
export function dupNgramCharFrac(words: string[] | HashedWords, n: number): number {
  const hw = asHashed(words);
  const m = hw.len.length;
  if (m < n) return 0;
  const seen = new Set<number>();
  const dup = new Uint8Array(m);
  for (let i = 0; i + n <= m; i++) {
    const k = ngramKey(hw, i, n);
    if (seen.has(k)) dup.fill(1, i, i + n);
    else seen.add(k);
  }
  let d = 0;
  let total = 0;
  for (let i = 0; i < m; i++) {
    total += hw.len[i]!;
    if (dup[i]) d += hw.len[i]!;
  }
  return total > 0 ? d / total : 0;
}

/** The first rule the text breaks, or null. */
export function repetitionReason(text: string, p: RepetitionParams = REPETITION_DEFAULTS): string | null {
  const ls = lines(text);
  const ps = paragraphs(text);
  const chars = text.length || 1;
  const [dl, dlc] = duplicates(ls);
  const [dp, dpc] = duplicates(ps);
  if (ls.length > 0 && dl / ls.length > p.dupLineFrac) return "duplicated lines";
  if (ps.length > 0 && dp / ps.length > p.dupParaFrac) return "duplicated paragraphs";
  if (dlc / chars > p.dupLineCharFrac) return "duplicated line characters";
  if (dpc / chars > p.dupParaCharFrac) return "duplicated paragraph characters";
  const w = hashWords(words(text.toLowerCase()));
  for (const [n, max] of Object.entries(p.topNgramCharFrac))
    if (topNgramCharFrac(w, Number(n)) > max) return `top ${n}-gram`;
  for (const [n, max] of Object.entries(p.dupNgramCharFrac))
    if (dupNgramCharFrac(w, Number(n)) > max) return `duplicated ${n}-grams`;
  return null;
}

export const gopherRepetitionStep = defineStep<RepetitionParams>({
  type: "gopherRepetition",
  cli: "repetition",
  summary: "drop repetitive documents (duplicated line/paragraph/n-gram coverage, Gopher rules)",
  params: {
    dupLineFrac: {
      type: "number",
      default: 0.3,
      min: 0,
      max: 1,
      doc: "max fraction of lines that repeat an earlier line",
    },
    dupParaFrac: {
      type: "number",
      default: 0.3,
      min: 0,
      max: 1,
      doc: "max fraction of paragraphs that repeat an earlier one",
    },
    dupLineCharFrac: {
      type: "number",
      default: 0.2,
      min: 0,
      max: 1,
      doc: "max share of characters in repeated lines",
    },
    dupParaCharFrac: {
      type: "number",
      default: 0.2,
      min: 0,
      max: 1,
      doc: "max share of characters in repeated paragraphs",
    },
    topNgramCharFrac: {
      type: "object",
      default: REPETITION_DEFAULTS.topNgramCharFrac,
      doc: "n → max character share of the most frequent n-gram",
    },
    dupNgramCharFrac: {
      type: "object",
      default: REPETITION_DEFAULTS.dupNgramCharFrac,
      doc: "n → max character share inside duplicated n-grams",
    },
    exemptDomains: {
      type: "strings",
      default: ["code"],
      doc: "meta.domain classes these rules skip (code repeats by nature)",
    },
  },
  block: (p) => ({
    name: "gopherRepetition",
    process(doc) {
      if (typeof doc.meta.domain === "string" && p.exemptDomains?.includes(doc.meta.domain)) return doc;
      const r = repetitionReason(doc.text, p);
      return r ? { drop: r } : doc;
    },
  }),
});
