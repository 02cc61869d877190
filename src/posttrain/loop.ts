// The loop SFT, DPO and the reward model share, on pre-training's machinery (src/train/): AdamW with
// global-norm clipping (PretrainOptimizer, over an explicit list of trainable tensors: all weights by
// default, LoRA's adapters when it passes them), warm-up + cosine to lr/10 (schedule.ts), resumable
// checkpoints (checkpoint.ts: runDir/checkpoints/step-N/, the newest resumed, the trajectory unchanged;
// a run that trains no model weight — LoRA on a frozen base — writes no weights there, only its extra
// state's files: the adapter, beside the optimiser state, step and data position),
// metrics.jsonl (one JSON line per step) and a progress callback. Items (packed rows, pairs) are visited
// in a seeded order per epoch; step s takes items [k·batch, (k+1)·batch) of epoch s / stepsPerEpoch's
// order, so a resumed run sees exactly what an uninterrupted one would. A non-finite loss or gradient
// norm stops the run before the update, naming the step.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../core/rng.js";
import { writeFileAtomic } from "../io/atomic.js";
import type { Llama } from "../model/llama.js";
import type { Tensor } from "../tensor/tensor.js";
import { listCheckpoints, loadCheckpoint, removeStaleTemps, saveCheckpoint } from "../train/checkpoint.js";
import { configChanges } from "../train/config.js";
import { MetricsLog, type StepMetrics } from "../train/metrics.js";
import { PretrainOptimizer } from "../train/optimizer.js";
import { cosineLR } from "../train/schedule.js";
import { type CommonConfig, TRAIN_KEYS } from "./config.js";

export interface PostStep {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number;
  /** Tokens through the model this step (all rows, padding included). */
  tokens: number;
  tokensPerSec: number;
  /** Seconds left at this run's rate. */
  eta: number;
  /** The method's metrics (DPO: TRL's rewards/… and logps/…; RM: accuracy). */
  [metric: string]: number;
}

export interface StepResult {
  loss: number;
  tokens: number;
  metrics?: Record<string, number>;
}

/** Trainable tensors that are not model weights (the reward head, LoRA's adapters), saved in each checkpoint. */
export interface ExtraState {
  params: Tensor[];
  /** Write the tensors into a checkpoint folder (file names of its own). */
  save: (folder: string) => Promise<void>;
  /** Read them back from a checkpoint folder. */
  load: (folder: string) => void | Promise<void>;
  /** Called before each optimiser step's gradients (0-based step; LoRA's dropout masks follow it). */
  beginStep?: (step: number) => void;
}

export interface LoopOptions {
  /**
   * Trainable model weights (default: every weight of the model, made trainable); [] with `extra`: only
   * those, and checkpoints then hold no model weights (the base is frozen: LoRA).
   */
  params?: Tensor[];
  /** More trainable tensors, written into each checkpoint folder. */
  extra?: ExtraState;
  /** More settings for run.json (LoRA's options, the base's identity): a resume with others is refused. */
  settings?: Record<string, unknown>;
  onStart?: (resumedFrom: number, totalSteps: number) => void;
  onStep?: (m: PostStep) => void;
  onCheckpoint?: (path: string, step: number) => void;
}

export interface LoopSpec<T> {
  runDir: string;
  model: Llama;
  cfg: CommonConfig & { lr: number };
  items: readonly T[];
  /** Gradients of one step's items into the params' .grad (accumulated over micro-batches inside). */
  step: (items: T[]) => StepResult;
  /** The method's own extra state (the reward head); LoopOptions.extra is the caller's (LoRA). */
  extra?: ExtraState;
  /** What the run's items are made of (e.g. a data hash): a resume with another is refused. */
  fingerprint?: string;
}

export function stepsOf(cfg: CommonConfig, items: number): { perEpoch: number; total: number } {
  const perEpoch = Math.ceil(items / cfg.batch);
  return { perEpoch, total: cfg.steps ?? cfg.epochs * perEpoch };
}

/** The items of global step `s` (0-based). */
export function itemsOfStep<T>(
  items: readonly T[],
  cfg: CommonConfig,
  s: number,
): { epoch: number; batch: T[] } {
  const { perEpoch } = stepsOf(cfg, items.length);
  const epoch = Math.floor(s / perEpoch);
  const order = new Rng(cfg.seed * 2654435761 + epoch).permutation(items.length);
  const k = s % perEpoch;
  const batch = [...order.subarray(k * cfg.batch, (k + 1) * cfg.batch)].map((i) => items[i]!);
  return { epoch, batch };
}

/** Train (or resume in runDir) for the config's steps; returns the per-step history of this process. */
export async function trainLoop<T>(
  spec: LoopSpec<T>,
  opts: LoopOptions = {},
): Promise<{ history: PostStep[]; resumedFrom: number }> {
  const { runDir, model, cfg } = spec;
  const ckDir = join(runDir, "checkpoints");
  mkdirSync(runDir, { recursive: true });
  removeStaleTemps(ckDir);
  const extras = [spec.extra, opts.extra].filter((e): e is ExtraState => e !== undefined);
  const extra: ExtraState | undefined =
    extras.length === 0
      ? undefined
      : {
          params: extras.flatMap((e) => e.params),
          save: async (folder) => {
            for (const e of extras) await e.save(folder);
          },
          load: async (folder) => {
            for (const e of extras) await e.load(folder);
          },
          beginStep: (step) => {
            for (const e of extras) e.beginStep?.(step);
          },
        };
  const frozen = opts.params !== undefined && opts.params.length === 0;
  const saved = frozen ? null : model;
  const params = [...(opts.params ?? model.trainable().parameters()), ...(extra?.params ?? [])];
  const opt = new PretrainOptimizer(params, {
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weightDecay: cfg["weight-decay"],
    clipNorm: cfg["clip-norm"],
  });
  const { total } = stepsOf(cfg, spec.items.length);
  const sched = {
    peak: cfg.lr,
    warmupSteps: cfg["warmup-steps"],
    decaySteps: Math.max(total - 1, 1),
    floor: cfg.lr / 10,
  };
  const metrics = new MetricsLog(join(runDir, "metrics.jsonl"));
  let step = 0;
  let tokens = 0;
  const newest = listCheckpoints(ckDir).at(-1);
  const settings: Record<string, unknown> = {
    items: spec.items.length,
    fingerprint: spec.fingerprint ?? null,
    ...opts.settings,
  };
  for (const k of TRAIN_KEYS) settings[k] = (cfg as Record<string, unknown>)[k];
  checkResume(runDir, settings, newest !== undefined);
  try {
    if (newest) {
      const state = await loadCheckpoint(newest.path, saved, opt);
      if (extra) await extra.load(newest.path);
      step = state.step;
      tokens = state.tokens;
    }
    metrics.truncate(step);
    const resumedFrom = step;
    opts.onStart?.(resumedFrom, total);
    const history: PostStep[] = [];
    let secs = 0;
    let tokensThisRun = 0;
    while (step < total) {
      const t0 = performance.now();
      const { epoch, batch } = itemsOfStep(spec.items, cfg, step);
      const lr = cosineLR(sched, step);
      extra?.beginStep?.(step);
      const r = spec.step(batch);
      const gradNorm = opt.clip();
      if (!Number.isFinite(r.loss) || !Number.isFinite(gradNorm)) {
        opt.zeroGrad();
        throw new Error(
          `${runDir}: diverged at step ${step + 1} (loss ${r.loss}, gradient norm ${gradNorm}, lr ${lr.toExponential(2)}); ` +
            `stopped before the update; the newest checkpoint is ${listCheckpoints(ckDir).at(-1)?.path ?? "none"}. Lower --lr`,
        );
      }
      opt.apply(lr);
      opt.zeroGrad();
      secs += (performance.now() - t0) / 1000;
      step++;
      tokens += r.tokens;
      tokensThisRun += r.tokens;
      const m: PostStep = {
        step,
        totalSteps: total,
        epoch,
        loss: r.loss,
        lr,
        gradNorm,
        tokens,
        tokensPerSec: tokensThisRun / secs,
        eta: (secs / (step - resumedFrom)) * (total - step),
        ...r.metrics,
      };
      metrics.append(m as unknown as StepMetrics);
      history.push(m);
      opts.onStep?.(m);
      if (step % cfg["checkpoint-every"] === 0 || step === total) {
        const path = await saveCheckpoint(
          ckDir,
          saved,
          opt,
          { step, tokens, loader: { epoch, cursor: step }, rng: cfg.seed },
          cfg["keep-checkpoints"],
          undefined,
          extra?.save,
        );
        opts.onCheckpoint?.(path, step);
      }
    }
    writeFileAtomic(join(runDir, "done.json"), `${JSON.stringify({ steps: total, tokens })}\n`);
    return { history, resumedFrom };
  } finally {
    opt.dispose();
  }
}

/**
 * runDir/run.json records the settings and data of the run; a resume (there are checkpoints) with other
 * ones is refused, naming each changed field, since it would not follow the interrupted run's trajectory.
 */
function checkResume(runDir: string, settings: Record<string, unknown>, resuming: boolean): void {
  const path = join(runDir, "run.json");
  if (resuming && existsSync(path)) {
    const old = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
    const changed = configChanges(old, settings);
    if (changed.length > 0)
      throw new Error(
        `${path}: the run was started with other settings or data (${changed.join("; ")}); resume with the same ones, or use a new run folder`,
      );
  }
  writeFileAtomic(path, `${JSON.stringify(settings, null, 2)}\n`);
}

/** Whether runDir holds a finished run (done.json). */
export function finished(runDir: string): boolean {
  return existsSync(join(runDir, "done.json"));
}
