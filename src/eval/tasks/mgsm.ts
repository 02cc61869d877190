// MGSM as lm-evaluation-harness's `mgsm_native_cot`: each of the 11 languages a subtask
// (mgsm_native_cot_de, …), 0-shot, the question after the language's own "Question:" and followed by its
// "Step-by-Step Answer:", greedy until the next question prefix; strict-match on the language's "The
// answer is N" and flexible-extract (the last number); exact match ignoring case and punctuation.
// The group row averages the languages, as the paper does (spec §10.2).
import { readMgsmTsv } from "../datasets.js";
import { buildTurns } from "../prompt.js";
import type { TaskSpec } from "../task.js";
import { dataPath, FLEXIBLE, generateItem, limited, regexFilter } from "./common.js";

/** Per language: question prefix, answer header, the strict-match pattern (tasks/mgsm/native_cot). */
export const MGSM_LANGUAGES: Record<string, [string, string, string]> = {
  bn: ["প্রশ্ন: ", "ধাপে ধাপে উত্তর:", "The answer is (\\-?[0-9\\.\\,]+)"],
  de: ["Frage: ", "Schritt-für-Schritt-Antwort:", "Die Antwort lautet (\\-?[0-9\\.\\,]+)"],
  en: ["Question: ", "Step-by-Step Answer:", "The answer is (\\-?[0-9\\.\\,]+)"],
  es: ["Pregunta: ", "Respuesta paso a paso:", "La respuesta es (\\-?[0-9\\.\\,]+)"],
  fr: ["Question : ", "Réponse étape par étape :", "La réponse est (\\-?[0-9\\.\\,]+)"],
  ja: ["問題： ", "ステップごとの答え:", "答えは(\\-?[0-9\\.\\,]+)です。"],
  ru: ["Задача: ", "Пошаговоерешение:", "Ответ — (\\-?[0-9\\.\\,]+)"],
  sw: ["Swali: ", "Jibu la Hatua kwa Hatua:", "Jibu ni (\\-?[0-9\\.\\,]+)"],
  te: ["ప్రశ్న: ", "దశలవారీగా సమాధానం:", "సమాధానం (\\-?[0-9\\.\\,]+)"],
  th: ["โจทย์: ", "คำตอบทีละขั้นตอน:", "คำตอบคือ (\\-?[0-9\\.\\,]+)"],
  zh: ["问题： ", "逐步解答:", "答案是 (\\-?[0-9\\.\\,]+)。"],
};

export const mgsmNativeCot: TaskSpec = {
  name: "mgsm_native_cot",
  summary: "MGSM, 0-shot chain of thought with native prompts, 11 languages averaged",
  group: true,
  build: (ctx) =>
    Object.entries(MGSM_LANGUAGES).map(([lang, [prefix, header, strict]]) => {
      const all = readMgsmTsv(dataPath(ctx, "mgsm", `mgsm_${lang}.tsv`));
      const gen = { until: [prefix.trimEnd(), "</s>", "<|im_end|>"], maxNewTokens: 256 };
      return {
        name: `mgsm_native_cot_${lang}`,
        original: all.length,
        nShot: 0,
        version: 4,
        metrics: { "exact_match,strict-match": true, "exact_match,flexible-extract": true },
        config: { output_type: "generate_until", generation_kwargs: gen },
        items: limited(all, ctx).map((d, i) =>
          generateItem(
            i,
            buildTurns({ shots: [], text: `${prefix}${d.question}\n${header}` }),
            d.answerNumber,
            gen,
            [regexFilter("strict-match", strict), FLEXIBLE],
            { ignoreCase: true, ignorePunctuation: true },
          ),
        ),
      };
    }),
};
