// LoRA (Hu et al. 2021, as Hugging Face PEFT implements it): each targeted layer matrix W [out, in] of a
// frozen Llama gets two trainable f32 matrices, A [r, in] and B [out, r], and its output becomes
//   y = x·Wᵀ + (dropout(x)·Aᵀ·Bᵀ)·scaling,   scaling = alpha / r   (alpha / √r with rsLoRA).
// A starts as PEFT's default (kaiming-uniform with a = √5, i.e. U(−1/√in, 1/√in)), B as zeros, so the
// adapted model starts equal to the base. The base may be f32, bf16 or Q8_0/Q4_0: it is frozen, and only
// the input gradient flows through it (src/tensor/linearBf16.ts, quant.ts). A trainer takes
// `lora.parameters()` as its trainable list; `lora.disabled(fn)` runs fn on the base alone (DPO's
// reference model, as torchtune does); `lora.merge()` folds B·A·scaling into the base weights (rounded
// to the base's dtype) and removes the adapters. Target names follow PEFT's matching: a list entry
// matches a module whose name equals it or ends in "." + it; a string is a regular expression matched
// against whole module names, or "all-linear". PEFT files: src/posttrain/peft.ts.

import { getBackend } from "../backends/index.js";
import { fmix32, Rng } from "../core/rng.js";
import type { Schema } from "../core/schema.js";
import { bf16BitsToF32, f32ToBf16Bits } from "../io/half.js";
import type { ForwardPass, LinearAdapter, Llama, Matrix } from "../model/llama.js";
import { add, linear, mul, scale } from "../tensor/ops.js";
import { dequantizeRow, QuantTensor, quantizeRow, quantRowBytes } from "../tensor/quant.js";
import { noGrad } from "../tensor/tape.js";
import { type Tensor, untracked, zeros } from "../tensor/tensor.js";

/** The linear modules of a Llama layer, by their PEFT (HF module) names. */
export const LORA_TARGETS = [
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
  "gate_proj",
  "up_proj",
  "down_proj",
] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

/** Where each target sits in a layer (HF names: model.layers.{i}.{part}.weight). */
export const LORA_PARTS: Readonly<Record<LoraTarget, string>> = {
  q_proj: "self_attn.q_proj",
  k_proj: "self_attn.k_proj",
  v_proj: "self_attn.v_proj",
  o_proj: "self_attn.o_proj",
  gate_proj: "mlp.gate_proj",
  up_proj: "mlp.up_proj",
  down_proj: "mlp.down_proj",
};

export interface LoraOptions {
  /** r: the rank of A and B. */
  rank: number;
  /** lora_alpha: the update is scaled by alpha / rank. */
  alpha: number;
  /** lora_dropout: the probability an input feature is zeroed before A while training (default 0). */
  dropout?: number;
  /** target_modules: names (PEFT suffix matching), a regular expression, or "all-linear" (the default). */
  targets?: readonly string[] | string;
  /** use_rslora: scale by alpha / √rank instead (default false). */
  useRslora?: boolean;
  /** Seed of A's initialisation and of the dropout masks (default 0). */
  seed?: number;
  /** Initialise A randomly (default true); false leaves A and B zero, for a loader to fill. */
  init?: boolean;
}

/** The options as `sft`/`dpo` commands declare them (src/core/schema.ts); see loraOptionsFrom. */
export const LORA_OPTIONS = {
  lora: {
    type: "boolean",
    default: false,
    doc: "train a LoRA adapter on a frozen base instead of every weight",
  },
  "lora-rank": { type: "integer", min: 1, default: 8, arg: "R", doc: "LoRA rank r (PEFT's default)" },
  "lora-alpha": {
    type: "number",
    min: 0,
    minExclusive: true,
    default: 16,
    arg: "A",
    doc: "LoRA alpha: updates are scaled by alpha / rank",
  },
  "lora-dropout": {
    type: "number",
    min: 0,
    max: 1,
    maxExclusive: true,
    default: 0,
    arg: "P",
    doc: "dropout on the adapter's input while training",
  },
  "lora-targets": {
    type: "strings",
    comma: true,
    arg: "NAMES",
    doc: `modules to adapt (${LORA_TARGETS.join(",")}), or all-linear`,
    defaultDoc: "all-linear",
  },
} as const satisfies Schema;

/** LoraOptions from parsed LORA_OPTIONS values (null without --lora). */
export function loraOptionsFrom(v: {
  lora?: boolean;
  "lora-rank"?: number;
  "lora-alpha"?: number;
  "lora-dropout"?: number;
  "lora-targets"?: readonly string[];
}): LoraOptions | null {
  if (!v.lora) return null;
  const t = v["lora-targets"];
  return {
    rank: v["lora-rank"] ?? 8,
    alpha: v["lora-alpha"] ?? 16,
    dropout: v["lora-dropout"] ?? 0,
    targets: !t || t.length === 0 || (t.length === 1 && t[0] === "all-linear") ? "all-linear" : t,
  };
}

/** One adapted matrix. */
export interface LoraModule {
  /** The HF module name, e.g. model.layers.3.self_attn.q_proj. */
  readonly module: string;
  readonly layer: number;
  readonly target: LoraTarget;
  /** The frozen base matrix [out, in]. */
  readonly base: Matrix;
  /** [rank, in] and [out, rank], f32, trainable. */
  readonly A: Tensor;
  readonly B: Tensor;
}

/**
 * The HF module names `targets` selects in a model of `layers` layers, in layer order (q, k, v, o,
 * gate, up, down within a layer). An entry (or pattern) that selects nothing is an error naming it.
 */
export function resolveTargets(
  targets: readonly string[] | string,
  layers: number,
): { module: string; layer: number; target: LoraTarget }[] {
  const all: { module: string; layer: number; target: LoraTarget }[] = [];
  for (let l = 0; l < layers; l++)
    for (const t of LORA_TARGETS)
      all.push({ module: `model.layers.${l}.${LORA_PARTS[t]}`, layer: l, target: t });
  const known = `the linear modules are ${LORA_TARGETS.join(", ")} (or "all-linear")`;
  if (typeof targets === "string") {
    if (targets === "all-linear") return all;
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${targets})$`);
    } catch (e) {
      throw new Error(
        `LoRA target pattern '${targets}' is not a regular expression: ${(e as Error).message}`,
      );
    }
    const hit = all.filter((m) => re.test(m.module));
    if (hit.length === 0)
      throw new Error(`LoRA target pattern '${targets}' names no module of this model; ${known}`);
    return hit;
  }
  if (targets.length === 0) throw new Error(`LoRA targets are empty; ${known}`);
  const matches = (m: { module: string }, key: string) => m.module === key || m.module.endsWith(`.${key}`);
  for (const key of targets)
    if (!all.some((m) => matches(m, key)))
      throw new Error(`LoRA target '${key}' names no module of this model; ${known}`);
  return all.filter((m) => targets.some((key) => matches(m, key)));
}

/** The factor of a LoRA update: alpha / rank, or alpha / √rank with rsLoRA. */
export function loraScaling(rank: number, alpha: number, useRslora = false): number {
  return useRslora ? alpha / Math.sqrt(rank) : alpha / rank;
}

/** A's PEFT initialisation: torch's kaiming_uniform_(a=√5) bound √(6/((1+a²)·fan_in)) = 1/√in. */
export function kaimingUniformBound(fanIn: number): number {
  return Math.sqrt(6 / ((1 + 5) * fanIn));
}

/** The LoRA adapters attached to one model. */
export class Lora {
  readonly rank: number;
  readonly alpha: number;
  readonly dropout: number;
  readonly useRslora: boolean;
  /** alpha / rank (alpha / √rank with rsLoRA). */
  readonly scaling: number;
  /** The short target names in use (q_proj, …), in LORA_TARGETS order. */
  readonly targets: LoraTarget[];
  readonly modules: LoraModule[];
  /**
   * Dropout applies while this is true in a forward that records gradients (PEFT: module.training). Its
   * masks are a function of the seed, the optimiser step (beginStep), the forward's number within the
   * step and the module, so a recomputed block (Llama.recompute) draws the same ones again, and a run
   * resumed at step s in a new process draws what the uninterrupted run drew.
   */
  training = true;
  readonly seed: number;
  private enabled = true;
  private detached = false;
  private step = 0;
  /** The index of the step's first forward (set by the first forward after beginStep). */
  private firstPass: number | null = 0;

  constructor(
    readonly model: Llama,
    opts: LoraOptions,
  ) {
    const { rank, alpha } = opts;
    const dropout = opts.dropout ?? 0;
    if (!(Number.isInteger(rank) && rank >= 1))
      throw new Error(`LoRA: rank must be an integer ≥ 1, got ${rank}`);
    if (!(alpha > 0 && Number.isFinite(alpha)))
      throw new Error(`LoRA: alpha must be a number > 0, got ${alpha}`);
    if (!(dropout >= 0 && dropout < 1)) throw new Error(`LoRA: dropout must be in [0, 1), got ${dropout}`);
    this.rank = rank;
    this.alpha = alpha;
    this.dropout = dropout;
    this.useRslora = opts.useRslora ?? false;
    this.scaling = loraScaling(rank, alpha, this.useRslora);
    this.seed = (opts.seed ?? 0) >>> 0;
    const picked = resolveTargets(opts.targets ?? "all-linear", model.config.numHiddenLayers);
    for (const p of picked)
      if (model.adapters.has(`${p.module}.weight`))
        throw new Error(`LoRA: module '${p.module}' already has an adapter (merge or remove it first)`);
    this.targets = LORA_TARGETS.filter((t) => picked.some((p) => p.target === t));
    const init = opts.init ?? true;
    const r = new Rng(this.seed);
    this.modules = untracked(() =>
      picked.map((p) => {
        const base = model.matrix(`${p.module}.weight`)!;
        const [out, inp] = base.shape as [number, number];
        const A = zeros([rank, inp]).keep();
        const B = zeros([out, rank]).keep();
        if (init) {
          const bound = kaimingUniformBound(inp);
          const a = A.data;
          for (let i = 0; i < a.length; i++) a[i] = (r.next() * 2 - 1) * bound;
        }
        A.requiresGrad = true;
        B.requiresGrad = true;
        A.name = `${p.module}.lora_A.weight`;
        B.name = `${p.module}.lora_B.weight`;
        return { ...p, base, A, B };
      }),
    );
    // The base is frozen (as PEFT's get_peft_model does): only A and B are trained.
    for (const w of model.weights.values()) w.requiresGrad = false;
    this.modules.forEach((m, i) => {
      model.adapters.set(`${m.module}.weight`, this.adapter(m, i));
    });
  }

  /** The trainable tensors: A then B of each module, in module order. */
  parameters(): Tensor[] {
    return this.modules.flatMap((m) => [m.A, m.B]);
  }

  /** Start optimiser step `step` (0-based): dropout masks from here on are this step's. */
  beginStep(step: number): void {
    this.step = step;
    this.firstPass = null;
  }

  /** Run fn with every adapter switched off (the base model alone), then switch them back on. */
  disabled<T>(fn: () => T): T {
    const was = this.enabled;
    this.enabled = false;
    try {
      return fn();
    } finally {
      this.enabled = was;
    }
  }

  /**
   * Fold each update into its base matrix, W ← W + B·A·scaling (rounded to the base's dtype: bf16 by
   * round-to-nearest-even, Q8_0/Q4_0 by re-quantising each row by ggml's rules), then remove the
   * adapters from the model and free them. The model is then the plain, merged one.
   */
  merge(): void {
    this.assertAttached("merge");
    const backend = getBackend();
    noGrad(() => {
      for (const m of this.modules) {
        const [out, inp] = m.base.shape as [number, number];
        const r = this.rank;
        const rowsPer = Math.max(1, Math.min(out, Math.floor((1 << 20) / Math.max(1, inp))));
        const delta = backend.alloc(rowsPer * inp);
        const row = new Float32Array(inp);
        try {
          for (let j0 = 0; j0 < out; j0 += rowsPer) {
            const nb = Math.min(rowsPer, out - j0);
            const d = delta.subarray(0, nb * inp);
            backend.matmul(m.B.data.subarray(j0 * r, (j0 + nb) * r), m.A.data, d, {
              batch: 1,
              m: nb,
              n: inp,
              k: r,
              transA: false,
              transB: false,
              strideA: 0,
              strideB: 0,
              strideC: 0,
              accumulate: false,
            });
            for (let j = 0; j < nb; j++) {
              const dj = d.subarray(j * inp, (j + 1) * inp);
              foldRow(m.base, j0 + j, dj, this.scaling, row);
            }
          }
        } finally {
          backend.free(delta);
        }
      }
    });
    this.remove();
  }

  /** Remove the adapters from the model without merging them, and free A and B. */
  remove(): void {
    this.assertAttached("remove");
    for (const m of this.modules) {
      this.model.adapters.delete(`${m.module}.weight`);
      m.A.dispose();
      m.B.dispose();
    }
    this.detached = true;
  }

  private assertAttached(what: string): void {
    if (this.detached) throw new Error(`LoRA.${what}: the adapters were already merged or removed`);
  }

  private adapter(m: LoraModule, index: number): LinearAdapter {
    return {
      parameters: [m.A, m.B],
      apply: (x, y, pass) => {
        if (!this.enabled) return y;
        let xi = x;
        if (this.dropout > 0 && this.training && pass.training) xi = mul(x, this.dropoutMask(x, pass, index));
        return add(y, linear(scale(linear(xi, m.A), this.scaling), m.B));
      },
    };
  }

  /** Inverted dropout: each element kept with probability 1 − p and then scaled by 1/(1 − p). */
  private dropoutMask(x: Tensor, pass: ForwardPass, module: number): Tensor {
    this.firstPass ??= pass.index;
    const within = pass.index - this.firstPass;
    const rng = new Rng(
      fmix32(fmix32(this.seed ^ 0x6c6f7261) + fmix32(within) * 31 + module + fmix32(this.step + 1) * 17),
    );
    const mask = zeros(x.shape);
    const keep = 1 / (1 - this.dropout);
    const d = mask.data;
    for (let i = 0; i < d.length; i++) d[i] = rng.next() < this.dropout ? 0 : keep;
    return mask;
  }
}

/** Attach LoRA adapters to `model` (its base weights become frozen). */
export function applyLora(model: Llama, opts: LoraOptions): Lora {
  return new Lora(model, opts);
}

/** Row j of W += s·delta, in W's own storage (f32, bf16 or quantised blocks); row is scratch. */
function foldRow(w: Matrix, j: number, delta: Float32Array, s: number, row: Float32Array): void {
  const k = delta.length;
  if (w instanceof QuantTensor) {
    dequantizeRow(w.blocks, w.format, j, k, row);
    for (let p = 0; p < k; p++) row[p] = row[p]! + s * delta[p]!;
    quantizeRow(row, w.format, w.blocks, j * quantRowBytes(w.format, k));
    return;
  }
  if (w.dtype === "f32") {
    const d = w.data;
    const o = j * k;
    for (let p = 0; p < k; p++) d[o + p] = d[o + p]! + s * delta[p]!;
    return;
  }
  if (w.dtype !== "bf16") throw new Error(`LoRA.merge: base weight${w.label()} is ${w.dtype}`);
  const bits = w.halfBits;
  const o = j * k;
  for (let p = 0; p < k; p++) bits[o + p] = f32ToBf16Bits(bf16BitsToF32(bits[o + p]!) + s * delta[p]!);
}
