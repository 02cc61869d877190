// The paper's reliability arithmetic (spec §8.4, Table 5): 466 interruptions in a 54-day snapshot of 405B
// pre-training on 16,384 GPUs, 47 planned and 419 unexpected, by root cause. Scaled to N GPUs over D days
// on two assumptions: unexpected interruptions are failures of parts, so their rate goes with the GPUs
// (419 / (16,384 · 54) a GPU-day, each cause in its own proportion); planned ones (firmware, kernel,
// configuration and dataset changes) are a job's, so they go with the days only (47 / 54 a day).
// The counts, not the printed percentages, are used: they sum to 419, the percentages do not (spec §8.4).
// The checkpoint interval is Young's first-order optimum τ = sqrt(2·δ·M) for a checkpoint write time δ
// and a mean time between interruptions M; with a restart cost R (detect, reschedule, reload) the
// fraction of time that trains, to first order, is 1 − δ/τ − (τ/2 + R)/M: writing checkpoints, redoing
// half an interval on average, and restarting after each interruption.

export interface Cause {
  component: string;
  category: string;
  count: number;
}

export const TABLE5: readonly Cause[] = [
  { component: "Faulty GPU", category: "GPU", count: 148 },
  { component: "GPU HBM3 memory", category: "GPU", count: 72 },
  { component: "Software bug", category: "Dependency", count: 54 },
  { component: "Network switch/cable", category: "Network", count: 35 },
  { component: "Host maintenance", category: "Unplanned maintenance", count: 32 },
  { component: "GPU SRAM memory", category: "GPU", count: 19 },
  { component: "GPU system processor", category: "GPU", count: 17 },
  { component: "NIC", category: "Host", count: 7 },
  { component: "NCCL watchdog timeouts", category: "Unknown", count: 7 },
  { component: "Silent data corruption", category: "GPU", count: 6 },
  { component: "GPU thermal interface + sensor", category: "GPU", count: 6 },
  { component: "SSD", category: "Host", count: 3 },
  { component: "Power supply", category: "Host", count: 3 },
  { component: "Server chassis", category: "Host", count: 2 },
  { component: "IO expansion board", category: "Host", count: 2 },
  { component: "Dependency", category: "Dependency", count: 2 },
  { component: "CPU", category: "Host", count: 2 },
  { component: "System memory", category: "Host", count: 2 },
];

export const SNAPSHOT = { gpus: 16384, days: 54, planned: 47 } as const;

export interface Interruptions {
  gpus: number;
  days: number;
  planned: number;
  unexpected: number;
  total: number;
  /** Mean time between interruptions, hours. */
  mtbfHours: number;
  /** Expected unexpected interruptions by cause, in Table 5's order. */
  causes: (Cause & { expected: number })[];
}

export function expectedInterruptions(gpus: number, days: number): Interruptions {
  if (!(gpus > 0) || !(days > 0))
    throw new Error(`reliability: GPUs (${gpus}) and days (${days}) must be positive`);
  const scale = (gpus / SNAPSHOT.gpus) * (days / SNAPSHOT.days);
  const causes = TABLE5.map((c) => ({ ...c, expected: c.count * scale }));
  const unexpected = causes.reduce((a, c) => a + c.expected, 0);
  const planned = (SNAPSHOT.planned * days) / SNAPSHOT.days;
  const total = planned + unexpected;
  return { gpus, days, planned, unexpected, total, mtbfHours: (days * 24) / total, causes };
}

export interface CheckpointPlan {
  /** Checkpoint write time δ, restart cost R and MTBF M, seconds. */
  writeSeconds: number;
  restartSeconds: number;
  mtbfSeconds: number;
  /** Young's optimum sqrt(2·δ·M), seconds. */
  intervalSeconds: number;
  /** 1 − δ/τ − (τ/2 + R)/M at that interval. */
  goodput: number;
}

/** Goodput at checkpoint interval τ (module header). */
export function goodput(
  tau: number,
  writeSeconds: number,
  restartSeconds: number,
  mtbfSeconds: number,
): number {
  return 1 - writeSeconds / tau - (tau / 2 + restartSeconds) / mtbfSeconds;
}

export function checkpointPlan(
  writeSeconds: number,
  restartSeconds: number,
  mtbfSeconds: number,
): CheckpointPlan {
  if (!(writeSeconds > 0) || !(mtbfSeconds > 0) || !(restartSeconds >= 0))
    throw new Error("reliability: checkpoint write time and MTBF must be positive, restart time ≥ 0");
  const intervalSeconds = Math.sqrt(2 * writeSeconds * mtbfSeconds);
  return {
    writeSeconds,
    restartSeconds,
    mtbfSeconds,
    intervalSeconds,
    goodput: goodput(intervalSeconds, writeSeconds, restartSeconds, mtbfSeconds),
  };
}
