// `--steps-scale F`: the same recipe, shortened (or lengthened) by a factor, so a run can be tried end to
// end in a minute before committing to the whole length (the end-to-end test of `npm start` runs the demo
// at 0.02). What is a share of a stage scales — stage steps, warm-up, the annealing average's interval —
// and so do ramp thresholds (in tokens), so each stage keeps its shape over a proportional share of its
// steps. Stage steps round to the nearest integer and never fall below 1. Checkpoint and held-out
// evaluation intervals do not scale: they are about time and safety, and a short run still checkpoints
// and evaluates at every stage's end.
// The scaled config is what the run records in its config.json, so a resume must pass the same factor.
import type { PretrainConfig } from "./config.js";

export const STEPS_SCALE_RANGE = { min: 1e-4, max: 100 } as const;

/** Parse a command-line factor: a finite number in STEPS_SCALE_RANGE, else an error naming the flag. */
export function parseStepsScale(text: string, flag = "--steps-scale"): number {
  const f = Number(text);
  if (!Number.isFinite(f) || f < STEPS_SCALE_RANGE.min || f > STEPS_SCALE_RANGE.max)
    throw new Error(
      `${flag} must be a number in [${STEPS_SCALE_RANGE.min}, ${STEPS_SCALE_RANGE.max}] (got '${text}')`,
    );
  return f;
}

const count = (n: number, f: number) => Math.max(1, Math.round(n * f));

/** `cfg` with every step count and ramp threshold multiplied by `f` (f = 1 returns an equal config). */
export function scaleSteps(cfg: PretrainConfig, f: number): PretrainConfig {
  if (f === 1) return cfg;
  return {
    ...cfg,
    schedule: { ...cfg.schedule, warmupSteps: Math.round(cfg.schedule.warmupSteps * f) },
    stages: cfg.stages.map((s) => {
      let prev = 0;
      return {
        ...s,
        steps: count(s.steps, f),
        ramp: s.ramp.map((r) => {
          // Thresholds must keep rising after rounding.
          const afterTokens = Math.max(prev + 1, Math.round(r.afterTokens * f));
          prev = afterTokens;
          return { ...r, afterTokens };
        }),
      };
    }),
    checkpoint: { ...cfg.checkpoint, annealEvery: count(cfg.checkpoint.annealEvery, f) },
  };
}
