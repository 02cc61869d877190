// The optimiser side of training: AdamW with decoupled weight decay (PyTorch semantics, as Llama 3
// uses), global-norm gradient clipping, and zeroing gradients. State (m, v, step) lives beside the
// parameters and is kept across scopes; `state()`/`loadState()` expose it for checkpoints.
import { getBackend } from "../backends/index.js";
import { shapeStr, type Tensor, untracked, zeros } from "./tensor.js";

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

export class AdamW {
  readonly params: Tensor[];
  readonly m: Tensor[];
  readonly v: Tensor[];
  step = 0;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;

  constructor(params: Tensor[], opts: AdamWOptions) {
    for (const p of params) {
      if (!p.requiresGrad) throw new Error(`AdamW: ${p} does not require a gradient`);
      if (p.dtype !== "f32") throw new Error(`AdamW: ${p} is ${p.dtype}; train in f32`);
    }
    this.params = params;
    this.m = untracked(() => params.map((p) => zeros(p.shape).keep()));
    this.v = untracked(() => params.map((p) => zeros(p.shape).keep()));
    this.lr = opts.lr;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.95;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.1;
  }

  /** One update of every parameter that has a gradient (the step counter is shared). */
  update(lr = this.lr): void {
    this.step++;
    const backend = getBackend();
    const args = {
      lr,
      beta1: this.beta1,
      beta2: this.beta2,
      eps: this.eps,
      weightDecay: this.weightDecay,
      step: this.step,
    };
    this.params.forEach((p, i) => {
      if (!p.grad) return;
      backend.adamw(p.data, p.grad.data, this.m[i]!.data, this.v[i]!.data, p.size, args);
    });
  }

  zeroGrad(): void {
    zeroGrad(this.params);
  }

  /** Free the optimiser state. */
  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}

/** Set every gradient to zero (keeping the buffers). */
export function zeroGrad(params: Tensor[]): void {
  for (const p of params) p.grad?.data.fill(0);
}

/**
 * Scale all gradients so that their global L2 norm is at most maxNorm (as torch's clip_grad_norm_);
 * returns the norm before clipping. A non-finite norm is returned as is and nothing is scaled.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  const backend = getBackend();
  let ss = 0;
  for (const p of params) if (p.grad) ss += backend.sumSquares(p.grad.data, p.size);
  const norm = Math.sqrt(ss);
  if (!Number.isFinite(norm)) return norm;
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) for (const p of params) if (p.grad) backend.scale(p.grad.data, coef, p.grad.data, p.size);
  return norm;
}

/** Copy values into a tensor of the same size (optimiser state restore, weight loading). */
export function assign(dst: Tensor, values: Float32Array): void {
  if (values.length !== dst.size)
    throw new Error(`assign: ${values.length} values into ${dst} ${shapeStr(dst.shape)}`);
  dst.data.set(values);
}
