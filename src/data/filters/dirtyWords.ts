// dirtyWords (C4-style "dirty word" counting, which the paper uses to catch adult sites that block lists
// miss): counts matches against the LDNOOBW list for the document's language (meta.language, else
// `defaultLanguage`) and drops the document when the count exceeds `maxCount` or the share of matching
// words exceeds `maxFraction`. Lists ship in src/data/wordlists/ldnoobw (CC BY 4.0, 28 languages);
// multi-word entries match word sequences; for languages written without spaces (zh, ja, th, ko) entries
// match as substrings.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { dataAsset } from "../assets.js";
import { defineStep } from "../pipeline/types.js";

export interface DirtyWordParams {
  maxCount: number;
  maxFraction: number;
  defaultLanguage: string;
  /** Extra words per language, added to the shipped lists. */
  extraWords: Record<string, string[]>;
}

const NO_SPACES = new Set(["zh", "ja", "th", "ko"]);

export interface WordList {
  language: string;
  phrases: Set<string>;
  maxWords: number;
  substrings: string[];
}

const cache = new Map<string, WordList | null>();

/** The shipped list for a language code (e.g. "en", "de"), or null if there is none. */
export function loadWordList(language: string, extra: string[] = []): WordList | null {
  const key = `${language}\u0000${extra.join("\u0000")}`;
  if (cache.has(key)) return cache.get(key)!;
  const file = join(dataAsset("wordlists", "ldnoobw"), language);
  const entries = existsSync(file) ? readFileSync(file, "utf8").split("\n") : [];
  const all = [...entries, ...extra].map((e) => e.trim().toLowerCase()).filter((e) => e.length > 0);
  const list: WordList | null =
    all.length === 0
      ? null
      : {
          language,
          phrases: new Set(all.map((e) => e.split(/\s+/).join(" "))),
          maxWords: Math.max(...all.map((e) => e.split(/\s+/).length)),
          substrings: NO_SPACES.has(language) ? all : [],
        };
  cache.set(key, list);
  return list;
}

/** Matches of the list in the text, and the number of words. */
export function countDirtyWords(text: string, list: WordList): { count: number; words: number } {
  const lower = text.toLowerCase();
  if (list.substrings.length > 0) {
    let count = 0;
    for (const s of list.substrings) {
      let i = lower.indexOf(s);
      while (i >= 0) {
        count++;
        i = lower.indexOf(s, i + s.length);
      }
    }
    return { count, words: Math.max(1, [...lower.replace(/\s/g, "")].length) };
  }
  const w = lower.match(/[\p{L}\p{N}\p{M}'’-]+/gu) ?? [];
  let count = 0;
  for (let i = 0; i < w.length; i++) {
    let phrase = "";
    for (let n = 1; n <= list.maxWords && i + n <= w.length; n++) {
      phrase = n === 1 ? w[i]! : `${phrase} ${w[i + n - 1]}`;
      if (list.phrases.has(phrase)) {
        count++;
        break;
      }
    }
  }
  return { count, words: w.length };
}

export const dirtyWordsStep = defineStep<DirtyWordParams>({
  type: "dirtyWords",
  cli: "dirty-words",
  summary: "drop documents with too many words from the LDNOOBW lists (C4-style)",
  params: {
    maxCount: { type: "integer", default: 2, min: 0, doc: "most list matches a document may have" },
    maxFraction: { type: "number", default: 0.01, min: 0, max: 1, doc: "most list matches per word" },
    defaultLanguage: {
      type: "string",
      default: "en",
      doc: "list used when meta.language is absent or has no list",
    },
    extraWords: { type: "object", default: {}, doc: "language → extra words or phrases" },
  },
  block: (p) => ({
    name: "dirtyWords",
    process(doc) {
      const lang = typeof doc.meta.language === "string" ? doc.meta.language : p.defaultLanguage;
      const list =
        loadWordList(lang, p.extraWords[lang]) ??
        loadWordList(p.defaultLanguage, p.extraWords[p.defaultLanguage]);
      if (!list) return doc;
      const { count, words } = countDirtyWords(doc.text, list);
      if (count > p.maxCount) return { drop: "dirty words" };
      if (words > 0 && count / words > p.maxFraction) return { drop: "dirty word fraction" };
      return doc;
    },
  }),
});
