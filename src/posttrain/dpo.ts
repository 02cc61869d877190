// Direct preference optimisation with the paper's changes (spec §7.2–7.4): the sigmoid loss
//   −log σ(β·[(log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r))]),  β = 0.1,
// averaged over the step's pairs, where a response's log-probability sums its CONTENT tokens only (the
// formatting tokens — header, role name, "\n\n", <|eot_id|>/<|eom_id|> — are masked out of both), plus
// 0.2 · NLL(chosen) over the chosen responses' SFT tokens: by default a token mean over the step's chosen
// tokens, as TRL's loss_type ["sigmoid", "sft"] with loss_weights [1, 0.2]; "sequence-sum" sums each
// response's NLL and averages over pairs. Both normalisers are the whole step's, so accumulation over
// micro-batches is exact. The reference log-probabilities come from a function (default: the reference
// weights — the policy before training — run once up front, cached on disk beside the run and keyed by
// a hash of the data and the reference; LoRA passes "the base with the adapter switched off").
// Metrics per step as TRL logs them: rewards/chosen, rewards/rejected, rewards/accuracies,
// rewards/margins, logps/chosen, logps/rejected (and nll_loss).
import { createHash } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
} from "node:fs";
import { basename, join } from "node:path";
import { writeFileAtomic } from "../io/atomic.js";
import type { Llama } from "../model/llama.js";
import { reshape } from "../tensor/ops.js";
import { backward, noGrad } from "../tensor/tape.js";
import { scope } from "../tensor/tensor.js";
import { listCheckpoints } from "../train/checkpoint.js";
import type { DpoConfig } from "./config.js";
import type { PreferenceExample, Response } from "./data.js";
import { targetLogProbs } from "./logprobs.js";
import { type LoopOptions, trainLoop } from "./loop.js";
import { pack, type Sequence } from "./pack.js";

/** Log-probabilities of one pair's responses (counted tokens only). */
export interface PairLogps {
  chosen: number;
  rejected: number;
}

/** The per-pair inputs of the loss: policy and reference log-probabilities, the chosen NLL tokens' log-probs. */
export interface DpoPair {
  policy: PairLogps;
  reference: PairLogps;
  /** Log-probabilities of the chosen response's SFT-supervised tokens (the NLL term). */
  chosenTokens: readonly number[];
}

export interface DpoLossOptions {
  beta: number;
  nllWeight: number;
  reduction: "token-mean" | "sequence-sum";
  /** Pairs in the whole step (the mean's denominator; default: these pairs). */
  pairs?: number;
  /** Chosen NLL tokens in the whole step (token-mean's denominator; default: these pairs'). */
  nllTokens?: number;
}

export interface DpoLoss {
  /** This slice's share of the step's loss (the whole loss when the slice is the step). */
  loss: number;
  dpo: number;
  nll: number;
  /** ∂loss/∂ log π(chosen), ∂loss/∂ log π(rejected) per pair; ∂loss/∂ (each chosen NLL token's log-prob). */
  dChosen: number[];
  dRejected: number[];
  dChosenTokens: number[][];
  /** TRL's metric sums over these pairs (divide by the pair count for the means). */
  sums: Record<string, number>;
}

/** log σ(x) and σ(x), stable for large |x| (DPO and the reward model's pairwise loss). */
export const logSigmoid = (x: number) => (x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x)));
export const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** The DPO (+ NLL) loss of some pairs and its gradient w.r.t. the policy log-probabilities, in closed form. */
export function dpoLoss(pairs: readonly DpoPair[], o: DpoLossOptions): DpoLoss {
  const n = o.pairs ?? pairs.length;
  const nTok = o.nllTokens ?? pairs.reduce((s, p) => s + p.chosenTokens.length, 0);
  const out: DpoLoss = { loss: 0, dpo: 0, nll: 0, dChosen: [], dRejected: [], dChosenTokens: [], sums: {} };
  const s = { chosen: 0, rejected: 0, accuracies: 0, margins: 0, logpsChosen: 0, logpsRejected: 0 };
  for (const p of pairs) {
    const rc = o.beta * (p.policy.chosen - p.reference.chosen);
    const rr = o.beta * (p.policy.rejected - p.reference.rejected);
    const z = rc - rr;
    out.dpo -= logSigmoid(z) / n;
    const g = (o.beta * sigmoid(-z)) / n;
    out.dChosen.push(-g);
    out.dRejected.push(g);
    const sumTok = p.chosenTokens.reduce((a, b) => a + b, 0);
    const per = o.reduction === "token-mean" ? (nTok > 0 ? 1 / nTok : 0) : 1 / n;
    out.nll -= sumTok * per;
    out.dChosenTokens.push(p.chosenTokens.map(() => -o.nllWeight * per));
    s.chosen += rc;
    s.rejected += rr;
    s.accuracies += rc > rr ? 1 : 0;
    s.margins += z;
    s.logpsChosen += p.policy.chosen;
    s.logpsRejected += p.policy.rejected;
  }
  out.loss = out.dpo + o.nllWeight * out.nll;
  out.sums = {
    "rewards/chosen": s.chosen,
    "rewards/rejected": s.rejected,
    "rewards/accuracies": s.accuracies,
    "rewards/margins": s.margins,
    "logps/chosen": s.logpsChosen,
    "logps/rejected": s.logpsRejected,
  };
  return out;
}

/** prompt + response as one sequence; trained: the response's counted and supervised tokens. */
export function responseSequence(prompt: Int32Array, r: Response): Sequence {
  const ids = new Int32Array(prompt.length + r.ids.length);
  ids.set(prompt);
  ids.set(r.ids, prompt.length);
  const trained = new Uint8Array(ids.length);
  for (let j = 0; j < r.ids.length; j++) trained[prompt.length + j] = r.counted[j]! | r.supervised[j]!;
  return { ids, trained };
}

/** Sum of the rows' log-probs over `flags` of a response placed at flat index start (its prompt before it). */
function responseRows(start: number, promptLen: number, flags: Uint8Array): number[] {
  const rows: number[] = [];
  for (let j = 0; j < flags.length; j++) if (flags[j]) rows.push(start + promptLen + j - 1);
  return rows;
}

interface Placed {
  chosen: { counted: number[]; supervised: number[] };
  rejected: { counted: number[] };
}

/** One forward over pairs (chosen and rejected of each, packed): the per-row log-prob tensor and where each pair's rows are. */
function forwardPairs(model: Llama, pairs: readonly PreferenceExample[], seqLen: number) {
  const seqs = pairs.flatMap((p) => [
    responseSequence(p.prompt, p.chosen),
    responseSequence(p.prompt, p.rejected),
  ]);
  const b = pack(seqs, seqLen);
  const logits = model.forward(b.ids, { batch: b.batch, docIds: b.docIds, resetPositions: true });
  const lp = targetLogProbs(reshape(logits, [b.ids.length, model.config.vocabSize]), b.targets);
  const placed: Placed[] = pairs.map((p, i) => ({
    chosen: {
      counted: responseRows(b.starts[2 * i]!, p.prompt.length, p.chosen.counted),
      supervised: responseRows(b.starts[2 * i]!, p.prompt.length, p.chosen.supervised),
    },
    rejected: { counted: responseRows(b.starts[2 * i + 1]!, p.prompt.length, p.rejected.counted) },
  }));
  return { lp, placed, tokens: b.ids.length };
}

const sumRows = (v: Float32Array, rows: number[]) => rows.reduce((s, r) => s + v[r]!, 0);

/** Log-probabilities (counted tokens) of every pair's responses, without gradients, `micro` pairs a forward. */
export function pairLogps(
  model: Llama,
  pairs: readonly PreferenceExample[],
  seqLen: number,
  micro: number,
): PairLogps[] {
  const out: PairLogps[] = [];
  for (let i = 0; i < pairs.length; i += micro)
    noGrad(() =>
      scope(() => {
        const { lp, placed } = forwardPairs(model, pairs.slice(i, i + micro), seqLen);
        const v = lp.data;
        for (const p of placed)
          out.push({ chosen: sumRows(v, p.chosen.counted), rejected: sumRows(v, p.rejected.counted) });
      }),
    );
  return out;
}

export interface DpoSettings {
  beta: number;
  nllWeight: number;
  reduction: "token-mean" | "sequence-sum";
  seqLen: number;
  micro: number;
}

/** Gradients of one step over `pairs` (indices into data) into the policy's .grad; returns loss and TRL's metrics. */
export function dpoStep(
  model: Llama,
  data: readonly PreferenceExample[],
  reference: readonly PairLogps[],
  pairs: readonly number[],
  s: DpoSettings,
  train = true,
): { loss: number; tokens: number; metrics: Record<string, number> } {
  const nllTokens = pairs.reduce((n, i) => n + data[i]!.chosen.supervised.reduce((a, b) => a + b, 0), 0);
  const opts = {
    beta: s.beta,
    nllWeight: s.nllWeight,
    reduction: s.reduction,
    pairs: pairs.length,
    nllTokens,
  };
  const sums: Record<string, number> = {};
  let loss = 0;
  let nll = 0;
  let tokens = 0;
  for (let i = 0; i < pairs.length; i += s.micro) {
    const idx = pairs.slice(i, i + s.micro);
    const run = () =>
      scope(() => {
        const {
          lp,
          placed,
          tokens: t,
        } = forwardPairs(
          model,
          idx.map((k) => data[k]!),
          s.seqLen,
        );
        tokens += t;
        const v = lp.data;
        const l = dpoLoss(
          placed.map((p, j) => ({
            policy: { chosen: sumRows(v, p.chosen.counted), rejected: sumRows(v, p.rejected.counted) },
            reference: reference[idx[j]!]!,
            chosenTokens: p.chosen.supervised.map((r) => v[r]!),
          })),
          opts,
        );
        loss += l.loss;
        nll += l.nll;
        for (const [k, x] of Object.entries(l.sums)) sums[k] = (sums[k] ?? 0) + x;
        if (!train) return;
        const g = new Float32Array(v.length);
        placed.forEach((p, j) => {
          for (const r of p.chosen.counted) g[r]! += l.dChosen[j]!;
          for (const r of p.rejected.counted) g[r]! += l.dRejected[j]!;
          p.chosen.supervised.forEach((r, k) => {
            g[r]! += l.dChosenTokens[j]![k]!;
          });
        });
        backward(lp, g);
      });
    if (train) run();
    else noGrad(run);
  }
  const metrics: Record<string, number> = { nll_loss: nll };
  for (const [k, x] of Object.entries(sums)) metrics[k] = x / pairs.length;
  return { loss, tokens, metrics };
}

/** sha256 of the files of a checkpoint directory (config and weights), or of a .gguf file, streamed. */
export function checkpointHash(dir: string): string {
  const h = createHash("sha256");
  const buf = Buffer.alloc(1 << 20);
  const file = statSync(dir).isFile();
  for (const f of file ? [dir] : readdirSync(dir).sort()) {
    if (!file && (!/\.(safetensors|pth|json)$/.test(f) || f.startsWith("tokenizer"))) continue;
    h.update(file ? basename(f) : f);
    const fd = openSync(file ? f : join(dir, f), "r");
    try {
      for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) h.update(buf.subarray(0, n));
    } finally {
      closeSync(fd);
    }
  }
  return h.digest("hex");
}

/** sha256 of the pairs' token ids and masks (what the reference log-probabilities depend on; edited ones too). */
export function dataHash(data: readonly PreferenceExample[], seqLen: number): string {
  const h = createHash("sha256");
  h.update(`seq ${seqLen}\n`);
  for (const p of data)
    for (const a of [
      p.prompt,
      p.chosen.ids,
      p.chosen.counted,
      p.rejected.ids,
      p.rejected.counted,
      ...(p.edited ? [p.edited.ids] : []),
    ]) {
      h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
      h.update("|");
    }
  return h.digest("hex");
}

export const REFERENCE_CACHE = "reference_logps.json";

/**
 * The reference log-probabilities of `data`, from runDir/reference_logps.json when its key (a hash of the
 * data and of the reference) matches, else computed by `compute` and written there atomically. A cache
 * with another key is refused once the run has checkpoints (its policy started from another reference);
 * before that it is recomputed.
 */
export async function cachedReference(
  runDir: string,
  key: string,
  compute: () => PairLogps[] | Promise<PairLogps[]>,
): Promise<PairLogps[]> {
  const path = join(runDir, REFERENCE_CACHE);
  if (existsSync(path)) {
    const c = JSON.parse(readFileSync(path, "utf8")) as { key: string; logps: PairLogps[] };
    if (c.key === key) return c.logps;
    if (listCheckpoints(join(runDir, "checkpoints")).length > 0)
      throw new Error(
        `${path}: stale (made for other data or another reference model) while the run has checkpoints; use a new run folder`,
      );
  }
  const logps = await compute();
  mkdirSync(runDir, { recursive: true });
  writeFileAtomic(path, `${JSON.stringify({ key, logps })}\n`);
  return logps;
}

export interface DpoRun {
  runDir: string;
  model: Llama;
  data: readonly PreferenceExample[];
  cfg: DpoConfig & { lr: number; "seq-len": number };
  /** The reference log-probabilities of every pair, in data order (see cachedReference). */
  reference: readonly PairLogps[];
}

export function dpoSettings(cfg: DpoRun["cfg"]): DpoSettings {
  return {
    beta: cfg.beta,
    nllWeight: cfg["nll-weight"],
    reduction: cfg["nll-reduction"],
    seqLen: cfg["seq-len"],
    micro: cfg["micro-batch"],
  };
}

/** Run (or resume) DPO in runDir. */
export async function dpo(run: DpoRun, opts: LoopOptions = {}) {
  if (run.reference.length !== run.data.length)
    throw new Error(`dpo: ${run.reference.length} reference log-probabilities for ${run.data.length} pairs`);
  const s = dpoSettings(run.cfg);
  return trainLoop(
    {
      runDir: run.runDir,
      model: run.model,
      cfg: run.cfg,
      items: run.data.map((_, i) => i),
      fingerprint: `${dataHash(run.data, s.seqLen)} β ${s.beta} nll ${s.nllWeight} ${s.reduction}`,
      step: (idx) => dpoStep(run.model, run.data, run.reference, idx, s),
    },
    opts,
  );
}
