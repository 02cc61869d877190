// Every pipeline step by its type name. `herd data <cli>` runs one of them alone; pipeline files name
// them by `type`.
import { lineDedupStep } from "../steps/lineDedup.js";
import { minhashDedupStep } from "../steps/minhashDedup.js";
import { urlDedupStep } from "../steps/urlDedup.js";
import type { Params, StepSpec } from "./types.js";

export const STEPS: StepSpec<Params>[] = [urlDedupStep, minhashDedupStep, lineDedupStep];

export function stepByType(type: string): StepSpec<Params> | undefined {
  return STEPS.find((s) => s.type === type);
}

export function stepByCli(cli: string): StepSpec<Params> | undefined {
  return STEPS.find((s) => s.cli === cli);
}
