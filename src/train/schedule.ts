// Learning-rate schedules (spec §6.1, §6.3): linear warm-up then cosine decay to a floor (the paper:
// peak 8e-5, 8,000 warm-up steps, cosine to 8e-7 over 1.2M steps), and the annealing stage's linear decay
// to zero. Steps count from 0; the rate for step s is used for the update that ends step s.
export interface CosineSchedule {
  peak: number;
  warmupSteps: number;
  /** Steps over which the cosine runs (after warm-up it reaches `floor` at this step and stays). */
  decaySteps: number;
  floor: number;
}

export function cosineLR(s: CosineSchedule, step: number): number {
  if (step < s.warmupSteps) return (s.peak * (step + 1)) / s.warmupSteps;
  const span = Math.max(1, s.decaySteps - s.warmupSteps);
  const t = Math.min(1, (step - s.warmupSteps) / span);
  return s.floor + 0.5 * (s.peak - s.floor) * (1 + Math.cos(Math.PI * t));
}

/** Annealing: from `start` linearly to 0 over `steps` steps (step 0 uses `start`). */
export function linearToZero(start: number, steps: number, step: number): number {
  return Math.max(0, start * (1 - step / Math.max(1, steps)));
}
