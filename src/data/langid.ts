// Language identification over 176 languages with fastText's own lid.176 model (the paper's §3.1.1
// multilingual pipeline), run in WebAssembly by the `fasttext.wasm.js` package, which ships the model.
// `langId` sets meta.language (the model's code: en, de, zh, ...) and meta.language_score, and drops a
// document whose top score is below its language's threshold (`thresholds[lang]`, else `minScore`) or,
// when `languages` is non-empty, whose language is not listed. Documents already tagged with a class in
// `exemptDomains` (code, by default: its own pipeline in the paper) are labelled but never dropped.
import { getLIDModel } from "fasttext.wasm.js";
import { defineStep } from "./pipeline/types.js";

export interface LangIdParams {
  minScore: number;
  thresholds: Record<string, number>;
  languages: string[];
  maxChars: number;
  exemptDomains: string[];
}

export interface LanguageGuess {
  language: string;
  score: number;
}

// The package's .d.ts files use extension-less relative imports that NodeNext resolution cannot follow,
// so the two calls used here are typed by hand.
interface Prediction {
  size(): number;
  get(i: number): [number, string];
  delete?(): void;
}
interface Model {
  predict(text: string, k: number, threshold: number): Prediction;
}
const loadLid = getLIDModel as unknown as () => Promise<{ load(): Promise<Model> }>;
let model: Promise<Model> | undefined;

/** The lid.176 model, loaded once per thread. */
export function lid176(): Promise<Model> {
  model ??= loadLid().then((m) => m.load());
  return model;
}

/** The top `k` languages of a text (newlines are spaces to fastText; long texts are cut at maxChars). */
export async function identifyLanguage(text: string, k = 1, maxChars = 10000): Promise<LanguageGuess[]> {
  const m = await lid176();
  const v = m.predict(text.slice(0, maxChars).replace(/\s+/g, " ").trim(), k, 0);
  const out: LanguageGuess[] = [];
  for (let i = 0; i < v.size(); i++) {
    const [score, label] = v.get(i);
    out.push({ language: label.replace(/^__label__/, ""), score });
  }
  v.delete?.();
  return out;
}

export const langIdStep = defineStep<LangIdParams>({
  type: "langId",
  cli: "langid",
  summary: "identify the language (fastText lid.176) and drop low-confidence documents",
  params: {
    minScore: {
      type: "number",
      default: 0.65,
      min: 0,
      max: 1,
      doc: "lowest top-language score kept (languages without their own threshold)",
    },
    thresholds: { type: "object", default: {}, doc: 'language → its own lowest score, e.g. {"en": 0.5}' },
    languages: { type: "strings", default: [], doc: "keep only these languages (empty: all)" },
    maxChars: { type: "integer", default: 10000, min: 1, doc: "characters of each document the model reads" },
    exemptDomains: {
      type: "strings",
      default: ["code"],
      doc: "meta.domain classes labelled but never dropped (code has its own pipeline)",
    },
  },
  block: async (p) => {
    await lid176();
    return {
      name: "langId",
      async process(doc) {
        const [top] = await identifyLanguage(doc.text, 1, p.maxChars);
        if (!top) return { drop: "no language" };
        doc.meta.language = top.language;
        doc.meta.language_score = Math.round(top.score * 10000) / 10000;
        if (typeof doc.meta.domain === "string" && p.exemptDomains.includes(doc.meta.domain)) return doc;
        if (top.score < (p.thresholds[top.language] ?? p.minScore))
          return { drop: "language score below threshold" };
        if (p.languages.length > 0 && !p.languages.includes(top.language))
          return { drop: "language not kept" };
        return doc;
      },
    };
  },
});
