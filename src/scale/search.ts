// The search of `herd plan`: every layout TP × CP × PP × DP of the cluster's GPUs that the model allows
// (config.ts's rules), with micro-batches of 1, 2, 4 or 8 sequences, V = 1, 2, 4, … virtual stages and
// with or without activation recomputation; those whose memory per GPU fits are ranked by throughput
// (tokens/s, ties to less memory). The rest are counted, not kept: a layout that does not fit is never
// offered.
import type { LlamaConfig } from "../model/config.js";
import { paramCount } from "../model/presets.js";
import { type Cluster, type Layout, layoutProblems, pipelineSlots, type Run } from "./config.js";
import { BYTES, CALIBRATION, type Calibration } from "./constants.js";
import { type MemoryBreakdown, memoryPerGpu } from "./memory.js";
import { type StepTime, stepTime } from "./time.js";

export interface Plan {
  layout: Layout;
  memory: MemoryBreakdown;
  time: StepTime;
}

export interface SearchResult {
  /** Layouts that fit, fastest first. */
  plans: Plan[];
  /** Valid layouts left out because they do not fit in memory. */
  tooBig: number;
}

/** The divisors of n, ascending (trial division up to √n: a GPU count of millions stays cheap). */
function divisors(n: number): number[] {
  const low: number[] = [];
  const high: number[] = [];
  for (let d = 1; d * d <= n; d++)
    if (n % d === 0) {
      low.push(d);
      if (d * d !== n) high.unshift(n / d);
    }
  return [...low, ...high];
}
const powersUpTo = (n: number) => [1, 2, 4, 8, 16, 32, 64].filter((p) => p <= n);

/** One layout's memory and time (no checks: see checkLayout). */
export function evaluate(c: LlamaConfig, cluster: Cluster, run: Run, l: Layout, cal = CALIBRATION): Plan {
  return {
    layout: l,
    memory: memoryPerGpu(c, cluster, run, l, cal),
    time: stepTime(c, cluster, run, l, cal),
  };
}

export function searchLayouts(
  c: LlamaConfig,
  cluster: Cluster,
  run: Run,
  cal: Calibration = CALIBRATION,
): SearchResult {
  const plans: Plan[] = [];
  let tooBig = 0;
  const gpuDivisors = divisors(cluster.gpus);
  for (const tp of divisors(cluster.gpusPerNode))
    for (const cp of gpuDivisors.filter((d) => run.seqLen % (2 * d) === 0))
      for (const pp of gpuDivisors.filter((d) => d <= c.numHiddenLayers)) {
        const dp = cluster.gpus / (tp * cp * pp);
        if (!Number.isInteger(dp) || pp > c.numHiddenLayers) continue;
        for (const microBatch of [1, 2, 4, 8])
          for (const virtualStages of pp === 1 ? [1] : powersUpTo(Math.floor(pipelineSlots(c) / pp)))
            for (const recompute of [false, true]) {
              const l: Layout = { tp, cp, pp, dp, microBatch, virtualStages, recompute };
              if (layoutProblems(c, cluster, run, l).length > 0) continue;
              const p = evaluate(c, cluster, run, l, cal);
              if (p.memory.fits) plans.push(p);
              else tooBig++;
            }
      }
  plans.sort((a, b) => b.time.tokensPerSecond - a.time.tokensPerSecond || a.memory.total - b.memory.total);
  return { plans, tooBig };
}

/** Bytes of a checkpoint: the bf16 weights and AdamW's fp32 state (master weights, two moments). */
export function checkpointBytes(c: LlamaConfig): number {
  return paramCount(c) * (BYTES.weight + BYTES.optimizer);
}
