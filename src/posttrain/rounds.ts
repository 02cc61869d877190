// The post-training rounds (spec §7.1), declared in one rounds file (ROUNDS_SCHEMA) and run stage by
// stage. Each round N, from the previous round's model (round 1: `model`):
//   sft      SFT on data.sft plus round N−1's rejection-sampled dialogs          → round-N/sft/final/
//   rm       the reward model, on the pre-trained `model` (spec §7.2), over data.preferences → rm/final/
//   rs       K samples per prompt of data.prompts from round N's SFT model, scored by each prompt's
//            checker or by round N's reward model; the best kept           → rs/final/kept.jsonl, report.json
//   dpo      DPO from the SFT model (its reference), over data.preferences          → dpo/final/
//   average  with average.weights: [previous round's model, round N's DPO model] averaged (round ≥ 2)
// and the round's model is average/final/ when there is one, else dpo/final/. A data path may contain
// `{round}` (the round's number), so each round can have its own SFT, preference and prompt files.
// Resumable: each stage runs in RUN/round-N/<stage>/ with the trainers' own resume, and records in
// stage.json what it is made of (its settings, a hash of every input file, the record of the stage
// that made its input model; for the starting model, its files' names, sizes and times); a rerun skips a stage whose record is unchanged and that finished (final/
// there), and refuses one whose record changed, naming the changes. Paths in a rounds file are relative
// to its folder; the validated file, every default filled, is written to RUN/rounds.json.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { type Infer, type Schema, UsageError, validate } from "../core/schema.js";
import { codecFor } from "../generate/codec.js";
import { writeFileAtomic } from "../io/atomic.js";
import { loadModel, readConfig } from "../model/load.js";
import { configChanges } from "../train/config.js";
import { averageModels } from "./average.js";
import { DPO_SCHEMA, RM_SCHEMA, resolveLR, resolveSeqLen, SFT_SCHEMA } from "./config.js";
import { type Dataset, readPreferences, readSft, type SftExample } from "./data.js";
import { cachedReference, checkpointHash, dataHash, dpo, pairLogps } from "./dpo.js";
import { chatFormatFor, writeFinal, writeSkips } from "./io.js";
import type { PostStep } from "./loop.js";
import { type RejectionProgress, rejectionSample } from "./rejectionSampling.js";
import {
  loadRewardModel,
  RM_CONFIG,
  rewardScorer,
  SCORE,
  trainRewardModel,
  withRewardHead,
} from "./reward.js";
import { sft } from "./sft.js";
import { readTasks } from "./tasks/generate.js";

export const RS_SCHEMA = {
  k: { type: "integer", min: 1, max: 256, default: 4, doc: "samples per prompt (the paper: 10–30)" },
  scorer: {
    type: "enum",
    choices: ["checker", "reward"],
    default: "checker",
    doc: "checker: each prompt's task check; reward: the round's reward model",
  },
  "min-score": {
    type: "number",
    default: null,
    defaultDoc: "1 with the checker (correct), none with the reward model",
    doc: "lowest score a kept sample may have",
  },
  temperature: { type: "number", min: 0, default: 1, doc: "sampling temperature" },
  "top-p": { type: "number", min: 0, max: 1, minExclusive: true, default: 1, doc: "nucleus sampling" },
  "top-k": { type: "integer", min: 0, default: 0, doc: "top-k sampling (0: off)" },
  "max-tokens": { type: "integer", min: 1, default: 256, doc: "new tokens at most per sample" },
  limit: {
    type: "integer",
    min: 1,
    default: null,
    defaultDoc: "all",
    doc: "sample only the first N prompts",
  },
  seed: { type: "integer", default: 0, doc: "seed of every sample's stream" },
} as const satisfies Schema;

const path = (doc: string) => ({ type: "string", nonEmpty: true, doc }) as const;

export const ROUNDS_SCHEMA = {
  model: path("the pre-trained checkpoint: round 1 starts from it, every reward model trains on it"),
  output: {
    type: "string",
    nonEmpty: true,
    default: null,
    defaultDoc: "herd posttrain's --output",
    doc: "the run folder: rounds.json, round-N/<stage>/",
  },
  rounds: { type: "integer", min: 1, default: 2, doc: "rounds (the paper: six)" },
  tokenizer: {
    type: "string",
    default: null,
    defaultDoc: "tokenizer.model in the model's folder, else Llama 3's for a 128,256 vocabulary",
    doc: "tiktoken ranks file",
  },
  "tool-format": {
    type: "enum",
    choices: ["json", "function_tag", "python_list"],
    default: "json",
    doc: "how assistant tool_calls are written",
  },
  data: {
    type: "object",
    doc: "input files (JSONL; `{round}` in a path is the round's number)",
    fields: {
      sft: path("SFT dialogs (`messages`)"),
      preferences: path("preference pairs, for the reward model and DPO"),
      prompts: path("prompts to rejection-sample (herd tasks' prompts.jsonl)"),
    },
  },
  sft: { type: "object", fields: SFT_SCHEMA, doc: "herd sft's settings" },
  rm: { type: "object", fields: RM_SCHEMA, doc: "herd rm's settings" },
  rs: { type: "object", fields: RS_SCHEMA, doc: "herd rs's settings" },
  dpo: { type: "object", fields: DPO_SCHEMA, doc: "herd dpo's settings" },
  average: {
    type: "object",
    doc: "model averaging (spec §7.5)",
    fields: {
      weights: {
        type: "numbers",
        min: 0,
        default: null,
        defaultDoc: "no averaging",
        doc: "[previous round's model, this round's DPO model], from round 2",
      },
    },
  },
} as const satisfies Schema;

export type RoundsConfig = Infer<typeof ROUNDS_SCHEMA>;
export const STAGES = ["sft", "rm", "rs", "dpo", "average"] as const;
export type Stage = (typeof STAGES)[number];

/** Validate a parsed rounds file; paths resolved against `baseDir`; errors name `source` and the field. */
export function roundsConfig(raw: unknown, source: string, baseDir = "."): RoundsConfig {
  const c = validate(ROUNDS_SCHEMA, raw, source);
  const w = c.average.weights;
  if (w !== null && (w.length !== 2 || w[0]! + w[1]! <= 0))
    throw new UsageError(`${source}: field 'average.weights' must be two weights, not both 0, got [${w}]`);
  const abs = (p: string) => resolve(baseDir, p);
  return {
    ...c,
    model: abs(c.model),
    output: c.output === null ? null : abs(c.output),
    tokenizer: c.tokenizer === null ? null : abs(c.tokenizer),
    data: { sft: abs(c.data.sft), preferences: abs(c.data.preferences), prompts: abs(c.data.prompts) },
  };
}

/** Read a rounds file (.json, else YAML). */
export function loadRounds(file: string): RoundsConfig {
  const text = readFileSync(file, "utf8");
  let raw: unknown;
  try {
    raw = file.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new UsageError(
      `${file}: not valid ${file.endsWith(".json") ? "JSON" : "YAML"}: ${(e as Error).message}`,
    );
  }
  return roundsConfig(raw, file, dirname(resolve(file)));
}

export type RoundsEvent =
  | { kind: "start"; round: number; stage: Stage; dir: string }
  | { kind: "skip"; round: number; stage: Stage; dir: string }
  | { kind: "done"; round: number; stage: Stage; dir: string; note: string }
  | { kind: "step"; round: number; stage: Stage; step: PostStep }
  | { kind: "rs"; round: number; stage: "rs"; progress: RejectionProgress };

export interface RoundsOptions {
  onProgress?: (e: RoundsEvent) => void;
}

const sha = (s: string | Buffer) => createHash("sha256").update(s).digest("hex");
const fileHash = (p: string) => {
  if (!existsSync(p)) throw new Error(`${p}: file is missing`);
  return sha(readFileSync(p));
};

/** The starting checkpoint's files by name, size and time (hashing a large checkpoint on every run would be slow). */
function statKey(dir: string): string {
  if (!existsSync(dir)) throw new Error(`${dir}: the model folder is missing`);
  return readdirSync(dir)
    .filter((f) => /\.(safetensors|pth|json)$/.test(f))
    .sort()
    .map((f) => {
      const st = statSync(join(dir, f));
      return `${f} ${st.size} ${st.mtimeMs}`;
    })
    .join("\n");
}

/** The folder of stage `stage` of round `n`. */
export const stageDir = (run: string, n: number, stage: Stage) => join(run, `round-${n}`, stage);

/** Run (or resume) every round; returns the last round's model folder. */
export async function runRounds(cfg: RoundsConfig, opts: RoundsOptions = {}): Promise<string> {
  const run = cfg.output;
  if (!run) throw new UsageError("the run folder: give `output` in the rounds file or --output");
  mkdirSync(run, { recursive: true });
  writeFileAtomic(join(run, "rounds.json"), `${JSON.stringify(cfg, null, 2)}\n`);
  const emit = opts.onProgress ?? (() => {});
  // The records of the stages that read dialogs also hold how they are tokenised.
  const chatRec = { tokenizer: cfg.tokenizer && fileHash(cfg.tokenizer), "tool-format": cfg["tool-format"] };
  const base = readConfig(cfg.model);
  const chat = chatFormatFor(cfg.model, base.vocabSize, cfg.tokenizer ?? undefined, cfg["tool-format"]);
  const read = { chat, vocabSize: base.vocabSize };
  const lr = (x: number | null) => resolveLR(x, base.hiddenSize);
  const seq = (x: number | null) => resolveSeqLen(x, base.maxPositionEmbeddings);
  const of = (p: string, n: number) => p.replaceAll("{round}", String(n));
  const baseKey = sha(`model ${resolve(cfg.model)} ${statKey(cfg.model)}`);
  let prev = { dir: cfg.model, key: baseKey };
  let prevKept: { file: string; key: string } | null = null;
  for (let n = 1; n <= cfg.rounds; n++) {
    const step = (stage: Stage) => (m: PostStep) => emit({ kind: "step", round: n, stage, step: m });
    const prefs = of(cfg.data.preferences, n);
    // SFT: the round's dialogs and the previous round's rejection-sampled ones, from the previous model.
    const sftFiles = [of(cfg.data.sft, n), ...(prevKept ? [prevKept.file] : [])];
    const sftRec = {
      ...chatRec,
      settings: cfg.sft,
      model: prev.key,
      data: [fileHash(sftFiles[0]!), ...(prevKept ? [prevKept.key] : [])],
    };
    const from = prev.dir;
    const sftOut = await stage(run, n, "sft", sftRec, emit, async (dir) => {
      const model = await loadModel(from);
      const s = seq(cfg.sft["seq-len"]);
      // The previous round's kept dialogs may be none (a file with no lines), which readSft refuses.
      const files = sftFiles.filter((f, i) => i === 0 || readFileSync(f, "utf8").trim() !== "");
      const sets: Dataset<SftExample>[] = files.map((f) => readSft(f, { ...read, maxLen: s }));
      writeSkips(
        dir,
        sets.flatMap((d) => d.skipped),
      );
      const c = { ...cfg.sft, lr: lr(cfg.sft.lr), "seq-len": s };
      const data = sets.flatMap((d) => d.examples);
      await sft({ runDir: dir, model, data, cfg: c }, { onStep: step("sft") });
      await writeFinal(dir, model, from);
      model.dispose();
      return `${data.length} dialogs`;
    });
    // The reward model, on the pre-trained checkpoint.
    const rmRec = { ...chatRec, settings: cfg.rm, model: baseKey, data: [fileHash(prefs)] };
    const rmOut = await stage(run, n, "rm", rmRec, emit, async (dir) => {
      const s = seq(cfg.rm["seq-len"]);
      const d = readPreferences(prefs, { ...read, maxLen: s });
      writeSkips(dir, d.skipped);
      const rm = withRewardHead(await loadModel(cfg.model), cfg.rm.seed);
      const c = { ...cfg.rm, lr: lr(cfg.rm.lr), "seq-len": s };
      await trainRewardModel({ runDir: dir, rm, data: d.examples, cfg: c }, { onStep: step("rm") });
      await writeFinal(dir, rm.base, cfg.model, { tensors: new Map([[SCORE, rm.head]]), config: RM_CONFIG });
      rm.base.dispose();
      return `${d.examples.length} pairs`;
    });
    // Rejection sampling from the round's SFT model.
    const prompts = of(cfg.data.prompts, n);
    const rsRec = {
      ...chatRec,
      settings: cfg.rs,
      model: sftOut.key,
      scorer: cfg.rs.scorer === "reward" ? rmOut.key : "checker",
      data: [fileHash(prompts)],
    };
    const rsOut = await stage(run, n, "rs", rsRec, emit, async (dir) => {
      const rows = readTasks(prompts).slice(0, cfg.rs.limit ?? undefined);
      const model = await loadModel(sftOut.final);
      const codec = codecFor(sftOut.final, model.config.vocabSize, cfg.tokenizer ?? undefined);
      if (!chat || !codec)
        throw new UsageError(
          `${cfg.model}: rejection sampling needs a tokenizer with the chat special tokens`,
        );
      const rm = cfg.rs.scorer === "reward" ? await loadRewardModel(rmOut.final) : null;
      const r = rejectionSample(model, chat, codec, rows, {
        k: cfg.rs.k,
        scorer: rm ? rewardScorer(rm, chat) : "checker",
        ...(cfg.rs["min-score"] !== null ? { minScore: cfg.rs["min-score"] } : {}),
        temperature: cfg.rs.temperature,
        topP: cfg.rs["top-p"],
        ...(cfg.rs["top-k"] > 0 ? { topK: cfg.rs["top-k"] } : {}),
        maxNewTokens: cfg.rs["max-tokens"],
        seed: cfg.rs.seed,
        onProgress: (p) => emit({ kind: "rs", round: n, stage: "rs", progress: p }),
      });
      model.dispose();
      rm?.base.dispose();
      const fin = join(dir, "final");
      mkdirSync(fin, { recursive: true });
      writeFileAtomic(join(fin, "report.json"), `${JSON.stringify(r.report, null, 2)}\n`);
      writeFileAtomic(join(fin, "kept.jsonl"), r.dialogs.map((d) => `${JSON.stringify(d)}\n`).join(""));
      return `kept ${r.report.kept} of ${r.report.prompts} prompts`;
    });
    // DPO from the SFT model, which is also its reference.
    const dpoRec = { ...chatRec, settings: cfg.dpo, model: sftOut.key, data: [fileHash(prefs)] };
    const dpoOut = await stage(run, n, "dpo", dpoRec, emit, async (dir) => {
      const model = await loadModel(sftOut.final);
      const c = { ...cfg.dpo, lr: lr(cfg.dpo.lr), "seq-len": seq(cfg.dpo["seq-len"]) };
      const d = readPreferences(prefs, { ...read, maxLen: c["seq-len"] });
      writeSkips(dir, d.skipped);
      const key = sha(`${dataHash(d.examples, c["seq-len"])} ${checkpointHash(sftOut.final)}`);
      const reference = await cachedReference(dir, key, () =>
        pairLogps(model, d.examples, c["seq-len"], c["micro-batch"]),
      );
      await dpo({ runDir: dir, model, data: d.examples, cfg: c, reference }, { onStep: step("dpo") });
      await writeFinal(dir, model, sftOut.final);
      model.dispose();
      return `${d.examples.length} pairs`;
    });
    let out = dpoOut;
    const w = cfg.average.weights;
    if (w !== null && n > 1) {
      const avgRec = { weights: w, models: [prev.key, dpoOut.key] };
      const [a, b] = [prev.dir, dpoOut.final];
      out = await stage(run, n, "average", avgRec, emit, async (dir) => {
        await averageModels([a, b], join(dir, "final"), w);
        return `weights ${w.join(", ")}`;
      });
    }
    prev = { dir: out.final, key: out.key };
    prevKept = { file: join(rsOut.final, "kept.jsonl"), key: rsOut.key };
  }
  return prev.dir;
}

/**
 * One stage in RUN/round-N/<stage>/: skipped when its stage.json has the same record and says it
 * finished (and final/ is there); refused when the record changed; else run (resuming) and marked.
 */
async function stage(
  run: string,
  round: number,
  name: Stage,
  record: Record<string, unknown>,
  emit: (e: RoundsEvent) => void,
  work: (dir: string) => Promise<string>,
): Promise<{ final: string; key: string }> {
  const dir = stageDir(run, round, name);
  const final = join(dir, "final");
  const file = join(dir, "stage.json");
  const key = sha(JSON.stringify(record));
  if (existsSync(file)) {
    const old = JSON.parse(readFileSync(file, "utf8")) as { key: string; record: unknown; finished: boolean };
    if (old.key !== key)
      throw new Error(
        `${file}: the stage was run with other settings or inputs (${configChanges(old.record, record).join("; ")}); ` +
          `delete ${dir} and the stages after it to rerun them, or use a new run folder`,
      );
    if (old.finished && existsSync(final)) {
      emit({ kind: "skip", round, stage: name, dir });
      return { final, key };
    }
  }
  mkdirSync(dir, { recursive: true });
  const write = (finished: boolean) =>
    writeFileAtomic(file, `${JSON.stringify({ key, record, finished }, null, 2)}\n`);
  write(false);
  emit({ kind: "start", round, stage: name, dir });
  const note = await work(dir);
  write(true);
  emit({ kind: "done", round, stage: name, dir, note });
  return { final, key };
}
