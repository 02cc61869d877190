// The pre-training optimiser (spec §6.1): AdamW with β=(0.9, 0.95), eps 1e-8 and weight decay 0.1 on
// matrices only (the paper gives none of these; they are the usual Llama choices), after global-norm
// clipping at 1.0. Two engine AdamW instances share the step: one over the matrices with decay, one over
// the vectors (RMSNorm weights) without. The state (m, v of each parameter and the step) is saved as
// safetensors beside the weights and restored exactly.
import { SafetensorsFile, writeSafetensors } from "../model/checkpoint/safetensors.js";
import { AdamW, assign, clipGradNorm, zeroGrad } from "../tensor/optim.js";
import type { Tensor } from "../tensor/tensor.js";

export interface OptimizerConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  clipNorm: number;
}

export const DEFAULT_OPTIMIZER: OptimizerConfig = {
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  clipNorm: 1.0,
};

/** Whether every value is finite (neither NaN nor ±∞). */
export function allFinite(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return false;
  return true;
}

export class PretrainOptimizer {
  private readonly decayed: AdamW;
  private readonly plain: AdamW;
  readonly params: Tensor[];

  constructor(
    params: Tensor[],
    readonly config: OptimizerConfig = DEFAULT_OPTIMIZER,
  ) {
    this.params = params;
    const base = { lr: 0, beta1: config.beta1, beta2: config.beta2, eps: config.eps };
    this.decayed = new AdamW(
      params.filter((p) => p.rank >= 2),
      { ...base, weightDecay: config.weightDecay },
    );
    this.plain = new AdamW(
      params.filter((p) => p.rank < 2),
      { ...base, weightDecay: 0 },
    );
  }

  get step(): number {
    return this.decayed.step;
  }

  /** Clip to the global norm, update every parameter at `lr`; returns the norm before clipping. */
  update(lr: number): number {
    const norm = this.clip();
    this.apply(lr);
    return norm;
  }

  /** Clip the gradients to the global norm; returns the norm before clipping (non-finite: left as is). */
  clip(): number {
    return clipGradNorm(this.params, this.config.clipNorm);
  }

  /** One AdamW step of every parameter at `lr` on the (clipped) gradients. */
  apply(lr: number): void {
    this.decayed.update(lr);
    this.plain.update(lr);
  }

  zeroGrad(): void {
    zeroGrad(this.params);
  }

  /** The name of the first optimiser state tensor holding a NaN or an infinity, else null. */
  firstNonFinite(): string | null {
    for (const [name, t] of this.states()) if (!allFinite(t.data)) return name;
    return null;
  }

  private states(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const opt of [this.decayed, this.plain])
      opt.params.forEach((p, i) => {
        out.push([`${p.name}.exp_avg`, opt.m[i]!], [`${p.name}.exp_avg_sq`, opt.v[i]!]);
      });
    return out;
  }

  /** Write m, v (named `<param>.exp_avg`, `<param>.exp_avg_sq`) and the step to `path` atomically. */
  async save(path: string): Promise<void> {
    await writeSafetensors(path, new Map(this.states()), {
      metadata: { format: "pt", step: String(this.step) },
    });
  }

  /** Restore what `save` wrote; errors name the file and the missing tensor. */
  load(path: string): void {
    const f = SafetensorsFile.open(path);
    try {
      const names = new Set(f.names());
      for (const [name, t] of this.states()) {
        if (!names.has(name)) throw new Error(`${path}: optimiser state '${name}' is missing`);
        const src = f.read(name);
        assign(t, src.data);
        src.dispose();
      }
      const step = Number(f.header.metadata?.step);
      if (!Number.isInteger(step) || step < 0) throw new Error(`${path}: metadata 'step' missing or bad`);
      this.decayed.step = step;
      this.plain.step = step;
    } finally {
      f.close();
    }
  }

  dispose(): void {
    this.decayed.dispose();
    this.plain.dispose();
  }
}
