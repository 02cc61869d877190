// The `herd pretrain` configuration (JSON or YAML): model shape, token shards, stages, optimiser,
// schedule, checkpointing, declared once as PRETRAIN_SCHEMA (src/core/schema.ts: type, default, range,
// doc). `resolveConfig` fills every default and checks every field; errors name the file and the field. The resolved config is written back into the run folder so a run says exactly
// what it did.
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { type Infer, type Schema, SchemaError, validate } from "../core/schema.js";
import { preset } from "../model/presets.js";
import { DEFAULT_EVAL, type EvalConfig } from "./heldoutSplit.js";
import {
  LONG_CONTEXT_SCHEMA,
  type LongContextConfig,
  resolveLongContextConfig,
} from "./longContextConfig.js";
import { DEFAULT_OPTIMIZER, type OptimizerConfig } from "./optimizer.js";

export type StageKind = "initial" | "long-context" | "annealing";

export interface StageConfig {
  name: string;
  kind: StageKind;
  steps: number;
  seqLen: number;
  /** Sequences per optimiser step (the global batch). */
  batch: number;
  /** Sequences per forward pass; batch / microBatch micro-batches are accumulated. */
  microBatch: number;
  /** Token shards of this stage (default: data.shards); annealing reads the high-quality mix here. */
  shards: string[];
  /**
   * Batch / sequence-length ramp (spec §6.1: 4M tokens × 4,096 → 8M × 8,192 after 252M tokens → 16M):
   * once the stage has trained on `afterTokens` tokens, steps use this entry's shape. Thresholds rise.
   */
  ramp: RampEntry[];
}

export interface RampEntry {
  /** Tokens of this stage after which the entry applies. */
  afterTokens: number;
  batch: number;
  seqLen: number;
  /** Default: the largest divisor of batch whose micro-batch holds no more tokens than the stage's. */
  microBatch: number;
}

export interface PretrainConfig {
  name: string;
  /** Folder holding runs/<name>/ (default "runs" beside the config file). */
  runsDir: string;
  /** A preset name (src/model/presets.ts) plus optional overrides of its fields. */
  model: { preset: string; overrides: Record<string, unknown>; recompute: boolean };
  /** validation: held-out shards no stage trains on (default: the end of each shard, heldoutSplit.ts). */
  data: { shards: string[]; validation?: string[] };
  seed: number;
  optimizer: OptimizerConfig;
  schedule: { peakLR: number; warmupSteps: number; floorLR: number };
  stages: StageConfig[];
  /**
   * Checkpoint every `every` steps and at each stage's end, keep the newest `keep`; during annealing the
   * weights every `annealEvery` steps (and at the stage's end) are folded into the running average.
   */
  checkpoint: { every: number; keep: number; annealEvery: number };
  /** final/ is the running average of the annealing weights (Polyak averaging, spec §6.3). */
  averageAnnealing: boolean;
  /** The held-out split (heldoutSplit.ts) and the held-out loss (src/eval/heldout.ts). */
  eval: EvalConfig;
  /** The checks at the end of each long-context stage (longContextConfig.ts; run by src/eval/longContext.ts). */
  longContext: LongContextConfig;
  /**
   * A step whose loss or gradient norm is NaN or infinite: "stop" ends the run with an error before
   * the update (nothing non-finite is checkpointed); "skip" drops the step's update, records it as
   * skipped and goes on, and stops once more than `maxSkips` steps of the run were skipped.
   */
  nonFinite: { action: NonFiniteAction; maxSkips: number };
}

export type NonFiniteAction = "stop" | "skip";

type Obj = Record<string, unknown>;

const pos = { min: 0, minExclusive: true } as const;
const unit = { min: 0, max: 1, maxExclusive: true } as const;

const RAMP_SCHEMA = {
  afterTokens: {
    type: "integer",
    min: 1,
    doc: "tokens of this stage after which the entry applies (rising)",
  },
  batch: { type: "integer", min: 1, doc: "sequences per optimiser step from then on" },
  seqLen: { type: "integer", min: 1, doc: "sequence length from then on" },
  microBatch: {
    type: "integer",
    min: 1,
    optional: true,
    defaultDoc: "the largest divisor of batch whose micro-batch holds no more tokens than the stage's",
    doc: "sequences per forward pass",
  },
} as const satisfies Schema;

const STAGE_SCHEMA = {
  name: {
    type: "string",
    nonEmpty: true,
    optional: true,
    defaultDoc: "`<kind>-<index>`",
    doc: "the stage's name",
  },
  kind: {
    type: "enum",
    choices: ["initial", "long-context", "annealing"],
    default: "initial",
    doc: "the stage's part of the recipe",
  },
  steps: { type: "integer", min: 1, doc: "optimiser steps" },
  seqLen: { type: "integer", min: 1, doc: "tokens per sequence" },
  batch: { type: "integer", min: 1, doc: "sequences per optimiser step (the global batch)" },
  microBatch: {
    type: "integer",
    min: 1,
    optional: true,
    defaultDoc: "batch",
    doc: "sequences per forward pass; batch / microBatch micro-batches are accumulated",
  },
  shards: {
    type: "strings",
    nonEmpty: true,
    optional: true,
    defaultDoc: "data.shards",
    doc: "token shards of this stage (annealing reads the high-quality mix here)",
  },
  ramp: { type: "list", of: RAMP_SCHEMA, default: [], doc: "batch / sequence-length ramp (spec §6.1)" },
} as const satisfies Schema;

/**
 * The pre-training config, declared once: every field's type, default, range and doc. resolveConfig
 * checks a file against it; docs/pretrain.md's table of fields is configTable(PRETRAIN_SCHEMA)
 * (scripts/readme-knobs.mjs writes it, test/train/configSchema.test.ts checks it).
 */
export const PRETRAIN_SCHEMA = {
  name: {
    type: "string",
    nonEmpty: true,
    doc: "the run's folder under runsDir",
    check: (v: string) =>
      /[/\\]/.test(v) || v.startsWith(".") || v.trim() !== v
        ? `must be one folder name under runsDir (no '/', '\\', leading '.' or surrounding spaces; got ${JSON.stringify(v)})`
        : null,
  },
  runsDir: {
    type: "string",
    nonEmpty: true,
    default: "runs",
    doc: "folder holding `runs/<name>/` (relative: beside the config file)",
  },
  model: {
    type: "object",
    doc: "the model",
    fields: {
      preset: {
        type: "string",
        nonEmpty: true,
        default: "tiny",
        doc: "a preset name (src/model/presets.ts)",
      },
      overrides: {
        type: "object",
        default: {},
        doc: "fields of the preset to change, e.g. { vocabSize: 4096 }",
      },
      recompute: {
        type: "boolean",
        default: false,
        doc: "recompute activations in the backward pass (less memory)",
      },
    },
  },
  data: {
    type: "object",
    doc: "the token shards",
    fields: {
      shards: {
        type: "strings",
        nonEmpty: true,
        doc: "token shards (HERDTOKS v1) every stage trains on by default",
      },
      validation: {
        type: "strings",
        nonEmpty: true,
        optional: true,
        defaultDoc: "the end of each shard (eval.heldout)",
        doc: "held-out shards no stage trains on",
      },
    },
  },
  seed: { type: "integer", min: 0, default: 1, doc: "seed of the initialisation and the data order" },
  optimizer: {
    type: "object",
    doc: "AdamW",
    fields: {
      beta1: { type: "number", ...unit, default: DEFAULT_OPTIMIZER.beta1, doc: "first-moment decay" },
      beta2: { type: "number", ...unit, default: DEFAULT_OPTIMIZER.beta2, doc: "second-moment decay" },
      eps: {
        type: "number",
        ...pos,
        default: DEFAULT_OPTIMIZER.eps,
        doc: "added to the second moment's root",
      },
      weightDecay: {
        type: "number",
        min: 0,
        default: DEFAULT_OPTIMIZER.weightDecay,
        doc: "decoupled weight decay of matrices",
      },
      clipNorm: {
        type: "number",
        ...pos,
        default: DEFAULT_OPTIMIZER.clipNorm,
        doc: "global gradient-norm clipping",
      },
    },
  },
  schedule: {
    type: "object",
    doc: "warm-up + cosine (annealing: linear to 0)",
    fields: {
      peakLR: { type: "number", ...pos, default: 1e-3, doc: "learning rate after the warm-up" },
      warmupSteps: { type: "integer", min: 0, default: 10, doc: "linear warm-up steps" },
      floorLR: {
        type: "number",
        min: 0,
        optional: true,
        defaultDoc: "peakLR / 100",
        doc: "end of the cosine, in [0, peakLR]",
      },
    },
  },
  stages: { type: "list", of: STAGE_SCHEMA, nonEmpty: true, doc: "the stages, in order" },
  checkpoint: {
    type: "object",
    doc: "checkpoints",
    fields: {
      every: {
        type: "integer",
        min: 1,
        default: 50,
        doc: "checkpoint every this many steps (and at each stage's end)",
      },
      keep: { type: "integer", min: 1, default: 3, doc: "checkpoints kept (the newest)" },
      annealEvery: {
        type: "integer",
        min: 1,
        default: 5,
        doc: "annealing weights folded into the average every this many steps",
      },
    },
  },
  averageAnnealing: {
    type: "boolean",
    default: true,
    doc: "final/ is the running average of the annealing weights",
  },
  eval: {
    type: "object",
    doc: "the held-out split and loss",
    fields: {
      every: {
        type: "integer",
        min: 0,
        default: DEFAULT_EVAL.every,
        doc: "valLoss every this many steps (0: stage ends only)",
      },
      heldout: {
        type: "number",
        min: 0,
        max: 0.5,
        maxExclusive: true,
        default: DEFAULT_EVAL.heldout,
        doc: "fraction of each shard's tokens held out (0 disables)",
      },
      tokens: {
        type: "integer",
        min: 1,
        default: DEFAULT_EVAL.tokens,
        doc: "held-out tokens scored per valLoss",
      },
    },
  },
  longContext: {
    type: "object",
    fields: LONG_CONTEXT_SCHEMA,
    doc: "the checks ending each long-context stage",
  },
  nonFinite: {
    type: "object",
    doc: "a step whose loss or gradient norm is NaN or infinite",
    fields: {
      action: {
        type: "enum",
        choices: ["stop", "skip"],
        default: "stop",
        doc: "stop the run, or skip the step's update",
      },
      maxSkips: { type: "integer", min: 0, default: 10, doc: "skipped steps allowed before stopping" },
    },
  },
} as const satisfies Schema;

const fail = (file: string, path: string, why: string) => new SchemaError(file, [{ path, why }]);

/** Fill defaults and validate; relative shard paths resolve against `baseDir`. */
export function resolveConfig(raw: unknown, file: string, baseDir: string): PretrainConfig {
  const c = validate(PRETRAIN_SCHEMA, raw, file);
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const presetKeys = Object.keys(preset("tiny"));
  for (const k of Object.keys(c.model.overrides))
    if (!presetKeys.includes(k))
      throw fail(file, `model.overrides.${k}`, `is not a known field (known: ${presetKeys.join(", ")})`);
  const shards = c.data.shards.map(abs);
  const { peakLR } = c.schedule;
  const floorLR = c.schedule.floorLR ?? peakLR / 100;
  if (floorLR > peakLR) throw fail(file, "schedule.floorLR", `must be in [0, peakLR], got ${floorLR}`);
  const stages = c.stages.map((g, i): StageConfig => {
    const microBatch = g.microBatch ?? g.batch;
    if (g.batch % microBatch !== 0)
      throw fail(file, `stages[${i}].microBatch`, `(${microBatch}) must divide batch (${g.batch})`);
    return {
      name: g.name ?? `${g.kind}-${i}`,
      kind: g.kind,
      steps: g.steps,
      seqLen: g.seqLen,
      batch: g.batch,
      microBatch,
      shards: g.shards ? g.shards.map(abs) : shards,
      ramp: resolveRamp(file, `stages[${i}].ramp`, g.ramp, microBatch * g.seqLen),
    };
  });
  return {
    name: c.name,
    runsDir: abs(c.runsDir),
    model: c.model,
    data: c.data.validation ? { shards, validation: c.data.validation.map(abs) } : { shards },
    seed: c.seed,
    optimizer: c.optimizer,
    schedule: { peakLR, warmupSteps: c.schedule.warmupSteps, floorLR },
    stages,
    checkpoint: c.checkpoint,
    averageAnnealing: c.averageAnnealing,
    eval: c.eval,
    longContext: resolveLongContextConfig(c.longContext, abs),
    nonFinite: c.nonFinite,
  };
}

/** The largest divisor of `batch` whose micro-batch of `seqLen` holds at most `tokens` tokens (≥ 1). */
export function fittingMicroBatch(batch: number, seqLen: number, tokens: number): number {
  for (let m = Math.min(batch, Math.floor(tokens / seqLen)); m > 1; m--) if (batch % m === 0) return m;
  return 1;
}

function resolveRamp(
  file: string,
  field: string,
  raw: Infer<typeof RAMP_SCHEMA>[],
  microTokens: number,
): RampEntry[] {
  let prev = 0;
  return raw.map((e, j): RampEntry => {
    if (e.afterTokens <= prev)
      throw fail(
        file,
        `${field}[${j}].afterTokens`,
        `(${e.afterTokens}) must be above the previous threshold (${prev})`,
      );
    prev = e.afterTokens;
    const microBatch = e.microBatch ?? fittingMicroBatch(e.batch, e.seqLen, microTokens);
    if (e.batch % microBatch !== 0)
      throw fail(file, `${field}[${j}].microBatch`, `(${microBatch}) must divide batch (${e.batch})`);
    return { afterTokens: e.afterTokens, batch: e.batch, seqLen: e.seqLen, microBatch };
  });
}

/** The shape (batch, seqLen, microBatch) of a stage's step once the stage has trained on `stageTokens`. */
export function stageShape(
  stage: StageConfig,
  stageTokens: number,
): { batch: number; seqLen: number; microBatch: number } {
  let shape = { batch: stage.batch, seqLen: stage.seqLen, microBatch: stage.microBatch };
  for (const r of stage.ramp) if (stageTokens >= r.afterTokens) shape = r;
  return { batch: shape.batch, seqLen: shape.seqLen, microBatch: shape.microBatch };
}

/** Read a JSON (.json) or YAML (anything else) config file and resolve it. */
export function loadConfig(path: string): PretrainConfig {
  const text = readFileSync(path, "utf8");
  let raw: unknown;
  try {
    raw = path.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new Error(
      `${path}: not valid ${path.endsWith(".json") ? "JSON" : "YAML"}: ${(e as Error).message}`,
    );
  }
  return resolveConfig(raw, path, dirname(resolve(path)));
}

/** Every leaf of a JSON value that differs between `a` and `b`: "field: old → new", fields dotted. */
export function configChanges(a: unknown, b: unknown, path = ""): string[] {
  const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    return keys.flatMap((k) => configChanges(a[k], b[k], path ? `${path}.${k}` : k));
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length)
    return a.flatMap((v, i) => configChanges(v, b[i], `${path}[${i}]`));
  const ja = JSON.stringify(a);
  const jb = JSON.stringify(b);
  return ja === jb ? [] : [`${path}: ${ja ?? "(unset)"} → ${jb ?? "(unset)"}`];
}
