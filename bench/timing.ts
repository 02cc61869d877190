// Timing helpers shared by the benchmark suites: repeat a function until a time budget is spent
// (after one warm-up call) and report the best and median seconds per call.
import { performance } from "node:perf_hooks";
import { type KNOBS, type KnobName, knob } from "../src/core/knobs.js";

export interface Timing {
  best: number;
  median: number;
  reps: number;
}

/** Time fn: one warm-up call, then repeat until `budget` seconds or `maxReps` calls. */
export function time(fn: () => void, budget = 1.0, maxReps = 50): Timing {
  fn();
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < maxReps && (performance.now() - start) / 1000 < budget) {
    const t0 = performance.now();
    fn();
    samples.push((performance.now() - t0) / 1000);
  }
  samples.sort((a, b) => a - b);
  return { best: samples[0]!, median: samples[Math.floor(samples.length / 2)]!, reps: samples.length };
}

/** Left-aligned table row. */
export function row(cells: (string | number)[], widths: number[]): string {
  return cells.map((c, i) => String(c).padEnd(widths[i] ?? 12)).join(" ");
}

/** Knobs whose value is a number (src/core/knobs.ts declares them all). */
type NumericKnob = {
  [N in KnobName]: (typeof KNOBS)[N]["kind"] extends "int" | "number" ? N : never;
}[KnobName];

/** A numeric knob (HERD_BENCH_*, validated by src/core/knobs.ts), or `fallback` where it is unset and has no default. */
export function env(name: NumericKnob, fallback: number): number {
  return (knob(name) as number | null) ?? fallback;
}
