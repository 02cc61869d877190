// Eval's implementation of the trainer's evaluator hook (src/train/evaluator.ts): every `eval.every`
// steps and at each stage's end the held-out loss (heldout.ts), and at the end of a long-context stage
// the checks of spec §6.2 (longContext.ts: report and heat map in runs/<name>/long-context/, the verdict
// in the step's metrics, a stop when `longContext.require` is set and a check failed). The CLI and the
// recipes pass it to `pretrain`; train itself never imports eval.
import type { PretrainEvaluator } from "../train/evaluator.js";
import { evaluateStep } from "./heldout.js";
import { judgeStage, type LongContextReport, planLongContextChecks, requiredStop } from "./longContext.js";

export interface PretrainEvaluatorOptions {
  /** Called with the checks' report (and a one-line summary) at the end of a long-context stage. */
  onLongContext?: (report: LongContextReport, line: string) => void;
}

/** The held-out loss and the long-context checks, as the trainer's evaluator. */
export function pretrainEvaluator(opts: PretrainEvaluatorOptions = {}): PretrainEvaluator {
  return {
    plan: (cfg, heldout) => planLongContextChecks(cfg, heldout),
    heldout: (s) => evaluateStep(s.model, s.cfg, s.heldout, s.stage, s.metrics, s.stageEnd),
    atStageEnd: (s) => {
      const r = judgeStage(
        s.model,
        s.cfg,
        s.heldout,
        s.stageIndex,
        s.metrics,
        s.runDir,
        s.history,
        opts.onLongContext,
      );
      return r ? { stop: requiredStop(s.cfg, r) } : null;
    },
  };
}
