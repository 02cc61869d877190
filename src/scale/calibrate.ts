// The paper's three 405B layouts (spec §8.2, Table 4) and the planner's predictions for them beside the
// published TFLOPs/GPU and MFU: the check that src/scale/constants.ts's calibration holds (goal: within
// 10% on all three). What the table does not say, assumed here and stated in docs/scale.md:
// - one sequence a micro-batch, so M = batch/DP (32, 16, 16);
// - V = 8 virtual stages: 126 layers + the embedding and output chunks = 128 = PP 16 × 8, one layer a
//   chunk, the balance the paper describes (first and last stage one layer fewer);
// - no activation recomputation (the paper's 8K pre-training ran without it);
// - row 3's DP is 8, not the printed 4: TP 8 × CP 16 × PP 16 × DP 4 is 8,192 GPUs, not the row's 16,384,
//   and 4 × 16 sequences × 131,072 is 8.4M tokens, not its 16M; DP 8 agrees with both.
import type { LlamaConfig } from "../model/config.js";
import { preset } from "../model/presets.js";
import { CLUSTER_SCHEMA, type Cluster, checkLayout, type Layout, type Run } from "./config.js";
import { CALIBRATION, type Calibration } from "./constants.js";
import { type MemoryBreakdown, memoryPerGpu } from "./memory.js";
import { type StepTime, stepTime } from "./time.js";

export interface PaperRow {
  gpus: number;
  layout: Layout;
  run: Run;
  /** Published TFLOPs/GPU and BF16 MFU. */
  tflops: number;
  mfu: number;
}

const row = (
  gpus: number,
  tp: number,
  cp: number,
  pp: number,
  dp: number,
  seqLen: number,
  perDp: number,
) => ({
  gpus,
  layout: { tp, cp, pp, dp, microBatch: 1, virtualStages: 8, recompute: false },
  run: { seqLen, batchTokens: dp * perDp * seqLen },
});

export const PAPER_TABLE4: readonly PaperRow[] = [
  { ...row(8192, 8, 1, 16, 64, 8192, 32), tflops: 430, mfu: 0.43 },
  { ...row(16384, 8, 1, 16, 128, 8192, 16), tflops: 400, mfu: 0.41 },
  { ...row(16384, 8, 16, 16, 8, 131072, 16), tflops: 380, mfu: 0.38 },
];

/** The paper's cluster (spec §8.1) with `gpus` GPUs: every other field the schema's default. */
export function paperCluster(gpus: number): Cluster {
  const out: Record<string, unknown> = { gpus };
  for (const [k, f] of Object.entries(CLUSTER_SCHEMA)) if ("default" in f) out[k] = f.default;
  return out as Cluster;
}

export interface CalibrationRow extends PaperRow {
  memory: MemoryBreakdown;
  time: StepTime;
  /** predicted / published TFLOPs/GPU − 1. */
  error: number;
}

export function calibrate(
  cal: Calibration = CALIBRATION,
  model: LlamaConfig = preset("llama3.1-405b"),
): CalibrationRow[] {
  return PAPER_TABLE4.map((r) => {
    const cluster = paperCluster(r.gpus);
    checkLayout(model, cluster, r.run, r.layout, "paper table 4");
    const time = stepTime(model, cluster, r.run, r.layout, cal);
    return {
      ...r,
      memory: memoryPerGpu(model, cluster, r.run, r.layout, cal),
      time,
      error: time.tflopsPerGpu / r.tflops - 1,
    };
  });
}
