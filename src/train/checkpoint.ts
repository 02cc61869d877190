// Training checkpoints (spec §8.4: the 405B run had 466 interruptions; a restart must lose nothing).
// One folder per step, checkpoints/step-00000012/: the weights as an HF directory (config.json,
// model.safetensors, via writeHFCheckpoint), optimizer.safetensors, during annealing polyak.safetensors
// (the running average, polyak.ts), and trainer_state.json (step, tokens, loader position, RNG state). The folder is written under a temporary name and renamed into place, and
// trainer_state.json is written last, so a kill at any moment never leaves a folder a resume would pick;
// every file and the folder are fsynced before the rename and the parent after it (a power loss too).
// A run that trains no model weight (LoRA: a frozen base) passes model null: its folder then holds no
// weights, and its trainable tensors go in as `files` (written into the folder before the rename).
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { fsyncDir, fsyncTree } from "../io/atomic.js";
import { averageWeights } from "../model/average.js";
import { readHFCheckpoint, writeHFCheckpoint } from "../model/checkpoint/hf.js";
import { toHFConfig } from "../model/config.js";
import type { Llama } from "../model/llama.js";
import { assign } from "../tensor/optim.js";
import type { Tensor } from "../tensor/tensor.js";
import type { LoaderPosition } from "./loader.js";
import { allFinite, type PretrainOptimizer } from "./optimizer.js";
import { POLYAK_STATE, type PolyakAverage } from "./polyak.js";

export const TRAINER_STATE = "trainer_state.json";
export const OPTIMIZER_STATE = "optimizer.safetensors";

export interface TrainerState {
  /** Optimiser steps completed. */
  step: number;
  /** Tokens trained on so far. */
  tokens: number;
  loader: LoaderPosition;
  rng: number;
}

const STEP_DIR = /^step-(\d{8})$/;

export function stepDirName(step: number): string {
  return `step-${String(step).padStart(8, "0")}`;
}

/** Completed checkpoint folders under `dir`, oldest first. */
export function listCheckpoints(dir: string): { step: number; path: string }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((n) => ({ m: STEP_DIR.exec(n), n }))
    .filter(({ m, n }) => m && existsSync(join(dir, n, TRAINER_STATE)))
    .map(({ m, n }) => ({ step: Number(m![1]), path: join(dir, n) }))
    .sort((a, b) => a.step - b.step);
}

/** The name of the first tensor holding a NaN or an infinity, else null. */
export function firstNonFinite(tensors: ReadonlyMap<string, Tensor>): string | null {
  for (const [name, t] of tensors) if (!allFinite(t.data)) return name;
  return null;
}

/**
 * Write a checkpoint folder atomically (with the running average when it has samples, and whatever
 * `files` writes into the folder), keep the newest `keep`. Refused when a weight or optimiser value is
 * not finite, so the rotation only ever deletes folders older than a finite one. model null: no weights.
 */
export async function saveCheckpoint(
  dir: string,
  model: Llama | null,
  opt: PretrainOptimizer,
  state: TrainerState,
  keep: number,
  polyak?: PolyakAverage,
  files?: (folder: string) => Promise<void>,
): Promise<string> {
  const bad =
    (model ? firstNonFinite(model.weights) : null) ??
    opt.firstNonFinite() ??
    (polyak && polyak.count > 0 ? firstNonFinite(polyak.mean) : null);
  if (bad)
    throw new Error(
      `${join(dir, stepDirName(state.step))}: '${bad}' holds a NaN or an infinity; checkpoint not written`,
    );
  mkdirSync(dir, { recursive: true });
  const final = join(dir, stepDirName(state.step));
  const tmp = join(dir, `.${stepDirName(state.step)}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  if (model) await writeHFCheckpoint(tmp, toHFConfig(model.config, "f32"), model.weights);
  else mkdirSync(tmp, { recursive: true });
  await opt.save(join(tmp, OPTIMIZER_STATE));
  if (files) await files(tmp);
  if (polyak && polyak.count > 0) await polyak.save(join(tmp, POLYAK_STATE));
  writeFileSync(join(tmp, TRAINER_STATE), `${JSON.stringify(state, null, 2)}\n`);
  fsyncTree(tmp); // every file and the folder on disk before the rename: a power loss keeps them whole
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  fsyncDir(dir);
  const all = listCheckpoints(dir);
  for (const c of all.slice(0, Math.max(0, all.length - keep)))
    rmSync(c.path, { recursive: true, force: true });
  return final;
}

/** Remove half-written folders a killed run left behind. */
export function removeStaleTemps(dir: string): void {
  if (!existsSync(dir)) return;
  for (const n of readdirSync(dir))
    if (n.startsWith(".step-") && n.includes(".tmp-")) rmSync(join(dir, n), { recursive: true, force: true });
}

/**
 * Load weights, optimiser state and trainer state from a checkpoint folder into `model`/`opt`, and the
 * running average into `polyak` (emptied when the folder has none). model null: a folder without weights.
 */
export async function loadCheckpoint(
  path: string,
  model: Llama | null,
  opt: PretrainOptimizer,
  polyak?: PolyakAverage,
): Promise<TrainerState> {
  const state = readTrainerState(join(path, TRAINER_STATE));
  const dirStep = STEP_DIR.exec(basename(path));
  if (dirStep && Number(dirStep[1]) !== state.step)
    throw new Error(`${join(path, TRAINER_STATE)}: field 'step' (${state.step}) is not the folder's step`);
  if (model) {
    const { tensors } = await readHFCheckpoint(path);
    try {
      for (const [name, t] of model.weights) {
        const src = tensors.get(name);
        if (!src) throw new Error(`${path}: weight '${name}' is missing`);
        if (src.size !== t.size)
          throw new Error(`${path}: weight '${name}' has shape [${src.shape}], the model's is [${t.shape}]`);
        assign(t, src.data);
      }
    } finally {
      for (const t of tensors.values()) t.dispose();
    }
  }
  opt.load(join(path, OPTIMIZER_STATE));
  if (polyak && model) {
    if (existsSync(join(path, POLYAK_STATE))) polyak.load(join(path, POLYAK_STATE), model.weights.keys());
    else polyak.dispose();
  }
  // A checkpoint is only ever written finite (saveCheckpoint), so a NaN here is damage: refuse it, and
  // the resume falls back to the checkpoint before (as for any unreadable one).
  const bad =
    (model ? firstNonFinite(model.weights) : null) ??
    opt.firstNonFinite() ??
    (polyak && polyak.count > 0 ? firstNonFinite(polyak.mean) : null);
  if (bad) throw new Error(`${path}: '${bad}' holds a NaN or an infinity (a damaged checkpoint)`);
  return state;
}

/** Read and check a trainer_state.json; errors name the file and the field. */
export function readTrainerState(file: string): TrainerState {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new Error(`${file}: not a JSON object`);
  const s = raw as Record<string, unknown>;
  const count = (v: unknown, field: string): number => {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)
      throw new Error(`${file}: field '${field}' must be an integer ≥ 0 (got ${JSON.stringify(v)})`);
    return v;
  };
  const loader = s.loader as Record<string, unknown> | undefined;
  if (typeof loader !== "object" || loader === null || Array.isArray(loader))
    throw new Error(`${file}: field 'loader' must be an object`);
  const position: LoaderPosition = {
    epoch: count(loader.epoch, "loader.epoch"),
    cursor: count(loader.cursor, "loader.cursor"),
  };
  if (loader.seqLen !== undefined) position.seqLen = count(loader.seqLen, "loader.seqLen");
  if (typeof s.rng !== "number" || !Number.isInteger(s.rng))
    throw new Error(`${file}: field 'rng' must be an integer (got ${JSON.stringify(s.rng)})`);
  return { step: count(s.step, "step"), tokens: count(s.tokens, "tokens"), loader: position, rng: s.rng };
}

/**
 * Polyak averaging (spec §6.3): the element-wise mean of the weights of several checkpoint folders
 * (model/average.ts, uniform weights). Every folder must hold the same tensor names and shapes; errors name
 * the folder. The tensors are kept (the caller disposes them).
 */
export async function averageCheckpoints(paths: string[]): Promise<Map<string, Tensor>> {
  if (paths.length === 0) throw new Error("averageCheckpoints: no checkpoints");
  const { tensors } = await averageWeights(paths);
  for (const t of tensors.values()) t.keep();
  return tensors;
}
