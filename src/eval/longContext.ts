// The checks that end a long-context stage (spec §6.2: move on only when (1) short-context performance
// has fully recovered and (2) needle-in-a-haystack is solved up to the current length):
//   (a) short-context loss: the held-out loss at the initial stage's sequence length now, against its
//       value at the end of the initial stage (metrics.jsonl); recovered when now ≤ before · (1 + tolerance);
//   (b) needle in a haystack over lengths × depths (niah.ts) in held-out text; passed when the share of
//       exact retrievals reaches `niahThreshold` (1: every cell, as the paper asks).
// The report goes to runs/<name>/long-context/<stage>.json with a heat map <stage>-niah.svg beside it;
// the verdict goes into the step's metrics. `require: true` stops the run on a failed check (before the
// stage's last checkpoint, so a rerun repeats the stage's tail and the check); the default only warns.
// The settings (`longContext` in the run config) are train's (src/train/longContextConfig.ts); the trainer
// runs these checks only through its evaluator hook (pretrainEvaluator.ts), `herd pretrain check` runs
// them on a finished run's weights (checkRun).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.js";
import type { Llama } from "../model/llama.js";
import { loadModel } from "../model/load.js";
import { readRanks } from "../tokenizer/ranks.js";
import { Tokenizer } from "../tokenizer/tiktoken.js";
import { listCheckpoints, stepDirName, TRAINER_STATE } from "../train/checkpoint.js";
import { loadConfig, type PretrainConfig, type StageConfig } from "../train/config.js";
import { type HeldoutSet, heldoutSplit } from "../train/heldoutSplit.js";
import type { LongContextConfig } from "../train/longContextConfig.js";
import { MetricsLog, type StepMetrics } from "../train/metrics.js";
import { Rng } from "../train/rng.js";
import { heldoutTokens, validationLoss } from "./heldout.js";
import {
  type Encode,
  llamaDecoder,
  type Needle,
  type NiahCell,
  niahGrid,
  niahHeatmapSvg,
  textNeedle,
  tokenNeedle,
} from "./niah.js";

export interface LongContextReport {
  stage: string;
  step: number;
  seqLen: number;
  shortContext: {
    seqLen: number;
    /** Held-out loss at the end of the initial stage (null when the run's metrics lack it). */
    before: number | null;
    after: number;
    /** after / before. */
    ratio: number | null;
    tolerance: number;
    recovered: boolean;
  };
  niah: {
    needle: string;
    lengths: number[];
    /** Lengths asked for but too short for the needle and question (under twice their size). */
    skippedLengths: number[];
    depths: number[];
    trials: number;
    cells: NiahCell[];
    /** Exact retrievals / trials over all cells. */
    accuracy: number;
    threshold: number;
    passed: boolean;
  };
  passed: boolean;
  require: boolean;
}

/** The initial stage a long-context stage extends: the last "initial" stage before it. */
export function initialStageBefore(cfg: PretrainConfig, index: number): { stage: StageConfig; end: number } {
  let end = 0;
  let found: { stage: StageConfig; end: number } | null = null;
  for (let i = 0; i < index; i++) {
    end += cfg.stages[i]!.steps;
    if (cfg.stages[i]!.kind === "initial") found = { stage: cfg.stages[i]!, end };
  }
  if (!found)
    throw new Error(`stage '${cfg.stages[index]?.name}': no initial stage before it to compare with`);
  return found;
}

/** Lengths tested at the end of a stage of `seqLen` extending one of `initial`. */
export function niahLengths(cfg: LongContextConfig, initial: number, seqLen: number): number[] {
  if (cfg.lengths) return cfg.lengths.filter((l) => l <= seqLen);
  const out: number[] = [];
  for (let l = initial; l < seqLen; l *= 2) out.push(l);
  out.push(seqLen);
  return out;
}

function needleMaker(cfg: LongContextConfig, set: HeldoutSet): (rng: Rng) => Needle {
  if (cfg.tokenizer === "bytes") {
    const enc: Encode = (t) => [...Buffer.from(t, "utf8")];
    return (rng) => textNeedle(enc, rng);
  }
  if (cfg.tokenizer) {
    const tok = new Tokenizer(readRanks(cfg.tokenizer), { name: cfg.tokenizer });
    return (rng) => textNeedle((t) => tok.encode(t), rng);
  }
  // Token passkey: ids drawn from those seen in (up to 64K tokens of) held-out text.
  const pool = Int32Array.from(new Set(heldoutTokens(set, 0, Math.min(set.tokens, 65536))));
  return (rng) => tokenNeedle(pool, rng);
}

/**
 * The needle maker and the lengths tested at the end of long-context stage `index`; throws (naming the
 * field to change) when no length fits the needle or the held-out set cannot fill the longest one.
 * A length counts when at least half of it is haystack (a byte-level text needle is ~80 tokens).
 */
export function planNiah(
  cfg: PretrainConfig,
  set: HeldoutSet,
  index: number,
): { needle: (rng: Rng) => Needle; lengths: number[]; skipped: number[] } {
  const stage = cfg.stages[index]!;
  const needle = needleMaker(cfg.longContext, set);
  const sample = needle(new Rng(cfg.seed));
  const minLength = 2 * (sample.needle.length + sample.query.length + sample.answer.length);
  const asked = niahLengths(cfg.longContext, initialStageBefore(cfg, index).stage.seqLen, stage.seqLen);
  const lengths = asked.filter((l) => l >= minLength);
  if (lengths.length === 0)
    throw new Error(
      `stage '${stage.name}': needle-in-a-haystack needs a length of at least ${minLength} tokens (twice the needle and question); lengths asked: ${asked.join(", ")} (longContext.lengths)`,
    );
  if (set.tokens < Math.max(...lengths))
    throw new Error(
      `stage '${stage.name}': the held-out set has ${set.tokens} tokens, a haystack of ${Math.max(...lengths)} is needed (raise eval.heldout or add data.validation shards)`,
    );
  return { needle, lengths, skipped: asked.filter((l) => l < minLength) };
}

/** Check before training that every long-context stage's checks can run (errors at once, not hours in). */
export function planLongContextChecks(cfg: PretrainConfig, set: HeldoutSet): void {
  if (set.spans.length === 0) return;
  cfg.stages.forEach((s, i) => {
    if (s.kind === "long-context") planNiah(cfg, set, i);
  });
}

/** Run both checks on `model` at the end of long-context stage `index` (at global step `step`). */
export function longContextCheck(
  model: Llama,
  cfg: PretrainConfig,
  set: HeldoutSet,
  index: number,
  step: number,
  history: StepMetrics[],
): LongContextReport {
  const stage = cfg.stages[index]!;
  const lc = cfg.longContext;
  const initial = initialStageBefore(cfg, index);
  const short = initial.stage.seqLen;
  const base = history.find((m) => m.step === initial.end && m.valSeqLen === short)?.valLoss ?? null;
  const after = validationLoss(model, set, short, cfg.eval.tokens, stage.microBatch);
  const ratio = base === null ? null : after / base;
  const recovered = ratio !== null && ratio <= 1 + lc.tolerance;

  const { needle, lengths, skipped } = planNiah(cfg, set, index);
  const cells = niahGrid({
    lengths,
    depths: lc.depths,
    trials: lc.trials,
    seed: cfg.seed,
    needle,
    haystack: (rng, count) => heldoutTokens(set, Math.floor(rng.next() * (set.tokens - count + 1)), count),
    decoder: (capacity) => llamaDecoder(model, capacity),
  });
  const trials = cells.reduce((n, c) => n + c.trials, 0);
  const accuracy = cells.reduce((n, c) => n + c.exact, 0) / trials;
  const niahPassed = accuracy >= lc.niahThreshold;
  return {
    stage: stage.name,
    step,
    seqLen: stage.seqLen,
    shortContext: { seqLen: short, before: base, after, ratio, tolerance: lc.tolerance, recovered },
    niah: {
      needle: lc.tokenizer ? "The secret number is NNNN." : "token passkey: 6 key + 4 value ids",
      lengths,
      skippedLengths: skipped,
      depths: lc.depths,
      trials: lc.trials,
      cells,
      accuracy,
      threshold: lc.niahThreshold,
      passed: niahPassed,
    },
    passed: recovered && niahPassed,
    require: lc.require,
  };
}

/** Write <dir>/<name>.json and <dir>/<name>-niah.svg; returns the JSON path. */
export function writeLongContextReport(dir: string, r: LongContextReport, name = r.stage): string {
  const json = join(dir, `${name}.json`);
  writeFileAtomic(json, `${JSON.stringify(r, null, 2)}\n`);
  const title = `needle in a haystack — ${r.stage} (step ${r.step}): ${Math.round(r.niah.accuracy * 100)}% exact`;
  writeFileAtomic(join(dir, `${name}-niah.svg`), niahHeatmapSvg(r.niah.cells, title));
  return json;
}

/** Read a report written by writeLongContextReport. */
export function readLongContextReport(path: string): LongContextReport {
  return JSON.parse(readFileSync(path, "utf8")) as LongContextReport;
}

/** The verdict as it goes into the step's metrics. */
export function longContextSummary(r: LongContextReport): NonNullable<StepMetrics["longContext"]> {
  return {
    passed: r.passed,
    shortLossBefore: r.shortContext.before,
    shortLossAfter: r.shortContext.after,
    shortLossRatio: r.shortContext.ratio,
    recovered: r.shortContext.recovered,
    niahAccuracy: r.niah.accuracy,
  };
}

/**
 * At the end of stage `index` (step metrics `m`, the run's earlier records from `history`): for a
 * long-context stage with a held-out set, run the checks, write the report, put the verdict into `m` and
 * call `onReport`. The stage-end part of the trainer's evaluator hook (pretrainEvaluator.ts).
 */
export function judgeStage(
  model: Llama,
  cfg: PretrainConfig,
  set: HeldoutSet,
  index: number,
  m: StepMetrics,
  runDir: string,
  history: () => StepMetrics[],
  onReport?: (r: LongContextReport, line: string) => void,
): LongContextReport | null {
  if (cfg.stages[index]!.kind !== "long-context" || set.spans.length === 0) return null;
  const r = longContextCheck(model, cfg, set, index, m.step, history());
  writeLongContextReport(join(runDir, "long-context"), r);
  m.longContext = longContextSummary(r);
  onReport?.(r, longContextLine(r));
  return r;
}

/** Why the run must stop after this report (a check failed and `longContext.require` is set), or null. */
export function requiredStop(cfg: PretrainConfig, r: LongContextReport | null): string | null {
  return r && !r.passed && cfg.longContext.require
    ? `${longContextLine(r)} (longContext.require is set: stopping)`
    : null;
}

/** One log line. */
export function longContextLine(r: LongContextReport): string {
  const s = r.shortContext;
  const loss =
    s.before === null
      ? `short-context loss ${s.after.toFixed(4)} at ${s.seqLen} (no initial-stage value to compare)`
      : `short-context loss ${s.before.toFixed(4)} → ${s.after.toFixed(4)} at ${s.seqLen} (×${s.ratio!.toFixed(3)}, ${s.recovered ? "recovered" : "not recovered"})`;
  const exact = r.niah.cells.reduce((n, c) => n + c.exact, 0);
  const total = r.niah.cells.reduce((n, c) => n + c.trials, 0);
  return (
    `long-context check [${r.stage}] ${r.passed ? "PASSED" : "FAILED"}: ${loss}; ` +
    `needle-in-a-haystack ${exact}/${total} exact over lengths ${r.niah.lengths.join(",")} × ${r.niah.depths.length} depths`
  );
}

/**
 * `herd pretrain check RUN`: the checks on a run's weights (checkpoint `step`, else final/, else the
 * newest checkpoint) for long-context stage `stage` (default: the one the weights are in or last
 * finished). Writes long-context/check-<stage>-step-N.json (+ heat map) in the run folder.
 */
export async function checkRun(
  runDir: string,
  opts: { step?: number; stage?: string } = {},
): Promise<{ report: LongContextReport; path: string; weights: string }> {
  const cfg = loadConfig(join(runDir, "config.json"));
  const total = cfg.stages.reduce((n, s) => n + s.steps, 0);
  let weights: string;
  let step: number;
  const ckDir = join(runDir, "checkpoints");
  if (opts.step !== undefined) {
    weights = join(ckDir, stepDirName(opts.step));
    if (!existsSync(join(weights, TRAINER_STATE))) throw new Error(`${weights}: no such checkpoint`);
    step = opts.step;
  } else if (existsSync(join(runDir, "final", "config.json"))) {
    weights = join(runDir, "final");
    step = total;
  } else {
    const last = listCheckpoints(ckDir).at(-1);
    if (!last) throw new Error(`${runDir}: no final/ weights and no checkpoint`);
    weights = last.path;
    step = last.step;
  }
  let index = -1;
  if (opts.stage !== undefined) {
    index = cfg.stages.findIndex((s) => s.name === opts.stage);
    if (index < 0 || cfg.stages[index]!.kind !== "long-context")
      throw new Error(`${runDir}: no long-context stage named '${opts.stage}'`);
  } else {
    let start = 0;
    cfg.stages.forEach((s, i) => {
      if (s.kind === "long-context" && start < step) index = i;
      start += s.steps;
    });
    if (index < 0) throw new Error(`${runDir}: no long-context stage at or before step ${step}`);
  }
  const model = await loadModel(weights);
  try {
    const history = new MetricsLog(join(runDir, "metrics.jsonl")).read();
    const report = longContextCheck(model, cfg, heldoutSplit(cfg), index, step, history);
    const name = `check-${report.stage}-${stepDirName(step)}`;
    return { report, path: writeLongContextReport(join(runDir, "long-context"), report, name), weights };
  } finally {
    model.dispose();
  }
}
