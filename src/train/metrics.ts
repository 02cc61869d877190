// The JSONL metrics log of a run (one line per optimiser step). On resume the lines past the
// checkpoint's step are dropped (rewritten atomically), so the log reads like an unbroken run.
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { writeFileAtomic } from "../io/atomic.js";

export interface StepMetrics {
  step: number;
  stage: string;
  kind: string;
  loss: number;
  lr: number;
  gradNorm: number;
  /** Tokens trained on so far (the whole run). */
  tokens: number;
  /** Training tokens per second of training-step time since the process started (evaluation excluded). */
  tokensPerSec: number;
  /**
   * Model FLOPs utilisation since the process started: training FLOPs per second of training-step time
   * over the CPU peak (mfu.ts). Held-out evaluation, long-context checks, checkpoints and plots are not
   * counted in either rate; they are in `eta`, which runs on the wall clock.
   */
  mfu: number;
  seqLen: number;
  batch: number;
  /** Seconds left at the current speed (wall clock, everything included). */
  eta: number;
  totalSteps: number;
  /**
   * The step's loss or gradient norm was NaN or infinite (written as null in the JSON): `skipped` when
   * its update was dropped (config nonFinite.action "skip"), `diverged` on the step that stopped the run.
   */
  skipped?: true;
  diverged?: true;
  /** Held-out loss at valSeqLen (every eval.every steps and at stage ends; src/eval/heldout.ts, set by the evaluator). */
  valLoss?: number;
  valSeqLen?: number;
  /** The verdict of the checks at the end of a long-context stage (src/eval/longContext.ts, via the evaluator). */
  longContext?: {
    passed: boolean;
    shortLossBefore: number | null;
    shortLossAfter: number;
    shortLossRatio: number | null;
    recovered: boolean;
    niahAccuracy: number;
  };
}

export class MetricsLog {
  constructor(readonly path: string) {}

  /** Keep only the lines of steps ≤ `step`. */
  truncate(step: number): void {
    const kept = this.read().filter((m) => m.step <= step);
    writeFileAtomic(this.path, kept.map((m) => `${JSON.stringify(m)}\n`).join(""));
  }

  append(m: StepMetrics): void {
    appendFileSync(this.path, `${JSON.stringify(m)}\n`);
  }

  read(): StepMetrics[] {
    if (!existsSync(this.path)) return [];
    return readFileSync(this.path, "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as StepMetrics];
        } catch {
          return []; // a line cut by a kill
        }
      });
  }
}
