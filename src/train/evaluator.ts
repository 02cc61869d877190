// The trainer's evaluation hook, the way torchtitan hands its trainer a Validator: train decides *when*
// to evaluate (before the first step, after every step, at the end of each stage) and what a result
// means for the run (a non-finite held-out loss stops it; a verdict may ask it to stop), but not *how*.
// The evaluation itself (held-out loss, the long-context checks) is eval's, a later stage that train
// never imports: whoever runs training (the CLI, a recipe) passes eval's implementation in as
// `PretrainOptions.evaluator` (src/eval/pretrainEvaluator.ts). Without one a run trains exactly the same
// (evaluation never changes the weights or the data order) and its metrics carry no evaluation fields.
import type { Llama } from "../model/llama.js";
import type { PretrainConfig, StageConfig } from "./config.js";
import type { HeldoutSet } from "./heldoutSplit.js";
import type { StepMetrics } from "./metrics.js";

/** What the trainer hands the evaluator after a step. */
export interface EvalStep {
  model: Llama;
  cfg: PretrainConfig;
  /** The run's held-out split (the loader never reads it); may be empty (eval.heldout 0). */
  heldout: HeldoutSet;
  runDir: string;
  stage: StageConfig;
  stageIndex: number;
  /** Whether this step is the stage's last. */
  stageEnd: boolean;
  /** The step's record, not yet in metrics.jsonl: the evaluator adds its fields to it. */
  metrics: StepMetrics;
  /** The records of metrics.jsonl so far (this step's not among them). */
  history: () => StepMetrics[];
}

/** The outcome of the stage-end evaluation as far as the run is concerned. */
export interface StageVerdict {
  /**
   * Stop the run with this message, after the step's record and loss curve are written and before the
   * stage's last checkpoint (so a rerun repeats the stage's tail and the evaluation).
   */
  stop: string | null;
}

export interface PretrainEvaluator {
  /** Before the first step: throw when an evaluation the config asks for could not run (at once, not hours in). */
  plan?(cfg: PretrainConfig, heldout: HeldoutSet): void;
  /** After every step (the periodic evaluation, e.g. the held-out loss into `metrics.valLoss`). */
  heldout?(s: EvalStep): void;
  /** After `heldout`, at a stage's last step (e.g. the long-context checks). */
  atStageEnd?(s: EvalStep): StageVerdict | null;
}
