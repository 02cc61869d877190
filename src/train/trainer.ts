// The pre-training loop (spec §6): stages run in order (initial → long-context steps → annealing),
// each with its sequence length, global batch (reached by gradient accumulation over micro-batches) and
// data; a stage's `ramp` changes batch and sequence length when the stage's tokens cross a threshold
// (spec §6.1). The learning rate is warm-up + cosine over the non-annealing steps, then linear to 0 over
// the annealing stage, whose weights every `checkpoint.annealEvery` steps (and at its last step) are
// folded into a running Polyak average (polyak.ts) that becomes final/. Every `checkpoint.every` steps
// and at each stage's end a checkpoint is written; a run started again in the same folder resumes from
// the newest one and follows exactly the trajectory of an uninterrupted run. Each metrics record
// carries the MFU against the measured CPU peak (mfu.ts). Evaluation (held-out loss, the long-context
// checks) is not train's: the caller passes an evaluator (evaluator.ts; eval's pretrainEvaluator) that
// the loop calls after each step and at each stage's end; train never imports eval.
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { basename, join } from "node:path";
import { getBackend } from "../backends/index.js";
import { Rng } from "../core/rng.js";
import { writeFileAtomic } from "../io/atomic.js";
import { writeHFCheckpoint } from "../model/checkpoint/hf.js";
import { type LlamaConfig, toHFConfig, validateConfig } from "../model/config.js";
import { Llama } from "../model/llama.js";
import { preset } from "../model/presets.js";
import { initWeights } from "../model/weights.js";
import { backward } from "../tensor/tape.js";
import { scope } from "../tensor/tensor.js";
import {
  firstNonFinite,
  listCheckpoints,
  loadCheckpoint,
  removeStaleTemps,
  saveCheckpoint,
  type TrainerState,
} from "./checkpoint.js";
import { configChanges, loadConfig, type PretrainConfig, type StageConfig, stageShape } from "./config.js";
import type { PretrainEvaluator } from "./evaluator.js";
import { heldoutSplit, loaderEnds } from "./heldoutSplit.js";
import { type Batch, PackedLoader } from "./loader.js";
import { writeLossCurve } from "./lossCurve.js";
import { MetricsLog, type StepMetrics } from "./metrics.js";
import { type RunPeak, runPeak, trainingFlopsPerToken } from "./mfu.js";
import { PretrainOptimizer } from "./optimizer.js";
import { PolyakAverage } from "./polyak.js";
import { cosineLR, linearToZero } from "./schedule.js";

export interface PretrainOptions {
  /** Called once before the first step with the peak MFU is measured against and the resume step. */
  onStart?: (peak: RunPeak, resumedFrom: number) => void;
  /**
   * Resume although the config differs from the run folder's config.json (not in the model's
   * dimensions, which the checkpoint's tensors fix). Without it a changed config is refused.
   */
  allowConfigChange?: boolean;
  /** Called with a warning line (a corrupt checkpoint passed over); default: written to stderr. */
  onWarning?: (line: string) => void;
  /** Called after every optimiser step. */
  onStep?: (m: StepMetrics) => void;
  /** Called when a checkpoint folder is written. */
  onCheckpoint?: (path: string, step: number) => void;
  /**
   * The evaluation run after each step and at each stage's end (eval's pretrainEvaluator: held-out loss,
   * long-context checks); none: the run trains alike and its metrics have no evaluation fields.
   */
  evaluator?: PretrainEvaluator;
}

export interface PretrainResult {
  model: Llama;
  runDir: string;
  /** Step the run started from (0 for a fresh run, the checkpoint's step when resumed). */
  resumedFrom: number;
  history: StepMetrics[];
  /** The f32 peak MFU is measured against (peak.json in the run folder). */
  peak: RunPeak;
}

/** The model config of a pretrain config: the preset with its overrides, validated. */
export function modelConfig(cfg: PretrainConfig): LlamaConfig {
  return validateConfig({ ...preset(cfg.model.preset), ...cfg.model.overrides } as LlamaConfig, "model");
}

/**
 * One optimiser step over micro-batches: each micro-batch's mean loss is back-propagated with weight
 * (its counted targets / all counted targets), so the gradient equals that of one batch of them all.
 * Returns the step's mean loss and the gradient norm before clipping. When either is NaN or infinite
 * the update is not made (`finite` false): the weights and the optimiser state stay as they were.
 */
export function trainStep(
  model: Llama,
  opt: PretrainOptimizer,
  micro: Batch[],
  lr: number,
): { loss: number; gradNorm: number; finite: boolean } {
  const counts = micro.map((b) => b.targets.reduce((n, t) => n + (t === -100 ? 0 : 1), 0));
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) throw new Error("trainStep: no target in the batch");
  let lossSum = 0;
  micro.forEach((b, i) => {
    if (counts[i] === 0) return;
    scope(() => {
      const loss = model.loss(b.ids, b.targets, { batch: b.batch, docIds: b.docIds });
      lossSum += loss.item() * counts[i]!;
      backward(loss, Float32Array.of(counts[i]! / total));
    });
  });
  const loss = lossSum / total;
  const gradNorm = opt.clip();
  const finite = Number.isFinite(loss) && Number.isFinite(gradNorm);
  if (finite) opt.apply(lr);
  opt.zeroGrad();
  return { loss, gradNorm, finite };
}

/** Learning rate of global step `step` (0-based) under the config's stages and schedule. */
export function learningRate(cfg: PretrainConfig, step: number): number {
  const main = cfg.stages.filter((s) => s.kind !== "annealing").reduce((n, s) => n + s.steps, 0);
  const cos = {
    peak: cfg.schedule.peakLR,
    warmupSteps: cfg.schedule.warmupSteps,
    decaySteps: Math.max(main - 1, cfg.schedule.warmupSteps + 1),
    floor: cfg.schedule.floorLR,
  };
  let start = 0;
  for (const s of cfg.stages) {
    if (step < start + s.steps) {
      if (s.kind !== "annealing") return cosineLR(cos, step - annealedBefore(cfg, start));
      return linearToZero(cosineLR(cos, Math.max(0, main - 1)), s.steps, step - start);
    }
    start += s.steps;
  }
  return 0;
}

function annealedBefore(cfg: PretrainConfig, globalStart: number): number {
  let n = 0;
  let start = 0;
  for (const s of cfg.stages) {
    if (start >= globalStart) break;
    if (s.kind === "annealing") n += s.steps;
    start += s.steps;
  }
  return n;
}

function stageAt(cfg: PretrainConfig, step: number): { stage: StageConfig; index: number; start: number } {
  let start = 0;
  for (let index = 0; index < cfg.stages.length; index++) {
    const stage = cfg.stages[index]!;
    if (step < start + stage.steps) return { stage, index, start };
    start += stage.steps;
  }
  throw new Error(`step ${step} is past the last stage`);
}

/** Batch and sequence length of every step of the run (the ramps followed through each stage's tokens). */
export function stepShapes(cfg: PretrainConfig): { batch: number; seqLen: number }[] {
  return runShapes(cfg).map(({ batch, seqLen }) => ({ batch, seqLen }));
}

/**
 * Batch, sequence length and micro-batch of every step of the run: a function of the config alone, so a
 * resumed run takes the same shapes as an uninterrupted one.
 */
function runShapes(cfg: PretrainConfig): { batch: number; seqLen: number; microBatch: number }[] {
  const out: { batch: number; seqLen: number; microBatch: number }[] = [];
  for (const stage of cfg.stages) {
    let tokens = 0;
    for (let i = 0; i < stage.steps; i++) {
      const shape = stageShape(stage, tokens);
      out.push(shape);
      tokens += shape.batch * shape.seqLen;
    }
  }
  return out;
}

function loaderSeed(cfg: PretrainConfig, stageIndex: number): number {
  return new Rng(cfg.seed * 2654435761 + stageIndex).next() * 4294967296;
}

/** The error of a run stopped on a non-finite value: the step, stage, loss, norm and what is left. */
function divergedText(runDir: string, ckDir: string, m: StepMetrics, what: string, hint: string): string {
  const newest = listCheckpoints(ckDir).at(-1);
  return (
    `${runDir}: diverged at step ${m.step} of stage '${m.stage}': ${what} (loss ${m.loss}, gradient norm ` +
    `${m.gradNorm}, lr ${m.lr.toExponential(2)}); stopped before writing it. The newest checkpoint is ` +
    `${newest ? newest.path : "none"}. ${hint}`
  );
}

/** The LlamaConfig fields the shapes of the weights depend on: a resume can never change them. */
const DIMENSIONS = [
  "hiddenSize",
  "intermediateSize",
  "numHiddenLayers",
  "numAttentionHeads",
  "numKeyValueHeads",
  "headDim",
  "vocabSize",
  "tieWordEmbeddings",
] as const;

/**
 * Before a resume writes anything: compare `cfg` with the run folder's config.json. A change of the
 * model's dimensions is refused always; any other change unless `allow`. Errors list each field.
 */
function checkResumeConfig(runDir: string, cfg: PretrainConfig, allow: boolean): void {
  const path = join(runDir, "config.json");
  if (!existsSync(path)) return;
  const old = loadConfig(path);
  const before = modelConfig(old);
  const after = modelConfig(cfg);
  const dims = DIMENSIONS.filter((k) => before[k] !== after[k]).map(
    (k) => `model ${k}: ${before[k]} → ${after[k]}`,
  );
  if (dims.length > 0)
    throw new Error(
      `${path}: the run's checkpoints have other model dimensions (${dims.join("; ")}); ` +
        "a resume cannot change them: give the run another name",
    );
  const changes = configChanges(old, cfg);
  if (changes.length > 0 && !allow)
    throw new Error(
      `${path}: the config differs from the one this run was started with (${changes.join("; ")}); ` +
        "resume with --allow-config-change to accept the change, or give the run another name",
    );
}

function warnOnStderr(line: string): void {
  process.stderr.write(`${line}\n`);
}

/**
 * Load the newest checkpoint that loads; each newer one that does not is moved aside (kept, as
 * corrupt-step-N, out of the rotation) with a warning. Null when there is none; refused, naming every
 * one tried, when none loads.
 */
async function loadNewest(
  ckDir: string,
  model: Llama,
  opt: PretrainOptimizer,
  polyak: PolyakAverage,
  warn: (line: string) => void,
): Promise<TrainerState | null> {
  const all = listCheckpoints(ckDir);
  const failed: string[] = [];
  for (const c of all.reverse()) {
    try {
      const state = await loadCheckpoint(c.path, model, opt, polyak);
      for (const f of failed) {
        let aside = join(ckDir, `corrupt-${basename(f)}`);
        if (existsSync(aside)) aside += `-${process.pid}-${Date.now()}`;
        renameSync(f, aside);
        warn(`warning: checkpoint ${f} does not load; moved aside to ${aside}; resuming from ${c.path}`);
      }
      return state;
    } catch (e) {
      failed.push(c.path);
      warn(`warning: ${(e as Error).message}`);
    }
  }
  if (failed.length > 0)
    throw new Error(`${ckDir}: no checkpoint loads (tried ${failed.join(", ")}); see the warnings above`);
  return null;
}

/** Run (or resume) the pre-training described by `cfg` in runs/<name>/. */
export async function pretrain(cfg: PretrainConfig, opts: PretrainOptions = {}): Promise<PretrainResult> {
  const runDir = join(cfg.runsDir, cfg.name);
  const ckDir = join(runDir, "checkpoints");
  if (listCheckpoints(ckDir).length > 0) checkResumeConfig(runDir, cfg, opts.allowConfigChange === true);
  mkdirSync(runDir, { recursive: true });
  writeFileAtomic(join(runDir, "config.json"), `${JSON.stringify(cfg, null, 2)}\n`);
  removeStaleTemps(ckDir);
  const mc = modelConfig(cfg);
  const model = new Llama(mc, initWeights(mc, { seed: cfg.seed }), "init");
  model.recompute = cfg.model.recompute;
  const heldout = heldoutSplit(cfg);
  const evaluator = opts.evaluator ?? {};
  evaluator.plan?.(cfg, heldout);
  const opt = new PretrainOptimizer(model.parameters(), cfg.optimizer);
  const polyak = new PolyakAverage();
  const metrics = new MetricsLog(join(runDir, "metrics.jsonl"));
  const svgPath = join(runDir, "loss.svg");
  const totalSteps = cfg.stages.reduce((n, s) => n + s.steps, 0);
  const shapes = runShapes(cfg);
  const stepFlops = shapes.map((s) => s.batch * s.seqLen * trainingFlopsPerToken(mc, s.seqLen));
  // flopsAfter[i]: model FLOPs of steps i… to the end; the ETA is those left at the run's FLOP rate.
  const flopsAfter = [...stepFlops, 0];
  for (let i = flopsAfter.length - 2; i >= 0; i--) flopsAfter[i]! += flopsAfter[i + 1]!;
  const peak = runPeak(runDir, getBackend());

  let state: TrainerState = {
    step: 0,
    tokens: 0,
    loader: { epoch: 0, cursor: 0 },
    rng: cfg.seed,
  };
  const resumed = await loadNewest(ckDir, model, opt, polyak, opts.onWarning ?? warnOnStderr);
  if (resumed) state = resumed;
  const resumedFrom = state.step;
  metrics.truncate(state.step);
  let skips = metrics.read().filter((m) => m.skipped).length;
  opts.onStart?.(peak, resumedFrom);

  let loader: PackedLoader | null = null;
  let loaderStage = -1;
  const t0 = performance.now();
  let tokensThisRun = 0;
  let flopsThisRun = 0;
  let stepSecs = 0; // time inside training steps only: the rates exclude evaluation and checkpoints
  const history: StepMetrics[] = [];
  try {
    while (state.step < totalSteps) {
      const { stage, index, start } = stageAt(cfg, state.step);
      const shape = shapes[state.step]!;
      if (index !== loaderStage) {
        loader?.close();
        loader = new PackedLoader(
          stage.shards,
          shape.seqLen,
          loaderSeed(cfg, index),
          loaderEnds(heldout, stage.shards),
        );
        if (loader.vocabSize > mc.vocabSize)
          throw new Error(
            `${stage.shards[0]}: vocabulary ${loader.vocabSize} exceeds the model's ${mc.vocabSize}`,
          );
        // A resume inside this stage continues the saved position; a new stage starts its data afresh.
        if (state.step > start) loader.restore(state.loader);
        loaderStage = index;
      }
      // The ramp: a new sequence length re-cuts the windows from the current share of the epoch.
      const stepStart = performance.now();
      loader!.setSeqLen(shape.seqLen);
      const micro: Batch[] = [];
      for (let i = 0; i < shape.batch / shape.microBatch; i++) micro.push(loader!.next(shape.microBatch));
      const lr = learningRate(cfg, state.step);
      const { loss, gradNorm, finite } = trainStep(model, opt, micro, lr);
      stepSecs += (performance.now() - stepStart) / 1000;
      const tokens = shape.batch * shape.seqLen;
      tokensThisRun += tokens;
      flopsThisRun += stepFlops[state.step]!;
      const rng = new Rng(state.rng);
      rng.next();
      state = {
        step: state.step + 1,
        tokens: state.tokens + tokens,
        loader: { ...loader!.position },
        rng: rng.state,
      };
      const secs = (performance.now() - t0) / 1000;
      const m: StepMetrics = {
        step: state.step,
        stage: stage.name,
        kind: stage.kind,
        loss,
        lr,
        gradNorm,
        tokens: state.tokens,
        tokensPerSec: tokensThisRun / stepSecs,
        mfu: flopsThisRun / stepSecs / peak.flops,
        seqLen: shape.seqLen,
        batch: shape.batch,
        eta: (flopsAfter[state.step]! * secs) / flopsThisRun,
        totalSteps,
      };
      const stop = (what: string, hint = 'Lower schedule.peakLR (or set nonFinite.action to "skip")') => {
        m.diverged = true;
        metrics.append(m);
        opts.onStep?.(m);
        throw new Error(divergedText(runDir, ckDir, m, what, hint));
      };
      if (!finite) {
        if (cfg.nonFinite.action === "skip" && skips < cfg.nonFinite.maxSkips) {
          skips++;
          m.skipped = true;
        } else if (cfg.nonFinite.action === "skip")
          stop(
            `non-finite loss or gradient norm, and ${skips} step(s) already skipped (nonFinite.maxSkips ${cfg.nonFinite.maxSkips})`,
            "Lower schedule.peakLR",
          );
        else stop("non-finite loss or gradient norm");
      }
      const stageEnd = state.step === start + stage.steps;
      const evalStep = {
        model,
        cfg,
        heldout,
        runDir,
        stage,
        stageIndex: index,
        stageEnd,
        metrics: m,
        history: () => metrics.read(),
      };
      evaluator.heldout?.(evalStep);
      if (m.valLoss !== undefined && !Number.isFinite(m.valLoss))
        stop(`non-finite held-out loss ${m.valLoss} after the update`, "Lower schedule.peakLR");
      const verdict = stageEnd ? (evaluator.atStageEnd?.(evalStep) ?? null) : null;
      metrics.append(m);
      history.push(m);
      opts.onStep?.(m);
      if (state.step % 10 === 0 || state.step === totalSteps || stageEnd)
        writeLossCurve(svgPath, metrics.read(), cfg.name);
      if (verdict?.stop) throw new Error(verdict.stop);
      if (
        stage.kind === "annealing" &&
        cfg.averageAnnealing &&
        ((state.step - start) % cfg.checkpoint.annealEvery === 0 || stageEnd)
      )
        polyak.add(model.weights);
      if (state.step % cfg.checkpoint.every === 0 || stageEnd) {
        const path = await saveCheckpoint(ckDir, model, opt, state, cfg.checkpoint.keep, polyak);
        opts.onCheckpoint?.(path, state.step);
      }
    }
    // final/: the Polyak average of the annealing samples when there are some, else the last weights.
    const finalWeights = polyak.count > 0 ? polyak.mean : model.weights;
    const bad = firstNonFinite(finalWeights);
    if (bad) throw new Error(`${runDir}: final weight '${bad}' is not finite; final/ not written`);
    await writeHFCheckpoint(join(runDir, "final"), toHFConfig(model.config, "f32"), finalWeights);
  } finally {
    loader?.close();
    opt.dispose();
    polyak.dispose();
  }
  return { model, runDir, resumedFrom, history, peak };
}
