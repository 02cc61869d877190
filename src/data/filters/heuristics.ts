// gopherQuality: length and symbol rules (Gopher's quality filter, plus a non-alphanumeric character
// ratio): word count, mean word length, hash/ellipsis symbols per word, bullet and ellipsis line shares,
// words with a letter, English stop words (only for documents whose meta.language is listed), and the
// share of characters that are neither letters, digits nor whitespace. Every threshold is a parameter.
import type { Document } from "../document.js";
import { defineStep } from "../pipeline/types.js";
import { lines, words } from "./text.js";

export interface HeuristicParams {
  minWords: number;
  maxWords: number;
  minMeanWordLength: number;
  maxMeanWordLength: number;
  maxSymbolWordRatio: number;
  maxBulletLinesFrac: number;
  maxEllipsisLinesFrac: number;
  minAlphaWordsFrac: number;
  minStopWords: number;
  stopWordLanguages: string[];
  maxNonAlnumFrac: number;
  exemptDomains: string[];
}

const STOP = new Set(["the", "be", "to", "of", "and", "that", "have", "with"]);
const BULLET = /^\s*[•●○■□▪▫‣⁃◦*\-–—]\s/;
const ELLIPSIS = /(\.\.\.|…)\s*$/;

/** The first rule the document breaks, or null. */
export function heuristicReason(doc: Document, p: HeuristicParams): string | null {
  if (typeof doc.meta.domain === "string" && p.exemptDomains.includes(doc.meta.domain)) return null;
  const text = doc.text;
  const w = words(text);
  if (w.length < p.minWords) return "too few words";
  if (w.length > p.maxWords) return "too many words";
  const mean = w.reduce((a, x) => a + x.length, 0) / w.length;
  if (mean < p.minMeanWordLength) return "words too short";
  if (mean > p.maxMeanWordLength) return "words too long";
  const hashes = (text.match(/#/g) ?? []).length;
  const ellipses = (text.match(/\.\.\.|…/g) ?? []).length;
  if ((hashes + ellipses) / w.length > p.maxSymbolWordRatio) return "symbol-to-word ratio";
  const ls = lines(text);
  if (ls.length > 0 && ls.filter((l) => BULLET.test(l)).length / ls.length > p.maxBulletLinesFrac)
    return "bullet lines";
  if (ls.length > 0 && ls.filter((l) => ELLIPSIS.test(l)).length / ls.length > p.maxEllipsisLinesFrac)
    return "ellipsis lines";
  if (w.filter((x) => /\p{L}/u.test(x)).length / w.length < p.minAlphaWordsFrac)
    return "words without letters";
  const lang = typeof doc.meta.language === "string" ? doc.meta.language : "en";
  if (p.stopWordLanguages.includes(lang) && p.minStopWords > 0) {
    let stops = 0;
    for (const x of w) if (STOP.has(x.toLowerCase()) && ++stops >= p.minStopWords) break;
    if (stops < p.minStopWords) return "too few stop words";
  }
  let other = 0;
  let nonSpace = 0;
  for (const ch of text) {
    if (/\s/.test(ch)) continue;
    nonSpace++;
    if (!/[\p{L}\p{N}\p{M}]/u.test(ch)) other++;
  }
  if (nonSpace > 0 && other / nonSpace > p.maxNonAlnumFrac) return "symbol characters";
  return null;
}

export const gopherQualityStep = defineStep<HeuristicParams>({
  type: "gopherQuality",
  cli: "heuristics",
  summary: "length and symbol-ratio rules (Gopher quality filter)",
  params: {
    minWords: { type: "integer", default: 50, min: 0, doc: "fewest whitespace words" },
    maxWords: { type: "integer", default: 100_000, min: 0, doc: "most whitespace words" },
    minMeanWordLength: { type: "number", default: 3, min: 0, doc: "shortest mean word length (characters)" },
    maxMeanWordLength: { type: "number", default: 10, min: 0, doc: "longest mean word length" },
    maxSymbolWordRatio: { type: "number", default: 0.1, min: 0, doc: "most '#' and ellipses per word" },
    maxBulletLinesFrac: {
      type: "number",
      default: 0.9,
      min: 0,
      max: 1,
      doc: "most lines starting with a bullet",
    },
    maxEllipsisLinesFrac: {
      type: "number",
      default: 0.3,
      min: 0,
      max: 1,
      doc: "most lines ending with an ellipsis",
    },
    minAlphaWordsFrac: {
      type: "number",
      default: 0.8,
      min: 0,
      max: 1,
      doc: "fewest words containing a letter",
    },
    minStopWords: {
      type: "integer",
      default: 2,
      min: 0,
      doc: "fewest English stop words (the, be, to, of, and, that, have, with)",
    },
    stopWordLanguages: {
      type: "strings",
      default: ["en"],
      doc: "meta.language values the stop-word rule applies to (no language: en)",
    },
    maxNonAlnumFrac: {
      type: "number",
      default: 0.25,
      min: 0,
      max: 1,
      doc: "most non-space characters that are not letters or digits",
    },
    exemptDomains: { type: "strings", default: ["code"], doc: "meta.domain classes these rules skip" },
  },
  block: (p) => ({
    name: "gopherQuality",
    process(doc) {
      const r = heuristicReason(doc, p);
      return r ? { drop: r } : doc;
    },
  }),
});
