// Every pipeline step by its type name. `herd data <cli>` runs one of them alone; pipeline files name
// them by `type`.
import { domainTagStep } from "../domains.js";
import { dirtyWordsStep } from "../filters/dirtyWords.js";
import { gopherQualityStep } from "../filters/heuristics.js";
import { klDivergenceStep } from "../filters/kl.js";
import { gopherRepetitionStep } from "../filters/repetition.js";
import { langIdStep } from "../langid.js";
import { mixStep } from "../mix.js";
import { domainBlocklistStep, piiStep } from "../pii.js";
import { qualityStep } from "../quality.js";
import { lineDedupStep } from "../steps/lineDedup.js";
import { minhashDedupStep } from "../steps/minhashDedup.js";
import { urlDedupStep } from "../steps/urlDedup.js";
import { tokenizeStep } from "../tokenize.js";
import type { Params, StepSpec } from "./types.js";

export const STEPS: StepSpec<Params>[] = [
  domainBlocklistStep,
  urlDedupStep,
  langIdStep,
  lineDedupStep,
  minhashDedupStep,
  gopherRepetitionStep,
  gopherQualityStep,
  dirtyWordsStep,
  klDivergenceStep,
  qualityStep,
  piiStep,
  domainTagStep,
  mixStep,
  tokenizeStep,
];

export function stepByType(type: string): StepSpec<Params> | undefined {
  return STEPS.find((s) => s.type === type);
}

export function stepByCli(cli: string): StepSpec<Params> | undefined {
  return STEPS.find((s) => s.cli === cli);
}
