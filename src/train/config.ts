// The `herd pretrain` configuration (JSON or YAML): model shape, token shards, stages, optimiser,
// schedule, checkpointing. `resolveConfig` fills every default and checks every field; errors name the
// file and the field. The resolved config is written back into the run folder so a run says exactly
// what it did.
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { preset } from "../model/presets.js";
import { DEFAULT_EVAL, type EvalConfig } from "./heldoutSplit.js";
import { type LongContextConfig, resolveLongContextConfig } from "./longContextConfig.js";
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
const NON_FINITE_ACTIONS: NonFiniteAction[] = ["stop", "skip"];

type Obj = Record<string, unknown>;

class Fields {
  constructor(
    readonly file: string,
    readonly obj: Obj,
    readonly prefix: string,
  ) {}
  private fail(key: string, why: string): Error {
    return new Error(`${this.file}: field '${this.prefix}${key}' ${why}`);
  }
  num(key: string, def: number | undefined, check: (v: number) => boolean, what: string): number {
    const v = this.obj[key] ?? def;
    if (v === undefined) throw this.fail(key, "is required");
    if (typeof v !== "number" || !check(v))
      throw this.fail(key, `must be ${what} (got ${JSON.stringify(v)})`);
    return v;
  }
  int(key: string, def?: number, min = 1): number {
    return this.num(key, def, (v) => Number.isInteger(v) && v >= min, `an integer ≥ ${min}`);
  }
  str(key: string, def?: string): string {
    const v = this.obj[key] ?? def;
    if (typeof v !== "string" || v === "") throw this.fail(key, "must be a non-empty string");
    return v;
  }
  strings(key: string, def?: string[]): string[] {
    const v = this.obj[key] ?? def;
    if (!Array.isArray(v) || v.length === 0 || v.some((s) => typeof s !== "string"))
      throw this.fail(key, "must be a non-empty list of file paths");
    return v as string[];
  }
  bool(key: string, def: boolean): boolean {
    const v = this.obj[key] ?? def;
    if (typeof v !== "boolean") throw this.fail(key, "must be true or false");
    return v;
  }
  sub(key: string): Fields {
    const v = this.obj[key] ?? {};
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw this.fail(key, "must be an object");
    return new Fields(this.file, v as Obj, `${this.prefix}${key}.`);
  }
  known(keys: string[]): void {
    for (const k of Object.keys(this.obj))
      if (!keys.includes(k)) throw this.fail(k, `is not a known field (known: ${keys.join(", ")})`);
  }
}

const KINDS: StageKind[] = ["initial", "long-context", "annealing"];

/** Fill defaults and validate; relative shard paths resolve against `baseDir`. */
export function resolveConfig(raw: unknown, file: string, baseDir: string): PretrainConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new Error(`${file}: the config must be an object`);
  const f = new Fields(file, raw as Obj, "");
  f.known([
    "name",
    "runsDir",
    "model",
    "data",
    "seed",
    "optimizer",
    "schedule",
    "stages",
    "checkpoint",
    "averageAnnealing",
    "eval",
    "longContext",
    "nonFinite",
  ]);
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const m = f.sub("model");
  m.known(["preset", "overrides", "recompute"]);
  const ov = m.sub("overrides");
  ov.known(Object.keys(preset("tiny")));
  const overrides = ov.obj;
  const recompute = m.bool("recompute", false);
  const d = f.sub("data");
  d.known(["shards", "validation"]);
  const shards = d.strings("shards").map(abs);
  const validation = d.obj.validation === undefined ? undefined : d.strings("validation").map(abs);
  const o = f.sub("optimizer");
  o.known(Object.keys(DEFAULT_OPTIMIZER));
  const pos = (v: number) => v > 0;
  const optimizer: OptimizerConfig = {
    beta1: o.num("beta1", DEFAULT_OPTIMIZER.beta1, (v) => v >= 0 && v < 1, "in [0, 1)"),
    beta2: o.num("beta2", DEFAULT_OPTIMIZER.beta2, (v) => v >= 0 && v < 1, "in [0, 1)"),
    eps: o.num("eps", DEFAULT_OPTIMIZER.eps, pos, "positive"),
    weightDecay: o.num("weightDecay", DEFAULT_OPTIMIZER.weightDecay, (v) => v >= 0, "≥ 0"),
    clipNorm: o.num("clipNorm", DEFAULT_OPTIMIZER.clipNorm, pos, "positive"),
  };
  const s = f.sub("schedule");
  s.known(["peakLR", "warmupSteps", "floorLR"]);
  const peakLR = s.num("peakLR", 1e-3, pos, "positive");
  const schedule = {
    peakLR,
    warmupSteps: s.int("warmupSteps", 10, 0),
    floorLR: s.num("floorLR", peakLR / 100, (v) => v >= 0 && v <= peakLR, "in [0, peakLR]"),
  };
  const rawStages = (raw as Obj).stages;
  if (!Array.isArray(rawStages) || rawStages.length === 0)
    throw new Error(`${file}: field 'stages' must be a non-empty list`);
  const stages = rawStages.map((r, i): StageConfig => {
    if (typeof r !== "object" || r === null)
      throw new Error(`${file}: field 'stages[${i}]' must be an object`);
    const g = new Fields(file, r as Obj, `stages[${i}].`);
    g.known(["name", "kind", "steps", "seqLen", "batch", "microBatch", "shards", "ramp"]);
    const kind = g.str("kind", "initial") as StageKind;
    if (!KINDS.includes(kind))
      throw new Error(`${file}: field 'stages[${i}].kind' must be one of ${KINDS.join(", ")}`);
    const batch = g.int("batch");
    const microBatch = g.int("microBatch", batch);
    if (batch % microBatch !== 0)
      throw new Error(
        `${file}: field 'stages[${i}].microBatch' (${microBatch}) must divide batch (${batch})`,
      );
    const seqLen = g.int("seqLen");
    return {
      name: g.str("name", `${kind}-${i}`),
      kind,
      steps: g.int("steps"),
      seqLen,
      batch,
      microBatch,
      shards: (g.obj.shards === undefined ? shards : g.strings("shards")).map(abs),
      ramp: resolveRamp(file, `stages[${i}].ramp`, g.obj.ramp, microBatch * seqLen),
    };
  });
  const c = f.sub("checkpoint");
  c.known(["every", "keep", "annealEvery"]);
  const averageAnnealing = f.bool("averageAnnealing", true);
  const e = f.sub("eval");
  e.known(Object.keys(DEFAULT_EVAL));
  const nf = f.sub("nonFinite");
  nf.known(["action", "maxSkips"]);
  const action = nf.str("action", "stop") as NonFiniteAction;
  if (!NON_FINITE_ACTIONS.includes(action))
    throw new Error(
      `${file}: field 'nonFinite.action' must be one of ${NON_FINITE_ACTIONS.join(", ")} (got ${JSON.stringify(action)})`,
    );
  const name = f.str("name");
  if (/[/\\]/.test(name) || name.startsWith(".") || name.trim() !== name)
    throw new Error(
      `${file}: field 'name' must be one folder name under runsDir (no '/', '\\', leading '.' or surrounding spaces; got ${JSON.stringify(name)})`,
    );
  return {
    name,
    runsDir: abs(f.str("runsDir", "runs")),
    model: { preset: m.str("preset", "tiny"), overrides, recompute },
    data: validation ? { shards, validation } : { shards },
    seed: f.int("seed", 1, 0),
    optimizer,
    schedule,
    stages,
    checkpoint: { every: c.int("every", 50), keep: c.int("keep", 3), annealEvery: c.int("annealEvery", 5) },
    averageAnnealing,
    eval: {
      every: e.int("every", DEFAULT_EVAL.every, 0),
      heldout: e.num("heldout", DEFAULT_EVAL.heldout, (v) => v >= 0 && v < 0.5, "a fraction in [0, 0.5)"),
      tokens: e.int("tokens", DEFAULT_EVAL.tokens),
    },
    longContext: resolveLongContextConfig((raw as Obj).longContext, file, abs),
    nonFinite: { action, maxSkips: nf.int("maxSkips", 10, 0) },
  };
}

/** The largest divisor of `batch` whose micro-batch of `seqLen` holds at most `tokens` tokens (≥ 1). */
export function fittingMicroBatch(batch: number, seqLen: number, tokens: number): number {
  for (let m = Math.min(batch, Math.floor(tokens / seqLen)); m > 1; m--) if (batch % m === 0) return m;
  return 1;
}

function resolveRamp(file: string, field: string, raw: unknown, microTokens: number): RampEntry[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw new Error(`${file}: field '${field}' must be a list`);
  let prev = 0;
  return raw.map((r, j): RampEntry => {
    if (typeof r !== "object" || r === null || Array.isArray(r))
      throw new Error(`${file}: field '${field}[${j}]' must be an object`);
    const e = new Fields(file, r as Obj, `${field}[${j}].`);
    e.known(["afterTokens", "batch", "seqLen", "microBatch"]);
    const afterTokens = e.int("afterTokens");
    if (afterTokens <= prev)
      throw new Error(
        `${file}: field '${field}[${j}].afterTokens' (${afterTokens}) must be above the previous threshold (${prev})`,
      );
    prev = afterTokens;
    const batch = e.int("batch");
    const seqLen = e.int("seqLen");
    const microBatch = e.int("microBatch", fittingMicroBatch(batch, seqLen, microTokens));
    if (batch % microBatch !== 0)
      throw new Error(
        `${file}: field '${field}[${j}].microBatch' (${microBatch}) must divide batch (${batch})`,
      );
    return { afterTokens, batch, seqLen, microBatch };
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
