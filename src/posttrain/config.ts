// The post-training settings (spec §7), declared once with core/schema.ts: the trainers take the typed
// values, the CLI spreads the same fields into its options (so --help and validation follow from here),
// and a rounds file can validate them the same way. Keys are the command-line spellings.
import { type Infer, type Schema, UsageError, validate } from "../core/schema.js";

/** What SFT, DPO and the reward model share: the optimiser, schedule, batching and checkpoints. */
const COMMON = {
  epochs: { type: "integer", min: 1, default: 1, doc: "passes over the data" },
  steps: {
    type: "integer",
    min: 1,
    default: null,
    defaultDoc: "epochs × batches per epoch",
    doc: "optimiser steps (overrides epochs)",
  },
  batch: {
    type: "integer",
    min: 1,
    default: 8,
    doc: "examples per optimiser step (SFT: packed rows of --seq-len; DPO/RM: pairs)",
  },
  "micro-batch": {
    type: "integer",
    min: 1,
    default: 8,
    doc: "examples per forward; the step accumulates batch/micro-batch of them (exactly: the loss is normalised over the whole step)",
  },
  "seq-len": {
    type: "integer",
    min: 2,
    default: null,
    defaultDoc: "the model's context, at most 2048",
    doc: "tokens per row; longer examples are skipped and reported",
  },
  "warmup-steps": { type: "integer", min: 0, default: 0, doc: "linear warm-up steps, then cosine to lr/10" },
  "weight-decay": {
    type: "number",
    min: 0,
    default: 0,
    doc: "AdamW weight decay on matrices (TRL's default 0)",
  },
  "clip-norm": {
    type: "number",
    min: 0,
    minExclusive: true,
    default: 1,
    doc: "global gradient-norm clipping",
  },
  seed: {
    type: "integer",
    default: 0,
    doc: "shuffling seed (and the initialisation of the reward head or of LoRA's A, and its dropout masks)",
  },
  "checkpoint-every": { type: "integer", min: 1, default: 100, doc: "steps between resumable checkpoints" },
  "keep-checkpoints": { type: "integer", min: 1, default: 2, doc: "checkpoints kept (newest)" },
} as const satisfies Schema;

const LR_DOC =
  "peak learning rate; default: the paper's 1e-5 (§7.1, for the 405B model) for models of hidden size ≥ 2048 " +
  "(the published shapes), 1e-4 below: the tiny/small presets were pre-trained at a few 1e-3 and barely move " +
  "at 1e-5 in the few hundred steps a small SFT set gives";

export const SFT_SCHEMA = {
  lr: {
    type: "number",
    min: 0,
    minExclusive: true,
    default: null,
    defaultDoc: "1e-5, or 1e-4 for small models",
    doc: LR_DOC,
  },
  ...COMMON,
} as const satisfies Schema;

export const DPO_SCHEMA = {
  lr: {
    type: "number",
    min: 0,
    minExclusive: true,
    default: null,
    defaultDoc: "1e-5, or 1e-4 for small models",
    doc: "peak learning rate (the paper's DPO: 1e-5; small models as for SFT)",
  },
  beta: { type: "number", min: 0, minExclusive: true, default: 0.1, doc: "DPO's β (the paper: 0.1)" },
  "nll-weight": {
    type: "number",
    min: 0,
    default: 0.2,
    doc: "weight of the NLL term on the chosen responses (the paper: 0.2; 0 turns it off)",
  },
  "nll-reduction": {
    type: "enum",
    choices: ["token-mean", "sequence-sum"],
    default: "token-mean",
    doc: "token-mean: the NLL is the mean over all chosen-response tokens of the step, as TRL's loss_type [sigmoid, sft] with loss_weights [1, 0.2] computes it; sequence-sum: each chosen response's summed NLL, averaged over the pairs",
  },
  ...COMMON,
  batch: { ...COMMON.batch, default: 4 },
  "micro-batch": { ...COMMON["micro-batch"], default: 4 },
} as const satisfies Schema;

export const RM_SCHEMA = {
  lr: {
    type: "number",
    min: 0,
    minExclusive: true,
    default: null,
    defaultDoc: "1e-5, or 1e-4 for small models",
    doc: "peak learning rate (the base model and the scalar head together)",
  },
  ...COMMON,
  batch: { ...COMMON.batch, default: 4 },
  "micro-batch": { ...COMMON["micro-batch"], default: 4 },
} as const satisfies Schema;

/** The settings every trainer's resume is checked against (run.json). */
export const TRAIN_KEYS = ["lr", ...Object.keys(COMMON)] as const;

export type SftConfig = Infer<typeof SFT_SCHEMA>;
export type DpoConfig = Infer<typeof DPO_SCHEMA>;
export type RmConfig = Infer<typeof RM_SCHEMA>;
export type CommonConfig = Infer<typeof COMMON> & { lr: number | null };

/** The learning rate a config resolves to for a model of width `hidden`. */
export function resolveLR(lr: number | null, hidden: number): number {
  return lr ?? (hidden >= 2048 ? 1e-5 : 1e-4);
}

/** The sequence length a config resolves to for a model with context `context`. */
export function resolveSeqLen(seqLen: number | null, context: number): number {
  if (seqLen !== null && seqLen > context)
    throw new UsageError(`--seq-len: ${seqLen} is longer than the model's context of ${context}`);
  return seqLen ?? Math.min(context, 2048);
}

/** Validated settings from a plain object (defaults filled; errors name `source` and the field). */
export const sftConfig = (raw: Record<string, unknown> = {}, source = "(sft settings)"): SftConfig =>
  validate(SFT_SCHEMA, raw, source);
export const dpoConfig = (raw: Record<string, unknown> = {}, source = "(dpo settings)"): DpoConfig =>
  validate(DPO_SCHEMA, raw, source);
export const rmConfig = (raw: Record<string, unknown> = {}, source = "(rm settings)"): RmConfig =>
  validate(RM_SCHEMA, raw, source);
