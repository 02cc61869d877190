// The scaling-law points of pre-training runs (spec §6.4): one point (training FLOPs, tokens, loss) per
// `herd pretrain` run folder, read from its config.json and metrics.jsonl — the last held-out loss when
// the run has one, else the mean training loss of its last 10% of steps (said so in `lossFrom`); a run
// whose metrics show it diverged is refused with DivergedRun — or from a JSON list of points. The fit
// itself is scaling.ts; `herd scaling` (src/cli/scaling.ts) parses arguments and prints.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { paramCount } from "../model/presets.js";
import { loadConfig } from "./config.js";
import { MetricsLog, type StepMetrics } from "./metrics.js";
import { trainingFlopsPerToken } from "./mfu.js";
import type { ScalingPoint } from "./scaling.js";
import { modelConfig } from "./trainer.js";

export type FlopCount = "model" | "6nd";

export interface RunPoint extends ScalingPoint {
  dir: string;
  /** Where the loss came from: "valLoss at step S" or the training-loss fallback. */
  lossFrom: string;
  validation: boolean;
  /** The sequence length the validation loss was measured at (undefined for the training fallback). */
  valSeqLen?: number;
}

/** A run that diverged: `herd scaling fit` leaves it out, saying why. */
export class DivergedRun extends Error {}

/**
 * Why the metrics of a run say it diverged, or null: a step marked `diverged` (the trainer stopped on
 * it), or a loss or held-out loss that is not a finite number (NaN and ∞ are null in the JSON) on a step
 * that was not skipped. Skipped steps (nonFinite.action "skip") are only left out of the loss.
 */
export function divergence(m: StepMetrics[]): string | null {
  for (const r of m) {
    if (r.diverged) return `diverged at step ${r.step} (the run stopped on a non-finite loss)`;
    if (!r.skipped && !Number.isFinite(r.loss)) return `non-finite loss (${r.loss}) at step ${r.step}`;
    if ("valLoss" in r && !Number.isFinite(r.valLoss))
      return `non-finite held-out loss (${r.valLoss}) at step ${r.step}`;
  }
  return null;
}

/**
 * The scaling point of one `herd pretrain` run folder; errors name the folder and the file, and a run
 * whose metrics say it diverged throws DivergedRun.
 */
export function runPoint(dir: string, count: FlopCount = "model"): RunPoint {
  const cfgPath = join(dir, "config.json");
  if (!existsSync(cfgPath)) throw new Error(`${dir}: no config.json (not a herd pretrain run folder)`);
  const mc = modelConfig(loadConfig(cfgPath));
  const m = new MetricsLog(join(dir, "metrics.jsonl")).read();
  if (m.length === 0) throw new Error(`${dir}/metrics.jsonl: no steps`);
  const diverged = divergence(m);
  if (diverged)
    throw new DivergedRun(`${dir}: ${diverged} in metrics.jsonl; a diverged run has no loss to fit`);
  const tokens = m.at(-1)!.tokens;
  let flops = 6 * paramCount(mc) * tokens;
  if (count === "model") {
    flops = 0;
    let prev = 0;
    for (const r of m) {
      if (!(Number.isFinite(r.tokens) && Number.isInteger(r.seqLen) && r.seqLen > 0))
        throw new Error(`${dir}/metrics.jsonl: step ${r.step} lacks tokens or seqLen`);
      flops += (r.tokens - prev) * trainingFlopsPerToken(mc, r.seqLen);
      prev = r.tokens;
    }
  }
  const withVal = m.filter((r) => Number.isFinite(r.valLoss)).at(-1);
  if (withVal) {
    const { valLoss, valSeqLen } = withVal;
    return {
      dir,
      flops,
      tokens,
      loss: valLoss!,
      lossFrom: `valLoss at step ${withVal.step}${valSeqLen ? `, sequence length ${valSeqLen}` : ""}`,
      validation: true,
      ...(valSeqLen ? { valSeqLen } : {}),
    };
  }
  const trained = m.filter((r) => !r.skipped);
  if (trained.length === 0) throw new DivergedRun(`${dir}: every step in metrics.jsonl was skipped`);
  const tail = trained.slice(-Math.max(1, Math.floor(trained.length / 10)));
  return {
    dir,
    flops,
    tokens,
    loss: tail.reduce((a, x) => a + x.loss, 0) / tail.length,
    lossFrom: `training loss of the last ${tail.length} step(s): no valLoss in metrics.jsonl`,
    validation: false,
  };
}

/**
 * The points of a --points file: a list of {flops, tokens, loss}; a point whose loss is not a finite
 * number (NaN and ∞ are null in JSON: a diverged run) is left out, said so (a line to `out`), never
 * read as 0.
 */
export function readScalingPoints(file: string, out: (l: string) => void): ScalingPoint[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(raw)) throw new Error(`${file}: must be a JSON list of {"flops","tokens","loss"}`);
  return raw.flatMap((p: Record<string, unknown>, i) => {
    for (const k of ["flops", "tokens"])
      if (typeof p?.[k] !== "number" || !((p[k] as number) > 0) || !Number.isFinite(p[k]))
        throw new Error(`${file}: point ${i}: field '${k}' must be a positive number`);
    if (typeof p.loss !== "number" || !Number.isFinite(p.loss)) {
      out(`left out: ${file}: point ${i}: loss ${JSON.stringify(p.loss)} is not a finite number (diverged?)`);
      return [];
    }
    return [{ flops: p.flops as number, tokens: p.tokens as number, loss: p.loss }];
  });
}
