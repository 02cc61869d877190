// Domain tagging into the paper's data-mix classes (§3.1.2): general knowledge, math & reasoning, code and
// multilingual. The paper uses trained classifiers; these are transparent rules with every list and
// threshold a parameter: a document not in `englishLanguages` (meta.language) is multilingual; a URL on a
// code or math host, or text whose code-line share or math-marker density passes its threshold, is code or
// math; everything else is general. The class goes to meta.domain (an existing one is kept unless
// `overwrite`).
import { defineStep } from "./pipeline/types.js";
import { hostMatches, urlHost } from "./url.js";

export const MIX_CLASSES = ["general", "math", "code", "multilingual"] as const;
export type MixClass = (typeof MIX_CLASSES)[number];

export interface DomainTagParams {
  englishLanguages: string[];
  codeHosts: string[];
  mathHosts: string[];
  minCodeLineFrac: number;
  minMathDensity: number;
  overwrite: boolean;
}

const CODE_LINE =
  /^\s*(def |class |import |from \S+ import |return\b|#include|function\b|const |let |var |public |private |static |fn |func |package |using |if \(|for \(|while \(|}|\{$|@\w+)|[;{]\s*$|=>|\)\s*:\s*$|^\s{4,}\S.*[()=]/;
const MATH_MARK =
  /\\(frac|sum|int|sqrt|alpha|beta|theta|lambda|pi|infty|leq|geq|cdot|mathbb|begin\{(equation|align)\})|\$[^$\n]{1,80}\$|[=<>≤≥±×÷∑∫√∞≈≠]|\b(theorem|lemma|proof|equation|integral|derivative|polynomial|prime|probability|solve|calculate)\b/gi;

/** Share of non-blank lines that look like code. */
export function codeLineFrac(text: string): number {
  const ls = text.split("\n").filter((l) => l.trim() !== "");
  if (ls.length === 0) return 0;
  return ls.filter((l) => CODE_LINE.test(l)).length / ls.length;
}

/** Math markers (TeX commands, inline $…$, relation symbols, math words) per 100 words. */
export function mathDensity(text: string): number {
  const words = text.split(/\s+/).filter((w) => w).length;
  if (words === 0) return 0;
  return ((text.match(MATH_MARK) ?? []).length * 100) / words;
}

export function domainOf(
  text: string,
  url: string | undefined,
  language: unknown,
  p: DomainTagParams,
): MixClass {
  if (typeof language === "string" && !p.englishLanguages.includes(language)) return "multilingual";
  const host = url ? urlHost(url) : null;
  if (host && p.codeHosts.some((d) => hostMatches(host, d))) return "code";
  if (host && p.mathHosts.some((d) => hostMatches(host, d))) return "math";
  if (codeLineFrac(text) >= p.minCodeLineFrac) return "code";
  if (mathDensity(text) >= p.minMathDensity) return "math";
  return "general";
}

export const domainTagStep = defineStep<DomainTagParams>({
  type: "domainTag",
  cli: "tag",
  summary: "tag documents into the mix classes general / math / code / multilingual",
  params: {
    englishLanguages: {
      type: "strings",
      default: ["en"],
      doc: "meta.language values that are not multilingual",
    },
    codeHosts: {
      type: "strings",
      default: [
        "github.com",
        "gitlab.com",
        "bitbucket.org",
        "stackoverflow.com",
        "docs.python.org",
        "developer.mozilla.org",
      ],
      doc: "hosts whose pages are code",
    },
    mathHosts: {
      type: "strings",
      default: [
        "arxiv.org",
        "mathoverflow.net",
        "math.stackexchange.com",
        "proofwiki.org",
        "mathworld.wolfram.com",
      ],
      doc: "hosts whose pages are math & reasoning",
    },
    minCodeLineFrac: {
      type: "number",
      default: 0.35,
      min: 0,
      max: 1,
      doc: "share of code-like lines that makes a document code",
    },
    minMathDensity: {
      type: "number",
      default: 4,
      min: 0,
      doc: "math markers per 100 words that make a document math",
    },
    overwrite: { type: "boolean", default: false, doc: "replace a meta.domain the document already has" },
  },
  block: (p) => ({
    name: "domainTag",
    process(doc) {
      const has =
        typeof doc.meta.domain === "string" && (MIX_CLASSES as readonly string[]).includes(doc.meta.domain);
      if (!has || p.overwrite) doc.meta.domain = domainOf(doc.text, doc.url, doc.meta.language, p);
      return doc;
    },
  }),
});
